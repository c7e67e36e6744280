"""Salmon, kallisto, RSEM and StringTie quantifications summarised to genes, against tximport 1.26
(fixtures and their input files from tests/fixtures/make_tximport_fixtures.R: 4 samples × 40
transcripts of 12 genes, a gene at 0 in one sample, a gene at 0 in all, two transcripts not in
tx2gene, a repeated tx2gene row, an RSEM effective length of 0)."""

from __future__ import annotations

import gzip
import re
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import CohortexError, CohortexWarning, append_samples, de, io, normalize, open_cohort

TXIMPORT = Path(__file__).parent.parent / "fixtures" / "tximport"
SAMPLES = ["S1", "S2", "S3", "S4"]


def files(kind: str) -> dict[str, Path]:
    where = {
        "salmon": lambda s: TXIMPORT / "salmon" / s / "quant.sf",
        "kallisto": lambda s: TXIMPORT / "kallisto" / s / "abundance.tsv",
        "rsem": lambda s: TXIMPORT / "rsem" / f"{s}.isoforms.results",
        "rsem_genes": lambda s: TXIMPORT / "rsem" / f"{s}.genes.results",
        "stringtie": lambda s: TXIMPORT / "stringtie" / s / "t_data.ctab",
    }[kind]
    return {s: where(s) for s in SAMPLES}


def assert_equals_tximport(ds, case: str) -> None:
    for ours, theirs in (
        ("abundance", "abundance"),
        ("expression", "counts"),
        ("length", "length"),
    ):
        expected = pd.read_csv(TXIMPORT / f"{case}_{theirs}.csv", index_col=0)
        got = ds[ours].to_pandas().T
        assert sorted(got.index) == sorted(expected.index), (case, ours)
        assert list(got.columns) == SAMPLES
        np.testing.assert_allclose(
            got.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-12, err_msg=ours
        )


def read(kind: str, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CohortexWarning)
        return io.read_quantifications(files(kind), progress=False, **options)


@pytest.mark.parametrize("how", ["no", "scaledTPM", "lengthScaledTPM"])
def test_salmon_to_genes_as_tximport(how):
    ds = read("salmon", tx2gene=TXIMPORT / "tx2gene.csv", counts_from_abundance=how)
    assert_equals_tximport(ds, f"salmon_{how}")
    assert ds.sizes == {"sample": 4, "gene": 11}  # gene 12's transcripts are not in tx2gene
    assert ds.attrs["quantifier"] == "salmon" and ds.attrs["counts_from_abundance"] == how
    assert ds.attrs["n_transcripts_dropped"] == 2 and ds.attrs["scale"] == "counts"
    length = ds["length"].to_pandas()
    # gene 3 has no reads in S2: its length there is the geometric mean of the others'
    gene3 = length["ENSG00000000003.7"]
    assert gene3["S2"] == pytest.approx(np.exp(np.log(gene3.drop("S2")).mean()), rel=1e-14)


def test_transcripts_not_in_tx2gene_are_left_out_with_a_warning():
    with pytest.warns(CohortexWarning, match="2 transcripts are not in tx2gene"):
        io.read_quantifications(files("salmon"), tx2gene=TXIMPORT / "tx2gene.csv", progress=False)


@pytest.mark.parametrize("how", ["no", "scaledTPM", "dtuScaledTPM"])
def test_salmon_transcripts_as_tximport(how):
    tx2gene = pd.read_csv(TXIMPORT / "tx2gene.csv").drop_duplicates()
    listed = pd.read_csv(files("salmon")["S1"], sep="\t")["Name"]
    everything = pd.DataFrame(
        {
            "tx": listed,
            "gene": tx2gene.set_index("TXNAME")["GENEID"]
            .reindex(listed)
            .fillna("ENSG00000000012.3")
            .to_numpy(),
        }
    )
    ds = read("salmon", tx2gene=everything, transcripts=True, counts_from_abundance=how)
    assert ds.attrs["level"] == "transcript" and ds.sizes["gene"] == 40
    assert list(ds["gene"].values) == list(listed)  # in the files' order, as tximport's
    assert_equals_tximport(ds, f"salmon_transcripts_{how}")


def test_versions_ignored():
    ds = read(
        "salmon",
        tx2gene=TXIMPORT / "tx2gene_bare.csv",
        ignore_tx_version=True,
        counts_from_abundance="lengthScaledTPM",
    )
    assert_equals_tximport(ds, "salmon_bare")


