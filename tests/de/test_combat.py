"""ComBat against sva's (fixtures from tests/fixtures/make_combat_fixtures.R, sva 3.46): two
and three batches, with a design kept, mean only, a reference batch, the non-parametric prior;
a gene constant within a batch left as it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, de

from conftest import fixture_cohort

LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"
CASES = {
    "batch": {"batch": "batch"},
    "batch_group": {"batch": "batch", "design": "~ group"},
    "site_group": {"batch": "site", "design": "~ group"},
    "site_mean_only": {"batch": "site", "design": "~ group", "mean_only": True},
    "site_reference": {"batch": "site", "design": "~ group", "ref_batch": "s2"},
    "site_nonparametric": {"batch": "site", "design": "~ group", "parametric": False},
    "site_nonparametric_mean_only": {
        "batch": "site",
        "design": "~ group",
        "parametric": False,
        "mean_only": True,
    },
    "site_nonparametric_reference": {
        "batch": "site",
        "design": "~ group",
        "parametric": False,
        "ref_batch": "s2",
    },
}


def _cohort(chunks=(7, 90)):
    """30 samples × 400 genes (fry's fixture, one gene constant within batch y)."""
    return fixture_cohort(
        LIMMA / "combat_expression.csv", LIMMA / "combat_samples.csv", scale="log2", chunks=chunks
    )


@pytest.mark.parametrize("case", list(CASES))
def test_combat_equals_sva(case):
    options = dict(CASES[case])
    corrected = de.combat(_cohort(), options.pop("batch"), **options)
    expected = pd.read_csv(LIMMA / f"combat_{case}.csv", index_col=0).to_numpy().T
    ours = corrected["expression"].values
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)
    original = _cohort()["expression"].values
    np.testing.assert_array_equal(ours[:, 399], original[:, 399])  # constant in a batch
    if case.endswith("reference"):
        s2 = _cohort()["site"].values == "s2"
        np.testing.assert_array_equal(ours[s2], original[s2])


@pytest.mark.parametrize("case", ["missing", "missing_reference", "missing_nonparametric"])
def test_combat_with_missing_values_equals_sva(case):
    """sva's NA path: each gene's fit and batch moments on its values, the pooled variance
    as rowVars of the residuals (for every gene once any value is missing); NA stays NA."""
    cohort = fixture_cohort(
        LIMMA / "combat_missing_expression.csv",
        LIMMA / "combat_samples.csv",
        scale="log2",
        chunks=(7, 90),
    )
    options = {
        "missing": {},
        "missing_reference": {"ref_batch": "s2"},
        "missing_nonparametric": {"parametric": False},
    }[case]
    corrected = de.combat(cohort, "site", design="~ group", **options)["expression"].values
    expected = pd.read_csv(LIMMA / f"combat_{case}.csv", index_col=0).to_numpy().T
    np.testing.assert_array_equal(np.isnan(corrected), np.isnan(expected))
    np.testing.assert_allclose(corrected, expected, rtol=1e-9, atol=1e-9)


def test_combat_removes_a_planted_batch_effect_and_keeps_the_biology():
    """A simulated study (400 samples × 2,000 genes, tumour vs normal in two sites, each site
    shifting and scaling every gene): after ComBat with the condition kept, the sites' means
    and spreads agree, and the condition's effect is what was planted."""
    import xarray as xr

    from cohortex.simulate import simulate_array

    x, samples, genes = simulate_array(400, 2000, n_de=100, log2fc=(0.5, 1.0), seed=9)
    rng = np.random.default_rng(9)
    site = np.where(rng.random(400) < 0.4, "A", "B")
    shift, scale = rng.normal(0.0, 0.8, 2000), np.exp(rng.normal(0.0, 0.3, 2000))
    batched = x.astype(np.float64)
    in_b = site == "B"
    centre = batched[in_b].mean(axis=0)
    batched[in_b] = (batched[in_b] - centre) * scale + centre + shift
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), batched),
            "condition": ("sample", samples["condition"].to_numpy()),
            "site": ("sample", site),
        },
        coords={"gene": genes.index.to_numpy()},
    )
    corrected = de.combat(cohort, "site", design="~ condition")["expression"].values
    tumour = samples["condition"].to_numpy() == "tumor"
    for values, tolerance in ((batched, None), (corrected, 0.15)):
        gap = values[in_b & tumour].mean(axis=0) - values[~in_b & tumour].mean(axis=0)
        if tolerance is None:
            assert np.mean(np.abs(gap)) > 0.5  # the planted shift
        else:
            assert np.mean(np.abs(gap)) < tolerance
    ratio = corrected[in_b].std(axis=0) / corrected[~in_b].std(axis=0)
    assert np.median(np.abs(np.log(ratio))) < 0.1
    effect = corrected[tumour].mean(axis=0) - corrected[~tumour].mean(axis=0)
    truth = genes["true_log2fc"].to_numpy()
    assert np.corrcoef(effect[truth != 0], truth[truth != 0])[0, 1] > 0.9


