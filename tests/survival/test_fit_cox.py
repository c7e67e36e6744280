"""One Cox model of several genes and covariates against R's coxph on GSE7390 (fixtures from
tests/fixtures/make_fit_cox_fixtures.R): each term's coefficient and standard error, the
model's likelihood-ratio, Wald and score tests, its concordance, and the linear predictor;
with a ridge penalty on the genes (R's ridge(), its effective df)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES, breast_cancer

from cohortex import CohortexError, survival

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
}


@pytest.mark.parametrize("case", CASES)
def test_fit_cox_equals_r_coxph(case):
    options = dict(CASES[case])
    ds = breast_cancer()
    model = survival.fit_cox(ds, options.pop("time"), "event", **options)
    terms = pd.read_csv(FIXTURES / f"fit_cox_{case}_terms.csv")
    summary = pd.read_csv(FIXTURES / f"fit_cox_{case}.csv").iloc[0]
    np.testing.assert_allclose(model.terms["coefficient"], terms["coef"], rtol=1e-10)
    np.testing.assert_allclose(model.terms["se"], terms["se"], rtol=1e-10)
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
    ds = breast_cancer()
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
