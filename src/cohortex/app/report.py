"""The demo's analyses on a simulated cohort, and the self-contained HTML report they make."""

from __future__ import annotations

import base64
import html
import io
import time
import warnings
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["demo_analyses", "write_report"]


_SAMPLES_LOOKED_AT = 500  # MDS, consensus clustering and sva look at the first samples
_NETWORK_GENES = 2000  # WGCNA's network of the most variable genes


def _releasing(echo: Any) -> Any:
    """``echo`` that first hands back the memory freed by the analysis that just ended (each
    ends by saying what it found), so that the next does not start on top of it."""
    from .._memory import release_free_memory

    def say(*lines: Any) -> None:
        release_free_memory()
        echo(*lines)

    return say


def demo_analyses(store: Path, *, tsne: bool = True, echo: Any = print) -> dict[str, Any]:
    """Welch, Wilcoxon and moderated-t DE against the planted truth, per-gene Cox models (when
    the cohort has ``time`` and ``event``), cross-validated prediction of the condition, PCA,
    t-SNE, an autoencoder.

    Results are saved in the store; the returned dict holds the figures (PNG bytes) and the
    numbers for :func:`write_report`.
    """
    from .. import de, plot
    from ..ae import Autoencoder, baselines
    from ..embed import pca
    from ..embed import tsne as run_tsne
    from ..store import open_cohort, write_result

    echo = _releasing(echo)
    ds = open_cohort(store)
    truth = ds["is_de"].values.astype(bool)
    report: dict[str, Any] = {"rows": [], "figures": {}, "timings": {}}
    echo("differential expression, tumor vs normal, BH-adjusted at q = 0.05:")
    for test in ("welch", "wilcoxon", "moderated t"):
        start = time.perf_counter()
        if test == "moderated t":  # limma's eBayes with the batch as a covariate
            design = "~ condition + batch" if "batch" in ds else "~ condition"
            fitted = de.fit(store, design, contrasts=["condition[T.tumor]"], moderate=True)
            result = fitted.squeeze("contrast", drop=True) if "contrast" in fitted.dims else fitted
        else:
            result = de.test(store, "condition", test=test, reference="normal")
        seconds = time.perf_counter() - start
        called = result["padj"].values < 0.05
        power = (called & truth).sum() / max(truth.sum(), 1)
        false_share = (called & ~truth).sum() / max(called.sum(), 1)
        echo(
            f"  {test:11s} {seconds:6.1f} s  {int(called.sum()):5d} genes called, power "
            f"{power:.3f}, empirical FDR {false_share:.3f} ({int(truth.sum())} planted)"
        )
        report["rows"].append((test, seconds, int(called.sum()), power, false_share))
        write_result(store, f"de_{test.replace(' ', '_')}_condition", result, overwrite=True)
        if test == "welch":
            report["figures"]["Volcano (Welch, BH)"] = _png(plot.volcano(result))
            report["figures"]["Top genes (Welch)"] = _png(plot.top_genes(result, 20))
            best = de.top(result, 15)
            report["top_genes"] = [
                (
                    str(row.gene),
                    f"{row.log2fc:+.2f}",
                    f"{row.padj:.2g}",
                    f"{row.log10_pvalue:.1f}",
                    f"{row.mean_group:.2f}",
                    f"{row.mean_reference:.2f}",
                )
                for row in best.itertuples()
            ]
    report["planted"] = int(truth.sum())
    report["gene_sets"] = _gene_sets(store, ds, report, echo)
    if "time" in ds and "event" in ds:
        report["survival"] = _survival(store, ds, report, echo)
    report["prediction"] = _prediction(store, ds, report, echo)

    start = time.perf_counter()
    components = pca(store, 20, genes="hvg")
    report["timings"]["PCA"] = time.perf_counter() - start
    ratio = components["explained_variance_ratio"].values
    echo(
        f"PCA ({components.attrs['method']}) of the {components.sizes['gene']} most variable "
        f"genes in {report['timings']['PCA']:.1f} s: PC1–PC3 explain "
        + ", ".join(f"{100 * r:.1f}%" for r in ratio[:3])
    )
    write_result(store, "pca", components, overwrite=True)
    for variable in ("condition", "batch"):
        if variable in components:
            report["figures"][f"PCA by {variable}"] = _png(plot.embedding(components, variable))

    if tsne and components.sizes["sample"] >= 100:
        start = time.perf_counter()
        embedded = run_tsne(components, perplexity=30, n_iter=500)
        report["timings"]["t-SNE"] = time.perf_counter() - start
        echo(f"t-SNE of the 20 PCs in {report['timings']['t-SNE']:.1f} s")
        write_result(store, "tsne", embedded, overwrite=True)
        for variable in ("condition", "batch"):
            if variable in embedded:
                figure = _png(plot.embedding(embedded, variable))
                report["figures"][f"t-SNE by {variable}"] = figure

    report["samples"] = _samples(store, echo, report)
    report["network"] = _gene_network(store, echo, report)

    start = time.perf_counter()
    model = Autoencoder((128, 16, 128), n_top_genes=2000, max_epochs=40, progress=False)
    model.fit(store)
    report["timings"]["autoencoder"] = time.perf_counter() - start
    side_by_side = baselines(store, model, shallow=16)
    report["autoencoder"] = {
        str(name): float(value)
        for name, value in zip(
            side_by_side["model"].values, side_by_side["variance_explained"].values, strict=True
        )
    }
    report["autoencoder_epochs"] = len(model.history_)
    echo(
        f"autoencoder (128, 16, 128) on the {len(model.genes_)} most variable genes, "
        f"{len(model.history_)} epochs in {report['timings']['autoencoder']:.1f} s; held-out "
        "variance explained: "
        + ", ".join(f"{name} {value:.3f}" for name, value in report["autoencoder"].items())
    )
    report["figures"]["Autoencoder loss"] = _png(plot.loss(model))
    if report.get("collection") is not None:
        report["modules"] = _module_sets(model, report["collection"], echo)
    return report


