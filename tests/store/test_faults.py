"""The store under attack and under accident: each fault is injected, and the store either
refuses with a clear error or survives; nothing outside the store is touched, nothing is lost."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import cohortex
from cohortex import (
    CohortexError,
    CohortexWarning,
    create_cohort,
    de,
    list_results,
    open_cohort,
    read_result,
    verify,
    write_result,
)
from cohortex.app.cli import main
from cohortex.store import _writer

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


# ------------------------------------------------------------------ damaged chunks and metadata

CODECS = ["lz4", "zstd", "none"]


def _labelled(tmp_path, compressor="lz4", name="c.zarr"):
    rng = np.random.default_rng(0)
    x = rng.normal(5, 1, (40, 18)).astype(np.float32)
    samples = pd.DataFrame({"condition": ["a", "b"] * 20}, index=[f"S{i:02d}" for i in range(40)])
    path = tmp_path / name
    create_cohort(path, x, samples=samples, chunks=(8, 6), compressor=compressor)
    return path, x


def _damage(chunk: Path, fault: str, position: float = 0.5) -> None:
    if fault == "delete":
        chunk.unlink()
        return
    raw = bytearray(chunk.read_bytes())
    if fault == "truncate":
        chunk.write_bytes(bytes(raw[: len(raw) // 2]))
    else:  # one flipped bit
        raw[min(int(position * len(raw)), len(raw) - 1)] ^= 0x10
        chunk.write_bytes(bytes(raw))


@pytest.mark.parametrize("compressor", CODECS)
@pytest.mark.parametrize("fault", ["delete", "truncate", "flip"])
def test_a_damaged_expression_chunk_is_never_read_as_data(tmp_path, compressor, fault):
    path, _ = _labelled(tmp_path, compressor)
    _damage(path / "expression" / "c" / "1" / "1", fault)
    message = "lost 1 chunk of 'expression' \\('c/1/1'\\)" if fault == "delete" else "c/1/1"
    with pytest.raises(CohortexError, match=message):
        open_cohort(path)["expression"].values  # noqa: B018 (reading is the point)
    with pytest.raises(CohortexError, match=message):
        de.test(path, "condition")
    assert main(["de", str(path), "--groupby", "condition", "--top", "0"]) == 2
    assert list_results(path) == []  # nothing written from damaged data
    report = verify(path)
    assert not report.ok and "c/1/1" in " ".join(report.problems)
    assert main(["verify", str(path)]) == 1


def test_integer_indexing_reads_checked_chunks(tmp_path):
    """x[:, 5] and x[3] reach the store as integer keys: read, and still checked."""
    path, x = _labelled(tmp_path, "lz4")
    expression = open_cohort(path)["expression"]
    np.testing.assert_array_equal(expression[:, 5].values, x[:, 5])
    np.testing.assert_array_equal(expression[3].values, x[3])
    np.testing.assert_array_equal(expression[-1, -1].values, x[-1, -1])
    _damage(path / "expression" / "c" / "0" / "0", "delete")
    with pytest.raises(CohortexError, match="lost 1 chunk of 'expression'"):
        open_cohort(path)["expression"][:, 0].values  # noqa: B018


@pytest.mark.parametrize("compressor", CODECS)
def test_every_flipped_bit_is_caught(tmp_path, compressor):
    """A bit flipped anywhere in a chunk (21 places): the checksum catches every one."""
    path, x = _labelled(tmp_path, compressor)
    chunk = path / "expression" / "c" / "2" / "0"
    pristine = chunk.read_bytes()
    for position in np.linspace(0, 1, 21):
        chunk.write_bytes(pristine)
        _damage(chunk, "flip", position)
        with pytest.raises(CohortexError, match="damaged chunk of 'expression' \\(c/2/0\\)"):
            open_cohort(path)["expression"].values  # noqa: B018
    chunk.write_bytes(pristine)
    np.testing.assert_array_equal(open_cohort(path)["expression"].values, x)


@pytest.mark.parametrize("array", ["sample", "gene", "condition"])
@pytest.mark.parametrize("fault", ["delete", "flip"])
def test_damaged_ids_and_metadata_are_refused_on_open(tmp_path, array, fault):
    path, _ = _labelled(tmp_path)
    _damage(path / array / "c" / "0", fault)
    expected = (
        f"lost 1 chunk of '{array}'"
        if fault == "delete"
        else f"c/0 of '{array}'|'{array}'.*cannot be read"
    )
    with pytest.raises(CohortexError, match=expected):
        open_cohort(path)
    assert not verify(path).ok


@pytest.mark.parametrize("value", ["S00", ""])
def test_duplicate_or_empty_ids_in_a_store_are_refused(tmp_path, value):
    path, _ = _labelled(tmp_path)
    zarr.open_array(path / "sample", mode="r+")[3] = value  # a valid chunk, a wrong id
    expected = "more than once \\('S00'\\)" if value else "empty sample ids"
    with pytest.raises(CohortexError, match=expected):
        open_cohort(path)
    assert main(["verify", str(path)]) == 1


@pytest.mark.parametrize("version", ["abc", "1.5", 1.5, [2], True, 0, None])
def test_a_format_version_must_be_a_whole_number(tmp_path, version):
    path, _ = _labelled(tmp_path)
    metadata = path / "zarr.json"
    node = json.loads(metadata.read_text())
    node["attributes"]["cohortex_format"] = version
    metadata.write_text(json.dumps(node))
    expected = "no 'cohortex_format'" if version is None else "records the format version"
    with pytest.raises(CohortexError, match=expected):
        open_cohort(path)
    assert main(["info", str(path)]) == 2


@pytest.mark.parametrize("where", ["zarr.json", "expression/zarr.json", "sample/zarr.json"])
def test_corrupt_metadata_is_a_clear_error(tmp_path, where):
    path, _ = _labelled(tmp_path)
    (path / where).write_text("{ not json")
    with pytest.raises(CohortexError, match="unreadable|cannot be opened"):
        open_cohort(path)
    assert main(["de", str(path), "--groupby", "condition"]) == 2
    assert not verify(path).ok


def test_not_a_store_at_all(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("hello")
    for target, said in (
        (tmp_path / "folder", "no Zarr v3 group"),
        (tmp_path / "file.txt", "a file"),
        (tmp_path / "nothing", "nothing there"),
    ):
        with pytest.raises(CohortexError, match=said):
            open_cohort(target)
        assert main(["verify", str(target)]) == 1
        assert main(["info", str(target)]) == 2


def _as_format_1(path: Path) -> None:
    """Rewrite a store as cohortex wrote it before checksums: no crc32c, all-NaN tiles absent."""
    for metadata in path.rglob("zarr.json"):
        node = json.loads(metadata.read_text())
        if node.get("node_type") == "array":
            node["codecs"] = [c for c in node["codecs"] if c["name"] != "crc32c"]
            metadata.write_text(json.dumps(node))
            for chunk in (metadata.parent / "c").rglob("*"):
                if chunk.is_file():
                    chunk.write_bytes(chunk.read_bytes()[:-4])  # the crc32c trailer
        elif metadata.parent == path:
            node["attributes"]["cohortex_format"] = 1
            metadata.write_text(json.dumps(node))


def test_format_1_stores_stay_readable_and_verify_says_what_they_lack(tmp_path):
    path, x = _labelled(tmp_path)
    _as_format_1(path)
    np.testing.assert_array_equal(open_cohort(path)["expression"].values, x)
    report = verify(path)
    assert report.ok and report.format == 1
    assert "no checksums" in report.notes[0]
    (path / "expression" / "c" / "1" / "1").unlink()  # format 1: an absent tile reads as NaN
    assert np.isnan(open_cohort(path)["expression"].values[8:16, 6:12]).all()
    report = verify(path)
    assert report.ok and any("c/1/1" in note for note in report.notes)


# ------------------------------------------------------------------ concurrent writers, overwrite

_APPENDER = """
import sys, time, numpy as np, pandas as pd
import cohortex.store as st
path, first, count, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if pause:
    original = st.write_block
    def slow(*args):
        open(path + ".writing", "w").close()  # the append is under way
        time.sleep(pause)
        original(*args)
    st.write_block = slow
