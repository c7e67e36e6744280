"""Importers and exporters: round trips and bad input."""

from __future__ import annotations

import gzip
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cohortex import CohortexError, create_cohort, io, open_cohort


@pytest.fixture
def cohort(tmp_path, small_matrix):
    x, samples, genes = small_matrix
    return create_cohort(tmp_path / "src.zarr", x, samples=samples, genes=genes, chunks=(6, 5))


def _same_matrix(ds, expected):
    np.testing.assert_array_equal(ds["expression"].values, expected)


@pytest.mark.parametrize(
    ("name", "orientation"),
    [
        ("m.tsv", "genes-by-samples"),
        ("m.tsv", "samples-by-genes"),
        ("m.csv", "genes-by-samples"),
        ("m.csv.gz", "samples-by-genes"),
        ("m.txt.gz", "genes-by-samples"),
    ],
)
def test_text_round_trip(tmp_path, cohort, small_matrix, name, orientation):
    x, samples, _ = small_matrix
    path = tmp_path / name
    io.export_table(cohort, path, orientation=orientation)
    sep = "," if ".csv" in name else "\t"
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as f:
        header = f.readline().rstrip("\n").split(sep)
    assert header[0] == ("gene" if orientation == "genes-by-samples" else "sample")
    assert len(header) == 1 + (23 if orientation == "genes-by-samples" else 17)
    meta_path = tmp_path / "samples.tsv"
    samples.to_csv(meta_path, sep="\t", index_label="sample")
    # small chunks so the import writes several blocks
    back = io.import_table(
        path, tmp_path / "back.zarr", orientation=orientation, samples=meta_path, chunks=(4, 3)
    )
    _same_matrix(back, x)
    assert list(back["sample"].values) == list(samples.index)
    np.testing.assert_array_equal(back["age"].values, samples["age"].to_numpy())
    assert back["age"].dtype.kind in "iuf"
    assert back["condition"].values[5] == ""


def test_geo_series_matrix(tmp_path):
    text = "\n".join(
        [
            '!Series_title\t"A study"',
            '!Sample_geo_accession\t"GSM1"\t"GSM2"\t"GSM3"',
            "!series_matrix_table_begin",
            '"ID_REF"\t"GSM1"\t"GSM2"\t"GSM3"',
            '"1007_s_at"\t7.5\t8.25\t6',
            '"1053_at"\t5.5\t\t4.75',
            '"117_at"\tNA\t3.5\t2.5',
            "!series_matrix_table_end",
            "",
        ]
    )
    path = tmp_path / "GSE1_series_matrix.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write(text)
    ds = io.import_table(path, tmp_path / "geo.zarr")
    assert list(ds["sample"].values) == ["GSM1", "GSM2", "GSM3"]
    assert list(ds["gene"].values) == ["1007_s_at", "1053_at", "117_at"]
    expected = np.array([[7.5, 5.5, np.nan], [8.25, np.nan, 3.5], [6, 4.75, 2.5]], np.float32)
    _same_matrix(ds, expected)


