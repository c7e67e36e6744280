"""The store under attack and under accident: each fault is injected, and the store either
refuses with a clear error or survives; nothing outside the store is touched, nothing is lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cohortex import CohortexError, create_cohort, open_cohort, read_result, write_result

from conftest import snapshot

JOURNAL = ".cohortex-journal"


@pytest.fixture
def store(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    path = tmp_path / "shared" / "downloaded.zarr"
    create_cohort(path, x, samples=samples, genes=genes, chunks=(8, 6))
    return path


@pytest.fixture
def victim(tmp_path):
    """Files outside the store that a crafted store must never reach."""
    folder = tmp_path / "victim"
    (folder / "deep").mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    (folder / "deep" / "c").mkdir()
    (folder / "deep" / "c" / "7").write_text("more work")
    return folder


def _journal(store: Path, manifest: object, files: dict[str, bytes] | None = None) -> None:
    journal = store / JOURNAL
    (journal / "files").mkdir(parents=True)
    for relative, content in (files or {}).items():
        (journal / "files" / relative).parent.mkdir(parents=True, exist_ok=True)
        (journal / "files" / relative).write_bytes(content)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (journal / "manifest.json").write_text(text)


def _crafted(store: Path, victim: Path) -> list[tuple[str, object, dict[str, bytes]]]:
    relative_victim = os.path.relpath(victim, store)
    return [
        ("saved path climbing out", {"last_chunk": {}, "saved": ["../../victim/thesis.tex"]}, {}),
        (
            "saved path climbing out with attacker content",
            {"last_chunk": {"expression": 0}, "saved": [f"expression/../../{relative_victim}/x"]},
            {"x": b"attacker"},
        ),
        ("absolute saved path", {"last_chunk": {}, "saved": [str(victim / "thesis.tex")]}, {}),
        (
            "array name climbing out",
            {"last_chunk": {relative_victim + "/deep": 0}, "saved": []},
            {},
        ),
        ("absolute array name", {"last_chunk": {str(victim / "deep"): 0}, "saved": []}, {}),
        ("array name '..'", {"last_chunk": {"..": 0}, "saved": []}, {}),
        ("negative last chunk", {"last_chunk": {"expression": -1}, "saved": []}, {}),
        ("not JSON", "{'last_chunk':", {}),
        ("a JSON list", [], {}),
        ("saved is not a list", {"last_chunk": {}, "saved": "zarr.json"}, {}),
    ]


@pytest.mark.parametrize("case", range(10))
def test_a_crafted_journal_touches_nothing(store, victim, case):
    name, manifest, files = _crafted(store, victim)[case]
    _journal(store, manifest, files)
    outside, inside = snapshot(victim), snapshot(store)
    with pytest.raises(CohortexError, match="journal of an unfinished append, but it is not one"):
        open_cohort(store)
    assert snapshot(victim) == outside, name
    assert snapshot(store) == inside, name
    assert (victim / "deep" / "c" / "7").read_text() == "more work"


def test_links_inside_the_store_are_not_followed(store, victim):
    # an array folder that is a link to a folder outside: its chunks would be deleted
    (store / "evil").symlink_to(victim / "deep", target_is_directory=True)
    _journal(store, {"last_chunk": {"evil": 0}, "saved": []})
    outside = snapshot(victim)
    with pytest.raises(CohortexError, match="outside the store or behind a link"):
        open_cohort(store)
    assert snapshot(victim) == outside


def test_a_linked_backup_file_is_not_copied_in(store, victim):
    journal = store / JOURNAL
    (journal / "files").mkdir(parents=True)
    (journal / "files" / "zarr.json").symlink_to(victim / "thesis.tex")
    (journal / "manifest.json").write_text(json.dumps({"last_chunk": {}, "saved": ["zarr.json"]}))
    before = snapshot(store)
    with pytest.raises(CohortexError, match="outside the store or behind a link"):
        open_cohort(store)
    assert snapshot(store) == before


def test_a_linked_journal_is_refused(store, victim):
    (victim / "manifest.json").write_text(json.dumps({"last_chunk": {}, "saved": []}))
    (store / JOURNAL).symlink_to(victim, target_is_directory=True)
    outside = snapshot(victim)
    with pytest.raises(CohortexError, match="is a symbolic link"):
        open_cohort(store)
    assert snapshot(victim) == outside


@pytest.mark.parametrize(
    "name", ["../../x.zarr", "/abs/other.zarr", "a/b", "..", ".hidden", "zarr.json", "", "x" * 129]
)
def test_result_names_are_plain_names(store, tmp_path, name):
    elsewhere = tmp_path / "x.zarr"
    create_cohort(elsewhere, np.ones((3, 2)))
    for function in (read_result, lambda path, n: write_result(path, n, open_cohort(path))):
        with pytest.raises(CohortexError, match="'name' parameter of (read|write)_result"):
            function(store, name)


@pytest.mark.parametrize("name", [None, 3, ["a"], Path("a")])
def test_result_names_of_other_types_are_refused_clearly(store, name):
    with pytest.raises(CohortexError, match="must be 1 to 128 letters"):
        read_result(store, name)
