"""Samples correlated within blocks: limma's duplicateCorrelation and lmFit(block=) against
fixtures made with R's limma 3.54 and statmod (tests/fixtures/make_block_fixtures.R)."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import CohortexError, CohortexWarning, create_cohort, de
from cohortex.de import _gene_columns

FIXTURES = Path(__file__).parents[1] / "fixtures" / "limma"
DESIGN = "~ time + sex"


def _cohort(chunks=None, dtype=np.float64):
    """The fixture's 30 samples × 300 genes as an in-memory Dataset (float64 as limma saw)."""
    expression = pd.read_csv(FIXTURES / "block_expression.csv", index_col=0).T
    samples = pd.read_csv(FIXTURES / "block_samples.csv", index_col=0)
    values = expression.to_numpy().astype(dtype)
    matrix = da.from_array(values, chunks=chunks) if chunks else values
    return xr.Dataset(
        {
            "expression": (("sample", "gene"), matrix),
            **{name: ("sample", samples[name].to_numpy()) for name in samples.columns},
        },
        coords={"sample": list(expression.index), "gene": list(expression.columns)},
        attrs={"scale": "log2"},
    )


def _limma():
    return (
        pd.read_csv(FIXTURES / "block_correlation.csv"),
        pd.read_csv(FIXTURES / "block_results.csv"),
    )


def _close(actual, expected, rtol):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol)


@pytest.mark.parametrize("split", [False, True])
def test_duplicate_correlation_equals_limma(monkeypatch, split):
    correlations, _ = _limma()
    cohort = _cohort()
    if split:  # tiles of 7 samples × 50 genes, tasks of 20 genes, blocks of 3 genes
        cohort = _cohort(chunks=(7, 50))
        monkeypatch.setattr(_gene_columns, "TASK_GENES", 20)
        monkeypatch.setattr(_gene_columns, "VALUES_PER_BLOCK", 30 * 3)
    result = de.duplicate_correlation(cohort, DESIGN, "patient")
    # every gene, those with missing values too (one of them has too few blocks: NaN in both)
    _close(np.arctanh(result["correlation"].values), correlations["atanh"], rtol=1e-10)
    assert np.isnan(result["correlation"].values).sum() == 1
    _close(result.attrs["consensus_correlation"], correlations["consensus"][0], rtol=1e-12)
    assert result.attrs["block"] == "patient"


def test_strong_correlation_equals_limma():
    """Blocks of five with ρ near 0.9: statmod's bounded scoring weights and limma's upper
    bound of 0.99 (30 genes) both come into play."""
    expression = pd.read_csv(FIXTURES / "block_strong_expression.csv", index_col=0).T
    samples = pd.read_csv(FIXTURES / "block_strong_samples.csv", index_col=0)
    correlations = pd.read_csv(FIXTURES / "block_strong_correlation.csv")
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), expression.to_numpy()),
            "dose": ("sample", samples["dose"].to_numpy()),
            "patient": ("sample", samples["patient"].to_numpy()),
        }
    )
    result = de.duplicate_correlation(cohort, "~ dose", "patient")
    _close(np.arctanh(result["correlation"].values), correlations["atanh"], rtol=1e-10)
    _close(result.attrs["consensus_correlation"], correlations["consensus"][0], rtol=1e-12)
    assert (result["correlation"].values == 0.99).sum() == 30


def test_voom_weights_with_blocks_equal_limma():
    """limma's RNA-seq form: voom's log-CPM and weights (one weight 0), duplicateCorrelation
    and the block fit of them; statmod weights the data and the design, not the blocks."""
    folder = FIXTURES
    expression = pd.read_csv(folder / "block_voom_expression.csv", index_col=0).T
    weights = pd.read_csv(folder / "block_voom_weights.csv", index_col=0).T
    samples = pd.read_csv(folder / "block_voom_samples.csv", index_col=0)
    results = pd.read_csv(folder / "block_voom_results.csv")
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), expression.to_numpy()),
            "weights": (("sample", "gene"), weights.to_numpy()),  # used by default
            "patient": ("sample", samples["patient"].to_numpy()),
            "after": ("sample", (samples["treatment"] == "after").to_numpy().astype(float)),
        }
    )
    estimated = de.duplicate_correlation(cohort, "~ after", "patient")
    assert estimated.attrs["weighted"] == 1
    # the weighted design's basis comes from a Cholesky factor: 1e-11 where R's QR has 1e-14
    np.testing.assert_allclose(
        np.arctanh(estimated["correlation"].values), results["atanh"], rtol=1e-9, atol=1e-10
    )
    _close(estimated.attrs["consensus_correlation"], results["consensus"][0], rtol=1e-12)
    fitted = de.fit(cohort, "~ after", block="patient", correlation=results["consensus"][0])
    row = fitted.sel(contrast="after")
    for name, column in (
        ("coefficient", "coef"),
        ("stdev_unscaled", "sd"),
        ("statistic", "t"),
        ("pvalue", "p"),
        ("lods", "lods"),
    ):
        _close(row[name], results[column], rtol=1e-10)
    _close(fitted["s2"], results["sigma2"], rtol=1e-10)
    _close(fitted["df_residual"], results["df_residual"], rtol=0)  # 29 where a weight is 0


