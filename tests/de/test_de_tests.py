"""de.test, top and select_k_best against scipy, scikit-learn and statsmodels; chunk invariance."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.feature_selection import SelectKBest, f_classif
from statsmodels.stats.multitest import multipletests

import cohortex.stats._moments as moments_module
from cohortex import CohortexError, CohortexWarning, create_cohort, de, open_cohort, simulate
from cohortex._cohort import to_host_dataset

from agreement import close, tied_counts, two_groups


@pytest.mark.parametrize("equal_var", [False, True])
@pytest.mark.parametrize("sizes", [(40, 60), (2, 2), (2, 10_000)])
def test_t_tests_equal_scipy(xp, equal_var, sizes):
    genes = 6 if sizes[1] == 10_000 else 30
    x, labels = two_groups(sizes, genes)
    result = de.test(xp.asarray(x), labels, test="student" if equal_var else "welch", reference="b")
    assert type(result["statistic"].data) is type(xp.asarray(x))  # stays on the device
    result = to_host_dataset(result)
    expected = stats.ttest_ind(x[labels == "a"], x[labels == "b"], equal_var=equal_var)
    close(result["statistic"], expected.statistic)
    close(result["pvalue"], expected.pvalue)
    close(result["df"], expected.df)
    close(result["padj"], multipletests(expected.pvalue, method="fdr_bh")[1])
    close(result["mean_group"], x[labels == "a"].mean(axis=0), rtol=1e-13)
    assert np.all(result["n_group"].values == sizes[0])
    assert "contrast" not in result.dims and str(result["contrast"].values) == "a_vs_b"


def test_anova_equals_f_oneway_and_f_classif(xp):
    rng = np.random.default_rng(3)
    labels = rng.choice(["x", "y", "z", "w"], 500, p=[0.1, 0.2, 0.3, 0.4])
    x = rng.normal(0, 1, (500, 40)) + (labels == "x")[:, None] * np.linspace(0, 2, 40)
    result = to_host_dataset(de.test(xp.asarray(x), labels, test="anova"))
    groups = [x[labels == g] for g in ["w", "x", "y", "z"]]
    expected = stats.f_oneway(*groups)
    close(result["statistic"], expected.statistic)
    close(result["pvalue"], expected.pvalue)
    f, p = f_classif(x, labels)
    close(result["statistic"], f)
    close(result["pvalue"], p)
    assert list(result["group"].values) == ["w", "x", "y", "z"]
    np.testing.assert_allclose(result["mean"].sel(group="x"), groups[1].mean(axis=0), rtol=1e-13)


def test_one_vs_rest_every_group_in_one_pass(monkeypatch):
    rng = np.random.default_rng(4)
    labels = rng.choice(["g1", "g2", "g3"], 300)
    x = rng.normal(size=(300, 20)) + (labels == "g2")[:, None]
    calls = []
    original = moments_module.chunk_moments
    monkeypatch.setattr(
        moments_module, "chunk_moments", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    chunked = da.from_array(x, chunks=(50, 20))
    result = de.test(chunked, labels)
    assert len(calls) == 6  # one visit per chunk for all three contrasts
    assert list(result["contrast"].values) == ["g1_vs_rest", "g2_vs_rest", "g3_vs_rest"]
    for group in ["g1", "g2", "g3"]:
        inside = labels == group
        expected = stats.ttest_ind(x[inside], x[~inside], equal_var=False)
        row = result.sel(contrast=f"{group}_vs_rest")
        close(row["statistic"], expected.statistic)
        close(row["pvalue"], expected.pvalue)
        close(row["padj"], multipletests(expected.pvalue, method="fdr_bh")[1])


def test_nan_omit_matches_scipy_omit():
    x, labels = two_groups((30, 40), 25, seed=5)
    rng = np.random.default_rng(6)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 3] = np.nan
    x[labels == "a", 4] = np.nan  # one side empty: untestable
    result = de.test(x, labels, reference="b", nan_policy="omit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about the gene with one side empty
        expected = stats.ttest_ind(
            x[labels == "a"], x[labels == "b"], equal_var=False, nan_policy="omit"
        )
    statistic = np.asarray(expected.statistic, dtype=float)
    pvalue = np.asarray(expected.pvalue, dtype=float)
    close(result["statistic"], statistic)
    close(result["pvalue"], pvalue)
    assert np.isnan(result["padj"].values[3]) and np.isnan(result["padj"].values[4])
    propagated = de.test(x, labels, reference="b")
    has_nan = np.isnan(x).any(axis=0)
    assert np.all(np.isnan(propagated["pvalue"].values[has_nan]))


@settings(max_examples=25, deadline=None)
@given(
    row_chunks=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    gene_chunk=st.integers(1, 13),
)
def test_results_do_not_depend_on_chunking(row_chunks, gene_chunk):
    x, labels = two_groups((37, 45), 13, seed=7)
    rows = []
    left = x.shape[0]
    for size in row_chunks:
        if left == 0:
            break
        rows.append(min(size, left))
        left -= rows[-1]
    if left:
        rows.append(left)
    reference = de.test(x, labels, reference="b")
    chunked = de.test(da.from_array(x, chunks=(tuple(rows), gene_chunk)), labels, reference="b")
    for name in ("statistic", "pvalue", "df", "mean_group", "log2fc"):
        close(chunked[name], reference[name], rtol=1e-12)


def test_large_mean_small_spread_keeps_its_variance():
    rng = np.random.default_rng(8)
    x = 1e4 + rng.normal(0, 1e-2, (4000, 3))
    labels = np.repeat(["a", "b"], 2000)
    x[labels == "a", 0] += 1e-3
    codes = (labels == "b").astype(np.int64)
    # x - 1e4 is exact here (Sterbenz), so the shifted data give an exact-enough reference
    shifted = x - 1e4
    expected_var = np.stack([shifted[codes == g].var(axis=0, ddof=1) for g in (0, 1)])
    expected_t = stats.ttest_ind(shifted[labels == "a"], shifted[labels == "b"]).statistic
    for chunks in [(4000, 3), (7, 3), (333, 1)]:
        delayed = moments_module.group_moments(
            da.from_array(x, chunks=chunks), codes, 2, omit_nan=False
        )
        close(delayed.compute().variance(), expected_var, rtol=1e-9)
        result = de.test(da.from_array(x, chunks=chunks), labels, reference="b", test="student")
        # the t of genes 1 and 2 rests on a mean difference of ~1e-5 between means of 1e4
        close(result["statistic"], expected_t, rtol=1e-5)
    naive = (np.sum(x[codes == 0] ** 2, axis=0) - 2000 * x[codes == 0].mean(axis=0) ** 2) / 1999
    assert np.max(np.abs(naive / expected_var[0] - 1)) > 1e-3  # what one pass of sums would give


def test_tiny_p_values_do_not_underflow():
    rng = np.random.default_rng(9)
    x = rng.normal(0, 1, (400, 4))
    labels = np.repeat(["a", "b"], 200)
    x[labels == "a"] += np.array([2.0, 5.0, 8.0, 10.5])  # p from ~1e-60 to ~1e-290
    result = de.test(x, labels, reference="b")
    expected = stats.ttest_ind(x[labels == "a"], x[labels == "b"], equal_var=False)
    assert 0 < expected.pvalue.min() < 1e-285
    close(result["pvalue"], expected.pvalue, rtol=1e-9)
    assert np.all(result["pvalue"].values > 0)


def test_fold_changes_follow_the_scale():
    rng = np.random.default_rng(10)
    counts = rng.poisson(20, (60, 5)).astype(float)
    counts[:30, 0] *= 4
    labels = np.repeat(["t", "n"], 30)
    t, n = labels == "t", labels == "n"
    log2 = de.test(np.log2(counts + 1), labels, reference="n", scale="log2")
    close(log2["log2fc"], np.log2(counts + 1)[t].mean(0) - np.log2(counts + 1)[n].mean(0))
    raw = de.test(counts, labels, reference="n", scale="counts", pseudocount=1.0)
    close(raw["log2fc"], np.log2((counts[t].mean(0) + 1) / (counts[n].mean(0) + 1)))
    logged = de.test(np.log1p(counts), labels, reference="n", scale="log1p", pseudocount=1.0)
    close(logged["log2fc"], np.log2((counts[t].mean(0) + 1) / (counts[n].mean(0) + 1)))
    assert logged.attrs["log2fc"].startswith("log2((mean(expm1(x))_group + pseudocount)")
    # a gene expressed only on one side gets a bounded fold change, not ±30
    zero = np.zeros((60, 1))
    zero[:30] = 1.0
    bounded = de.test(zero, labels, reference="n", scale="counts")
    assert bounded["log2fc"].values[0] == pytest.approx(1.0)


def test_constant_gene_is_nan_and_not_counted():
    x, labels = two_groups((20, 20), 10, seed=11)
    x[:, 2] = 7.0
    result = de.test(x, labels, reference="b")
    for name in ("statistic", "pvalue", "padj"):
        assert np.isnan(result[name].values[2])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns about the constant gene
        expected = stats.ttest_ind(x[labels == "a"], x[labels == "b"], equal_var=False).pvalue
    keep = np.arange(10) != 2
    close(result["padj"].values[keep], multipletests(expected[keep], method="fdr_bh")[1])


@pytest.mark.parametrize("equal_var", [False, True])
def test_no_variance_in_either_group_but_different_means_equals_scipy(xp, equal_var):
    x, labels = two_groups((12, 10), 8, seed=14)
    x[labels == "a", 2] = 5.0
    x[labels == "b", 2] = 6.0  # 12 × 5.0 against 10 × 6.0
    x[:, 5] = 7.0  # constant: still untestable
    kind = "student" if equal_var else "welch"
    result = to_host_dataset(de.test(xp.asarray(x), labels, test=kind, reference="b"))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = stats.ttest_ind(x[labels == "a"], x[labels == "b"], equal_var=equal_var)
    assert result["statistic"].values[2] == -np.inf and result["pvalue"].values[2] == 0.0
    assert result["df"].values[2] == expected.df[2]  # Welch: 1, as SciPy
    close(result["pvalue"], expected.pvalue)
    keep = np.arange(8) != 5  # the clear difference counts in the FDR's m; the constant does not
    close(result["padj"].values[keep], multipletests(expected.pvalue[keep], method="fdr_bh")[1])


def test_groups_of_one_equal_scipy(xp):
    rng = np.random.default_rng(15)
    labels = np.array(["solo"] + ["b"] * 9 + ["c"] * 7)
    x = rng.normal(0.0, 1.0, (17, 12))
    x[0] += 2.0
    on = xp.asarray(x)
    solo, b, c = (x[labels == g] for g in ("solo", "b", "c"))
    student = to_host_dataset(de.test(on, labels, test="student", groups=["solo", "b"]))
    expected = stats.ttest_ind(solo, b, equal_var=True)
    close(student["statistic"].sel(contrast="solo_vs_b"), expected.statistic)
    close(student["pvalue"].sel(contrast="solo_vs_b"), expected.pvalue)
    close(student["df"].sel(contrast="solo_vs_b"), expected.df)
    anova = to_host_dataset(de.test(on, labels, test="anova"))
    close(anova["statistic"], stats.f_oneway(b, c, solo).statistic)
    close(anova["pvalue"], stats.f_oneway(b, c, solo).pvalue)
    wilcoxon = to_host_dataset(de.test(on, labels, test="wilcoxon", reference="c"))
    expected = stats.mannwhitneyu(solo, c)  # exact here, as cohortex
    close(wilcoxon["statistic"].sel(contrast="solo_vs_c"), expected.statistic)
    close(wilcoxon["pvalue"].sel(contrast="solo_vs_c"), expected.pvalue)
    with pytest.raises(CohortexError, match="Welch's t needs at least 2 samples in every group"):
        de.test(on, labels, test="welch")


def test_groupby_of_a_measurement_is_refused():
    x, labels = two_groups((20, 20), 5, seed=3)
    age = np.random.default_rng(4).normal(60, 10, len(labels))
    with pytest.raises(CohortexError, match=r"'groupby' variable 'labels' holds 40 distinct"):
        de.test(x, age, test="wilcoxon")
    # whole numbers are group codes, and a few fractional ones levels (doses)
    for codes in ((labels == "a") * 1.0, np.where(labels == "a", 0.5, 2.0)):
        expected = stats.ttest_ind(x[codes == codes[0]], x[codes != codes[0]], equal_var=False)
        result = de.test(x, codes, groups=[str(codes[0]), str(codes[codes != codes[0]][0])])
        close(result["pvalue"].isel(contrast=0), expected.pvalue)
    # too many groups too small are named ten at a time
    singles = np.arange(len(labels)).astype(float)
    with pytest.raises(CohortexError, match=r"\(1 sample\) and 30 more\.$"):
        de.test(x, singles, test="welch")


def test_a_value_left_alone_by_omit_equals_scipy_omit():
    x, labels = two_groups((3, 8), 6, seed=16)
    x[labels == "a", 1] = [np.nan, np.nan, 4.0]  # one value left in group a
    x[labels == "a", 2] = [np.nan, 4.0, np.nan]
    x[:, 3] = np.r_[[1.0, np.nan, np.nan], [np.nan] * 7, [2.0]]  # 1 against 1: no variance
    pvalues = {}
    for equal_var in (True, False):
        kind = "student" if equal_var else "welch"
        result = de.test(x, labels, test=kind, reference="b", nan_policy="omit")
        pvalues[kind] = result["pvalue"].values
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = stats.ttest_ind(
                x[labels == "a"], x[labels == "b"], equal_var=equal_var, nan_policy="omit"
            )
        close(result["statistic"], np.asarray(expected.statistic, dtype=float))
        close(result["pvalue"], np.asarray(expected.pvalue, dtype=float))
    # one value against eight: Student's t has a p-value, Welch's is NaN; 1 against 1: neither
    assert (
        np.isfinite(pvalues["student"][[1, 2]]).all() and np.isnan(pvalues["welch"][[1, 2]]).all()
    )
    assert np.isnan(pvalues["student"][3]) and np.isnan(pvalues["welch"][3])


def test_on_a_store_with_missing_labels(tmp_path):
    ds = simulate(tmp_path / "s.zarr", 200, 50, n_de=5, seed=1, chunks=(32, 16))
    condition = ds["condition"].values.copy()
    samples = pd.DataFrame({"condition": condition}, index=ds["sample"].values)
    samples.iloc[[3, 9, 27], 0] = None
    x = ds["expression"].values
    frame = pd.DataFrame(x, index=ds["sample"].values, columns=ds["gene"].values)
    create_cohort(tmp_path / "m.zarr", frame, samples=samples, chunks=(32, 16))
    x = x.astype(np.float64)  # the reference sees the same float32 values, summed in float64
    with pytest.warns(CohortexWarning, match="3 samples have no 'condition' label and are left"):
        result = de.test(tmp_path / "m.zarr", "condition", reference="normal")
    keep = np.ones(200, bool)
    keep[[3, 9, 27]] = False
    tumor = keep & (condition == "tumor")
    normal = keep & (condition == "normal")
    expected = stats.ttest_ind(x[tumor], x[normal], equal_var=False)
    close(result["statistic"], expected.statistic, rtol=1e-9)
    assert list(result["gene"].values) == list(ds["gene"].values)
    assert result.attrs["groupby"] == "condition" and result.attrs["reference"] == "normal"
    with pytest.warns(CohortexWarning, match="3 samples have no 'condition' label"):
        opened = de.test(open_cohort(tmp_path / "m.zarr"), "condition", reference="normal")
    np.testing.assert_array_equal(opened["pvalue"].values, result["pvalue"].values)
    is_de = ds["is_de"].values
    assert np.all(result["padj"].values[is_de] < 0.05)
    close(result["log2fc"].values[is_de], ds["true_log2fc"].values[is_de], rtol=0.5)


def test_select_k_best_matches_scikit_learn():
    rng = np.random.default_rng(12)
    labels = rng.choice(["a", "b", "c"], 300)
    x = rng.normal(size=(300, 50)) + (labels == "a")[:, None] * np.linspace(0, 1, 50)
    best = de.select_k_best(x, labels, k=10)
    selector = SelectKBest(f_classif, k=10).fit(x, labels)
    expected = np.argsort(-selector.scores_, kind="stable")[:10]
    assert list(best["gene"].values) == [f"G{i + 1}" for i in expected]
    close(best["score"], selector.scores_[expected])
    close(best["pvalue"], selector.pvalues_[expected])


def test_top():
    x, labels = two_groups((30, 30), 40, seed=13, shift=0.0)
    x[labels == "a", :5] += np.arange(1, 6) * 0.8
    result = de.test(x, labels, reference="b")
    table = de.top(result, 3)
    assert list(table.columns[:2]) == ["gene", "padj"]
    assert list(table["gene"]) == ["G5", "G4", "G3"]
    by_fc = de.top(result, 2, by="log2fc")
    assert list(by_fc["gene"]) == ["G5", "G4"]
    multi = de.top(de.test(x, labels), 2)
    assert list(multi["contrast"]) == ["a_vs_b", "a_vs_b", "b_vs_a", "b_vs_a"]
    with pytest.raises(
        CohortexError, match="'by' parameter of top\\(\\) must name a result variable; got 'q'"
    ):
        de.top(result, by="q")


def test_decide_on_a_test_result():
    x, labels = two_groups((30, 30), 40, seed=17, shift=0.0)
    x[labels == "a", :6] += 3.0
    x[labels == "a", 6:9] -= 3.0
    result = de.test(x, labels)  # one-vs-rest: two contrasts
    calls = de.decide(result, p_value=0.01)
    padj = result["padj"].values
    expected = np.where(padj < 0.01, np.sign(result["log2fc"].values), 0)
    np.testing.assert_array_equal(calls.values, expected)
    assert (calls.sel(contrast="a_vs_b").values[:9] == [1] * 6 + [-1] * 3).all()


@pytest.mark.parametrize("alternative", ["greater", "less"])
@pytest.mark.parametrize("test", ["welch", "student", "wilcoxon"])
def test_one_sided_alternatives_equal_scipy(xp, test, alternative):
    x, labels = tied_counts(seed=24) if test == "wilcoxon" else two_groups(seed=25)
    result = to_host_dataset(
        de.test(xp.asarray(x), labels, test=test, reference="b", alternative=alternative)
    )
    a, b = x[labels == "a"], x[labels == "b"]
    if test == "wilcoxon":
        expected = stats.mannwhitneyu(a, b, alternative=alternative, method="asymptotic")
    else:
        expected = stats.ttest_ind(a, b, equal_var=test == "student", alternative=alternative)
    close(result["pvalue"], expected.pvalue)
    assert result.attrs["alternative"] == alternative


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_exact_wilcoxon_alternatives_equal_scipy(alternative):
    x, labels = two_groups((6, 7), 12, seed=26)  # small and untied: exact p-values
    result = de.test(x, labels, test="wilcoxon", reference="b", alternative=alternative)
    expected = stats.mannwhitneyu(
        x[labels == "a"], x[labels == "b"], alternative=alternative, method="exact"
    )
    close(result["pvalue"], expected.pvalue)


def test_paired_t_equals_scipy(tmp_path):
    rng = np.random.default_rng(27)
    n_pairs, genes = 14, 30
    patient = rng.normal(0, 2, (n_pairs, genes))  # large between-patient spread
    normal = 5 + patient + rng.normal(0, 0.5, (n_pairs, genes))
    tumour = normal + np.linspace(-1, 1, genes) + rng.normal(0, 0.5, (n_pairs, genes))
    x = np.concatenate([tumour, normal, rng.normal(5, 1, (1, genes))])  # one unpaired sample
    condition = np.array(["tumour"] * n_pairs + ["normal"] * n_pairs + ["normal"])
    pair = np.array([f"P{i}" for i in range(n_pairs)] * 2 + ["P99"])
    order = rng.permutation(len(condition))
    x, condition, pair = x[order], condition[order], pair[order]
    x[3, 4] = np.nan
    samples = pd.DataFrame({"condition": condition, "patient": pair})
    create_cohort(tmp_path / "p.zarr", x, samples=samples, chunks=(6, 16))
    with pytest.warns(CohortexWarning, match="1 samples have no partner in the other group"):
        result = de.test(
            tmp_path / "p.zarr",
            "condition",
            reference="normal",
            paired_by="patient",
            test="student",
            nan_policy="omit",
        )
    stored = x.astype(np.float32).astype(np.float64)
    first = [np.flatnonzero((condition == "tumour") & (pair == f"P{i}"))[0] for i in range(n_pairs)]
    second = [
        np.flatnonzero((condition == "normal") & (pair == f"P{i}"))[0] for i in range(n_pairs)
    ]
    expected = stats.ttest_rel(stored[first], stored[second], nan_policy="omit")
    close(result["statistic"], np.asarray(expected.statistic, float), rtol=1e-9)
    close(result["pvalue"], np.asarray(expected.pvalue, float), rtol=1e-9)
    assert result.attrs["test"] == "paired t" and result.attrs["paired_by"] == "patient"
    unpaired = de.test(tmp_path / "p.zarr", "condition", reference="normal", test="student")
    assert np.sum(result["padj"].values < 0.05) > np.sum(unpaired["padj"].values < 0.05)
    greater = de.test(
        stored[first + second],
        ["t"] * n_pairs + ["n"] * n_pairs,
        reference="n",
        paired_by=list(range(n_pairs)) * 2,
        alternative="greater",
    )
    expected = stats.ttest_rel(stored[first], stored[second], alternative="greater")
    keep = ~np.isnan(expected.pvalue)
    close(greater["pvalue"].values[keep], expected.pvalue[keep], rtol=1e-9)
    with pytest.raises(CohortexError, match="not ANOVA"):
        de.test(x, condition, paired_by=pair, test="anova")
    with pytest.raises(CohortexError, match="has several in one group"):
        de.test(x, condition, paired_by=np.zeros(len(pair)))


@pytest.mark.parametrize("n_pairs", [6, 11, 20, 60])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_paired_wilcoxon_equals_scipy(n_pairs, alternative):
    """Every branch of scipy's method="auto": exact (≤ 50 pairs, no ties or zeros), the exact
    permutation test (ties or zeros, ≤ 13 pairs), the normal approximation."""
    rng = np.random.default_rng(28 + n_pairs)
    genes = 60
    normal = rng.normal(0, 1, (n_pairs, genes))
    tumour = normal + rng.normal(0.4, 1, (n_pairs, genes))
    normal[:, :20], tumour[:, :20] = np.round(normal[:, :20]), np.round(tumour[:, :20])  # ties
    tumour[:2, 20:30] = normal[:2, 20:30]  # zero differences
    x = np.concatenate([tumour, normal])
    labels = ["tumour"] * n_pairs + ["normal"] * n_pairs
    pairs = list(range(n_pairs)) * 2
    result = de.test(
        x, labels, reference="normal", test="wilcoxon", paired_by=pairs, alternative=alternative
    )
    expected = [
        stats.wilcoxon(tumour[:, j], normal[:, j], alternative=alternative) for j in range(genes)
    ]
    close(result["pvalue"].values.ravel(), [e.pvalue for e in expected], rtol=1e-12)
    w_plus = [np.sum(stats.rankdata(np.abs(d[d != 0]))[d[d != 0] > 0]) for d in (tumour - normal).T]
    close(result["statistic"].values.ravel(), w_plus)
    assert result.attrs["test"] == "wilcoxon signed-rank"


def test_paired_wilcoxon_missing_values():
    rng = np.random.default_rng(31)
    n_pairs, genes = 16, 12
    normal = rng.normal(0, 1, (n_pairs, genes))
    tumour = normal + rng.normal(0.5, 1, (n_pairs, genes))
    tumour[3, :4] = np.nan
    normal[5, 2:6] = np.nan
    x = np.concatenate([tumour, normal])
    labels, pairs = ["t"] * n_pairs + ["n"] * n_pairs, list(range(n_pairs)) * 2
    for policy in ("omit", "propagate"):
        result = de.test(
            x, labels, reference="n", test="wilcoxon", paired_by=pairs, nan_policy=policy
        )
        expected = stats.wilcoxon(tumour, normal, nan_policy=policy, axis=0)
        close(result["pvalue"].values.ravel(), expected.pvalue, rtol=1e-12)
    used = de.test(x, labels, reference="n", test="wilcoxon", paired_by=pairs, nan_policy="omit")
    assert used["n_group"].values.ravel().tolist() == [15, 15, 14, 14, 15, 15] + [16] * 6
    # propagated: the pairs compared, as the paired t-test reports them
    kept = de.test(x, labels, reference="n", test="wilcoxon", paired_by=pairs)
    paired_t = de.test(x, labels, reference="n", paired_by=pairs)
    assert kept["n_group"].values.ravel().tolist() == [16] * 12
    close(kept["n_group"], paired_t["n_group"])


@pytest.mark.parametrize("test", ["wilcoxon", "student"])
def test_paired_tests_from_a_store_in_tiles(tmp_path, monkeypatch, test):
    """Pairs spread over row tiles, columns of tiles split into tasks and blocks of genes."""
    import cohortex.de._pairs as pairs_module

    rng = np.random.default_rng(33)
    n_pairs, genes = 40, 23
    normal = rng.normal(5, 1, (n_pairs, genes))
    tumour = normal + rng.normal(np.linspace(-1, 1, genes), 1, (n_pairs, genes))
    x = np.concatenate([tumour, normal])
    condition = np.array(["t"] * n_pairs + ["n"] * n_pairs)
    patient = np.array([f"P{i}" for i in range(n_pairs)] * 2)
    order = rng.permutation(2 * n_pairs)
    x, condition, patient = x[order], condition[order], patient[order]
    samples = pd.DataFrame({"condition": condition, "patient": patient})
    create_cohort(tmp_path / "p.zarr", x, samples=samples, chunks=(7, 10))
    monkeypatch.setattr(pairs_module, "TASK_GENES", 4)  # tasks of 4, 4, 2 genes per column
    monkeypatch.setattr(pairs_module, "VALUES_PER_BLOCK", 3 * n_pairs)  # blocks of 3 genes
    result = de.test(
        tmp_path / "p.zarr", "condition", reference="n", paired_by="patient", test=test
    )
    stored = x.astype(np.float32).astype(np.float64)
    first = [np.flatnonzero((condition == "t") & (patient == f"P{i}"))[0] for i in range(n_pairs)]
    second = [np.flatnonzero((condition == "n") & (patient == f"P{i}"))[0] for i in range(n_pairs)]
    if test == "wilcoxon":
        expected = stats.wilcoxon(stored[first], stored[second], axis=0)
    else:
        expected = stats.ttest_rel(stored[first], stored[second])
    close(result["pvalue"].values.ravel(), expected.pvalue, rtol=1e-9)
    close(result["mean_group"].values.ravel(), stored[first].mean(axis=0))
    close(result["mean_reference"].values.ravel(), stored[second].mean(axis=0))


def test_bad_input(tmp_path):
    x, labels = two_groups((5, 5), 4)
    ds = xr.Dataset(
        {
            "expression": (("sample", "gene"), x),
            "condition": ("sample", labels),
            "batch": ("sample", np.repeat(["b1", "b2"], 5)),
        }
    )
    with pytest.raises(
        CohortexError,
        match="'groupby' parameter of test\\(\\) must name a sample "
        "variable; got 'cond'. Sample variables: condition, batch",
    ):
        de.test(ds, "cond")
    one = labels.copy()
    one[labels == "a"] = ["a", "c", "c", "c", "c"]
    with pytest.raises(
        CohortexError, match="at least 2 samples in every group .*; too small: 'a' "
    ):
        de.test(x, one)
    with pytest.raises(CohortexError, match="ANOVA needs more samples \\(2\\) than groups \\(2\\)"):
        de.test(x[:2], ["a", "b"], test="anova")
    with pytest.raises(
        CohortexError,
        match="'reference' parameter must be 'rest' or one of the groups \\(a, b\\); got 'c'",
    ):
        de.test(x, labels, reference="c")
    y = x.copy()
    y[2, 1] = np.inf
    for kind in ("welch", "wilcoxon"):
        with pytest.raises(CohortexError, match="holds 1 infinite values \\(first in gene 'G2'\\)"):
            de.test(y, labels, test=kind)
    with pytest.raises(
        CohortexError,
        match="'test' parameter of test\\(\\) must be one of "
        "'welch', 'student', 'anova', 'wilcoxon', 'kruskal'; got 'wilcox'",
    ):
        de.test(x, labels, test="wilcox")
    with pytest.raises(CohortexError, match="at least 2 groups; 'labels' has 1: a"):
        de.test(x[labels == "a"], labels[labels == "a"])
    with pytest.raises(CohortexError, match="must be the sample labels"):
        de.test(x, "condition")
    with pytest.raises(CohortexError, match="one entry per sample \\(10\\); got shape \\(9,\\)"):
        de.test(x, labels[:9])
    with pytest.raises(CohortexError, match="'groups' parameter names groups with no samples: z"):
        de.test(x, labels, groups=["a", "z"])


# ------------------------------------------------------------------------------- Wilcoxon


def test_wilcoxon_equals_scipy_asymptotic_with_heavy_ties(xp):
    x, labels = tied_counts()
    assert (x == 0).mean() > 0.4
    result = to_host_dataset(de.test(xp.asarray(x), labels, test="wilcoxon", reference="b"))
    expected = stats.mannwhitneyu(
        x[labels == "a"], x[labels == "b"], method="asymptotic", use_continuity=True
    )
    close(result["statistic"], expected.statistic)
    close(result["pvalue"], expected.pvalue)
    close(result["auroc"], expected.statistic / (60 * 90))
    close(result["padj"], multipletests(expected.pvalue, method="fdr_bh")[1])


def test_wilcoxon_exact_for_small_untied_groups():
    rng = np.random.default_rng(21)
    for n in [(3, 5), (8, 8), (2, 40)]:
        x = rng.normal(size=(sum(n), 12))
        x[: n[0], :3] += 2.0
        labels = np.array(["a"] * n[0] + ["b"] * n[1])
        result = de.test(x, labels, test="wilcoxon", reference="b")
        expected = stats.mannwhitneyu(x[labels == "a"], x[labels == "b"], method="exact")
        close(result["pvalue"], expected.pvalue)
        # scipy's "auto" makes the same choice
        auto = stats.mannwhitneyu(x[labels == "a"], x[labels == "b"])
        close(result["pvalue"], auto.pvalue)


def test_wilcoxon_one_vs_rest_ranks_each_gene_once(monkeypatch):
    import cohortex.de._wilcoxon as de_module
    import cohortex.stats._cpu.rank_sums as ranksum_module

    rng = np.random.default_rng(22)
    labels = rng.choice(["g1", "g2", "g3", "g4"], 200)
    x = rng.poisson(3, (200, 30)).astype(float) + (labels == "g3")[:, None] * 2
    calls = []
    original = ranksum_module.rank_sum_block

    def counting(block, codes, group_of, reference_of, n_levels, **kwargs):
        calls.append((block.shape, [int(r) for r in reference_of]))
        return original(block, codes, group_of, reference_of, n_levels, **kwargs)

    monkeypatch.setattr(ranksum_module, "rank_sum_block", counting)
    # float64 costs 16 bytes a value (block + transposed copy): room for 15 genes of 200
    # samples → blocks of 8 genes (a power of two)
    monkeypatch.setattr(de_module, "RANK_MEMORY_BUDGET", 200 * 16 * 15)
    result = de.test(x, labels, test="wilcoxon")
    # four gene blocks, one call each for all four contrasts, every one of them against the rest
    assert sorted(calls) == [((200, 6), [-1] * 4)] + [((200, 8), [-1] * 4)] * 3
    for group in ["g1", "g2", "g3", "g4"]:
        inside = labels == group
        expected = stats.mannwhitneyu(x[inside], x[~inside], method="asymptotic")
        row = result.sel(contrast=f"{group}_vs_rest")
        close(row["statistic"], expected.statistic)
        close(row["pvalue"], expected.pvalue)


def test_wilcoxon_nan_policies():
    x, labels = tied_counts(seed=23)
    rng = np.random.default_rng(24)
    x[rng.random(x.shape) < 0.05] = np.nan
    omitted = de.test(x, labels, test="wilcoxon", reference="b", nan_policy="omit")
    a, b = x[labels == "a"], x[labels == "b"]
    for gene in range(x.shape[1]):
        expected = stats.mannwhitneyu(
            a[:, gene], b[:, gene], method="asymptotic", nan_policy="omit"
        )
        close(omitted["pvalue"].values[gene], expected.pvalue)
        close(omitted["statistic"].values[gene], expected.statistic)
    propagated = de.test(x, labels, test="wilcoxon", reference="b")
    has_nan = np.isnan(x).any(axis=0)
    assert np.all(np.isnan(propagated["pvalue"].values[has_nan]))
    assert not np.any(np.isnan(propagated["pvalue"].values[~has_nan]))
    # a NaN makes its own side's mean NaN (numpy's mean), not the other side's; the counts
    # are the samples compared, as the t-tests report them
    close(propagated["mean_group"], a.mean(axis=0))
    close(propagated["mean_reference"], b.mean(axis=0))
    assert np.all(propagated["n_group"].values == len(a))
    assert np.all(propagated["n_reference"].values == len(b))
    welch = de.test(x, labels, reference="b")
    for name in ("mean_group", "mean_reference", "n_group", "n_reference"):
        close(propagated[name], welch[name])


def test_wilcoxon_from_a_store_in_gene_blocks(tmp_path, monkeypatch):
    import cohortex.de._wilcoxon as de_module

    ds = simulate(
        tmp_path / "nb.zarr",
        120,
        70,
        n_de=7,
        distribution="negbinom",
        library_size=5e4,
        seed=25,
        chunks=(32, 16),
    )
    monkeypatch.setattr(de_module, "RANK_MEMORY_BUDGET", 120 * 8 * 16)  # 16-gene float32 blocks
    result = de.test(tmp_path / "nb.zarr", "condition", test="wilcoxon", reference="normal")
    x = ds["expression"].values.astype(np.float64)
    tumor = ds["condition"].values == "tumor"
    expected = stats.mannwhitneyu(x[tumor], x[~tumor], method="asymptotic")
    close(result["pvalue"], expected.pvalue)
    close(result["log2fc"], np.log2((x[tumor].mean(0) + 1) / (x[~tumor].mean(0) + 1)))
    assert result.attrs["test"] == "wilcoxon"


def test_top_orders_underflowed_p_values_by_the_statistic():
    """Thousands of samples: every real DE gene has p = 0; the larger |t| ranks first."""
    rng = np.random.default_rng(70)
    x = rng.normal(size=(6000, 8))
    labels = np.repeat(["a", "b"], 3000)
    x[:3000, :5] += np.array([2.0, 3.0, 2.5, 5.0, 4.0])[None, :]
    result = de.test(x, labels, reference="b")
    assert (result["pvalue"].values.ravel()[:5] == 0).all()  # they do underflow
    best = de.top(result, 5)
    assert best["gene"].tolist() == ["G4", "G5", "G2", "G3", "G1"]
    assert (np.diff(np.abs(best["statistic"].to_numpy())) < 0).all()


def test_wilcoxon_without_the_tie_correction():
    """scanpy's default: the normal approximation with the untied variance n1 n2 (n + 1) / 12."""
    x, labels = tied_counts(seed=29)
    corrected = de.test(x, labels, test="wilcoxon", reference="b")
    plain = de.test(x, labels, test="wilcoxon", reference="b", tie_correct=False)
    a, b = x[labels == "a"], x[labels == "b"]
    n1, n2 = len(a), len(b)
    u = stats.mannwhitneyu(a, b, method="asymptotic").statistic  # U of group a
    big = np.maximum(u, n1 * n2 - u)
    z = (big - n1 * n2 / 2 - 0.5) / np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    close(plain["pvalue"], np.minimum(2 * stats.norm.sf(z), 1.0), rtol=1e-10)
    tied = np.array([len(np.unique(col)) < len(col) for col in x.T])
    assert (plain["pvalue"].values.ravel()[tied] >= corrected["pvalue"].values.ravel()[tied]).all()