def _samples(store: Path, echo: Any, report: dict[str, Any]) -> dict[str, float]:
    """A look at (up to) 500 samples as limma users take it (MDS), their consensus clusters,
    and sva's surrogate variable of the batch the design is not told about."""
    from sklearn.metrics import adjusted_rand_score

    from .. import de, plot
    from ..embed import consensus_clusters, mds
    from ..store import open_cohort, write_result

    subset = open_cohort(store)
    subset = subset.isel(sample=slice(0, min(_SAMPLES_LOOKED_AT, subset.sizes["sample"])))
    n = subset.sizes["sample"]
    start = time.perf_counter()
    view = mds(subset, progress=False)
    write_result(store, "mds", view, overwrite=True)
    report["figures"][f"MDS (limma's plotMDS) of {n} samples by condition"] = _png(
        plot.embedding(view, "condition")
    )
    clusters = consensus_clusters(subset, max_k=4, reps=200, genes=1000, progress=False)
    write_result(store, "consensus", clusters, overwrite=True)
    report["figures"][f"Consensus clustering of {n} samples"] = _png(plot.consensus(clusters))
    two = clusters["consensus_class"].sel(k=2).values
    condition = subset["condition"].values.astype(str)
    # rounded first: an index of −0.001 reads as 0.00, not −0.00
    facts = {"samples": float(n), "condition": _rounded(adjusted_rand_score(condition, two))}
    line = (
        f"{n} samples: MDS and consensus clustering in {time.perf_counter() - start:.1f} s; "
        f"the two consensus clusters against the condition: adjusted Rand "
        f"{facts['condition']:.2f}"
    )
    if "batch" in subset:
        facts["batch"] = _rounded(adjusted_rand_score(subset["batch"].values.astype(str), two))
        line += f", against the batch {facts['batch']:.2f}"
    if "batch" in subset:
        found = de.sva(subset, "~ condition", n_sv=1)
        batch = subset["batch"].values.astype(str)
        codes = (batch == np.unique(batch)[0]).astype(float)
        facts["batch_correlation"] = abs(float(np.corrcoef(found["sv1"].values, codes)[0, 1]))
        line += (
            "; sva's surrogate variable (design ~ condition) against the batch it was not told "
            f"about: |r| = {facts['batch_correlation']:.2f}"
        )
    echo(line)
    return facts


