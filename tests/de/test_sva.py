"""Surrogate variable analysis against sva's (fixtures from tests/fixtures/make_sva_fixtures.R,
sva 3.46): the iteratively reweighted, two-step and supervised methods on the bladder cancer
cohort (57 arrays, 1000 probes), with a null design of its own and with vfilter; svaseq on
counts with a constant gene; num.sv's permutation statistic and count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from cohortex import CohortexError, CohortexWarning, de
from cohortex.de import _sva as sva_module

from conftest import fixture_cohort

FIXTURES = Path(__file__).parents[1] / "fixtures"
SVA = FIXTURES / "sva"
CONTROLS = (np.arange(1, 1001) % 3 == 0).astype(np.float64)  # the R script's controls
CASES = {
    "bladder_irw": {"design": "~ cancer", "n_sv": 2},
    "bladder_irw_b1": {"design": "~ cancer", "n_sv": 3, "iterations": 1},
    "bladder_two_step": {"design": "~ cancer", "n_sv": 3, "method": "two-step"},
    "bladder_null": {"design": "~ cancer + batch", "null": "~ batch", "n_sv": 2},
    "bladder_supervised": {"design": "~ cancer", "n_sv": 2, "controls": CONTROLS},
    "bladder_vfilter": {"design": "~ cancer", "n_sv": 2, "genes": 400},
}


def _bladder(chunks=(20, 300)):
    cohort = fixture_cohort(
        FIXTURES / "limma" / "bladder_expression.csv",
        FIXTURES / "limma" / "bladder_samples.csv",
        scale="log2",
        chunks=chunks,
    )
    return cohort.assign(batch=cohort["batch"].astype(str))


def _counts():
    return fixture_cohort(
        SVA / "counts.csv", SVA / "counts_samples.csv", scale="counts", chunks=(10, 200)
    )


def _check(result, case):
    expected = pd.read_csv(SVA / f"{case}_sv.csv", index_col=0)
    genes = pd.read_csv(SVA / f"{case}_genes.csv")
    assert result.attrs["surrogates"] == list(expected.columns)
    assert result.attrs["n_sv"] == expected.shape[1]
    np.testing.assert_array_equal(result["sample"].values, expected.index)
    for name in expected.columns:
        ours, theirs = result[name].values, expected[name].to_numpy()
        sign = np.sign(ours @ theirs)  # an SVD's sign is arbitrary
        np.testing.assert_allclose(sign * ours, theirs, rtol=0, atol=1e-8, err_msg=name)
        assert ours[np.argmax(np.abs(ours))] > 0  # ours: the largest entry positive
    np.testing.assert_array_equal(result["gene"].values, genes["gene"])
    for name in genes.columns[1:]:
        np.testing.assert_allclose(
            result[name].values, genes[name].to_numpy(dtype=float), rtol=0, atol=1e-8
        )
    assert set(result.data_vars) == set(expected.columns) | set(genes.columns[1:])


@pytest.mark.parametrize("case", list(CASES))
def test_sva_equals_r(case):
    options = dict(CASES[case])
    result = de.sva(_bladder(), options.pop("design"), **options)
    _check(result, case)
    assert result.attrs["method"] == options.get(
        "method", "supervised" if "controls" in options else "irw"
    )
    assert result.attrs["n_sv_method"] == ""
    assert result.attrs["n_genes"] == (400 if case == "bladder_vfilter" else 1000)


@pytest.mark.parametrize("case", [c for c in CASES if c != "bladder_two_step"])
def test_gene_side_equals_r(case, monkeypatch):
    """The leading vectors from genes × genes Gram matrices (the side taken where fewer genes
    than samples are used): the same surrogate variables and probabilities as R's."""
    monkeypatch.setattr(sva_module, "_GENE_SIDE", True)
    monkeypatch.setattr(sva_module, "_DENSE_EIGEN", 300)  # the 1,000 genes' by Lanczos
    options = dict(CASES[case])
    _check(de.sva(_bladder(), options.pop("design"), **options), case)


