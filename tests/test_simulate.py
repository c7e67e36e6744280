"""The simulator: determinism, chunk independence and the planted ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cohortex import CohortexError, simulate
from cohortex.simulate import GENERATION_BLOCK, simulate_array


def test_same_seed_same_values_for_any_chunking(tmp_path):
    options = dict(modules=2, module_size=10, batches=3, seed=7)
    a = simulate(tmp_path / "a.zarr", 600, 90, chunks=(64, 32), **options)
    b = simulate(tmp_path / "b.zarr", 600, 90, chunks=(1000, 90), **options)
    c = simulate(tmp_path / "c.zarr", 600, 90, chunks=(37, 11), **options)  # splits streams
    np.testing.assert_array_equal(a["expression"].values, b["expression"].values)
    np.testing.assert_array_equal(a["expression"].values, c["expression"].values)
    for name in ("condition", "batch", "factor_0", "is_de", "true_log2fc", "module"):
        np.testing.assert_array_equal(a[name].values, c[name].values)
    x, samples, genes = simulate_array(600, 90, **options)
    np.testing.assert_array_equal(a["expression"].values, x)
    other = simulate(tmp_path / "d.zarr", 600, 90, chunks=(64, 32), **{**options, "seed": 8})
    assert not np.array_equal(a["expression"].values, other["expression"].values)
    assert GENERATION_BLOCK < 600  # several random streams were exercised


def test_groups_batches_and_truth_bookkeeping(tmp_path):
    ds = simulate(
        tmp_path / "s.zarr",
        1001,
        200,
        groups={"a": 0.2, "b": 0.3, "c": 0.5},
        n_de=0.1,
        batches={"x": 0.5, "y": 0.5},
        modules=3,
        module_size=20,
    )
    labels, counts = np.unique(ds["condition"].values.astype(str), return_counts=True)
    assert dict(zip(labels, counts, strict=True)) == {"a": 200, "b": 300, "c": 501}
    _, batch_counts = np.unique(ds["batch"].values.astype(str), return_counts=True)
    assert sorted(batch_counts) == [500, 501]
    is_de = ds["is_de"].values
    assert is_de.sum() == 20
    assert np.all((ds["true_log2fc"].values != 0) == is_de)
    assert set(ds["de_group"].values[is_de]) <= {"a", "b", "c"}
    assert set(ds["de_group"].values[~is_de]) == {""}
    modules = ds["module"].values
    assert [int((modules == m).sum()) for m in range(3)] == [20, 20, 20]
    assert not np.any(is_de & (modules >= 0))  # modules are disjoint from DE genes
    magnitudes = np.abs(ds["true_log2fc"].values[is_de])
    assert magnitudes.min() >= 1.0 and magnitudes.max() <= 2.0
    assert ds.attrs["scale"] == "log2"


def test_lognormal_fold_changes_are_recovered():
    x, samples, genes = simulate_array(4000, 300, n_de=30, log2fc=(1.0, 2.0), seed=3)
    tumor = samples["condition"].to_numpy() == "tumor"
    observed = x[tumor].mean(axis=0) - x[~tumor].mean(axis=0)
    standard_error = np.sqrt(
        x[tumor].var(axis=0, ddof=1) / tumor.sum() + x[~tumor].var(axis=0, ddof=1) / (~tumor).sum()
    )
    truth = genes["true_log2fc"].to_numpy()
    # the estimate is unbiased: every gene within 4.5 standard errors (P(miss) ≈ 2e-3 overall)
    assert np.max(np.abs(observed - truth) / standard_error) < 4.5
    # and the Welch test separates planted genes from null ones
    p = stats.ttest_ind(x[tumor], x[~tumor], equal_var=False).pvalue
    is_de = genes["is_de"].to_numpy()
    assert np.all(p[is_de] < 1e-10)
    assert np.mean(p[~is_de] < 0.05) < 0.12


def test_batch_effects_shift_genes():
    x, samples, _ = simulate_array(3000, 200, n_de=0, batches=2, batch_effect=0.5, seed=4)
    in_one = samples["batch"].to_numpy() == "batch1"
    shift = x[in_one].mean(axis=0) - x[~in_one].mean(axis=0)
    # differences of two N(0, 0.5²) shifts have sd ≈ 0.71
    assert 0.5 < shift.std() < 0.95


def test_module_genes_follow_their_factor_non_linearly():
    x, samples, genes = simulate_array(3000, 300, n_de=0, modules=2, module_size=25, seed=5)
    module = genes["module"].to_numpy()
    factor = samples["factor_0"].to_numpy()
    inside = x[:, module == 0]
    outside = x[:, module == -1]
    rho_in = np.abs([stats.spearmanr(factor, g).statistic for g in inside.T])
    rho_out = np.abs([stats.spearmanr(factor, g).statistic for g in outside.T])
    assert np.median(rho_in) > 0.5
    assert np.max(rho_out) < 0.1
    # non-linear link: a sigmoid saturates, so the response flattens at the extremes
    gene = inside[:, np.argmax(rho_in)]
    order = np.argsort(factor)
    tails = np.abs(np.diff([gene[order[:300]].mean(), gene[order[300:600]].mean()]))
    middle = np.abs(np.diff([gene[order[1350:1650]].mean(), gene[order[1650:1950]].mean()]))
    assert middle > tails


def test_negative_binomial_counts():
    x, samples, genes = simulate_array(
        3000, 400, n_de=0, distribution="negbinom", library_size=2e4, seed=6
    )
    assert np.all(x == np.round(x)) and x.min() >= 0
    assert (x == 0).mean() > 0.01  # low-expressed genes give zeros, as real counts do
    normalised = x / samples["library_size"].to_numpy()[:, None]
    proportions = normalised.mean(axis=0)
    assert abs(proportions.sum() - 1.0) < 0.02
    # overdispersion: variance exceeds the Poisson variance for well-expressed genes
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    high = mean > 100
    assert np.median(var[high] / mean[high]) > 5


def test_negative_binomial_counts_have_real_rna_seqs_low_tail():
    """At the default depth, as in bulk RNA-seq: about a quarter of the genes below 1 CPM,
    zeros in the matrix, and edgeR's filterByExpr leaving out a quarter; the planted genes
    all expressed."""
    from cohortex import filter_by_expr

    x, samples, genes = simulate_array(100, 20_000, n_de=500, distribution="negbinom", seed=3)
    cpm = x / x.sum(axis=1, keepdims=True) * 1e6
    below = float(np.mean(np.median(cpm, axis=0) < 1.0))
    assert 0.2 < below < 0.35
    assert 0.05 < float(np.mean(x == 0)) < 0.2
    keep = filter_by_expr(x.astype(np.float64), group=samples["condition"].to_numpy())
    assert 0.65 < keep.attrs["n_kept"] / 20_000 < 0.8
    planted = genes["true_log2fc"].to_numpy() != 0
    assert np.all(np.median(cpm[:, planted], axis=0) > 0.01) and keep.values[planted].mean() > 0.9


def test_negbinom_store_is_counts(tmp_path):
    ds = simulate(tmp_path / "nb.zarr", 50, 20, distribution="negbinom", n_de=2)
    assert ds.attrs["scale"] == "counts"
    assert "library_size" in ds


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"distribution": "poisson"},
            "'distribution' parameter of simulate\\(\\) must be one of "
            "'lognormal', 'negbinom'; got 'poisson'",
        ),
        ({"groups": {"a": 0.5, "b": 0.6}}, "positive fractions summing to 1"),
        ({"groups": {"a": 0.99, "b": 0.01}}, "these groups get fewer than 2 samples: b \\(0\\)"),
        ({"n_de": 80, "modules": 1, "module_size": 30}, "do not fit in 100 genes"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, message):
    with pytest.raises(CohortexError, match=message):
        simulate(tmp_path / "s.zarr", 50, 100, **kwargs)
    assert not (tmp_path / "s.zarr").exists()


def test_survival_genes_set_the_hazard():
    """One survival gene: its per-gene Cox model recovers the planted log hazard ratio."""
    from cohortex import survival

    x, samples, genes = simulate_array(3000, 40, n_de=4, survival_genes=1, log_hr=0.6, seed=5)
    planted = np.flatnonzero(genes["true_log_hr"].to_numpy() != 0)
    assert len(planted) == 1 and not genes["is_de"].to_numpy()[planted].any()
    assert 0.2 < 1 - samples["event"].mean() < 0.5  # about a third censored
    result = survival.cox(x, samples["time"].to_numpy(), samples["event"].to_numpy())
    estimate, se = result["coefficient"].values[planted[0]], result["se"].values[planted[0]]
    assert abs(estimate - genes["true_log_hr"].to_numpy()[planted[0]]) < 3 * se
    others = np.delete(np.arange(40), planted)
    assert np.median(result["pvalue"].values[others]) > 0.2
    plain, _, _ = simulate_array(3000, 40, n_de=4, seed=5)
    keep = np.delete(np.arange(40), planted)
    np.testing.assert_array_equal(plain[:, keep], x[:, keep])  # the other draws are unchanged
