"""Linear models and limma's moderated t against fixtures made with R's limma 3.54.

The fixtures and the script that made them are in tests/fixtures/ (make_limma_fixtures.R).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cohortex import CohortexError, CohortexWarning, create_cohort, de

FIXTURES = Path(__file__).parents[1] / "fixtures" / "limma"


def _case(name):
    expression = pd.read_csv(FIXTURES / f"{name}_expression.csv", index_col=0)
    samples = pd.read_csv(FIXTURES / f"{name}_samples.csv", index_col=0)
    results = pd.read_csv(FIXTURES / f"{name}_results.csv")
    hyper = pd.read_csv(FIXTURES / f"{name}_hyper.csv")
    return expression.T, samples, results, hyper  # samples × genes


def _close(actual, expected, rtol=1e-8):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol)


def _near(actual, expected, rtol):
    """Agreement for values stored as float32: relative, or absolute near zero."""
    expected = np.asarray(expected, float)
    atol = rtol * np.max(np.abs(expected))
    np.testing.assert_allclose(np.asarray(actual, float), expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", ["random", "bladder"])
def test_moderated_t_equals_limma(tmp_path, name):
    expression, samples, results, hyper = _case(name)
    if name == "random":
        design = "~ condition + age"
        samples = samples.assign(condition=samples["condition"].astype(str))
    else:
        design = "~ cancer + batch"
        samples = samples.assign(batch=samples["batch"].astype(str))
    # through a store, in several chunks of samples
    create_cohort(tmp_path / "c.zarr", expression, samples=samples, chunks=(5, 256))
    result = de.fit(tmp_path / "c.zarr", design, contrasts=None)
    names = result.attrs["design"]
    assert names[0] == "Intercept"
    # the store keeps float32 values; limma saw the float64 ones: agreement to ~1e-7
    _close(result.attrs["s2_prior"], hyper["s2_prior"][0], rtol=1e-6)
    _close(result.attrs["df_prior"], hyper["df_prior"][0], rtol=1e-5)
    _close(result["s2"], results["sigma2"], rtol=2e-5)
    _close(result["s2_post"], results["s2_post"], rtol=2e-5)
    for j, coefficient in enumerate(names[1:], start=2):
        row = result.sel(contrast=coefficient)
        _near(row["coefficient"], results[f"coef_{j}"], rtol=1e-5)
        _near(row["statistic"], results[f"t_{j}"], rtol=1e-5)
        _near(row["pvalue"], results[f"p_{j}"], rtol=1e-4)
        _near(row["lods"], results[f"lods_{j}"], rtol=1e-4)


def test_float64_agrees_to_1e_8():
    expression, samples, results, hyper = _case("random")
    design = pd.get_dummies(samples["condition"], drop_first=True, dtype=float)
    design.insert(0, "(Intercept)", 1.0)
    design["age"] = samples["age"].astype(float)
    result = de.fit(da.from_array(expression.to_numpy(), chunks=(3, 100)), design)
    assert list(result["contrast"].values) == ["tumor", "age"]
    _close(result.attrs["s2_prior"], hyper["s2_prior"][0])
    _close(result.attrs["df_prior"], hyper["df_prior"][0])
    _close(result.attrs["df_total"], results["df_total"][0])
    _close(result["s2"], results["sigma2"])
    _close(result["s2_post"], results["s2_post"])
    for j, name in [(2, "tumor"), (3, "age")]:
        row = result.sel(contrast=name)
        _close(row["coefficient"], results[f"coef_{j}"])
        _close(row["statistic"], results[f"t_{j}"])
        _close(row["pvalue"], results[f"p_{j}"])
        _close(row["lods"], results[f"lods_{j}"])
    # limma's F there spans every coefficient, the intercept too: test that F the same way
    everything = de.fit(expression.to_numpy(), design, contrasts=list(design.columns))
    _close(everything["F"], results["F"])
    _close(everything["F_pvalue"], results["F_p"])


def test_contrasts_and_moderated_f():
    expression, samples, results, hyper = _case("contrasts")
    design = pd.get_dummies(samples["group"], dtype=float)  # cell means A, B, C
    result = de.fit(expression.to_numpy(), design, contrasts={"BvsA": "B - A", "CvsA": "C - A"})
    _close(result.attrs["df_prior"], hyper["df_prior"][0])
    for j, name in [(1, "BvsA"), (2, "CvsA")]:
        row = result.sel(contrast=name)
        _close(row["coefficient"], results[f"coef_{j}"])
        _close(row["statistic"], results[f"t_{j}"])
        _close(row["pvalue"], results[f"p_{j}"])
        _close(row["lods"], results[f"lods_{j}"])
    _close(result["F"], results["F"])
    _close(result["F_pvalue"], results["F_p"])
    _close(result["F_padj"], results["F_padj"])  # topTable's adj.P.Val of the F
    for j, name in [(1, "BvsA"), (2, "CvsA")]:  # topTable(confint = TRUE)
        _close(result["ci_low"].sel(contrast=name), results[f"ci_low_{j}"])
        _close(result["ci_high"].sel(contrast=name), results[f"ci_high_{j}"])
    same = de.fit(expression.to_numpy(), design, contrasts={"mid": "0.5*B + 0.5*C - A"})
    expected = 0.5 * result["coefficient"].sel(contrast="BvsA") + 0.5 * result["coefficient"].sel(
        contrast="CvsA"
    )
    _close(same["coefficient"].sel(contrast="mid"), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["dependent", "dependent_balanced"])
def test_moderated_f_of_dependent_contrasts_equals_limma(name):
    expression, samples, results, hyper = _case(name)
    design = pd.get_dummies(samples["group"], dtype=float)  # cell means A, B, C
    contrasts = {"BvsA": "B - A", "CvsA": "C - A", "CvsB": "C - B"}
    result = de.fit(expression.to_numpy(), design, contrasts=contrasts)
    assert result.attrs["F_df1"] == 2  # three contrasts of rank two
    # equal true variances: no prior df to estimate, and limma's prior is the mean variance
    assert result.attrs["df_prior"] == np.inf
    _close(result.attrs["s2_prior"], hyper["s2_prior"][0])
    # limma's F is on df_residual + df_prior, uncapped: infinite here (equal true variances)
    _close(result.attrs["F_df2"], results["df_residual"][0] + hyper["df_prior"][0])
    _close(result["F"], results["F"])
    _close(result["F_pvalue"], results["F_p"])
    _close(result["F_padj"], results["F_padj"])
    assert (result["F"].values > 0).all()
    for j, contrast in enumerate(contrasts, start=1):
        _close(result["statistic"].sel(contrast=contrast), results[f"t_{j}"])
        _close(result["pvalue"].sel(contrast=contrast), results[f"p_{j}"])
    # the F of the two independent contrasts is the same test
    two = de.fit(expression.to_numpy(), design, contrasts={"BvsA": "B - A", "CvsA": "C - A"})
    _close(two["F"], result["F"], rtol=1e-10)


@pytest.mark.parametrize("kind", ["trend", "robust"])
def test_trend_and_robust_ebayes_equal_limma(kind):
    expression, samples, results, hyper = _case(kind)
    design = pd.get_dummies(samples["condition"], drop_first=True, dtype=float)
    design.insert(0, "(Intercept)", 1.0)
    result = de.fit(expression.to_numpy(), design, **{kind: True})
    _close(result["mean_expression"], results["average"], rtol=1e-12)
    per_gene = "s2_prior" if kind == "trend" else "df_prior"
    _close(result[per_gene], results[per_gene])  # one per gene
    other = "df_prior" if kind == "trend" else "s2_prior"
    _close(result.attrs[other], results[other][0])
    _close(result["s2_post"], results["s2_post"])
    _close(
        result["df_total"] if kind == "robust" else result.attrs["df_total"], results["df_total"]
    )
    row = result.sel(contrast="tumor")
    _close(row["statistic"], results["t_2"])
    _close(row["pvalue"], results["p_2"])
    _close(row["lods"], results["lods_2"])
    _close(row["ci_low"], results["ci_low_2"])  # per-gene df when robust
    _close(row["ci_high"], results["ci_high_2"])
    assert result.attrs[kind] == 1
    assert np.ptp(result[per_gene].values) > 0


@pytest.mark.parametrize("name", ["robust_trend", "robust_trend_missing"])
def test_robust_ebayes_with_trend_equals_limma(name):
    """Both per gene: the prior variance along the loess trend, the prior df by outlyingness;
    with missing values some genes have fewer residual df, one has none."""
    expression, samples, results, _ = _case(name)
    design = pd.get_dummies(samples["condition"], drop_first=True, dtype=float)
    design.insert(0, "(Intercept)", 1.0)
    result = de.fit(expression.to_numpy(), design, robust=True, trend=True)
    for ours, theirs in (("s2_prior", "s2_prior"), ("df_prior", "df_prior")):
        _close(result[ours], results[theirs])
    _close(result["s2_post"], results["s2_post"])
    _close(result["df_total"], results["df_total"])
    row = result.sel(contrast="tumor")
    for ours, theirs in (("statistic", "t_2"), ("pvalue", "p_2"), ("lods", "lods_2")):
        np.testing.assert_array_equal(np.isnan(row[ours]), np.isnan(results[theirs]))
        keep = ~np.isnan(results[theirs].to_numpy())
        _close(row[ours].values[keep], results[theirs][keep])
    assert result.attrs["robust"] == 1 and result.attrs["trend"] == 1
    assert np.ptp(result["s2_prior"].values) > 0 and np.ptp(result["df_prior"].values) > 0


@pytest.mark.parametrize("trend", [False, True])
def test_treat_equals_limma(trend):
    expression, samples, _, _ = _case("trend")
    expected = pd.read_csv(FIXTURES / f"treat{'_trend' if trend else ''}.csv")
    design = pd.get_dummies(samples["condition"], drop_first=True, dtype=float)
    design.insert(0, "(Intercept)", 1.0)
    result = de.fit(expression.to_numpy(), design, treat_lfc=-0.5, trend=trend)  # |lfc| used
    row = result.sel(contrast="tumor")
    _close(row["statistic"], expected["t"])
    _close(row["pvalue"], expected["p"])
    _close(result["s2_post"], expected["s2_post"])
    assert "lods" not in result and result.attrs["treat_lfc"] == -0.5
    inside = np.abs(row["coefficient"].values) <= 0.5
    assert inside.any() and (row["statistic"].values[inside] == 0).all()
    plain = de.fit(expression.to_numpy(), design, trend=trend).sel(contrast="tumor")
    assert (row["pvalue"].values >= plain["pvalue"].values).all()  # a stricter null


def test_decide_equals_limma_decide_tests():
    expression, samples, _, _ = _case("dependent")
    expected = pd.read_csv(FIXTURES / "dependent_decide.csv", index_col=0)
    design = pd.get_dummies(samples["group"], dtype=float)
    contrasts = {"BvsA": "B - A", "CvsA": "C - A", "CvsB": "C - B"}
    result = de.fit(expression.to_numpy(), design, contrasts=contrasts)
    for kind, options in [
        ("separate", {}),
        ("global", {"method": "global"}),
        ("lfc", {"lfc": 2.0}),
        ("nested", {"method": "nestedF"}),
        ("nested_lfc", {"method": "nestedF", "lfc": 1.0}),
        ("nested_holm", {"method": "nestedF", "adjust": "holm"}),
        ("hierarchical", {"method": "hierarchical"}),
        ("hierarchical_holm", {"method": "hierarchical", "adjust": "holm"}),
    ]:
        calls = de.decide(result, p_value=0.1, **options)
        assert calls.dtype == np.int8 and calls.dims == ("contrast", "gene")
        for name in contrasts:
            got = calls.sel(contrast=name).values
            np.testing.assert_array_equal(got, expected[f"{kind}_{name}"].to_numpy())
    assert (de.decide(result, p_value=0.1) != 0).sum() > 40  # a real set of calls
    with pytest.raises(CohortexError, match="needs a result of de.fit\\(\\) or de.test"):
        de.decide(result[["F"]])
    with pytest.raises(CohortexError, match="'method' parameter of decide\\(\\) must be"):
        de.decide(result, method="nested")
    with pytest.raises(CohortexError, match="needs a result of de.fit\\(\\) with several"):
        de.decide(
            result.isel(contrast=[0]).drop_vars(["F", "F_pvalue", "F_padj"]), method="nestedF"
        )
    with pytest.raises(CohortexError, match="adjusts with one of"):
        de.decide(result, method="nestedF", adjust="storey")


def test_nested_f_and_hierarchical_with_a_finite_prior_df_equal_limma():
    """decideTests(method = "nestedF" / "hierarchical") where df_prior is finite (the tests
    on df_residual + df_prior): three groups, B − A and C − A."""
    expression, samples, _, hyper = _case("contrasts")
    assert np.isfinite(hyper["df_prior"][0])
    expected = pd.read_csv(FIXTURES / "contrasts_nested.csv", index_col=0)
    design = pd.get_dummies(samples["group"], dtype=float)
    result = de.fit(expression.to_numpy(), design, contrasts={"BvsA": "B - A", "CvsA": "C - A"})
    for method in ("nestedF", "hierarchical"):
        calls = de.decide(result, method=method, p_value=0.2)
        for name in ("BvsA", "CvsA"):
            column = expected[f"{method.removesuffix('F')}_{name}"].to_numpy()
            np.testing.assert_array_equal(calls.sel(contrast=name).values, column)
        assert (calls != 0).sum() == (20 if method == "nestedF" else 13)


def _limma_columns(result, results, contrasts, f=True):
    """Every per-gene output of a fit against limma's, NaN where limma has NA."""
    _close(result["s2"], results["sigma2"])
    _close(result["s2_post"], results["s2_post"])
    _close(result["mean_expression"], results["average"])
    for j, name in enumerate(contrasts, start=1):
        row = result.sel(contrast=name)
        for ours, theirs in [
            ("coefficient", "coef"),
            ("statistic", "t"),
            ("pvalue", "p"),
            ("lods", "lods"),
            ("ci_low", "ci_low"),
        ]:
            _close(row[ours], results[f"{theirs}_{j}"])
    if f:
        _close(result["F"], results["F"])
        _close(result["F_pvalue"], results["F_p"])


