"""Choose the store's default tile shape and codec by measurement.

For a log-expression matrix (default 20,000 samples × 10,000 genes, float32) this times, for
several tilings and codecs: writing the store, its size on disk, reading it back through Dask
with a per-gene reduction (the access pattern of the moment-based statistics), and reading
gene blocks holding all samples (the access pattern of rank statistics). The limit it reports
against is one streaming pass over the same matrix already in memory.

Two kinds of data: ``microarray`` (continuous log2 values from the simulator's log-normal model)
and ``rnaseq`` (log2(counts + 1) of negative-binomial counts, with zeros and repeated values).

Usage::

    python benchmarks/store_io.py [--samples 20000] [--genes 10000] [--repeats 3] [--out DIR]

Writes ``store_io.json`` and ``store_io.md`` into ``--out`` (default benchmarks/out).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dask
import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from cohortex import create_cohort, open_cohort
from cohortex.simulate import simulate_array

CODECS = {
    "blosc-lz4 shuffle": BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
    "blosc-lz4 bitshuffle": BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
    "zstd-1": ZstdCodec(level=1),
    "blosc-zstd-1 shuffle": BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
    "none": "none",
}
TILINGS = [(1024, 1024), (2048, 2048), (4096, 256), (256, 4096), (512, 512)]


def make_data(kind: str, n_samples: int, n_genes: int) -> np.ndarray:
    if kind == "microarray":
        x, _, _ = simulate_array(n_samples, n_genes, n_de=0.05, batches=2, seed=1)
        return x
    counts, _, _ = simulate_array(
        n_samples, n_genes, n_de=0.05, distribution="negbinom", library_size=2e6, seed=1
    )
    return np.log2(counts + 1, out=counts)


def memory_pass(x: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        x.sum(axis=0, dtype=np.float64)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(x: np.ndarray, tiles, codec, repeats: int, scratch: Path) -> dict:
    path = scratch / "bench.zarr"
    writes, reads, gene_blocks = [], [], []
    for _ in range(repeats):
        shutil.rmtree(path, ignore_errors=True)
        start = time.perf_counter()
        create_cohort(path, x, chunks=tiles, compressor=codec, progress=False)
        writes.append(time.perf_counter() - start)
    size = sum(p.stat().st_size for p in (path / "expression").rglob("*") if p.is_file())
    for _ in range(repeats):
        ds = open_cohort(path)
        start = time.perf_counter()
        ds["expression"].data.sum(axis=0, dtype=np.float64).compute()
        reads.append(time.perf_counter() - start)
    array = zarr.open_array(path / "expression", mode="r")
    block = 1024
    starts = list(range(0, x.shape[1] - block + 1, max(block, x.shape[1] // 4)))[:4]
    for _ in range(repeats):
        start = time.perf_counter()
        for g in starts:
            array[:, g : g + block]
        gene_blocks.append((time.perf_counter() - start) / len(starts))
    shutil.rmtree(path, ignore_errors=True)
    gb = x.nbytes / 1e9
    block_gb = x.shape[0] * block * 4 / 1e9
    return {
        "tiles": list(tiles),
        "write_s": statistics.median(writes),
        "write_gbps": gb / statistics.median(writes),
        "read_s": statistics.median(reads),
        "read_gbps": gb / statistics.median(reads),
        "gene_block_gbps": block_gb / statistics.median(gene_blocks),
        "ratio": x.nbytes / size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dask.config.set(scheduler="threads")
    rows = []
    with tempfile.TemporaryDirectory(prefix="cohortex-bench-", dir=args.out) as scratch:
        for kind in ("microarray", "rnaseq"):
            x = make_data(kind, args.samples, args.genes)
            limit = memory_pass(x, args.repeats)
            configs = (
                [(t, c) for t in TILINGS for c in CODECS]
                if kind == "microarray"
                else [((1024, 1024), c) for c in CODECS]
            )
            for tiles, name in configs:
                result = measure(x, tiles, CODECS[name], args.repeats, Path(scratch))
                result.update(
                    data=kind,
                    codec=name,
                    memory_pass_s=limit,
                    read_fraction_of_memory_pass=limit / result["read_s"],
                )
                rows.append(result)
                print(
                    f"{kind:10s} {tiles!s:14s} {name:22s} write {result['write_gbps']:.2f} GB/s"
                    f"  read {result['read_gbps']:.2f} GB/s  gene-block "
                    f"{result['gene_block_gbps']:.2f} GB/s  ratio {result['ratio']:.2f}",
                    flush=True,
                )
            del x
    machine = {
        "machine": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "python": platform.python_version(),
        "zarr": zarr.__version__,
        "shape": [args.samples, args.genes],
        "repeats": args.repeats,
    }
    (args.out / "store_io.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2)
    )
    lines = [
        f"Matrix {args.samples} × {args.genes} float32 ({args.samples * args.genes * 4 / 1e9:.2f} "
        f"GB), medians of {args.repeats} runs, {machine['cpus']} CPUs.",
        "",
        "| data | tiles | codec | write GB/s | read GB/s | read / memory pass | "
        "gene-block GB/s | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['tiles'][0]}×{r['tiles'][1]} | {r['codec']} | "
            f"{r['write_gbps']:.2f} | {r['read_gbps']:.2f} | "
            f"{r['read_fraction_of_memory_pass']:.2f} | {r['gene_block_gbps']:.2f} | "
            f"{r['ratio']:.2f} |"
        )
    (args.out / "store_io.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
