"""Preranked GSEA: enrichment scores against the running sum walked gene by gene."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, CohortexWarning, de, genesets
from cohortex.genesets import GeneSets


def _walk(ranked: pd.Series, members: set[str], weight: float) -> tuple[float, list[str]]:
    """Subramanian et al.'s running sum, one gene at a time; the leading edge."""
    ranked = ranked.sort_values(ascending=False, kind="stable")
    hits = [g in members for g in ranked.index]
    total = sum(abs(v) ** weight for g, v in ranked.items() if g in members)
    miss = 1.0 / (len(ranked) - sum(hits))
    running, best, best_at = 0.0, 0.0, -1
    for i, value in enumerate(ranked.to_numpy()):
        running += abs(value) ** weight / total if hits[i] else -miss
        if abs(running) > abs(best):
            best, best_at = running, i
    genes = list(ranked.index)
    if best >= 0:
        edge = [g for g in genes[: best_at + 1] if g in members]
    else:
        edge = [g for g in genes[best_at + 1 :] if g in members]
    return best, edge


@pytest.mark.parametrize("weight", [1.0, 0.0, 2.0])
def test_enrichment_scores_equal_the_running_sum(weight):
    rng = np.random.default_rng(60)
    genes = [f"g{i}" for i in range(400)]
    ranked = pd.Series(rng.normal(size=400), index=genes)
    ranked.iloc[:20] += 3.0  # g0..g19 high
    ranked.iloc[20:40] -= 3.0  # g20..g39 low
    sets = {f"s{j}": rng.choice(genes, rng.integers(15, 60), replace=False) for j in range(25)}
    sets |= {"up": genes[:20], "down": genes[20:40]}
    result = genesets.gsea(ranked, GeneSets.from_dict(sets), weight=weight, permutations=200)
    for name in result["gene_set"].values:
        es, edge = _walk(ranked, set(sets[name]), weight)
        row = result.sel(gene_set=name)
        np.testing.assert_allclose(float(row["es"]), es, rtol=1e-10, atol=1e-12)
        assert row["leading_edge"].item().split(",") == edge
    up, down = result.sel(gene_set="up"), result.sel(gene_set="down")
    assert float(up["nes"]) > 1.5 and float(down["nes"]) < -1.5
    # no random set reaches them: p is 1 / (1 + the null draws of their sign), about 1 / 100
    assert float(up["pvalue"]) < 0.02 and float(down["pvalue"]) < 0.02


def test_gsea_p_values_are_uniform_under_the_null_and_results_rank():
    rng = np.random.default_rng(61)
    genes = [f"g{i}" for i in range(1000)]
    ranked = pd.Series(rng.normal(size=1000), index=genes)
    sets = GeneSets.from_dict({f"s{j}": rng.choice(genes, 40, replace=False) for j in range(200)})
    result = genesets.gsea(ranked, sets, permutations=500, seed=1)
    p = result["pvalue"].values
    assert 0.35 < p.mean() < 0.65 and (p < 0.05).mean() < 0.12  # null sets: uniform p
    x = rng.normal(size=(40, 1000))
    x[:20, :50] += 1.0
    test = de.test(x, np.repeat(["t", "n"], 20), reference="n")
    planted = GeneSets.from_dict(
        {"planted": test["gene"].values[:50], "other": test["gene"].values[500:560]}
    )
    from_result = genesets.gsea(test, planted, permutations=300)
    assert float(from_result["padj"].sel(gene_set="planted")) < 0.01
    with pytest.raises(CohortexError, match="No gene set has between 15 and 500"):
        genesets.gsea(ranked, GeneSets.from_dict({"tiny": genes[:3]}))
    both = de.test(x, np.repeat(["t", "n"], 20))  # t_vs_n and n_vs_t
    with pytest.raises(CohortexError, match=r"several contrasts; .*: n_vs_t, t_vs_n\.$"):
        genesets.gsea(both, planted, permutations=300)


