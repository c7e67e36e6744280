"""What the store's integrity checks cost when reading: checksums and chunk-presence checks.

Format 2 stores carry a CRC-32C per chunk (Zarr's ``crc32c`` codec, verified on every decode)
and ``open_cohort`` checks that each chunk of a read exists. This script makes a twin of a
store without the expression checksums (the codec removed from the metadata, the 4-byte
trailer from every chunk) and times, interleaved, on both:

* ``de``    ``cohortex.de.test(store, "condition")`` (Welch + BH from the store);
* ``read``  one plain Dask pass over the expression array opened with Zarr alone (no
  cohortex): the decode cost per byte, the limit ``de`` is held to.

Usage::

    python benchmarks/bench_checksums.py [--store PATH] [--samples 50000] [--genes 20000]
                                         [--repeats 3] [--out DIR]

Without ``--store`` a log-normal cohort is simulated into ``--out``. Writes
``bench_checksums.json`` and ``.md`` into ``--out`` (default benchmarks/out).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import time
from pathlib import Path


def _without_checksums(store: Path, twin: Path) -> None:
    """A copy of ``store`` whose expression chunks carry no CRC-32C (as format-1 stores)."""
    if twin.exists():
        shutil.rmtree(twin)
    shutil.copytree(store, twin, ignore=shutil.ignore_patterns("c"))  # metadata only
    for source in (store / "expression" / "c").rglob("*"):
        target = twin / source.relative_to(store)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.write_bytes(source.read_bytes()[:-4])
    for name in [p.name for p in store.iterdir() if (p / "c").is_dir() and p.name != "expression"]:
        shutil.copytree(store / name / "c", twin / name / "c")
    metadata = twin / "expression" / "zarr.json"
    node = json.loads(metadata.read_text())
    node["codecs"] = [c for c in node["codecs"] if c["name"] != "crc32c"]
    metadata.write_text(json.dumps(node, indent=2))


def _de(store: Path) -> float:
    import cohortex

    start = time.perf_counter()
    cohortex.de.test(store, "condition")
    return time.perf_counter() - start


def _read(store: Path) -> float:
    import dask.array as da
    import zarr

    array = zarr.open_array(store / "expression", mode="r")
    start = time.perf_counter()
    da.from_zarr(array).sum(axis=0, dtype="float64").compute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.store
    if store is None:
        from cohortex.simulate import simulate

        store = args.out / f"checksums_{args.samples}x{args.genes}.zarr"
        if not (store / "zarr.json").exists():
            simulate(store, args.samples, args.genes, n_de=0.05, seed=0, progress=False)
    twin = args.out / f"{store.name}.no-crc"
    _without_checksums(store, twin)
    _de(twin)  # warm-up: numba's cache, the page cache for both stores
    _de(store)
    times: dict[str, list[float]] = {k: [] for k in ("de crc", "de none", "read crc", "read none")}
    for _ in range(args.repeats):
        times["de crc"].append(_de(store))
        times["de none"].append(_de(twin))
        times["read crc"].append(_read(store))
        times["read none"].append(_read(twin))
    median = {k: statistics.median(v) for k, v in times.items()}
    gigabytes = args.samples * args.genes * 4 / 1e9
    report = {
        "machine": platform.platform(),
        "store": str(store),
        "runs": times,
        "median": median,
        "de_cost": median["de crc"] / median["de none"] - 1,
        "read_cost": median["read crc"] / median["read none"] - 1,
    }
    lines = [
        f"# Checksum read cost, {store.name} ({gigabytes:.1f} GB), medians of {args.repeats}",
        "",
        "| case | with CRC-32C s | without s | cost |",
        "|---|---|---|---|",
        f"| de.test from the store | {median['de crc']:.2f} | {median['de none']:.2f} | "
        f"{100 * report['de_cost']:+.1f}% |",
        f"| plain Zarr read | {median['read crc']:.2f} | {median['read none']:.2f} | "
        f"{100 * report['read_cost']:+.1f}% |",
    ]
    (args.out / "bench_checksums.json").write_text(json.dumps(report, indent=2))
    (args.out / "bench_checksums.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(twin)


if __name__ == "__main__":
    main()
