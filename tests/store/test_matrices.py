"""A store's sample × gene matrices besides the expression (tximport's per-sample lengths):
written, opened lazily, selected, appended to, checked and refused as the expression is."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import (
    CohortexError,
    append_samples,
    create_cohort,
    de,
    open_cohort,
    verify,
)
from cohortex.app.cli import main
from cohortex.store import describe

from conftest import snapshot

SAMPLES = [f"S{i:02d}" for i in range(10)]
GENES = [f"G{j}" for j in range(7)]


def _frames(seed: int = 0, samples=SAMPLES) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    counts = pd.DataFrame(
        rng.poisson(20, (len(samples), len(GENES))).astype(float), index=samples, columns=GENES
    )
    # lengths with more digits than float32 keeps: the store must keep every one
    lengths = pd.DataFrame(
        rng.uniform(400, 4000, counts.shape) + 1e-9, index=samples, columns=GENES
    )
    return counts, lengths


def _store(tmp_path: Path, name: str = "c.zarr") -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    counts, lengths = _frames()
    path = tmp_path / name
    samples = pd.DataFrame({"condition": ["a", "b"] * 5}, index=SAMPLES)
    create_cohort(
        path,
        counts,
        samples=samples,
        scale="counts",
        chunks=(4, 3),
        # rows and columns shuffled: matched by id
        matrices={"length": lengths.iloc[::-1, [3, 1, 0, 2, 6, 5, 4]]},
    )
    return path, counts, lengths


def test_a_matrix_is_stored_beside_the_expression_and_read_lazily(tmp_path):
    path, counts, lengths = _store(tmp_path)
    ds = open_cohort(path)
    assert ds["length"].dims == ("sample", "gene") and ds["length"].dtype == np.float64
    assert ds["length"].chunks == ds["expression"].chunks == ((4, 4, 2), (3, 3, 1))
    np.testing.assert_array_equal(ds["length"].values, lengths.to_numpy())  # bit for bit
    np.testing.assert_array_equal(ds["expression"].values, counts.to_numpy())
    assert list(ds["condition"].values) == ["a", "b"] * 5
    summary = describe(path)
    assert summary["matrices"] == {"length": {"dtype": "float64"}}
    assert "length" not in summary["sample_variables"] | summary["gene_variables"]
    report = verify(path)
    assert report.ok and report.chunks_read > 2 * 9  # both matrices' 9 tiles, and the rest
    keep = np.array([True, False, True, True, False, False, True])
    kept = open_cohort(path, genes=keep)
    np.testing.assert_array_equal(kept["length"].values, lengths.to_numpy()[:, keep])
    np.testing.assert_array_equal(kept["expression"].values, counts.to_numpy()[:, keep])


def test_a_datasets_matrices_and_attributes_are_stored(tmp_path):
    """create_cohort(Dataset) keeps every sample × gene variable and its plain attrs (what
    decides whether deseq takes the lengths), not only the expression."""
    counts, lengths = _frames()
    ds = xr.Dataset(
        {
            "expression": (("gene", "sample"), counts.to_numpy().T),
            "length": (("sample", "gene"), lengths.to_numpy()),
            "condition": ("sample", ["a", "b"] * 5),
        },
        coords={"sample": SAMPLES, "gene": GENES},
        attrs={"scale": "counts", "counts_from_abundance": "no", "dropped": 2, "kept": [1, 2]},
    )
    stored = create_cohort(tmp_path / "d.zarr", ds)
    np.testing.assert_array_equal(stored["length"].values, lengths.to_numpy())
    assert stored.attrs["counts_from_abundance"] == "no" and stored.attrs["dropped"] == 2
    assert "kept" not in stored.attrs  # only plain values are attributes of a store
    options = {"fit_type": "mean", "dispersion_prior_variance": 0.25}
    from_store = de.deseq(tmp_path / "d.zarr", "~ condition", **options)
    in_memory = de.deseq(ds, "~ condition", **options)
    assert from_store.attrs["normalization_factors"] == "lengths"
    np.testing.assert_allclose(from_store["pvalue"], in_memory["pvalue"], rtol=1e-12)
    ds.attrs["counts_from_abundance"] = "lengthScaledTPM"  # such counts take no lengths
    made = create_cohort(tmp_path / "m.zarr", ds)
    assert de.deseq(made, "~ condition", **options).attrs["normalization_factors"] == (
        "size factors"
    )


def test_appended_samples_bring_their_matrices(tmp_path):
    path, counts, lengths = _store(tmp_path)
    new = [f"N{i}" for i in range(6)]  # over two tiles of 4 rows: a boundary tile grows
    more_counts, more_lengths = _frames(1, new)
    meta = pd.DataFrame({"condition": ["a", "b", "a", "b", "a", "b"]}, index=new)
    before = snapshot(path)
    with pytest.raises(CohortexError, match=r"exactly the store's other matrices \(length\)"):
        append_samples(path, more_counts, meta)
    with pytest.raises(CohortexError, match="1 unknown \\('abundance'\\)"):
        append_samples(
            path, more_counts, meta, matrices={"length": more_lengths, "abundance": more_lengths}
        )
    with pytest.raises(CohortexError, match="samples of the matrix 'length' do not match"):
        append_samples(path, more_counts, meta, matrices={"length": lengths})
    assert snapshot(path) == before
    grown = append_samples(path, more_counts, meta, matrices={"length": more_lengths.iloc[:, ::-1]})
    np.testing.assert_array_equal(
        grown["length"].values, np.vstack([lengths.to_numpy(), more_lengths.to_numpy()])
    )
    np.testing.assert_array_equal(
        grown["expression"].values, np.vstack([counts.to_numpy(), more_counts.to_numpy()])
    )
    assert verify(path).ok


def test_an_append_that_fails_in_a_matrix_leaves_the_store_as_it_was(tmp_path):
    path, _, _ = _store(tmp_path)
    new = [f"N{i}" for i in range(6)]
    more_counts, more_lengths = _frames(1, new)
    more_lengths.iloc[5, 2] = np.inf  # in the second block: the first is already written
    meta = pd.DataFrame({"condition": ["a", "b"] * 3}, index=new)
    before = snapshot(path)
    with pytest.raises(CohortexError, match="'length' must be finite or NaN; found inf"):
        append_samples(path, more_counts, meta, matrices={"length": more_lengths})
    assert snapshot(path) == before
    assert open_cohort(path).sizes["sample"] == 10 and verify(path).ok


@pytest.mark.parametrize(
    ("matrices", "message"),
    [
        ({"expression": "same"}, "'expression' cannot name a matrix"),
        ({"_length": "same"}, "'_length' cannot name a matrix"),
        ({"condition": "same"}, "'condition' names both a matrix and a sample or gene"),
        ({"length": "short"}, "has 9 samples; the expression has 10"),
        ({"length": "other genes"}, "genes of the matrix 'length' do not match"),
        ({"length": "infinite"}, "'length' must be finite or NaN; found inf at sample 3"),
        ({"length": "text"}, "values must be numeric"),
        (["length"], "must be a dict"),
    ],
)
def test_bad_matrices_are_refused_and_nothing_is_written(tmp_path, matrices, message):
    counts, lengths = _frames()
    bad = {
        "same": lengths,
        "short": lengths.to_numpy()[:9],
        "other genes": lengths.rename(columns={"G3": "X"}),
        "infinite": lengths.mask(np.arange(10)[:, None] * 7 + np.arange(7) == 3 * 7 + 2, np.inf),
        "text": lengths.astype(str),
    }
    given = (
        {name: bad[kind] for name, kind in matrices.items()}
        if isinstance(matrices, dict)
        else matrices
    )
    samples = pd.DataFrame({"condition": ["a", "b"] * 5}, index=SAMPLES)
    with pytest.raises(CohortexError, match=message):
        create_cohort(tmp_path / "bad.zarr", counts, samples=samples, matrices=given)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_matrix_chunk_is_never_read_as_data(tmp_path):
    path, _, _ = _store(tmp_path)
    chunk = path / "length" / "c" / "1" / "1"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    chunk.write_bytes(bytes(raw))
    ds = open_cohort(path)  # opening reads no matrix chunk
    with pytest.raises(CohortexError, match="damaged chunk of 'length' \\(c/1/1\\)"):
        ds["length"].values  # noqa: B018 (reading is the point)
    report = verify(path)
    assert not report.ok and "c/1/1 of 'length'" in " ".join(report.problems)
    chunk.unlink()
    with pytest.raises(CohortexError, match="lost 1 chunk of 'length' \\('c/1/1'\\)"):
        open_cohort(path)


def test_a_matrix_stored_along_the_wrong_dimensions_is_refused(tmp_path):
    path, _, _ = _store(tmp_path)
    metadata = path / "length" / "zarr.json"
    node = json.loads(metadata.read_text())
    node["dimension_names"] = ["gene", "sample"]
    node["shape"] = node["shape"][::-1]
    node["chunk_grid"]["configuration"]["chunk_shape"] = [3, 4]
    metadata.write_text(json.dumps(node))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CohortexError, match="holds 'length' with its dimensions as"):
            open_cohort(path)


def test_info_lists_the_matrices(tmp_path, capsys):
    path, _, _ = _store(tmp_path)
    assert main(["info", str(path)]) == 0
    assert "matrices     length (float64)" in capsys.readouterr().out
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["matrices"] == {"length": {"dtype": "float64"}}