def _gene_network(store: Path, echo: Any, report: dict[str, Any]) -> dict[str, float]:
    """WGCNA's modules of the most variable genes with their defaults, against the planted
    modules and the hidden factors behind them."""
    from sklearn.metrics import adjusted_rand_score

    from .. import network, plot
    from ..store import open_cohort, write_result

    cohort = open_cohort(store)
    planted = cohort["module"].values if "module" in cohort else np.full(cohort.sizes["gene"], -1)
    sizes = np.bincount(planted[planted >= 0])
    # WGCNA's tutorial's 30 genes, or less where the demo planted smaller modules
    smallest = int(min(30, sizes[sizes > 0].min())) if sizes.any() else 30
    start = time.perf_counter()
    result = network.modules(
        store,
        genes=min(_NETWORK_GENES, cohort.sizes["gene"]),
        min_module_size=smallest,
        progress=False,
    )
    seconds = time.perf_counter() - start
    write_result(store, "network", result, overwrite=True)
    traits = network.module_traits(result)
    report["figures"]["Gene tree and modules (WGCNA)"] = _png(plot.dendrogram(result))
    report["figures"]["Module eigengenes and sample variables"] = _png(plot.module_traits(traits))
    facts = {
        "genes": float(result.sizes["gene"]),
        "modules": float(result.attrs["n_modules"]),
        "min_module_size": float(smallest),
        "power": float(result.attrs["power"]),
        "seconds": seconds,
    }
    line = (
        f"WGCNA: {result.attrs['n_modules']} modules of the {result.sizes['gene']} most "
        f"variable genes (power {result.attrs['power']:g}, {result.attrs['power_source']}) in "
        f"{seconds:.1f} s"
    )
    if sizes.any():
        planted = cohort["module"].sel(gene=result["gene"].values).values
        inside = planted >= 0
        if inside.any():
            facts["rand"] = _rounded(
                adjusted_rand_score(planted[inside], result["label"].values[inside])
            )
            line += f"; against the planted modules: adjusted Rand {facts['rand']:.2f}"
    factors = [t for t in traits["trait"].values if str(t).startswith("factor_")]
    if factors:  # each hidden factor, and the module eigengene that follows it best
        strongest = np.nanmax(np.abs(traits["cor"].sel(trait=factors).values), axis=0)
        facts["factor_r"] = _rounded(float(strongest.min()))
        line += f"; every hidden factor followed by an eigengene at |r| ≥ {facts['factor_r']:.2f}"
    echo(line)
    return facts


def _rounded(value: float) -> float:
    return round(float(value), 2) + 0.0


def _module_sets(model: Any, collection: Any, echo: Any) -> list[tuple]:
    """For each node of the autoencoder's bottleneck, its 50 genes of largest light-up change
    tested for over-representation of every set of the demo's collection (BH across sets);
    the best set per node."""
    import numpy as np

    from .. import genesets

    layer = (len(model.hidden) + 1) // 2
    universe = [str(g) for g in model.genes_]
    rows = []
    for node, genes in model.gene_modules(layer, top=50).items():
        found = genesets.ora(genes, collection, universe, min_size=3)
        best = int(np.argmin(found["pvalue"].values))
        rows.append(
            (
                node,
                str(found["gene_set"].values[best]),
                int(found["overlap"].values[best]),
                float(found["padj"].values[best]),
            )
        )
    hits = sum(padj < 0.05 and name.startswith("planted") for _, name, _, padj in rows)
    echo(f"autoencoder modules: {hits} of {len(rows)} bottleneck nodes enrich a planted set")
    return rows