def test_a_tx2gene_file_with_or_without_a_header(tmp_path):
    """A first line that names a transcript is a row (tables made from a GTF often have no
    header); otherwise it is the header."""
    table = pd.read_csv(TXIMPORT / "tx2gene.csv")
    table.to_csv(tmp_path / "plain.tsv", sep="\t", header=False, index=False)
    without = read(
        "salmon", tx2gene=tmp_path / "plain.tsv", counts_from_abundance="lengthScaledTPM"
    )
    assert_equals_tximport(without, "salmon_lengthScaledTPM")
    assert without.attrs["n_transcripts_dropped"] == 2


@pytest.mark.parametrize("name", ["genes.gtf", "genes.gtf.gz"])
def test_a_gtf_as_tx2gene(tmp_path, name):
    """A GTF's transcript_id and gene_id attributes (its gene lines have none), as the table."""
    table = pd.read_csv(TXIMPORT / "tx2gene.csv").drop_duplicates()
    lines = ["##description: a GTF as GENCODE writes them", "#!genome-build GRCh38"]
    for gene, members in table.groupby("GENEID", sort=False)["TXNAME"]:
        lines.append(f'chr1\tHAVANA\tgene\t1\t900\t.\t+\t.\tgene_id "{gene}"; gene_type "x";')
        for tx in members:
            attributes = f'gene_id "{gene}"; transcript_id "{tx}"; gene_name "A#1";'
            for feature in ("transcript", "exon", "exon"):
                lines.append(f"chr1\tHAVANA\t{feature}\t1\t900\t.\t+\t.\t{attributes}")
    text = "\n".join(lines) + "\n"
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    ds = read("salmon", tx2gene=path, counts_from_abundance="lengthScaledTPM")
    assert_equals_tximport(ds, "salmon_lengthScaledTPM")
    exons = [line for line in lines if "\texon\t" in line]  # a GTF without transcript lines
    (tmp_path / "exons.gtf").write_text("\n".join(exons) + "\n")
    ds = read("salmon", tx2gene=tmp_path / "exons.gtf", counts_from_abundance="lengthScaledTPM")
    assert_equals_tximport(ds, "salmon_lengthScaledTPM")
    (tmp_path / "other.gtf").write_text('chr1\tx\tgene\t1\t9\t.\t+\t.\tgene_id "G1";\n')
    with pytest.raises(CohortexError, match="no lines with transcript_id"):
        read("salmon", tx2gene=tmp_path / "other.gtf")


def test_kallisto_with_gencode_names():
    ds = read("kallisto", tx2gene=TXIMPORT / "tx2gene.csv", ignore_after_bar=True)
    assert_equals_tximport(ds, "kallisto_no")
    transcripts = read("kallisto", transcripts=True, ignore_after_bar=True)
    assert_equals_tximport(transcripts, "kallisto_transcripts_no")
    assert transcripts["gene"].values[0] == "ENST00000000001.3"
    assert ds.attrs["quantifier"] == "kallisto"


def test_kallisto_h5_gives_the_tsvs_values(tmp_path):
    """abundance.h5 (found in the sample's folder before abundance.tsv) holds the counts and
    effective lengths; the TPM are made from them, as tximport's read_kallisto_h5."""
    folders = {}
    for sample, path in files("kallisto").items():
        table = pd.read_csv(path, sep="\t")
        folder = tmp_path / sample
        folder.mkdir()
        shutil.copy(path, folder / "abundance.tsv")
        with h5py.File(folder / "abundance.h5", "w") as f:
            f["est_counts"] = table["est_counts"].to_numpy()
            f["aux/ids"] = table["target_id"].to_numpy().astype("S")
            f["aux/eff_lengths"] = table["eff_length"].to_numpy()
        folders[sample] = folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CohortexWarning)
        ds = io.read_quantifications(
            list(folders.values()), tx2gene=TXIMPORT / "tx2gene.csv", ignore_after_bar=True
        )
    assert list(ds["sample"].values) == SAMPLES
    expected = pd.read_csv(TXIMPORT / "kallisto_no_counts.csv", index_col=0)
    np.testing.assert_allclose(
        ds["expression"].to_pandas().T.loc[expected.index], expected, rtol=1e-12
    )
    # the TSV's TPM are rounded to 6 decimals; the h5's are exact
    tpm = pd.read_csv(TXIMPORT / "kallisto_no_abundance.csv", index_col=0)
    np.testing.assert_allclose(ds["abundance"].to_pandas().T.loc[tpm.index], tpm, rtol=1e-5)