ids = [f"N{i:05d}" for i in range(first, first + count)]
x = np.full((count, 18), first, dtype=np.float32) + np.arange(count, dtype=np.float32)[:, None]
st.append_samples(path, x, pd.DataFrame({"condition": ["a"] * count}, index=ids))
"""


def _append_in_a_process(path: Path, first: int, count: int, pause: float = 0.0):
    return subprocess.Popen(
        [sys.executable, "-c", _APPENDER, str(path), str(first), str(count), str(pause)],
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_appends_keep_every_sample_exactly_once(tmp_path):
    path, x = _labelled(tmp_path)
    writers = [_append_in_a_process(path, 1000 * k, 300) for k in range(1, 5)]
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read()
    ds = open_cohort(path)
    ids = list(ds["sample"].values)
    assert len(ids) == 40 + 4 * 300 == len(set(ids))
    values = ds["expression"].values
    np.testing.assert_array_equal(values[:40], x)
    for k in range(1, 5):
        rows = [ids.index(f"N{i:05d}") for i in range(1000 * k, 1000 * k + 300)]
        np.testing.assert_array_equal(values[rows, 0], 1000 * k + np.arange(300))
    assert verify(path).ok


def test_opening_during_an_append_waits_instead_of_rolling_it_back(tmp_path):
    path, x = _labelled(tmp_path)
    writer = _append_in_a_process(path, 5000, 20, pause=1.0)
    marker = Path(str(path) + ".writing")
    deadline = time.monotonic() + 60
    while not marker.exists() and writer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), writer.stderr.read()
    ds = open_cohort(path)  # waits for the writer, sees its whole append
    assert writer.wait(timeout=60) == 0, writer.stderr.read()
    assert ds.sizes["sample"] == 60
    np.testing.assert_array_equal(ds["expression"].values[:40], x)
    assert verify(path).ok


@pytest.mark.parametrize("content", ["notes/thesis.tex", "file"])
def test_overwrite_replaces_only_a_cohort_store(tmp_path, content):
    project = tmp_path / "my_project"
    if content == "file":
        project.write_text("not a folder")
    else:
        (project / "notes").mkdir(parents=True)
        (project / "notes" / "thesis.tex").write_text("years of work")
    before = snapshot(tmp_path)
    with pytest.raises(CohortexError, match="is not a cohort store; overwrite replaces only"):
        create_cohort(project, np.ones((3, 2)), overwrite=True)
    np.savetxt(tmp_path / "x.tsv", np.ones((2, 3)), delimiter="\t")
    assert main(["import", str(tmp_path / "x.tsv"), str(project), "--overwrite"]) == 2
    assert {k: v for k, v in snapshot(tmp_path).items() if k != "x.tsv"} == before
    empty = tmp_path / "empty"
    empty.mkdir()
    create_cohort(empty, np.ones((3, 2)), overwrite=True)  # an empty folder may be filled


_DIES_MID_SWAP = """
import os, sys, numpy as np
import cohortex.store as st
import cohortex.store._writer as writer
writer.exchange = lambda a, b: False  # a file system without an atomic exchange
original = os.replace
def dying(src, dest):
    original(src, dest)
    if ".old-" in str(dest):
        os._exit(9)  # between moving the old store aside and moving the new one in