def _gene_sets(store: Path, ds: Any, report: dict[str, Any], echo: Any) -> list[tuple]:
    """Preranked GSEA of the Welch result on sets the simulator planted (its DE genes up and
    down, its co-expression modules) among random sets of the same sizes."""
    import numpy as np

    from .. import genesets, plot
    from .._errors import CohortexWarning
    from ..store import read_result, write_result

    genes = np.asarray([str(g) for g in ds["gene"].values])
    fold = ds["true_log2fc"].values
    planted = {"planted DE up": genes[fold > 0], "planted DE down": genes[fold < 0]}
    if "module" in ds:
        module = ds["module"].values
        for m in sorted(set(module[module >= 0].tolist())):
            planted[f"planted module {m}"] = genes[module == m]
    rng = np.random.default_rng(0)
    sets = dict(planted)
    for name, members in planted.items():
        for i in range(3):
            sets[f"random {i + 1} like {name}"] = rng.choice(genes, len(members), replace=False)
    collection = genesets.GeneSets.from_dict(sets)
    report["collection"] = collection
    welch = read_result(store, "de_welch_condition")
    start = time.perf_counter()
    with warnings.catch_warnings():  # the planted DE sets' p-values fall below 1e-50
        warnings.filterwarnings("ignore", ".*gene sets have p-values below eps", CohortexWarning)
        result = genesets.gsea(welch, collection, min_size=3, permutations=2000)
    seconds = time.perf_counter() - start
    write_result(store, "gsea_welch_condition", result, overwrite=True)
    echo(f"preranked GSEA of {len(collection)} sets on the Welch t in {seconds:.1f} s")
    report["figures"]["Gene sets (GSEA, Welch t)"] = _png(plot.enrichment(result, 12))
    order = np.argsort(result["pvalue"].values, kind="stable")[:8]
    return [
        (
            str(result["gene_set"].values[i]),
            int(result["size"].values[i]),
            float(result["nes"].values[i]),
            float(result["padj"].values[i]),
        )
        for i in order
    ]


def _survival(store: Path, ds: Any, report: dict[str, Any], echo: Any) -> dict[str, Any]:
    """Cox models of every gene against the planted survival genes; forest and KM plots."""
    import numpy as np

    from .. import plot, survival
    from ..store import write_result

    start = time.perf_counter()
    result = survival.cox(store, "time", "event")
    seconds = time.perf_counter() - start
    write_result(store, "survival_cox", result, overwrite=True)
    planted = ds["true_log_hr"].values != 0 if "true_log_hr" in ds else np.zeros(0, bool)
    called = result["padj"].values < 0.05
    found = int((called & planted).sum()) if planted.size else 0
    echo(
        f"Cox model per gene in {seconds:.1f} s: {int(called.sum())} genes at q < 0.05, "
        f"{found} of the {int(planted.sum())} planted survival genes"
    )
    report["figures"]["Hazard ratios (Cox, top 15)"] = _png(plot.forest(result, 15))
    best = str(result["gene"].values[int(np.nanargmin(result["pvalue"].values))])
    curves = survival.kaplan_meier(store, "time", "event", gene=best)
    ax = plot.km(curves)
    ax.set_title(f"{best}: above and below its median")
    report["figures"][f"Kaplan–Meier of {best}"] = _png(ax)
    # the same split's log-rank test and each half's median survival (R's survdiff, survfit)
    values = ds["expression"].sel(gene=best).values
    split = np.where(values > np.median(values), "high", "low")  # kaplan_meier's: ties low
    test = survival.compare_groups(None, ds["time"].values, ds["event"].values, split)
    medians = survival.median_survival(None, ds["time"].values, ds["event"].values, by=split)
    echo(
        f"{best} above vs below its median: log-rank p = {test.pvalue:.2g}; median survival "
        f"{medians.loc['high', 'median']:.3g} vs {medians.loc['low', 'median']:.3g}"
    )
    return {
        "seconds": seconds,
        "called": int(called.sum()),
        "found": found,
        "planted": int(planted.sum()),
        "events": int(ds["event"].values.sum()),
        "best": best,
        "best_logrank": test.pvalue,
        "best_medians": (float(medians.loc["high", "median"]), float(medians.loc["low", "median"])),
        "prediction": _survival_prediction(store, ds, planted, report, echo),
    }