@pytest.mark.parametrize("kind", ["welch", "student", "wilcoxon", "anova", "fit", "greater"])
def test_log10_pvalue_stays_finite_where_p_underflows(kind):
    """6,000 samples: the DE genes' p underflow to 0, their log10_pvalue does not. Where p is a
    normal number it is log10(p); where it underflowed, the order follows the statistic."""
    rng = np.random.default_rng(71)
    x = rng.normal(size=(6000, 10))
    labels = np.repeat(["a", "b"], 3000)
    x[:3000, :5] += np.array([2.0, 3.0, 2.5, 5.0, 4.0])[None, :]
    x[:3000, 5] += 0.15  # a gene with an ordinary small p
    if kind == "fit":
        cohort = xr.Dataset(
            {"expression": (("sample", "gene"), x), "condition": ("sample", labels)},
            coords={"gene": [f"G{i + 1}" for i in range(10)]},
        )
        result = de.fit(cohort, "~ condition", moderate=True).isel(contrast=-1)
    elif kind == "greater":
        result = de.test(x, labels, reference="b", alternative="greater")
    else:
        result = de.test(x, labels, test=kind, reference="b")
    p = np.asarray(result["pvalue"]).ravel()
    log10_p = np.asarray(result["log10_pvalue"]).ravel()
    assert (p[:5] == 0).all() and np.isfinite(log10_p).all()
    normal = p > 1e-300
    np.testing.assert_allclose(log10_p[normal], np.log10(p[normal]), rtol=1e-10)
    assert (log10_p[:5] < -300).all()
    strength = np.abs(np.asarray(result["statistic"]).ravel()[:5])
    if kind != "anova":  # F is not signed; its order is that of F itself
        assert (np.argsort(log10_p[:5]) == np.argsort(-strength)).all()
    assert de.top(result, 5)["gene"].tolist() == ["G4", "G5", "G2", "G3", "G1"]