os.replace = dying
st.create_cohort(sys.argv[1], np.zeros((4, 3)), overwrite=True)
"""


def test_a_replacement_killed_between_its_renames_puts_the_old_store_back(tmp_path):
    path, x = _labelled(tmp_path)
    done = subprocess.run([sys.executable, "-c", _DIES_MID_SWAP, str(path)], capture_output=True)
    assert done.returncode == 9, done.stderr
    assert not path.exists() and list(tmp_path.glob(".c.zarr.old-*"))
    with pytest.warns(CohortexWarning, match="was being replaced .* put back"):
        ds = open_cohort(path)
    np.testing.assert_array_equal(ds["expression"].values, x)


def test_the_atomic_swap_replaces_a_store_in_one_step(tmp_path):
    path, _ = _labelled(tmp_path)
    calls = []
    original = _writer.exchange

    def spy(a, b):
        calls.append(original(a, b))
        return calls[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_writer, "exchange", spy)
        create_cohort(path, np.zeros((4, 3)), overwrite=True)
    assert calls == [True]  # Linux: renameat2(RENAME_EXCHANGE)
    np.testing.assert_array_equal(open_cohort(path)["expression"].values, np.zeros((4, 3)))
    assert not list(tmp_path.glob(".c.zarr.*"))


def test_leftovers_of_killed_writes_are_removed_but_not_a_live_writers(tmp_path):
    import fcntl

    dead = tmp_path / ".c.zarr.tmp-dead"
    (dead / "expression").mkdir(parents=True)
    (dead / ".cohortex.lock").write_text("")
    live = tmp_path / ".c.zarr.tmp-live"
    live.mkdir()
    with open(live / ".cohortex.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another process at work
        _labelled(tmp_path)
        assert not dead.exists() and live.exists()
    write_result(tmp_path / "c.zarr", "de", xr.Dataset({"a": ("g", [1.0])}))
    leftover = tmp_path / "c.zarr" / "results" / ".pca.tmp-123"
    (leftover / "scores").mkdir(parents=True)  # a result write killed half-way
    write_result(tmp_path / "c.zarr", "de", xr.Dataset({"a": ("g", [2.0])}), overwrite=True)
    assert not leftover.exists()


# ------------------------------------------------------------------ bad files: clean errors

GENES_BY_SAMPLES = "gene\tS1\tS2\tS3\nG1\t1\t2\t3\nG2\t4\t5\t6\n"


def _bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (input file, what the error must say)."""
    folder.mkdir(exist_ok=True)
    cases: dict[str, tuple[Path, str]] = {}

    def case(name: str, filename: str, content: bytes | None, said: str) -> None:
        path = folder / filename
        if content is not None:
            path.write_bytes(content)
        cases[name] = (path, said)

    case("latin-1 text", "latin1.tsv", "gene\tS1\nGén\t1\n".encode("latin-1"), "not UTF-8")
    case("binary", "binary.tsv", bytes(range(256)) * 4, "not UTF-8")
    case("truncated gzip", "cut.tsv.gz", gzip.compress(GENES_BY_SAMPLES.encode())[:30], "gzip")
    case("fake gzip", "fake.tsv.gz", b"plain text, not gzip", "gzip")
    case("unbalanced quote", "quote.tsv", b'gene\tS1\tS2\n"G1\t1\t2\nG2\t3\t4\n', "quoted field")
    case("quoted id with tab", "tab.tsv", b'gene\tS1\tS2\n"G\t1"\t2\nG2\t3\t4\n', "has 2 fields")
    case(
        "quoted id with comma (CSV)", "comma.csv", b'gene,S1,S2\n"G,1",2\nG2,3,4\n', "has 2 fields"
    )
    empty = folder / "empty_folder"
    empty.mkdir(exist_ok=True)
    cases["an empty folder"] = (empty, "not a readable AnnData Zarr folder")
    case("text as .h5ad", "fake.h5ad", b"not HDF5 at all", "not a readable .h5ad")
    case("truncated .h5ad", "cut.h5ad", b"\x89HDF\r\n\x1a\n" + bytes(100), "not a readable .h5ad")
    buffer = io.BytesIO()
    np.save(buffer, np.array(["a", None], dtype=object), allow_pickle=True)
    case("object .npy", "object.npy", buffer.getvalue(), "not a readable NumPy matrix")
    buffer = io.BytesIO()
    np.save(buffer, np.ones((50, 40)))
    case("truncated .npy", "cut.npy", buffer.getvalue()[:500], "not a readable NumPy matrix")
    return cases


