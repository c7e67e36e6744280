"""Autoencoder training throughput and held-out reconstruction (3 × 512 on 20,000 genes).

Usage::

    python benchmarks/bench_ae.py [--samples 20000] [--genes 20000] [--epochs 2] [--device auto]

Simulates (or reuses) a cohort with planted modules, trains Dwivedi et al.'s 3 × 512 network
(``Autoencoder.dwivedi()``) for a few epochs from the store and reports samples per second
(training passes only), the held-out MSE, the machine and the device. Writes bench_ae.json /
bench_ae.md into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import torch

import cohortex
from cohortex.ae import Autoencoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.store or args.out / f"ae_{args.samples}x{args.genes}.zarr"
    if not (Path(store) / "zarr.json").exists():
        cohortex.simulate(
            store, args.samples, args.genes, modules=20, module_size=200, seed=0, progress=False
        )
    model = Autoencoder.dwivedi(
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        patience=args.epochs,
        device=args.device,
        progress=False,
    )
    start = time.perf_counter()
    model.fit(store)
    seconds = time.perf_counter() - start
    n_train = args.samples - len(model.validation_index_)
    score = model.score()
    device = "cpu"
    if model._torch_device().type == "cuda":
        device = torch.cuda.get_device_name(0)
    row = {
        "samples": args.samples,
        "genes": args.genes,
        "epochs": len(model.history_),
        "seconds": seconds,
        "samples_per_second": n_train * len(model.history_) / seconds,
        "epoch_samples_per_second": n_train / min(model.epoch_seconds_),
        "heldout_mse": score["mse"],
        "variance_explained": score["variance_explained"],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "device": device,
        "node": platform.node(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    (args.out / "bench_ae.json").write_text(json.dumps(row, indent=2))
    text = (
        f"Autoencoder 3 × 512, {args.samples} × {args.genes}, {row['epochs']} epochs on "
        f"{device} ({row['cpus']} CPUs): {row['samples_per_second']:.0f} samples/s over the whole "
        f"fit (reading the store, scaling, validation, layer statistics), "
        f"{row['epoch_samples_per_second']:.0f} in its fastest epoch; held-out MSE "
        f"{row['heldout_mse']:.5f}, variance explained {row['variance_explained']:.3f}, "
        f"peak RSS {row['peak_rss_bytes'] / 1e9:.2f} GB"
    )
    (args.out / "bench_ae.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
