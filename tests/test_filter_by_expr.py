"""edgeR's filterByExpr against fixtures made with R's edgeR 3.40
(tests/fixtures/make_edger_fixtures.R): no group, a group, a design, TMM library sizes and
every threshold changed, on bulk counts and on sparse, single-cell-like ones."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import CohortexError, create_cohort, de, filter_by_expr

EDGER = Path(__file__).parent / "fixtures" / "edger"
GROUPS = {"bulk": np.repeat(["a", "b"], 8), "sparse": np.repeat(["a", "b"], [6, 14])}


def _cohort(case, chunks=None):
    counts = pd.read_csv(EDGER / f"{case}_counts.csv", index_col=0).to_numpy(float).T
    group = GROUPS[case]
    return xr.Dataset(
        {
            "expression": (
                ("sample", "gene"),
                da.from_array(counts, chunks=chunks) if chunks else counts,
            ),
            "group": ("sample", group),
            "order": ("sample", np.arange(1.0, len(group) + 1)),
        },
        coords={"gene": [f"G{i:04d}" for i in range(1, counts.shape[1] + 1)]},
        attrs={"scale": "counts"},
    )


CASES = {
    "plain": {},
    "group": {"group": "group"},
    "design": {"design": "~ group + order"},
    "tmm": {"group": "group", "norm_factors": "tmm"},
    "loose": {
        "group": "group",
        "min_count": 5,
        "min_total_count": 30,
        "large_n": 3,
        "min_prop": 0.5,
    },
}


@pytest.mark.parametrize("case", ["bulk", "sparse"])
@pytest.mark.parametrize("variant", list(CASES))
def test_filter_by_expr_equals_edger(case, variant):
    expected = pd.read_csv(EDGER / f"{case}_filter.csv")
    keep = filter_by_expr(_cohort(case, chunks=(5, 70)), **CASES[variant])
    np.testing.assert_array_equal(keep.values, expected[variant].to_numpy())
    assert list(keep["gene"].values) == list(expected["gene"])
    assert keep.attrs["n_kept"] == int(expected[variant].sum())


def test_the_smallest_group_and_its_large_n_rule():
    cohort = _cohort("bulk")
    assert filter_by_expr(cohort).attrs["min_sample_size"] == pytest.approx(10 + 6 * 0.7)
    assert filter_by_expr(cohort, group="group").attrs["min_sample_size"] == 8
    # a covariate's leverages: 1 / max(h) samples, fewer than the groups' eight
    by_design = filter_by_expr(cohort, "~ group + order").attrs["min_sample_size"]
    assert 1 < by_design < 8
    # the group takes precedence over the design, as in edgeR
    both = filter_by_expr(cohort, "~ group + order", group="group")
    assert both.attrs["min_sample_size"] == 8


def test_keeping_the_genes_then_voom(tmp_path):
    """The limma-voom recipe: filterByExpr, then voom on the kept genes, whose library sizes
    are their own sums (keep.lib.sizes = FALSE)."""
    cohort = _cohort("bulk")
    create_cohort(
        tmp_path / "c.zarr",
        cohort["expression"].values,
        samples=pd.DataFrame({"group": cohort["group"].values}),
        scale="counts",
    )
    keep = filter_by_expr(tmp_path / "c.zarr", group="group")
    from cohortex import open_cohort

    kept = open_cohort(tmp_path / "c.zarr", genes=keep)
    voomed = de.voom(kept, "~ group")
    assert voomed.sizes["gene"] == keep.attrs["n_kept"]
    library = cohort["expression"].values[:, keep.values].sum(axis=1)
    np.testing.assert_allclose(voomed["lib_size"].values, library)


def test_bad_input_is_refused():
    cohort = _cohort("bulk")
    with pytest.raises(CohortexError, match="'min_prop' parameter must be in"):
        filter_by_expr(cohort, min_prop=2)
    with pytest.raises(CohortexError, match="'min_count' parameter must be a number >= 0"):
        filter_by_expr(cohort, min_count=-1)
    logs = cohort.assign_attrs(scale="log2")
    with pytest.raises(CohortexError, match="needs raw counts"):
        filter_by_expr(logs)
    holed = cohort.copy(deep=True)
    holed["expression"].values[0, 0] = np.nan
    with pytest.raises(CohortexError, match="counts >= 0 and no NaN"):
        filter_by_expr(holed)