@pytest.mark.parametrize(
    "name",
    [
        "latin-1 text",
        "binary",
        "truncated gzip",
        "fake gzip",
        "unbalanced quote",
        "quoted id with tab",
        "quoted id with comma (CSV)",
        "an empty folder",
        "text as .h5ad",
        "truncated .h5ad",
        "object .npy",
        "truncated .npy",
    ],
)
def test_a_bad_input_file_is_a_clear_error_and_writes_nothing(tmp_path, capsys, name):
    source, said = _bad_inputs(tmp_path / "inputs")[name]
    dest = tmp_path / "out.zarr"
    assert main(["import", str(source), str(dest)]) == 2
    assert said in capsys.readouterr().err
    assert not dest.exists() and not list(tmp_path.glob(".out.zarr*"))


def test_a_gene_id_starting_with_bang_is_data_in_a_plain_table(tmp_path):
    table = tmp_path / "plain.tsv"
    table.write_text("gene\tS1\tS2\n!G1\t1\t2\nG2\t3\t4\n")
    ds = cohortex.io.import_file(table, tmp_path / "c.zarr")
    assert list(ds["gene"].values) == ["!G1", "G2"]
    geo = tmp_path / "GSE1_series_matrix.txt"
    geo.write_text(
        "!Series_title\t'x'\n!series_matrix_table_begin\nID_REF\tS1\tS2\nG1\t1\t2\n"
        "!Sample_oops\t1\t2\nG2\t3\t4\n!series_matrix_table_end\n"
    )
    with pytest.raises(CohortexError, match="starts with '!' inside the table"):
        cohortex.io.import_file(geo, tmp_path / "geo.zarr")