@pytest.mark.parametrize("name", ["missing", "missing_contrasts"])
def test_missing_values_equal_limma(name):
    expression, samples, results, hyper = _case(name)
    if name == "missing":
        design = pd.get_dummies(samples["condition"], drop_first=True, dtype=float)
        design.insert(0, "(Intercept)", 1.0)
        design["age"] = samples["age"].astype(float)
        contrasts = None
        names = ["(Intercept)", "tumor", "age"]
    else:
        design = pd.get_dummies(samples["group"], dtype=float)
        contrasts = {"BvsA": "B - A", "CvsA": "C - A"}
        names = list(contrasts)
    x = expression.to_numpy()
    assert np.isnan(x).mean() > 0.05
    everything = names if contrasts is None else contrasts
    result = de.fit(da.from_array(x, chunks=(5, 70)), design, contrasts=everything)
    _close(result["df_residual"], results["df_residual"])  # each gene its own
    _close(result.attrs["df_prior"], hyper["df_prior"][0])
    _close(result.attrs["s2_prior"], hyper["s2_prior"][0])
    _close(result["df_total"], results["df_total"])
    _limma_columns(result, results, names)
    if name == "missing":  # no tumour sample in gene 5: its condition coefficient is NA
        gene = result.isel(gene=4)
        assert np.isnan(gene["coefficient"].sel(contrast="tumor"))
        assert np.isfinite(gene["coefficient"].sel(contrast="age"))