def test_gene_side_is_taken_for_more_samples_than_genes(monkeypatch):
    rng = np.random.default_rng(5)
    n, m = 150, 60
    hidden = rng.normal(size=n)
    condition = np.repeat(["a", "b"], n // 2)
    x = rng.normal(size=(n, m)) + np.outer(hidden, rng.normal(size=m))
    x[condition == "b", :10] += 1.0
    cohort = xr.Dataset(
        {"expression": (("sample", "gene"), 5.0 + x), "condition": ("sample", condition)}
    )
    calls = []
    original = sva_module._Problem.gene_grams
    monkeypatch.setattr(
        sva_module._Problem, "gene_grams", lambda self: calls.append(1) or original(self)
    )
    genes = de.sva(cohort, "~ condition", n_sv=1)
    assert calls  # the gene side
    monkeypatch.setattr(sva_module, "_GENE_SIDE", False)
    samples = de.sva(cohort, "~ condition", n_sv=1)
    for name in ("sv1", "pprob_gam", "pprob_b"):
        np.testing.assert_allclose(genes[name].values, samples[name].values, atol=1e-10)
    assert abs(np.corrcoef(genes["sv1"].values, hidden)[0, 1]) > 0.9


def test_svaseq_on_counts_leaves_out_a_constant_gene():
    result = de.sva(_counts(), "~ group", n_sv=1)
    _check(result, "counts_irw")
    assert result.attrs["transform"] == "log(x + 1)"
    assert result.attrs["n_genes_constant"] == 1
    assert result.attrs["n_genes"] == 599


def test_supervised_controls_by_gene_id():
    cohort = _bladder()
    named = cohort["gene"].values[CONTROLS > 0]
    by_id = de.sva(cohort, "~ cancer", n_sv=2, controls=list(named))
    _check(by_id, "bladder_supervised")


def test_num_sv_equals_r_count_and_shares():
    """num.sv's "be": the variance shares are R's, and with the same seed so are the
    permutations (R's sample() of each gene's residuals in turn) and the count (6)."""
    assert de.num_sv(_bladder(), "~ cancer") == 6
    problem = sva_module._Problem.build(_bladder(), "~ cancer", None, None, "cpu", "num_sv")
    shares, p_values, null = problem.buja_eyuboglu(np.ones(1000), 20, 1)
    expected = pd.read_csv(SVA / "be_shares.csv")["share"].to_numpy()
    np.testing.assert_allclose(shares, expected, rtol=1e-10)
    assert np.all(np.diff(p_values) >= 0)
    np.testing.assert_array_equal(p_values[:6], 0.0)
    assert p_values[6] > 0.1
    # R's permutations after set.seed(1): every null share of num.sv's loop
    r_null = pd.read_csv(SVA / "be_null.csv").to_numpy()
    np.testing.assert_allclose(null, r_null, rtol=1e-9)


def test_num_sv_permutes_constant_genes_as_r():
    """Three constant genes (first, after the 500th, last), which cohortex leaves out and
    num.sv permutes too: the draws they take are skipped, so every later gene's permutation
    and every null share stays R's."""
    cohort = _bladder()
    values = cohort["expression"].values
    n = values.shape[0]
    with_constants = np.column_stack(
        [np.full(n, 5.0), values[:, :500], np.full(n, 3.0), values[:, 500:], np.full(n, 1.0)]
    )
    constant = xr.Dataset(
        {"expression": (("sample", "gene"), with_constants), "cancer": cohort["cancer"]},
        coords={"sample": cohort["sample"].values},
    )
    problem = sva_module._Problem.build(constant, "~ cancer", None, None, "cpu", "num_sv")
    assert problem.n_genes == 1000 and problem.n_constant == 3
    _, _, null = problem.buja_eyuboglu(np.ones(1000), 20, 1)
    r_null = pd.read_csv(SVA / "be_null_constant.csv").to_numpy()
    np.testing.assert_allclose(null, r_null, rtol=1e-9)


def test_estimated_count_is_recorded_and_used():
    result = de.sva(_bladder(), "~ cancer", iterations=1)
    assert result.attrs["n_sv"] == 6
    assert result.attrs["n_sv_method"] == "be"
    assert result.attrs["surrogates"] == [f"sv{i}" for i in range(1, 7)]


def test_permutations_do_not_depend_on_the_blocks(monkeypatch):
    """R's stream is drawn gene by gene as the blocks come: a cohort read in blocks of 256
    genes permutes every gene as one read in a single block."""
    whole = sva_module._Problem.build(_bladder(), "~ cancer", None, None, "cpu", "num_sv")
    monkeypatch.setattr(sva_module, "_BLOCK_BYTES", 57 * 8 * 256)
    split = sva_module._Problem.build(_bladder(), "~ cancer", None, None, "cpu", "num_sv")
    assert len(whole.x.chunks[1]) == 1 and len(split.x.chunks[1]) == 4
    first = whole.buja_eyuboglu(np.ones(1000), 5, 7)
    second = split.buja_eyuboglu(np.ones(1000), 5, 7)
    np.testing.assert_allclose(first[2], second[2], rtol=1e-12)
    np.testing.assert_allclose(first[0], second[0], rtol=1e-12)
    np.testing.assert_array_equal(first[1], second[1])
    other_seed = whole.buja_eyuboglu(np.ones(1000), 5, 8)
    np.testing.assert_array_equal(other_seed[1][:6], first[1][:6])  # still clear cut


def test_surrogates_join_the_design_as_in_limma():
    """sva's vignette: the surrogate variables added to limma's design (lmFit, eBayes)."""
    cohort = _bladder(chunks=None)
    result = de.sva(cohort, "~ cancer", n_sv=2)
    fit = de.fit(cohort.merge(result[result.attrs["surrogates"]]), "~ cancer + sv1 + sv2")
    expected = pd.read_csv(SVA / "bladder_irw_limma.csv")
    for contrast, column in (("cancer[T.Cancer]", "t_cancer"), ("cancer[T.Normal]", "t_normal")):
        np.testing.assert_allclose(
            fit["statistic"].sel(contrast=contrast).values, expected[column], rtol=1e-8
        )
    np.testing.assert_allclose(
        fit["pvalue"].sel(contrast="cancer[T.Cancer]").values, expected["p_cancer"], rtol=1e-7
    )


def test_no_surrogate_variable_warns():
    with pytest.warns(CohortexWarning, match="no significant surrogate variable"):
        result = de.sva(_bladder(), "~ cancer", n_sv=0)
    assert result.attrs["n_sv"] == 0
    assert result.attrs["surrogates"] == []


def test_bad_input_is_refused():
    cohort = _bladder(chunks=None)
    with pytest.raises(CohortexError, match="'method' parameter of sva"):
        de.sva(cohort, "~ cancer", method="leek")
    with pytest.raises(CohortexError, match="needs the 'controls'"):
        de.sva(cohort, "~ cancer", method="supervised")
    with pytest.raises(CohortexError, match="either 'controls' or 'genes'"):
        de.sva(cohort, "~ cancer", controls=CONTROLS, genes=200)
    with pytest.raises(CohortexError, match="'genes' parameter of sva.*between 100"):
        de.sva(cohort, "~ cancer", genes=50)
    with pytest.raises(CohortexError, match="'n_sv' parameter of sva.*between 0 and 54"):
        de.sva(cohort, "~ cancer", n_sv=55)
    with pytest.raises(CohortexError, match="not of full rank"):
        de.sva(cohort.assign(copy=cohort["cancer"]), "~ cancer + copy")
    with pytest.raises(CohortexError, match="None of sva\\(\\)'s 'controls'"):
        de.sva(cohort, "~ cancer", n_sv=1, controls=["no-such-gene"])
    holes = cohort.copy(deep=True)
    holes["expression"][3, 5] = np.nan
    with pytest.raises(CohortexError, match="needs finite values"):
        de.sva(holes, "~ cancer", n_sv=1)
    negative = _counts().load()
    negative["expression"][0, 0] = -1.0
    with pytest.raises(CohortexError, match="counts ≥ 0"):
        de.sva(negative, "~ group", n_sv=1)


def test_f_pvalues_of_statistics_rounded_below_zero_are_one():
    """A residual sum that rounding puts a hair above the null model's gives a negative F:
    R's pf gives it 0 (p = 1), where SciPy's distribution function has no value."""
    rss_full = np.array([35.0, 35.0, 10.0, 0.0])
    rss_null = np.array([35.0 - 1e-13, 35.0, 20.0, 1.0])
    p = sva_module._f_pvalues(rss_full, rss_null, 4, 3, 100)
    np.testing.assert_array_equal(p[:2], 1.0)
    assert p[2] == pytest.approx(1 - stats.f.cdf(96.0, 1, 96), rel=1e-12)
    assert p[3] == 0.0


def test_fsva_equals_r():
    """sva on the first 40 arrays, then fsva ("fast") of them and of the last 17."""
    whole = _bladder()
    train, test = whole.isel(sample=slice(0, 40)), whole.isel(sample=slice(40, None))
    frozen = de.sva(train, "~ cancer", n_sv=2)
    _check(frozen, "fsva_train")
    corrected, new = de.fsva(train, "~ cancer", frozen, test)
    expected_db = pd.read_csv(SVA / "fsva_db.csv", index_col=0).to_numpy().T
    expected_new = pd.read_csv(SVA / "fsva_new.csv", index_col=0).to_numpy().T
    np.testing.assert_allclose(corrected["expression"].values, expected_db, rtol=0, atol=1e-8)
    np.testing.assert_allclose(new["expression"].values, expected_new, rtol=0, atol=1e-8)
    new_sv = pd.read_csv(SVA / "fsva_newsv.csv", index_col=0)
    for name in new_sv.columns:
        sign = np.sign(frozen[name].values @ pd.read_csv(SVA / "fsva_train_sv.csv")[name])
        np.testing.assert_allclose(sign * new[name].values, new_sv[name], rtol=0, atol=1e-8)
    assert list(new["cancer"].values) == list(test["cancer"].values)


def test_fsva_exact_equals_r():
    """fsva(method = "exact"): each of the last 17 arrays decomposed with the first 40; one
    array alone gets the same values."""
    whole = _bladder()
    train, test = whole.isel(sample=slice(0, 40)), whole.isel(sample=slice(40, None))
    frozen = de.sva(train, "~ cancer", n_sv=2)
    _, new = de.fsva(train, "~ cancer", frozen, test, method="exact")
    expected_new = pd.read_csv(SVA / "fsva_exact_new.csv", index_col=0).to_numpy().T
    np.testing.assert_allclose(new["expression"].values, expected_new, rtol=0, atol=1e-8)
    new_sv = pd.read_csv(SVA / "fsva_exact_newsv.csv", index_col=0)
    for name in new_sv.columns:
        sign = np.sign(frozen[name].values @ pd.read_csv(SVA / "fsva_train_sv.csv")[name])
        np.testing.assert_allclose(sign * new[name].values, new_sv[name], rtol=0, atol=1e-10)
    _, alone = de.fsva(train, "~ cancer", frozen, test.isel(sample=slice(3, 4)), method="exact")
    np.testing.assert_allclose(alone["sv1"].values, new["sv1"].values[3:4], rtol=1e-12)
    fast = de.fsva(train, "~ cancer", frozen, test)[1]
    assert np.abs(fast["sv1"].values - new["sv1"].values).max() > 0.01  # another method


def test_fsva_refuses_other_methods_and_one_new_sample():
    whole = _bladder()
    train, test = whole.isel(sample=slice(0, 40)), whole.isel(sample=slice(40, None))
    two_step = de.sva(train, "~ cancer", n_sv=2, method="two-step")
    with pytest.raises(CohortexError, match="sva\\(method='irw'\\)"):
        de.fsva(train, "~ cancer", two_step, test)
    frozen = de.sva(train, "~ cancer", n_sv=2)
    with pytest.raises(CohortexError, match="at least two"):
        de.fsva(train, "~ cancer", frozen, test.isel(sample=slice(0, 1)))
    with pytest.raises(CohortexError, match="lack 1 of the cohort's genes"):
        de.fsva(train, "~ cancer", frozen, test.isel(gene=slice(1, None)))
    with pytest.raises(CohortexError, match="not the cohort's samples"):
        de.fsva(test, "~ cancer", frozen, test)
    with pytest.raises(CohortexError, match="'method'"):
        de.fsva(train, "~ cancer", frozen, test, method="slow")


def test_fsva_refuses_missing_values_in_the_new_samples():
    whole = _bladder(chunks=None)
    train, test = (
        whole.isel(sample=slice(0, 40)),
        whole.isel(sample=slice(40, None)).copy(deep=True),
    )
    frozen = de.sva(train, "~ cancer", n_sv=2)
    test["expression"][2, 7] = np.nan
    with pytest.raises(CohortexError, match="new samples hold missing"):
        de.fsva(train, "~ cancer", frozen, test)


def test_a_gram_matrix_beyond_the_memory_is_refused_at_once(monkeypatch):
    monkeypatch.setattr(sva_module, "physical_memory", lambda: 57 * 57 * 8 * 3)
    with pytest.raises(CohortexError, match="57 × 57 Gram matrices.*Run it on a subset"):
        de.sva(_bladder(), "~ cancer", n_sv=2)
    monkeypatch.setattr(sva_module, "physical_memory", lambda: 0)  # unknown: no check
    assert de.sva(_bladder(), "~ cancer", n_sv=2).attrs["n_sv"] == 2
    monkeypatch.setattr(sva_module, "_GENE_SIDE", True)
    monkeypatch.setattr(sva_module, "physical_memory", lambda: 1000 * 1000 * 8 * 3)
    with pytest.raises(CohortexError, match="1000 × 1000 Gram matrices of the genes.*fewer genes"):
        de.sva(_bladder(), "~ cancer", n_sv=2)


@pytest.mark.parametrize("weighted", [False, True])
def test_wsva_equals_limma(weighted):
    result = de.wsva(_bladder(), "~ cancer", n_sv=2, weight_by_sd=weighted)
    expected = pd.read_csv(SVA / ("wsva_sd.csv" if weighted else "wsva.csv"), index_col=0)
    assert result.attrs["surrogates"] == ["sv1", "sv2"]
    for name in expected.columns:
        ours, theirs = result[name].values, expected[name].to_numpy()
        sign = np.sign(ours @ theirs)
        np.testing.assert_allclose(sign * ours, theirs, rtol=0, atol=1e-8, err_msg=name)
    assert result.attrs["method"] == ("wsva weighted by sd" if weighted else "wsva")
    assert de.wsva(_bladder(), "~ cancer", n_sv=99).attrs["n_sv"] == 54  # cut to the df
