"""The ``cohortex`` command line: simulate, import, export, verify, info, de, pca, tsne, ae, demo,
bench."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._constants import (
    COMPRESSORS,
    CORRELATION_TYPES,
    COUNTS_FROM_ABUNDANCE,
    GSVA_KERNELS,
    GSVA_METHODS,
    NETWORK_TYPES,
    NORMALIZATIONS,
    SCALES,
    TOM_DENOMINATORS,
    TOM_TYPES,
)
from .._errors import CohortexError
from .._optional import require
from .._version import __version__

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 ``verify`` found damage, 2 bad
    input, 130 interrupted)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # argparse has printed the usage error (2) or the help (0)
        return int(done.code or 0)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    from .._progress import dask_progress

    try:
        # every Dask pass a command starts shows as a bar (a terminal) or lines (a log)
        with (
            dask_progress(args.command, getattr(args, "progress", None)),
            _warnings_as_lines(args.command),
        ):
            status = args.run(args)
    except CohortexError as error:
        print(f"cohortex {args.command}: error: {_as_flags(str(error))}", file=sys.stderr)
        return 2
    except OSError as error:  # a path the user named: missing, unwritable, a full disk
        print(f"cohortex {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"cohortex {args.command}: interrupted; nothing was left half-written.", file=sys.stderr
        )
        return 130
    return status or 0


def _as_flags(message: str) -> str:
    """The library's messages name its keywords; on the command line the flag is what to pass."""
    return message.replace("pass overwrite=True", "pass --overwrite").replace(
        "pass scale='counts'", "pass --scale counts"
    )


@contextlib.contextmanager
def _warnings_as_lines(command: str) -> Iterator[None]:
    """Show cohortex's own warnings as 'cohortex COMMAND: warning: ...' lines, not as Python
    source lines; other libraries' warnings keep Python's form."""
    from .._errors import CohortexWarning

    shown = warnings.showwarning

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, CohortexWarning):
            print(f"cohortex {command}: warning: {_as_flags(str(message))}", file=sys.stderr)
        else:
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


_DEVICE = "auto: the GPU when one is available (COHORTEX_DEVICE overrides)"
_PROGRESS = "progress bars (default: only on a terminal)"