def test_rsem_isoforms_and_genes():
    ds = read("rsem", tx2gene=TXIMPORT / "tx2gene.csv", counts_from_abundance="lengthScaledTPM")
    assert_equals_tximport(ds, "rsem_lengthScaledTPM")
    genes = read("rsem_genes")
    assert_equals_tximport(genes, "rsem_genes")
    assert genes.attrs["quantifier"] == "rsem" and genes.sizes["gene"] == 12


@pytest.mark.parametrize("read_length", [75, 100])
def test_stringtie_coverage_made_counts(read_length):
    options = {} if read_length == 75 else {"read_length": read_length}  # 75 by default
    ds = read("stringtie", tx2gene=TXIMPORT / "tx2gene.csv", **options)
    assert_equals_tximport(ds, f"stringtie_{read_length}")
    assert ds.attrs["quantifier"] == "stringtie"
    with pytest.raises(CohortexError, match="'read_length'"):
        read("stringtie", tx2gene=TXIMPORT / "tx2gene.csv", read_length=0)


def test_samples_named_by_their_folders_or_files(tmp_path):
    """The folder named, not that of a link's target (pipelines link their outputs)."""
    (tmp_path / "patient7").mkdir()
    (tmp_path / "patient7" / "quant.sf").symlink_to(files("salmon")["S2"])
    linked = io.read_quantifications([tmp_path / "patient7" / "quant.sf"], transcripts=True)
    assert list(linked["sample"].values) == ["patient7"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CohortexWarning)
        by_file = io.read_quantifications(
            list(files("rsem").values()), tx2gene=TXIMPORT / "tx2gene.csv", progress=False
        )
        by_folder = io.read_quantifications(
            [TXIMPORT / "salmon" / s for s in SAMPLES], tx2gene=TXIMPORT / "tx2gene.csv"
        )
    assert list(by_file["sample"].values) == SAMPLES
    assert list(by_folder["sample"].values) == SAMPLES
    # one folder of samples: its samples' folders, or RSEM's isoforms files (not genes')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CohortexWarning)
        salmon = io.read_quantifications(TXIMPORT / "salmon", tx2gene=TXIMPORT / "tx2gene.csv")
        rsem = io.read_quantifications(TXIMPORT / "rsem", tx2gene=TXIMPORT / "tx2gene.csv")
    xr.testing.assert_identical(salmon, by_folder)
    xr.testing.assert_identical(rsem, by_file)


def test_import_as_a_cohort_of_counts(tmp_path):
    """The store: lengthScaledTPM counts (float32) and each gene's mean length, which tpm reads;
    a cohort the count models take."""
    samples = pd.DataFrame({"condition": ["a", "a", "b", "b"]}, index=SAMPLES)

    def salmon_store(name: str, **options):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CohortexWarning)
            return io.import_quantifications(
                files("salmon"),
                tmp_path / name,
                tx2gene=TXIMPORT / "tx2gene.csv",
                samples=samples,
                progress=False,
                **options,
            )

    ds = salmon_store("q.zarr")
    expected = pd.read_csv(TXIMPORT / "salmon_lengthScaledTPM_counts.csv", index_col=0)
    got = ds["expression"].to_pandas().T.loc[expected.index]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    lengths = pd.read_csv(TXIMPORT / "salmon_lengthScaledTPM_length.csv", index_col=0)
    np.testing.assert_allclose(
        ds["length"].to_pandas().loc[lengths.index], lengths.mean(axis=1), rtol=1e-12
    )
    assert ds.attrs["scale"] == "counts" and list(ds["condition"].values) == ["a", "a", "b", "b"]
    tpm = normalize(ds, "tpm")["expression"].to_pandas()
    np.testing.assert_allclose(tpm.sum(axis=1), 1e6, rtol=1e-5)
    # DESeq2 takes whole counts: rounded on import, as DESeqDataSetFromTximport rounds them
    options = {"fit_type": "mean", "dispersion_prior_variance": 0.25}
    with pytest.raises(CohortexError, match="round_counts=True"):
        de.deseq(ds, "~ condition", **options)
    whole = salmon_store("whole.zarr", round_counts=True)
    np.testing.assert_array_equal(
        whole["expression"].to_pandas()[expected.index], np.round(expected.T.to_numpy())
    )
    result = de.deseq(whole, "~ condition", **options)
    normalised = whole["expression"].values / result["size_factor"].values[:, None]
    np.testing.assert_allclose(result["mean_expression"].values, normalised.mean(axis=0), rtol=1e-6)