def _survival_prediction(
    store: Path, ds: Any, planted: Any, report: dict[str, Any], echo: Any
) -> dict[str, Any]:
    """The default survival signature cross-validated, its predicted survival scored at the
    median and third quartile of the event times; the risk groups' Kaplan–Meier plot and the
    calibration at the first time."""
    import numpy as np

    from .. import plot, predict

    time_, event = ds["time"].values, ds["event"].values.astype(bool)
    times = [float(f"{t:.2g}") for t in np.quantile(time_[event], [0.5, 0.75])]
    start = time.perf_counter()
    result = predict.cross_validate_survival(store, "time", "event", times=times)
    seconds = time.perf_counter() - start
    uno = result.weighted_concordance()
    always = result.genes.index[result.genes["selected"] == 1.0]
    found = int(np.isin(always, ds["gene"].values[planted]).sum()) if planted.size else 0
    scores = [(t, float(row["auc"]), float(row["ipa"])) for t, row in result.scores.iterrows()]
    echo(
        f"survival prediction (ridge Cox on the {result.parameters['k']} genes of largest |z| "
        f"chosen in each of 5 training folds) in {seconds:.1f} s: Harrell's C "
        f"{result.concordance:.3f}, Uno's {uno.concordance:.3f}; "
        + "; ".join(f"at {t:g}: AUC {auc:.3f}, IPA {ipa:.3f}" for t, auc, ipa in scores)
        + f"; {found} planted genes chosen in every fold"
    )
    ax = plot.km(result.kaplan_meier())
    ax.set_title("Cross-validated risk groups")
    report["figures"]["Survival signature: held-out risk groups"] = _png(ax)
    ax = plot.calibration(result.calibration(times[0]))
    ax.set_title(f"Held-out survival at {times[0]:g}, by decile")
    report["figures"][f"Survival signature: calibration at {times[0]:g}"] = _png(ax)
    return {
        "seconds": seconds,
        "k": int(result.parameters["k"]),
        "harrell": result.concordance,
        "uno": uno.concordance,
        "scores": scores,
        "found": found,
    }


def _prediction(store: Path, ds: Any, report: dict[str, Any], echo: Any) -> dict[str, Any]:
    """Tumor vs normal, 5-fold, genes chosen inside the folds; the ROC plot."""
    from .. import plot, predict

    k = min(200, ds.sizes["gene"])
    start = time.perf_counter()
    result = predict.cross_validate(store, "condition", k=k, folds=5, permutations=5)
    seconds = time.perf_counter() - start
    low, high = result.auroc_ci
    echo(
        f"prediction of the condition (logistic regression on {k} genes chosen in each "
        f"training fold, 5 folds) in {seconds:.1f} s: AUROC {result.auroc:.3f} "
        f"({low:.3f}–{high:.3f}); shuffled labels {result.permutation_auroc.mean():.3f}"
    )
    report["figures"]["Cross-validated ROC"] = _png(plot.roc(result))
    return {
        "seconds": seconds,
        "k": k,
        "auroc": result.auroc,
        "low": low,
        "high": high,
        "null": float(result.permutation_auroc.mean()),
        "balanced_accuracy": result.balanced_accuracy,
    }


def run_facts(parameters: dict[str, Any], seconds: float) -> list[tuple[str, str]]:
    """What a reader needs to reproduce the report: parameters, versions, device, date."""
    import platform
    from datetime import datetime

    import numpy as np

    from .. import __version__
    from .._backend import resolve_device

    facts = [(name, str(value)) for name, value in parameters.items()]
    facts += [
        ("cohortex", __version__),
        ("Python / NumPy", f"{platform.python_version()} / {np.__version__}"),
        ("device", resolve_device("auto")),
        ("machine", f"{platform.node()} ({platform.machine()})"),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("total time", f"{seconds:.0f} s"),
    ]
    return facts


