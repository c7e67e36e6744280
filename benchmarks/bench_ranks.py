"""Wilcoxon rank-sum + Benjamini–Hochberg: cohortex against scipy, scanpy and illico.

The ``wilcoxon`` suite of ``cohortex bench`` (``cohortex.app.bench``): cohortex in memory and
from the store, scipy ``mannwhitneyu`` (on ``--scipy-genes`` genes, extrapolated and marked so),
scanpy ``rank_genes_groups(method="wilcoxon")``, illico; medians of ``--repeats`` runs, each
case's start-up (numba's cache load) apart, the agreement of the p-values with scipy's.
``--kind untied`` (log-normal values, the default) or ``tied`` (negative-binomial counts).

Usage::

    python benchmarks/bench_ranks.py [--kind untied|tied] [--samples 50000] [--genes 20000]
                                     [--repeats 3] [--scipy-genes 500] [--store PATH] [--out DIR]

Writes ``bench_ranks.json`` and ``bench_ranks.md`` into ``--out`` (default benchmarks/out).
"""

from cohortex.app.bench import script

if __name__ == "__main__":
    script(("wilcoxon",), "bench_ranks", __doc__.splitlines()[0], scipy_genes=500)
