"""WGCNA's network on xp (stats/_network.py) against WGCNA 1.72 (fixtures from
tests/fixtures/make_wgcna_fixtures.R): the correlations from co-moments of standardised blocks,
the adjacency of each network type, the topological overlap (unsigned, and signed with the
correlations' signs kept) and pickSoftThreshold's connectivities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex.stats import _network
from cohortex.stats._network import (
    accumulate_gram,
    adjacency,
    bicor_columns,
    connectivities,
    correlation_from_gram,
    pairwise_adjacency_sums,
    pairwise_bicor,
    pairwise_bicor_adjacency_sums,
    pairwise_correlation,
    pairwise_spearman,
    spearman_columns,
    tom_dissimilarity,
)

from conftest import to_numpy

WGCNA = Path(__file__).parents[1] / "fixtures" / "wgcna"
LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"
CASES = {  # fixture: (expression, power, network, TOM)
    "bladder": ("bladder", 6, "unsigned", "unsigned"),
    "bladder_signed_tom": ("bladder", 6, "unsigned", "signed"),
    "simulated": ("simulated", 12, "signed", "unsigned"),
    "simulated_hybrid": ("simulated", 6, "signed hybrid", "unsigned"),
}


def expression(name: str) -> np.ndarray:
    if name == "bladder":
        return pd.read_csv(LIMMA / "bladder_expression.csv", index_col=0).to_numpy().T
    return pd.read_csv(WGCNA / "simulated_expression.csv", index_col=0).to_numpy()


def correlation(xp, x: np.ndarray, blocks: int = 1) -> object:
    mean, sd = x.mean(axis=0), x.std(axis=0, ddof=1)
    gram = xp.zeros((x.shape[1], x.shape[1]))
    for part in np.array_split(x, blocks):
        accumulate_gram(gram, xp.asarray(part), xp.asarray(mean), xp.asarray(sd))
    return correlation_from_gram(gram)


@pytest.mark.parametrize("blocks", [1, 4])
def test_correlation_equals_pearson(xp, monkeypatch, blocks):
    monkeypatch.setattr(_network, "_BLOCK_VALUES", 1000 * 7)  # 7 rows a block
    monkeypatch.setattr(_network, "_PRODUCT_VALUES", 1000 * 30)  # the Gram's too
    x = expression("bladder")
    c = correlation(xp, x, blocks)
    np.testing.assert_allclose(to_numpy(c), np.corrcoef(x, rowvar=False), rtol=0, atol=1e-13)
    assert np.all(np.diagonal(to_numpy(c)) == 1.0)


def test_pairwise_correlation_equals_rs_use_p(xp, monkeypatch):
    """cor(use = "p") of the simulated cohort with 4 % missing (make_missing_network_fixtures.R),
    a few rows a block; pairs without 2 shared samples are NaN."""
    monkeypatch.setattr(_network, "_PRODUCT_VALUES", 400 * 3)  # 3 rows a block
    x = pd.read_csv(WGCNA / "missing_simulated_expression.csv", index_col=0)
    expected = pd.read_csv(WGCNA / "missing_simulated_cor_rows.csv", index_col=0)
    values = x[expected.columns].to_numpy()
    present = ~np.isnan(values)
    z = np.where(present, (values - np.nanmean(values, 0)) / np.nanstd(values, 0, ddof=1), 0.0)
    rows = pairwise_correlation(xp.asarray(z), xp.asarray(present * 1.0), np.arange(10))
    np.testing.assert_allclose(to_numpy(rows), expected.to_numpy(), rtol=0, atol=1e-14)
    present[:, 0], present[:1, 0] = False, True  # one sample left to the first gene
    whole = to_numpy(pairwise_correlation(xp.asarray(z * present), xp.asarray(present * 1.0)))
    assert np.isnan(whole[0, 1:]).all() and np.isfinite(whole[1:, 1:]).all()
    assert np.all(np.diagonal(whole) == 1.0)


@pytest.mark.parametrize("cap", [1.0, 0.1])
def test_pairwise_bicor_is_bicor_columns_of_each_pairs_samples(xp, cap):
    """The compiled pairs against their twin, :func:`bicor_columns` of the samples both genes
    have: ties, a median absolute deviation of 0 (Pearson's fallback) over some pairs'
    samples, outliers past the cap, a gene without missing values, a pair sharing 1 sample."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 12))
    x[:, 3] = np.round(x[:, 3])
    x[:6, 4] += 10.0
    x[rng.random(40) < 0.55, 5] = 0.0
    missing = rng.random(x.shape) < 0.15
    missing[:, 0] = False
    missing[:, 10], missing[:, 11] = np.arange(40) > 20, np.arange(40) < 20
    values = np.where(missing, np.nan, x)
    whole = to_numpy(pairwise_bicor(xp.asarray(values), max_p_outliers=cap))
    expected = np.eye(12)
    for i in range(12):
        for j in range(12):
            shared = ~missing[:, i] & ~missing[:, j]
            if i != j and shared.sum() >= 2:
                columns = bicor_columns(x[shared][:, [i, j]], cap)
                expected[i, j] = columns[:, 0] @ columns[:, 1]
            elif i != j:
                expected[i, j] = np.nan
    np.testing.assert_allclose(whole, expected, rtol=0, atol=1e-14)
    assert np.isnan(whole[10, 11]) and np.isfinite(np.delete(whole, [10, 11], 0)).all()
    rows = to_numpy(pairwise_bicor(xp.asarray(values), xp.asarray([5, 0, 11]), cap))
    np.testing.assert_array_equal(rows, whole[[5, 0, 11]])
    # quick = 1: every gene's own column over its own samples, 0 where it misses
    own = np.zeros_like(x)
    for g in range(12):
        own[~missing[:, g], g] = bicor_columns(x[~missing[:, g], g][:, None], cap)[:, 0]
    quick = to_numpy(pairwise_bicor(xp.asarray(values), max_p_outliers=cap, quick=1.0))
    np.testing.assert_allclose(
        np.delete(quick, [10, 11], 0), np.delete(own.T @ own, [10, 11], 0), atol=1e-14
    )


def test_pairwise_spearman_is_spearman_columns_of_each_pairs_samples(xp):
    """The compiled pairs against their twin, :func:`spearman_columns` of the samples both
    genes have: ties (a rounded gene, a gene half zeros), a gene without missing values, a
    pair sharing no sample."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 12))
    x[:, 3] = np.round(x[:, 3])
    x[rng.random(40) < 0.5, 5] = 0.0
    missing = rng.random(x.shape) < 0.15
    missing[:, 0] = False
    missing[:, 10], missing[:, 11] = np.arange(40) > 20, np.arange(40) <= 20
    whole = to_numpy(pairwise_spearman(xp.asarray(np.where(missing, np.nan, x))))
    expected = np.eye(12)
    for i in range(12):
        for j in range(12):
            shared = ~missing[:, i] & ~missing[:, j]
            if i != j and shared.sum() >= 2:
                columns = spearman_columns(x[shared][:, [i, j]])
                expected[i, j] = columns[:, 0] @ columns[:, 1]
            elif i != j:
                expected[i, j] = np.nan
    np.testing.assert_allclose(whole, expected, rtol=0, atol=1e-14)
    assert np.isnan(whole[10, 11]) and np.isfinite(np.delete(whole, [10, 11], 0)).all()
    rows = to_numpy(
        pairwise_spearman(xp.asarray(np.where(missing, np.nan, x)), xp.asarray([5, 0, 11]))
    )
    np.testing.assert_array_equal(rows, whole[[5, 0, 11]])


@pytest.mark.parametrize("network", ["unsigned", "signed"])
def test_pairwise_bicor_adjacency_sums_from_blocks_of_the_upper_triangle(monkeypatch, network):
    """kTotal of bicor(use = "p") from blocks of 7 rows, against the whole matrix's sums; a
    gene sharing one sample with another makes both NaN."""
    monkeypatch.setattr(_network, "_PAIRWISE_VALUES", 60 * 7)
    x = pd.read_csv(WGCNA / "bicor_missing_expression.csv", index_col=0).to_numpy()[:, 6:66]
    whole = pairwise_bicor(x, max_p_outliers=0.05)
    expected = adjacency(whole, 6.0, network).sum(axis=1) - 1.0
    sums = pairwise_bicor_adjacency_sums(x, 6.0, network, 0.05)
    np.testing.assert_allclose(sums, expected, rtol=1e-14, atol=1e-14)  # sums less 1
    x[30:, 1] = np.nan
    x[:30, 2] = np.nan  # genes 1 and 2 share no sample
    sums = pairwise_bicor_adjacency_sums(x, 6.0, network, 0.05)
    assert np.isnan(sums[[1, 2]]).all() and np.isfinite(np.delete(sums, [1, 2])).all()


@pytest.mark.parametrize(
    "name, power, network",
    [("missing_simulated", 12, "signed"), ("missing_bladder", 6, "unsigned")],
)
def test_pairwise_adjacency_sums_are_wgcnas_connectivity(xp, monkeypatch, name, power, network):
    """kTotal of adjacency(use = "p") (intramodularConnectivity, make_missing_network_fixtures.R)
    from blocks of rows of the upper triangle, a few rows a block."""
    monkeypatch.setattr(_network, "_PAIRWISE_VALUES", 400 * 7)
    x = pd.read_csv(WGCNA / f"{name}_expression.csv", index_col=0)
    expected = pd.read_csv(WGCNA / f"{name}_modules.csv")
    values = x[expected["gene"]].to_numpy()
    present = ~np.isnan(values)
    z = np.where(present, (values - np.nanmean(values, 0)) / np.nanstd(values, 0, ddof=1), 0.0)
    sums = pairwise_adjacency_sums(xp.asarray(z), xp.asarray(present * 1.0), power, network)
    np.testing.assert_allclose(to_numpy(sums), expected["k_total"], rtol=1e-12)
    present[:, 0], present[:1, 0] = False, True  # the first gene shares one sample with each
    sums = to_numpy(
        pairwise_adjacency_sums(xp.asarray(z * present), xp.asarray(present * 1.0), power, network)
    )
    assert np.isnan(sums).all()  # every gene has an undefined pair


@pytest.mark.parametrize("case", list(CASES))
def test_tom_equals_wgcna(xp, case):
    name, power, network, tom = CASES[case]
    c = correlation(xp, expression(name))
    keep_sign = tom == "signed" and network == "unsigned"
    dissimilarity, connectivity = tom_dissimilarity(
        adjacency(c, power, network, keep_sign=keep_sign), signed=tom == "signed"
    )
    expected = pd.read_csv(WGCNA / f"{case}_tom_rows.csv", index_col=0).to_numpy()
    np.testing.assert_allclose(1.0 - to_numpy(dissimilarity)[:10], expected, rtol=0, atol=1e-12)
    # WGCNA's kTotal (intramodularConnectivity of the unsigned adjacency) plus 1
    k_total = pd.read_csv(WGCNA / f"{case}_modules.csv")["k_total"].to_numpy()
    np.testing.assert_allclose(to_numpy(connectivity) - 1.0, k_total, rtol=1e-12)


def test_signed_tom_differs_from_unsigned_where_signs_disagree(xp):
    c = correlation(xp, expression("bladder"))
    unsigned, _ = tom_dissimilarity(adjacency(c, 6, "unsigned"))
    signed, _ = tom_dissimilarity(adjacency(c, 6, "unsigned", keep_sign=True), signed=True)
    assert np.max(np.abs(to_numpy(unsigned) - to_numpy(signed))) > 1e-3


def test_adjacency_of_each_network_type(xp):
    c = xp.asarray(np.array([-0.5, 0.0, 0.5, 1.0]))
    np.testing.assert_allclose(to_numpy(adjacency(c, 2, "unsigned")), [0.25, 0, 0.25, 1])
    np.testing.assert_allclose(to_numpy(adjacency(c, 2, "signed")), [0.0625, 0.25, 0.5625, 1])
    np.testing.assert_allclose(to_numpy(adjacency(c, 2, "signed hybrid")), [0, 0, 0.25, 1])
    np.testing.assert_allclose(
        to_numpy(adjacency(c, 3, "unsigned", keep_sign=True)), [-0.125, 0, 0.125, 1]
    )


def test_connectivities_by_blocks_equal_direct_powers(xp):
    c = to_numpy(correlation(xp, expression("simulated")))
    powers = (1.0, 2.0, 3.0, 6.0, 12.0)
    whole = to_numpy(connectivities(xp.asarray(c), 0, powers, "signed"))
    blocks = np.concatenate(
        [
            to_numpy(connectivities(xp.asarray(c[s : s + 70]), s, powers, "signed"))
            for s in range(0, c.shape[0], 70)
        ]
    )
    direct = np.column_stack([(((1 + c) / 2) ** p).sum(axis=1) - 1 for p in powers])
    np.testing.assert_allclose(blocks, whole, rtol=1e-14)
    np.testing.assert_allclose(whole, direct, rtol=1e-12)
