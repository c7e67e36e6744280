"""Preranked GSEA: enrichment scores against the running sum walked gene by gene."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, de, genesets
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