def test_deseq_takes_the_lengths_as_deseqdatasetfromtximport():
    """tximport's default counts, rounded, with their average transcript lengths: deseq()
    takes the lengths by default (normalization factors), as DESeqDataSetFromTximport and
    estimateSizeFactors; counts made from abundances are modelled without them."""
    ds = read("salmon", tx2gene=TXIMPORT / "tx2gene.csv", round_counts=True)
    unrounded = read("salmon", tx2gene=TXIMPORT / "tx2gene.csv")
    np.testing.assert_array_equal(ds["expression"], np.round(unrounded["expression"]))
    assert not np.array_equal(ds["expression"], unrounded["expression"])
    np.testing.assert_array_equal(ds["length"], unrounded["length"])
    ds["condition"] = ("sample", ["a", "a", "b", "b"])
    options = {"fit_type": "mean", "dispersion_prior_variance": 0.25}
    result = de.deseq(ds, "~ condition", **options)
    assert result.attrs["normalization_factors"] == "lengths"
    expected = pd.read_csv(TXIMPORT / "deseq_salmon_base_mean.csv", index_col=0)["baseMean"]
    got = result["mean_expression"].to_pandas().loc[expected.index]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    given = de.deseq(ds.drop_vars("length"), "~ condition", lengths=ds["length"].values, **options)
    np.testing.assert_array_equal(given["pvalue"], result["pvalue"])
    scaled = read("salmon", tx2gene=TXIMPORT / "tx2gene.csv", counts_from_abundance="scaledTPM")
    scaled["expression"] = scaled["expression"].round()
    scaled["condition"] = ds["condition"]
    assert (
        de.deseq(scaled, "~ condition", **options).attrs["normalization_factors"] == "size factors"
    )


def test_a_store_of_estimated_counts_keeps_their_lengths(tmp_path):
    """counts_from_abundance='no' in a store: the per-sample lengths are stored beside the
    counts as length(sample, gene), and DESeq2 on the store is DESeqDataSetFromTximport's;
    tpm from them is tximport's abundance (over the genes kept)."""
    samples = pd.DataFrame({"condition": ["a", "a", "b", "b"]}, index=SAMPLES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CohortexWarning)
        ds = io.import_quantifications(
            files("salmon"),
            tmp_path / "no.zarr",
            tx2gene=TXIMPORT / "tx2gene.csv",
            counts_from_abundance="no",
            round_counts=True,
            samples=samples,
            progress=False,
        )
    assert [str(w.message) for w in caught if "length" in str(w.message)] == []
    assert ds["length"].dims == ("sample", "gene") and ds["length"].dtype == np.float64
    assert ds.attrs["counts_from_abundance"] == "no" and ds.attrs["quantifier"] == "salmon"
    lengths = pd.read_csv(TXIMPORT / "salmon_no_length.csv", index_col=0)
    got = ds["length"].to_pandas().T.loc[lengths.index]
    np.testing.assert_allclose(got, lengths, rtol=1e-12)  # float64 in the store
    counts = pd.read_csv(TXIMPORT / "salmon_no_counts.csv", index_col=0)
    np.testing.assert_array_equal(ds["expression"].to_pandas().T.loc[counts.index], counts.round())

    options = {"fit_type": "mean", "dispersion_prior_variance": 0.25}
    result = de.deseq(tmp_path / "no.zarr", "~ condition", **options)
    assert result.attrs["normalization_factors"] == "lengths"
    expected = pd.read_csv(TXIMPORT / "deseq_salmon_base_mean.csv", index_col=0)["baseMean"]
    got = result["mean_expression"].to_pandas().loc[expected.index]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    in_memory = read("salmon", tx2gene=TXIMPORT / "tx2gene.csv", round_counts=True)
    in_memory["condition"] = ("sample", samples["condition"].to_numpy())
    np.testing.assert_allclose(
        result["pvalue"], de.deseq(in_memory, "~ condition", **options)["pvalue"], rtol=1e-12
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CohortexWarning)  # transcripts not in tx2gene
        unrounded = io.import_quantifications(
            files("salmon"),
            tmp_path / "unrounded.zarr",
            tx2gene=TXIMPORT / "tx2gene.csv",
            counts_from_abundance="no",
            progress=False,
        )
    abundance = in_memory["abundance"].to_pandas()
    tpm = normalize(unrounded, "tpm")["expression"].to_pandas()
    np.testing.assert_allclose(tpm, abundance.div(abundance.sum(axis=1), axis=0) * 1e6, rtol=1e-5)
    kept = open_cohort(tmp_path / "no.zarr", genes=np.arange(ds.sizes["gene"]) % 2 == 0)
    np.testing.assert_array_equal(kept["length"], ds["length"].values[:, ::2])


