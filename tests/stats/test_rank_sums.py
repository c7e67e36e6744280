"""The Wilcoxon rank sums: the compiled CPU block (every strategy: tally, narrow, wide; every
layout) and the GPU path on the CuPy stand-in, against the plain-NumPy ``average_ranks``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cohortex import de

from agreement import close, tied_counts

# ------------------------------------------------------------------------------- Wilcoxon


# ------------------------------------------------------------- the compiled rank-sum kernel


def _reference_rank_sums(x, codes, group, reference):
    """Rank sum and tie term of one contrast from the plain-NumPy ``average_ranks``."""
    from cohortex.stats._ranks import average_ranks

    members = (codes == group) | ((codes >= 0) if reference < 0 else (codes == reference))
    ranks, tie_term, _ = average_ranks(np.ascontiguousarray(x[members].T.astype(np.float64)))
    in_group = codes[members] == group
    return np.nansum(np.where(in_group[None, :], ranks, 0.0), axis=1), tie_term


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tied", [False, True])
def test_rank_sum_block_equals_the_numpy_reference(dtype, tied):
    from cohortex.stats._cpu.rank_sums import rank_sum_block

    rng = np.random.default_rng(31)
    n, genes = 257, 21
    x = rng.poisson(2, (n, genes)) * 1.0 if tied else rng.standard_normal((n, genes))
    x[:6, 0], x[6:12, 0] = -0.0, 0.0  # equal values with two bit patterns
    x[rng.random((n, genes)) < 0.03] = np.nan
    x[:3, 1], x[3:5, 1] = np.inf, -np.inf
    x = x.astype(dtype)
    codes = rng.integers(-1, 4, n)  # -1: outside every comparison
    contrasts = [(0, -1), (1, -1), (2, -1), (3, -1), (1, 0), (3, 2)]
    group_of = np.array([g for g, _ in contrasts])
    reference_of = np.array([r for _, r in contrasts])
    for chosen in ([0, 1, 2, 3], [4, 5]):  # one-vs-rest (one ranking); pairs among four groups
        out = rank_sum_block(x, codes, group_of[chosen], reference_of[chosen], 4, linear=True)
        for j, c in enumerate(chosen):
            rank_sum, tie_term = _reference_rank_sums(x, codes, *contrasts[c])
            np.testing.assert_allclose(out["rank_sum"][j], rank_sum, rtol=1e-15)
            np.testing.assert_allclose(out["tie_term"][j], tie_term, rtol=1e-15)
    wide = x.astype(np.float64)
    for level in range(4):
        inside = wide[codes == level]
        np.testing.assert_array_equal(out["count"][level], np.sum(~np.isnan(inside), axis=0))
        np.testing.assert_array_equal(out["nan"][level], np.sum(np.isnan(inside), axis=0))
        with np.errstate(invalid="ignore"):
            np.testing.assert_allclose(out["sum"][level], np.nansum(inside, axis=0), rtol=1e-12)
            np.testing.assert_allclose(
                out["linear_sum"][level], np.nansum(np.expm1(inside), axis=0), rtol=1e-12
            )
    np.testing.assert_array_equal(out["infinite"], np.sum(np.isinf(wide[codes >= 0]), axis=0))


def test_float32_and_float64_input_rank_alike():
    x, labels = tied_counts(seed=32)
    x = np.log1p(x).astype(np.float32)
    single = de.test(x, labels, test="wilcoxon", reference="b")
    double = de.test(x.astype(np.float64), labels, test="wilcoxon", reference="b")
    np.testing.assert_array_equal(single["statistic"].values, double["statistic"].values)
    wide = x.astype(np.float64)  # scipy would compute in float32
    expected = stats.mannwhitneyu(wide[labels == "a"], wide[labels == "b"], method="asymptotic")
    close(single["pvalue"], expected.pvalue)


def _sorted_with_codes(seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(13, 300)), 1)  # ties
    x[rng.random(x.shape) < 0.05] = np.nan
    codes = rng.integers(0, 3, x.shape[1])
    order = np.argsort(x, axis=1)  # NaN last
    return x, codes, np.take_along_axis(x, order, axis=1), codes[order]


def test_rank_sum_walk_twin_equals_average_ranks():
    from cohortex.stats._cpu.rank_sums import walk_sorted_runs
    from cohortex.stats._ranks import average_ranks

    x, codes, sorted_values, sorted_codes = _sorted_with_codes(33)
    out = walk_sorted_runs(sorted_values, sorted_codes, 3, linear=True)
    ranks, tie_term, _ = average_ranks(x)
    np.testing.assert_allclose(out["tie_term"], tie_term, rtol=1e-15)
    for level in range(3):
        np.testing.assert_allclose(
            out["rank_level"][level], np.nansum(ranks[:, codes == level], axis=1), rtol=1e-15
        )
        np.testing.assert_allclose(
            out["linear_sum"][level], np.nansum(np.expm1(x[:, codes == level]), axis=1)
        )


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize(
    "contrasts",
    [[(0, -1), (1, -1), (2, -1)], [(1, 0)], [(1, 0), (3, 2), (2, -1)]],
    ids=["one-vs-rest", "two-groups", "pairs"],
)
def test_device_rank_sums_equal_the_cpu_block(surface, contrasts, linear):
    """The GPU Wilcoxon (sort sets, contrasts, group sums, kernels/rank_sum_walk.cu) on the CuPy
    stand-in, its kernel compiled for the host, equals the CPU path's compiled block."""
    from cohortex.stats._cpu.rank_sums import rank_sum_block
    from cohortex.stats._gpu.rank_sums import device_rank_sums

    rng = np.random.default_rng(38)
    n, genes = 301, 17
    x = np.round(rng.lognormal(0.0, 0.7, (n, genes)), 1)  # ties
    x[rng.random((n, genes)) < 0.03] = np.nan
    codes = rng.integers(-1, 4, n)
    x[np.flatnonzero(codes == 2)[:2], 3] = np.inf  # inside a group
    x[np.flatnonzero(codes == -1)[:2], 5] = -np.inf  # outside every comparison
    group_of = np.array([g for g, _ in contrasts])
    reference_of = np.array([r for _, r in contrasts])
    on_device = device_rank_sums(surface.asarray(x), codes, group_of, reference_of, 4, linear)
    device = {name: value.get() for name, value in on_device.items()}
    cpu = rank_sum_block(x, codes, group_of, reference_of, 4, linear=linear)
    for name in ("rank_sum", "tie_term", "count", "nan", "infinite"):
        np.testing.assert_allclose(device[name], cpu[name], rtol=1e-13, err_msg=name)
    # sums: inf where a group holds inf, and no NaN from samples outside (code -1) holding inf
    np.testing.assert_allclose(device["sum"], cpu["sum"], rtol=1e-12)
    if linear:
        np.testing.assert_allclose(device["linear_sum"], cpu["linear_sum"], rtol=1e-12)
    assert np.all(device["tie_term"] > 0)  # rounded values: every gene has ties


