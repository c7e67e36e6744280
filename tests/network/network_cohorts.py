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
    values = pd.read_csv(WGCNA / "bicor_expression.csv", index_col=0)
    return xr.Dataset(
        {"expression": (("sample", "gene"), values.to_numpy(np.float64))},
        coords={"sample": values.index.to_numpy(), "gene": values.columns.to_numpy()},
        attrs={"scale": "log2"},
    )