def _paired_counts(name):
    """The counts of 16 patients before and after treatment (make_block_fixtures.R)."""
    counts = pd.read_csv(FIXTURES / name, index_col=0).T
    samples = pd.read_csv(FIXTURES / "block_voom_samples.csv", index_col=0)
    return xr.Dataset(
        {
            "expression": (("sample", "gene"), counts.to_numpy().astype(np.float64)),
            "patient": ("sample", samples["patient"].to_numpy()),
            "after": ("sample", (samples["treatment"] == "after").to_numpy().astype(float)),
        },
        attrs={"scale": "counts"},
    )


def test_voom_with_blocks_second_round_equals_limma():
    """limma's recipe: voom, duplicateCorrelation, voom again with the blocks (its trend from
    the block fit), duplicateCorrelation and the block fit of the new weights."""
    results = pd.read_csv(FIXTURES / "block_voom2_results.csv")
    weights = pd.read_csv(FIXTURES / "block_voom2_weights.csv", index_col=0).T
    cohort = _paired_counts("block_voom_counts.csv")
    first = float(results["first"][0])  # limma's first-round consensus (one weight set to 0)
    second = de.voom(cohort, "~ after", block="patient", correlation=first)
    assert second.attrs["voom_correlation"] == first
    _close(second["weights"].values, weights.to_numpy(), rtol=1e-12)
    estimated = de.duplicate_correlation(second, "~ after", "patient")
    _close(estimated.attrs["consensus_correlation"], results["consensus"][0], rtol=1e-12)
    fitted = de.fit(second, "~ after", block="patient")  # the correlation estimated again
    _close(fitted.sel(contrast="after")["statistic"], results["t"], rtol=1e-10)
    # a p of 1e-13 moves ~t² times as much as its t: 1.7e-11 in t (this machine's BLAS) is
    # 6.6e-10 in p
    _close(fitted.sel(contrast="after")["pvalue"], results["p"], rtol=1e-9)
    with pytest.raises(CohortexError, match="'block' and 'correlation' go together"):
        de.voom(cohort, "~ after", block="patient")


@pytest.mark.parametrize("case", ["complete", "missing"])
def test_block_fit_with_sample_weights_equals_limma(case):
    """arrayWeights, then the block fit with them and a contrast of two correlated
    coefficients: one whitened design with the weights for all genes when none has a
    missing value, else gene by gene with limma's unweighted cov.coefficients."""
    correlations, _ = _limma()
    expected = pd.read_csv(FIXTURES / "block_sample_weights_results.csv")
    cohort = _cohort(chunks=(11, 64))
    weights = de.array_weights(cohort, DESIGN)
    _close(weights.values, expected["sample_weights"][:30], rtol=1e-10)
    weighted = de.duplicate_correlation(cohort, DESIGN, "patient", weights=weights.values)
    _close(weighted.attrs["consensus_correlation"], expected["consensus"][0], rtol=1e-10)
    if case == "complete":
        kept = np.isfinite(expected["t_complete"].to_numpy())
        cohort, expected = cohort.isel(gene=kept), expected[kept]
    result = de.fit(
        cohort,
        DESIGN,
        block="patient",
        correlation=float(correlations["consensus"][0]),
        weights=weights.values,
        contrasts=["time[T.t2] - time[T.t1]"],
    )
    row = result.isel(contrast=0)
    # gene 43 has no sample at t2: NaN as limma's NA
    _close(row["stdev_unscaled"], expected[f"sd_{case}"], rtol=1e-10)
    _close(row["statistic"], expected[f"t_{case}"], rtol=1e-10)


