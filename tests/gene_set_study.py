"""A simulated study with planted gene sets, for the gene-set tests' realistic checks."""

from __future__ import annotations

import numpy as np
import xarray as xr

from cohortex.genesets import GeneSets


def simulated_study() -> tuple[xr.Dataset, GeneSets]:
    """400 samples × 2,000 genes (so 399 effects: each set draws only its own span), 120
    genes changed by 0.08–0.2 log2 units between tumour and normal, four co-expressed modules
    of unchanged genes; sets of changed genes (up, down, both) and of unchanged ones (the
    modules, correlated, and 40 random sets)."""
    from cohortex.simulate import simulate_array

    x, samples, genes = simulate_array(
        400, 2000, n_de=120, log2fc=(0.08, 0.2), modules=4, module_size=30, seed=11
    )
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), x),
            "condition": ("sample", samples["condition"].to_numpy()),
        },
        coords={"gene": genes.index.to_numpy()},
        attrs={"scale": "log2"},
    )
    rng = np.random.default_rng(0)
    ids = genes.index.to_numpy()
    up, down = ids[genes["true_log2fc"] > 0], ids[genes["true_log2fc"] < 0]
    unchanged = ids[~genes["is_de"] & (genes["module"] < 0)]
    names, members = [], []
    for name, pool, size in (("up", up, 15), ("down", down, 15), ("both", ids[genes["is_de"]], 30)):
        for i in range(2):
            names.append(f"{name}{i}")
            members.append(tuple(rng.choice(pool, size, replace=False)))
    for m in range(4):
        names.append(f"module{m}")
        members.append(tuple(ids[(genes["module"] == m) & ~genes["is_de"]]))
    for i in range(40):
        names.append(f"null{i}")
        members.append(tuple(rng.choice(unchanged, int(rng.integers(5, 60)), replace=False)))
    return cohort, GeneSets(tuple(names), tuple("" for _ in names), tuple(members))
