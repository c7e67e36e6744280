"""Plots draw what the result says, headless."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import CohortexError, de, plot


@pytest.fixture
def result():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 1, (80, 60))
    labels = np.repeat(["t", "n"], 40)
    x[:40, :4] += 3.0  # 4 genes up
    x[:40, 4:7] -= 3.0  # 3 genes down
    return de.test(x, labels, reference="n")


def test_volcano_colours_the_calls(result, tmp_path):
    ax = plot.volcano(result, alpha=0.05, lfc=1.0, label=3)
    neutral, up, down = ax.collections[:3]
    assert len(up.get_offsets()) == 4 and len(down.get_offsets()) == 3
    assert len(neutral.get_offsets()) == 53
    assert len(ax.texts) == 3
    np.testing.assert_allclose(
        np.sort(up.get_offsets()[:, 0]), np.sort(result["log2fc"].values[:4])
    )
    assert ax.get_title() == "Volcano: t vs n"
    ax.figure.savefig(tmp_path / "volcano.png")
    assert (tmp_path / "volcano.png").stat().st_size > 1000


def test_ma_and_top_genes(result):
    ax = plot.ma(result)
    up = ax.collections[1].get_offsets()
    expected_x = (result["mean_group"].values[:4] + result["mean_reference"].values[:4]) / 2
    np.testing.assert_allclose(np.sort(up[:, 0]), np.sort(expected_x))
    bars = plot.top_genes(result, n=5)
    heights = sorted((p.get_width() for p in bars.patches), reverse=True)
    expected = np.sort(-np.log10(result["pvalue"].values))[::-1][:5]
    np.testing.assert_allclose(heights, expected)
    top_label = bars.get_yticklabels()[0].get_text()
    assert top_label == str(result["gene"].values[np.nanargmin(result["pvalue"].values)])


def test_contrast_choice():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 10))
    labels = np.repeat(["a", "b", "c"], 20)
    several = de.test(x, labels)
    with pytest.raises(
        CohortexError,
        match="has 3 contrasts; pass 'contrast', one of: a_vs_rest, b_vs_rest, c_vs_rest",
    ):
        plot.volcano(several)
    assert plot.volcano(several, contrast="b_vs_rest").get_title() == "Volcano: b vs rest"
    with pytest.raises(CohortexError, match="need a two-group result"):
        plot.volcano(de.test(x, labels, test="anova"))


def test_volcano_and_ma_of_a_linear_model():
    rng = np.random.default_rng(2)
    x = rng.normal(5, 1, (40, 30))
    labels = np.repeat(["t", "n"], 20)
    x[:20, :3] += 2.0
    design = np.column_stack([np.ones(40), labels == "t"]).astype(float)
    fit = de.fit(x, design, contrasts=["x1"])
    ax = plot.volcano(fit, lfc=1.0, label=0)
    up = ax.collections[1]
    np.testing.assert_allclose(
        np.sort(up.get_offsets()[:, 0]), np.sort(fit["coefficient"].values[0, :3])
    )
    ma = plot.ma(fit)
    np.testing.assert_allclose(
        np.sort(ma.collections[1].get_offsets()[:, 0]),
        np.sort(fit["mean_expression"].values[:3]),
    )


def test_volcano_and_ma_of_deseq():
    """DESeq2's baseMean (normalised counts) on a log axis; the genes independent filtering
    left without padj are not called."""
    import xarray as xr

    rng = np.random.default_rng(4)
    condition = np.repeat(["a", "b"], 6)
    mu = rng.gamma(2.0, 50.0, 200)[None, :] * np.ones((12, 1))
    mu[6:, :10] *= 8.0
    counts = rng.negative_binomial(10, 10 / (10 + mu)).astype(float)
    ds = xr.Dataset(
        {"expression": (("sample", "gene"), counts), "condition": ("sample", condition)},
        attrs={"scale": "counts"},
    )
    result = de.deseq(ds, "~ condition")
    ma = plot.ma(result, lfc=1.0)
    assert ma.get_xscale() == "log" and "normalised counts" in ma.get_xlabel()
    called = np.sort(ma.collections[1].get_offsets()[:, 0])
    expected = result["mean_expression"].values[
        (result["padj"].values[0] < 0.05) & (result["coefficient"].values[0] >= 1.0)
    ]
    np.testing.assert_allclose(called, np.sort(expected))
    assert 8 <= called.size <= 10
    plot.volcano(result)


def test_embedding_and_scree():
    from cohortex import pca

    rng = np.random.default_rng(2)
    labels = np.repeat(["a", "b", "c"], 30)
    x = rng.normal(size=(90, 20)) + (labels == "a")[:, None] * 4
    components = pca(x, 5)
    components["condition"] = ("sample", labels)
    ax = plot.embedding(components, "condition")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    first = ax.collections[0].get_offsets()
    np.testing.assert_allclose(first[:, 0], components["scores"].values[labels == "a", 0])
    ratio = components["explained_variance_ratio"].values
    assert ax.get_xlabel() == f"PC1 ({100 * ratio[0]:.1f}%)"
    bars = plot.scree(components)
    np.testing.assert_allclose([p.get_height() for p in bars.patches], ratio)
    with pytest.raises(
        CohortexError,
        match="'color' parameter must name a sample variable of "
        "the result; got 'batch'. Sample variables: condition",
    ):
        plot.embedding(components, "batch")


def test_calibration_draws_each_group_against_the_diagonal(tmp_path):
    table = pd.DataFrame(
        {
            "n": [10, 10, 10],
            "events": [6, 4, 2],
            "predicted": [0.3, 0.55, 0.8],
            "observed": [0.4, 0.5, 0.85],
            "lower": [0.2, 0.3, 0.7],
            "upper": [0.6, 0.7, 0.95],
        },
        index=pd.Index([1, 2, 3], name="group"),
    )
    ax = plot.calibration(table)
    diagonal, points = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(diagonal.get_xdata(), [0, 1])
    np.testing.assert_allclose(points.get_xdata(), table["predicted"])
    np.testing.assert_allclose(points.get_ydata(), table["observed"])
    ax.figure.savefig(tmp_path / "calibration.png")
    assert (tmp_path / "calibration.png").stat().st_size > 1000
    with pytest.raises(CohortexError, match="calibration"):
        plot.calibration(pd.DataFrame({"x": [1]}))


def test_km_draws_each_group_with_numbers_at_risk(tmp_path):
    from cohortex import survival

    time = [1, 2, 2, 3, 5, 6, 8, 9, 12, 15]
    event = [1, 1, 0, 1, 0, 1, 1, 0, 1, 0]
    group = ["a"] * 5 + ["b"] * 5
    curves = survival.kaplan_meier(None, time, event, by=group)
    ax = plot.km(curves, at_risk=4)
    steps = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
    assert len(steps) == 2
    np.testing.assert_allclose(steps[0].get_ydata(), [1.0, 0.8, 0.6, 0.3, 0.3])
    texts = [t.get_text() for t in ax.texts]
    assert texts[:2] == ["at risk", "a"]
    assert texts[2:6] == ["5", "1", "0", "0"]  # a at times 0, 5, 10, 15
    ax.figure.savefig(tmp_path / "km.png")
    assert (tmp_path / "km.png").stat().st_size > 1000
    # six groups: every number at risk within the figure (the layout makes room for them)
    many = survival.kaplan_meier(None, time * 6, event * 6, by=np.repeat(list("abcdef"), 10))
    figure = plot.km(many).figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    for text in figure.axes[0].texts:
        box = text.get_window_extent(renderer)
        assert box.y0 >= 0 and box.x0 >= 0, text.get_text()
    with pytest.raises(CohortexError, match="needs a table of cohortex.survival.kaplan_meier"):
        plot.km({"time": [1]})


def test_forest_orders_by_p_value(tmp_path):
    from cohortex import survival

    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 6))
    event_time = rng.exponential(1.0 / np.exp(0.8 * x[:, 2] - 0.6 * x[:, 4]))
    result = survival.cox(x, np.minimum(event_time, 3.0), (event_time < 3.0).astype(int))
    ax = plot.forest(result, n=3)
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    best = list(result["gene"].values[np.argsort(result["pvalue"].values)[:3]])
    assert sorted(ticks, key=ticks.get, reverse=True) == best  # the best at the top
    assert set(best[:2]) == {"G3", "G5"} and ax.get_xscale() == "log"
    ax.figure.savefig(tmp_path / "forest.png")
    with pytest.raises(CohortexError, match="needs a cohortex.survival.cox"):
        plot.forest(de.test(x, np.repeat(["a", "b"], 200)))


def test_gsea_running_score_and_enrichment_dot_plot(tmp_path):
    import pandas as pd

    from cohortex import genesets

    rng = np.random.default_rng(5)
    genes = [f"g{i}" for i in range(300)]
    ranking = pd.Series(rng.normal(size=300), index=genes)
    ranking.iloc[:20] += 3
    sets = genesets.GeneSets.from_dict(
        {"up": genes[:20], **{f"s{j}": rng.choice(genes, 30, replace=False) for j in range(8)}}
    )
    result = genesets.gsea(ranking, sets, permutations=100)
    ax = plot.gsea(ranking, sets, "up")
    assert ax.get_title() == f"up: ES {float(result['es'].sel(gene_set='up')):.3f}"
    assert len(ax.collections[0].get_segments()) == 20  # a tick per member
    dots = plot.enrichment(result, n=5)
    assert dots.get_yticklabels()[0].get_text() == "up"  # the best, on top
    dots.figure.savefig(tmp_path / "dots.png")
    ora = genesets.ora(genes[:25], sets, genes, min_size=5)
    assert plot.enrichment(ora).get_xlabel() == "overlap / expected"
    with pytest.raises(CohortexError, match="needs a cohortex.genesets"):
        plot.enrichment(result.drop_vars("padj"))


def test_volcano_and_bars_keep_underflowed_genes_apart():
    """6,000 samples: five genes have p = 0. The volcano's heights and the bars come from
    log10_pvalue, so the five stand at different heights above 300, strongest highest."""
    rng = np.random.default_rng(72)
    x = rng.normal(size=(6000, 40))
    labels = np.repeat(["a", "b"], 3000)
    x[:3000, :5] += np.array([2.0, 3.0, 2.5, 5.0, 4.0])[None, :]
    result = de.test(x, labels, reference="b")
    assert (result["pvalue"].values[:5] == 0).all()
    ax = plot.volcano(result)
    heights = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
    top = np.sort(heights)[-5:]
    assert (top > 300).all() and len(np.unique(np.round(top, 6))) == 5
    bars = plot.top_genes(result, 5)
    by_height = sorted(bars.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in by_height] == ["G4", "G5", "G2", "G3", "G1"]
    widths = [patch.get_width() for patch in bars.patches]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1] > 300


def test_top_genes_of_an_anova():
    """An ANOVA (three groups) has no fold change for a volcano, but its best genes have bars."""
    rng = np.random.default_rng(75)
    x = rng.normal(size=(60, 12))
    labels = np.repeat(["a", "b", "c"], 20)
    x[labels == "c", 3] += 2.0
    result = de.test(x, labels, test="anova")
    ax = plot.top_genes(result, 5)
    assert ax.get_yticklabels()[0].get_text() == "G4"  # the planted gene, on top
    from matplotlib.colors import to_rgba

    assert {p.get_facecolor() for p in ax.patches} == {to_rgba(plot._NEUTRAL)}  # no direction
    with pytest.raises(CohortexError, match="lacks log2fc"):
        plot.volcano(result)


def test_plots_of_edger_results():
    """edgeR's results draw too: the exact test (no statistic) in a volcano, and the bars of
    the QL F-test coloured by the fold change's sign (the F has none)."""
    from pathlib import Path

    from matplotlib.colors import to_rgba

    from conftest import fixture_cohort

    edger = Path(__file__).parent / "fixtures" / "edger"
    cohort = fixture_cohort(edger / "ql_counts.csv", edger / "ql_samples.csv", scale="counts")
    exact = de.exact_test(cohort, "condition", ("a", "b"))
    ax = plot.volcano(exact)
    assert sum(len(c.get_offsets()) for c in ax.collections[:3]) == exact.sizes["gene"]
    assert ax.get_title() == "Volcano: b vs a"
    ql = de.glm_ql(cohort, "~ condition", contrasts=["condition[T.b]"])
    bars = plot.top_genes(ql, 40)
    order = np.argsort(ql["log10_pvalue"].values[0], kind="stable")[:40]
    up = ql["coefficient"].values[0][order] > 0
    expected = [to_rgba(plot._UP if u else plot._DOWN) for u in up]
    by_height = sorted(bars.patches, key=lambda p: -p.get_y())
    assert [p.get_facecolor() for p in by_height] == expected
    assert 0 < up.sum() < 40  # both directions among them