class _Formatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it says it already or has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and "default" not in text
            and default not in (None, False, argparse.SUPPRESS)
            # flags (store_true/false) say what they switch; their default goes without saying
            and not isinstance(
                action, argparse._HelpAction | argparse._VersionAction | argparse._StoreConstAction
            )
        ):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """The command's parsers, each with the defaults-showing help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cohortex",
        description="GPU-accelerated engine for large expression cohorts.",
    )
    parser.add_argument("--version", action="version", version=f"cohortex {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sim = commands.add_parser("simulate", help="write a simulated cohort with known truth")
    sim.add_argument("out", type=Path, help="destination store (e.g. cohort.zarr)")
    sim.add_argument("--samples", type=int, default=1000, help="number of samples")
    sim.add_argument("--genes", type=int, default=2000, help="number of genes")
    sim.add_argument(
        "--groups",
        type=_fractions,
        default=None,
        help="condition groups and fractions, e.g. tumor=0.5,normal=0.5 (the default)",
    )
    sim.add_argument("--n-de", type=float, default=0.05, help="DE genes: a count, or a fraction <1")
    sim.add_argument(
        "--log2fc", type=_range, default=(1.0, 2.0), help="|log2 fold change|: 1.5 or 1,2"
    )
    sim.add_argument("--batches", type=int, default=None, help="number of batches")
    sim.add_argument("--modules", type=int, default=0, help="number of co-expression modules")
    sim.add_argument("--module-size", type=int, default=50, help="genes per module")
    sim.add_argument(
        "--distribution",
        choices=("lognormal", "negbinom"),
        default="lognormal",
        help="lognormal: log2 values; negbinom: counts",
    )
    sim.add_argument(
        "--survival-genes",
        type=int,
        default=0,
        help="genes that set each sample's hazard; adds the sample variables time and event",
    )
    sim.add_argument("--seed", type=int, default=0, help="random seed of the whole cohort")
    _store_options(sim)
    sim.set_defaults(run=_simulate)

    imp = commands.add_parser(
        "import",
        help="import TSV/CSV, GEO series matrix, featureCounts, GCT, h5ad, AnnData-Zarr or .npy",
    )
    imp.add_argument("src", type=Path, help="input file")
    imp.add_argument("dest", type=Path, help="destination store")
    imp.add_argument("--samples", type=Path, default=None, help="sample metadata table (TSV/CSV)")
    imp.add_argument(
        "--orientation",
        choices=("genes-by-samples", "samples-by-genes"),
        default="genes-by-samples",
        help="rows of a text file are genes (default, as in GEO) or samples",
    )
    imp.add_argument(
        "--annotation-columns",
        type=int,
        default=0,
        metavar="N",
        help="text tables: the N columns after the id column describe the rows (a gene symbol, "
        "a sample's condition) and become their variables (default 0)",
    )
    imp.add_argument(
        "--scale",
        choices=SCALES,
        default=None,
        help="value scale (default log2; counts for featureCounts; AnnData's recorded scale)",
    )
    imp.add_argument("--layer", default=None, help="AnnData layer to import instead of X")
    _store_options(imp)
    imp.set_defaults(run=_import)

    quant = commands.add_parser(
        "import-quant",
        help="import Salmon, kallisto, RSEM or StringTie quantifications, summarised to genes "
        "as tximport",
    )
    quant.add_argument(
        "files",
        type=Path,
        nargs="+",
        help="each sample's quant.sf, abundance.h5/.tsv, .isoforms.results or t_data.ctab, or "
        "its folder, or one folder of them "
        "(the sample ids are the folders, or RSEM's file names)",
    )
    quant.add_argument("--out", type=Path, required=True, help="destination store")
    quant.add_argument(
        "--tx2gene",
        type=Path,
        default=None,
        help="transcript id → gene id table (CSV or TSV, with or without a header row), or "
        "a GTF (.gtf, .gtf.gz)",
    )
    quant.add_argument(
        "--counts-from-abundance",
        choices=COUNTS_FROM_ABUNDANCE,
        default="lengthScaledTPM",
        help="tximport's countsFromAbundance (default lengthScaledTPM: counts every test "
        "takes; 'no' keeps the estimated counts with their per-sample lengths, which the "
        "DESeq2 and edgeR models take as offsets)",
    )
    quant.add_argument(
        "--transcripts", action="store_true", help="keep the transcripts (tximport's txOut)"
    )
    quant.add_argument(
        "--ignore-tx-version", action="store_true", help="match tx2gene without id versions"
    )
    quant.add_argument(
        "--ignore-after-bar",
        action="store_true",
        help="match tx2gene by the id before the first '|' (GENCODE's names)",
    )
    quant.add_argument(
        "--read-length",
        type=float,
        default=75.0,
        help="StringTie's read length, to make counts of its coverage (default 75)",
    )
    quant.add_argument(
        "--round",
        action="store_true",
        help="store whole counts, as DESeqDataSetFromTximport rounds them (for --deseq)",
    )
    quant.add_argument("--samples", type=Path, default=None, help="sample metadata table")
    _store_options(quant)
    quant.set_defaults(run=_import_quantifications)

    exp = commands.add_parser("export", help="export a store to TSV/CSV, GCT, h5ad or AnnData-Zarr")
    exp.add_argument("store", type=Path)
    exp.add_argument("dest", type=Path, help="output: .tsv/.csv(.gz), .gct, .h5ad or a folder")
    exp.add_argument(
        "--orientation",
        choices=("genes-by-samples", "samples-by-genes"),
        default="genes-by-samples",
        help="rows of the text file written are genes or samples",
    )
    exp.add_argument(
        "--normalize",
        choices=(*NORMALIZATIONS, "vst", "rlog"),
        default=None,
        help="write normalised values (log_cpm, rpkm and log_rpkm with TMM factors; rpkm, "
        "log_rpkm and tpm by the gene variable 'length', as a featureCounts import stores it; "
        "vst: DESeq2's variance-stabilizing transformation, blind, of 1,000 genes' trend or "
        "every gene's in a smaller cohort; rlog: DESeq2's regularized log, blind, for small "
        "cohorts)",
    )
    exp.add_argument(
        "--combat",
        metavar="VARIABLE",
        default=None,
        help="write values corrected for the batches of this sample variable by ComBat (sva's, "
        "parametric; after --normalize)",
    )
    exp.add_argument(
        "--nonparametric",
        action="store_true",
        help="with --combat: sva's non-parametric prior (par.prior = FALSE)",
    )
    exp.add_argument(
        "--combat-seq",
        metavar="VARIABLE",
        default=None,
        help="write counts corrected for the batches of this sample variable by ComBat-seq "
        "(sva's ComBat_seq; raw counts, before --normalize)",
    )
    exp.add_argument(
        "--keep",
        metavar="FORMULA",
        default=None,
        help="with --combat or --combat-seq: effects to keep, e.g. '~ condition' (sva's mod, "
        "ComBat_seq's group and covar_mod)",
    )
    exp.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    exp.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=_PROGRESS
    )
    exp.set_defaults(run=_export)

    de = commands.add_parser(
        "de",
        help="differential expression; the result goes into the store",
        description="A test between groups (--groupby, with --alternative, --paired-by), or "
        "limma's linear model and moderated t for every gene (--design, with --contrast, "
        "--voom, --trend, --robust, --treat).",
    )
    de.add_argument("store", type=Path)
    model = de.add_mutually_exclusive_group(required=True)
    model.add_argument("--groupby", help="sample variable holding the groups of a test")
    model.add_argument(
        "--design", help="formula of a linear model, e.g. '~ condition + batch' (limma)"
    )
    de.add_argument(
        "--contrast",
        action="append",
        default=None,
        metavar="[NAME=]EXPRESSION",
        help="with --design: a coefficient or combination to test, e.g. "
        "'tumor_vs_normal=condition[T.tumor]' (repeat; default every coefficient but the "
        "intercept)",
    )
    de.add_argument(
        "--voom",
        action="store_true",
        help="with --design, on a counts store: limma's voom (TMM factors) and a weighted fit",
    )
    de.add_argument(
        "--vooma",
        action="store_true",
        help="with --design, on log-expression (arrays, proteomics): limma's vooma precision "
        "weights and a weighted fit; with --block, the correlation estimated before and after",
    )
    de.add_argument(
        "--voom-lm-fit",
        action="store_true",
        help="with --design, on a counts store: edgeR's voomLmFit (voom and the weighted fit "
        "with the exact zeros of a group left out of each gene's variance and df; TMM "
        "factors); with --block the correlation is estimated twice, with --sample-weights the "
        "weights too ('genebygene' is voomLmFit's own)",
    )
    de.add_argument(
        "--glm-ql",
        action="store_true",
        help="with --design, on a counts store: edgeR's quasi-likelihood F-tests (estimateDisp, "
        "glmQLFit, glmQLFTest; TMM factors); with --robust, robust = TRUE in both",
    )
    de.add_argument(
        "--glm-lrt",
        action="store_true",
        help="with --design, on a counts store: edgeR's likelihood-ratio tests (estimateDisp, "
        "glmFit at the tagwise dispersions, glmLRT; TMM factors); --glm-ql is edgeR's advice",
    )
    de.add_argument(
        "--deseq",
        action="store_true",
        help="with --design, on a counts store: DESeq2's DESeq and results (median-of-ratios "
        "size factors, MAP dispersions, Wald tests, Cook's outliers replaced or left untested, "
        "independent filtering); with --treat, results(lfcThreshold =)",
    )
    de.add_argument(
        "--shrink",
        action="store_true",
        help="with --deseq: lfcShrink(type = 'normal'): the fold changes and their standard "
        "errors under DESeq2's Normal prior (the tests stay the MLE's)",
    )
    de.add_argument(
        "--ihw",
        action="store_true",
        help="padj from IHW's weighting of the p-values by the genes' mean expression (with "
        "--deseq, results(filterFun = ihw) in place of independent filtering; the weights "
        "saved as ihw_weight); --fdr must be bh or bonferroni",
    )
    de.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="the FDR that --ihw's weights and --deseq's independent filtering aim at "
        "(DESeq2's results(alpha = ...), default 0.1)",
    )
    de.add_argument(
        "--use-t",
        action="store_true",
        help="with --deseq: DESeq(useT = TRUE): the Wald tests' p-values from Student's t on "
        "samples − coefficients degrees of freedom",
    )
    de.add_argument(
        "--fit-type",
        choices=["parametric", "local", "mean"],
        help="with --deseq: DESeq2's dispersion trend (default parametric, the local fit where "
        "it fails, as DESeq2)",
    )
    de.add_argument(
        "--reduced",
        metavar="FORMULA",
        help="with --deseq: DESeq2's likelihood-ratio test against this reduced design, e.g. "
        "'~ 1' or '~ batch'",
    )
    de.add_argument(
        "--filter-by-expr",
        action="store_true",
        help="with --voom, --voom-lm-fit, --glm-ql or --glm-lrt: first keep the genes edgeR's "
        "filterByExpr keeps for the design (enough reads in as many samples as the smallest "
        "group); the result holds those genes",
    )
    de.add_argument(
        "--block",
        default=None,
        metavar="VARIABLE",
        help="with --design: samples correlated within blocks of this variable (a patient's "
        "samples); limma's duplicateCorrelation and lmFit(block=); with --voom, limma's "
        "two rounds (voom, correlation, voom with the blocks, correlation, fit)",
    )
    de.add_argument(
        "--correlation",
        type=float,
        default=None,
        help="with --block: the correlation within blocks (default: estimated)",
    )
    de.add_argument(
        "--sample-weights",
        nargs="?",
        const="reml",
        default=None,
        choices=("reml", "genebygene"),
        metavar="METHOD",
        help="with --design: sample quality weights (limma's arrayWeights; with --voom, "
        "voomWithQualityWeights; with --block too, both rounds with the blocks), so that "
        "noisy samples count less; by REML (the default) or 'genebygene', limma's own default "
        "update, for small studies",
    )
    de.add_argument(
        "--var-group",
        default=None,
        metavar="VARIABLE",
        help="with --sample-weights: one weight per group of this variable (a batch, a site)",
    )
    de.add_argument("--trend", action="store_true", help="with --design: eBayes(trend = TRUE)")
    de.add_argument(
        "--sva",
        metavar="K|auto",
        default=None,
        help="with --design: sva's surrogate variables of hidden factors (the iteratively "
        "reweighted method; 'auto' counts them by num.sv's permutations) added to the design "
        "as sv1 … svK; with the counts models, svaseq's of the counts scaled by DESeq2's size "
        "factors",
    )
    de.add_argument("--robust", action="store_true", help="with --design: eBayes(robust = TRUE)")
    de.add_argument(
        "--robust-fit",
        action="store_true",
        help="with --design: lmFit(method = 'robust'), each gene's Huber M-estimate (MASS's "
        "rlm), so that outlying samples weigh less",
    )
    de.add_argument(
        "--treat",
        type=float,
        default=None,
        metavar="LFC",
        help="with --design: test |log2 fold change| > LFC (limma's treat; with --glm-ql or "
        "--glm-lrt edgeR's glmTreat)",
    )
    de.add_argument(
        "--test",
        choices=("welch", "student", "anova", "wilcoxon", "kruskal", "exact"),
        default="welch",
        help="with --groupby: the test of every gene; 'exact' is classic edgeR's exact test "
        "on a counts store (TMM factors; --reference and --groups name the pair, default the "
        "first two groups)",
    )
    de.add_argument(
        "--reference", default="rest", help="reference group, or 'rest' for one-vs-rest"
    )
    de.add_argument("--groups", type=_names, default=None, help="groups to compare: a,b,c")
    de.add_argument(
        "--normalize",
        choices=("log_cpm", "log1p", "median_ratio", "quantile"),
        default=None,
        help="normalise first (lazily; log_cpm with TMM factors), e.g. raw counts",
    )
    de.add_argument(
        "--tie-correct",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --test wilcoxon: the tie correction of the variance (scanpy: off)",
    )
    de.add_argument(
        "--alternative",
        choices=("two-sided", "greater", "less"),
        default="two-sided",
        help="with --groupby: 'greater' tests whether a group lies above its reference",
    )
    de.add_argument(
        "--paired-by",
        default=None,
        metavar="VARIABLE",
        help="with --groupby: the paired t-test (or, with --test wilcoxon, the signed-rank "
        "test), samples paired by this variable (e.g. patient)",
    )
    de.add_argument(
        "--fdr",
        choices=("bh", "by", "bonferroni", "holm", "storey", "none"),
        default="bh",
        help="multiple-testing correction across genes",
    )
    de.add_argument(
        "--nan-policy",
        choices=("propagate", "omit"),
        default="propagate",
        help="propagate: a gene with a missing value gets NaN; omit: test its observed values",
    )
    de.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=_DEVICE)
    de.add_argument(
        "--name",
        type=_result_name,
        default=None,
        help="result name (default de_<test>_<groupby>, de_paired_<groupby>, de_limma, de_voom)",
    )
    de.add_argument("--out", type=Path, default=None, help="also write the table (.tsv/.csv)")
    de.add_argument("--top", type=int, default=10, help="genes to print (0: none)")
    de.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=_PROGRESS
    )
    de.set_defaults(run=_de)

    surv = commands.add_parser(
        "survival",
        help="per-gene Cox models, their tests of proportional hazards, or log-rank tests; the "
        "result goes into the store",
        description="A Cox proportional-hazards model per gene (R's coxph), the test of its "
        "proportional hazards (R's cox.zph), or the log-rank test of each gene's high against "
        "low expression (R's survdiff), with --km GENE for its Kaplan-Meier plot.",
    )
    surv.add_argument("store", type=Path)
    surv.add_argument(
        "--time",
        default=None,
        help="sample variable of follow-up times (default: the one named 'time')",
    )
    surv.add_argument(
        "--event",
        default=None,
        help="sample variable: 1 event, 0 censored (default: the one named 'event')",
    )
    surv.add_argument(
        "--test",
        choices=("cox", "zph", "logrank", "cutpoint", "finegray"),
        default="cox",
        help="a Cox model per gene, the test of its proportional hazards (cox.zph), the "
        "log-rank test of its high and low samples, its best cutpoint with a p-value that "
        "allows for the search (maxstat, Lau94), or a Fine-Gray model of --cause (--event "
        "then holds each event's cause, 0 censored; cmprsk's crr)",
    )
    surv.add_argument(
        "--cause",
        default="1",
        help="with --test finegray: the cause modelled, the others competing (default 1)",
    )
    surv.add_argument("--covariates", default=None, help="with cox, zph: a formula, e.g. '~ age'")
    surv.add_argument("--strata", default=None, help="sample variable of strata")
    surv.add_argument(
        "--concordance",
        action="store_true",
        help="with cox: each model's Harrell's C and its standard error too",
    )
    surv.add_argument(
        "--ties", choices=("efron", "breslow"), default="efron", help="Cox: tied event times"
    )
    surv.add_argument(
        "--transform",
        choices=("km", "rank", "identity", "log"),
        default="km",
        help="with zph: the function of time the hazard ratio may drift with (R's default km)",
    )
    surv.add_argument(
        "--quantile", type=float, default=0.5, help="with logrank: where genes split (median)"
    )
    surv.add_argument(
        "--fdr",
        choices=("bh", "by", "bonferroni", "holm", "storey", "none"),
        default="bh",
        help="multiple-testing correction across genes",
    )
    surv.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=_DEVICE)
    surv.add_argument(
        "--name", type=_result_name, default=None, help="result name (default survival_<test>)"
    )
    surv.add_argument("--out", type=Path, default=None, help="also write the table (.tsv/.csv)")
    surv.add_argument("--top", type=int, default=10, help="genes to print (0: none)")
    surv.add_argument("--km", metavar="GENE", default=None, help="Kaplan-Meier plot of a gene")
    surv.add_argument(
        "--by",
        metavar="VARIABLE",
        default=None,
        help="compare the survival of the groups of a sample variable instead (R's survdiff: "
        "the log-rank test, within --strata; each group's median and restricted mean); "
        "nothing is stored",
    )
    surv.add_argument(
        "--rho",
        type=float,
        default=0.0,
        help="with --by: the G-rho test's rho (0 log-rank, 1 Peto-Peto)",
    )
    surv.add_argument(
        "--causes",
        action="store_true",
        help="with --by: --event holds each event's cause (0 censored) competing with the "
        "others: each cause's cumulative incidence and Gray's test (cmprsk's cuminc)",
    )
    surv.add_argument(
        "--plot", type=Path, default=None, help="file for the --km plot, or with --by the groups'"
    )
    surv.set_defaults(run=_survival)

    pred = commands.add_parser(
        "predict",
        help="cross-validated prediction of a sample variable or of survival (genes chosen "
        "inside the folds)",
    )
    pred.add_argument("store", type=Path)
    pred.add_argument("--target", default=None, help="sample variable holding the classes")
    pred.add_argument(
        "--time",
        default=None,
        help="instead of --target, survival: the sample variable of follow-up times (with "
        "--event): a ridge (--penalty l2) or lasso (l1) Cox signature, Harrell's C",
    )
    pred.add_argument("--event", default=None, help="with --time: the event indicator (1/0)")
    pred.add_argument("--strata", default=None, help="with --time: sample variable of strata")
    pred.add_argument(
        "--covariates",
        default=None,
        help="with --time: a formula of clinical variables kept unpenalised in every model, "
        "e.g. '~ age + stage' (their model alone is scored too)",
    )
    pred.add_argument(
        "--validate",
        type=Path,
        default=None,
        help="with --time: another cohort store to score the signature fitted on all of "
        "STORE (the same options; its samples need the genes, covariates, --time and "
        "--event): Harrell's and Uno's C there, and with --at-times its Brier, IPA and AUC",
    )
    pred.add_argument(
        "--at-times",
        default=None,
        help="with --time: comma-separated times at which to predict each held-out "
        "sample's survival and score it (Brier, IPA, time-dependent AUC), e.g. 1826,3652",
    )
    pred.add_argument(
        "--lambda-choice",
        choices=("lambda_min", "lambda_1se"),
        default="lambda_min",
        help="with --time --penalty l1: the lasso's penalty in each fold (lambda_1se: fewer "
        "genes, within one standard error of the smallest cross-validated deviance)",
    )
    pred.add_argument(
        "--ridge",
        type=float,
        default=None,
        help="with --time: the ridge penalty (default: chosen in each fold)",
    )
    pred.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="with --time: Kaplan-Meier curves of the cross-validated risk groups",
    )
    pred.add_argument(
        "--k",
        type=int,
        default=None,
        help="genes chosen in each training fold (default 500 for classes; for survival 20 "
        "with the ridge, 200 with the lasso)",
    )
    pred.add_argument(
        "--select",
        choices=("anova", "welch", "variance"),
        default="anova",
        help="how each training fold ranks the genes",
    )
    pred.add_argument(
        "--model",
        choices=("logistic", "random_forest"),
        default="logistic",
        help="the classifier trained in each fold",
    )
    pred.add_argument(
        "--penalty",
        choices=("l2", "l1", "elasticnet", "none"),
        default="l2",
        help="logistic: the regularisation; survival: l2 the ridge, l1 the lasso",
    )
    pred.add_argument(
        "--C",
        type=float,
        nargs="+",
        default=[1.0],
        help="inverse penalty strength; several values are tuned by nested cross-validation",
    )
    pred.add_argument("--folds", type=int, default=5, help="stratified folds")
    pred.add_argument("--repeats", type=int, default=1, help="cross-validations, each reshuffled")
    pred.add_argument("--permutations", type=int, default=0, help="runs on shuffled labels")
    pred.add_argument("--seed", type=int, default=0, help="random seed of the folds")
    pred.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=_DEVICE)
    pred.add_argument("--out", type=Path, default=None, help="out-of-fold predictions (.tsv/.csv)")
    pred.add_argument("--top", type=int, default=10, help="genes to print (0: none)")
    pred.set_defaults(run=_predict)

    enrich = commands.add_parser(
        "enrich",
        help="gene-set enrichment of a stored DE result (GSEA, over-representation) or of the "
        "cohort's fit (camera, fry, roast, romer)",
    )
    enrich.add_argument("store", type=Path)
    enrich.add_argument("--sets", type=Path, required=True, help="a GMT file (MSigDB's format)")
    enrich.add_argument(
        "--method",
        choices=("gsea", "ora", "camera_pr", "gene_set_test", "camera", "fry", "roast", "romer"),
        default="gsea",
        help="preranked GSEA, over-representation of the up and down genes, limma's cameraPR or "
        "geneSetTest of a stored result's statistic; limma's camera of the cohort's own fit "
        "(competitive: the set against the other genes), fry (self-contained: is the set "
        "changed at all), roast (fry's question by random rotations, as limma's mroast) or "
        "romer (the set's genes' ranks among all genes, by rotations: GSEA-like)",
    )
    enrich.add_argument(
        "--result", default=None, help="the stored DE result (gsea, ora; default: the only one)"
    )
    enrich.add_argument(
        "--by",
        default="statistic",
        help="gsea, camera_pr, gene_set_test: the result's variable that ranks the genes",
    )
    enrich.add_argument("--contrast", default=None, help="the contrast, when there are several")
    enrich.add_argument(
        "--design", default=None, help="camera, fry, roast, romer: the model formula"
    )
    enrich.add_argument(
        "--voom",
        action="store_true",
        help="camera, fry or roast on a counts store: limma-voom's log-CPM (TMM factors) and "
        "weights, as camera(voom(...), ...); romer takes the log-CPM, without the weights",
    )
    enrich.add_argument(
        "--inter-gene-cor",
        default="0.01",
        metavar="RHO",
        help="camera: the correlation between the genes of a set (limma's default 0.01), or "
        "'estimate' (each set's own, from the residuals)",
    )
    enrich.add_argument(
        "--ranks",
        action="store_true",
        help="camera: limma's rank-sum test of the moderated t (use.ranks) instead of the t-test",
    )
    enrich.add_argument(
        "--names",
        default=None,
        metavar="VARIABLE",
        help="gene variable the sets' names are in (e.g. symbol); default the gene ids",
    )
    enrich.add_argument("--min-size", type=int, default=15, help="smallest set (of ranked genes)")
    enrich.add_argument("--max-size", type=int, default=500, help="largest set (of ranked genes)")
    enrich.add_argument("--permutations", type=int, default=1000, help="gsea: random sets per size")
    enrich.add_argument(
        "--eps",
        type=float,
        default=1e-50,
        help="gsea: smallest p the multilevel estimate reaches (default: %(default)g; 0: none)",
    )
    enrich.add_argument(
        "--no-multilevel",
        dest="multilevel",
        action="store_false",
        help="gsea: permutation p-values only (fgseaSimple), no multilevel refinement",
    )
    enrich.add_argument(
        "--seed",
        type=int,
        default=0,
        help="gsea, roast, romer: random seed (roast, romer: R's set.seed, so the rotations "
        "are limma's)",
    )
    enrich.add_argument(
        "--rotations",
        type=int,
        default=None,
        help="roast, romer: random rotations (limma's defaults: 1999 and 9999)",
    )
    enrich.add_argument(
        "--set-statistic",
        choices=("mean", "floormean", "mean50", "msq"),
        default="mean",
        help="roast, romer: the set's summary of its genes' moderated t or ranks (limma's "
        "set.statistic; msq is roast's only)",
    )
    enrich.add_argument("--out", type=Path, default=None, help="also write the table (.tsv/.csv)")
    enrich.add_argument("--top", type=int, default=10, help="sets to print (0: none)")
    enrich.add_argument("--plot", type=Path, default=None, help="dot plot of the best sets")
    enrich.set_defaults(run=_enrich)

    gs = commands.add_parser(
        "gsva",
        help="per-sample gene-set scores (GSVA, ssGSEA, combined z-scores, PLAGE): a new cohort "
        "whose genes are the sets, to test with `cohortex de`",
    )
    gs.add_argument("store", type=Path)
    gs.add_argument(
        "dest",
        type=Path,
        help="the scores: a new cohort store (.zarr), or a table of sets × samples "
        "(.tsv/.csv(.gz), .gct)",
    )
    gs.add_argument("--sets", type=Path, required=True, help="a GMT file (MSigDB's format)")
    gs.add_argument(
        "--method",
        choices=GSVA_METHODS,
        default="gsva",
        help="GSVA's kernel CDFs and random walks (default), ssGSEA's rank-weighted walks, the "
        "sum of standardised values over sqrt(size), or PLAGE's first singular vector",
    )
    gs.add_argument(
        "--kcdf",
        choices=GSVA_KERNELS,
        default="auto",
        help="gsva: the genes' kernel (auto: poisson for a counts store, gaussian otherwise)",
    )
    gs.add_argument(
        "--names",
        default=None,
        metavar="VARIABLE",
        help="gene variable the sets' names are in (e.g. symbol); default the gene ids",
    )
    gs.add_argument("--min-size", type=int, default=1, help="smallest set (of the cohort's genes)")
    gs.add_argument("--max-size", type=int, default=None, help="largest set (default: any)")
    gs.add_argument(
        "--plot", type=Path, default=None, help="a heatmap of the scores (z-scores per set)"
    )
    gs.add_argument(
        "--groupby", default=None, help="with --plot: the sample variable that groups the samples"
    )
    gs.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    gs.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=_PROGRESS
    )
    gs.set_defaults(run=_gsva)

    pc = commands.add_parser("pca", help="principal components; the result goes into the store")
    pc.add_argument("store", type=Path)
    pc.add_argument("--n-components", type=int, default=50, help="principal components")
    pc.add_argument(
        "--genes", choices=("all", "hvg"), default="hvg", help="all genes or the most variable"
    )
    pc.add_argument("--n-top-genes", type=int, default=2000, help="with --genes hvg: how many")
    pc.add_argument(
        "--standardize",
        action="store_true",
        help="divide each gene by its standard deviation (PCA of the correlation matrix)",
    )
    pc.add_argument(
        "--method",
        choices=("auto", "exact", "randomized", "streaming"),
        default="auto",
        help="auto chooses by the cohort's size (see cohortex.pca)",
    )
    pc.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=_DEVICE)
    pc.add_argument("--seed", type=int, default=0, help="random seed of the randomized methods")
    pc.add_argument("--name", type=_result_name, default="pca", help="result name (default pca)")
    pc.add_argument("--plot", type=Path, default=None, help="also save a scatter (PNG/PDF)")
    pc.add_argument("--color", default="condition", help="sample variable colouring the plot")
    pc.set_defaults(run=_pca)

    md = commands.add_parser(
        "mds",
        help="limma's MDS plot of the samples (leading log-fold-change distances)",
        description="limma's plotMDS: classical scaling of each pair's mean squared "
        "difference over its --top most different genes (pairwise) or over the --top most "
        "variable genes (common); the result goes into the store.",
    )
    md.add_argument("store", type=Path)
    md.add_argument("--top", type=int, default=500, help="genes behind each distance (500)")
    md.add_argument(
        "--gene-selection", choices=("pairwise", "common"), default="pairwise", help="(pairwise)"
    )
    md.add_argument("--n-components", type=int, default=2, help="dimensions to keep (2)")
    md.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=_DEVICE)
    md.add_argument("--name", type=_result_name, default="mds", help="result name (default mds)")
    md.add_argument("--plot", type=Path, default=None, help="also save a scatter (PNG/PDF)")
    md.add_argument("--color", default="condition", help="sample variable colouring the plot")
    md.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=_PROGRESS
    )
    md.set_defaults(run=_mds)

    cc = commands.add_parser(
        "consensus",
        help="consensus clustering of the samples (subtypes); the result goes into the store",
        description="ConsensusClusterPlus's consensus clustering: hierarchical clusterings (or "
        "PAM, or k-means) of subsamples on the most variable genes (median-centred), their "
        "consensus, the final clusters for k = 2 … --max-k, and the consensus CDF's area to "
        "choose k.",
    )
    cc.add_argument("store", type=Path)
    cc.add_argument("--max-k", type=int, default=6, help="largest number of clusters (6)")
    cc.add_argument("--reps", type=int, default=1000, help="subsamples (1000)")
    cc.add_argument("--p-item", type=float, default=0.8, help="fraction of samples each (0.8)")
    cc.add_argument(
        "--genes", type=int, default=5000, help="genes of largest MAD to use (5000; 0: all)"
    )
    cc.add_argument(
        "--distance",
        choices=("pearson", "spearman", "euclidean"),
        default="pearson",
        help="between samples: 1 − correlation over the genes, or Euclidean (pearson)",
    )
    cc.add_argument(
        "--cluster-algorithm",
        choices=("hc", "pam", "km"),
        default="hc",
        help="each subsample clustered hierarchically (average linkage), partitioned around "
        "medoids, or by R's kmeans (hc)",
    )
    cc.add_argument(
        "--seed",
        type=int,
        default=0,
        help="R's set.seed of the subsamples: ConsensusClusterPlus's seed gives its draws (0)",
    )
    cc.add_argument(
        "--name", type=_result_name, default="consensus", help="result name (default consensus)"
    )
    cc.add_argument(
        "--out", type=Path, default=None, help="also write the clusters (.tsv/.csv), k by k"
    )
    cc.add_argument("--plot", type=Path, default=None, help="also save the consensus CDF (PNG/PDF)")
    cc.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=_PROGRESS
    )
    cc.set_defaults(run=_consensus)

    nw = commands.add_parser(
        "network",
        help="co-expression modules of the genes (WGCNA); the result goes into the store",
        description="WGCNA's step-by-step network: soft-thresholded correlations, their "
        "topological overlap, dynamicTreeCut's hybrid cut of its tree, modules merged by "
        "their eigengenes; then each module's size, hub gene and the sample variables its "
        "eigengene follows. --blockwise runs WGCNA's blockwiseModules instead, a TOM per "
        "block of genes, for more genes than one TOM holds. --soft-threshold prints the "
        "scale-free fit of each power instead.",
    )
    nw.add_argument("store", type=Path)
    nw.add_argument(
        "--power",
        type=float,
        default=None,
        help="soft threshold (default: the lowest power of scale-free fit R² > 0.85, else "
        "WGCNA's FAQ)",
    )
    nw.add_argument("--network-type", choices=NETWORK_TYPES, default="unsigned", help="(unsigned)")
    nw.add_argument(
        "--tom-type", choices=TOM_TYPES, default=None, help="(unsigned; --blockwise: signed)"
    )
    nw.add_argument(
        "--tom-denominator",
        choices=TOM_DENOMINATORS,
        default=None,
        help="the TOM's denominator: the smaller of the two genes' connectivities, or their "
        "mean (WGCNA's TOMDenom; min)",
    )
    nw.add_argument(
        "--correlation-type",
        choices=CORRELATION_TYPES,
        default="pearson",
        help="pearson; bicor, the biweight midcorrelation, robust to outlying samples; or "
        "spearman (not with --blockwise or --consensus) (pearson)",
    )
    nw.add_argument(
        "--max-p-outliers",
        type=float,
        default=1.0,
        help="with bicor: at most this share of each side's samples outlying (1: no cap; "
        "WGCNA's FAQ suggests 0.05 or 0.1)",
    )
    nw.add_argument("--min-module-size", type=int, default=None, help="(30; --blockwise: 20)")
    nw.add_argument("--deep-split", type=int, choices=range(5), default=2, help="0 … 4 (2)")
    nw.add_argument(
        "--merge-cut-height",
        type=float,
        default=None,
        help="merge modules whose eigengenes correlate above 1 − this (0.25; --blockwise: 0.15)",
    )
    nw.add_argument(
        "--blockwise",
        action="store_true",
        help="WGCNA's blockwiseModules, with its defaults: the genes pre-clustered into blocks, "
        "a TOM and tree cut per block, modules pruned by kME and merged across blocks",
    )
    nw.add_argument(
        "--max-block-size",
        type=int,
        default=5000,
        help="with --blockwise or --consensus: the largest block of genes (5000)",
    )
    nw.add_argument(
        "--genes", type=int, default=0, help="the most variable genes only (0: all that vary)"
    )
    nw.add_argument(
        "--sets",
        type=Path,
        default=None,
        help="a GMT file: each module's most over-represented gene set too",
    )
    nw.add_argument(
        "--names",
        default=None,
        metavar="VARIABLE",
        help="gene variable the sets' names are in (e.g. symbol); default the gene ids",
    )
    nw.add_argument(
        "--soft-threshold",
        action="store_true",
        help="print (and --plot) the scale-free fit of each power; no modules",
    )
    nw.add_argument(
        "--preservation",
        type=Path,
        default=None,
        metavar="TEST_STORE",
        help="how well the modules stored under --name are preserved in another cohort "
        "(WGCNA's modulePreservation: Zsummary, median rank); saved as result "
        "'<name>_preservation'",
    )
    nw.add_argument(
        "--consensus",
        type=Path,
        nargs="+",
        default=None,
        metavar="OTHER_STORE",
        help="WGCNA's blockwiseConsensusModules: the modules this store's samples share with "
        "those of the other stores (the genes all of them hold), with its defaults; saved in "
        "this store",
    )
    nw.add_argument(
        "--permutations",
        type=int,
        default=100,
        help="with --preservation: random gene sets per module (100)",
    )
    nw.add_argument(
        "--quick-cor",
        type=float,
        default=1.0,
        help="with --preservation and missing values: R's quickCor (1, its default: quick "
        "correlations within modules; 0: each pair over the samples both have)",
    )
    nw.add_argument(
        "--cluster-coefficients",
        action="store_true",
        help="with --preservation: the modules' clustering coefficients too "
        "(calculateClusterCoeff)",
    )
    nw.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=_DEVICE)
    nw.add_argument(
        "--name", type=_result_name, default="network", help="result name (default network)"
    )
    nw.add_argument(
        "--out", type=Path, default=None, help="also write each gene's module (.tsv/.csv)"
    )
    nw.add_argument(
        "--plot", type=Path, default=None, help="also save the gene tree and modules (PNG/PDF)"
    )
    nw.add_argument(
        "--edges",
        type=Path,
        default=None,
        help="also write a module's edges (.tsv/.csv: two genes, their TOM, their kME), for "
        "Cytoscape (WGCNA's exportNetworkToCytoscape)",
    )
    nw.add_argument(
        "--edges-module", type=int, default=1, help="with --edges: the module (1, the largest)"
    )
    nw.add_argument(
        "--edges-threshold",
        type=float,
        default=0.02,
        help="with --edges: the smallest TOM written (0.02, WGCNA's)",
    )
    nw.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=_PROGRESS
    )
    nw.set_defaults(run=_network)

    ts = commands.add_parser("tsne", help="t-SNE of the samples; the result goes into the store")
    ts.add_argument("store", type=Path)
    ts.add_argument(
        "--from",
        dest="source",
        default=None,
        help="stored PCA result to embed (default: 'pca', computed with defaults if absent; a "
        "name given here must exist)",
    )
    ts.add_argument("--perplexity", type=_positive(float), default=30.0, help="t-SNE perplexity")
    ts.add_argument(
        "--n-iter", type=_positive(int), default=500, help="iterations after the exaggeration"
    )
    ts.add_argument("--seed", type=int, default=0, help="random seed")
    ts.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=_DEVICE)
    ts.add_argument("--name", type=_result_name, default="tsne", help="result name (default tsne)")
    ts.add_argument("--plot", type=Path, default=None, help="also save a scatter (PNG/PDF)")
    ts.add_argument("--color", default="condition", help="sample variable colouring the plot")
    ts.set_defaults(run=_tsne)

    ae = commands.add_parser("ae", help="deep autoencoder: train, and gene modules of its layers")
    ae_commands = ae.add_subparsers(dest="ae_command", metavar="ACTION", required=True)
    train = ae_commands.add_parser("train", help="train an autoencoder on a store")
    train.add_argument("store", type=Path)
    train.add_argument(
        "--recipe",
        choices=("default", "dwivedi"),
        default="default",
        help="default: a network around a linear PCA path, GELU, AdamW with warm-up and cosine "
        "decay, widths 256,16,256; dwivedi: Dwivedi et al.'s three sigmoid layers of 512 and "
        "Adam at 1e-4 (default: %(default)s)",
    )
    train.add_argument(
        "--hidden",
        type=_widths,
        default=None,
        help="hidden layer widths, e.g. 256,16,256 (default: the recipe's)",
    )
    train.add_argument(
        "--activation",
        choices=("gelu", "elu", "relu", "tanh", "sigmoid"),
        default=None,
        help="of the hidden layers (default: the recipe's)",
    )
    train.add_argument(
        "--lr", type=float, default=None, help="learning rate (default: the recipe's)"
    )
    train.add_argument("--batch-size", type=int, default=None, help="(default: the recipe's)")
    train.add_argument("--max-epochs", type=int, default=100, help="(default: %(default)s)")
    train.add_argument(
        "--patience",
        type=int,
        default=None,
        help="epochs without a better validation loss before stopping (default: the recipe's, "
        "5; dwivedi 10)",
    )
    train.add_argument("--n-top-genes", type=int, default=None, help="keep the most variable")
    train.add_argument("--seed", type=int, default=0, help="split, weights and batch order")
    train.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=_DEVICE)
    train.add_argument(
        "--model",
        type=Path,
        default=None,
        help="where to save the model (default: beside the store, STORE_NAME.autoencoder.pt)",
    )
    train.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="write the training state here every --checkpoint-every epochs",
    )
    train.add_argument("--checkpoint-every", type=int, default=1, help="(default: %(default)s)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from --checkpoint (same settings and store)",
    )
    train.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=_PROGRESS
    )
    train.set_defaults(run=_ae_train)
    modules = ae_commands.add_parser("modules", help="condition modules from a trained model")
    modules.add_argument("store", type=Path)
    modules.add_argument("--groupby", required=True, help="sample variable of the groups")
    modules.add_argument("--reference", default="rest", help="the group compared against")
    modules.add_argument(
        "--layer",
        type=int,
        default=None,
        help="hidden layer, 1 nearest the input (default: the code of the default recipe's "
        "network, the last layer of a dwivedi one)",
    )
    modules.add_argument("--q", type=float, default=0.05, help="BH level of the nodes used")
    modules.add_argument(
        "--module-size",
        type=int,
        help="genes in the module (default: a twentieth of the model's genes, at most 1000)",
    )
    modules.add_argument(
        "--model",
        type=Path,
        default=None,
        help="the trained model (default: beside the store, STORE_NAME.autoencoder.pt)",
    )
    modules.add_argument("--out", type=Path, default=None, help="also write the module genes")
    modules.set_defaults(run=_ae_modules)

    check = commands.add_parser(
        "verify",
        help="read every chunk of a store and check it; exit status 0 sound, 1 damaged",
    )
    check.add_argument("store", type=Path)
    check.add_argument("--json", action="store_true", help="print JSON instead of text")
    check.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=_PROGRESS
    )
    check.set_defaults(run=_verify)

    results = commands.add_parser(
        "results", help="the results stored in a store: list them, show one, export one"
    )
    results_commands = results.add_subparsers(
        dest="results_command", metavar="ACTION", required=True
    )
    listing = results_commands.add_parser("list", help="names, kinds and sizes of the results")
    listing.add_argument("store", type=Path)
    listing.set_defaults(run=_results_list)
    show = results_commands.add_parser("show", help="a result's best rows (or its summary)")
    show.add_argument("store", type=Path)
    show.add_argument("name")
    show.add_argument("--top", type=int, default=10, help="rows to print (default: %(default)s)")
    show.set_defaults(run=_results_show)
    export = results_commands.add_parser("export", help="a result as a .tsv or .csv table")
    export.add_argument("store", type=Path)
    export.add_argument("name")
    export.add_argument("out", type=Path, help="the table to write (.tsv or .csv)")
    export.set_defaults(run=_results_export)

    warmup = commands.add_parser(
        "warmup",
        help="compile the CPU loops now (the first t-test, Wilcoxon, Cox model and log-rank "
        "test after installation would otherwise do it)",
    )
    warmup.set_defaults(run=_warmup)

    info = commands.add_parser("info", help="dimensions, chunks, size and metadata of a store")
    info.add_argument("store", type=Path)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=_info)

    demo = commands.add_parser("demo", help="simulate a cohort and summarise it (the main job)")
    demo.add_argument("--samples", type=int, default=20_000, help="samples to simulate")
    demo.add_argument("--genes", type=int, default=5_000, help="genes to simulate")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the cohort")
    demo.add_argument(
        "--store",
        type=Path,
        default=None,
        help="keep the cohort store here (default: a temporary folder)",
    )
    demo.add_argument(
        "--report",
        type=Path,
        default=Path("cohortex-demo-report.html"),
        help="the HTML report (default ./cohortex-demo-report.html)",
    )
    demo.add_argument(
        "--tsne",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="include t-SNE (default on)",
    )
    demo.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=_PROGRESS
    )
    demo.set_defaults(run=_demo)

    bench = commands.add_parser(
        "bench", help="benchmark suite against scipy, scanpy, illico, scikit-learn, openTSNE …"
    )
    bench.add_argument(
        "--samples", type=int, default=50_000, help="samples of the simulated cohort"
    )
    bench.add_argument("--genes", type=int, default=20_000, help="genes of the simulated cohort")
    bench.add_argument(
        "--device", choices=["cpu", "gpu", "both"], default="cpu", help="where to run the cases"
    )
    bench.add_argument(
        "--only",
        type=_suites,
        default=None,
        help="comma-separated suites: de,wilcoxon,paired,pca,tsne,ae,survival,predict,"
        "genesets,voom,block,weights (default: all)",
    )
    bench.add_argument(
        "--store", type=Path, default=None, help="benchmark this store instead of simulating one"
    )
    bench.add_argument(
        "--out", type=Path, default=Path("cohortex-bench"), help="report folder (bench.json, .md)"
    )
    bench.add_argument(
        "--scipy-genes",
        type=int,
        default=500,
        help="genes scipy runs on; its time is extrapolated to all genes (default 500)",
    )
    bench.add_argument(
        "--repeats", type=int, default=1, help="runs of each cohortex case (median reported)"
    )
    bench.add_argument("--skip", type=_names, default=(), help="case names to leave out: a,b")
    bench.add_argument(
        "--r-samples",
        type=int,
        default=2000,
        help="samples given to R's limma-voom and block fit (and to cohortex beside them; "
        "default 2000)",
    )
    bench.set_defaults(run=_bench)
    return parser


def _suites(text: str) -> tuple[str, ...]:
    from .bench import SUITES

    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SUITES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown suite(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SUITES)}"
        )
    return chosen


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chunks", type=_pair, default=None, help="tile shape samples,genes (default 1024,1024)"
    )
    parser.add_argument("--compressor", choices=COMPRESSORS, default="lz4", help="chunk codec")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal)",
    )


def _result_name(text: str) -> str:
    """An argparse type: a name :func:`cohortex.write_result` accepts (checked before the work)."""
    from ..store._schema import check_result_name

    try:
        return check_result_name(text, "write_result")
    except CohortexError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _derived_name(*parts: str) -> str:
    """A result name made of parts (a test, a variable's name), the characters a name cannot
    hold replaced by '_' (a variable may be called 'tumor stage')."""
    from ..store._schema import RESULT_NAME_MAX

    text = "_".join(parts)
    kept = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in text)
    return kept[:RESULT_NAME_MAX]


def _positive(kind: type) -> Any:
    """An argparse type: a finite number above 0 of ``kind`` (int or float)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not np.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(
                f"expected a positive {'whole ' if kind is int else ''}number; got {text!r}"
            )
        return value

    return parse


def _pair(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two integers like 1024,1024; got {text!r}"
        ) from None
    return a, b


def _range(text: str) -> float | tuple[float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or low,high; got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError(f"expected a number or low,high; got {text!r}")


def _fractions(text: str) -> dict[str, float]:
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected name=fraction pairs like tumor=0.5,normal=0.5; got {text!r}"
            ) from None
    return out


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected widths like 512,512,512; got {text!r}"
        ) from None


