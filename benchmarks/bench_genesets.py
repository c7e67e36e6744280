"""Preranked GSEA of 10,000 gene sets with 10,000 permutations: cohortex against GSEApy.

The ``genesets`` suite of ``cohortex bench`` (``cohortex.app.bench``; its docstring says what
each case measures): random sets of 15–500 genes drawn with a fixed seed, ranked by the
cohort's Welch t (computed before the clock starts); GSEApy's ``prerank`` on 100 of the sets
with 1,000 permutations, extrapolated linearly to 10,000 × 10,000 (marked so).

Usage::

    python benchmarks/bench_genesets.py [--samples 50000] [--genes 20000] [--repeats 3]
                                        [--store PATH] [--out DIR]
"""

from cohortex.app.bench import script

if __name__ == "__main__":
    script(("genesets",), "bench_genesets", __doc__.splitlines()[0], scipy_genes=None)
