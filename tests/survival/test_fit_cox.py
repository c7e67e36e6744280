"""One Cox model of several genes and covariates against R's coxph on GSE7390 (fixtures from
tests/fixtures/make_fit_cox_fixtures.R): each term's coefficient and standard error, the
model's likelihood-ratio, Wald and score tests, its concordance, and the linear predictor;
with a ridge penalty on the genes (R's ridge(), its effective df); with case weights, an
offset and clusters (the robust variance and R's robust score test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES, breast_cancer

from cohortex import CohortexError, CohortexWarning, survival

GENES = [str(g) for g in breast_cancer()["gene"].values]
CASES = {
    "genes_days": {"time": "time", "genes": GENES[:3]},
    "genes_covariates": {"time": "months", "genes": GENES[:4], "covariates": "~ age + er"},
    "genes_covariates_breslow": {
        "time": "months",
        "genes": GENES[:4],
        "covariates": "~ age + er",
        "ties": "breslow",
    },
    "genes_strata": {"time": "months", "genes": GENES[4:7], "covariates": "~ age", "strata": "er"},
    "ridge": {"time": "months", "genes": GENES[:8], "covariates": "~ age + er", "ridge": 2.0},
    "weights_integer": {
        "time": "months",
        "genes": GENES[:4],
        "covariates": "~ age + er",
        "weights": "repeats",
    },
    "weights_robust": {
        "time": "months",
        "genes": GENES[:4],
        "covariates": "~ age + er",
        "weights": "case_weight",
    },
    "weights_breslow": {
        "time": "months",
        "genes": GENES[:4],
        "ties": "breslow",
        "weights": "case_weight",
        "strata": "er",
    },
    "offset": {"time": "time", "genes": GENES[:3], "offset": "score"},
    "cluster": {
        "time": "months",
        "genes": GENES[4:7],
        "covariates": "~ age",
        "strata": "er",
        "cluster": "pair",
    },
    "cluster_weights_offset": {
        "time": "months",
        "genes": GENES[:4],
        "weights": "case_weight",
        "offset": "score",
        "cluster": "pair",
    },
}
ROBUST = {"weights_robust", "weights_breslow", "cluster", "cluster_weights_offset"}


def _cohort():
    """GSE7390 with the fixtures' case weights, clinical score and patient pairs."""
    ds = breast_cancer()
    samples = pd.read_csv(FIXTURES / "fit_cox_samples.csv")
    assert list(samples["sample"]) == [str(s) for s in ds["sample"].values]
    for name in ("repeats", "case_weight", "score", "pair"):
        ds[name] = ("sample", samples[name].to_numpy())
    return ds


