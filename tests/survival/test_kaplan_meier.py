"""Kaplan–Meier curves against R's survival::survfit on GSE7390."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES, breast_cancer

from cohortex import CohortexError, survival


def test_kaplan_meier_equals_r_survfit():
    expected = pd.read_csv(FIXTURES / "km_er.csv")
    curves = survival.kaplan_meier(breast_cancer(), "months", "event", by="er")
    assert curves["group"].tolist() == expected["group"].tolist()
    for name in ("time", "n_risk", "n_event", "n_censor"):
        np.testing.assert_array_equal(curves[name], expected[name], err_msg=name)
    for name in ("survival", "std_err", "lower", "upper"):
        np.testing.assert_allclose(curves[name], expected[name], rtol=1e-12, err_msg=name)


def test_kaplan_meier_of_a_gene_split_and_of_values():
    ds = breast_cancer()
    curves = survival.kaplan_meier(ds, "months", "event", gene="219340_s_at")
    assert set(curves["group"]) == {"high", "low"}
    first = curves.groupby("group")["n_risk"].first()
    assert first.to_dict() == {"high": 99, "low": 99}
    plain = survival.kaplan_meier(None, [1, 2, 2, 3, 5], [1, 1, 0, 1, 0])
    np.testing.assert_allclose(plain["survival"], [0.8, 0.6, 0.3, 0.3])
    assert plain["n_risk"].tolist() == [5, 4, 2, 1] and plain["group"].eq("all").all()
    with pytest.raises(CohortexError, match="not both"):
        survival.kaplan_meier(ds, "months", "event", by="er", gene="219340_s_at")
    with pytest.raises(CohortexError, match="The gene 'TP53' is not in the cohort"):
        survival.kaplan_meier(ds, "months", "event", gene="TP53")
