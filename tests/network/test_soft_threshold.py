"""pickSoftThreshold against WGCNA 1.72 (fixtures from tests/fixtures/make_wgcna_fixtures.R):
the bladder arrays for each network type, the simulated cohort as a signed network, from
memory and from a chunked store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from network_cohorts import WGCNA, bladder

from cohortex import CohortexError, create_cohort, network
from cohortex.network._data import GeneNetwork
from cohortex.network._soft_threshold import (
    DEFAULT_POWERS,
    faq_power,
    fit_table,
    fit_table_from_columns,
    scale_free_fit,
)

COLUMNS = ["r2", "slope", "truncated_r2", "mean_k", "median_k", "max_k"]
CONCEPTS = ["density", "centralization", "heterogeneity"]


def simulated_values() -> pd.DataFrame:
    return pd.read_csv(WGCNA / "simulated_expression.csv", index_col=0)


@pytest.mark.parametrize("kind", ["unsigned", "signed", "signed hybrid"])
def test_equals_pick_soft_threshold(kind):
    table = network.soft_threshold(bladder(chunks=(20, 300)), network=kind, progress=False)
    expected = pd.read_csv(WGCNA / f"bladder_sft_{kind.replace(' ', '_')}.csv")
    np.testing.assert_array_equal(table["power"].values, expected["power"])
    for column in COLUMNS + CONCEPTS:
        np.testing.assert_allclose(
            table[column].values, expected[column], rtol=1e-10, atol=1e-12, err_msg=column
        )
    assert table.attrs["power_estimate"] == expected["estimate"][0]
    assert table.attrs["n_genes"] == 1000 and table.attrs["n_samples"] == 57
    np.testing.assert_allclose(table["signed_r2"], -np.sign(expected["slope"]) * expected["r2"])


def test_from_a_store_equals_pick_soft_threshold(tmp_path):
    values = simulated_values()
    path = tmp_path / "sim.zarr"
    create_cohort(path, values.to_numpy(np.float32), chunks=(30, 70))
    # float32 in the store: the table of the float32 values, held to the fixture's precision
    table = network.soft_threshold(path, network="signed", progress=False)
    expected = pd.read_csv(WGCNA / "simulated_sft_signed.csv")
    for column in COLUMNS:
        np.testing.assert_allclose(
            table[column].values, expected[column], rtol=1e-5, err_msg=column
        )
    assert np.isnan(expected["estimate"][0])  # R's NA: no power reaches 0.85 here
    assert table.attrs["power_estimate"] == 0.0


def test_no_power_reaching_the_cut_estimates_nothing():
    table = network.soft_threshold(bladder(), powers=[1, 2], progress=False)
    assert table.attrs["power_estimate"] == 0.0
    assert table.sizes["power"] == 2


def test_constant_connectivities_fit_as_r():
    # R: cut() widens a constant range by a thousandth; every gene falls in the middle bin
    r2, slope, truncated = scale_free_fit(np.full(50, 3.0))
    assert np.isfinite(r2) and np.isfinite(slope) and np.isfinite(truncated)


def test_faq_powers():
    assert [faq_power(n, "unsigned") for n in (10, 25, 35, 100)] == [9, 8, 7, 6]
    assert faq_power(100, "signed") == 12 and faq_power(10, "signed hybrid") == 9


def test_refuses_bad_settings():
    with pytest.raises(CohortexError, match="'network' parameter of soft_threshold"):
        network.soft_threshold(bladder(), network="directed")
    with pytest.raises(CohortexError, match="'powers' parameter must be positive"):
        network.soft_threshold(bladder(), powers=[0, 2])
    with pytest.raises(CohortexError, match="at least 4 samples"):
        network.soft_threshold(np.ones((3, 5)))


@pytest.mark.parametrize("kind", ["pearson", "bicor"])
def test_rows_of_the_genes_in_memory_equal_the_whole_matrix(kind):
    """Fewer samples than genes: the correlations a block of rows at a time from the genes in
    memory; more: from the whole matrix. The same table either way."""
    data = GeneNetwork.build(
        bladder(),
        genes=None,
        device="cpu",
        progress=False,
        who="t",
        correlation=False,
        correlation_type=kind,
        max_p_outliers=0.1,
    )
    whole = fit_table(data.compute_correlation(), DEFAULT_POWERS, "signed", 0.85)
    rows = fit_table_from_columns(data.prepared(), DEFAULT_POWERS, "signed", 0.85)
    for column in COLUMNS + CONCEPTS:
        np.testing.assert_allclose(rows[column], whole[column], rtol=1e-12, err_msg=column)
    assert rows.attrs["power_estimate"] == whole.attrs["power_estimate"]