@pytest.mark.parametrize("case", CASES)
def test_fit_cox_equals_r_coxph(case):
    options = dict(CASES[case])
    ds = _cohort()
    model = survival.fit_cox(ds, options.pop("time"), "event", **options)
    terms = pd.read_csv(FIXTURES / f"fit_cox_{case}_terms.csv")
    summary = pd.read_csv(FIXTURES / f"fit_cox_{case}.csv").iloc[0]
    np.testing.assert_allclose(model.terms["coefficient"], terms["coef"], rtol=1e-10)
    np.testing.assert_allclose(model.terms["se"], terms["se"], rtol=1e-10)
    assert model.robust == (case in ROBUST)
    if model.robust:
        np.testing.assert_allclose(model.terms["naive_se"], terms["naive_se"], rtol=1e-10)
        np.testing.assert_allclose(np.sqrt(np.diag(model.naive_covariance)), terms["naive_se"])
        assert model.robust_score_statistic == pytest.approx(summary["robust_score"], rel=1e-10)
    else:
        assert "naive_se" not in model.terms and np.isnan(summary["robust_score"])
    np.testing.assert_allclose(model.terms["statistic"], terms["z"], rtol=1e-10)
    np.testing.assert_allclose(model.terms["pvalue"], terms["p"], rtol=1e-8)
    assert list(model.terms.index[: len(options["genes"])]) == options["genes"]
    assert model.loglik == pytest.approx(summary["loglik"], rel=1e-12)
    assert model.loglik_null == pytest.approx(summary["loglik_null"], rel=1e-12)
    for name in ("lr", "wald", "score"):
        assert getattr(model, f"{name}_statistic") == pytest.approx(
            summary[name], rel=1e-10, nan_ok=True
        )
    assert model.df == pytest.approx(summary["lr_df"], rel=1e-10)
    assert model.concordance == pytest.approx(summary["concordance"], rel=1e-12)
    assert model.concordance_se == pytest.approx(summary["concordance_se"], rel=1e-10)
    assert (model.n_samples, model.n_events) == (summary["n"], summary["events"])
    assert model.converged
    lp = pd.read_csv(FIXTURES / f"fit_cox_{case}_lp.csv")["lp"].to_numpy()
    np.testing.assert_allclose(model.predict(ds).to_numpy(), lp, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_predicted_survival_equals_r_survfit(case):
    """R's summary(survfit(fit, newdata), times) for five patients: the survival, the
    cumulative hazard, the standard error (baseline and coefficients) and the log-type 95%
    interval; Efron's or Breslow's baseline after the fit's ties, within the patient's
    stratum; nothing beyond the stratum's last follow-up (NaN here, absent in R)."""
    options = dict(CASES[case])
    ds = _cohort()
    model = survival.fit_cox(ds, options.pop("time"), "event", **options)
    times = (
        [30, 365.25, 1826.25, 3652.5, 9000]
        if CASES[case]["time"] == "time"
        else [1, 12, 60, 120, 300]
    )
    patients = [0, 1, 2, 49, 119]
    found = model.predict_survival(ds.isel(sample=patients), times)
    assert list(found["sample"]) == [s for s in ds["sample"].values[patients] for _ in times]
    expected = pd.read_csv(FIXTURES / f"fit_cox_{case}_survival.csv")
    expected["sample"] = ds["sample"].values[expected["patient"]]
    merged = found.merge(expected, on=["sample", "time"], how="left", suffixes=("", "_r"))
    reported = merged["survival_r"].notna()
    assert reported.sum() == len(expected) >= 20
    for column in ["survival", "cumulative_hazard", "std_err", "lower", "upper"]:
        np.testing.assert_allclose(
            merged.loc[reported, column], merged.loc[reported, f"{column}_r"], rtol=1e-9, atol=1e-14
        )
        assert merged.loc[~reported, column].isna().all()
    if "strata" in options:
        assert set(found["stratum"]) == {"negative", "positive"}


def test_predicted_survival_refuses_unknown_strata_and_bad_times():
    ds = breast_cancer()
    model = survival.fit_cox(ds, "months", "event", genes=GENES[:2], strata="er")
    other = ds.assign(er=("sample", np.where(ds["er"].values == "positive", "pos", "neg")))
    with pytest.raises(CohortexError, match="not among the fit's"):
        model.predict_survival(other, [12])
    relabelled = model.predict_survival(other, [12], strata=ds["er"].values)
    np.testing.assert_allclose(
        relabelled["survival"], model.predict_survival(ds, [12])["survival"], rtol=1e-15
    )
    with pytest.raises(CohortexError, match="finite and >= 0"):
        model.predict_survival(ds, [-1.0])
    plain = survival.fit_cox(ds, "months", "event", genes=GENES[:2])
    with pytest.raises(CohortexError, match="without strata"):
        plain.predict_survival(ds, [12], strata="er")
    by_values = survival.fit_cox(ds, "months", "event", genes=GENES[:2], strata=ds["er"].values)
    with pytest.raises(CohortexError, match="give each sample's stratum"):
        by_values.predict_survival(ds, [12])


def test_fit_cox_scores_another_cohort_and_leaves_out_missing_values():
    """A model fitted on 150 patients scores the other 48 as R would (the same linear
    predictor as on the whole cohort); a patient missing a gene's value is left out of the
    fit and gets no score."""
    ds = breast_cancer()
    genes = GENES[:3]
    train, test = ds.isel(sample=slice(0, 150)), ds.isel(sample=slice(150, None))
    model = survival.fit_cox(train, "months", "event", genes=genes, covariates="~ age")
    scores = model.predict(test)
    assert list(scores.index) == list(test["sample"].values)
    x = np.column_stack([test["expression"].sel(gene=genes).values, test["age"].values])
    expected = (x - model.means) @ model.terms["coefficient"].to_numpy()
    np.testing.assert_allclose(scores.to_numpy(), expected, rtol=1e-12)
    values = ds["expression"].values.copy()
    values[:5, 0] = np.nan
    gappy = ds.assign(expression=(("sample", "gene"), values))
    fitted = survival.fit_cox(gappy, "months", "event", genes=genes)
    alone = survival.fit_cox(ds.isel(sample=slice(5, None)), "months", "event", genes=genes)
    assert fitted.n_samples == 193
    np.testing.assert_allclose(fitted.terms["coefficient"], alone.terms["coefficient"])
    assert np.isnan(fitted.predict(gappy).to_numpy()[:5]).all()


def test_fit_cox_refuses_what_it_cannot_fit():
    ds = breast_cancer()
    with pytest.raises(CohortexError, match="needs terms"):
        survival.fit_cox(ds, "months", "event")
    with pytest.raises(CohortexError, match="not in the cohort"):
        survival.fit_cox(ds, "months", "event", genes=["TP53"])
    with pytest.raises(CohortexError, match="'ties'"):
        survival.fit_cox(ds, "months", "event", genes=GENES[:1], ties="exact")
    known = ds.isel(sample=np.flatnonzero(ds["grade"].values != "unkown"))
    model = survival.fit_cox(known, "months", "event", genes=GENES[:1], covariates="~ grade")
    with pytest.raises(CohortexError, match="do not fit the model"):
        model.predict(ds)  # grade "unkown": a level the fit never saw


def test_fit_cox_predicts_a_cohort_without_the_reference_level():
    """The covariates of another cohort are encoded with the fit's levels and reference:
    ER-positive patients alone score as they do among all."""
    ds = breast_cancer()
    model = survival.fit_cox(ds, "months", "event", genes=GENES[:2], covariates="~ er + age")
    positive = np.flatnonzero(ds["er"].values == "positive")
    everyone = model.predict(ds).to_numpy()
    np.testing.assert_allclose(
        model.predict(ds.isel(sample=positive)).to_numpy(), everyone[positive], rtol=1e-12
    )


def test_case_weights_are_repeated_samples_under_breslow():
    """Integer case weights fit as the samples repeated that many times (Breslow's ties,
    where a tied group's events count alike either way): coefficients, model se,
    log-likelihoods, the baseline's predicted survival."""
    ds = _cohort()
    repeats = ds["repeats"].values.astype(int)
    options = {"genes": GENES[:3], "covariates": "~ age + er", "ties": "breslow"}
    weighted = survival.fit_cox(ds, "months", "event", weights="repeats", **options)
    repeated_ds = ds.isel(sample=np.repeat(np.arange(ds.sizes["sample"]), repeats))
    repeated_ds = repeated_ds.assign_coords(sample=[f"s{i}" for i in range(repeats.sum())])
    repeated = survival.fit_cox(repeated_ds, "months", "event", **options)
    assert not weighted.robust and weighted.weighted
    for column in ("coefficient", "se"):
        np.testing.assert_allclose(weighted.terms[column], repeated.terms[column], rtol=1e-10)
    assert weighted.loglik == pytest.approx(repeated.loglik, rel=1e-12)
    assert weighted.loglik_null == pytest.approx(repeated.loglik_null, rel=1e-12)
    np.testing.assert_allclose(weighted.means, repeated.means, rtol=1e-12)
    curves = weighted.predict_survival(ds.isel(sample=[0, 1]), [12, 60])
    again = repeated.predict_survival(ds.isel(sample=[0, 1]), [12, 60])
    for column in ("survival", "std_err"):
        np.testing.assert_allclose(curves[column], again[column], rtol=1e-10)


def test_robust_variance_without_clusters_is_each_sample_its_own():
    """robust=True alone equals clusters of one sample each; robust=False with non-integer
    weights keeps the model's variance (R's robust = FALSE)."""
    ds = _cohort()
    options = {"genes": GENES[:3], "covariates": "~ age"}
    alone = survival.fit_cox(ds, "months", "event", robust=True, **options)
    ds["own"] = ("sample", np.arange(ds.sizes["sample"]))
    clustered = survival.fit_cox(ds, "months", "event", cluster="own", **options)
    assert alone.robust and clustered.robust
    np.testing.assert_allclose(alone.covariance, clustered.covariance, rtol=1e-12)
    assert alone.concordance_se == pytest.approx(clustered.concordance_se, rel=1e-12)
    plain = survival.fit_cox(ds, "months", "event", **options)
    np.testing.assert_allclose(alone.naive_covariance, plain.covariance, rtol=1e-12)
    naive = survival.fit_cox(ds, "months", "event", weights="case_weight", robust=False, **options)
    assert not naive.robust and "naive_se" not in naive.terms
    assert np.isnan(naive.robust_score_statistic)


def test_offset_predictions_on_another_cohort():
    """A model with an offset scores another cohort with that cohort's offset less the
    fit's mean one (R's predict); an offset given as values must be given again; a model
    without one refuses one."""
    ds = _cohort()
    train, test = ds.isel(sample=slice(0, 150)), ds.isel(sample=slice(150, None))
    model = survival.fit_cox(train, "time", "event", genes=GENES[:3], offset="score")
    x = test["expression"].sel(gene=GENES[:3]).values
    expected = (x - model.means) @ model.terms["coefficient"].to_numpy() + (
        test["score"].values - train["score"].values.mean()
    )
    np.testing.assert_allclose(model.predict(test).to_numpy(), expected, rtol=1e-12)
    assert model.offset_mean == pytest.approx(train["score"].values.mean(), rel=1e-15)
    shifted = model.predict(test, offset=test["score"].values + 1.0).to_numpy()
    np.testing.assert_allclose(shifted, expected + 1.0, rtol=1e-12)
    by_values = survival.fit_cox(
        train, "time", "event", genes=GENES[:3], offset=train["score"].values
    )
    np.testing.assert_allclose(
        by_values.terms["coefficient"], model.terms["coefficient"], rtol=1e-12
    )
    with pytest.raises(CohortexError, match="give each sample's offset"):
        by_values.predict(test)
    plain = survival.fit_cox(train, "time", "event", genes=GENES[:3])
    with pytest.raises(CohortexError, match="without an offset"):
        plain.predict(test, offset="score")


def test_fit_cox_refuses_bad_weights_offsets_and_clusters():
    ds = _cohort()
    genes = GENES[:2]
    with pytest.raises(CohortexError, match="not positive"):
        survival.fit_cox(ds, "months", "event", genes=genes, weights=np.zeros(198))
    gaps = ds["score"].values.copy()
    gaps[3] = np.nan
    with pytest.raises(CohortexError, match="offset of 1 samples are missing"):
        survival.fit_cox(ds, "months", "event", genes=genes, offset=gaps)
    with pytest.raises(CohortexError, match="cluster of 1 samples is missing"):
        survival.fit_cox(ds, "months", "event", genes=genes, cluster=[None] + [1] * 197)
    with pytest.raises(CohortexError, match="no robust variance with a ridge"):
        survival.fit_cox(ds, "months", "event", genes=genes, ridge=1.0, cluster="pair")


@pytest.mark.parametrize(
    "case", ["genes_days", "genes_covariates", "genes_covariates_breslow", "genes_strata"]
)
@pytest.mark.parametrize("transform", ["km", "rank"])
def test_proportional_hazards_equals_r_cox_zph(case, transform):
    """R's cox.zph(fit): each term's test (genes, age, ER) and GLOBAL, with Efron's or
    Breslow's ties, within strata."""
    options = dict(CASES[case])
    model = survival.fit_cox(breast_cancer(), options.pop("time"), "event", **options)
    found = model.proportional_hazards(transform)
    expected = pd.read_csv(FIXTURES / f"fit_cox_{case}_zph.csv")
    expected = expected[expected["transform"] == transform]
    terms = [*options["genes"], *(["age", "er"] if "er" in options.get("covariates", "") else [])]
    terms += ["age"] if options.get("covariates") == "~ age" else []
    assert list(found.index) == [*terms, "GLOBAL"]
    np.testing.assert_allclose(found["statistic"], expected["chisq"], rtol=1e-9)
    np.testing.assert_array_equal(found["df"], expected["df"])
    np.testing.assert_allclose(found["pvalue"], expected["p"], rtol=1e-8)


def test_proportional_hazards_refusals():
    ds = _cohort()
    weighted = survival.fit_cox(ds, "months", "event", genes=GENES[:2], weights="repeats")
    with pytest.raises(CohortexError, match="without case weights, an offset or a ridge"):
        weighted.proportional_hazards()
    plain = survival.fit_cox(ds, "months", "event", genes=GENES[:2])
    with pytest.raises(CohortexError, match="'transform'"):
        plain.proportional_hazards("loglog")


def test_fit_cox_without_a_comparable_pair_has_no_concordance():
    """The only event is the latest time: the model fits, its C is undefined (NaN)."""
    x = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.warns(CohortexWarning):  # nothing to estimate from one event at the end
        model = survival.fit_cox(x, [5.0, 1, 2, 3, 4], [1, 0, 0, 0, 0], genes=["G1"])
    assert np.isnan(model.concordance) and np.isnan(model.concordance_se)