@pytest.mark.parametrize("name", ["weights", "sample_weights"])
def test_precision_weights_equal_limma(name):
    expression, samples, results, hyper = _case(name)
    weights = pd.read_csv(FIXTURES / f"{name}_weights.csv", index_col=0).to_numpy().T
    if name == "weights":
        design = pd.get_dummies(samples["condition"], drop_first=True, dtype=float)
        design.insert(0, "(Intercept)", 1.0)
        design["age"] = samples["age"].astype(float)
        contrasts, names = ["(Intercept)", "tumor", "age"], ["(Intercept)", "tumor", "age"]
    else:
        design = pd.get_dummies(samples["group"], dtype=float)
        contrasts = {"BvsA": "B - A", "CvsA": "C - A"}
        names = list(contrasts)
        # limma was given a matrix with one weight per sample in every row: its gene-by-gene
        # path (a vector of them takes the shared one: test_array_weights.py)
        assert np.all(weights == weights[:, :1])
    values = expression.to_numpy()
    # in one chunk, and in tiles of 5 samples × 70 genes (columns of tiles joined along genes)
    for matrix in (values, da.from_array(values, chunks=(5, 70))):
        result = de.fit(matrix, design, contrasts=contrasts, weights=weights)
        assert result.attrs["weighted"] == 1
        _close(result.attrs["df_prior"], hyper["df_prior"][0])
        _limma_columns(result, results, names)