def test_barcode_draws_limmas_worms(tmp_path):
    """plot.barcode of a ranking with an up and a down set: a bar per gene of each set, and
    the worms equal to limma's barcodeplot (tricubeMovingAverage, fixtures from
    make_barcode_fixtures.R) in the plot's scale."""
    import pandas as pd

    table = pd.read_csv(Path(__file__).parent / "fixtures" / "limma" / "barcode.csv")
    ranking = pd.Series(table["statistic"].to_numpy(), index=table["gene"])
    up, down = table["gene"][table["up"]], table["gene"][table["down"]]
    ax = plot.barcode(ranking, up, genes_down=down)
    bars = [c for c in ax.collections if hasattr(c, "get_segments") and c.get_segments()]
    assert [len(b.get_segments()) for b in bars] == [20, 15]
    worm_up, worm_down = (line.get_ydata() for line in ax.lines[:3:2])
    expected_up, expected_down = table["worm_up"].to_numpy(), table["worm_down"].to_numpy()
    np.testing.assert_allclose(worm_up, 1.1 + expected_up / expected_up.max(), rtol=1e-12)
    np.testing.assert_allclose(
        worm_down, -1.1 + expected_down / abs(expected_down.min()), rtol=1e-12
    )
    ax.figure.savefig(tmp_path / "barcode.png")
    # one set, another span; a DE result ranks by its statistic
    narrow = plot.barcode(ranking, up, span=0.2)
    expected = table["worm_up_02"].to_numpy()
    np.testing.assert_allclose(narrow.lines[0].get_ydata(), 1.1 + expected / expected.max())
    result = xr.Dataset(
        {"statistic": ("gene", ranking.to_numpy())}, coords={"gene": ranking.index.to_numpy()}
    )
    assert plot.barcode(result, up).get_xlabel() == "statistic"
    with pytest.raises(CohortexError, match="No gene of the set"):
        plot.barcode(ranking, ["nope"])
    with pytest.raises(CohortexError, match="not one of this result"):
        plot.barcode(result, up, by="log2fc")