def test_new_samples_join_a_store_of_estimated_counts_with_their_lengths(tmp_path):
    """Two samples imported, two appended from read_quantifications' Dataset: the store is
    the one of all four but for the lengths tximport imputes (a gene with no abundance in a
    sample takes its mean length over the samples read with it), and DESeq2 on it is
    DESeqDataSetFromTximport's for the genes counted in every sample."""
    samples = pd.DataFrame({"condition": ["a", "a", "b", "b"]}, index=SAMPLES)
    every = files("salmon")
    first, later = ({s: every[s] for s in group} for group in (SAMPLES[::2], SAMPLES[1::2]))
    options = {"tx2gene": TXIMPORT / "tx2gene.csv", "counts_from_abundance": "no"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CohortexWarning)  # transcripts not in tx2gene
        io.import_quantifications(
            first,
            tmp_path / "grown.zarr",
            samples=samples.loc[list(first)],
            round_counts=True,
            progress=False,
            **options,
        )
        whole = io.import_quantifications(
            every,
            tmp_path / "whole.zarr",
            samples=samples,
            round_counts=True,
            progress=False,
            **options,
        )
        new = io.read_quantifications(later, round_counts=True, progress=False, **options)
        made = io.read_quantifications(
            later,
            tx2gene=TXIMPORT / "tx2gene.csv",
            counts_from_abundance="scaledTPM",
            progress=False,
        )
    with pytest.raises(
        CohortexError, match="counts_from_abundance is 'scaledTPM'; the store's is 'no'"
    ):
        append_samples(tmp_path / "grown.zarr", made, samples.loc[list(later)])
    grown = append_samples(tmp_path / "grown.zarr", new, samples.loc[list(later)])
    grown = grown.isel(sample=[0, 2, 1, 3])  # S1 S3 S2 S4 → S1 S2 S3 S4
    for name in ("expression", "condition"):
        np.testing.assert_array_equal(grown[name].values, whole[name].values)
    counted = whole["expression"].values > 0
    assert 0 < (~counted).sum() < 8  # the gene at 0 in one sample, the one at 0 in all
    np.testing.assert_array_equal(grown["length"].values[counted], whole["length"].values[counted])
    options = {"fit_type": "mean", "dispersion_prior_variance": 0.25}
    result = de.deseq(grown, "~ condition", **options)
    expected = pd.read_csv(TXIMPORT / "deseq_salmon_base_mean.csv", index_col=0)["baseMean"]
    everywhere = whole["gene"].values[counted.all(axis=0)]
    got = result["mean_expression"].to_pandas().loc[everywhere]
    np.testing.assert_allclose(got, expected.loc[everywhere], rtol=1e-12)


def test_models_without_offsets_warn_of_estimated_counts_with_lengths(tmp_path):
    """limma-voom and edgeR's exact test take no lengths: on tximport's estimated counts
    they say so (tximport's advice is counts from abundances for them); on those counts
    (lengthScaledTPM) they do not."""
    estimated = read("salmon", tx2gene=TXIMPORT / "tx2gene.csv")
    estimated["condition"] = ("sample", ["a", "a", "b", "b"])
    calls = {
        "voom()": lambda ds: de.voom(ds, "~ condition"),
        "voom_lm_fit()": lambda ds: de.voom_lm_fit(ds, "~ condition"),
        "exact_test()": lambda ds: de.exact_test(ds, "condition"),
    }
    for caller, call in calls.items():
        with pytest.warns(
            CohortexWarning, match=re.escape(f"{caller} takes no transcript lengths")
        ):
            call(estimated)
    made = read("salmon", tx2gene=TXIMPORT / "tx2gene.csv", counts_from_abundance="scaledTPM")
    made["condition"] = estimated["condition"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CohortexWarning)
        for call in calls.values():
            call(made)


