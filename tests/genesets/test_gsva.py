"""GSVA's gsva() against R (fixtures made by tests/fixtures/make_gsva_fixtures.R, GSVA 1.46):
GSVA with the Gaussian, Poisson and empirical kernels, its max-deviation and absolute-ranking
variants and a size filter; ssGSEA normalised and not, with its two exponents; combined
z-scores; PLAGE. The log data tie within samples and hold constant genes and a missing value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import CohortexError, create_cohort, de
from cohortex.genesets import GeneSets, gsva, read_gmt
from cohortex.stats import _gsva
from cohortex.stats._cpu.gsva import gaussian_log_odds, gsva_walks

GSVA = Path(__file__).parents[1] / "fixtures" / "gsva"
EXPRESSION = pd.read_csv(GSVA / "expression.csv", index_col=0).T  # samples × genes
COUNTS = pd.read_csv(GSVA / "counts.csv", index_col=0).T
CASES = {
    "gsva": ("expression", {}),
    "gsva_max_deviation": ("expression", {"max_diff": False}),
    "gsva_abs_ranking": ("expression", {"abs_ranking": True}),
    "gsva_tau": ("expression", {"tau": 0.5, "min_size": 5, "max_size": 40}),
    "gsva_ecdf": ("expression", {"kcdf": "none"}),
    "gsva_poisson": ("counts", {"kcdf": "poisson"}),
    "ssgsea": ("expression", {"method": "ssgsea"}),
    "ssgsea_raw": ("expression", {"method": "ssgsea", "ssgsea_norm": False}),
    "ssgsea_tau": ("expression", {"method": "ssgsea", "tau": 1.0, "ssgsea_norm": False}),
    "zscore": ("expression", {"method": "zscore"}),
    "plage": ("expression", {"method": "plage"}),
}


def _cohort(data: str) -> xr.Dataset:
    table = EXPRESSION if data == "expression" else COUNTS
    return xr.Dataset(
        {"expression": (("sample", "gene"), table.to_numpy(dtype=np.float64))},
        coords={"sample": table.index.to_numpy(), "gene": table.columns.to_numpy()},
        attrs={"scale": "log2" if data == "expression" else "counts"},
    )


def _sets(data: str) -> GeneSets:
    sets = read_gmt(GSVA / "sets.gmt")
    prefix = "set" if data == "expression" else "cset"
    names = [n for n in sets.names if n.startswith(prefix)]
    return GeneSets.from_dict({n: sets[n] for n in names})


@pytest.mark.parametrize("case", list(CASES))
def test_gsva_equals_r(case):
    data, options = CASES[case]
    expected = pd.read_csv(GSVA / f"{case}.csv", index_col=0)
    result = gsva(_cohort(data), _sets(data), **options)
    assert list(result["gene"].values) == list(expected.index)
    assert list(result["sample"].values) == list(expected.columns)
    got = result["expression"].values.T
    if case == "plage":  # an SVD's sign is arbitrary: ours rises with the set's mean
        got = got * np.sign(np.sum(got * expected.to_numpy(), axis=1))[:, None]
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-12, atol=1e-13)


def test_gsva_reports_what_it_left_out():
    result = gsva(_cohort("expression"), _sets("expression"))
    assert result.attrs["n_genes_missing"] == 1
    assert result.attrs["n_genes_constant"] == 2
    assert result.attrs["n_genes"] == 297
    assert result.attrs["kcdf"] == "gaussian"
    # every named member but the absent one is a gene of the data
    sizes = [len(m) - 1 for m in _sets("expression").members]
    assert (result["set_size"].values <= sizes).all()
    ssgsea = gsva(_cohort("expression"), _sets("expression"), method="ssgsea")
    assert ssgsea.attrs["n_genes"] == 299 and ssgsea.attrs["n_genes_constant"] == 0


def test_gene_ids_that_are_numbers():
    cohort = _cohort("expression")
    numbered = cohort.assign_coords(gene=np.arange(cohort.sizes["gene"]))
    position = {g: str(i) for i, g in enumerate(cohort["gene"].values)}
    sets = _sets("expression")
    renamed = GeneSets.from_dict(
        {n: [position[g] for g in sets[n] if g in position] for n in sets.names}
    )
    np.testing.assert_array_equal(
        gsva(numbered, renamed, method="zscore")["expression"].values,
        gsva(cohort, sets, method="zscore")["expression"].values,
    )


def test_kcdf_auto_takes_the_poisson_kernel_for_counts():
    counts = _cohort("counts")
    auto = gsva(counts, _sets("counts"))
    assert auto.attrs["kcdf"] == "poisson"
    expected = pd.read_csv(GSVA / "gsva_poisson.csv", index_col=0)
    np.testing.assert_allclose(auto["expression"].values.T, expected, rtol=1e-12, atol=1e-13)


def test_plage_rises_with_the_sets_mean_expression():
    cohort = _cohort("expression")
    result = gsva(cohort, _sets("expression"), method="plage")
    zscores = gsva(cohort, _sets("expression"), method="zscore")
    agreement = np.sum(result["expression"].values * zscores["expression"].values, axis=0)
    assert (agreement > 0).all()
    np.testing.assert_allclose(np.linalg.norm(result["expression"].values, axis=0), 1.0)


def test_planted_modules_score_as_their_activity():
    """The first four sets are planted modules: their GSVA scores follow the modules'
    activity, which the fixture's members share (module i: genes 25(i−1) … 25i − 1)."""
    result = gsva(_cohort("expression"), _sets("expression"))
    values = EXPRESSION.to_numpy()
    for module in range(4):
        activity = np.nanmean(values[:, module * 25 : (module + 1) * 25], axis=1)
        score = result["expression"].values[:, module]
        assert np.corrcoef(activity, score)[0, 1] > 0.8


