"""The one place a test's per-contrast rows become the result Dataset (``padj`` per contrast)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .. import fdr as _fdr
from .._backend import namespace

__all__ = ["contrast_dataset"]


def contrast_dataset(
    columns: dict[str, list[Any]],
    levels: list[str],
    contrasts: list[tuple[int, list[int]]],
    fdr: str,
) -> xr.Dataset:
    """Stack per-contrast rows (in the order given, ``padj`` third) into a result Dataset."""
    xp = namespace(columns["pvalue"][0])
    stacked = {k: xp.stack(v) for k, v in columns.items()}
    stacked["padj"] = _fdr.adjust(stacked["pvalue"], fdr)
    if {"n_group", "n_reference", "mean_group", "mean_reference"} <= stacked.keys():
        n_group, n_reference = stacked["n_group"], stacked["n_reference"]
        with np.errstate(divide="ignore", invalid="ignore"):  # limma's AveExpr of the two
            stacked["mean_expression"] = (
                n_group * stacked["mean_group"] + n_reference * stacked["mean_reference"]
            ) / (n_group + n_reference)
        # the samples compared (with nan_policy='omit': those with a value)
        stacked["n_group"] = n_group.astype(xp.int64)
        stacked["n_reference"] = n_reference.astype(xp.int64)
    order = [
        "statistic",
        "pvalue",
        "padj",
        *(k for k in stacked if k not in ("statistic", "pvalue", "padj")),
    ]
    ds = xr.Dataset(
        {k: (("contrast", "gene"), stacked[k]) for k in order},
        coords={
            "contrast": [
                f"{levels[g]}_vs_{'rest' if len(r) > 1 else levels[r[0]]}" for g, r in contrasts
            ],
            "group": ("contrast", [levels[g] for g, _ in contrasts]),
            "reference": (
                "contrast",
                ["rest" if len(r) > 1 else levels[r[0]] for _, r in contrasts],
            ),
        },
    )
    if len(contrasts) == 1 and len(contrasts[0][1]) == 1:
        ds = ds.squeeze("contrast")
    return ds
