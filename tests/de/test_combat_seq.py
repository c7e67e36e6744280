"""ComBat-seq against sva's ComBat_seq (fixtures from tests/fixtures/make_combat_seq_fixtures.R,
sva 3.46 with edgeR 3.40): three batches, with the condition kept, a covariate, the null model,
and batches whose dispersions are fitted alone; genes without counts in a batch left as they
are; R's qnbinom; and a simulated study whose batches it removes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from cohortex import CohortexError, create_cohort, de, open_cohort
from cohortex.stats._negative_binomial import nb_cdf, nb_quantile

from conftest import fixture_cohort

EDGER = Path(__file__).parents[1] / "fixtures" / "edger"
CASES = {
    "batch": ("batch", {}),
    "condition": ("batch", {"group": "condition"}),
    "covariate": ("batch", {"group": "condition", "covariates": "~ sex"}),
    "null_model": ("batch", {"group": "condition", "full_model": False}),
    "batch_alone": ("alone", {"group": "condition"}),
}


def _cohort(chunks=(36, 90)):
    """36 samples × 400 genes of simulated counts (three batches, two conditions, sex)."""
    return fixture_cohort(
        EDGER / "combat_seq_counts.csv",
        EDGER / "combat_seq_samples.csv",
        scale="counts",
        chunks=chunks,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_combat_seq_equals_sva(case):
    """Every corrected count equal to sva's, and each batch's common dispersion (edgeR's
    estimateGLMCommonDisp, R's optimize) to 1e-8."""
    batch, options = CASES[case]
    corrected = de.combat_seq(_cohort(), batch, **options)
    expected = pd.read_csv(EDGER / f"combat_seq_{case}.csv", index_col=0).to_numpy().T
    ours = corrected["expression"].values
    np.testing.assert_array_equal(ours, expected)
    steps = pd.read_csv(EDGER / f"combat_seq_{case}_steps.csv", index_col=0)
    common = steps[[c for c in steps.columns if c.startswith("common_")]].iloc[0].to_numpy()
    np.testing.assert_allclose(corrected.attrs["combat_seq_dispersion"], common, rtol=1e-8)
    original = _cohort()["expression"].values
    left = ~steps["kept"].to_numpy()
    assert left[4] and left[5]  # without counts in a batch (and others): as they were
    np.testing.assert_array_equal(ours[:, left], original[:, left])
    assert (ours != original).mean() > 0.5  # most counts moved
    assert corrected.attrs["batch_removed"] == batch


def test_combat_seq_in_tiles_from_a_store(tmp_path, monkeypatch):
    """From a Zarr store in several gene tiles: the same counts, in the store's dtype."""
    monkeypatch.setattr("cohortex.de._combat_seq._TILE_VALUES", 36 * 70)
    cohort = _cohort(chunks=None)
    samples = pd.read_csv(EDGER / "combat_seq_samples.csv", index_col=0).reset_index(drop=True)
    values = cohort["expression"].values.astype(np.int32)
    create_cohort(tmp_path / "c.zarr", values, samples=samples, scale="counts", chunks=(10, 64))
    stored = open_cohort(tmp_path / "c.zarr")
    corrected = de.combat_seq(stored, "batch", group="condition")
    assert corrected["expression"].data.numblocks[1] > 4
    assert corrected["expression"].dtype == stored["expression"].dtype
    expected = pd.read_csv(EDGER / "combat_seq_condition.csv", index_col=0).to_numpy().T
    np.testing.assert_array_equal(corrected["expression"].values, expected)


def test_nb_quantile_equals_r_qnbinom():
    """R's qnbinom on random probabilities, on a count's cdf (kept by R's fuzz), in the far
    tails and at means beyond R's plain search; and the fuzz itself: a p a few ulps above a
    count's cdf still gives that count, 16 ulps above gives the next."""
    table = pd.read_csv(EDGER / "combat_seq_qnbinom.csv")
    size, mean = table["size"].to_numpy(), table["mu"].to_numpy()
    np.testing.assert_array_equal(nb_quantile(table["p"].to_numpy(), size, mean), table["q"])
    counts = np.array([0.0, 3.0, 40.0, 900.0])
    size, mean = np.array([0.5, 2.5, 10.0, 30.0]), np.array([3.0, 10.0, 50.0, 1000.0])
    at = nb_cdf(counts, size, mean)
    np.testing.assert_allclose(at, stats.nbinom.cdf(counts, size, size / (size + mean)))
    eps = np.finfo(np.float64).eps
    np.testing.assert_array_equal(nb_quantile(at, size, mean), counts)
    np.testing.assert_array_equal(nb_quantile(at * (1 + 4 * eps), size, mean), counts)
    np.testing.assert_array_equal(nb_quantile(at * (1 + 16 * eps), size, mean), counts + 1)
    p = np.random.default_rng(3).uniform(1e-6, 1 - 1e-6, 2000)
    shapes = np.random.default_rng(4).uniform(0.1, 50.0, (2, 2000))
    expected = stats.nbinom.ppf(p, shapes[0], shapes[0] / (shapes[0] + 20.0 * shapes[1]))
    np.testing.assert_array_equal(nb_quantile(p, shapes[0], 20.0 * shapes[1]), expected)
    assert special.betainc(2.0, 1.0, 0.5) == nb_cdf(np.array(0.0), 2.0, 2.0)


def test_combat_seq_removes_a_planted_batch_effect_and_keeps_the_biology(tmp_path):
    """A simulated RNA-seq study (120 samples × 1,500 genes of negative-binomial counts,
    tumour vs normal in three batches, each batch scaling every gene by 2^N(0, 0.5²)): with
    the defaults and the condition kept, the batches no longer separate the genes' log-CPM
    (ANOVA p < 0.01 in at most 3% of genes, from most), while the planted condition effects
    are found as well as before (AUROC of the tumour-normal t)."""
    from cohortex import simulate

    store = tmp_path / "s.zarr"
    simulate(
        store,
        120,
        1500,
        distribution="negbinom",
        library_size=2e6,
        batches=3,
        batch_effect=0.5,
        n_de=0.1,
        seed=5,
        progress=False,
    )
    cohort = open_cohort(store)
    corrected = de.combat_seq(cohort, "batch", group="condition")

    def batch_and_condition(counts: np.ndarray) -> tuple[float, float]:
        logged = np.log2(counts / counts.sum(axis=1, keepdims=True) * 1e6 + 0.5)
        batches = cohort["batch"].values
        expressed = counts.mean(axis=0) >= 5
        by_batch = [logged[batches == b][:, expressed] for b in np.unique(batches)]
        significant = float(np.mean(stats.f_oneway(*by_batch).pvalue < 0.01))
        tumour = cohort["condition"].values == "tumor"
        t = stats.ttest_ind(logged[tumour], logged[~tumour]).statistic
        truth = cohort["is_de"].values
        auroc = stats.mannwhitneyu(np.abs(t[truth]), np.abs(t[~truth])).statistic / (
            truth.sum() * (~truth).sum()
        )
        return significant, float(auroc)

    before = batch_and_condition(cohort["expression"].values.astype(np.float64))
    after = batch_and_condition(corrected["expression"].values.astype(np.float64))
    assert before[0] > 0.5
    assert after[0] < 0.03
    assert after[1] >= before[1] - 0.01 and after[1] > 0.9
    assert np.all(corrected["expression"].values == np.round(corrected["expression"].values))


def test_combat_seq_refuses_what_sva_refuses():
    cohort = _cohort()
    with pytest.raises(CohortexError, match="two samples in every batch"):
        de.combat_seq(cohort, np.r_[["a"], ["b"] * 35])
    with pytest.raises(CohortexError, match="at least two batches"):
        de.combat_seq(cohort, np.full(36, "a"))
    with pytest.raises(CohortexError, match="confounded with the batches"):
        de.combat_seq(cohort, "batch", group=cohort["batch"].values)
    fractional = cohort.copy()
    fractional["expression"] = cohort["expression"] + 0.5
    with pytest.raises(CohortexError, match="whole non-negative counts"):
        de.combat_seq(fractional, "batch")
    logged = cohort.assign_attrs(scale="log2")
    with pytest.raises(CohortexError, match="raw counts"):
        de.combat_seq(logged, "batch")