def test_combat_refuses_what_it_cannot_do():
    with pytest.raises(CohortexError, match="at least two batches"):
        de.combat(_cohort(), np.full(30, "one"))
    with pytest.raises(CohortexError, match="not one of the batches"):
        de.combat(_cohort(), "site", ref_batch="s9")
    with pytest.raises(CohortexError, match="confounded with the batches"):
        de.combat(_cohort(), "batch", design="~ batch")
    with pytest.raises(CohortexError, match="not a sample variable"):
        de.combat(_cohort(), "sites")


def test_combat_is_the_same_in_any_tiles(monkeypatch):
    """Rows split over many tasks (a large cohort's case) give the single task's values."""
    from cohortex.de import _combat

    whole = de.combat(_cohort(), "site", design="~ group")["expression"].values
    monkeypatch.setattr(_combat, "rows_per_task", lambda n_genes: 7)
    tiled = de.combat(_cohort(chunks=(5, 70)), "site", design="~ group")
    assert len(tiled["expression"].data.chunks[0]) > 1
    np.testing.assert_allclose(tiled["expression"].values, whole, rtol=1e-12, atol=1e-12)


def test_nonparametric_prior_equals_sva_formula_from_the_values():
    """sva's int.eprior computed from each gene's values, in logs (scipy's logsumexp), on a
    batch of 1,000 samples — where sva's own likelihoods underflow and its values are all NaN
    (R 4.2, sva 3.46: from about 700 samples a batch): the kernel's sums and scaled logs give
    the same weighted means."""
    from scipy.special import logsumexp

    from cohortex.stats._cpu.combat_prior import nonparametric_prior

    rng = np.random.default_rng(8)
    values = rng.normal(
        rng.normal(0, 0.4, 150)[:, None], rng.uniform(0.6, 1.5, 150)[:, None], (150, 1000)
    )
    g, d = values.mean(axis=1), values.var(axis=1, ddof=1)
    gamma_star, delta_star = nonparametric_prior(
        g, d, values.sum(axis=1), (values**2).sum(axis=1), np.full(150, 1000.0)
    )
    for i in (0, 7, 149):
        others = np.delete(np.arange(150), i)
        sum2 = ((values[i][None, :] - g[others][:, None]) ** 2).sum(axis=1)
        log_lh = -500.0 * np.log(2 * np.pi * d[others]) - sum2 / (2 * d[others])
        weights = np.exp(log_lh - logsumexp(log_lh))
        assert gamma_star[i] == pytest.approx(weights @ g[others], rel=1e-9)
        assert delta_star[i] == pytest.approx(weights @ d[others], rel=1e-9)
    assert np.isfinite(gamma_star).all() and np.isfinite(delta_star).all()


def test_nonparametric_combat_of_large_batches_is_finite_and_removes_them():
    """1,400 samples in two batches (sva returns NaN for every value here): finite values,
    the batches' means and spreads brought together (Welch's t of the batches at p < 0.01
    in at most 5% of the genes, from all)."""
    import xarray as xr
    from scipy import stats

    rng = np.random.default_rng(2)
    batch = np.repeat(["a", "b"], 700)
    x = rng.normal(5.0, 1.0, (1400, 120))
    x[batch == "b"] = x[batch == "b"] * 1.5 + 0.8
    cohort = xr.Dataset(
        {"expression": (("sample", "gene"), x), "batch": ("sample", batch)},
        attrs={"scale": "log2"},
    )
    corrected = de.combat(cohort, "batch", parametric=False)["expression"].values
    assert np.isfinite(corrected).all()
    a, b = corrected[batch == "a"], corrected[batch == "b"]
    before = stats.ttest_ind(x[batch == "a"], x[batch == "b"], equal_var=False).pvalue
    after = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert np.all(before < 1e-10) and np.mean(after < 0.01) <= 0.05
    np.testing.assert_allclose(a.std(axis=0), b.std(axis=0), rtol=0.1)