def test_cumulative_incidence_draws_each_group_and_cause(tmp_path):
    from cohortex import survival

    time = [1, 2, 2, 3, 5, 6, 8, 9, 12, 15]
    status = [1, 2, 0, 1, 0, 2, 1, 0, 1, 0]
    group = ["a"] * 5 + ["b"] * 5
    result = survival.cumulative_incidence(None, time, status, by=group)
    ax = plot.cumulative_incidence(result)
    assert len(ax.lines) == 4  # two groups × two causes
    first = result.curves[(result.curves["group"] == "a") & (result.curves["cause"] == "1")]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.0, 0.2, 0.5, 0.5])
    np.testing.assert_allclose(first["estimate"], [0.2, 0.5])
    assert ax.lines[0].get_xdata()[-1] == 5.0  # held to the group's last follow-up
    ax.figure.savefig(tmp_path / "cif.png")
    assert (tmp_path / "cif.png").stat().st_size > 1000
    with pytest.raises(CohortexError, match="cumulative_incidence"):
        plot.cumulative_incidence({"time": [1]})


def test_heatmap_orders_samples_by_group_and_standardises_rows():
    rng = np.random.default_rng(3)
    labels = np.array(["b", "a", "b", "a", "c", "a"])
    x = rng.normal(size=(6, 5))
    x[:, 2] *= 100  # the most variable gene, then gene 4
    x[:, 4] *= 10
    ds = xr.Dataset(
        {"expression": (("sample", "gene"), x), "condition": ("sample", labels)},
        coords={"gene": [f"g{j}" for j in range(5)]},
    )
    ax = plot.heatmap(ds, groupby="condition", n=2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["g2", "g4"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    order = np.argsort(labels, kind="stable")
    chosen = x[order][:, [2, 4]]
    expected = (chosen - chosen.mean(axis=0)) / chosen.std(axis=0, ddof=1)
    np.testing.assert_allclose(ax.images[0].get_array(), expected.T)
    assert len(ax.lines) == 2  # the borders between a|b and b|c
    raw = plot.heatmap(ds, ["g0", "g3"], standardize=False)
    np.testing.assert_allclose(raw.images[0].get_array(), x[:, [0, 3]].T)
    with pytest.raises(CohortexError, match="not in the cohort"):
        plot.heatmap(ds, ["g0", "nope"])
    with pytest.raises(CohortexError, match="'groupby' parameter must name a sample variable"):
        plot.heatmap(ds, groupby="batch")


def test_heatmap_of_gsva_scores():
    from cohortex import genesets

    rng = np.random.default_rng(4)
    x = rng.normal(6.0, 1.0, (20, 60))
    genes = [f"g{j}" for j in range(60)]
    sets = genesets.GeneSets.from_dict({f"s{k}": genes[k * 10 : k * 10 + 12] for k in range(5)})
    scores = genesets.gsva(
        xr.Dataset({"expression": (("sample", "gene"), x)}, coords={"gene": genes}), sets
    )
    ax = plot.heatmap(scores)
    assert ax.get_title() == "gsva scores: 5 gene sets (z-scores)"
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == [f"s{k}" for k in range(5)]


def test_consensus_cdf_and_matrix():
    from cohortex import consensus_clusters

    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 40))
    x[:12, :10] += 3.0
    x[12:, 10:20] += 3.0
    ds = xr.Dataset({"expression": (("sample", "gene"), x)}, attrs={"scale": "log2"})
    result = consensus_clusters(ds, max_k=4, reps=30, genes=None, progress=False)
    ax = plot.consensus(result)
    assert len(ax.lines) == 3  # k = 2, 3, 4
    assert ax.get_legend().get_texts()[0].get_text().startswith("k = 2 (Δ area")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), result["cdf"].sel(k=2).values)
    matrix = plot.consensus(result, 2)
    drawn = matrix.images[0].get_array()
    classes = result["consensus_class"].sel(k=2).values
    assert sorted(np.diag(drawn)) == [1.0] * 30
    assert len(matrix.lines) == 2  # the border between the two clusters, both ways
    assert drawn[: (classes == 1).sum(), : (classes == 1).sum()].min() > 0.9
    with pytest.raises(CohortexError, match="'k' must be one of"):
        plot.consensus(result, 7)
    with pytest.raises(CohortexError, match="consensus_clusters\\(\\) result"):
        plot.consensus(ds)