def test_gct_round_trip(tmp_path, cohort, small_matrix):
    x, _, genes = small_matrix
    path = tmp_path / "m.gct"
    io.export_gct(cohort, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "#1.2"
    assert lines[1] == "17\t23"
    assert lines[2].split("\t")[:3] == ["Name", "Description", "P00"]
    back = io.import_gct(path, tmp_path / "back.zarr", chunks=(5, 5))
    _same_matrix(back, x)
    assert set(back["description"].values) == {"na"}
    assert list(back["gene"].values) == list(genes.index)


def test_gct_dimension_mismatch(tmp_path):
    path = tmp_path / "bad.gct"
    path.write_text("#1.2\n3\t2\nName\tDescription\tA\tB\ng1\td\t1\t2\ng2\td\t3\t4\n")
    with pytest.raises(CohortexError, match="announces 3 genes × 2 samples; the table has 2 × 2"):
        io.import_gct(path, tmp_path / "x.zarr")
    path.write_text("#1.3\n")
    with pytest.raises(CohortexError, match="is not a GCT 1.2 file"):
        io.import_gct(path, tmp_path / "x.zarr")
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("name", ["out.h5ad", "out.anndata.zarr"])
def test_anndata_round_trip(tmp_path, cohort, small_matrix, name):
    x, samples, genes = small_matrix
    path = tmp_path / name
    io.export_anndata(cohort, path)
    adata = ad.read_h5ad(path) if name.endswith(".h5ad") else ad.read_zarr(path)
    np.testing.assert_array_equal(adata.X, x)
    assert list(adata.obs_names) == list(samples.index)
    assert adata.uns["cohortex"]["scale"] == "log2"
    np.testing.assert_array_equal(adata.obs["age"].to_numpy(), samples["age"].to_numpy())
    back = io.import_anndata(path, tmp_path / "back.zarr", chunks=(4, 17))
    _same_matrix(back, x)
    np.testing.assert_array_equal(back["symbol"].values, genes["symbol"].to_numpy())
    assert back.attrs["scale"] == "log2"


@pytest.mark.parametrize("name", ["out.h5ad", "out.anndata.zarr"])
def test_a_stores_other_matrices_are_exported_as_layers(tmp_path, small_matrix, name):
    x, samples, _ = small_matrix
    lengths = np.random.default_rng(3).uniform(500, 5000, x.shape)  # float64's digits
    store = tmp_path / "c.zarr"
    create_cohort(store, x, samples=samples, chunks=(8, 17), matrices={"length": lengths})
    io.export_anndata(store, tmp_path / name)
    adata = (
        ad.read_h5ad(tmp_path / name) if name.endswith(".h5ad") else ad.read_zarr(tmp_path / name)
    )
    assert list(adata.layers) == ["length"]
    np.testing.assert_array_equal(adata.layers["length"], lengths)
    np.testing.assert_array_equal(adata.X, x)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_anndata_sparse_x_and_layers(tmp_path, fmt):
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.7, (40, 12)).astype(np.float32)
    adata = ad.AnnData(
        X=sp.csr_matrix(np.log1p(counts)) if fmt == "csr" else sp.csc_matrix(np.log1p(counts)),
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical(rng.choice(["T", "B"], 40))},
            index=[f"c{i}" for i in range(40)],
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(12)]),
        layers={"counts": sp.csr_matrix(counts)},
    )
    path = tmp_path / "sparse.h5ad"
    adata.write_h5ad(path)
    ds = io.import_anndata(path, tmp_path / "x.zarr", chunks=(16, 12), scale="log1p")
    np.testing.assert_allclose(ds["expression"].values, np.log1p(counts), rtol=1e-6)
    assert ds["cell_type"].dtype == object and set(ds["cell_type"].values) == {"T", "B"}
    raw = io.import_anndata(path, tmp_path / "y.zarr", layer="counts", scale="counts")
    _same_matrix(raw, counts)
    with pytest.raises(CohortexError, match="names no layer .* got 'spliced'. Layers: counts"):
        io.import_anndata(path, tmp_path / "z.zarr", layer="spliced")


def test_numpy_and_pandas(tmp_path, cohort, small_matrix):
    x, samples, genes = small_matrix
    frame = io.to_pandas(cohort)
    assert frame.shape == (23, 17)
    assert list(frame.index) == list(samples.index)
    np.testing.assert_array_equal(frame.to_numpy(), x)
    back = create_cohort(tmp_path / "pd.zarr", frame)
    _same_matrix(back, x)
    np.save(tmp_path / "m.npy", x)
    from_npy = io.import_file(tmp_path / "m.npy", tmp_path / "npy.zarr", samples=samples)
    _same_matrix(from_npy, x)
    assert list(from_npy["sample"].values) == list(samples.index)
    in_memory = io.to_anndata(tmp_path / "src.zarr")
    np.testing.assert_array_equal(in_memory.X, x)


def test_import_file_dispatch(tmp_path, cohort, small_matrix):
    x, _, _ = small_matrix
    io.export_gct(cohort, tmp_path / "m.gct")
    io.export_anndata(cohort, tmp_path / "m.h5ad")
    io.export_table(cohort, tmp_path / "m.tsv")
    for name in ("m.gct", "m.h5ad", "m.tsv"):
        _same_matrix(io.import_file(tmp_path / name, tmp_path / f"{name}.zarr"), x)


# featureCounts -a genes.gtf -o counts.txt /data/run1/S1.bam /data/run2/S2.bam: as it writes
_FEATURECOUNTS = (
    '# Program:featureCounts v2.0.6; Command:"featureCounts" "-a" "genes.gtf" "-o" "counts.txt" '
    '"/data/run1/S1.bam" "/data/run2/S2.bam" \n'
    "Geneid\tChr\tStart\tEnd\tStrand\tLength\t/data/run1/S1.bam\t/data/run2/S2.bam\n"
    "ENSG01\tchr1;chr1;chr1\t11869;12613;13221\t12227;12721;14409\t+;+;+\t1657\t0\t3\n"
    "ENSG02\tchrX\t500\t900\t-\t401\t125\t88\n"
    "ENSG03\tchr2;chr2_alt\t70;10\t90;40\t+;+\t52\t7\t0\n"
)