def _contrasts(given: list[str] | None) -> dict[str, str] | None:
    """``--contrast`` values: ``NAME=EXPRESSION`` or an expression naming itself."""
    if not given:
        return None
    contrasts: dict[str, str] = {}
    for text in given:
        name, _, expression = text.partition("=")
        if not expression:
            name, expression = text, text
        contrasts[name.strip()] = expression.strip()
    return contrasts


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _store_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "chunks": args.chunks,
        "compressor": args.compressor,
        "overwrite": args.overwrite,
        "progress": args.progress,
    }


def _simulate(args: argparse.Namespace) -> None:
    from ..simulate import simulate

    start = time.perf_counter()
    ds = simulate(
        args.out,
        args.samples,
        args.genes,
        groups=args.groups,
        n_de=args.n_de if args.n_de < 1 else int(args.n_de),
        log2fc=args.log2fc,
        batches=args.batches,
        modules=args.modules,
        module_size=args.module_size,
        distribution=args.distribution,
        survival_genes=args.survival_genes,
        seed=args.seed,
        **_store_kwargs(args),
    )
    print(
        f"wrote {args.out}: {ds.sizes['sample']} samples × {ds.sizes['gene']} genes "
        f"in {time.perf_counter() - start:.1f} s"
    )


def _import(args: argparse.Namespace) -> None:
    from ..io import import_file

    start = time.perf_counter()
    options = _store_kwargs(args)
    if args.layer is not None:
        options["layer"] = args.layer
    if args.annotation_columns:
        options["annotation_columns"] = args.annotation_columns
    ds = import_file(
        args.src,
        args.dest,
        orientation=args.orientation,
        samples=args.samples,
        scale=args.scale,
        **options,
    )
    print(
        f"imported {args.src} → {args.dest}: {ds.sizes['sample']} samples × "
        f"{ds.sizes['gene']} genes in {time.perf_counter() - start:.1f} s"
    )