@pytest.mark.parametrize("name", ["rlm", "rlm_missing", "rlm_weights"])
def test_robust_regression_equals_limma(name):
    """lmFit(method = "robust"), then eBayes: every gene's rlm (Huber's psi, the MAD scale,
    at most 20 steps; some genes stop unconverged, as R warns) on values with outliers, with
    missing values, and with precision weights; every column limma's."""
    expression, samples, results, hyper = _case(name)
    design = pd.get_dummies(samples["condition"], drop_first=True, dtype=float)
    design.insert(0, "(Intercept)", 1.0)
    design["age"] = samples["age"].astype(float)
    names = ["(Intercept)", "tumor", "age"]
    weights = None
    if name == "rlm_weights":
        weights = pd.read_csv(FIXTURES / f"{name}_weights.csv", index_col=0).to_numpy().T
    values = expression.to_numpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CohortexWarning)
        result = de.fit(
            da.from_array(values, chunks=(5, 70)),
            design,
            contrasts=names,
            weights=weights,
            method="robust",
        )
    assert result.attrs["method"] == "robust"
    for warning in caught:
        if issubclass(warning.category, CohortexWarning):
            assert "did not converge in 20 steps" in str(warning.message)
    _close(result["df_residual"], results["df_residual"])
    _close(result.attrs["df_prior"], hyper["df_prior"][0])
    _close(result.attrs["s2_prior"], hyper["s2_prior"][0])
    _limma_columns(result, results, names)
    if name == "rlm":  # the outliers weigh less than in least squares
        plain = de.fit(values, design, contrasts=names)
        assert float(result["s2"].median()) < float(plain["s2"].median())


