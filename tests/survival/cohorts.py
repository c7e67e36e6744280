"""The GSE7390 breast-cancer cohort of the survival tests (tests/fixtures/survival/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

FIXTURES = Path(__file__).parents[1] / "fixtures" / "survival"
CLINICAL = ["age", "size", "grade", "er", "time", "event", "months"]


def breast_cancer() -> xr.Dataset:
    """GSE7390: 198 patients × 76 genes, with their clinical variables and outcome."""
    data = pd.read_csv(FIXTURES / "breast_cancer.csv")
    genes = list(data.columns[7:])
    data["months"] = np.ceil(data["time"] / 30.4375)
    return xr.Dataset(
        {
            "expression": (("sample", "gene"), data[genes].to_numpy()),
            **{name: ("sample", data[name].to_numpy()) for name in CLINICAL},
        },
        coords={"sample": data["sample"].to_numpy(), "gene": np.array(genes)},
    )