def _import_quantifications(args: argparse.Namespace) -> None:
    from ..io import import_quantifications

    start = time.perf_counter()
    ds = import_quantifications(
        args.files[0] if len(args.files) == 1 else args.files,  # one: a sample, or a folder of them
        args.out,
        tx2gene=args.tx2gene,
        counts_from_abundance=args.counts_from_abundance,
        transcripts=args.transcripts,
        ignore_tx_version=args.ignore_tx_version,
        ignore_after_bar=args.ignore_after_bar,
        read_length=args.read_length,
        round_counts=args.round,
        samples=args.samples,
        **_store_kwargs(args),
    )
    what = "transcripts" if args.transcripts else "genes"
    print(
        f"imported {len(args.files)} quantifications → {args.out}: {ds.sizes['sample']} samples "
        f"× {ds.sizes['gene']} {what} ({args.counts_from_abundance} counts"
        f"{', with their lengths' if 'length' in ds and ds['length'].ndim == 2 else ''}) in "
        f"{time.perf_counter() - start:.1f} s"
    )


def _export(args: argparse.Namespace) -> None:
    from ..io import export_anndata, export_gct, export_table

    name = args.dest.name.lower()
    if args.dest.exists() and not args.overwrite:
        raise CohortexError(f"{str(args.dest)!r} already exists; pass --overwrite to replace it.")
    if args.combat is not None and args.combat_seq is not None:
        raise CohortexError("--combat and --combat-seq are two corrections; choose one.")
    if args.keep is not None and args.combat is None and args.combat_seq is None:
        raise CohortexError("--keep goes with --combat or --combat-seq.")
    if args.nonparametric and args.combat is None:
        raise CohortexError("--nonparametric goes with --combat.")
    data: Any = args.store
    if args.combat_seq is not None:
        from .. import de

        data = de.combat_seq(data, args.combat_seq, covariates=args.keep)
    if args.normalize == "vst":
        from .. import de

        data = de.vst(data, nsub="auto")
    elif args.normalize == "rlog":
        from .. import de

        data = de.rlog(data)
    elif args.normalize is not None:
        from .. import normalize

        factors = "tmm" if args.normalize in ("log_cpm", "rpkm", "log_rpkm") else None
        data = normalize(data, args.normalize, norm_factors=factors)
    if args.combat is not None:
        from .. import de

        data = de.combat(data, args.combat, design=args.keep, parametric=not args.nonparametric)
    if name.endswith(".gct"):
        export_gct(data, args.dest, progress=args.progress)
    elif name.endswith((".tsv", ".txt", ".csv", ".tsv.gz", ".txt.gz", ".csv.gz")):
        export_table(data, args.dest, orientation=args.orientation, progress=args.progress)
    else:
        export_anndata(data, args.dest, overwrite=args.overwrite)
    steps = [f"ComBat-seq of {args.combat_seq}"] if args.combat_seq is not None else []
    if args.normalize is not None:
        steps.append(args.normalize)
    if args.combat is not None:
        prior = ", non-parametric" if args.nonparametric else ""
        steps.append(f"ComBat of {args.combat}{prior}")
    how = f" ({', '.join(steps)})" if steps else ""
    print(f"exported {args.store}{how} → {args.dest}")


_COUNT_MODELS = (("--glm-ql", "glm_ql"), ("--glm-lrt", "glm_lrt"), ("--deseq", "deseq"))


def _gene_table(result: Any) -> Any:
    """The result's variables per gene (and contrast) as a long table; per-sample values
    (size factors, sample weights) stay in the store."""
    kept = [v for v in result.data_vars if "gene" in result[v].dims]
    return result[kept].to_dataframe().reset_index()


def _with_surrogates(
    data: Any, design: str, count: str, args: argparse.Namespace, *, normalised: bool = False
) -> tuple[Any, str, str]:
    """The cohort with sva's surrogate variables, and the design with them; of counts, svaseq
    of the counts divided by DESeq2's size factors (``normalised``)."""
    import xarray as xr

    from .. import de, normalize, open_cohort

    if count != "auto" and not count.isdigit():
        raise CohortexError(f"--sva takes a count of surrogate variables or 'auto'; got {count!r}.")
    cohort = data if isinstance(data, xr.Dataset) else open_cohort(data)
    source = normalize(cohort, "median_ratio") if normalised else cohort
    wanted = None if count == "auto" else int(count)
    found = de.sva(source, design, n_sv=wanted, device=args.device)
    names = list(found.attrs["surrogates"])
    if not names:
        return cohort, design, " (sva found no surrogate variable)"
    how = "counted by num.sv" if count == "auto" else "asked for"
    plural = "s" if len(names) > 1 else ""
    what = f" with {len(names)} surrogate variable{plural} of sva ({how})"
    return cohort.merge(found[names]), design + "".join(f" + {n}" for n in names), what


def _de(args: argparse.Namespace) -> None:
    import pandas as pd

    from .. import de
    from ..store import write_result

    if args.out is not None:
        _check_output(args.out, "--out", (".tsv", ".csv", ".txt"))
    chosen = [flag for flag, on in _COUNT_MODELS if getattr(args, on)]
    if len(chosen) > 1:
        raise CohortexError(f"{' and '.join(chosen)} are different tests; choose one.")
    edger_glm = chosen[0] if chosen else None
    if args.deseq and args.robust:
        raise CohortexError("--deseq has no robust mode; leave out --robust.")
    if args.robust_fit and (edger_glm or args.deseq or args.voom_lm_fit or args.block):
        raise CohortexError(
            "--robust-fit is limma's lmFit(method = 'robust'); it goes without --glm-ql, "
            "--glm-lrt, --deseq, --voom-lm-fit and --block."
        )
    if args.reduced is not None and not args.deseq:
        raise CohortexError("--reduced goes with --deseq (DESeq2's likelihood-ratio test).")
    if args.shrink and not args.deseq:
        raise CohortexError("--shrink goes with --deseq (DESeq2's lfcShrink).")
    if args.alpha is not None and not (args.ihw or args.deseq):
        raise CohortexError("--alpha goes with --ihw or --deseq (the FDR they aim at).")
    alpha = 0.1 if args.alpha is None else args.alpha
    if not 0 < alpha < 1:
        raise CohortexError(f"--alpha must be in (0, 1); got {alpha:g}.")
    if args.ihw and args.fdr not in ("bh", "bonferroni"):
        raise CohortexError(f"--ihw weights the bh or bonferroni adjustment; got --fdr {args.fdr}.")
    if args.use_t and not args.deseq:
        raise CohortexError("--use-t goes with --deseq (DESeq2's useT).")
    if args.fit_type is not None and not args.deseq:
        raise CohortexError("--fit-type goes with --deseq (DESeq2's fitType).")
    if edger_glm is not None:
        clashing = [
            flag
            for flag, given in (
                ("--voom", args.voom),
                ("--voom-lm-fit", args.voom_lm_fit),
                ("--vooma", args.vooma),
                ("--block", args.block is not None),
                ("--sample-weights", args.sample_weights),
                ("--trend", args.trend),
                ("--normalize", args.normalize is not None),
            )
            if given
        ]
        if clashing:
            raise CohortexError(
                f"{edger_glm} fits the counts with a negative-binomial model; leave out "
                f"{', '.join(clashing)}."
            )
    if args.voom_lm_fit:
        if args.voom:
            raise CohortexError("--voom-lm-fit is voom with exact zeros; leave out --voom.")
        if args.correlation is not None:
            raise CohortexError("--voom-lm-fit estimates the correlation; leave out --correlation.")
    voom = args.voom or args.voom_lm_fit or edger_glm is not None  # reads the raw counts
    if args.vooma and (voom or args.sample_weights):
        raise CohortexError(
            "--vooma weights log-expression on its own; leave out --voom, --voom-lm-fit and "
            "--sample-weights."
        )
    model_options = (
        args.contrast
        or voom
        or args.vooma
        or args.trend
        or args.robust
        or args.robust_fit
        or args.treat is not None
        or args.block is not None
        or args.sample_weights
    )
    if voom and args.normalize is not None:
        raise CohortexError("--voom normalises the counts itself; leave out --normalize.")
    if args.filter_by_expr and not voom:
        raise CohortexError(
            "--filter-by-expr goes with --voom, --voom-lm-fit, --glm-ql, --glm-lrt or --deseq (a "
            "counts store)."
        )
    if args.groupby is not None and model_options:
        raise CohortexError(
            "--contrast, --voom, --vooma, --block, --sample-weights, --trend, --robust, "
            "--robust-fit and --treat go with --design."
        )
    if args.correlation is not None and args.block is None:
        raise CohortexError("--correlation goes with --block.")
    if args.var_group is not None and not args.sample_weights:
        raise CohortexError("--var-group goes with --sample-weights.")
    if args.design is not None and (args.paired_by or args.alternative != "two-sided"):
        raise CohortexError(
            "--alternative and --paired-by go with --groupby (with --design, put the pairs in "
            "the formula, e.g. '~ patient + condition')."
        )
    if args.sva is not None and args.design is None:
        raise CohortexError("--sva goes with --design (the surrogate variables join it).")
    start = time.perf_counter()
    data: Any = args.store
    if args.normalize is not None:
        from .. import normalize

        factors = "tmm" if args.normalize == "log_cpm" else None
        data = normalize(args.store, args.normalize, norm_factors=factors)
    elif not voom and args.test != "exact":
        _warn_if_counts(args.store)
    correlation = args.correlation
    if args.design is not None:
        sample_weights = None
        what_kept = ""
        if args.sva is not None and not voom:
            data, args.design, what_kept = _with_surrogates(data, args.design, args.sva, args)
        if voom:
            counts = args.store
            if args.filter_by_expr:  # limma-voom's recipe: filterByExpr, then voom
                from .. import filter_by_expr, open_cohort

                keep = filter_by_expr(args.store, args.design, device=args.device)
                counts = open_cohort(args.store, genes=keep)
                what_kept = (
                    f" of the {keep.attrs['n_kept']} genes filterByExpr keeps (of {keep.size})"
                )
            if args.sva is not None:  # svaseq of the normalised counts, as its vignette
                counts, args.design, surrogates = _with_surrogates(
                    counts, args.design, args.sva, args, normalised=True
                )
                what_kept += surrogates
            if not (args.voom_lm_fit or edger_glm):
                data = _voom_for(args, counts, correlation)
            if args.block is not None and correlation is None and not args.voom_lm_fit:
                # limma's recipe: the blocks' correlation of a first voom, voom again with it
                # (its trend from the block fit), and the correlation of the new weights
                first = de.duplicate_correlation(data, args.design, args.block, device=args.device)
                data = _voom_for(args, counts, first.attrs["consensus_correlation"])
            if args.sample_weights and not args.voom_lm_fit:
                sample_weights = data["sample_weights"]
        elif args.vooma:  # limma's recipe with blocks: correlation, vooma, correlation again
            first = correlation
            if args.block is not None and first is None:
                found = de.duplicate_correlation(data, args.design, args.block, device=args.device)
                first = found.attrs["consensus_correlation"]
            data = de.vooma(
                data,
                args.design,
                block=args.block if first is not None else None,
                correlation=first,
                device=args.device,
            )
        elif args.sample_weights:
            sample_weights = de.array_weights(
                data,
                args.design,
                var_group=args.var_group,
                method=args.sample_weights,
                device=args.device,
            )
        if args.deseq:
            result = de.deseq(
                counts,
                args.design,
                contrasts=_contrasts(args.contrast),
                reduced=args.reduced,
                lfc_threshold=args.treat or 0.0,
                shrink="normal" if args.shrink else None,
                ihw=args.ihw,
                alpha=alpha,
                use_t=args.use_t,
                fit_type=args.fit_type or "parametric",
                fdr=args.fdr,
            )
            replaced = int(result["replaced"].sum())
            test = (
                f"likelihood-ratio tests against {args.reduced}" if args.reduced else "Wald tests"
            )
            what = (
                f"DESeq2 {test} (MAP dispersions; {replaced} genes refitted with outliers replaced)"
            )
            if args.treat:
                what = f"DESeq2 Wald tests of |log2 FC| > {args.treat:.3g}"
            if args.shrink:
                what += ", fold changes shrunk by the Normal prior (lfcShrink)"
            if args.ihw:
                what += ", padj weighted by IHW on the mean counts"
            if args.use_t:
                what += f", p-values from Student's t on {result.attrs['t_df']:g} df (useT)"
            if result.attrs["fit_type"] != "parametric":
                what += f", the {result.attrs['fit_type']} dispersion trend"
            if result.attrs["normalization_factors"] == "lengths":
                what += ", the transcript lengths as normalization factors (tximport)"
        elif edger_glm is not None:
            edger_test = de.glm_ql if args.glm_ql else de.glm_lrt
            result = edger_test(
                counts,
                args.design,
                contrasts=_contrasts(args.contrast),
                robust=args.robust,
                treat_lfc=args.treat,
                fdr=args.fdr,
            )
            common = f"common dispersion {result.attrs['common_dispersion']:.4g}"
            what = (
                f"edgeR quasi-likelihood F-tests ({common}, trended by abundance)"
                if args.glm_ql
                else f"edgeR likelihood-ratio tests (tagwise dispersions; {common})"
            )
            if args.treat:
                fitted = "glmQLFit" if args.glm_ql else "glmFit"
                what = f"edgeR glmTreat, |log2 FC| > {args.treat:.3g}, after {fitted} ({common})"
            if result.attrs["offsets"] == "lengths":
                what += ", offsets from the transcript lengths (tximport)"
        elif args.voom_lm_fit:
            result = de.voom_lm_fit(
                counts,
                args.design,
                contrasts=_contrasts(args.contrast),
                norm_factors="tmm",
                block=args.block,
                sample_weights=_VOOM_LM_FIT_WEIGHTS.get(args.sample_weights, False),
                var_group=args.var_group,
                trend=args.trend,
                robust=args.robust,
                treat_lfc=args.treat,
                fdr=args.fdr,
                device=args.device,
            )
            if args.sample_weights:
                sample_weights = result["sample_weights"]
            lost = result["df_residual"].values < result["df_residual"].values.max()
            what = f"voomLmFit linear model (exact zeros cut the df of {int(lost.sum())} genes)"
        else:
            result = de.fit(
                data,
                args.design,
                weights=None if voom else sample_weights,
                contrasts=_contrasts(args.contrast),
                block=args.block,
                correlation=args.correlation,
                method="robust" if args.robust_fit else "ls",
                trend=args.trend,
                robust=args.robust,
                treat_lfc=args.treat,
                fdr=args.fdr,
                device=args.device,
            )
            what = "limma-voom linear model" if voom else "limma linear model"
            if args.robust_fit:
                what += " (robust: rlm)"
            if args.vooma:
                what = "limma linear model with vooma's weights"
        what += what_kept
        if args.filter_by_expr:
            result.attrs["filter_by_expr"] = 1
        if args.block is not None:
            how = "given" if args.correlation is not None else "estimated"
            what += (
                f" with samples correlated within {args.block} ({how} correlation "
                f"{result.attrs['correlation']:.4f})"
            )
        if sample_weights is not None:
            reml = args.sample_weights == "reml"
            how = "REML" if reml else "limma's gene-by-gene update"
            what += _sample_weights_summary(sample_weights, args.var_group, how)
            method = "REML" if reml else "gene by gene"
            result.attrs["sample_weights"] = f"{method}, by {args.var_group or 'sample'}"
        default_name: str | None = (
            "de_deseq"
            if args.deseq
            else "de_glm_ql"
            if args.glm_ql
            else "de_glm_lrt"
            if args.glm_lrt
            else "de_voom_lm_fit"
            if args.voom_lm_fit
            else "de_voom"
            if voom
            else "de_vooma"
            if args.vooma
            else "de_limma"
        )
    elif args.test == "exact":
        if args.normalize is not None or args.paired_by or args.alternative != "two-sided":
            raise CohortexError(
                "--test exact compares the raw counts of two groups; leave out --normalize, "
                "--paired-by and --alternative."
            )
        result = de.exact_test(args.store, args.groupby, _exact_pair(args), fdr=args.fdr)
        what = (
            f"edgeR exact test of {args.groupby}: {result.attrs['reference']} against "
            f"{result['group'].item()} (common dispersion "
            f"{result.attrs['common_dispersion']:.4g})"
        )
        default_name = _derived_name("de_exact", args.groupby)
    else:
        result = de.test(
            data,
            args.groupby,
            test=args.test,
            groups=args.groups,
            reference=args.reference,
            fdr=args.fdr,
            nan_policy=args.nan_policy,
            alternative=args.alternative,
            paired_by=args.paired_by,
            tie_correct=args.tie_correct,
            device=args.device,
        )
        what = f"{result.attrs['test']} test of {args.groupby}"
        default_name = _derived_name("de_paired", args.groupby) if args.paired_by else None
    if args.ihw and not args.deseq:  # de.deseq weighted its own
        result = de.ihw(result, alpha=alpha, method=args.fdr)
        what += ", padj weighted by IHW on the mean expression"
    elapsed = time.perf_counter() - start
    name = args.name or default_name or _derived_name("de", args.test, args.groupby)
    write_result(args.store, name, result, overwrite=True)
    if args.out is not None:
        table = _gene_table(result)
        sep = "," if args.out.suffix.lower() == ".csv" else "\t"
        table.to_csv(args.out, sep=sep, index=False)
    print(
        f"{what} in {elapsed:.1f} s; saved as result {name!r}"
        + (f" and {args.out}" if args.out else "")
    )
    if args.top > 0 and ("log2fc" in result or "coefficient" in result):
        shown = result
        mirrored = _mirrored_contrasts(result)
        if mirrored is not None:  # two groups each against the rest: one table says it all
            shown = result.isel(contrast=[0])
            print(f"top genes of {mirrored[0]} ({mirrored[1]} is its mirror image, also saved):")
        with pd.option_context("display.width", 120, "display.max_columns", 12):
            print(de.top(shown, args.top).to_string(index=False, float_format="%.4g"))
    elif args.top > 0 and "group" in result.dims:  # ANOVA, Kruskal–Wallis: one test per gene
        table = result[["statistic", "pvalue", "padj"]].to_dataframe()
        best = table.sort_values(["pvalue", "statistic"], ascending=[True, False])
        with pd.option_context("display.width", 120):
            print(best.head(args.top).to_string(float_format="%.4g"))


