"""limma's vooma against fixtures made with R's limma 3.54
(tests/fixtures/make_vooma_fixtures.R, on make_fry_fixtures.R's log-expression)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, de

from conftest import fixture_cohort

LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"
DESIGN = "~ group + batch"


def _cohort(chunks=(7, 90)):
    """The fixture's 30 samples × 400 genes, in tiles that split both axes."""
    return fixture_cohort(
        LIMMA / "fry_expression.csv", LIMMA / "fry_samples.csv", scale="log2", chunks=chunks
    )


@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("default", {}),
        ("span", {"span": 0.5}),
        ("block", {"block": "patient", "correlation": 0.3}),
    ],
)
def test_vooma_weights_equal_limma(case, options):
    result = de.vooma(_cohort(), DESIGN, **options)
    expected = pd.read_csv(LIMMA / f"vooma_{case}_weights.csv", index_col=0).to_numpy().T
    np.testing.assert_allclose(result["weights"].values, expected, rtol=1e-12)
    span = options.get("span", 0.3 + 0.7 * (10 / 400) ** 0.5)
    assert result.attrs["normalization"] == "vooma" and result.attrs["span"] == span


def test_the_weighted_fit_of_vooma_equals_limma():
    """lmFit(vooma(y, design), design) + eBayes: fit takes the weights by itself."""
    fitted = de.fit(de.vooma(_cohort(), DESIGN), DESIGN).sel(contrast="group[T.c]")
    expected = pd.read_csv(LIMMA / "vooma_results.csv")
    np.testing.assert_allclose(fitted["statistic"].values, expected["t"], rtol=1e-10)
    np.testing.assert_allclose(fitted["pvalue"].values, expected["p"], rtol=1e-9)


def test_vooma_refuses_counts_missing_values_and_half_a_block():
    counts = _cohort()
    counts.attrs["scale"] = "counts"
    with pytest.raises(CohortexError, match="use voom"):
        de.vooma(counts, DESIGN)
    missing = _cohort().load()
    missing["expression"][2, 5] = np.nan
    with pytest.raises(CohortexError, match="missing values"):
        de.vooma(missing, DESIGN)
    with pytest.raises(CohortexError, match="go together"):
        de.vooma(_cohort(), DESIGN, block="patient")