def write_report(path: Path, summary_text: str, report: dict[str, Any]) -> None:
    """One HTML file with the figures inlined (no other files needed to view it)."""
    calls = _table(
        ("test", "time", "genes called", "power", "empirical FDR"),
        [
            (test, f"{seconds:.1f} s", called, f"{power:.3f}", f"{fdr:.3f}")
            for test, seconds, called, power, fdr in report["rows"]
        ],
    )
    figures = "".join(
        f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode()}'><figcaption>{html.escape(title)}</figcaption></figure>"
        for title, png in report["figures"].items()
    )
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report["timings"].items())
    side_by_side = _table(
        ("model", "held-out variance explained"),
        [(name, f"{value:.3f}") for name, value in report["autoencoder"].items()],
    )
    outcome = ""
    if report.get("top_genes"):
        outcome += (
            "<h2>Top genes (Welch, tumor vs normal)</h2><p>The 15 most significant genes; "
            "where p underflows to 0 they are ordered by log10 p computed from the statistic. "
            "Means on the log2 scale.</p>"
        ) + _table(
            ("gene", "log2FC", "BH-adjusted p", "log10 p", "mean tumor", "mean normal"),
            report["top_genes"],
        )
    if report.get("gene_sets"):
        outcome += (
            "<h2>Gene sets</h2><p>Preranked GSEA on the Welch t: the sets the simulator planted "
            "(its DE genes, its co-expression modules) among random sets of the same sizes. "
            "Modules are not DE, so they should not stand out here.</p>"
        ) + _table(
            ("set", "genes", "NES", "BH-adjusted p"),
            [
                (name, size, f"{nes:.2f}", f"{padj:.2g}")
                for name, size, nes, padj in report["gene_sets"]
            ],
        )
    if report.get("modules"):
        outcome += (
            "<h2>Autoencoder modules</h2><p>Each node of the bottleneck lit up in turn: its 50 "
            "genes of largest change, tested for over-representation of the same sets "
            "(hypergeometric, BH across sets); the best set of each node.</p>"
        ) + _table(
            ("node", "best set", "overlap of 50", "BH-adjusted p"),
            [
                (node, name, overlap, f"{padj:.2g}")
                for node, name, overlap, padj in report["modules"]
            ],
        )
    if "survival" in report:
        found = report["survival"]
        outcome += (
            f"<h2>Survival</h2><p>A Cox model per gene (R's <code>coxph</code>, Efron ties) on "
            f"{found['events']} events, {found['seconds']:.1f} s: {found['called']} genes at "
            f"BH-adjusted p &lt; 0.05, {found['found']} of the {found['planted']} genes planted "
            f"to set the hazard. The strongest, {found['best']}, above against below its "
            f"median: log-rank p = {found['best_logrank']:.2g}, median survival "
            f"{found['best_medians'][0]:.3g} against {found['best_medians'][1]:.3g}.</p>"
        )
        signature = found["prediction"]
        outcome += (
            f"<p>A survival signature, cross-validated: a ridge Cox model of the "
            f"{signature['k']} genes of largest |z| chosen inside each of 5 training folds "
            f"({signature['found']} planted genes chosen in every fold), "
            f"{signature['seconds']:.1f} s. On the held-out samples: Harrell's C "
            f"{signature['harrell']:.3f}, Uno's {signature['uno']:.3f}; "
            + "; ".join(
                f"predicted survival at {t:g}: time-dependent AUC {auc:.3f}, IPA {ipa:.3f} "
                "(the share of the Kaplan–Meier curve's Brier score the predictions remove)"
                for t, auc, ipa in signature["scores"]
            )
            + ".</p>"
        )
    if "prediction" in report:
        cv = report["prediction"]
        outcome += (
            f"<h2>Prediction</h2><p>Tumor vs normal by logistic regression on the {cv['k']} "
            "genes of largest F chosen inside each of 5 training folds (never on the held-out "
            f"samples), {cv['seconds']:.1f} s: AUROC {cv['auroc']:.3f} (95% CI "
            f"{cv['low']:.3f}–{cv['high']:.3f}, DeLong), balanced accuracy "
            f"{cv['balanced_accuracy']:.3f}; with shuffled labels {cv['null']:.3f}.</p>"
        )
    if "samples" in report:
        looked = report["samples"]
        outcome += (
            f"<h2>Samples</h2><p>The first {looked['samples']:.0f} samples as limma users look "
            "at them (the MDS plot of leading log-fold-changes) and their consensus clusters "
            "(ConsensusClusterPlus's resampling, 200 subsamples): at k = 2 the clusters "
            f"against the condition give an adjusted Rand index of {looked['condition']:.2f}"
            + (f", against the batch {looked['batch']:.2f}" if "batch" in looked else "")
            + "."
        )
        if "batch_correlation" in looked:
            outcome += (
                " sva, told only of the condition, finds the batch: its first surrogate "
                f"variable correlates with it at |r| = {looked['batch_correlation']:.2f}."
            )
        outcome += "</p>"
    if "network" in report:
        net = report["network"]
        outcome += (
            f"<h2>Gene network</h2><p>WGCNA's co-expression modules of the {net['genes']:.0f} "
            f"most variable genes with its tutorial's settings (power {net['power']:g}, the "
            f"scale-free fit's choice; modules of at least {net['min_module_size']:.0f} genes), "
            f"{net['seconds']:.1f} s: {net['modules']:.0f} modules"
            + (
                f"; the planted modules' genes against them give an adjusted Rand index of "
                f"{net['rand']:.2f}"
                if "rand" in net
                else ""
            )
            + (
                f", and every hidden factor behind the planted modules is followed by a "
                f"module's eigengene at |r| ≥ {net['factor_r']:.2f}"
                if "factor_r" in net
                else ""
            )
            + ".</p>"
        )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cohortex demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