@pytest.fixture(scope="module")
def gene_network():
    from cohortex import network
    from cohortex.simulate import simulate_array

    x, samples, _ = simulate_array(120, 300, n_de=0, modules=3, seed=4)
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), x),
            "condition": ("sample", samples["condition"].to_numpy()),
        }
    )
    return cohort, network.modules(cohort, min_module_size=20, progress=False)


def test_soft_threshold_draws_the_fit_of_each_power(gene_network):
    from cohortex import network

    table = network.soft_threshold(gene_network[0], progress=False)
    ax = plot.soft_threshold(table)
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_xdata(), table["power"].values)
    np.testing.assert_allclose(line.get_ydata(), table["signed_r2"].values)
    assert ax.lines[1].get_ydata()[0] == 0.85  # the cut
    assert ax.get_title().endswith(f"power {table.attrs['power_estimate']:g}")


def test_dendrogram_bands_each_gene_by_its_module(gene_network):
    _, result = gene_network
    ax = plot.dendrogram(result)
    band = ax.child_axes[0].images[0].get_array()
    assert band.shape == (1, result.sizes["gene"], 4)
    # one colour per module, grey for none; as many colours in the band as modules
    colours = {tuple(c) for c in np.asarray(band[0])}
    assert len(colours) == result.sizes["module"]
    assert (0.8, 0.8, 0.8, 1.0) in colours or 0 not in result["module"].values
    assert f"{result.attrs['n_modules']} modules" in ax.get_title()
    links = ax.collections[0].get_segments()
    assert len(links) == 3 * (result.sizes["gene"] - 1)  # each merge: two legs and a bar
    top = max(max(point[1] for point in link) for link in links)
    assert top == pytest.approx(result["tree_height"].values.max())