def test_featurecounts_output(tmp_path):
    path = _write(tmp_path, _FEATURECOUNTS, "counts.txt")
    meta = _write(tmp_path, "sample\tcondition\nS2\tb\nS1\ta\n", "meta.tsv")
    ds = io.import_file(path, tmp_path / "fc.zarr", samples=meta)
    assert ds.attrs["scale"] == "counts"
    assert list(ds["sample"].values) == ["S1", "S2"]
    assert list(ds["condition"].values) == ["a", "b"]
    np.testing.assert_array_equal(ds["expression"].values, [[0, 125, 7], [3, 88, 0]])
    assert list(ds["chr"].values) == ["chr1", "chrX", "chr2;chr2_alt"]
    assert list(ds["start"].values) == [11869, 500, 10]  # first start, last end of the exons
    assert list(ds["end"].values) == [14409, 900, 90]
    assert list(ds["strand"].values) == ["+", "-", "+"]
    assert list(ds["length"].values) == [1657, 401, 52]
    # without its program line (cut by hand), and alignment files of the same name
    cut = _FEATURECOUNTS.split("\n", 1)[1].replace("run2/S2", "run2/S1")
    ds = io.import_file(_write(tmp_path, cut, "cut.tsv"), tmp_path / "cut.zarr")
    assert list(ds["sample"].values) == ["/data/run1/S1.bam", "/data/run2/S1.bam"]
    assert ds.attrs["scale"] == "counts"


def test_featurecounts_look_alike_is_refused(tmp_path):
    header = "Geneid\tChr\tStart\tStop\tStrand\tLength\tS1\n"
    path = _write(tmp_path, "# Program:featureCounts v2\n" + header + "g\tc\t1\t2\t+\t2\t5\n")
    with pytest.raises(CohortexError, match="is not a featureCounts table: its header begins"):
        io.import_file(path, tmp_path / "x.zarr")
    lengths = _FEATURECOUNTS.replace("\t1657\t", "\t1.6kb\t")
    with pytest.raises(CohortexError, match="Start, End and Length columns .* whole numbers"):
        io.import_file(_write(tmp_path, lengths, "kb.txt"), tmp_path / "x.zarr")
    with pytest.raises(CohortexError, match="'annotation_columns' option applies to plain text"):
        io.import_file(_write(tmp_path, _FEATURECOUNTS), tmp_path / "x.zarr", annotation_columns=1)
    assert not (tmp_path / "x.zarr").exists()


def test_annotation_columns_become_variables(tmp_path):
    genes_first = _write(
        tmp_path, "gene\tsymbol\tgc\tA\tB\ng1\tTP53\t0.4\t1\t2\ng2\tNA\t0.6\t3\t4\n"
    )
    ds = io.import_table(genes_first, tmp_path / "g.zarr", annotation_columns=2)
    np.testing.assert_array_equal(ds["expression"].values, [[1, 3], [2, 4]])
    assert ds["symbol"].values[0] == "TP53"
    np.testing.assert_array_equal(ds["gc"].values, [0.4, 0.6])
    samples_first = _write(tmp_path, "sample,condition,g1,g2\nA,x,1,2\nB,y,3,4\n", "s.csv")
    meta = _write(tmp_path, "sample\tage\nB\t50\nA\t40\n", "meta.tsv")
    ds = io.import_table(
        samples_first,
        tmp_path / "s.zarr",
        orientation="samples-by-genes",
        annotation_columns=1,
        samples=meta,
    )
    np.testing.assert_array_equal(ds["expression"].values, [[1, 2], [3, 4]])
    assert list(ds["condition"].values) == ["x", "y"]
    assert list(ds["age"].values) == [40, 50]
    clash = _write(tmp_path, "sample\tcondition\nA\tx\nB\ty\n", "clash.tsv")
    for options, said in (
        ({"samples": clash}, "'condition' come both from the file's annotation columns"),
        ({"annotation_columns": -1}, "'annotation_columns' parameter must be a whole number"),
        ({"annotation_columns": 3}, r"an id column, 3 annotation column\(s\) and at least one"),
    ):
        arguments = {"orientation": "samples-by-genes", "annotation_columns": 1, **options}
        with pytest.raises(CohortexError, match=said):
            io.import_table(samples_first, tmp_path / "x.zarr", **arguments)
    assert not (tmp_path / "x.zarr").exists()


# ---------------------------------------------------------------------------- bad input