def test_robust_regression_refuses_blocks_and_unknown_methods():
    expression, samples, _, _ = _case("rlm")
    design = np.column_stack([np.ones(16), np.repeat([0.0, 1.0], 8)])
    with pytest.raises(CohortexError, match="no 'block'"):
        de.fit(expression.to_numpy(), design, method="robust", block=np.repeat([0, 1], 8))
    with pytest.raises(CohortexError, match="'ls' or 'robust'"):
        de.fit(expression.to_numpy(), design, method="huber")


def test_voom_equals_limma(tmp_path):
    counts = pd.read_csv(FIXTURES / "voom_counts.csv", index_col=0)  # genes × samples
    samples = pd.read_csv(FIXTURES / "voom_samples.csv", index_col=0)
    _, _, results, hyper = _case("voom")
    create_cohort(
        tmp_path / "counts.zarr", counts.T, samples=samples, scale="counts", chunks=(5, 300)
    )
    v = de.voom(tmp_path / "counts.zarr", "~ condition", norm_factors="tmm")
    assert v.attrs["normalization"] == "voom" and v.attrs["scale"] == "log2"
    expected_e = pd.read_csv(FIXTURES / "voom_expression.csv", index_col=0).to_numpy().T
    expected_w = pd.read_csv(FIXTURES / "voom_weights.csv", index_col=0).to_numpy().T
    _close(v["expression"].values, expected_e, rtol=1e-12)
    _close(v["weights"].values, expected_w, rtol=1e-10)
    trend = pd.read_csv(FIXTURES / "voom_trend.csv")  # the genes with counts
    expressed = np.isfinite(v["voom_mean"].values)
    assert expressed.sum() == len(trend) < expressed.size  # all-zero genes left out
    _close(v["voom_mean"].values[expressed], trend["x"], rtol=1e-12)
    _close(v["voom_sqrt_sd"].values[expressed], trend["y"], rtol=1e-10)
    line = pd.read_csv(FIXTURES / "voom_line.csv")
    _close(v["trend_y"].values, line["y"], rtol=1e-10)
    result = de.fit(v, "~ condition")  # the weights come with the voom result
    assert result.attrs["weighted"] == 1
    _close(result.attrs["df_prior"], hyper["df_prior"][0])
    names = list(result["contrast"].values)
    assert names == ["condition[T.tumor]"]
    row = result.sel(contrast=names[0])
    _close(row["statistic"], results["t_2"])
    _close(row["pvalue"], results["p_2"])
    _close(row["lods"], results["lods_2"])
    _close(result["s2_post"], results["s2_post"])