def _exact_pair(args: argparse.Namespace) -> tuple[str, str] | None:
    """--test exact's pair: (--reference, the one group of --groups), or None for the first
    two groups."""
    reference = None if args.reference == "rest" else args.reference
    groups = args.groups or []
    if reference is None and not groups:
        return None
    if reference is None or len(groups) != 1:
        raise CohortexError(
            "--test exact compares two groups: give --reference and one group in --groups "
            "(or neither, for the first two groups)."
        )
    return reference, groups[0]


# --sample-weights with --voom-lm-fit: voomLmFit's own weights are the gene-by-gene update
_VOOM_LM_FIT_WEIGHTS: dict[str | None, bool | str] = {"genebygene": True, "reml": "reml"}


def _inter_gene_cor(value: str) -> float | None:
    """--inter-gene-cor: a correlation in (-1, 1), or 'estimate' (None)."""
    if value.lower() in ("estimate", "estimated", "na"):
        return None
    try:
        rho = float(value)
    except ValueError:
        rho = float("nan")
    if not -1 < rho < 1:
        raise CohortexError(
            f"--inter-gene-cor must be a correlation in (-1, 1) or 'estimate'; got {value!r}."
        )
    return rho


def _voom_for(args: argparse.Namespace, counts: Any, correlation: float | None) -> Any:
    """voom of ``counts`` (the store, or its kept genes) with TMM factors; with the blocks
    when a correlation is known."""
    from .. import de

    block = args.block if correlation is not None else None
    return de.voom(
        counts,
        args.design,
        norm_factors="tmm",
        block=block,
        correlation=correlation,
        sample_weights=args.sample_weights or False,
        var_group=args.var_group,
        device=args.device,
    )


def _sample_weights_summary(weights: Any, var_group: str | None, how: str) -> str:
    """', sample weights by REML (lowest: S04 0.31, …)': the samples that count least."""
    values = np.asarray(weights.values)
    if var_group is not None:
        return f", sample weights by {var_group} (from {values.min():.3g} to {values.max():.3g})"
    lowest = np.argsort(values)[:3]
    names = np.asarray(weights["sample"].values)[lowest]
    pairs = zip(names, values[lowest], strict=True)
    listed = ", ".join(f"{name} {value:.3g}" for name, value in pairs)
    return f", sample weights by {how} (lowest: {listed})"


def _mirrored_contrasts(result: Any) -> tuple[str, str] | None:
    """The two contrast names when they are one comparison both ways (a against b, b against
    a), else None."""
    if "contrast" not in result.dims or result.sizes["contrast"] != 2:
        return None
    if "group" not in result.coords or "reference" not in result.coords:
        return None
    group = [str(g) for g in result["group"].values]
    reference = [str(r) for r in result["reference"].values]
    if group != reference[::-1] or group[0] == group[1]:
        return None
    names = [str(c) for c in result["contrast"].values]
    return names[0], names[1]


def _outcome_variable(store: Path, given: str | None, name: str, holds: str) -> str:
    """The sample variable named by --time or --event, or the store's variable called so."""
    if given is not None:
        return given
    from ..store import open_cohort

    cohort = open_cohort(store)
    variables = [str(v) for v in cohort.data_vars if cohort[v].dims == ("sample",)]
    if name in variables:
        return name
    raise CohortexError(
        f"--{name} must name the sample variable of the {holds}; the store has none called "
        f"{name!r}. Sample variables: {', '.join(variables) or '(none)'}."
    )


def _survival(args: argparse.Namespace) -> None:
    import pandas as pd

    from .. import survival
    from ..store import write_result

    if args.out is not None:
        _check_output(args.out, "--out", (".tsv", ".csv", ".txt"))
    if args.by is not None:
        _survival_groups(args)
        return
    if args.rho != 0.0 or args.causes:
        raise CohortexError("--rho and --causes go with --by.")
    if (args.km is None) != (args.plot is None):
        raise CohortexError("--km GENE and --plot FILE go together.")
    _check_plot(args.plot)
    if args.test in ("logrank", "cutpoint") and (args.covariates or args.ties != "efron"):
        raise CohortexError("--covariates and --ties go with --test cox or zph.")
    if args.test == "cutpoint" and (args.strata or args.quantile != 0.5):
        raise CohortexError("--test cutpoint finds each gene's split: no --strata or --quantile.")
    if args.test != "zph" and args.transform != "km":
        raise CohortexError("--transform goes with --test zph.")
    if args.test != "cox" and args.concordance:
        raise CohortexError("--concordance goes with --test cox.")
    if args.test == "finegray" and (args.strata or args.ties != "efron" or args.km):
        raise CohortexError("--test finegray takes no --strata, --ties or --km.")
    args.time = _outcome_variable(args.store, args.time, "time", "follow-up times")
    args.event = _outcome_variable(args.store, args.event, "event", "events (1 event, 0 censored)")
    curves = None
    if args.km is not None and args.test != "cutpoint":  # first: an unknown gene fails early
        curves = survival.kaplan_meier(
            args.store, args.time, args.event, gene=args.km, quantile=args.quantile
        )
    elif args.km is not None:
        from ..store import open_cohort

        if args.km not in set(open_cohort(args.store)["gene"].values.astype(str)):
            raise CohortexError(f"--km must name a gene of the store; got {args.km!r}.")
    start = time.perf_counter()
    shared = {"strata": args.strata, "fdr": args.fdr, "device": args.device}
    model = {"covariates": args.covariates, "ties": args.ties, **shared}
    if args.test == "cox":
        result = survival.cox(
            args.store, args.time, args.event, concordance=args.concordance, **model
        )
        what = "Cox models"
    elif args.test == "zph":
        result = survival.cox_zph(
            args.store, args.time, args.event, transform=args.transform, **model
        )
        what = "tests of proportional hazards"
    elif args.test == "finegray":
        result = survival.fine_gray_genes(
            args.store,
            args.time,
            args.event,
            covariates=args.covariates,
            cause=args.cause,
            fdr=args.fdr,
        )
        what = f"Fine-Gray models of cause {args.cause}"
    elif args.test == "cutpoint":
        result = survival.cutpoint(
            args.store, args.time, args.event, fdr=args.fdr, device=args.device
        )
        what = "maximally selected log-rank statistics (cutpoints, Lau94 p-values)"
    else:
        result = survival.logrank(
            args.store, args.time, args.event, quantile=args.quantile, **shared
        )
        what = "log-rank tests"
    elapsed = time.perf_counter() - start
    name = args.name or f"survival_{args.test}"
    write_result(args.store, name, result, overwrite=True)
    table = result.drop_dims("term", errors="ignore").to_dataframe().reset_index()
    for term in result["term"].values if "term" in result.dims else []:  # zph's covariates
        for column in ("statistic", "pvalue"):
            table[f"{term}_{column}"] = result[f"term_{column}"].sel(term=term).values
    if args.out is not None:
        table.to_csv(args.out, sep="," if args.out.suffix.lower() == ".csv" else "\t", index=False)
    print(
        f"{what} of {result.sizes['gene']} genes in {elapsed:.1f} s; saved as result {name!r}"
        + (f" and {args.out}" if args.out else "")
    )
    if args.top > 0:
        columns = ["gene", "hazard_ratio", "statistic", "pvalue", "padj"]
        if args.test in ("cox", "finegray"):
            columns[2:2] = ["ci_low", "ci_high"]
            if args.concordance:
                columns.append("concordance")
        if args.test == "zph":
            columns = ["gene", "coefficient", "statistic", "pvalue", "padj", "global_pvalue"]
        if args.test == "cutpoint":
            columns = ["gene", "cutpoint", "n_low", "hazard_ratio", "statistic", "pvalue", "padj"]
        # where p-values underflow to 0 the larger statistic ranks first
        strength = -table["statistic"].abs()
        best = table.assign(strength=strength).sort_values(["pvalue", "strength"]).head(args.top)
        with pd.option_context("display.width", 120, "display.max_columns", 12):
            print(best[columns].to_string(index=False, float_format="%.4g"))
    if args.km is not None and args.test == "cutpoint":  # split at the gene's cutpoint
        from ..store import open_cohort

        cut = float(result["cutpoint"].sel(gene=args.km))
        values = open_cohort(args.store)["expression"].sel(gene=args.km).values
        groups = np.where(values > cut, "high", "low")
        curves = survival.kaplan_meier(args.store, args.time, args.event, by=groups)
    if curves is not None:
        from .. import plot

        ax = plot.km(curves)
        split = (
            f"above and below its cutpoint {float(result['cutpoint'].sel(gene=args.km)):.3g}"
            if args.test == "cutpoint"
            else "high vs low expression"
        )
        ax.set_title(f"{args.km}: {split}")
        _save_figure(ax, args.plot, f"Kaplan-Meier plot of {args.km} written to {args.plot}")


def _survival_groups(args: argparse.Namespace) -> None:
    """``cohortex survival --by VARIABLE``: the groups' log-rank test and medians."""
    import pandas as pd

    from .. import survival

    per_gene = args.km or args.covariates or args.concordance or args.test != "cox"
    if per_gene or args.ties != "efron" or args.name:
        raise CohortexError(
            "--by compares sample groups: it takes --strata, --rho, --plot, --out, not the "
            "per-gene options (--test, --km, --covariates, --ties, --concordance, --name)."
        )
    _check_plot(args.plot)
    args.time = _outcome_variable(args.store, args.time, "time", "follow-up times")
    args.event = _outcome_variable(args.store, args.event, "event", "events (1 event, 0 censored)")
    if args.causes:
        _survival_causes(args)
        return
    test = survival.compare_groups(
        args.store, args.time, args.event, args.by, strata=args.strata, rho=args.rho
    )
    medians = survival.median_survival(args.store, args.time, args.event, by=args.by)
    table = test.table.join(medians.drop(columns=["records", "events"]))
    kind = "log-rank" if args.rho == 0 else f"G-rho (rho = {args.rho:g})"
    within = f" within {args.strata}" if args.strata else ""
    print(
        f"Survival by {args.by}{within}: {kind} chi-square {test.statistic:.3f} on {test.df} df, "
        f"p = {test.pvalue:.3g}"
    )
    shown = table[["n", "observed", "expected", "median", "lower", "upper", "rmean"]]
    with pd.option_context("display.width", 120, "display.max_columns", 12):
        print(shown.to_string(float_format="%.4g"))
    print(
        f"(median with its {medians.attrs['confidence']:.0%} limits; rmean: the restricted "
        f"mean survival up to {medians.attrs['restricted_time']:g})"
    )
    if args.out is not None:
        table.reset_index().to_csv(
            args.out, sep="," if args.out.suffix.lower() == ".csv" else "\t", index=False
        )
        print(f"Table written to {args.out}")
    if args.plot is not None:
        from .. import plot

        ax = plot.km(survival.kaplan_meier(args.store, args.time, args.event, by=args.by))
        ax.set_title(f"Survival by {args.by} ({kind} p = {test.pvalue:.3g})")
        _save_figure(ax, args.plot, f"Kaplan-Meier plot of the groups written to {args.plot}")


def _survival_causes(args: argparse.Namespace) -> None:
    """``cohortex survival --by VARIABLE --causes``: competing causes' cumulative incidence."""
    import numpy as np
    import pandas as pd

    from .. import survival

    result = survival.cumulative_incidence(
        args.store, args.time, args.event, by=args.by, strata=args.strata, rho=args.rho
    )
    within = f" within {args.strata}" if args.strata else ""
    print(f"Cumulative incidence by {args.by}, causes of {args.event} competing (0 censored)")
    for cause, row in result.tests.iterrows():
        print(
            f"Gray's test of cause {cause}{within}: chi-square {row['statistic']:.3f} on "
            f"{int(row['df'])} df, p = {row['pvalue']:.3g}"
        )
    end = max(result.follow_up.values())
    times = [float(f"{t:.3g}") for t in np.linspace(0.0, end, 5)[1:]]
    at = result.at(times)
    table = at.pivot_table(index=["cause", "group"], columns="time", values="estimate")
    with pd.option_context("display.width", 120, "display.max_columns", 12):
        print(table.to_string(float_format="%.3f"))
    if args.out is not None:
        result.curves.to_csv(
            args.out, sep="," if args.out.suffix.lower() == ".csv" else "\t", index=False
        )
        print(f"Curves written to {args.out}")
    if args.plot is not None:
        from .. import plot

        ax = plot.cumulative_incidence(result)
        _save_figure(ax, args.plot, f"Cumulative incidence plot written to {args.plot}")


