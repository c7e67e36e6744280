"""Cross-validated prediction with in-fold gene selection: cohortex against the usual
select-then-cross-validate workflow (select_k_best on all samples, then scikit-learn).

The ``predict`` suite of ``cohortex bench`` (``cohortex.app.bench``; its docstring says what
each case measures): 5-fold logistic regression of the condition on 500 genes chosen inside
each training fold, straight from the store, with the time split into selection, reading and
fitting; and the usual workflow's time (one DE pass for the selection, scikit-learn on the
selected matrix; it leaks the held-out labels into the selection, which is why cohortex does not
do it). Target: cohortex within 2× of it. Medians of ``--repeats`` runs, each case in its own
process with its peak RSS.

Usage::

    python benchmarks/bench_predict.py [--samples 50000] [--genes 20000] [--repeats 3]
                                       [--store PATH] [--out DIR]
"""

from cohortex.app.bench import script

if __name__ == "__main__":
    script(("predict",), "bench_predict", __doc__.splitlines()[0], scipy_genes=None)
