"""impute.knn against R (fixtures from
tests/fixtures/make_missing_network_fixtures.R): the neighbours' averages, rows beyond rowmax,
and the two-means split from R's random start, impute's quirks included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError
from cohortex.stats._impute import knn_imputable, knn_impute

WGCNA = Path(__file__).parents[1] / "fixtures" / "wgcna"


def _read(name: str) -> np.ndarray:
    return pd.read_csv(WGCNA / f"{name}.csv", index_col=0).to_numpy(np.float64)


@pytest.mark.parametrize(
    ("name", "options", "rows"),
    [
        ("knn_default", {}, None),
        ("knn_k3", {"k": 3}, None),
        ("knn_one_beyond", {}, "without_5"),
        ("knn_split", {"k": 4, "max_p": 10}, None),
        ("knn_split_seed", {"k": 4, "max_p": 10, "seed": 7}, None),
        ("knn_small_part", {"max_p": 30}, "apart"),
    ],
)
def test_knn_impute_equals_impute_knn(name, options, rows):
    x = _read("knn_input")
    if rows == "without_5":
        x = np.delete(x, 4, axis=0)
    elif rows == "apart":
        x = np.vstack([x[6:56], x[:6] + 40.0])
    expected = _read(name)
    imputed = knn_impute(x, **options)
    present = ~np.isnan(x)
    np.testing.assert_array_equal(imputed[present], x[present])
    np.testing.assert_allclose(imputed, expected, rtol=0, atol=1e-12)


def test_knn_splits_and_quirks_change_the_result():
    """The fixtures' cases differ from each other where they should: the split (and its seed)
    chooses other neighbours; a lone row beyond rowmax and a small part keep impute's zeros."""
    x = _read("knn_input")
    default, split = knn_impute(x), knn_impute(x, k=4, max_p=10)
    assert np.abs(split - knn_impute(x, k=4)).max() > 0.1
    assert np.abs(split - knn_impute(x, k=4, max_p=10, seed=7)).max() > 0.1
    assert not np.any(default[np.isnan(x)] == 0.0)
    lone = knn_impute(np.delete(x, 4, axis=0))
    np.testing.assert_array_equal(lone[15][np.isnan(x[16])], 0.0)  # r17, alone beyond rowmax


def test_knn_impute_refuses_a_column_beyond_colmax():
    x = _read("knn_input")
    x[:50, 3] = np.nan
    assert not knn_imputable(np.isnan(x))
    with pytest.raises(CohortexError, match="more than 80 % missing"):
        knn_impute(x)
    with pytest.raises(CohortexError, match="k must be between 1 and 59"):
        knn_impute(_read("knn_input"), k=60)
