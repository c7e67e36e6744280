"""The cohort store: round trips, schema checks, all-or-nothing writes, results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cohortex.store as store_module
from cohortex import (
    CohortexError,
    CohortexWarning,
    append_samples,
    create_cohort,
    list_results,
    open_cohort,
    read_result,
    write_result,
)
from cohortex.store import _writer

from conftest import snapshot


def test_round_trip_numpy_with_metadata(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    ds = create_cohort(tmp_path / "c.zarr", x, samples=samples, genes=genes, chunks=(5, 4))
    assert ds.sizes == {"sample": 23, "gene": 17}
    assert isinstance(ds["expression"].data, da.Array)
    assert ds["expression"].data.chunksize == (5, 4)
    np.testing.assert_array_equal(ds["expression"].values, x)  # NaN included
    assert list(ds["sample"].values) == list(samples.index)
    assert list(ds["gene"].values) == list(genes.index)
    assert ds.attrs["scale"] == "log2"
    assert ds.attrs["cohortex_format"] == store_module.FORMAT_VERSION
    # metadata come back in memory with their types; a missing label is ""
    assert not isinstance(ds["condition"].data, da.Array)
    assert ds["condition"].values[5] == ""
    assert list(ds["condition"].values[:2]) == ["tumor", "normal"]
    assert ds["age"].dtype == np.int64
    np.testing.assert_array_equal(ds["age"].values, samples["age"].to_numpy())
    np.testing.assert_allclose(ds["weight"].values, samples["weight"].to_numpy())
    assert ds["smoker"].dtype == bool
    np.testing.assert_array_equal(ds["symbol"].values, genes["symbol"].to_numpy())


def test_dataframe_input_aligns_metadata_by_id(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    frame = pd.DataFrame(x, index=samples.index, columns=genes.index)
    shuffled = samples.iloc[::-1]
    ds = create_cohort(tmp_path / "c.zarr", frame, samples=shuffled)
    np.testing.assert_array_equal(ds["expression"].values, x)
    np.testing.assert_array_equal(ds["age"].values, samples["age"].to_numpy())


def test_dask_input_and_default_ids(tmp_path):
    x = da.random.default_rng(1).normal(size=(30, 12), chunks=(7, 5)).astype(np.float32)
    ds = create_cohort(tmp_path / "c.zarr", x, scale="linear")
    np.testing.assert_array_equal(ds["expression"].values, x.compute())
    assert ds["sample"].values[0] == "S1" and ds["gene"].values[-1] == "G12"
    assert ds.attrs["scale"] == "linear"


def test_dataset_input_round_trips_a_cohort(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    first = create_cohort(tmp_path / "a.zarr", x, samples=samples, genes=genes)
    subset = first.isel(sample=slice(0, 10))
    second = create_cohort(tmp_path / "b.zarr", subset)
    np.testing.assert_array_equal(second["expression"].values, x[:10])
    np.testing.assert_array_equal(second["age"].values, samples["age"].to_numpy()[:10])
    np.testing.assert_array_equal(second["symbol"].values, genes["symbol"].to_numpy())


@pytest.mark.parametrize("compressor", ["lz4", "zstd", "none"])
def test_compressors(tmp_path, small_matrix, compressor):
    x, _, _ = small_matrix
    ds = create_cohort(tmp_path / "c.zarr", x, compressor=compressor)
    np.testing.assert_array_equal(ds["expression"].values, x)
    codecs = json.loads((tmp_path / "c.zarr" / "expression" / "zarr.json").read_text())["codecs"]
    names = [c["name"] for c in codecs]
    expected = {"lz4": "blosc", "zstd": "zstd", "none": None}[compressor]
    assert names[-1] == "crc32c"  # the checksum of what the compressor wrote
    assert names[-2] == (expected or "bytes")


def test_overwrite(tmp_path, small_matrix):
    x, _, _ = small_matrix
    path = tmp_path / "c.zarr"
    create_cohort(path, x)
    with pytest.raises(CohortexError, match="already exists; pass overwrite=True"):
        create_cohort(path, x + 1)
    ds = create_cohort(path, x[:5] + 1, overwrite=True)
    np.testing.assert_array_equal(ds["expression"].values, x[:5] + 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"scale": "log10"},
            r"'scale' parameter must be one of 'log2', 'log1p', 'counts', "
            r"'linear'; got 'log10'",
        ),
        ({"chunks": (0, 5)}, "Chunk sizes must be positive"),
        ({"compressor": "gzip"}, "'compressor' parameter must be one of lz4, zstd, none"),
    ],
)
def test_bad_options(tmp_path, small_matrix, kwargs, message):
    x, _, _ = small_matrix
    with pytest.raises(CohortexError, match=message):
        create_cohort(tmp_path / "c.zarr", x, **kwargs)
    assert not (tmp_path / "c.zarr").exists()


def test_schema_errors(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    path = tmp_path / "c.zarr"
    with pytest.raises(CohortexError, match=r"must be 2-D \(samples × genes\); got 1"):
        create_cohort(path, x[0])
    with pytest.raises(CohortexError, match="must be numeric; got an array of dtype <U1"):
        create_cohort(path, np.array([["a", "b"], ["c", "d"]]))
    frame = pd.DataFrame({"g1": [1.0, 2.0], "g2": ["x", "y"]})
    with pytest.raises(CohortexError, match="these columns are not: 'g2'"):
        create_cohort(path, frame)
    with pytest.raises(
        CohortexError, match="sample metadata has 22 rows; the expression matrix has 23 samples"
    ):
        create_cohort(path, x, samples=samples.iloc[:-1])
    dup = samples.copy()
    dup.index = ["P00"] * 2 + list(samples.index[2:])
    with pytest.raises(
        CohortexError, match="Sample ids must be unique; 1 ids occur more than once: 'P00'"
    ):
        create_cohort(path, x, samples=dup)
    bad_name = samples.rename(columns={"age": "expression"})
    with pytest.raises(CohortexError, match="'expression' cannot name a sample variable"):
        create_cohort(path, x, samples=bad_name)
    frame = pd.DataFrame(x, index=samples.index, columns=genes.index)
    other = samples.rename(index={"P07": "Q07"})
    with pytest.raises(
        CohortexError,
        match=r"1 metadata rows match no sample \('Q07'\); "
        r"1 samples have no metadata row \('P07'\)",
    ):
        create_cohort(path, frame, samples=other)
    y = x.copy()
    y[20, 3] = np.inf
    with pytest.raises(
        CohortexError,
        match=r"finite or NaN, within float32's range \(±3.4e38\); found 1 values that are "
        r"not in this block, the first \(inf\) at sample 20, gene 'G4'",
    ):
        create_cohort(path, y, chunks=(8, 8))
    y = y.astype(np.float64)
    y[20, 3] = -1e39  # finite, but not as float32
    with pytest.raises(CohortexError, match=r"the first \(-1e\+39\) at sample 20, gene 'G4'"):
        create_cohort(path, y, chunks=(8, 8))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind


def test_counts_under_log2_scale_warn(tmp_path):
    counts = np.random.default_rng(0).poisson(2000, (6, 4)).astype(np.float32)
    with pytest.warns(CohortexWarning, match="pass scale='counts'"):
        create_cohort(tmp_path / "c.zarr", counts)
    create_cohort(tmp_path / "d.zarr", counts, scale="counts")  # no warning (warnings are errors)


def test_open_refuses_other_stores(tmp_path, small_matrix):
    x, _, _ = small_matrix
    with pytest.raises(CohortexError, match="No cohort store at"):
        open_cohort(tmp_path / "missing.zarr")
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(
        tmp_path / "plain.zarr", zarr_format=3, consolidated=False
    )
    with pytest.raises(CohortexError, match="not a cohort store \\(no 'cohortex_format'"):
        open_cohort(tmp_path / "plain.zarr")
    path = tmp_path / "c.zarr"
    create_cohort(path, x)
    meta_file = path / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["attributes"]["cohortex_format"] = store_module.FORMAT_VERSION + 1
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(
        CohortexError,
        match="was written in cohortex format 3, newer than this "
        "cohortex .* can read \\(format 2\\); upgrade cohortex",
    ):
        open_cohort(path)


def test_open_with_dask_chunks(tmp_path, small_matrix):
    x, _, _ = small_matrix
    create_cohort(tmp_path / "c.zarr", x, chunks=(4, 4))
    ds = open_cohort(tmp_path / "c.zarr", chunks={"sample": -1, "gene": 8})
    assert ds["expression"].data.chunksize == (23, 8)


def test_open_keeping_some_genes_reads_each_tile_in_place(tmp_path, small_matrix):
    """open_cohort(genes=keep): the same cohort as isel(gene=keep), its expression selected
    tile by tile (each output chunk one stored tile's kept genes, none when a tile keeps
    none), the gene variables with it."""
    x, samples, genes = small_matrix
    create_cohort(tmp_path / "c.zarr", x, samples=samples, genes=genes, chunks=(5, 4))
    keep = np.zeros(17, dtype=bool)
    keep[[0, 2, 3, 9, 10, 11, 16]] = True  # tiles of 4 genes: 3, 0, 3, 0, 1 kept
    kept = open_cohort(tmp_path / "c.zarr", genes=keep)
    expected = open_cohort(tmp_path / "c.zarr").isel(gene=keep)
    assert kept["expression"].data.chunks[1] == (3, 0, 3, 0, 1)
    np.testing.assert_array_equal(kept["expression"].values, expected["expression"].values)
    xr.testing.assert_identical(kept.drop_vars("expression"), expected.drop_vars("expression"))
    as_labels = xr.DataArray(keep, dims="gene")  # filter_by_expr's keep is a DataArray
    assert open_cohort(tmp_path / "c.zarr", genes=as_labels).sizes["gene"] == 7
    with pytest.raises(CohortexError, match="'genes' must be 17 booleans"):
        open_cohort(tmp_path / "c.zarr", genes=[0, 2])


# -------------------------------------------------------------------------------- append


def test_append_grows_the_sample_axis(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    path = tmp_path / "c.zarr"
    create_cohort(path, x[:15], samples=samples.iloc[:15], genes=genes, chunks=(4, 5))
    # a DataFrame in another gene order is matched by gene id
    frame = pd.DataFrame(x[15:], index=samples.index[15:], columns=genes.index)[genes.index[::-1]]
    ds = append_samples(path, frame, samples.iloc[15:])
    np.testing.assert_array_equal(ds["expression"].values, x)
    assert list(ds["sample"].values) == list(samples.index)
    np.testing.assert_array_equal(ds["age"].values, samples["age"].to_numpy())
    assert ds["condition"].values[5] == ""
    np.testing.assert_array_equal(ds["symbol"].values, genes["symbol"].to_numpy())


def test_append_without_ids_continues_numbering(tmp_path):
    path = tmp_path / "c.zarr"
    create_cohort(path, np.ones((3, 2)))
    ds = append_samples(path, np.zeros((2, 2)))
    assert list(ds["sample"].values) == ["S1", "S2", "S3", "S4", "S5"]


def test_append_errors(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    path = tmp_path / "c.zarr"
    create_cohort(path, x[:15], samples=samples.iloc[:15], genes=genes)
    before = snapshot(path)
    new = samples.iloc[15:]
    with pytest.raises(CohortexError, match="has 16 genes; the store has 17"):
        append_samples(path, x[15:, :16], new)
    with pytest.raises(CohortexError, match="needs a 'samples' DataFrame with them"):
        append_samples(path, x[15:])
    with pytest.raises(
        CohortexError,
        match=r"1 missing columns \('weight'\); 1 unknown columns "
        r"\('height'\)\. Store sample variables: age, condition, smoker, weight",
    ):
        append_samples(path, x[15:], new.rename(columns={"weight": "height"}))
    with pytest.raises(CohortexError, match="8 appended ids are already in the store: 'P00'"):
        append_samples(path, x[15:], samples.iloc[:8])
    as_text = new.assign(age=new["age"].astype(str) + " years")
    with pytest.raises(
        CohortexError, match="'age' holds number values; the appended metadata has text values"
    ):
        append_samples(path, x[15:], as_text)
    frame = pd.DataFrame(x[15:], index=new.index, columns=[*genes.index[:-1], "OTHER"])
    with pytest.raises(CohortexError, match=r"1 missing \('ENSG00016'\); 1 unknown \('OTHER'\)"):
        append_samples(path, frame, new)
    assert snapshot(path) == before


class _FailAfter:
    """Wraps the block writer so that call number ``n`` raises ``error``."""

    def __init__(self, n, error):
        self.n, self.error, self.calls = n, error, 0
        self.original = _writer.write_block

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.n:
            raise self.error
        self.original(*args)


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_create_leaves_nothing(tmp_path, small_matrix, monkeypatch, error):
    x, samples, _ = small_matrix
    monkeypatch.setattr(_writer, "write_block", _FailAfter(3, error))  # CohortWriter's
    with pytest.raises(type(error)):
        create_cohort(tmp_path / "c.zarr", x, samples=samples, chunks=(4, 17))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_append_restores_the_store(tmp_path, small_matrix, monkeypatch, error):
    x, samples, genes = small_matrix
    path = tmp_path / "c.zarr"
    # 10 samples in tiles of 4: the append must rewrite the half-full last tile, then add more
    create_cohort(path, x[:10], samples=samples.iloc[:10], genes=genes, chunks=(4, 6))
    before = snapshot(path)
    monkeypatch.setattr(store_module, "write_block", _FailAfter(3, error))
    with pytest.raises(type(error)):
        append_samples(path, x[10:], samples.iloc[10:])
    assert snapshot(path) == before
    ds = open_cohort(path)
    np.testing.assert_array_equal(ds["expression"].values, x[:10])
    # the same append then succeeds
    monkeypatch.undo()
    ds = append_samples(path, x[10:], samples.iloc[10:])
    np.testing.assert_array_equal(ds["expression"].values, x)


def test_killed_append_is_rolled_back_on_open(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    path = tmp_path / "c.zarr"
    create_cohort(path, x[:10], samples=samples.iloc[:10], genes=genes, chunks=(4, 6))
    np.save(tmp_path / "x.npy", x[10:])
    samples.iloc[10:].to_pickle(tmp_path / "meta.pkl")
    before = snapshot(path)
    script = textwrap.dedent(
        f"""
        import os, numpy as np, pandas as pd
        import cohortex.store as st
        original, calls = st.write_block, [0]
        def dying(*args):
            calls[0] += 1
            if calls[0] == 3:
                os._exit(17)  # the process dies mid-append: no exception handler runs
            original(*args)
        st.write_block = dying
        st.append_samples({str(path)!r}, np.load({str(tmp_path / "x.npy")!r}),
                          pd.read_pickle({str(tmp_path / "meta.pkl")!r}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 17, done.stderr
    assert (path / ".cohortex-journal" / "manifest.json").is_file()
    assert snapshot(path) != before
    with pytest.warns(CohortexWarning, match="did not finish; the store has been restored"):
        ds = open_cohort(path)
    assert snapshot(path) == before
    np.testing.assert_array_equal(ds["expression"].values, x[:10])


def test_interrupts_are_deferred_to_block_boundaries():
    finished = []
    with pytest.raises(KeyboardInterrupt), _writer.interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append(True)  # still runs: the interrupt waits for the block to end
    assert finished == [True]


# ------------------------------------------------------------------------------- results


def test_results_round_trip(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    path = tmp_path / "c.zarr"
    create_cohort(path, x, samples=samples, genes=genes)
    result = xr.Dataset(
        {
            "statistic": ("gene", np.linspace(-3, 3, 17)),
            "pvalue": ("gene", np.linspace(0, 1, 17)),
            "label": ("gene", np.array(["up"] * 9 + ["down"] * 8)),
        },
        coords={"gene": genes.index.to_numpy()},
        attrs={"test": "welch", "groupby": "condition"},
    )
    write_result(path, "welch", result)
    assert list_results(path) == ["welch"]
    back = read_result(path, "welch")
    xr.testing.assert_equal(back, result.assign(label=result["label"].astype(object)))
    assert back.attrs == result.attrs
    with pytest.raises(CohortexError, match="A result named 'welch' already exists"):
        write_result(path, "welch", result)
    write_result(path, "welch", result.assign(statistic=result.statistic * 2), overwrite=True)
    np.testing.assert_allclose(read_result(path, "welch")["statistic"], result.statistic * 2)
    with pytest.raises(CohortexError, match="No result named 'pca'.*Results stored: welch"):
        read_result(path, "pca")
    with pytest.raises(CohortexError, match="must be 1 to 128 letters, digits"):
        write_result(path, "../escape", result)
    # results do not disturb the cohort itself
    np.testing.assert_array_equal(open_cohort(path)["expression"].values, x)


def test_results_keep_the_order_of_their_variables(tmp_path, small_matrix):
    """A Zarr group lists its arrays in the file system's order; a result comes back in the
    order it was written, and a store's attribute that is not a list of names changes
    nothing."""
    import json

    x, samples, genes = small_matrix
    path = tmp_path / "c.zarr"
    create_cohort(path, x, samples=samples, genes=genes)
    names = ["zeta", "statistic", "alpha", "pvalue", "mid", "padj", "b", "log2fc", "a"]
    result = xr.Dataset({n: ("gene", np.arange(17.0) + i) for i, n in enumerate(names)})
    write_result(path, "r", result.assign_attrs(test="welch"))
    back = read_result(path, "r")
    assert list(back.data_vars) == names and back.attrs == {"test": "welch"}
    meta = path / "results" / "r" / "zarr.json"
    stored = json.loads(meta.read_text())
    stored["attributes"]["cohortex_variable_order"] = [{"x": 1}, "pvalue", "gone", 3]
    meta.write_text(json.dumps(stored))
    back = read_result(path, "r")
    assert next(iter(back.data_vars)) == "pvalue" and sorted(back.data_vars) == sorted(names)