@pytest.mark.parametrize("content", ["", "sample\n", "sample\nS1\nS2\n"])
def test_an_empty_or_idless_metadata_file_is_a_clear_error(tmp_path, capsys, content):
    (tmp_path / "m.tsv").write_text(GENES_BY_SAMPLES)
    (tmp_path / "meta.tsv").write_text(content)
    command = ["import", str(tmp_path / "m.tsv"), str(tmp_path / "c.zarr")]
    assert main([*command, "--samples", str(tmp_path / "meta.tsv")]) == 2
    assert "metadata file" in capsys.readouterr().err
    assert not (tmp_path / "c.zarr").exists()


def test_negative_counts_are_refused(tmp_path):
    with pytest.raises(CohortexError, match="scale='counts' needs values of at least 0; found -2"):
        create_cohort(tmp_path / "c.zarr", np.array([[1.0, -2.0], [3.0, 4.0]]), scale="counts")
    assert not (tmp_path / "c.zarr").exists()


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device", "chunk")

    original = zarr.Array.__setitem__
    monkeypatch.setattr(zarr.Array, "__setitem__", lambda self, key, value: full())
    with pytest.raises(CohortexError, match="The disk refused .*: No space left on device"):
        create_cohort(tmp_path / "c.zarr", np.ones((4, 3)))
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(zarr.Array, "__setitem__", original)
    path, _ = _labelled(tmp_path)
    monkeypatch.setattr(xr.Dataset, "to_zarr", lambda *args, **kwargs: full())
    with pytest.raises(CohortexError, match="The disk refused writing the result 'de'"):
        write_result(path, "de", xr.Dataset({"a": ("g", [1.0])}))
    assert list_results(path) == []


@pytest.fixture
def analysed(tmp_path):
    path, _ = _labelled(tmp_path, name="a.zarr")
    return path


@pytest.mark.parametrize(
    "arguments, said",
    [
        (
            ["de", "{store}", "--groupby", "condition", "--out", "{tmp}/missing/x.tsv"],
            "does not exist",
        ),
        (["de", "{store}", "--groupby", "condition", "--out", "{tmp}/x.xlsx"], "must end in"),
        (["de", "{store}", "--groupby", "condition", "--name", "zarr.json"], "'name' parameter"),
        (["pca", "{store}", "--n-components", "2", "--plot", "{tmp}/no/p.png"], "does not exist"),
        (["pca", "{store}", "--n-components", "2", "--plot", "{tmp}/p.docx"], "must end in"),
        (["tsne", "{store}", "--perplexity", "0"], "--perplexity: expected a positive number"),
        (["tsne", "{store}", "--perplexity", "-5"], "--perplexity: expected a positive number"),
        (["tsne", "{store}", "--perplexity", "nan"], "--perplexity: expected a positive number"),
        (["tsne", "{store}", "--n-iter", "0"], "--n-iter: expected a positive whole number"),
        (["ae", "train", "{store}", "--batch-size", "0"], "'batch_size' parameter"),
        (["ae", "train", "{store}", "--lr", "-1"], "'lr' parameter"),
        (["ae", "train", "{store}", "--n-top-genes", "0"], "'n_top_genes' parameter"),
        (["ae", "train", "{store}", "--max-epochs", "0"], "'max_epochs' parameter"),
        (["export", "{store}", "{tmp}/a_file/x.tsv"], "a_file"),
    ],
)
def test_bad_options_are_clear_errors_before_any_work(analysed, tmp_path, capsys, arguments, said):
    (tmp_path / "a_file").write_text("a file where a folder is expected")
    filled = [a.format(store=analysed, tmp=tmp_path) for a in arguments]
    assert main(filled) == 2
    assert said in capsys.readouterr().err
    assert list_results(analysed) == []
    assert not list(tmp_path.glob("*.pt"))


