"""Time-dependent scores of predicted survival against R's riskRegression::Score on GSE7390
(fixtures from tests/fixtures/make_scores_fixtures.R): the IPCW Brier score, the Kaplan-Meier
null model's and the IPA, the time-dependent AUC, their standard errors with and without the
censoring curve's uncertainty; tied times and tied risks. And the AUC against every
case-control pair counted by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES, breast_cancer

from cohortex import CohortexError, survival

COLUMNS = [
    "brier",
    "brier_se",
    "brier_lower",
    "brier_upper",
    "null_brier",
    "null_brier_se",
    "ipa",
    "auc",
    "auc_se",
    "auc_lower",
    "auc_upper",
]


@pytest.mark.parametrize("case", ["days", "months"])
@pytest.mark.parametrize("conservative", [True, False])
def test_scores_equal_riskregression(case, conservative):
    predictions = pd.read_csv(FIXTURES / f"scores_{case}_predictions.csv")
    expected = pd.read_csv(FIXTURES / f"scores_{case}.csv")
    expected = expected[expected["conservative"] == conservative].set_index("time")
    survival_matrix = predictions.filter(regex=r"^t\d+$").to_numpy()
    found = survival.time_dependent_scores(
        None,
        predictions["time"],
        predictions["event"],
        survival_matrix,
        expected.index.to_numpy(),
        conservative=conservative,
    )
    for column in COLUMNS:
        np.testing.assert_allclose(found[column], expected[column], rtol=1e-10, err_msg=column)


def test_scores_of_predict_survivals_table_and_the_auc_pair_by_pair():
    """fit_cox's predict_survival table scored directly (the same as its matrix), and the
    weighted AUC against a double loop over cases and controls."""
    ds = breast_cancer()
    genes = [str(g) for g in ds["gene"].values[:3]]
    model = survival.fit_cox(ds, "time", "event", genes=genes)
    times = [1826.25, 3652.5]
    table = model.predict_survival(ds, times)
    by_table = survival.time_dependent_scores(ds, "time", "event", table)
    predictions = pd.read_csv(FIXTURES / "scores_days_predictions.csv")
    matrix = predictions[["t1", "t2"]].to_numpy()
    np.testing.assert_allclose(table["survival"].to_numpy().reshape(-1, 2), matrix, rtol=1e-9)
    by_matrix = survival.time_dependent_scores(ds, "time", "event", matrix, times)
    pd.testing.assert_frame_equal(by_table, by_matrix, rtol=1e-8)
    time, event = ds["time"].values, ds["event"].values
    censoring = survival.kaplan_meier(None, time, 1 - event)
    for column, t in enumerate(times):
        risk = 1 - matrix[:, column]

        def censored_by(s, before):
            rows = censoring[(censoring["time"] < s) if before else (censoring["time"] <= s)]
            return float(rows["survival"].iloc[-1]) if len(rows) else 1.0

        cases = np.flatnonzero((time <= t) & (event == 1))
        controls = np.flatnonzero(time > t)
        weights = np.array([1 / censored_by(time[i], True) for i in cases])
        numerator = sum(
            w * ((risk[i] > risk[controls]).sum() + 0.5 * (risk[i] == risk[controls]).sum())
            for i, w in zip(cases, weights, strict=True)
        )
        auc = numerator / (weights.sum() * controls.size)
        assert by_table.loc[t, "auc"] == pytest.approx(auc, rel=1e-12)
        assert by_table.loc[t, "cases"] == cases.size
        assert by_table.loc[t, "controls"] == controls.size


def test_scores_refuse_what_they_cannot_score():
    time, event = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 0, 1, 0])
    good = np.full((4, 1), 0.5)
    with pytest.raises(CohortexError, match="give their times"):
        survival.time_dependent_scores(None, time, event, good)
    with pytest.raises(CohortexError, match="one row per sample and one column per time"):
        survival.time_dependent_scores(None, time, event, good, [1.0, 2.0])
    with pytest.raises(CohortexError, match=r"in \[0, 1\]"):
        survival.time_dependent_scores(None, time, event, good + 1, [2.0])
    with pytest.raises(CohortexError, match="missing"):
        survival.time_dependent_scores(None, time, event, np.full((4, 1), np.nan), [2.0])
    table = pd.DataFrame({"sample": ["S1", "S2"], "time": [2.0, 2.0], "survival": [0.5, 0.4]})
    with pytest.raises(CohortexError, match="must be the cohort's"):
        survival.time_dependent_scores(None, time, event, table)
    no_controls = survival.time_dependent_scores(None, time, event, good, [5.0])
    assert np.isnan(no_controls.loc[5.0, "auc"]) and no_controls.loc[5.0, "controls"] == 0


def test_calibration_groups_are_kaplan_meier_of_each_decile():
    """Each group: the samples of a decile of predicted survival, their mean prediction and
    their Kaplan–Meier estimate at the time (survival.kaplan_meier, held to R's survfit)."""
    predictions = pd.read_csv(FIXTURES / "scores_days_predictions.csv")
    time, event = predictions["time"].to_numpy(), predictions["event"].to_numpy()
    at = 1826.25
    found = survival.calibration(None, time, event, predictions["t1"].to_numpy(), at)
    assert list(found.index) == list(range(1, 11)) and found["n"].sum() == len(predictions)
    deciles = pd.qcut(predictions["t1"], 10, labels=False)
    for group, row in found.iterrows():
        members = deciles.to_numpy() == group - 1
        assert row["n"] == members.sum()
        assert row["predicted"] == pytest.approx(predictions["t1"][members].mean(), rel=1e-12)
        curve = survival.kaplan_meier(None, time[members], event[members])
        last = curve[curve["time"] <= at].iloc[-1]
        assert (row["observed"], row["lower"], row["upper"]) == (
            last["survival"],
            last["lower"],
            last["upper"],
        )
        assert row["events"] == int(((time[members] <= at) & (event[members] == 1)).sum())
    assert found["predicted"].is_monotonic_increasing


def test_a_correct_model_is_calibrated_and_a_flattened_one_is_not(tmp_path):
    """On 4,000 simulated samples, fit_cox of the planted genes predicts each decile's 2-year
    survival within its Kaplan–Meier interval; the same predictions pulled halfway towards
    their mean (risks too mild) miss the extreme deciles and score a lower IPA."""
    from cohortex import open_cohort, simulate

    simulate(tmp_path / "s.zarr", 4000, 30, survival_genes=5, log_hr=0.7, seed=2, progress=False)
    ds = open_cohort(tmp_path / "s.zarr")
    planted = [str(g) for g in ds["gene"].values[ds["true_log_hr"].values != 0]]
    model = survival.fit_cox(ds, "time", "event", genes=planted)
    predicted = model.predict_survival(ds, [2.0])["survival"].to_numpy()
    table = survival.calibration(ds, "time", "event", predicted, 2.0)
    assert ((table["lower"] <= table["predicted"]) & (table["predicted"] <= table["upper"])).all()
    flattened = 0.5 * predicted + 0.5 * predicted.mean()
    mild = survival.calibration(ds, "time", "event", flattened, 2.0)
    outside = (mild["predicted"] < mild["lower"]) | (mild["predicted"] > mild["upper"])
    assert outside.iloc[0] and outside.iloc[-1]
    good = survival.time_dependent_scores(ds, "time", "event", predicted, [2.0])
    poor = survival.time_dependent_scores(ds, "time", "event", flattened, [2.0])
    assert poor.loc[2.0, "ipa"] < good.loc[2.0, "ipa"]
    assert poor.loc[2.0, "auc"] == pytest.approx(good.loc[2.0, "auc"], rel=1e-12)  # same order
