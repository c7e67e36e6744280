"""Shared by the benchmark scripts: run each case in its own process, read its JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Sequence

from cohortex.app.bench import peak_rss_bytes

__all__ = ["peak_rss_bytes", "run_cases"]


def run_cases(
    script: str,
    cases: Iterable[str],
    skip: set[str],
    extra_args: Sequence[str],
    repeats: dict[str, int] | None = None,
) -> list[dict]:
    """Run ``script --case CASE *extra_args`` per case; each prints one JSON line last.

    A case in its own process reports its own peak RSS. Failures are printed and skipped.
    ``repeats`` runs some cases several times, each in a fresh process: the row then holds the
    median seconds (and the largest peak RSS), every run's seconds under ``runs``.
    """
    rows = []
    for case in cases:
        if case in skip:
            continue
        runs = []
        for _ in range((repeats or {}).get(case, 1)):
            done = subprocess.run(
                [sys.executable, script, "--case", case, *extra_args],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                print(f"{case} failed:\n{done.stderr[-2000:]}", flush=True)
                break
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        else:
            runs.sort(key=lambda r: r["seconds"])
            row = dict(runs[len(runs) // 2])
            row["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in runs)
            if len(runs) > 1:
                row["runs"] = [r["seconds"] for r in runs]
        if len(runs) != (repeats or {}).get(case, 1):
            continue
        rows.append(row)
        note = f"  {row['method']}" if row.get("method") else ""
        if row.get("runs"):
            note += f"  median of {', '.join(f'{t:.2f}' for t in row['runs'])}"
        print(
            f"{case:18s} {row['seconds']:8.2f} s  peak RSS "
            f"{row['peak_rss_bytes'] / 1e9:5.2f} GB{note}",
            flush=True,
        )
    return rows
