"""cohortex's GSEA p-values next to R fgsea's (fgseaMultilevel) on the same ranking and sets.

fgsea is not packaged in Debian, so this is a check one runs by hand where it is installed
(``R CMD INSTALL`` of a fgsea source tree; it needs r-cran-bh, r-cran-data.table,
r-bioc-biocparallel, r-cran-fastmatch, r-cran-cowplot), not a test fixture. Both estimates are
Monte Carlo: they agree within their ``log2err``, not to the last digit, and the table says by
how many of those errors they differ.

The data: 5,000 genes with standard normal statistics; 40 random sets of 15–300 genes (null,
p spread over (0, 1)); 12 sets shifted towards the top or bottom by a rank weight
``exp(-rank / w)`` (p from 1e-3 down to about 1e-40).

Usage::

    python benchmarks/fgsea_agreement.py [--out benchmarks/out]

Writes ``fgsea_agreement.csv`` and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from cohortex import genesets
from cohortex.genesets import GeneSets

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(fgsea))
ranks <- read.csv(args[1], stringsAsFactors = FALSE)
stats <- setNames(ranks$statistic, ranks$gene)
pathways <- gmtPathways(args[2])
set.seed(1)
res <- fgsea(pathways, stats, minSize = 15, maxSize = 500, eps = 0)
write.csv(data.frame(gene_set = res$pathway, es = res$ES, nes = res$NES, pvalue = res$pval,
                     log2err = res$log2err), args[3], row.names = FALSE)
cat(as.character(packageVersion("fgsea")), "\n")
"""


def cohort(seed: int = 0) -> tuple[pd.Series, GeneSets]:
    rng = np.random.default_rng(seed)
    n = 5000
    genes = np.array([f"g{i}" for i in range(n)])
    ranking = pd.Series(rng.normal(size=n), index=genes)
    ordered = ranking.sort_values(ascending=False).index.to_numpy()
    sets = {
        f"null{j}": rng.choice(genes, int(rng.integers(15, 300)), replace=False) for j in range(40)
    }
    for j, width in enumerate([3000, 1500, 800, 400, 200, 100]):
        weight = np.exp(-np.arange(n) / width)
        weight /= weight.sum()
        for direction, order in (("up", ordered), ("down", ordered[::-1])):
            size = 25 + 10 * j
            sets[f"{direction}_w{width}"] = order[rng.choice(n, size, replace=False, p=weight)]
    return ranking, GeneSets.from_dict(sets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        sys.exit("Rscript is not installed.")
    ranking, sets = cohort()
    ours = genesets.gsea(ranking, sets, eps=0).to_dataframe()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ranking.rename_axis("gene").rename("statistic").reset_index().to_csv(
            folder / "ranks.csv", index=False
        )
        sets.to_gmt(folder / "sets.gmt")
        (folder / "run.R").write_text(R_SCRIPT)
        run = subprocess.run(
            [
                "Rscript",
                str(folder / "run.R"),
                str(folder / "ranks.csv"),
                str(folder / "sets.gmt"),
                str(folder / "fgsea.csv"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode:
            sys.exit(f"fgsea failed (is it installed?):\n{run.stderr}")
        theirs = pd.read_csv(folder / "fgsea.csv").set_index("gene_set")
    table = ours[["size", "es", "nes", "pvalue", "log2err"]].join(theirs, rsuffix="_fgsea")
    difference = np.log2(table["pvalue"] / table["pvalue_fgsea"])
    error = np.hypot(table["log2err"].fillna(0), table["log2err_fgsea"].fillna(0))
    table["log2_ratio"] = difference
    table["in_errors"] = difference / error
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "fgsea_agreement.csv")
    print(f"fgsea {run.stdout.strip()}, {len(table)} sets")
    print(f"- largest |ES difference|: {np.abs(table['es'] - table['es_fgsea']).max():.2e}")
    print(f"- largest |NES difference|: {np.abs(table['nes'] - table['nes_fgsea']).max():.3f}")
    planted = ~table.index.str.startswith("null")
    print("\n| set | size | ES | p cohortex | p fgsea | log2 ratio | in errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in table[planted].sort_values("pvalue").iterrows():
        print(
            f"| {name} | {row['size']} | {row['es']:.3f} | {row['pvalue']:.2e} | "
            f"{row['pvalue_fgsea']:.2e} | {row['log2_ratio']:+.2f} | {row['in_errors']:+.1f} |"
        )
    null = table[~planted]
    print(
        f"\nnull sets: median |log2 ratio| {np.abs(null['log2_ratio']).median():.2f}, "
        f"largest |in errors| {np.abs(null['in_errors']).max():.1f}"
    )


if __name__ == "__main__":
    main()
