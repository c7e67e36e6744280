"""PCA and t-SNE: cohortex against scikit-learn and openTSNE on the same cohort.

The ``pca`` and ``tsne`` suites of ``cohortex bench`` (``cohortex.app.bench``): cohortex's PCA
from the store of all genes and of the 2,000 most variable ones, scikit-learn's randomized and
full PCA in memory on the same genes; t-SNE of the first 50 components by cohortex, openTSNE,
and scikit-learn on ``--tsne-subset`` samples.

Usage::

    python benchmarks/bench_embed.py [--store PATH] [--samples 50000] [--genes 20000]
                                     [--repeats 1] [--tsne-subset 5000] [--out DIR] [--skip …]

Writes ``bench_embed.json`` and ``bench_embed.md`` into ``--out`` (default benchmarks/out).
"""

from cohortex.app.bench import script

if __name__ == "__main__":
    script(("pca", "tsne"), "bench_embed", __doc__.splitlines()[0], scipy_genes=500)