def test_voom_with_quality_weights_and_blocks_equals_limma():
    """limma's voomWithQualityWeights(block=, correlation=) (its ... go to voom): the trend
    of both voom rounds from the block fit, the sample weights without the blocks; then the
    correlation of its weights and the block fit, as the command line's --voom
    --sample-weights --block runs it."""
    results = pd.read_csv(FIXTURES / "block_quality_results.csv")
    weights = pd.read_csv(FIXTURES / "block_quality_weights.csv", index_col=0).T
    cohort = _paired_counts("block_quality_counts.csv")
    first_round = de.voom(cohort, "~ after", sample_weights=True)
    first = de.duplicate_correlation(first_round, "~ after", "patient")
    _close(first.attrs["consensus_correlation"], results["first"][0], rtol=1e-10)
    second = de.voom(
        cohort,
        "~ after",
        block="patient",
        correlation=first.attrs["consensus_correlation"],
        sample_weights=True,
    )
    _close(second["sample_weights"].values, results["sample_weights"][:32], rtol=1e-10)
    lowest = np.argsort(second["sample_weights"].values)[:2]
    assert sorted(lowest) == [4, 19]  # the two noisy samples count least
    _close(second["weights"].values, weights.to_numpy(), rtol=1e-10)
    fitted = de.fit(second, "~ after", block="patient")  # the correlation estimated again
    _close(fitted.attrs["correlation"], results["consensus"][0], rtol=1e-10)
    _close(fitted.sel(contrast="after")["statistic"], results["t"], rtol=1e-9)
    _close(fitted.sel(contrast="after")["pvalue"], results["p"], rtol=1e-9)


def test_block_fit_equals_limma():
    correlations, results = _limma()
    consensus = float(correlations["consensus"][0])
    cohort = _cohort(chunks=(11, 64))
    names = ["Intercept", "time[T.t1]", "time[T.t2]", "sex[T.m]"]
    # limma's F of a fit without contrasts spans every coefficient, the intercept too
    result = de.fit(cohort, DESIGN, block="patient", correlation=consensus, contrasts=names)
    assert result.attrs["correlation"] == consensus and result.attrs["block"] == "patient"
    _close(result["s2"], results["sigma2"], rtol=1e-10)
    _close(result["s2_post"], results["s2_post"], rtol=1e-10)
    _close(result["mean_expression"], results["average"], rtol=1e-12)
    _close(result["df_residual"], results["df_residual"], rtol=0)  # per gene: missing values
    _close(result.attrs["df_prior"], results["df_prior"][0], rtol=1e-10)
    _close(result["F"], results["F"], rtol=1e-10)
    _close(result["F_pvalue"], results["F_p"], rtol=1e-10)
    for j, name in enumerate(names[1:], start=2):
        row = result.sel(contrast=name)
        # gene 43 has no sample at t2: limma's NA where its coefficient is not estimable
        _close(row["coefficient"], results[f"coef_{j}"], rtol=1e-10)
        _close(row["stdev_unscaled"], results[f"sd_{j}"], rtol=1e-10)
        _close(row["statistic"], results[f"t_{j}"], rtol=1e-10)
        _close(row["pvalue"], results[f"p_{j}"], rtol=1e-10)
        _close(row["lods"], results[f"lods_{j}"], rtol=1e-10)
    assert np.isnan(result["coefficient"].sel(contrast="time[T.t2]").values[42])


def test_block_fit_estimates_the_correlation_by_default():
    correlations, results = _limma()
    result = de.fit(_cohort(), DESIGN, block="patient")
    _close(result.attrs["correlation"], correlations["consensus"][0], rtol=1e-12)
    _close(result["statistic"].sel(contrast="time[T.t2]"), results["t_3"], rtol=1e-10)


def test_block_fit_from_a_store_in_tiles(tmp_path, monkeypatch):
    """Tiles of 7 samples: each block's samples lie in several; the fit gathers them."""
    expression = pd.read_csv(FIXTURES / "block_expression.csv", index_col=0).T
    samples = pd.read_csv(FIXTURES / "block_samples.csv", index_col=0)
    store = tmp_path / "c.zarr"
    create_cohort(store, expression.astype(np.float32), samples=samples, chunks=(7, 50))
    monkeypatch.setattr(_gene_columns, "TASK_GENES", 32)
    monkeypatch.setattr(_gene_columns, "VALUES_PER_BLOCK", 30 * 5)
    rounded = _cohort(dtype=np.float32)
    rounded["expression"] = rounded["expression"].astype(np.float64)  # what the store holds
    in_memory = de.fit(rounded, DESIGN, block="patient")
    from_store = de.fit(store, DESIGN, block="patient")
    _close(from_store.attrs["correlation"], in_memory.attrs["correlation"], rtol=1e-12)
    for name in ("coefficient", "statistic", "pvalue", "s2", "mean_expression"):
        _close(from_store[name], in_memory[name], rtol=1e-10)