def test_the_scores_are_a_cohort_to_test(tmp_path):
    samples = pd.DataFrame(
        {"group": np.repeat(["a", "b"], 12)}, index=pd.Index(COUNTS.index, name="sample")
    )
    store = create_cohort(
        tmp_path / "counts.zarr",
        COUNTS.to_numpy(),
        samples=samples,
        scale="counts",
        genes=pd.DataFrame(index=pd.Index(COUNTS.columns, name="gene")),
    )
    scores = gsva(store, _sets("counts"))
    assert list(scores["group"].values) == list(samples["group"])
    tested = de.test(scores, "group", test="welch")
    # cset01 … cset03 hold the 20 genes raised 1.8-fold in group b
    top = set(de.top(tested, 3)["gene"].values)
    assert top == {"cset01", "cset02", "cset03"}


def test_compiled_kernel_equals_the_xp_reference():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(57, 23)) * rng.uniform(0.5, 3, 23) + 4
    x[:, 3] = np.round(x[:, 3])  # ties
    bandwidth = x.std(axis=0, ddof=1) / 4
    table = _gsva.gaussian_table()
    compiled = gaussian_log_odds(x, bandwidth, table, _gsva.GAUSSIAN_TABLE_MAX, 10_000)
    reference = _gsva.kernel_log_odds(x, x, "gaussian", bandwidth, table)
    np.testing.assert_allclose(compiled, reference, rtol=1e-13)


@pytest.mark.parametrize(
    "options",
    [{}, {"max_diff": False}, {"abs_ranking": True}, {"tau": 0.5}],
)
def test_compiled_walks_equal_the_xp_reference(options):
    rng = np.random.default_rng(6)
    log_odds = rng.normal(size=(9, 300))
    log_odds[:, 50:60] = log_odds[:, 40:50]  # ties between genes: their order is the genes'
    members = [rng.choice(300, size, replace=False) for size in (1, 2, 5, 17, 40, 120, 299)]
    members.append(np.arange(40, 60))
    layout = _gsva.SetLayout.from_members(members)
    settings = {"tau": 1.0, "max_diff": True, "abs_ranking": False, **options}
    reference = _gsva.gsva_walks(log_odds, layout, **settings)
    compiled = gsva_walks(log_odds, *layout.csr(), **settings)
    np.testing.assert_allclose(compiled, reference, rtol=1e-13, atol=1e-15)