def test_refusals(tmp_path):
    tx2gene = TXIMPORT / "tx2gene.csv"
    with pytest.raises(CohortexError, match="tx2gene table"):
        io.read_quantifications(files("salmon"))
    with pytest.raises(CohortexError, match="transcripts=True"):
        io.read_quantifications(
            files("salmon"), tx2gene=tx2gene, counts_from_abundance="dtuScaledTPM"
        )
    with pytest.raises(CohortexError, match="'counts_from_abundance'"):
        io.read_quantifications(files("salmon"), tx2gene=tx2gene, counts_from_abundance="tpm")
    with pytest.raises(CohortexError, match="not kallisto's"):
        io.read_quantifications(files("salmon"), tx2gene=tx2gene, quantifier="kallisto")
    with pytest.raises(CohortexError, match="none of the transcripts"):
        io.read_quantifications(files("salmon"), tx2gene=TXIMPORT / "tx2gene_bare.csv")
    with pytest.raises(CohortexError, match="already one row per gene"):
        io.read_quantifications(files("rsem_genes"), counts_from_abundance="scaledTPM")
    with pytest.raises(CohortexError, match="several kinds"):
        io.read_quantifications(
            {"a": files("salmon")["S1"], "b": files("kallisto")["S1"]}, transcripts=True
        )
    with pytest.raises(CohortexError, match="more than once"):
        io.read_quantifications([files("salmon")["S1"], files("salmon")["S1"]], transcripts=True)
    with pytest.raises(CohortexError, match="does not exist"):
        io.read_quantifications([tmp_path / "nothing" / "quant.sf"], transcripts=True)
    # a sample quantified against another index; a value that is not a number
    table = pd.read_csv(files("salmon")["S2"], sep="\t")
    table.iloc[::-1].to_csv(tmp_path / "reordered.sf", sep="\t", index=False)
    with pytest.raises(CohortexError, match="same order"):
        io.read_quantifications(
            {"S1": files("salmon")["S1"], "S2": tmp_path / "reordered.sf"}, transcripts=True
        )
    table.loc[3, "NumReads"] = -2.0
    table.to_csv(tmp_path / "negative.sf", sep="\t", index=False)
    with pytest.raises(CohortexError, match="negative or not numbers"):
        io.read_quantifications([tmp_path / "negative.sf"], transcripts=True)
    table["NumReads"] = table["NumReads"].astype(object)
    table.loc[3, "NumReads"] = "NA"
    table.to_csv(tmp_path / "missing.sf", sep="\t", index=False)
    with pytest.raises(CohortexError, match="not a number"):
        io.read_quantifications([tmp_path / "missing.sf"], transcripts=True)
    (tmp_path / "other.tsv").write_text("gene\tS1\nA\t1\n")
    with pytest.raises(CohortexError, match="not a quantification"):
        io.read_quantifications([tmp_path / "other.tsv"], transcripts=True)
    with pytest.raises(CohortexError, match="no single quantification"):
        io.read_quantifications([tmp_path], transcripts=True)


def test_an_h5_that_reads_another_file_is_refused(tmp_path):
    """A downloaded abundance.h5 must not make cohortex read a path it names: links to other
    files and data stored outside the file are refused."""
    secret = tmp_path / "elsewhere.h5"
    with h5py.File(secret, "w") as f:
        f["values"] = np.arange(3.0)
    (tmp_path / "raw.bin").write_bytes(np.arange(3.0).tobytes())
    for how in ("link", "external"):
        folder = tmp_path / how
        folder.mkdir()
        with h5py.File(folder / "abundance.h5", "w") as f:
            f["aux/ids"] = np.array([b"t1", b"t2", b"t3"])
            f["aux/eff_lengths"] = np.ones(3)
            if how == "link":
                f["est_counts"] = h5py.ExternalLink(str(secret), "values")
            else:
                f.create_dataset(
                    "est_counts",
                    shape=(3,),
                    dtype="<f8",
                    external=[(str(tmp_path / "raw.bin"), 0, 24)],
                )
        with pytest.raises(CohortexError, match="outside the file"):
            io.read_quantifications([folder], transcripts=True)