def test_blocks_of_one_sample_or_already_in_the_design_give_zero():
    cohort = _cohort()
    with pytest.warns(CohortexWarning, match="Blocks all of size 1"):
        single = de.duplicate_correlation(cohort, DESIGN, np.arange(30))
    assert single.attrs["consensus_correlation"] == 0.0
    with pytest.warns(CohortexWarning, match="design already holds the blocks"):
        held = de.duplicate_correlation(cohort, "~ patient + time", "patient")
    assert held.attrs["consensus_correlation"] == 0.0
    assert (held["correlation"].values == 0).all()
    assert single.attrs["weighted"] == held.attrs["weighted"] == 0  # the attrs of any result
    with pytest.warns(CohortexWarning, match="Blocks all of size 1"):
        weighted = de.duplicate_correlation(
            cohort, DESIGN, np.arange(30), weights=np.ones(cohort["expression"].shape)
        )
    assert weighted.attrs["weighted"] == 1


@pytest.mark.parametrize(
    "call, said",
    [
        (lambda c: de.duplicate_correlation(c, DESIGN, "subject"), "'block' parameter must name"),
        (lambda c: de.duplicate_correlation(c, DESIGN, "patient", trim=0.5), "'trim' parameter"),
        (lambda c: de.duplicate_correlation(c, DESIGN, ["a"] * 3), "one per sample \\(30\\)"),
        (
            lambda c: de.duplicate_correlation(c, DESIGN, ["a", ""] * 15),
            "block of 15 samples is missing",
        ),
        (lambda c: de.fit(c, DESIGN, correlation=0.3), "'correlation' goes with 'block'"),
        (
            lambda c: de.fit(c, DESIGN, block="patient", correlation=1.0),
            "'correlation' parameter must be in \\(-1, 1\\)",
        ),
        (
            lambda c: de.fit(c, DESIGN, block="patient", weights=np.ones(7)),
            "weights must have shape \\(30, 300\\)",
        ),
    ],
)
def test_block_options_are_checked(call, said):
    with pytest.raises(CohortexError, match=said):
        call(_cohort())


def test_a_gene_without_values_is_nan_and_leaves_the_others_alone():
    cohort = _cohort()
    consensus = float(_limma()[0]["consensus"][0])
    before = de.fit(cohort, DESIGN, block="patient", correlation=consensus)
    emptied = cohort.copy(deep=True)
    emptied["expression"][:, 3] = np.nan
    with np.errstate(all="raise"):  # no warning on the way
        after = de.fit(emptied, DESIGN, block="patient", correlation=consensus)
    assert np.isnan(after["coefficient"].values[:, 3]).all() and after["df_residual"][3] == 0
    keep = np.arange(300) != 3
    _close(after["coefficient"].values[:, keep], before["coefficient"].values[:, keep], 1e-12)
    _close(after["s2"].values[keep], before["s2"].values[keep], 1e-12)
    # duplicateCorrelation too: NA for the gene (it raised IndexError before any check)
    found = de.duplicate_correlation(emptied, DESIGN, "patient")
    assert np.isnan(found["correlation"].values[3])
    expected = de.duplicate_correlation(cohort, DESIGN, "patient")["correlation"].values
    _close(found["correlation"].values[keep], expected[keep], 1e-12)


def test_no_correlation_is_the_ordinary_fit():
    """ρ = 0 makes V the identity: the block fit is lmFit's, singletons and all."""
    cohort = _cohort()
    blocks = np.concatenate([np.arange(10), np.repeat(np.arange(10, 20), 2)])  # 10 alone
    plain = de.fit(cohort, DESIGN)
    blocked = de.fit(cohort, DESIGN, block=blocks, correlation=0.0)
    for name in ("coefficient", "statistic", "pvalue", "s2", "stdev_unscaled"):
        _close(blocked[name], plain[name], rtol=1e-10)