def _predict(args: argparse.Namespace) -> None:
    from .. import predict

    if args.out is not None:
        _check_output(args.out, "--out", (".tsv", ".csv", ".txt"))
    if (args.target is None) == (args.time is None):
        raise CohortexError("predict takes --target (classes) or --time and --event (survival).")
    if args.time is not None:
        _predict_survival(args)
        return
    survival_only = (
        args.event,
        args.strata,
        args.ridge,
        args.plot,
        args.covariates,
        args.at_times,
        args.validate,
    )
    if any(v is not None for v in survival_only):
        raise CohortexError(
            "--event, --strata, --ridge, --covariates, --at-times, --validate and --plot go "
            "with --time."
        )
    args.k = 500 if args.k is None else args.k
    start = time.perf_counter()
    result = predict.cross_validate(
        args.store,
        args.target,
        k=args.k,
        select=args.select,
        model=args.model,
        penalty=args.penalty,
        C=args.C if len(args.C) > 1 else args.C[0],
        folds=args.folds,
        repeats=args.repeats,
        permutations=args.permutations,
        seed=args.seed,
        device=args.device,
    )
    elapsed = time.perf_counter() - start
    low, high = result.auroc_ci
    interval = "" if np.isnan(low) else f" (95% CI {low:.3f}–{high:.3f}, DeLong)"
    print(
        f"{args.model} on {args.k} genes chosen in each of {args.folds} training folds "
        f"({', '.join(result.classes)}) in {elapsed:.1f} s\n"
        f"AUROC {result.auroc:.3f}{interval}; balanced accuracy "
        f"{result.balanced_accuracy:.3f}; per fold "
        + ", ".join(f"{a:.3f}" for a in result.folds["auroc"])
    )
    if len(args.C) > 1:
        print(
            "C chosen by nested cross-validation, per fold: "
            + ", ".join(f"{c:g}" for c in result.folds["C"])
        )
    if args.permutations:
        print(
            f"shuffled labels: AUROC median {np.median(result.permutation_auroc):.3f} over "
            f"{args.permutations} runs; permutation p = {result.permutation_pvalue:.3g}"
        )
    _write_predictions(args, result.predictions, result.genes, "predictions")


def _predict_survival(args: argparse.Namespace) -> None:
    from .. import predict

    if args.event is None:
        raise CohortexError("--time goes with --event (the event indicator, 1/0).")
    default = {"select": "anova", "model": "logistic", "C": [1.0]}
    changed = [f"--{name}" for name, value in default.items() if getattr(args, name) != value]
    if changed:
        raise CohortexError(f"{', '.join(changed)} go with --target (classes), not --time.")
    models = {"l2": "ridge", "l1": "lasso"}
    if args.penalty not in models:
        raise CohortexError("With --time, --penalty is l2 (the ridge) or l1 (the lasso).")
    model = models[args.penalty]
    _check_plot(args.plot)
    k = predict.SURVIVAL_MODELS[model] if args.k is None else args.k
    # the signature's options, for the cross-validation and the final fit alike
    options = {
        "model": model,
        "k": k,
        "ridge": args.ridge,
        "lambda_choice": args.lambda_choice,
        "covariates": args.covariates,
        "strata": args.strata,
        "seed": args.seed,
        "device": args.device,
    }
    start = time.perf_counter()
    result = predict.cross_validate_survival(
        args.store,
        args.time,
        args.event,
        folds=args.folds,
        repeats=args.repeats,
        times=_times(args.at_times),
        permutations=args.permutations,
        **options,
    )
    elapsed = time.perf_counter() - start
    print(
        f"{model} Cox on {k} genes chosen in each of {args.folds} training folds in "
        f"{elapsed:.1f} s\nHarrell's C {result.concordance:.3f} (se "
        f"{result.concordance_se:.3f}); per fold "
        + ", ".join(f"{c:.3f}" for c in result.folds["concordance"])
        + ("; ridge per fold " if model == "ridge" else "; lambda per fold ")
        + ", ".join(f"{r:.3g}" for r in result.folds["penalty"])
        + ("" if model == "ridge" else "; genes kept per fold ")
        + ("" if model == "ridge" else ", ".join(str(g) for g in result.folds["genes"]))
    )
    uno = result.weighted_concordance()
    print(
        f"Uno's C {uno.concordance:.3f} (se {uno.std_err:.3f}; pairs weighted by the censoring, "
        "so that it does not depend on how heavily the cohort is censored)"
    )
    if args.covariates:
        print(
            f"the covariates ({args.covariates}) alone, fitted in the same folds: Harrell's C "
            f"{result.covariates_concordance:.3f}"
        )
    high = int(
        (result.predictions["risk_group"][result.predictions["repeat"] == 0] == "high").sum()
    )
    print(
        f"risk groups by the training folds' median risk: {high} high, "
        f"{len(result.predictions[result.predictions['repeat'] == 0]) - high} low; log-rank "
        f"chi-square {result.logrank_statistic:.2f} (nominal p {result.logrank_pvalue:.3g})"
    )
    for at, row in result.scores.iterrows():
        print(
            f"at {at:g}: Brier {row['brier']:.3f} (Kaplan-Meier alone {row['null_brier']:.3f}; "
            f"IPA {row['ipa']:.3f}), AUC {row['auc']:.3f} ({row['auc_lower']:.3f}-"
            f"{row['auc_upper']:.3f}); {int(row['cases'])} cases, {int(row['controls'])} controls"
        )
    if args.permutations:
        print(
            f"permuted outcomes: C median {np.median(result.permutation_concordance):.3f} over "
            f"{args.permutations} runs; permutation p = {result.permutation_pvalue:.3g} (C), "
            f"{result.logrank_permutation_pvalue:.3g} (log-rank)"
        )
    _write_predictions(args, result.predictions, result.genes, "risks")
    if args.validate is not None:
        _validate_survival(args, options)
    if args.plot is not None:
        from .. import plot

        ax = plot.km(result.kaplan_meier())
        ax.set_title("cross-validated risk groups (each fold's training median)")
        _save_figure(ax, args.plot, f"Kaplan-Meier plot of the risk groups written to {args.plot}")


def _validate_survival(args: argparse.Namespace, options: dict[str, Any]) -> None:
    """The signature fitted on all of the store (``fit_survival`` with the cross-validation's
    ``options``), scored on the ``--validate`` cohort's outcomes."""
    from .. import predict, survival

    signature = predict.fit_survival(args.store, args.time, args.event, **options)
    other = args.validate
    risk = signature.predict(other).to_numpy()
    harrell = survival.concordance(other, args.time, args.event, risk, strata=args.strata)
    uno = survival.concordance(
        other, args.time, args.event, risk, strata=args.strata, time_weights="n/G2"
    )
    print(
        f"validation on {other} ({harrell.n} samples), the signature fitted on all of "
        f"{args.store}: Harrell's C {harrell.concordance:.3f} (se {harrell.std_err:.3f}), "
        f"Uno's {uno.concordance:.3f} (se {uno.std_err:.3f})"
    )
    times = _times(args.at_times)
    if times:
        curves = signature.predict_survival(other, times, strata=args.strata)
        scores = survival.time_dependent_scores(other, args.time, args.event, curves, times)
        for at, row in scores.iterrows():
            print(
                f"validation at {at:g}: Brier {row['brier']:.3f} (Kaplan-Meier alone "
                f"{row['null_brier']:.3f}; IPA {row['ipa']:.3f}), AUC {row['auc']:.3f} "
                f"({row['auc_lower']:.3f}-{row['auc_upper']:.3f})"
            )


def _times(given: str | None) -> list[float] | None:
    """``--at-times``'s comma-separated times."""
    if given is None:
        return None
    try:
        return [float(part) for part in given.split(",") if part.strip()]
    except ValueError:
        raise CohortexError(f"--at-times takes comma-separated numbers; got {given!r}.") from None


def _write_predictions(args: argparse.Namespace, predictions: Any, genes: Any, what: str) -> None:
    """The out-of-fold ``what`` to ``--out`` and the ``--top`` genes, printed."""
    if args.out is not None:
        sep = "," if args.out.suffix.lower() == ".csv" else "\t"
        predictions.to_csv(args.out, sep=sep, index=False)
        print(f"out-of-fold {what} written to {args.out}")
    if args.top > 0:
        print(genes.head(args.top).to_string(float_format="%.3g"))


def _enrich(args: argparse.Namespace) -> None:
    from .. import genesets
    from ..store import list_results, read_result, write_result

    if args.out is not None:
        _check_output(args.out, "--out", (".tsv", ".csv", ".txt"))
    _check_plot(args.plot)
    fitted = args.method in ("camera", "fry", "roast", "romer")  # the cohort's own fit
    if args.plot is not None and fitted:
        raise CohortexError(f"--plot draws gsea and ora results, not {args.method}'s.")
    sets = genesets.read_gmt(args.sets)
    if args.names is not None:
        sets = sets.translate(args.store, args.names)
    start = time.perf_counter()
    if args.voom and not fitted:
        raise CohortexError(
            "--voom goes with --method camera, fry, roast or romer (gsea and ora read a DE result)."
        )
    if (args.ranks or args.inter_gene_cor != "0.01") and args.method not in ("camera", "camera_pr"):
        raise CohortexError("--inter-gene-cor and --ranks go with --method camera or camera_pr.")
    if fitted:
        if args.design is None:
            raise CohortexError(f"--method {args.method} needs --design (the model formula).")
        data: Any = args.store
        if args.voom:
            from .. import de

            data = de.voom(args.store, args.design, norm_factors="tmm")
            if args.method == "romer":  # romer takes weights per sample only (limma's)
                data = data.drop_vars("weights")
        else:
            _warn_if_counts(args.store, "cohortex enrich", "add --voom")
        if args.method == "camera":
            result = genesets.camera(
                data,
                args.design,
                sets,
                contrast=args.contrast,
                inter_gene_cor=_inter_gene_cor(args.inter_gene_cor),
                use_ranks=args.ranks,
            )
        elif args.method in ("roast", "romer"):
            rotations = {} if args.rotations is None else {"n_rotations": args.rotations}
            test = genesets.roast if args.method == "roast" else genesets.romer
            result = test(
                data,
                args.design,
                sets,
                contrast=args.contrast,
                set_statistic=args.set_statistic,
                random_state=args.seed,
                **rotations,
            )
        else:
            result = genesets.fry(data, args.design, sets, contrast=args.contrast)
        source = args.method
    else:
        stored = [n for n in list_results(args.store) if n.startswith("de_")]
        name = args.result or (stored[0] if len(stored) == 1 else None)
        if name is None:
            raise CohortexError(
                "Name the DE result with --result; the store holds "
                + (", ".join(stored) or "none (run `cohortex de` first)")
                + "."
            )
        de_result = read_result(args.store, name)
        if "contrast" in de_result.dims:
            contrasts = [str(c) for c in de_result["contrast"].values]
            de_result = de_result.sel(contrast=args.contrast or contrasts[0])
        sizes = {"min_size": args.min_size, "max_size": args.max_size}
        if args.method == "gsea":
            result = genesets.gsea(
                de_result,
                sets,
                by=args.by,
                permutations=args.permutations,
                multilevel=args.multilevel,
                eps=args.eps,
                seed=args.seed,
                **sizes,
            )
        elif args.method == "camera_pr":
            rho = _inter_gene_cor(args.inter_gene_cor)
            if rho is None:
                raise CohortexError(
                    "camera_pr tests a given statistic: its inter-gene correlation is a number "
                    "(there are no residuals to estimate it from)."
                )
            result = genesets.camera_pr(
                de_result, sets, by=args.by, inter_gene_cor=rho, use_ranks=args.ranks
            )
        elif args.method == "gene_set_test":
            result = genesets.gene_set_test(de_result, sets, by=args.by)
        else:
            result = genesets.ora_de(de_result, sets, **sizes)
        source = name
    elapsed = time.perf_counter() - start
    saved = _derived_name("enrich", args.method, source)
    write_result(args.store, saved, result, overwrite=True)
    table = result.to_dataframe().reset_index()
    if args.out is not None:
        sep = "," if args.out.suffix.lower() == ".csv" else "\t"
        table.to_csv(args.out, sep=sep, index=False)
    print(
        f"{args.method} of {result.sizes['gene_set']} gene sets in {elapsed:.1f} s; saved as "
        f"result {saved!r}" + (f" and {args.out}" if args.out else "")
    )
    if args.top > 0:
        shown = [
            c
            for c in (
                "direction",
                "gene_set",
                "size",
                "n_genes",
                "overlap",
                "es",
                "nes",
                "pvalue",
                "padj",
                "pvalue_up",
                "pvalue_down",
                "pvalue_mixed",
            )
            if c in table.columns
        ]
        if "pvalue" in table.columns:
            order = table["pvalue"]
        else:  # romer: the better of its two directions
            order = table[["pvalue_up", "pvalue_down"]].min(axis=1)
        best = table.loc[order.sort_values(kind="stable").index].head(args.top)
        print(best[shown].to_string(index=False, float_format="%.4g"))
    if args.plot is not None:
        from .. import plot

        shown_result = result.sel(direction="up") if "direction" in result.dims else result
        _save_figure(plot.enrichment(shown_result), args.plot, f"dot plot written to {args.plot}")


def _gsva(args: argparse.Namespace) -> None:
    from .. import genesets
    from ..io import export_gct, export_table
    from ..store import create_cohort

    name = args.dest.name.lower()
    tables = (".tsv", ".txt", ".csv", ".tsv.gz", ".txt.gz", ".csv.gz")
    if not name.endswith((".zarr", ".gct", *tables)):
        raise CohortexError(
            f"The scores go to a cohort store (.zarr) or a table (.tsv, .csv, .gct); got "
            f"{str(args.dest)!r}."
        )
    if args.dest.exists() and not args.overwrite:
        raise CohortexError(f"{str(args.dest)!r} already exists; pass --overwrite to replace it.")
    if not args.dest.parent.is_dir():
        raise CohortexError(f"The folder of {str(args.dest)!r} does not exist; create it first.")
    _check_plot(args.plot)
    if args.groupby is not None and args.plot is None:
        raise CohortexError("--groupby goes with --plot (it groups the heatmap's samples).")
    sets = genesets.read_gmt(args.sets)
    if args.names is not None:
        sets = sets.translate(args.store, args.names)
    start = time.perf_counter()
    scores = genesets.gsva(
        args.store,
        sets,
        method=args.method,
        kcdf=args.kcdf,
        min_size=args.min_size,
        max_size=args.max_size,
    )
    elapsed = time.perf_counter() - start
    if name.endswith(".zarr"):
        create_cohort(
            args.dest, scores, scale="log2", overwrite=args.overwrite, progress=args.progress
        )
    elif name.endswith(".gct"):
        export_gct(scores, args.dest, progress=args.progress)
    else:
        export_table(scores, args.dest, progress=args.progress)
    kernel = f", {scores.attrs['kcdf']} kernel" if scores.attrs["kcdf"] else ""
    print(
        f"{args.method}{kernel}: {scores.sizes['gene']} gene sets scored in "
        f"{scores.sizes['sample']} samples from {scores.attrs['n_genes']} genes in "
        f"{elapsed:.1f} s; written to {args.dest}"
    )
    if args.plot is not None:
        from .. import plot

        shown = min(scores.sizes["gene"], 60)
        _save_figure(
            plot.heatmap(scores, groupby=args.groupby, n=shown),
            args.plot,
            f"heatmap of the {shown} most variable sets written to {args.plot}",
        )


