"""cohortex's ``read_quantifications`` next to tximport (1.26, reading with readr) on the same
Salmon files in the same run: seconds, input MB/s, peak memory, and how closely the gene-level
counts, abundances and lengths agree.

Data: ``--samples`` Salmon ``quant.sf`` files of ``--transcripts`` transcripts (GENCODE's human
annotation has ~250,000 in ~62,000 genes; here 1–12 transcripts a gene), effective lengths that
differ by sample, gamma-distributed estimated counts with fractions, a tenth of the transcripts
at 0 in each sample; a tx2gene of every transcript. Both tools summarise to genes with
``countsFromAbundance = "no"`` and ``"lengthScaledTPM"``.

Usage::

    python benchmarks/tximport_versus_r.py [--transcripts 200000] [--samples 20 100]

Writes ``tximport_versus_r.json`` to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _versus_r import require_rscript, run_r

from cohortex import io

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(tximport))
files <- readLines(args[1])
names(files) <- basename(dirname(files))
tx2gene <- read.csv(args[2])
seconds <- c()
for (cfa in c("no", "lengthScaledTPM")) {
  t0 <- proc.time()[3]
  txi <- suppressMessages(tximport(files, type = "salmon", tx2gene = tx2gene,
                                   countsFromAbundance = cfa))
  seconds[cfa] <- proc.time()[3] - t0
  for (m in c("abundance", "counts", "length"))
    write.csv(txi[[m]], file.path(args[3], sprintf("%s_%s.csv", cfa, m)))
}
cat(seconds, gc()[2, 6] + gc()[1, 6], "\n")
"""
SETTINGS = ("no", "lengthScaledTPM")


def write_salmon(work: Path, n_transcripts: int, n_samples: int, seed: int = 0) -> list[Path]:
    """Salmon quant.sf files and a tx2gene.csv in ``work``; the files' paths."""
    rng = np.random.default_rng(seed)
    per_gene = rng.integers(1, 13, n_transcripts)
    gene_of = np.repeat(np.arange(per_gene.size), per_gene)[:n_transcripts]
    tx = np.array([f"ENST{i:011d}.{v}" for i, v in enumerate(rng.integers(1, 9, n_transcripts))])
    genes = np.array([f"ENSG{g:011d}" for g in gene_of])
    pd.DataFrame({"TXNAME": tx, "GENEID": genes}).to_csv(work / "tx2gene.csv", index=False)
    length = np.round(np.exp(rng.normal(np.log(1800), 0.8, n_transcripts))) + 60
    level = rng.gamma(0.5, 400.0, n_transcripts)  # each transcript's expression
    paths = []
    for j in range(n_samples):
        eff = np.maximum(length - rng.normal(200, 20) + rng.normal(0, 4, n_transcripts), 12.0)
        counts = rng.gamma(2.0, level / 2.0) * (rng.random(n_transcripts) > 0.1)
        rate = counts / eff
        table = pd.DataFrame(
            {
                "Name": tx,
                "Length": length.astype(np.int64),
                "EffectiveLength": np.round(eff, 3),
                "TPM": np.round(1e6 * rate / rate.sum(), 6),
                "NumReads": np.round(counts, 3),
            }
        )
        folder = work / f"S{j + 1:04d}"
        folder.mkdir()
        table.to_csv(folder / "quant.sf", sep="\t", index=False)
        paths.append(folder / "quant.sf")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transcripts", type=int, default=200_000)
    parser.add_argument("--samples", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-bioc-tximport, r-cran-readr")
    rows = []
    for n in args.samples:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            paths = write_salmon(work, args.transcripts, n)
            megabytes = sum(p.stat().st_size for p in paths) / 1e6
            (work / "files.txt").write_text("\n".join(map(str, paths)) + "\n")
            output = run_r(
                R_SCRIPT, work, str(work / "files.txt"), str(work / "tx2gene.csv"), folder
            )
            r_seconds = dict(zip(SETTINGS, map(float, output[:2]), strict=True))
            for setting in SETTINGS:
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = io.read_quantifications(
                        paths,
                        tx2gene=work / "tx2gene.csv",
                        counts_from_abundance=setting,
                        progress=False,
                    )
                seconds = time.perf_counter() - start
                difference = 0.0
                for ours, theirs in (
                    ("expression", "counts"),
                    ("abundance", "abundance"),
                    ("length", "length"),
                ):
                    expected = pd.read_csv(work / f"{setting}_{theirs}.csv", index_col=0)
                    got = ds[ours].to_pandas().T.loc[expected.index].to_numpy()
                    scale = np.maximum(np.abs(expected.to_numpy()), 1e-300)
                    difference = max(difference, float(np.max(np.abs(got - expected) / scale)))
                rows.append(
                    {
                        "samples": n,
                        "transcripts": args.transcripts,
                        "genes": ds.sizes["gene"],
                        "counts_from_abundance": setting,
                        "input_mb": megabytes,
                        "cohortex_s": seconds,
                        "tximport_s": r_seconds[setting],
                        "r_peak_mb": float(output[2]),
                        "largest_relative_difference": difference,
                    }
                )
                print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "tximport_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples × transcripts (genes) | countsFromAbundance | cohortex (s) | MB/s | "
        "tximport (s) | ratio | largest relative difference |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['samples']} × {row['transcripts']:,} ({row['genes']:,}) | "
            f"{row['counts_from_abundance']} | {row['cohortex_s']:.2f} | "
            f"{row['input_mb'] / row['cohortex_s']:.0f} | {row['tximport_s']:.2f} | "
            f"{row['tximport_s'] / row['cohortex_s']:.1f}× | "
            f"{row['largest_relative_difference']:.0e} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