def _permutation_p(values: np.ndarray, size: int, es: float, draws: int, seed: int) -> float:
    """P(ES ≥ es | ES ≥ 0) of random sets of ``size`` by brute force: ``draws`` sets, each drawn
    with replacement and kept only without repeats (uniform over the sets of that size)."""
    rng = np.random.default_rng(seed)
    n = values.size
    hits = same_sign = 0
    kept = 0
    while kept < draws:
        sets = np.sort(rng.integers(0, n, size=(200_000, size)), axis=1)
        sets = sets[(np.diff(sets, axis=1) > 0).all(axis=1)][: draws - kept]
        null = genesets._gsea.enrichment_scores(sets, values)
        hits += int((null >= es).sum())
        same_sign += int((null >= 0).sum())
        kept += sets.shape[0]
    return (hits + 1) / (same_sign + 1)


def test_multilevel_p_values_agree_with_brute_force_within_their_stated_error():
    rng = np.random.default_rng(62)
    genes = np.array([f"g{i}" for i in range(1000)])
    ranking = pd.Series(rng.normal(size=1000), index=genes)
    ordered = ranking.sort_values(ascending=False)
    # 8 genes spread over the top 80 and 12 over the rest: p about 2e-4, far below 1/1000
    members = ordered.index.to_numpy()[np.r_[np.arange(0, 80, 10), 300 + np.arange(12) * 55]]
    sets = GeneSets.from_dict({"s": members})
    runs = [genesets.gsea(ranking, sets, min_size=5, seed=s) for s in range(8)]
    es = float(runs[0]["es"].item())
    exact = _permutation_p(np.abs(ordered.to_numpy()), 20, es, 2_000_000, seed=3)
    assert 1e-4 < exact < 5e-4  # ~400 hits: log2 error about 0.07
    log2_p = np.log2([float(r["pvalue"].item()) for r in runs])
    stated = float(runs[0]["log2err"].item())
    assert 0.3 < stated < 1.0
    # the estimates scatter as their stated error says, around the brute-force p
    assert 0.4 * stated < log2_p.std(ddof=1) < 2.0 * stated
    assert abs(log2_p.mean() - np.log2(exact)) < 3 * np.hypot(stated / np.sqrt(8), 0.07)
    # permutations alone could not resolve it: their p is bounded by 1 / (1 + null draws ≥ 0)
    simple = genesets.gsea(ranking, sets, min_size=5, multilevel=False)
    assert float(simple["pvalue"].item()) > 1e-3


def test_multilevel_reaches_deep_tails_and_clips_them_at_eps():
    rng = np.random.default_rng(63)
    genes = np.array([f"g{i}" for i in range(5000)])
    ranking = pd.Series(rng.normal(size=5000), index=genes)
    ordered = ranking.sort_values(ascending=False).index.to_numpy()
    # ever stronger sets: 30 genes spread over the top 480, 240, 120, 60 ranks; one at the bottom
    sets = {f"top{w}": ordered[np.linspace(0, w - 1, 30).astype(int)] for w in (60, 120, 240, 480)}
    sets["bottom60"] = ordered[::-1][np.linspace(0, 59, 30).astype(int)]
    result = genesets.gsea(ranking, GeneSets.from_dict(sets), eps=0)
    p = result["pvalue"].to_series()
    assert (p < 1e-6).all()  # far below what 1,000 permutations can show
    assert p["top60"] < p["top120"] < p["top240"] < p["top480"]
    assert np.isfinite(result["log2err"]).all()
    # the mirror image of top60 (statistics of another draw, so only roughly equal)
    err = result["log2err"].to_series()
    assert abs(np.log2(p["bottom60"] / p["top60"])) < 4 * np.hypot(err["bottom60"], err["top60"])
    with pytest.warns(CohortexWarning, match="below eps=1e-10"):
        clipped = genesets.gsea(ranking, GeneSets.from_dict(sets), eps=1e-10)
    assert (clipped["pvalue"].to_series() == 1e-10).all()
    assert clipped["log2err"].isnull().all()


def test_sets_without_enough_null_scores_of_their_sign_have_no_p_value():
    rng = np.random.default_rng(64)
    genes = [f"g{i}" for i in range(500)]
    ranking = pd.Series(rng.normal(size=500), index=genes)
    sets = GeneSets.from_dict({f"s{j}": rng.choice(genes, 20, replace=False) for j in range(5)})
    with pytest.warns(CohortexWarning, match="5 gene sets have no p-value"):
        result = genesets.gsea(ranking, sets, min_size=5, permutations=5)
    assert result["pvalue"].isnull().all() and result["nes"].isnull().all()
    assert np.isfinite(result["es"]).all()