def _warn_if_counts(
    store: Path,
    command: str = "cohortex de",
    remedy: str = "pass --normalize log_cpm (edgeR's log-CPM with TMM factors; with --design "
    "add --trend), or use --design ... --voom",
) -> None:
    """Raw counts tested as they are: t-tests on them are dominated by deep libraries."""
    from ..store import open_cohort

    if open_cohort(store).attrs.get("scale") == "counts":
        print(
            f"{command}: warning: this store holds raw counts; the test runs on them as they "
            f"are. {remedy[0].upper()}{remedy[1:]}.",
            file=sys.stderr,
        )


def _pca(args: argparse.Namespace) -> None:
    from ..embed import pca
    from ..store import write_result

    _check_plot(args.plot)
    start = time.perf_counter()
    result = pca(
        args.store,
        args.n_components,
        genes=None if args.genes == "all" else "hvg",
        n_top_genes=args.n_top_genes,
        scale=args.standardize,
        method=args.method,
        device=args.device,
        seed=args.seed,
    )
    write_result(args.store, args.name, result, overwrite=True)
    ratio = result["explained_variance_ratio"].values
    print(
        f"PCA ({result.attrs['method']}) of {result.sizes['sample']} samples × "
        f"{result.sizes['gene']} genes in {time.perf_counter() - start:.1f} s; saved as result "
        f"{args.name!r}. Variance explained by PC1–PC3: "
        + ", ".join(f"{100 * r:.1f}%" for r in ratio[:3])
    )
    _save_scatter(result, args.plot, args.color)


def _mds(args: argparse.Namespace) -> None:
    from ..embed import mds
    from ..store import write_result

    _check_plot(args.plot)
    start = time.perf_counter()
    result = mds(
        args.store,
        top=args.top,
        gene_selection=args.gene_selection,
        n_components=args.n_components,
        device=args.device,
        progress=args.progress,
    )
    write_result(args.store, args.name, result, overwrite=True)
    shares = ", ".join(f"{100 * v:.1f}%" for v in result["var_explained"].values[:3])
    print(
        f"MDS ({args.gene_selection}, top {result.attrs['top']} genes) of "
        f"{result.sizes['sample']} samples in {time.perf_counter() - start:.1f} s; saved as "
        f"result {args.name!r}. Variance explained by the first dimensions: {shares}"
    )
    _save_scatter(result, args.plot, args.color)


def _consensus(args: argparse.Namespace) -> None:
    from ..embed import consensus_clusters
    from ..store import write_result

    _check_plot(args.plot)
    if args.out is not None:
        _check_output(args.out, "--out", (".tsv", ".csv", ".txt"))
    start = time.perf_counter()
    result = consensus_clusters(
        args.store,
        max_k=args.max_k,
        reps=args.reps,
        p_item=args.p_item,
        genes=args.genes or None,
        distance=args.distance,
        cluster_algorithm=args.cluster_algorithm,
        seed=args.seed,
        progress=args.progress,
    )
    write_result(args.store, args.name, result, overwrite=True)
    print(
        f"Consensus clustering of {result.sizes['sample']} samples on {result.attrs['n_genes']} "
        f"genes ({args.reps} subsamples) in {time.perf_counter() - start:.1f} s; saved as "
        f"result {args.name!r}."
    )
    print("  k   Δ area   cluster sizes (mean consensus within)")
    for k, delta in zip(result["k"].values, result["delta_area"].values, strict=True):
        classes = result["consensus_class"].sel(k=k).values
        within = result["cluster_consensus"].sel(k=k).values
        sizes = ", ".join(
            f"{int((classes == c).sum())} ({within[c - 1]:.2f})" for c in range(1, k + 1)
        )
        print(f"  {k:<3} {delta:7.3f}  {sizes}")
    if args.out is not None:
        table = result["consensus_class"].to_pandas().T
        table.columns = [f"k{k}" for k in table.columns]
        table.to_csv(args.out, sep="," if args.out.suffix == ".csv" else "\t")
        print(f"clusters written to {args.out}")
    if args.plot is not None:
        from .. import plot

        _save_figure(plot.consensus(result), args.plot, f"consensus CDF written to {args.plot}")


def _network(args: argparse.Namespace) -> None:
    import pandas as pd

    from .. import network
    from ..store import write_result

    _check_plot(args.plot)
    if args.out is not None:
        _check_output(args.out, "--out", (".tsv", ".csv", ".txt"))
    if args.names is not None and args.sets is None:
        raise CohortexError("--names goes with --sets.")
    if args.edges is not None:
        _check_output(args.edges, "--edges", (".tsv", ".csv", ".txt"))
    sets = None
    if args.sets is not None:  # first: a bad file fails before the network is built
        from .. import genesets

        sets = genesets.read_gmt(args.sets)
        if args.names is not None:
            sets = sets.translate(args.store, args.names)
    start = time.perf_counter()
    if args.preservation is not None:
        _preservation(args)
        return
    if args.consensus is not None:
        _consensus_network(args)
        return
    if args.soft_threshold:
        table = network.soft_threshold(
            args.store,
            network=args.network_type,
            correlation_type=args.correlation_type,
            max_p_outliers=args.max_p_outliers,
            genes=args.genes or None,
            device=args.device,
            progress=args.progress,
        )
        print(
            f"Scale-free fit of the {args.network_type} network"
            f"{'' if args.correlation_type == 'pearson' else f' ({args.correlation_type})'} of "
            f"{table.attrs['n_genes']} "
            f"genes × {table.attrs['n_samples']} samples in {time.perf_counter() - start:.1f} s"
        )
        _print_missing(table.attrs)
        print("  power   R²     slope   mean k     median k   max k")
        for power in table["power"].values:
            row = table.sel(power=power)
            print(
                f"  {power:<6g} {float(row['r2']):5.3f} {float(row['slope']):7.2f} "
                f"{float(row['mean_k']):9.3g} {float(row['median_k']):9.3g} "
                f"{float(row['max_k']):9.3g}"
            )
        estimate = table.attrs["power_estimate"]
        print(
            f"lowest power with R² > 0.85: {estimate:g}"
            if estimate
            else "no power reaches R² > 0.85 (WGCNA's FAQ advises by the number of samples)"
        )
        if args.plot is not None:
            from .. import plot

            _save_figure(plot.soft_threshold(table), args.plot, f"fit written to {args.plot}")
        return
    given = _module_settings(args)
    given.update(correlation_type=args.correlation_type, max_p_outliers=args.max_p_outliers)
    if args.blockwise:
        result = network.blockwise_modules(
            args.store,
            power=args.power,
            network=args.network_type,
            max_block_size=args.max_block_size,
            deep_split=args.deep_split,
            genes=args.genes or None,
            device=args.device,
            progress=args.progress,
            **given,
        )
    else:
        result = network.modules(
            args.store,
            power=args.power,
            network=args.network_type,
            deep_split=args.deep_split,
            genes=args.genes or None,
            device=args.device,
            progress=args.progress,
            **given,
        )
    write_result(args.store, args.name, result, overwrite=True)
    blocks = f" in {result.attrs['n_blocks']} blocks" if args.blockwise else ""
    print(
        f"{result.attrs['n_modules']} modules of {result.attrs['n_genes']} genes × "
        f"{result.attrs['n_samples']} samples{blocks} (power {result.attrs['power']:g}, "
        f"{result.attrs['power_source']}) in {time.perf_counter() - start:.1f} s; saved as "
        f"result {args.name!r}."
    )
    _print_missing(result.attrs)
    hubs = network.hub_genes(result, 1).set_index("module")
    variables = [v for v in result.data_vars if result[v].dims == ("sample",)]
    traits = network.module_traits(result) if variables else None
    enriched = None
    if sets is not None and result.attrs["n_modules"] > 0:
        enriched = network.module_enrichment(result, sets)
    header = "  module   genes   variance   hub gene (kME)          strongest sample variable"
    if enriched is not None:
        header = f"{header:<112} most over-represented gene set (padj)"
    print(header)
    for module in result["module"].values:
        size = int(result["size"].sel(module=module))
        share = float(result["var_explained"].sel(module=module))
        hub = (
            f"{hubs.loc[module, 'gene']} ({hubs.loc[module, 'kme']:.2f})"
            if module in hubs.index
            else "—"
        )
        strongest = "—"
        if traits is not None:
            cor = traits["cor"].sel(module=module)
            best = int(np.nanargmax(np.abs(cor.values))) if np.isfinite(cor.values).any() else -1
            if best >= 0:
                cell = traits.isel(trait=best).sel(module=module)
                strongest = (
                    f"{traits['trait'].values[best]}: r = {float(cell['cor']):.2f} "
                    f"(p = {float(cell['pvalue']):.2g})"
                )
        name = f"{module}" if module else "0 (none)"
        line = f"  {name:<8} {size:>5}   {share:8.2f}   {hub:<23} {strongest}"
        if enriched is not None and module != 0:
            row = enriched.sel(module=module)
            best = int(np.nanargmin(row["pvalue"].values))
            set_name = str(enriched["gene_set"].values[best])
            line = f"{line:<112} {set_name} ({float(row['padj'].values[best]):.2g})"
        print(line)
    if args.out is not None:
        labels = np.asarray(result["label"].values)
        own = np.searchsorted(np.asarray(result["module"].values), labels)
        table = pd.DataFrame(
            {
                "module": labels,
                "kme": np.asarray(result["kme"].values)[np.arange(labels.size), own],
                "k_total": result["k_total"].values,
                "k_within": result["k_within"].values,
            },
            index=pd.Index(result["gene"].values, name="gene"),
        )
        table.to_csv(args.out, sep="," if args.out.suffix == ".csv" else "\t")
        print(f"modules written to {args.out}")
    if args.edges is not None:
        edges = network.module_edges(
            args.store,
            result,
            args.edges_module,
            threshold=args.edges_threshold,
            device=args.device,
            progress=args.progress,
        )
        edges.to_csv(args.edges, sep="," if args.edges.suffix == ".csv" else "\t", index=False)
        print(
            f"{len(edges)} edges of module {args.edges_module} (TOM ≥ {args.edges_threshold:g}) "
            f"written to {args.edges}"
        )
    if args.plot is not None:
        from .. import plot

        _save_figure(plot.dendrogram(result), args.plot, f"gene tree written to {args.plot}")


def _print_missing(attrs: dict[str, Any], sets: list[str] | None = None) -> None:
    """Say how a network took the cohort's missing values, where it had any (each set's, for
    consensus modules)."""
    shares = np.atleast_1d(attrs.get("missing_share", 0.0))
    left_out = np.atleast_1d(attrs.get("n_genes_missing", 0))
    if np.any(shares > 0) or np.any(left_out > 0):
        how = "each pair of genes correlated over the samples both have"
        if sets is None:
            print(
                f"missing values: {shares[0]:.1%} of the genes' values ({how}); {left_out[0]} "
                "genes missing in half the samples or more left out"
            )
        else:
            each = ", ".join(
                f"{name} {share:.1%} ({left} genes left out)"
                for name, share, left in zip(sets, shares, left_out, strict=True)
            )
            print(f"missing values ({how}; genes missing in half a set's samples left out): {each}")
    hubs = attrs.get("hub_eigengenes", [])
    if len(hubs):
        print(
            "modules whose samples miss most of their genes, their eigengene the hub gene's: "
            + ", ".join(str(m) for m in hubs)
        )


def _module_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The module finders' settings given on the command line; each finder keeps its own
    defaults for the others."""
    return {
        name: value
        for name, value in (
            ("tom", args.tom_type),
            ("tom_denominator", args.tom_denominator),
            ("min_module_size", args.min_module_size),
            ("merge_cut_height", args.merge_cut_height),
        )
        if value is not None
    }


def _consensus_network(args: argparse.Namespace) -> None:
    """network STORE --consensus OTHER …: blockwiseConsensusModules of the stores' samples."""
    import pandas as pd

    from .. import network
    from ..store import write_result

    refused = [
        option
        for option, value in (
            ("--soft-threshold", args.soft_threshold),
            ("--blockwise", args.blockwise),
            ("--genes", args.genes),
            ("--sets", args.sets),
            ("--edges", args.edges),
            ("--correlation-type spearman", args.correlation_type == "spearman"),
        )
        if value
    ]
    if refused:
        raise CohortexError(f"--consensus does not take {', '.join(refused)}.")
    stores = [args.store, *args.consensus]
    names: list[str] = []
    for store in stores:  # the stores' names, made distinct
        name, k = store.stem or str(store), 2
        while name in names:
            name, k = f"{store.stem}_{k}", k + 1
        names.append(name)
    given = _module_settings(args)
    start = time.perf_counter()
    result = network.consensus_modules(
        dict(zip(names, stores, strict=True)),
        power=args.power,
        network=args.network_type,
        max_block_size=args.max_block_size,
        deep_split=args.deep_split,
        correlation_type=args.correlation_type,
        max_p_outliers=args.max_p_outliers,
        device=args.device,
        progress=args.progress,
        **given,
    )
    write_result(args.store, args.name, result, overwrite=True)
    attrs = result.attrs
    sets = ", ".join(f"{n} ({k} samples)" for n, k in zip(names, attrs["n_samples"], strict=True))
    powers = ", ".join(f"{p:g}" for p in attrs["power"])
    print(
        f"{attrs['n_modules']} consensus modules of {attrs['n_genes']} genes shared by {sets} "
        f"in {attrs['n_blocks']} block{'s' if attrs['n_blocks'] > 1 else ''} (powers {powers}, "
        f"{attrs['power_source']}) in "
        f"{time.perf_counter() - start:.1f} s; saved as result {args.name!r}."
    )
    _print_missing(attrs, names)
    labels = np.asarray(result["label"].values)
    own = np.searchsorted(np.asarray(result["module"].values), labels)
    kme = np.asarray(result["kme"].values)[np.arange(labels.size), own]  # (gene, set)
    consensus_kme = kme.min(axis=1)
    variables = [v for v in result.data_vars if result[v].dims == ("sample",)]
    traits = network.module_traits(result) if len(variables) > 1 else None  # not sample_set
    shares_header = f"variance explained ({', '.join(names)})"
    print(
        f"  module   genes   {shares_header}   hub gene (smallest kME)   "
        "strongest sample variable (consensus)"
    )
    for j, module in enumerate(result["module"].values):
        members = np.flatnonzero(labels == module)
        shares = " ".join(f"{v:.2f}" for v in result["var_explained"].values[j])
        hub = "—"
        if module != 0 and members.size:
            best = members[np.argmax(consensus_kme[members])]
            hub = f"{result['gene'].values[best]} ({consensus_kme[best]:.2f})"
        strongest = "—"
        if traits is not None:
            row = traits.sel(module=module)
            cor = np.asarray(row["consensus_cor"].values)
            if np.isfinite(cor).any():
                t = int(np.nanargmax(np.abs(cor)))
                strongest = (
                    f"{traits['trait'].values[t]}: r = {cor[t]:.2f} "
                    f"(p = {float(row['consensus_pvalue'].values[t]):.2g})"
                )
        name = f"{module}" if module else "0 (none)"
        print(
            f"  {name:<8} {members.size:>5}   {shares:<{len(shares_header)}}   {hub:<23}   "
            f"{strongest}"
        )
    if args.out is not None:
        table = pd.DataFrame(
            {"module": labels, "consensus_kme": consensus_kme, "block": result["block"].values},
            index=pd.Index(result["gene"].values, name="gene"),
        )
        for s, name in enumerate(names):
            table[f"kme_{name}"] = kme[:, s]
        table.to_csv(args.out, sep="," if args.out.suffix == ".csv" else "\t")
        print(f"modules written to {args.out}")
    if args.plot is not None:
        from .. import plot

        _save_figure(plot.dendrogram(result), args.plot, f"gene tree written to {args.plot}")