def test_ae_modules_options_are_checked(analysed, tmp_path, capsys):
    model = tmp_path / "m.pt"
    common = ["--model", str(model)]
    assert (
        main(["ae", "train", str(analysed), "--hidden", "4,2", "--max-epochs", "1", *common]) == 0
    )
    for extra, said in (
        (["--groupby", "nothing"], "'groupby' parameter must name a sample variable"),
        (["--groupby", "condition", "--layer", "0"], "'layer' parameter must be between 1 and 2"),
        (["--groupby", "condition", "--q", "5"], "'q' parameter must be in (0, 1]"),
        (["--groupby", "condition", "--module-size", "18"], "--module-size must be from 1 to 17"),
    ):
        capsys.readouterr()
        assert main(["ae", "modules", str(analysed), *extra, *common]) == 2
        assert said in capsys.readouterr().err


def test_tsne_after_an_append_recomputes_a_stale_pca(analysed, capsys):
    assert main(["pca", str(analysed), "--n-components", "3"]) == 0
    extra = pd.DataFrame({"condition": ["a", "b"] * 10}, index=[f"T{i}" for i in range(20)])
    cohortex.append_samples(analysed, np.ones((20, 18), dtype=np.float32), extra)
    assert main(["tsne", str(analysed), "--perplexity", "5", "--n-iter", "250"]) == 0
    assert "does not cover the store's 60 samples" in capsys.readouterr().out
    assert read_result(analysed, "tsne").sizes["sample"] == 60


@pytest.mark.parametrize(
    "options, said",
    [
        ({"perplexity": 0}, "'perplexity' parameter"),
        ({"perplexity": float("nan")}, "'perplexity' parameter"),
        ({"n_iter": 0}, "'n_iter' parameter"),
        ({"n_components": 4}, "'n_components' parameter"),
    ],
)
def test_tsne_refuses_meaningless_options(options, said):
    with pytest.raises(CohortexError, match=said):
        cohortex.tsne(np.random.default_rng(0).normal(size=(100, 5)), **options)


def test_a_store_with_links_is_refused_for_reading_and_writing(store, victim):
    """Zarr writes a chunk's temporary file into its folder: a linked folder would take an
    append's chunks outside the store."""
    chunk_row = store / "expression" / "c" / "2"
    for chunk in chunk_row.iterdir():
        (victim / chunk.name).write_bytes(chunk.read_bytes())
    shutil.rmtree(chunk_row)
    chunk_row.symlink_to(victim, target_is_directory=True)
    outside = snapshot(victim)
    with pytest.raises(CohortexError, match="holds a symbolic link, 'expression/c/2'"):
        open_cohort(store)
    x = np.ones((3, 17), dtype=np.float32)
    samples = pd.DataFrame(
        {"condition": ["a"] * 3, "age": [1] * 3, "weight": [1.0] * 3, "smoker": [True] * 3},
        index=["N1", "N2", "N3"],
    )
    with pytest.raises(CohortexError, match="symbolic link"):
        cohortex.append_samples(store, x, samples)
    with pytest.raises(CohortexError, match="symbolic link"):
        write_result(store, "de", xr.Dataset({"a": ("g", [1.0])}))
    report = verify(store)
    assert not report.ok and "symbolic link" in report.problems[0]
    assert snapshot(victim) == outside


def test_threads_of_one_process_append_one_at_a_time(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path, _ = _labelled(tmp_path)

    def append(k: int) -> None:
        ids = [f"T{k}-{i}" for i in range(50)]
        meta = pd.DataFrame({"condition": ["a"] * 50}, index=ids)
        cohortex.append_samples(path, np.full((50, 18), k, dtype=np.float32), meta)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(append, range(4)))
    ds = open_cohort(path)
    assert ds.sizes["sample"] == 40 + 200 == len(set(ds["sample"].values))
    assert verify(path).ok
