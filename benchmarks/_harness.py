"""Shared by the benchmark scripts: run each case in its own process, read its JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Sequence

from cohortex._bench import peak_rss_bytes

__all__ = ["peak_rss_bytes", "run_cases"]


def run_cases(
    script: str, cases: Iterable[str], skip: set[str], extra_args: Sequence[str]
) -> list[dict]:
    """Run ``script --case CASE *extra_args`` per case; each prints one JSON line last.

    A case in its own process reports its own peak RSS. Failures are printed and skipped.
    """
    rows = []
    for case in cases:
        if case in skip:
            continue
        done = subprocess.run(
            [sys.executable, script, "--case", case, *extra_args], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"{case} failed:\n{done.stderr[-2000:]}", flush=True)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        note = f"  {row['method']}" if row.get("method") else ""
        print(
            f"{case:18s} {row['seconds']:8.2f} s  peak RSS "
            f"{row['peak_rss_bytes'] / 1e9:5.2f} GB{note}",
            flush=True,
        )
    return rows