def _preservation(args: argparse.Namespace) -> None:
    """network --preservation TEST: modulePreservation of the stored modules."""
    from .. import network
    from ..store import list_results, read_result, write_result

    if args.name not in list_results(args.store):
        raise CohortexError(
            f"--preservation needs the reference's modules: no result {args.name!r} in "
            f"{args.store} (run `cohortex network {args.store}` first, or give --name)."
        )
    start = time.perf_counter()
    found = read_result(args.store, args.name)
    result = network.module_preservation(
        args.store,
        args.preservation,
        found,
        n_permutations=args.permutations,
        network=str(found.attrs.get("network", "unsigned")),
        quick_cor=args.quick_cor,
        cluster_coefficients=args.cluster_coefficients,
        # the modules' own correlation where modulePreservation offers it (bicor), else Pearson's
        correlation_type="bicor" if found.attrs.get("correlation_type") == "bicor" else "pearson",
        max_p_outliers=float(found.attrs.get("max_p_outliers", 1.0)),
        device=args.device,
        progress=args.progress,
    )
    name = f"{args.name}_preservation"
    write_result(args.store, name, result, overwrite=True)
    print(
        f"Preservation of {int((result['module'] > 0).sum())} modules of {args.store} in "
        f"{args.preservation} ({result.attrs['n_genes']} shared genes, "
        f"{args.permutations} permutations, {result.attrs['correlation_type']}) in "
        f"{time.perf_counter() - start:.1f} s; saved as result {name!r}."
    )
    shares, left_out = result.attrs["missing_share"], result.attrs["n_genes_missing"]
    if max(shares) > 0 or max(left_out) > 0:
        how = "quick" if result.attrs["quick_cor"] > 0 else "pairwise"
        print(
            f"missing values: {shares[0]:.1%} of the reference's values, {shares[1]:.1%} of the "
            f"test cohort's ({how} correlations within modules, eigengenes of imputed genes); "
            f"genes missing in half the samples left out: {left_out[0]} and {left_out[1]}"
        )
    print("  module   genes   Zsummary   median rank   verdict")
    for module in result["module"].values:
        row = result.sel(module=module)
        z = float(row["z_summary"])
        verdict = "strong" if z > 10 else "moderate" if z > 2 else "none"
        label = "gold" if module == network.GOLD else "0 (none)" if module == 0 else str(module)
        print(
            f"  {label:<8} {int(row['size']):>5}   {z:8.2f}   {float(row['median_rank']):11g}"
            f"   {verdict if module > 0 else '—'}"
        )


def _tsne(args: argparse.Namespace) -> None:
    from ..embed import pca, tsne
    from ..embed._tsne import check_perplexity
    from ..store import list_results, open_cohort, read_result, write_result

    _check_plot(args.plot)
    start = time.perf_counter()
    samples = open_cohort(args.store)["sample"].values
    source = None
    if args.source is not None and args.source not in list_results(args.store):
        stored = ", ".join(list_results(args.store)) or "(none)"
        raise CohortexError(f"--from {args.source!r} names no stored result. Results: {stored}.")
    check_perplexity(len(samples), args.perplexity)  # before a PCA is computed and stored
    args.source = args.source or "pca"
    if args.source in list_results(args.store):
        source = read_result(args.store, args.source)
        if "sample" not in source.coords or not np.array_equal(source["sample"].values, samples):
            print(
                f"the stored result {args.source!r} does not cover the store's "
                f"{len(samples)} samples (samples were added since?): computing it again"
            )
            source = None
    if source is None:
        shape = open_cohort(args.store)["expression"].shape
        components = min(50, *shape)
        source = pca(args.store, components, genes="hvg", seed=args.seed, device=args.device)
        write_result(args.store, args.source, source, overwrite=True)
    result = tsne(
        source, perplexity=args.perplexity, n_iter=args.n_iter, seed=args.seed, device=args.device
    )
    write_result(args.store, args.name, result, overwrite=True)
    print(
        f"t-SNE ({result.attrs['implementation']}) of {result.sizes['sample']} samples in "
        f"{time.perf_counter() - start:.1f} s; saved as result {args.name!r}"
    )
    _save_scatter(result, args.plot, args.color)


def _check_output(path: Path, option: str, suffixes: tuple[str, ...]) -> None:
    """An output file can be written: its folder exists, its name ends as it should."""
    if not path.parent.is_dir():
        raise CohortexError(
            f"The folder of {option} {str(path)!r} does not exist; create it first."
        )
    if path.is_dir():
        raise CohortexError(f"{option} {str(path)!r} is a folder; name a file.")
    if not path.name.lower().endswith(suffixes):
        raise CohortexError(
            f"{option} {str(path)!r} must end in {', '.join(suffixes)}; got {path.suffix!r}."
        )


def _check_plot(path: Path | None) -> None:
    if path is not None:
        FigureCanvasBase = require("matplotlib.backend_bases", "--plot").FigureCanvasBase

        formats = tuple(f".{k}" for k in FigureCanvasBase.get_supported_filetypes())
        _check_output(path, "--plot", formats)


def _save_figure(ax: Any, path: Path, message: str) -> None:
    """Saves the figure of a cohortex plot's axes and says where."""
    from matplotlib.figure import Figure

    figure = ax.figure
    assert isinstance(figure, Figure)  # our plots draw on their own top-level figure
    figure.savefig(path, dpi=120)
    print(message)


def _save_scatter(result: Any, path: Path | None, color: str) -> None:
    if path is None:
        return
    from matplotlib.figure import Figure

    from .. import plot

    figure = plot.embedding(result, color if color in result else None).figure
    assert isinstance(figure, Figure)  # our plots draw on their own top-level figure
    figure.savefig(path, dpi=150)
    print(f"plot saved to {path}")


def _model_path(args: argparse.Namespace) -> Path:
    """Default: beside the store (inside it Zarr would meet a folder it does not know)."""
    return args.model or args.store.parent / f"{args.store.stem}.autoencoder.pt"


def _ae_train(args: argparse.Namespace) -> None:
    from ..ae import Autoencoder

    if args.resume and args.checkpoint is None:
        raise CohortexError("--resume needs --checkpoint PATH to resume from.")
    start = time.perf_counter()
    chosen = {
        "hidden": args.hidden,
        "activation": args.activation,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "patience": args.patience,
    }
    settings = {k: v for k, v in chosen.items() if v is not None} | {
        "max_epochs": args.max_epochs,
        "n_top_genes": args.n_top_genes,
        "seed": args.seed,
        "device": args.device,
        "progress": args.progress,
    }
    if args.recipe == "dwivedi":
        model = Autoencoder.dwivedi(**settings)
    else:
        model = Autoencoder(settings.pop("hidden", (256, 16, 256)), **settings)
    model.fit(
        args.store,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    path = _model_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    score = model.score()
    print(
        f"trained {len(model.history_)} epochs in {time.perf_counter() - start:.1f} s; held-out "
        f"MSE {score['mse']:.5f}, variance explained {score['variance_explained']:.3f}; "
        f"saved {path}"
    )


def _ae_modules(args: argparse.Namespace) -> None:
    from ..ae import Autoencoder
    from ..store import write_result

    if args.out is not None:
        _check_output(args.out, "--out", (".txt", ".tsv", ".csv"))
    model = Autoencoder.load(_model_path(args))
    n_genes = len(model.genes_)
    if args.module_size is not None and not 1 <= args.module_size < n_genes:
        raise CohortexError(
            f"--module-size must be from 1 to {n_genes - 1} (a module smaller than the model's "
            f"{n_genes} genes); got {args.module_size}."
        )
    default_layer = int(np.argmin(model.hidden)) + 1 if model.pca_path else len(model.hidden)
    layer = default_layer if args.layer is None else args.layer
    result = model.condition_modules(
        args.store,
        args.groupby,
        layer,
        reference=args.reference,
        q=args.q,
        top=args.module_size,
    )
    name = _derived_name("ae_modules", args.groupby)
    write_result(args.store, name, result, overwrite=True)
    genes = result["gene"].values[result["in_module"].values]
    significant = int((result["node_padj"].values < args.q).sum())
    print(
        f"{significant} of {result.sizes['node']} layer-{layer} nodes separate "
        f"{result.attrs['contrast']} (FDR < {args.q}); module of {len(genes)} genes saved as "
        f"result {name!r}"
    )
    if args.out is not None:
        args.out.write_text("\n".join(map(str, genes)) + "\n")


def _verify(args: argparse.Namespace) -> int:
    import dataclasses

    from ..store import verify

    report = verify(args.store, progress=args.progress)
    print(json.dumps(dataclasses.asdict(report), indent=2) if args.json else str(report))
    return 0 if report.ok else 1


def _stored(store: Path, name: str) -> Any:
    from ..store import list_results, read_result

    names = list_results(store)
    if name not in names:
        raise CohortexError(
            f"{str(store)!r} has no result named {name!r}. Results: {', '.join(names) or '(none)'}."
        )
    return read_result(store, name)


def _results_list(args: argparse.Namespace) -> None:
    from ..store import list_results, read_result

    names = list_results(args.store)
    if not names:
        print(f"{args.store} holds no results")
        return
    for name in names:
        result = read_result(args.store, name)
        shape = " × ".join(f"{size} {dim}" for dim, size in result.sizes.items())
        kind = result.attrs.get("test") or result.attrs.get("method") or ""
        print(f"{name:32s} {shape:32s} {kind}")


def _results_show(args: argparse.Namespace) -> None:
    from .. import de

    result = _stored(args.store, args.name)
    if "padj" in result and "gene" in result.dims:
        print(de.top(result, args.top).to_string(index=False))
    else:
        print(result)


_LEADING_COLUMNS = (
    "contrast",
    "gene",
    "statistic",
    "pvalue",
    "padj",
    "log10_pvalue",
    "log2fc",
    "coefficient",
    "mean_expression",
)


def _results_export(args: argparse.Namespace) -> None:
    _check_output(args.out, "OUT", (".tsv", ".csv"))
    result = _stored(args.store, args.name)
    sep = "," if args.out.suffix.lower() == ".csv" else "\t"
    frame = result.to_dataframe().reset_index()
    # the store keeps variables unordered: the test's columns first, the rest as read
    leading = [c for c in _LEADING_COLUMNS if c in frame.columns]
    frame = frame[leading + [c for c in frame.columns if c not in leading]]
    frame.to_csv(args.out, sep=sep, index=False)
    print(f"result {args.name!r} written to {args.out}")


def _warmup(args: argparse.Namespace) -> None:
    from .. import de

    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b"], 6)
    for dtype in (np.float32, np.float64):
        values = np.round(rng.normal(size=(12, 4)), 1).astype(dtype)  # ties, as real data have
        for test in ("welch", "wilcoxon"):
            start = time.perf_counter()
            de.test(values, labels, test=test, device="cpu")
            seconds = time.perf_counter() - start
            print(f"{test:9s} {np.dtype(dtype).name:8s} ready in {seconds:.1f} s")
    start = time.perf_counter()  # the signed-rank test works on float64 differences
    de.test(values, labels, test="wilcoxon", paired_by=np.tile(np.arange(6), 2), device="cpu")
    print(f"signed-rank (paired) ready in {time.perf_counter() - start:.1f} s")
    from .. import survival

    values = rng.normal(size=(12, 4)).astype(np.float32)  # what stores hold
    time_, event = rng.exponential(size=12), np.tile([0, 1, 1], 4)
    for name, model in (("cox", survival.cox), ("log-rank", survival.logrank)):
        start = time.perf_counter()
        model(values, time_, event, device="cpu")
        print(f"{name:9s} float32  ready in {time.perf_counter() - start:.1f} s")
    import xarray as xr

    from .. import genesets

    genes = [f"g{j}" for j in range(4)]
    cohort = xr.Dataset({"expression": (("sample", "gene"), values)}, coords={"gene": genes})
    start = time.perf_counter()  # GSVA's kernel sums and walks
    genesets.gsva(cohort, genesets.GeneSets.from_dict({"s": genes[:2]}), device="cpu")
    print(f"gsva      float32  ready in {time.perf_counter() - start:.1f} s")
    print("the compiled loops are cached on disk: later runs load them")


def _info(args: argparse.Namespace) -> None:
    from ..store import describe

    summary = describe(args.store)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(_format_summary(summary))


def _bench(args: argparse.Namespace) -> None:
    from .._backend import resolve_device
    from ..simulate import simulate
    from .bench import SUITES, run_bench

    devices = ("cpu", "gpu") if args.device == "both" else (args.device,)
    if "gpu" in devices:
        resolve_device("gpu")  # a clear error (and the install hint) before anything runs
    store = args.store
    if store is None:
        store = args.out / f"cohort_{args.samples}x{args.genes}.zarr"
        if (store / "zarr.json").exists():
            print(f"cohortex bench: reusing {store}")
        else:
            print(f"cohortex bench: simulating {args.samples} × {args.genes} into {store}")
            simulate(store, args.samples, args.genes, n_de=0.05, seed=0, progress=False)
    report = run_bench(
        store,
        args.out,
        suites=args.only or SUITES,
        devices=devices,
        scipy_genes=args.scipy_genes,
        repeats=args.repeats,
        skip=frozenset(args.skip),
        r_samples=args.r_samples,
    )
    print("\n" + report["markdown"])
    print(f"cohortex bench: wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}")


def _demo(args: argparse.Namespace) -> None:
    from ..simulate import simulate
    from ..store import describe
    from .report import demo_analyses, run_facts, write_report

    with tempfile.TemporaryDirectory(prefix="cohortex-demo-") as scratch:
        out = args.store or Path(scratch) / "demo.zarr"
        start = time.perf_counter()
        simulate(
            out,
            args.samples,
            args.genes,
            groups={"tumor": 0.5, "normal": 0.5},
            n_de=0.05,
            batches=2,
            modules=4,
            module_size=max(1, min(50, args.genes // 20)),  # modules fit in small demos too
            survival_genes=max(1, min(10, args.genes // 50)),
            seed=args.seed,
            overwrite=args.store is not None,
            progress=args.progress,
        )
        elapsed = time.perf_counter() - start
        print(f"cohortex demo: simulated {args.samples} × {args.genes} in {elapsed:.1f} s\n")
        print(_format_summary(describe(out)) + "\n")
        report = demo_analyses(out, tsne=args.tsne)
        # the cohort as it ends: with the results the analyses wrote into it
        summary = _format_summary(describe(out))
        if args.store is None:
            summary += "\n(a temporary store, removed after the demo: pass --store PATH to keep it)"
        parameters = {"samples": args.samples, "genes": args.genes, "seed": args.seed}
        report["run"] = run_facts(parameters, time.perf_counter() - start)
        write_report(args.report, summary, report)
        print(f"\nreport written to {args.report}")
        if args.store is None:
            print("\n(the demo store was temporary; pass --store PATH to keep it)")


def _format_summary(summary: dict[str, Any]) -> str:
    gb = 1e9
    lines = [
        f"store        {summary['path']}",
        f"matrix       {summary['samples']} samples × {summary['genes']} genes, "
        f"{summary['dtype']}, scale {summary['scale']}",
        f"chunks       {summary['chunks']}  codecs {', '.join(summary['codecs'])}",
        f"size         {summary['bytes_on_disk'] / gb:.3f} GB on disk, "
        f"{summary['bytes_uncompressed'] / gb:.3f} GB uncompressed "
        f"(ratio {summary['bytes_uncompressed'] / max(summary['bytes_on_disk'], 1):.2f})",
    ]
    for kind in ("sample", "gene"):
        variables = summary[f"{kind}_variables"]
        lines.append(f"{kind} variables ({len(variables)})")
        for name, info in variables.items():
            lines.append(f"  {name:<14} {_format_variable(info)}")
    matrices = ", ".join(f"{n} ({m['dtype']})" for n, m in summary.get("matrices", {}).items())
    lines.append(f"matrices     {matrices or '(none besides the expression)'}")
    lines.append(f"results      {', '.join(summary['results']) or '(none)'}")
    return "\n".join(lines)


def _format_variable(info: dict[str, Any]) -> str:
    if info["type"] == "bool":
        return f"bool: {info['true']} true, {info['false']} false"
    if info["type"] == "number":
        if "min" not in info:
            return f"number: all {info['missing']} missing"
        text = f"number: {info['min']:.4g} … {info['max']:.4g} (mean {info['mean']:.4g})"
        return text + (f", {info['missing']} missing" if info["missing"] else "")
    top = ", ".join(f"{k} {v}" for k, v in info["top"].items())
    more = " …" if info["distinct"] > len(info["top"]) else ""
    return f"text, {info['distinct']} distinct: {top}{more}"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