def test_remove_batch_effect_equals_limma():
    import xarray as xr

    def dataset(expression, samples):
        variables = {name: ("sample", samples[name].to_numpy()) for name in samples.columns}
        return xr.Dataset(
            {"expression": (("sample", "gene"), expression.to_numpy()), **variables},
            coords={"sample": expression.index.to_numpy(), "gene": expression.columns.to_numpy()},
        )

    expression, samples, _, _ = _case("bladder")
    samples = samples.assign(batch=samples["batch"].astype(str))
    expected = pd.read_csv(FIXTURES / "remove_batch_bladder.csv", index_col=0).to_numpy().T
    ds = dataset(expression.iloc[:, :200], samples)
    corrected = de.remove_batch_effect(ds, "batch", design="~ cancer")
    _close(corrected["expression"].values, expected, rtol=1e-10)
    assert corrected.attrs["batch_removed"] == "batch"
    expression, samples, _, _ = _case("random")
    samples = samples.assign(run=np.tile(["x", "y", "z", "x"], 4), age=samples["age"] * 1.0)
    expected = pd.read_csv(FIXTURES / "remove_batch_random.csv", index_col=0).to_numpy().T
    ds = dataset(expression, samples)
    corrected = de.remove_batch_effect(ds, "run", covariates=["age"], design="~ condition")
    _close(corrected["expression"].values, expected, rtol=1e-10)
    with pytest.raises(CohortexError, match="'runs' is not a sample variable"):
        de.remove_batch_effect(ds, "runs")


def test_remove_batch_effect_with_weights_equals_limma():
    """removeBatchEffect(v, batch, design) after voom (lmFit takes the EList's weights, as
    remove_batch_effect takes a voom result's), and with arrayWeights' sample weights."""
    import xarray as xr

    counts = pd.read_csv(FIXTURES / "voom_counts.csv", index_col=0)
    samples = pd.read_csv(FIXTURES / "voom_samples.csv", index_col=0)
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), counts.T.to_numpy().astype(float)),
            "condition": ("sample", samples["condition"].to_numpy()),
            "run": ("sample", np.tile(["r1", "r2", "r3"], 4)),
        },
        attrs={"scale": "counts"},
    )
    voomed = de.voom(cohort, "~ condition", norm_factors="tmm")
    corrected = de.remove_batch_effect(voomed, "run", design="~ condition")
    expected = pd.read_csv(FIXTURES / "remove_batch_voom.csv", index_col=0).to_numpy().T
    _close(corrected["expression"].values, expected, rtol=1e-10)
    unweighted = de.remove_batch_effect(voomed.drop_vars("weights"), "run", design="~ condition")
    assert not np.allclose(unweighted["expression"].values, expected, rtol=1e-6)

    expression, bladder, _, _ = _case("bladder")
    bladder = bladder.assign(batch=bladder["batch"].astype(str))
    ds = xr.Dataset(
        {
            "expression": (("sample", "gene"), expression.iloc[:, :200].to_numpy()),
            **{name: ("sample", bladder[name].to_numpy()) for name in bladder.columns},
        }
    )
    weights = pd.read_csv(FIXTURES / "camera_sample_weights.csv")["weight"].to_numpy()
    corrected = de.remove_batch_effect(ds, "batch", design="~ cancer", weights=weights)
    expected = pd.read_csv(FIXTURES / "remove_batch_weighted.csv", index_col=0).to_numpy().T
    _close(corrected["expression"].values, expected, rtol=1e-10)