figure {{ display: inline-block; margin: .5rem; vertical-align: top; }}
img {{ max-width: 32rem; }}
pre {{ background: #f6f6f6; padding: 1rem; }}
</style></head><body>
<h1>cohortex demo report</h1>
<h2>This run</h2>{_table(None, report.get("run", []))}
<h2>The cohort</h2><pre>{html.escape(summary_text)}</pre>
<h2>Recovery of the planted truth</h2>
<p>{report["planted"]} genes were planted as differentially expressed (tumor vs normal).
Calls at BH-adjusted p &lt; 0.05:</p>
{calls}
<h2>Autoencoder, PCA and a shallow autoencoder</h2>
<p>Each model reconstructs the held-out samples (10%, never used to fit weights or scaling)
through 16 numbers per sample; the share of their variance it explains, on genes scaled to
[0, 1]. The deep autoencoder starts as PCA of its code's width and trains non-linear layers
around it ({report["autoencoder_epochs"]} epochs, early stopping on the held-out loss), so it
explains at least what PCA does; what it explains beyond PCA is structure a linear map of that
width misses (the planted modules follow their factors through sigmoids). The shallow
autoencoder is one non-linear layer of 16 trained from scratch. The rest of the variance is
mostly the simulated noise.</p>
{side_by_side}
<p>Timings: {html.escape(timings)}.</p>
{outcome}
<h2>Figures</h2><p>The simulated samples form four clusters in PCA and t-SNE: condition
(tumor, normal) × batch (two batches with shifted means), as the two colourings show.</p>
{figures}
</body></html>
"""
    path.write_text(document, encoding="utf-8")


def _table(header: tuple[str, ...] | None, rows: list[tuple[Any, ...]]) -> str:
    """An HTML table, every cell escaped (no header row for ``None``)."""
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header or ())
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _png(ax: Any) -> bytes:
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