def test_dendrogram_of_a_block(gene_network):
    from cohortex import network

    result = network.blockwise_modules(gene_network[0], max_block_size=200, progress=False)
    block = 2
    genes = int(np.sum(result["block"].values == block))
    ax = plot.dendrogram(result, block=block)
    assert ax.child_axes[0].images[0].get_array().shape == (1, genes, 4)
    assert len(ax.collections[0].get_segments()) == 3 * (genes - 1)
    assert ax.get_title().startswith(f"Gene tree of block 2 of {result.attrs['n_blocks']}")
    with pytest.raises(CohortexError, match="block must be 1"):
        plot.dendrogram(result, block=result.attrs["n_blocks"] + 1)


def test_dendrogram_of_a_deep_tree():
    """Gene trees are chains thousands deep: drawn without recursion."""
    n = 5000
    chain = xr.Dataset(
        {
            "tree_merge": (
                ("merge", "pair"),
                np.column_stack([-np.arange(2, n + 1), np.r_[-1, np.arange(1, n - 1)]]),
            ),
            "tree_height": ("merge", np.linspace(0.1, 0.9, n - 1)),
            "label": ("gene", np.zeros(n, dtype=int)),
        },
        attrs={"n_modules": 0, "power": 6, "network": "unsigned"},
    )
    ax = plot.dendrogram(chain)
    assert len(ax.collections[0].get_segments()) == 3 * (n - 1)


def test_module_traits_heatmap_shows_the_correlations(gene_network):
    from cohortex import network

    traits = network.module_traits(gene_network[1])
    ax = plot.module_traits(traits)
    np.testing.assert_allclose(ax.images[0].get_array(), traits["cor"].values)
    assert len(ax.texts) == traits["cor"].size
    with pytest.raises(CohortexError, match="network.module_traits"):
        plot.module_traits(gene_network[1])