def test_ordinary_least_squares_equals_statsmodels():
    rng = np.random.default_rng(30)
    n = 40
    age = rng.uniform(20, 80, n)
    group = np.repeat([0.0, 1.0], n // 2)
    x = 1e4 + rng.normal(size=(n, 6)) + 0.01 * age[:, None] + group[:, None]  # a large mean
    design = np.column_stack([np.ones(n), group, age])
    result = de.fit(da.from_array(x, chunks=(7, 6)), design, moderate=False)
    for g in range(6):
        ols = sm.OLS(x[:, g], design).fit()
        _close(result["coefficient"].sel(contrast="x1").values[g], ols.params[1], rtol=1e-9)
        _close(result["statistic"].sel(contrast="x2").values[g], ols.tvalues[2], rtol=1e-7)
        _close(result["pvalue"].sel(contrast="x1").values[g], ols.pvalues[1], rtol=1e-7)
        _close(result["s2"].values[g], ols.scale, rtol=1e-9)


def test_bad_designs(tmp_path):
    expression, samples, _, _ = _case("random")
    x = expression.to_numpy()
    with pytest.raises(CohortexError, match="more coefficients \\(20\\) than samples \\(16\\)"):
        de.fit(x, np.random.default_rng(0).normal(size=(16, 20)))
    design = np.column_stack([np.ones(16), np.arange(16.0), 2 * np.arange(16.0)])
    with pytest.raises(CohortexError, match="rank-deficient: .* \\(aliased\\): x2"):
        de.fit(x, design)
    with pytest.raises(
        CohortexError, match="no residual degrees of freedom \\(16 samples, 16 coefficients\\)"
    ):
        de.fit(x, np.eye(16))
    with pytest.raises(CohortexError, match="unknown coefficients: tumour. Coefficients: x0, x1"):
        de.fit(x, np.column_stack([np.ones(16), np.arange(16.0)]), contrasts=["tumour"])
    samples = samples.assign(age=samples["age"].astype(float))
    samples.iloc[3, samples.columns.get_loc("age")] = np.nan
    create_cohort(tmp_path / "c.zarr", expression, samples=samples)
    with pytest.raises(CohortexError, match="uses age, which has missing values"):
        de.fit(tmp_path / "c.zarr", "~ condition + age")
    # a name that is no sample variable is an error, never a name inside cohortex
    with pytest.raises(CohortexError, match="`n_samples` is not present in the dataset"):
        de.fit(tmp_path / "c.zarr", "~ condition + n_samples")
    simple = np.column_stack([np.ones(16), np.arange(16.0)])
    with pytest.raises(CohortexError, match="apply to the moderated t"):
        de.fit(x, simple, trend=True, moderate=False)
    with pytest.raises(CohortexError, match="apply to the moderated t"):
        de.fit(x, simple, treat_lfc=1.0, moderate=False)
    with pytest.raises(CohortexError, match="'treat_lfc' must be a finite number; got nan"):
        de.fit(x, simple, treat_lfc=float("nan"))


def test_real_cohort_float64_agrees_to_1e_8():
    import xarray as xr

    expression, samples, results, hyper = _case("bladder")
    ds = xr.Dataset(
        {
            "expression": (("sample", "gene"), expression.to_numpy()),
            "cancer": ("sample", samples["cancer"].astype(str).to_numpy()),
            "batch": ("sample", samples["batch"].astype(str).to_numpy()),
        },
        coords={"sample": expression.index.to_numpy(), "gene": expression.columns.to_numpy()},
    )
    result = de.fit(ds, "~ cancer + batch")
    assert result.attrs["design"][1:3] == ["cancer[T.Cancer]", "cancer[T.Normal]"]
    _close(result.attrs["s2_prior"], hyper["s2_prior"][0])
    _close(result.attrs["df_prior"], hyper["df_prior"][0])
    for j, name in enumerate(result.attrs["design"][1:], start=2):
        row = result.sel(contrast=name)
        _close(row["statistic"], results[f"t_{j}"])
        _close(row["pvalue"], results[f"p_{j}"])
        _close(row["lods"], results[f"lods_{j}"])
