"""Welch t-test + Benjamini–Hochberg: cohortex against scipy/statsmodels and scanpy.

The ``de`` suite of ``cohortex bench`` (``cohortex.app.bench``; its docstring says what each
case measures): cohortex in memory and from the store, against one streaming pass over the
matrix and one plain read of the store (the limits), scipy ``ttest_ind`` + statsmodels on every
gene, scanpy ``rank_genes_groups``; medians of ``--repeats`` runs, each case in its own process,
and the agreement of the p-values with scipy's.

Usage::

    python benchmarks/bench_de.py [--samples 50000] [--genes 20000] [--repeats 3]
                                  [--store PATH] [--out DIR] [--skip scanpy,scipy]

Writes ``bench_de.json`` and ``bench_de.md`` into ``--out`` (default benchmarks/out).
"""

from cohortex.app.bench import script

if __name__ == "__main__":
    script(("de",), "bench_de", __doc__.splitlines()[0], scipy_genes=None)
