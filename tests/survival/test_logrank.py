"""Per-gene log-rank tests against R's survival::survdiff on GSE7390."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES, breast_cancer

from cohortex import CohortexError, survival


def _close(actual, expected, rtol):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol)


def test_logrank_equals_r_survdiff():
    expected = pd.read_csv(FIXTURES / "logrank.csv")
    ds = breast_cancer()
    result = survival.logrank(ds, "months", "event")
    _close(result["statistic"], expected["chisq"], 1e-10)
    _close(result["pvalue"], expected["p"], 1e-10)
    _close(result["observed_high"], expected["observed_high"], 1e-12)
    _close(result["expected_high"], expected["expected_high"], 1e-10)
    assert (result["n_high"] == 99).all() and (result["n_low"] == 99).all()
    stratified = survival.logrank(ds, "months", "event", strata="er")
    _close(stratified["statistic"], expected["chisq_strata"], 1e-10)
    _close(stratified["pvalue"], expected["p_strata"], 1e-10)
    assert stratified.attrs["strata"] == "er"


def test_logrank_missing_values_and_quantile():
    ds = breast_cancer()
    x = ds["expression"].values.copy()
    x[:40, 0] = np.nan
    result = survival.logrank(ds.assign(expression=(("sample", "gene"), x)), "months", "event")
    alone = survival.logrank(ds.isel(sample=slice(40, None), gene=[0]), "months", "event")
    _close(result["statistic"].values[:1], alone["statistic"].values, 1e-12)
    assert int(result["n_high"][0] + result["n_low"][0]) == 158
    upper = survival.logrank(ds, "months", "event", quantile=0.75)
    assert (upper["n_high"] == 50).all()  # above the 75% quantile of 198 values: 148th..197th
    with pytest.raises(CohortexError, match="'quantile' must be in"):
        survival.logrank(ds, "months", "event", quantile=1.0)
