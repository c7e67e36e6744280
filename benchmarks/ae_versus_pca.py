"""The autoencoder against PCA and a shallow autoencoder on held-out samples, with its defaults.

Two cohorts:

- the simulator, ``simulate(4000 samples, 1000 genes, modules=10, seed=3)`` (ten modules whose
  genes follow their factor through gene-specific sigmoids, DE genes, noise); 10% of the
  samples held out by each model's seed;
- scanpy's ``pbmc68k_reduced`` (700 cells × 765 genes, log-normalised ``raw``), a real cohort
  that ships with the package.

For each code width k ∈ {4, 16, 32, 64} and seeds 0, 1, 2, a tenth of the samples (chosen by
the seed) is set aside as the test split, which no model sees: not its weights, its scaling,
its PCA start, nor its early stopping (the autoencoders hold out a validation tenth of the
rest for that). On the test split: the variance explained by PCA(k) fitted on all the other
samples, the plain one-layer autoencoder ``(k,)`` (no PCA path), cohortex's default
``Autoencoder((256, k, 256))`` and Dwivedi et al.'s recipe on the same widths
(``Autoencoder.dwivedi(hidden=(256, k, 256))``), all on the same [0, 1] scaling (each model's,
from the same training split: the same seed splits the same way);
``deep_validation`` is the default model's score on the validation split that chose its epoch.
On the simulator the "signal" column is the most any reconstruction can explain without
predicting the noise: 1 − Σ noise variance / Σ test variance (from the simulator's
``noise_sd``). Then, at k = 16, how well each planted module is recovered: the best AUROC over
nodes of the module's genes against the others, by |light-up change| of every hidden layer of
the deep model, and by |loading| of PCA's components.

With ``--large N``: only the simulator, ``simulate(N, 1000, modules=10, seed=3)``, cohortex's
default against PCA (no baselines), at the widths of ``--widths``: whether a cohort of the size
cohortex is built for lets the non-linear layers learn what 4,000 samples do not.

Usage::

    python benchmarks/ae_versus_pca.py [--out benchmarks/out] [--seeds 3]
    python benchmarks/ae_versus_pca.py --large 40000 --widths 32,64 --seeds 2

Writes ``ae_versus_pca.json`` (``ae_versus_pca_<N>.json``) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

import cohortex
from cohortex.ae import Autoencoder

WIDTHS = (4, 16, 32, 64)


def _test_rows(n_samples: int, seed: int) -> np.ndarray:
    """A tenth of the samples, chosen by ``seed``: the test split no model sees."""
    chosen = np.random.default_rng(1000 + seed).choice(n_samples, n_samples // 10, replace=False)
    test = np.zeros(n_samples, bool)
    test[chosen] = True
    return test


def _subset(cohort, rows: np.ndarray):
    """The cohort's samples at ``rows`` (a lazy selection of a store; a copy of an array)."""
    if isinstance(cohort, str | Path):
        return cohortex.open_cohort(cohort).isel(sample=np.flatnonzero(rows))
    return cohort[rows]


def _scaled(model: Autoencoder, x: np.ndarray) -> np.ndarray:
    return (x - model.minimum_) / model.span_


def _explained(reconstruction: np.ndarray, target: np.ndarray) -> float:
    residual = ((reconstruction - target) ** 2).sum()
    return float(1 - residual / ((target - target.mean(axis=0)) ** 2).sum())


def compare(
    cohort,
    x: np.ndarray,
    noise_sd: np.ndarray | None,
    seeds: int,
    widths: tuple[int, ...] = WIDTHS,
    baselines: bool = True,
) -> list[dict]:
    rows = []
    for k in widths:
        for seed in range(seeds):
            test = _test_rows(len(x), seed)
            fit_on, test_on = _subset(cohort, ~test), _subset(cohort, test)
            start = time.perf_counter()
            deep = Autoencoder((256, k, 256), seed=seed, progress=False).fit(fit_on)
            deep_seconds = time.perf_counter() - start
            held = _scaled(deep, x[test])
            pca = PCA(k, svd_solver="full").fit(_scaled(deep, x[~test]))  # exact, as the PCA start
            row = {
                "k": k,
                "seed": seed,
                "pca": _explained(pca.inverse_transform(pca.transform(held)), held),
                "deep": deep.score(test_on)["variance_explained"],
                "deep_validation": deep.score()["variance_explained"],
                "deep_epochs": len(deep.history_),
                "deep_seconds": deep_seconds,
            }
            if baselines:
                shallow = Autoencoder((k,), pca_path=False, dropout=0.0, seed=seed, progress=False)
                row["shallow"] = shallow.fit(fit_on).score(test_on)["variance_explained"]
                dwivedi = Autoencoder.dwivedi(hidden=(256, k, 256), seed=seed, progress=False)
                row["dwivedi"] = dwivedi.fit(fit_on).score(test_on)["variance_explained"]
            if noise_sd is not None:
                noise = ((noise_sd / deep.span_) ** 2).sum() * (len(held) - 1)
                row["signal"] = float(1 - noise / ((held - held.mean(axis=0)) ** 2).sum())
            print(json.dumps({key: round(v, 4) for key, v in row.items()}), flush=True)
            row["validation_loss"] = [h["validation_loss"] for h in deep.history_]
            rows.append(row)
    return rows


