"""Per-gene Cox models and log-rank tests: cohortex against lifelines' CoxPHFitter.

The ``survival`` suite of ``cohortex bench`` (``cohortex.app.bench``; its docstring says what
each case measures): ``survival.cox`` (Efron ties) and ``survival.logrank`` of every gene
straight from the store, and lifelines' ``CoxPHFitter`` gene by gene on ``--scipy-genes``
genes, **extrapolated** to all (marked so); medians of ``--repeats`` runs, each case in its own
process with its peak RSS. The outcome is the store's ``time`` and ``event`` when it has them,
else a fixed-seed draw (exponential times, a third censored).

Usage::

    python benchmarks/bench_survival.py [--samples 10000] [--genes 20000] [--repeats 3]
                                        [--store PATH] [--scipy-genes 200] [--out DIR]

Writes ``bench_survival.json`` and ``bench_survival.md`` into ``--out`` (default
benchmarks/out).
"""

from cohortex.app.bench import script

if __name__ == "__main__":
    script(
        ("survival",), "bench_survival", __doc__.splitlines()[0], scipy_genes=200, samples=10_000
    )
