"""The append journal: what an append may change is copied first, and an interrupted append
is undone from the copy. The journal is read as untrusted input (a store may come from
anywhere): every path it names is checked before anything is touched."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from .._errors import CohortexError, CohortexWarning
from ._schema import JOURNAL

__all__ = [
    "bad_journal",
    "begin_journal",
    "check_inside",
    "commit_journal",
    "copy_path",
    "is_plain_name",
    "read_manifest",
    "recover",
    "remove_path",
    "rollback",
]


def begin_journal(root: Path, chunk_rows: dict[str, int], old_n: int) -> None:
    """Copy what an append may change; the manifest, written last, makes the journal valid."""
    journal = root / JOURNAL
    shutil.rmtree(journal, ignore_errors=True)
    backup = journal / "files"
    backup.mkdir(parents=True)
    saved: list[str] = ["zarr.json"]
    last_chunk = {name: (old_n - 1) // rows for name, rows in chunk_rows.items()}
    for name, last in last_chunk.items():
        saved.append(f"{name}/zarr.json")
        if (root / name / "c" / str(last)).exists():
            saved.append(f"{name}/c/{last}")
    for relative in saved:
        copy_path(root / relative, backup / relative)
    manifest = {"last_chunk": last_chunk, "saved": saved}
    tmp = journal / "manifest.json.tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, journal / "manifest.json")


def commit_journal(root: Path) -> None:
    journal = root / JOURNAL
    os.remove(journal / "manifest.json")  # from here on, the append stands
    shutil.rmtree(journal, ignore_errors=True)


def rollback(root: Path) -> None:
    """Undo an append: drop chunks past the old end, restore the saved files. Idempotent.

    The journal is read as untrusted input (a store may come from anywhere): every path it
    names is checked to be one that an append writes, inside the store and reached without a
    symbolic link, before anything is removed or copied; otherwise nothing is touched.
    """
    journal = root / JOURNAL
    if journal.is_symlink():
        raise bad_journal(root, f"{JOURNAL} is a symbolic link")
    manifest_path = journal / "manifest.json"
    if not manifest_path.is_file():  # the journal never became valid: nothing was changed
        shutil.rmtree(journal, ignore_errors=True)
        return
    last_chunk, saved = read_manifest(root, manifest_path)
    backup = journal / "files"
    for name, last in last_chunk.items():
        chunk_dir = root / name / "c"
        if not chunk_dir.is_dir():
            continue
        for child in chunk_dir.iterdir():
            if child.name.isdigit() and int(child.name) >= last:
                remove_path(child)
    for relative in saved:
        remove_path(root / relative)
        copy_path(backup / relative, root / relative)
    os.remove(manifest_path)
    shutil.rmtree(journal, ignore_errors=True)


def read_manifest(root: Path, manifest_path: Path) -> tuple[dict[str, int], list[str]]:
    """The journal's (last chunk per array, saved files), each checked (see :func:`rollback`)."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise bad_journal(root, f"its manifest cannot be read ({error})") from None
    if not isinstance(manifest, dict):
        raise bad_journal(root, "its manifest is not a JSON object")
    last_chunk, saved = manifest.get("last_chunk"), manifest.get("saved")
    if not isinstance(last_chunk, dict) or not isinstance(saved, list):
        raise bad_journal(root, "its manifest lacks 'last_chunk' or 'saved'")
    for name, last in last_chunk.items():
        if not is_plain_name(name) or type(last) is not int or last < 0:
            raise bad_journal(root, f"it names the array {name!r} with last chunk {last!r}")
        check_inside(root, root / name / "c", root)
    for relative in saved:
        parts = relative.split("/") if isinstance(relative, str) else []
        # what begin_journal saves: the group's and an array's metadata, an array's last chunk
        allowed = (
            parts == ["zarr.json"]
            or (len(parts) == 2 and parts[0] in last_chunk and parts[1] == "zarr.json")
            or (
                len(parts) == 3
                and parts[0] in last_chunk
                and parts[1] == "c"
                and parts[2].isdigit()
            )
        )
        if not allowed:
            raise bad_journal(root, f"it lists {relative!r}, which no append saves")
        check_inside(root, root / relative, root)
        check_inside(root, root / JOURNAL / "files" / relative, root / JOURNAL / "files")
    return last_chunk, saved


def is_plain_name(name: Any) -> bool:
    """A single path component that is not special: no separators, not '.', '..' or hidden."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


def check_inside(root: Path, path: Path, container: Path) -> None:
    """Refuse ``path`` unless it lies in ``container`` with no symbolic link on the way."""
    base = container.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(base) or resolved != base / path.relative_to(container):
        raise bad_journal(root, f"{str(path)!r} lies outside the store or behind a link")


def bad_journal(root: Path, why: str) -> CohortexError:
    return CohortexError(
        f"The store at {str(root)!r} holds the journal of an unfinished append, but it is not "
        f"one cohortex wrote: {why}. Nothing was changed. If you trust this store, check it "
        f"with `cohortex verify` after removing {str(root / JOURNAL)!r}; otherwise discard it."
    )


def recover(root: Path) -> None:
    journal = root / JOURNAL
    if journal.exists() or journal.is_symlink():
        if journal.is_symlink():
            raise bad_journal(root, f"{JOURNAL} is a symbolic link")
        if (journal / "manifest.json").is_file():
            read_manifest(root, journal / "manifest.json")  # refuses a journal it did not write
            warnings.warn(
                f"The last append to {str(root)!r} did not finish; the store has been restored "
                "to its state before that append.",
                CohortexWarning,
                stacklevel=3,
            )
        rollback(root)


def copy_path(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)


def remove_path(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