def modules(cohort, x: np.ndarray, module: np.ndarray, seed: int = 0) -> dict:
    """Best AUROC per planted module: deep light-up per layer, PCA loadings."""
    deep = Autoencoder((256, 16, 256), seed=seed, progress=False).fit(cohort)
    train = np.delete(_scaled(deep, x), deep.validation_index_, axis=0)  # as the PCA start
    loadings = np.abs(PCA(16, svd_solver="full").fit(train).components_)
    found: dict[str, list[float]] = {"pca loadings": []}
    changes = {
        f"deep layer {layer}": np.abs(deep.light_up(layer)["change"].values) for layer in (1, 2, 3)
    }
    for name in changes:
        found[name] = []
    for m in sorted(set(module[module >= 0].tolist())):
        truth = module == m
        found["pca loadings"].append(max(roc_auc_score(truth, row) for row in loadings))
        for name, change in changes.items():
            found[name].append(max(roc_auc_score(truth, row) for row in change))
    return found


def _table(rows: list[dict], columns: list[str]) -> str:
    lines = [
        "| k | " + " | ".join(columns) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for k in sorted({r["k"] for r in rows}):
        chosen = [r for r in rows if r["k"] == k]
        cells = []
        for column in columns:
            values = np.array([r[column] for r in chosen])
            cells.append(
                f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"
                if len(values) > 1
                else f"{values[0]:.4f}"
            )
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--large", type=int, default=None, help="samples of a large simulator run")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    widths = tuple(int(w) for w in args.widths.split(","))
    if args.large is not None:
        store = args.out / f"ae_versus_pca_{args.large}x1000.zarr"
        simulated = cohortex.simulate(store, args.large, 1000, modules=10, seed=3, overwrite=True)
        x = simulated["expression"].values.astype(np.float64)
        noise_sd = simulated["noise_sd"].values
        rows = compare(store, x, noise_sd, args.seeds, widths, baselines=False)
        (args.out / f"ae_versus_pca_{args.large}.json").write_text(json.dumps(rows, indent=1))
        print(f"\nsimulate({args.large}, 1000, modules=10, seed=3), held-out variance explained")
        print(_table(rows, ["pca", "deep", "signal"]))
        return
    store = args.out / "ae_versus_pca_4000x1000.zarr"
    simulated = cohortex.simulate(store, 4000, 1000, modules=10, seed=3, overwrite=True)
    x = simulated["expression"].values.astype(np.float64)
    result: dict = {"simulated": compare(store, x, simulated["noise_sd"].values, args.seeds)}
    result["modules"] = modules(store, x, simulated["module"].values)

    import scanpy as sc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = sc.datasets.pbmc68k_reduced()
    raw = adata.raw.X.toarray() if hasattr(adata.raw.X, "toarray") else np.asarray(adata.raw.X)
    raw = raw.astype(np.float32)
    result["pbmc68k_reduced"] = compare(raw, raw.astype(np.float64), None, args.seeds)
    (args.out / "ae_versus_pca.json").write_text(json.dumps(result, indent=1))

    columns = ["pca", "shallow", "dwivedi", "deep"]
    print(
        "\nsimulate(4000, 1000, modules=10, seed=3), held-out variance explained, "
        "mean ± sd over seeds"
    )
    print(_table(result["simulated"], [*columns, "signal"]))
    print("\npbmc68k_reduced (700 × 765), held-out variance explained")
    print(_table(result["pbmc68k_reduced"], columns))
    print("\nplanted modules at k = 16: best AUROC per module")
    for name, values in result["modules"].items():
        print(
            f"- {name}: " + ", ".join(f"{v:.3f}" for v in values) + f" (mean {np.mean(values):.3f})"
        )


if __name__ == "__main__":
    main()