@pytest.mark.parametrize("kind", ["welch", "wilcoxon"])
def test_group_sizes_are_whole_numbers_and_mean_expression_is_aveexpr(kind):
    rng = np.random.default_rng(73)
    x = rng.normal(size=(50, 6))
    x[3, 2] = np.nan
    labels = np.repeat(["a", "b", "c"], [20, 20, 10])
    result = de.test(x, labels, test=kind, reference="rest", nan_policy="omit")
    assert result["n_group"].dtype == np.int64 and result["n_reference"].dtype == np.int64
    assert result["n_group"].sel(contrast="a_vs_rest").values.tolist() == [20, 20, 19, 20, 20, 20]
    # every contrast against the rest covers all samples: limma's AveExpr of the gene
    for contrast in result["contrast"].values:
        np.testing.assert_allclose(
            result["mean_expression"].sel(contrast=contrast), np.nanmean(x, axis=0), rtol=1e-12
        )


def test_top_keeps_what_a_single_comparison_compared():
    rng = np.random.default_rng(74)
    x = rng.normal(size=(30, 5))
    result = de.test(x, np.repeat(["t", "n"], 15), reference="n")
    table = de.top(result, 3)
    assert list(table.columns[:2]) == ["gene", "padj"]
    assert list(table.columns[-3:]) == ["contrast", "group", "reference"]
    assert set(table["contrast"]) == {"t_vs_n"} and set(table["reference"]) == {"n"}