def test_degenerate_sets_score_as_gsvas_c_code():
    """A one-gene set in the middle place has no weight (0/0 steps: GSVA's walk keeps only
    its fall before the gene); a set of every gene has no gene outside (no fall)."""
    n = 10
    log_odds = -np.arange(n, dtype=np.float64)[None, :]  # gene g at place g (0-based)
    members = [np.array([n // 2]), np.arange(n), np.array([2, 7])]
    layout = _gsva.SetLayout.from_members(members)
    compiled = gsva_walks(log_odds, *layout.csr(), 1.0, True, False)
    reference = _gsva.gsva_walks(log_odds, layout)
    middle = -(n // 2) / (n - 1)
    np.testing.assert_allclose(compiled[0, :2], [middle, 1.0], rtol=1e-15)
    np.testing.assert_allclose(reference, compiled, rtol=1e-15)
    whole = _gsva.ssgsea_walks(np.arange(n, dtype=np.float64)[None, :], layout)
    assert np.isfinite(whole).all()


def test_truncated_average_ranks():
    x = np.array([[3.0, 1.0, 2.0, 2.0, 5.0, 2.0], [1.0, 1.0, 1.0, 1.0, 0.0, 9.0]])
    # R: as.integer(rank(x, ties = "average"))
    expected = [[5, 1, 3, 3, 6, 3], [3, 3, 3, 3, 1, 6]]
    np.testing.assert_array_equal(_gsva.truncated_average_ranks(x), expected)
    y = np.array([[1.0, 2.0, 2.0, 4.0]])  # a tie averaging to 2.5 is stored as 2
    np.testing.assert_array_equal(_gsva.truncated_average_ranks(y), [[1, 2, 2, 4]])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "mean"}, "'method'"),
        ({"kcdf": "beta"}, "'kcdf'"),
        ({"method": "zscore", "kcdf": "poisson"}, "kernel of method='gsva'"),
        ({"method": "plage", "tau": 1.0}, "'tau'"),
        ({"tau": -1.0}, "'tau'"),
        ({"min_size": 50, "max_size": 10}, "'max_size'"),
        ({"min_size": 500}, "No gene set keeps"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(CohortexError, match=message):
        gsva(_cohort("expression"), _sets("expression"), **options)


def test_infinite_values_are_refused():
    cohort = _cohort("expression").copy(deep=True)
    cohort["expression"].values[3, 5] = np.inf
    with pytest.raises(CohortexError, match="infinite"):
        gsva(cohort, _sets("expression"))


def test_small_memory_budgets_change_nothing(monkeypatch):
    """Walks one sample at a time, PLAGE's Gram matrices in groups of a few sets (and of the
    genes for sets wider than the cohort's 40 samples, which otherwise take the samples'),
    and sets gathered a few at a time give the same scores as GSVA."""
    import cohortex.genesets._gsva as module

    monkeypatch.setattr(module, "_WALK_VALUES", 1)
    monkeypatch.setattr(module, "_COMPILED_WALK_ROWS", 1)
    monkeypatch.setattr(module, "_GRAM_VALUES", 5000)
    monkeypatch.setattr(module, "_LINEAR_ROWS", 7)
    monkeypatch.setattr(module, "_WHOLE_Z_VALUES", 0)  # every PLAGE set from its genes' Gram
    monkeypatch.setattr(_gsva, "_SET_BLOCK_ELEMENTS", 3000)
    for case in ("gsva", "ssgsea_raw", "zscore", "plage"):
        data, options = CASES[case]
        expected = pd.read_csv(GSVA / f"{case}.csv", index_col=0).to_numpy()
        got = gsva(_cohort(data), _sets(data), **options)["expression"].values.T
        if case == "plage":
            got = got * np.sign(np.sum(got * expected, axis=1))[:, None]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13, err_msg=case)


def test_set_layout_split_keeps_every_set_once():
    rng = np.random.default_rng(3)
    members = [rng.choice(500, size, replace=False) for size in rng.integers(1, 200, 60)]
    layout = _gsva.SetLayout.from_members(members)
    groups = layout.split(20_000)
    assert len(groups) > 3
    seen = np.concatenate([ids for g in groups for ids, _, _ in g.buckets])
    np.testing.assert_array_equal(np.sort(seen), np.arange(60))
    for group in groups:
        values = sum(index.shape[0] * index.shape[1] ** 2 for _, index, _ in group.buckets)
        widest = max(index.shape[1] for _, index, _ in group.buckets)
        assert values <= 20_000 or (len(group.buckets[0][0]) == 1 and widest**2 > 20_000)
    for ids, index, mask in layout.buckets:
        for row, s in enumerate(ids):
            np.testing.assert_array_equal(index[row, : int(mask[row].sum())], members[s])
