"""The cohorts of the network tests: the bladder arrays of limma's fixture and the simulated
cohort of tests/fixtures/make_wgcna_fixtures.R."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from conftest import fixture_cohort

WGCNA = Path(__file__).parents[1] / "fixtures" / "wgcna"
LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"


def bladder(chunks=None) -> xr.Dataset:
    """57 arrays × 1,000 probes, with ``cancer`` and ``batch``."""
    return fixture_cohort(
        LIMMA / "bladder_expression.csv",
        LIMMA / "bladder_samples.csv",
        scale="log2",
        chunks=chunks,
    )


def simulated() -> xr.Dataset:
    """The script's simulated cohort (its CSV is samples × genes) with its traits."""
    values = pd.read_csv(WGCNA / "simulated_expression.csv", index_col=0)
    samples = pd.read_csv(WGCNA / "simulated_samples.csv", index_col=0)
    return xr.Dataset(
        {
            "expression": (("sample", "gene"), values.to_numpy(np.float64)),
            **{c: ("sample", samples[c].to_numpy()) for c in samples},
        },
        coords={"sample": values.index.to_numpy(), "gene": values.columns.to_numpy()},
        attrs={"scale": "log2"},
    )


def bicor_cohort() -> xr.Dataset:
    """The bladder arrays with the 6th probe at 7 in 35 of 57 arrays (its MAD is 0), from
    tests/fixtures/make_bicor_fixtures.R."""
    return csv_cohort("bicor_expression.csv")


def csv_cohort(name: str) -> xr.Dataset:
    """A samples × genes CSV of the WGCNA fixtures (NA where missing) as a log2 cohort."""
    values = pd.read_csv(WGCNA / name, index_col=0)
    return xr.Dataset(
        {"expression": (("sample", "gene"), values.to_numpy(np.float64))},
        coords={"sample": values.index.to_numpy(), "gene": values.columns.to_numpy()},
        attrs={"scale": "log2"},
    )


def compare_with_tom_rows(edges: pd.DataFrame, rows: pd.DataFrame) -> int:
    """Assert that each edge whose gene is one of R's TOM rows has R's TOM (to 1e-13); the
    number of edges compared."""
    compared = 0
    for row in edges.itertuples():
        for one, other in ((row.from_gene, row.to_gene), (row.to_gene, row.from_gene)):
            if one in rows.index:
                assert abs(row.weight - rows.loc[one, other]) <= 1e-13, (one, other)
                compared += 1
                break
    return compared


def compare_step_by_step(result: xr.Dataset, name: str) -> pd.DataFrame:
    """Assert that ``network.modules``' result is R's step-by-step network ``{name}_modules.csv``
    and ``{name}_tree.csv``: the tree, the tree cut exactly, the merged modules the same genes
    (numbered by size here), the connectivities to 1e-10 and, where R wrote them, the kME
    columns to 1e-12. Returns R's table."""
    expected = pd.read_csv(WGCNA / f"{name}_modules.csv")
    tree = pd.read_csv(WGCNA / f"{name}_tree.csv")
    np.testing.assert_array_equal(result["tree_merge"].values, tree[["merge1", "merge2"]])
    np.testing.assert_allclose(result["tree_height"].values, tree["height"], atol=1e-12)
    np.testing.assert_array_equal(result["dynamic_label"].values, expected["dynamic"])
    pairs = pd.crosstab(result["label"].values, expected["merged"])
    assert (pairs > 0).sum(axis=1).eq(1).all() and (pairs > 0).sum(axis=0).eq(1).all()
    np.testing.assert_allclose(result["k_total"].values, expected["k_total"], rtol=1e-10)
    np.testing.assert_allclose(result["k_within"].values, expected["k_within"], rtol=1e-10)
    for ours, theirs in pairs.idxmax(axis=1).items():
        if f"kME{theirs}" in expected:
            np.testing.assert_allclose(
                result["kme"].sel(module=ours).values, expected[f"kME{theirs}"], atol=1e-12
            )
    return expected
