"""limma-voom: cohortex's voom + weighted fit against its unweighted fit and R's limma.

The ``voom`` suite of ``cohortex bench`` (``cohortex.app.bench``; its docstring says what each
case measures): ``de.voom`` with TMM factors and the weighted ``de.fit`` straight from a counts
store, the same with the unweighted fit (each row notes the fit's own seconds: the target is
weighted ≤ 3× unweighted), and on the first ``--r-samples`` samples cohortex in memory against
R's ``voom(calcNormFactors(DGEList(counts)), design)`` + ``lmFit`` + ``eBayes`` (timed inside R,
its extrapolation to the whole cohort marked so); medians of ``--repeats`` runs, each case in
its own process with its peak RSS.

Usage::

    python benchmarks/bench_voom.py [--samples 50000] [--genes 20000] [--repeats 3]
                                    [--store COUNTS.zarr] [--r-samples 2000] [--out DIR]

Without ``--store`` it simulates negative-binomial counts (library size 1e7). Writes
``bench_voom.json`` and ``bench_voom.md`` into ``--out`` (default benchmarks/out).
"""

from cohortex.app.bench import script

if __name__ == "__main__":
    script(("voom",), "bench_voom", __doc__.splitlines()[0], scipy_genes=None, kind="counts")