@pytest.mark.parametrize("distinct", [3, 256, 257, 2000])
def test_rank_sum_block_tally_and_sort_agree(distinct):
    """Few distinct values are tallied, many are sorted; the switch can happen mid-gene."""
    from cohortex.stats._cpu.rank_sums import rank_sum_block

    rng = np.random.default_rng(35)
    n = 3000
    x = rng.integers(0, distinct, (n, 6)).astype(np.float32) / 7.0
    x[n // 2 :, 5] = rng.standard_normal(n - n // 2)  # tied first half, then untied
    codes = rng.integers(0, 3, n)
    out = rank_sum_block(x, codes, np.array([0, 1, 2]), np.array([-1, -1, -1]), 3, linear=True)
    for g in range(3):
        rank_sum, tie_term = _reference_rank_sums(x, codes, g, -1)
        np.testing.assert_allclose(out["rank_sum"][g], rank_sum, rtol=1e-15)
        np.testing.assert_allclose(out["tie_term"][g], tie_term, rtol=1e-15)
        expected = np.expm1(x[codes == g].astype(np.float64)).sum(axis=0)
        np.testing.assert_allclose(out["linear_sum"][g], expected, rtol=1e-12)


@pytest.mark.parametrize("n_levels", [2, 4])
@pytest.mark.parametrize("with_nan", [False, True])
def test_rank_sum_block_narrow_keys_equal_the_reference(n_levels, with_nan):
    """Positive float32 values spanning few images sort as 32-bit keys with the code below.

    Rounded log-normal values: > 256 distinct, so they are sorted, with runs of ties of every
    length, at the start and the end of the order and across 8-value words of the tie flags.
    """
    from cohortex.stats._cpu.rank_sums import rank_sum_block

    rng = np.random.default_rng(36)
    n, genes = 2000, 7
    x = np.round(rng.lognormal(0.0, 1.0, (n, genes)), 2).astype(np.float32)
    x[:40, 0] = x[:, 0].min()  # a long run at the start of the order
    x[40:90, 0] = x[:, 0].max()  # and one at the end
    x[:5, 1], x[5:9, 1] = -0.0, 0.0  # zeros with two bit patterns rank alike
    x[:, 2] = np.float32(1.0) + np.arange(n, dtype=np.float32) * np.float32(2.0**-20)  # untied
    if with_nan:
        x[rng.random((n, genes)) < 0.05] = np.nan
    codes = rng.integers(0, n_levels, n)
    group_of = np.arange(n_levels)
    out = rank_sum_block(x, codes, group_of, np.full(n_levels, -1), n_levels, linear=True)
    for g in range(n_levels):
        rank_sum, tie_term = _reference_rank_sums(x, codes, g, -1)
        np.testing.assert_allclose(out["rank_sum"][g], rank_sum, rtol=1e-15)
        np.testing.assert_allclose(out["tie_term"][g], tie_term, rtol=1e-15)
        inside = x[codes == g].astype(np.float64)
        np.testing.assert_allclose(
            out["linear_sum"][g], np.nansum(np.expm1(inside), axis=0), rtol=1e-12
        )
        np.testing.assert_array_equal(out["nan"][g], np.isnan(inside).sum(axis=0))
    assert out["tie_term"][0, 2] == 0.0


def test_rank_sum_block_one_compiled_signature_for_every_layout():
    """Contiguous, a view of a wider matrix, read-only, Fortran-ordered, rows reversed: the same
    statistics, and numba compiles ``block_statistics`` once per dtype, not once per layout."""
    from cohortex.stats._cpu.rank_sums import block_statistics, rank_sum_block

    rng = np.random.default_rng(39)
    wide = rng.lognormal(0.0, 1.0, (300, 40)).astype(np.float32)
    codes = rng.integers(0, 2, 300)
    x = np.ascontiguousarray(wide[:, 5:25])
    readonly = x.copy()
    readonly.flags.writeable = False
    layouts = [
        (x, codes),
        (wide[:, 5:25], codes),
        (readonly, codes),
        (np.asfortranarray(x), codes),
        (x[::-1], codes[::-1]),
    ]
    expected = rank_sum_block(x, codes, np.array([1]), np.array([0]), 2, linear=False)
    for block, block_codes in layouts:
        out = rank_sum_block(block, block_codes, np.array([1]), np.array([0]), 2, linear=False)
        for name, values in expected.items():
            np.testing.assert_allclose(out[name], values, rtol=1e-12, err_msg=name)
    float32_signatures = [
        signature
        for signature in block_statistics.signatures
        if str(signature[0].dtype) == "float32"
    ]
    assert len(float32_signatures) == 1


def test_scratch_buffers_are_per_thread_and_travel_empty():
    import pickle
    import threading

    from cohortex.stats._cpu.rank_sums import ScratchBuffers

    scratch = ScratchBuffers()
    first = scratch.get((3, 4), np.float32)
    again = scratch.get((2, 5), np.float32)  # smaller: the same memory, reshaped
    assert np.shares_memory(first, again) and again.shape == (2, 5)
    other: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: other.append(scratch.get((3, 4), np.float32)))
    worker.start()
    worker.join()
    assert not np.shares_memory(first, other[0])
    assert not np.shares_memory(first, scratch.get((3, 4), np.float64))  # another dtype
    copied = pickle.loads(pickle.dumps(scratch))  # to a dask.distributed worker
    assert isinstance(copied, ScratchBuffers) and copied._buffers == {}


def test_rank_sum_block_across_transposition_panels():
    """More rows and genes than one transposition panel (512 × 256): statistics add up.

    303 genes: the last panel ends with three genes past the last four transposed together.
    """
    from cohortex.stats._cpu.rank_sums import rank_sum_block

    rng = np.random.default_rng(37)
    n, genes = 1100, 303
    x = rng.lognormal(0.0, 0.5, (n, genes)).astype(np.float32)
    x[rng.random((n, genes)) < 0.01] = np.nan
    codes = rng.integers(-1, 2, n)
    out = rank_sum_block(x, codes, np.array([1]), np.array([0]), 2, linear=False)
    rank_sum, tie_term = _reference_rank_sums(x, codes, 1, 0)
    np.testing.assert_allclose(out["rank_sum"][0], rank_sum, rtol=1e-15)
    np.testing.assert_allclose(out["tie_term"][0], tie_term, rtol=1e-15)
    wide = x.astype(np.float64)
    for level in range(2):
        inside = wide[codes == level]
        np.testing.assert_array_equal(out["count"][level], np.sum(~np.isnan(inside), axis=0))
        np.testing.assert_allclose(out["sum"][level], np.nansum(inside, axis=0), rtol=1e-12)