def _write(tmp_path, text, name="bad.tsv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ragged_rows_name_the_line(tmp_path):
    short = _write(tmp_path, "gene\tA\tB\tC\ng1\t1\t2\t3\ng2\t4\t5\ng3\t1\t1\t1\n")
    with pytest.raises(
        CohortexError, match="Line 3 of .* has 3 fields; the header \\(line 1\\) has 4"
    ):
        io.import_table(short, tmp_path / "x.zarr")
    long = _write(tmp_path, "gene,A,B\ng1,1,2\ng2,4,5,6\n", "long.csv")
    with pytest.raises(CohortexError, match="Line 3 of .* has 4 fields; the header"):
        io.import_table(long, tmp_path / "x.zarr")
    quoted = _write(tmp_path, 'gene,A,B\n"g,1",1,2\n', "quoted.csv")
    ds = io.import_table(quoted, tmp_path / "q.zarr")  # a quoted separator is not a field
    assert list(ds["gene"].values) == ["g,1"]
    assert not (tmp_path / "x.zarr").exists()


def test_non_numeric_cell_names_line_and_column(tmp_path):
    rows = ["gene\tA\tB\tC"] + [f"g{i}\t1\t2\t3" for i in range(10)]
    rows[8] = "g7\t1\tlow\t3"
    path = _write(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(
        CohortexError, match="Line 9 of .* has a non-numeric value 'low' in column 'B'"
    ):
        io.import_table(path, tmp_path / "x.zarr", chunks=(3, 3))
    assert list(tmp_path.iterdir()) == [path]  # nothing written, no temporary folder left


def test_number_beyond_float32_is_refused_by_name(tmp_path):
    path = _write(tmp_path, "gene\tA\tB\ng1\t1\t2\ng2\t1e40\t4\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no parser warning on the way to the error
        with pytest.raises(
            CohortexError,
            match=r"within float32's range \(±3.4e38\); found 1 values that are not in this "
            r"block, the first \(inf\) at sample 0, gene 'g2'",
        ):
            io.import_table(path, tmp_path / "x.zarr")
    assert list(tmp_path.iterdir()) == [path]


def test_duplicate_ids(tmp_path):
    genes = _write(tmp_path, "gene\tA\tB\ng1\t1\t2\ng1\t3\t4\n")
    with pytest.raises(
        CohortexError, match="Gene ids must be unique; 1 ids occur more than once: 'g1'"
    ):
        io.import_table(genes, tmp_path / "x.zarr")
    samples = _write(tmp_path, "gene\tA\tA\ng1\t1\t2\n", "dup_samples.tsv")
    with pytest.raises(CohortexError, match="Sample ids must be unique; .* 'A'"):
        io.import_table(samples, tmp_path / "x.zarr")


def test_metadata_that_matches_no_sample(tmp_path):
    matrix = _write(tmp_path, "gene\tA\tB\tC\ng1\t1\t2\t3\n")
    meta = _write(tmp_path, "sample\tcondition\nA\tx\nB\ty\nZ\tx\n", "meta.tsv")
    with pytest.raises(
        CohortexError,
        match=r"1 metadata rows match no sample \('Z'\); 1 samples "
        r"have no metadata row \('C'\)",
    ):
        io.import_table(matrix, tmp_path / "x.zarr", samples=meta)
    with pytest.raises(CohortexError, match="metadata file .* does not exist"):
        io.import_table(matrix, tmp_path / "x.zarr", samples=tmp_path / "nope.tsv")
    twice = _write(tmp_path, "sample\tage\tage\nA\t1\t2\nB\t3\t4\nC\t5\t6\n", "twice.tsv")
    with pytest.raises(CohortexError, match="names a column more than once: 'age'"):
        io.import_table(matrix, tmp_path / "x.zarr", samples=twice)  # not 'age' and 'age.1'
    assert not (tmp_path / "x.zarr").exists()


def test_empty_and_headerless_files(tmp_path):
    with pytest.raises(CohortexError, match="has no header line and no data"):
        io.import_table(_write(tmp_path, ""), tmp_path / "x.zarr")
    with pytest.raises(CohortexError, match="has a header but no data rows"):
        io.import_table(_write(tmp_path, "gene\tA\n", "h.tsv"), tmp_path / "x.zarr")
    with pytest.raises(CohortexError, match=r"has 1 field\(s\); .* \(is the separator"):
        io.import_table(_write(tmp_path, "gene A B\ng1 1 2\n", "s.tsv"), tmp_path / "x.zarr")
    with pytest.raises(CohortexError, match="'orientation' parameter must be one of"):
        io.import_table(tmp_path / "s.tsv", tmp_path / "x.zarr", orientation="rows")


def test_export_failure_leaves_no_file(tmp_path, cohort, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(RuntimeError):
        io.export_table(cohort, tmp_path / "out.tsv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.zarr"]
    assert open_cohort(tmp_path / "src.zarr").sizes["sample"] == 23
