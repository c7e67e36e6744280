"""The command line, run in-process through cli.main and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import create_cohort, de, fdr, open_cohort, read_result
from cohortex.app.cli import main


def test_simulate_then_info(tmp_path, capsys):
    out = tmp_path / "sim.zarr"
    assert (
        main(
            [
                "simulate",
                str(out),
                "--samples",
                "120",
                "--genes",
                "40",
                "--n-de",
                "4",
                "--batches",
                "2",
                "--modules",
                "1",
                "--module-size",
                "5",
                "--chunks",
                "50,16",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    ds = open_cohort(out)
    assert ds.sizes == {"sample": 120, "gene": 40}
    assert ds["expression"].data.chunksize == (50, 16)
    assert int(ds["is_de"].sum()) == 4
    assert main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["samples"] == 120 and summary["genes"] == 40
    assert summary["chunks"] == [50, 16]
    assert summary["codecs"] == ["bytes", "blosc", "crc32c"]
    assert summary["sample_variables"]["condition"]["top"] == {"normal": 60, "tumor": 60}
    assert summary["gene_variables"]["is_de"] == {"type": "bool", "true": 4, "false": 36}
    assert summary["bytes_on_disk"] > 0
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "120 samples × 40 genes, float32, scale log2" in text
    assert "condition      text, 2 distinct: normal 60, tumor 60" in text


def test_import_quant(tmp_path, capsys):
    """Salmon's folders summarised to genes (lengthScaledTPM by default) as tximport 1.26."""
    fixtures = Path(__file__).parent.parent / "fixtures" / "tximport"
    folders = [str(fixtures / "salmon" / s) for s in ("S1", "S2", "S3", "S4")]
    store = tmp_path / "q.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two transcripts not in tx2gene
        code = main(
            [
                "import-quant",
                *folders,
                "--out",
                str(store),
                "--tx2gene",
                str(fixtures / "tx2gene.csv"),
                "--no-progress",
            ]
        )
    assert code == 0
    assert "4 samples × 11 genes (lengthScaledTPM counts)" in capsys.readouterr().out
    expected = pd.read_csv(fixtures / "salmon_lengthScaledTPM_counts.csv", index_col=0)
    got = open_cohort(store)["expression"].to_pandas().T.loc[expected.index]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert main(["import-quant", *folders, "--out", str(tmp_path / "x.zarr")]) == 2
    assert "tx2gene table" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        command = ["import-quant", str(fixtures / "salmon"), "--out", str(tmp_path / "one.zarr")]
        assert main([*command, "--tx2gene", str(fixtures / "tx2gene.csv"), "--no-progress"]) == 0
    assert "4 samples × 11 genes" in capsys.readouterr().out
    # tximport's estimated counts, with their lengths: DESeq2 takes them as it does from tximport
    samples = tmp_path / "samples.tsv"
    samples.write_text("sample\tcondition\nS1\ta\nS2\ta\nS3\tb\nS4\tb\n")
    estimated = tmp_path / "est.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        command = ["import-quant", *folders, "--out", str(estimated), "--samples", str(samples)]
        options = ["--counts-from-abundance", "no", "--round", "--no-progress"]
        assert main([*command, "--tx2gene", str(fixtures / "tx2gene.csv"), *options]) == 0
    assert "(no counts, with their lengths)" in capsys.readouterr().out
    assert main(["info", str(estimated)]) == 0
    assert "matrices     length (float64)" in capsys.readouterr().out
    deseq = ["de", str(estimated), "--design", "~ condition", "--deseq", "--fit-type", "mean"]
    assert main([*deseq, "--top", "0"]) == 0
    assert "the transcript lengths as normalization factors (tximport)" in capsys.readouterr().out
    result = read_result(estimated, "de_deseq")
    expected = pd.read_csv(fixtures / "deseq_salmon_base_mean.csv", index_col=0)["baseMean"]
    got = result["mean_expression"].to_pandas().loc[expected.index]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    glm = ["de", str(estimated), "--design", "~ condition", "--glm-ql", "--top", "0"]
    assert main(glm) == 0
    assert "offsets from the transcript lengths (tximport)" in capsys.readouterr().out
    assert read_result(estimated, "de_glm_ql").attrs["offsets"] == "lengths"


def test_import_and_export(tmp_path, capsys):
    src = tmp_path / "m.tsv"
    src.write_text("gene\tA\tB\tC\ng1\t1\t2\t3\ng2\t4\t5\t6\n")
    meta = tmp_path / "meta.tsv"
    meta.write_text("sample\tcondition\tage\nA\tx\t30\nB\ty\t41\nC\tx\t52\n")
    store = tmp_path / "m.zarr"
    assert main(["import", str(src), str(store), "--samples", str(meta), "--scale", "log1p"]) == 0
    ds = open_cohort(store)
    np.testing.assert_array_equal(ds["expression"].values, [[1, 4], [2, 5], [3, 6]])
    assert ds.attrs["scale"] == "log1p"
    np.testing.assert_array_equal(ds["age"].values, [30, 41, 52])
    assert (
        main(
            ["export", str(store), str(tmp_path / "back.csv"), "--orientation", "samples-by-genes"]
        )
        == 0
    )
    assert (tmp_path / "back.csv").read_text().splitlines() == [
        "sample,g1,g2",
        "A,1,4",
        "B,2,5",
        "C,3,6",
    ]
    assert main(["export", str(store), str(tmp_path / "back.h5ad")]) == 0
    assert main(["export", str(store), str(tmp_path / "back.h5ad")]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_export_normalized(tmp_path, capsys):
    """export --normalize: TPM and RPKM (TMM factors) by the genes' stored lengths."""
    from cohortex import normalize

    counts = np.array([[10.0, 0.0, 30.0], [5.0, 8.0, 2.0], [0.0, 4.0, 9.0], [7.0, 7.0, 7.0]])
    genes = pd.DataFrame({"length": [1000, 2500, 400]}, index=["g1", "g2", "g3"])
    store = tmp_path / "c.zarr"
    create_cohort(store, counts, genes=genes, scale="counts")
    for method, factors in (("tpm", None), ("rpkm", "tmm")):
        out = tmp_path / f"{method}.tsv"
        command = ["export", str(store), str(out), "--orientation", "samples-by-genes"]
        assert main([*command, "--normalize", method]) == 0
        assert f"({method})" in capsys.readouterr().out
        written = pd.read_csv(out, sep="\t", index_col=0).to_numpy()
        expected = normalize(store, method, norm_factors=factors)["expression"].values
        np.testing.assert_allclose(written, expected, rtol=1e-6)
        if method == "tpm":
            np.testing.assert_allclose(written.sum(axis=1), 1e6, rtol=1e-6)
    assert main(["export", str(store), str(tmp_path / "x.tsv"), "--normalize", "tmm"]) == 2


def test_export_vst(tmp_path, capsys):
    """export --normalize vst: DESeq2's transformation; 600 genes, so every gene's trend
    (varianceStabilizingTransformation), equal to R's."""
    fixtures = Path(__file__).parents[1] / "fixtures" / "deseq"
    counts = pd.read_csv(fixtures / "counts.csv", index_col=0)
    store = tmp_path / "counts.zarr"
    create_cohort(store, counts.to_numpy(float).T, scale="counts")
    out = tmp_path / "vst.tsv"
    assert main(["export", str(store), str(out), "--normalize", "vst"]) == 0
    assert "(vst)" in capsys.readouterr().out
    written = pd.read_csv(out, sep="\t", index_col=0)
    theirs = pd.read_csv(fixtures / "vst_all.csv", index_col=0)
    np.testing.assert_allclose(written.to_numpy(), theirs.to_numpy(), rtol=1e-6)
    out = tmp_path / "rlog.tsv"  # DESeq2's rlog, blind
    assert main(["export", str(store), str(out), "--normalize", "rlog"]) == 0
    assert "(rlog)" in capsys.readouterr().out
    written = pd.read_csv(out, sep="\t", index_col=0)
    theirs = pd.read_csv(fixtures / "rlog_blind.csv", index_col=0)
    np.testing.assert_allclose(written.to_numpy(), theirs.to_numpy(), rtol=1e-6, atol=1e-6)


def test_export_corrected_by_combat(tmp_path, capsys):
    """export --combat BATCH --keep FORMULA: sva's ComBat of the store, written as values."""
    from cohortex import de, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 60, 30, batches=3, n_de=5, seed=2)
    capsys.readouterr()
    out = tmp_path / "corrected.tsv"
    command = ["export", str(store), str(out), "--orientation", "samples-by-genes"]
    assert main([*command, "--combat", "batch", "--keep", "~ condition"]) == 0
    assert "(ComBat of batch)" in capsys.readouterr().out
    written = pd.read_csv(out, sep="\t", index_col=0).to_numpy()
    expected = de.combat(store, "batch", design="~ condition")["expression"].values
    np.testing.assert_allclose(written, expected, rtol=1e-6)
    assert main([*command, "--keep", "~ condition", "--overwrite"]) == 2
    assert "--keep goes with --combat or --combat-seq" in capsys.readouterr().err
    assert main([*command, "--combat", "batch", "--nonparametric", "--overwrite"]) == 0
    written = pd.read_csv(out, sep="\t", index_col=0).to_numpy()
    expected = de.combat(store, "batch", parametric=False)["expression"].values
    np.testing.assert_allclose(written, expected, rtol=1e-6)


def test_export_corrected_by_combat_seq(tmp_path, capsys):
    """export --combat-seq BATCH --keep FORMULA [--normalize]: sva's ComBat_seq of the store's
    counts, written as counts or normalised after."""
    from cohortex import de, normalize, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 40, 60, batches=2, n_de=5, distribution="negbinom", seed=2)
    capsys.readouterr()
    out = tmp_path / "corrected.tsv"
    command = ["export", str(store), str(out), "--orientation", "samples-by-genes"]
    assert main([*command, "--combat-seq", "batch", "--keep", "~ condition"]) == 0
    assert "(ComBat-seq of batch)" in capsys.readouterr().out
    written = pd.read_csv(out, sep="\t", index_col=0).to_numpy()
    corrected = de.combat_seq(store, "batch", covariates="~ condition")
    np.testing.assert_array_equal(written, corrected["expression"].values)
    assert main([*command, "--combat-seq", "batch", "--normalize", "log_cpm", "--overwrite"]) == 0
    assert "(ComBat-seq of batch, log_cpm)" in capsys.readouterr().out
    written = pd.read_csv(out, sep="\t", index_col=0).to_numpy()
    expected = normalize(de.combat_seq(store, "batch"), "log_cpm", norm_factors="tmm")
    np.testing.assert_allclose(written, expected["expression"].values, rtol=1e-6)
    assert main([*command, "--combat-seq", "batch", "--combat", "batch", "--overwrite"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_warnings_are_lines_that_name_the_flag(tmp_path, capsys):
    src = tmp_path / "counts.tsv"
    src.write_text("gene\tA\tB\ng1\t10\t2000\ng2\t4\t5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # the tests otherwise raise cohortex's warnings
        assert main(["import", str(src), str(tmp_path / "c.zarr")]) == 0
    err = capsys.readouterr().err
    assert "cohortex import: warning: The expression values are whole numbers up to 2000" in err
    assert "pass --scale counts so fold changes" in err
    assert "_text.py" not in err  # no Python source line


def test_de_with_samples_correlated_within_blocks(tmp_path, capsys):
    fixtures = Path(__file__).parents[1] / "fixtures" / "limma"
    expression = pd.read_csv(fixtures / "block_expression.csv", index_col=0).T
    samples = pd.read_csv(fixtures / "block_samples.csv", index_col=0)
    store = tmp_path / "b.zarr"
    create_cohort(store, expression.astype(np.float32), samples=samples)
    command = ["de", str(store), "--design", "~ time + sex", "--block", "patient"]
    assert main([*command, "--top", "0"]) == 0
    consensus = de.duplicate_correlation(store, "~ time + sex", "patient")
    correlation = consensus.attrs["consensus_correlation"]
    assert f"within patient (estimated correlation {correlation:.4f})" in capsys.readouterr().out
    stored = read_result(store, "de_limma")
    assert stored.attrs["correlation"] == pytest.approx(correlation, rel=1e-12)
    assert main([*command, "--correlation", "0.25", "--name", "given", "--top", "0"]) == 0
    assert read_result(store, "given").attrs["correlation"] == 0.25
    assert main([*command, "--block", "nobody"]) == 2
    assert "'block' parameter must name a sample variable" in capsys.readouterr().err
    assert main(["de", str(store), "--groupby", "time", "--block", "patient"]) == 2
    assert main(["de", str(store), "--design", "~ time", "--correlation", "0.2"]) == 2
    assert "--correlation goes with --block" in capsys.readouterr().err


def test_voom_with_blocks(tmp_path, capsys):
    from cohortex import simulate

    store = tmp_path / "counts.zarr"
    simulate(store, 40, 60, n_de=6, distribution="negbinom", seed=4)
    patients = np.arange(40) // 2  # pairs of samples
    cohort = open_cohort(store)
    create_cohort(
        tmp_path / "paired.zarr",
        cohort["expression"].values,
        samples=pd.DataFrame(
            {"condition": cohort["condition"].values, "patient": patients.astype(str)},
            index=cohort["sample"].values,
        ),
        scale="counts",
    )
    paired = tmp_path / "paired.zarr"
    command = ["de", str(paired), "--design", "~ condition", "--voom", "--block", "patient"]
    # limma's two rounds: voom, its correlation, voom with the blocks, the correlation again;
    # with sample quality weights, voomWithQualityWeights in both rounds (the second with the
    # blocks; the weights themselves estimated without them)
    for quality, name in ((False, "de_voom"), (True, "quality")):
        extra = ["--sample-weights", "--name", name] if quality else []
        assert main([*command, *extra, "--top", "0"]) == 0
        voomed = de.voom(paired, "~ condition", norm_factors="tmm", sample_weights=quality)
        first = de.duplicate_correlation(voomed, "~ condition", "patient")
        again = de.voom(
            paired,
            "~ condition",
            norm_factors="tmm",
            block="patient",
            correlation=first.attrs["consensus_correlation"],
            sample_weights=quality,
        )
        direct = de.fit(again, "~ condition", block="patient")
        saved = read_result(paired, name)
        assert saved.attrs["correlation"] == pytest.approx(direct.attrs["correlation"], rel=1e-12)
        np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
        out = capsys.readouterr().out
        assert "correlated within patient (estimated correlation" in out
        assert ("sample weights by REML (lowest:" in out) == quality
    assert read_result(paired, "quality").attrs["sample_weights"] == "REML, by sample"


def test_voom_after_filter_by_expr(tmp_path, capsys):
    """--filter-by-expr: limma-voom's recipe keeps edgeR's filterByExpr genes, then voom on
    them (their own library sizes) and the fit; the result holds those genes."""
    from cohortex import filter_by_expr, simulate

    counts = tmp_path / "counts.zarr"
    simulate(counts, 30, 200, n_de=8, distribution="negbinom", seed=7)
    command = ["de", str(counts), "--design", "~ condition", "--voom", "--filter-by-expr"]
    assert main([*command, "--top", "0"]) == 0
    keep = filter_by_expr(counts, "~ condition")
    assert 100 < keep.attrs["n_kept"] < 200
    voomed = de.voom(open_cohort(counts).isel(gene=keep.values), "~ condition", norm_factors="tmm")
    direct = de.fit(voomed, "~ condition")
    saved = read_result(counts, "de_voom")
    assert list(saved["gene"].values) == list(keep["gene"].values[keep.values])
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert saved.attrs["filter_by_expr"] == 1
    assert f"of the {keep.attrs['n_kept']} genes filterByExpr keeps (of 200)" in (
        capsys.readouterr().out
    )
    assert main(["de", str(counts), "--design", "~ condition", "--filter-by-expr"]) == 2
    assert "--filter-by-expr goes with --voom" in capsys.readouterr().err


def test_voom_lm_fit_command(tmp_path, capsys):
    """--voom-lm-fit: edgeR's voomLmFit with TMM factors (after filterByExpr, with blocks and
    voomLmFit's own gene-by-gene sample weights) saved as de_voom_lm_fit."""
    from cohortex import filter_by_expr

    fixtures = Path(__file__).parents[1] / "fixtures" / "edger"
    counts = pd.read_csv(fixtures / "vlf_counts.csv", index_col=0).to_numpy(float).T
    samples = pd.read_csv(fixtures / "vlf_samples.csv", index_col=0)
    store = tmp_path / "zeros.zarr"
    create_cohort(store, counts, samples=samples, scale="counts")
    command = ["de", str(store), "--design", "~ condition", "--voom-lm-fit", "--top", "0"]
    assert main(command) == 0
    saved = read_result(store, "de_voom_lm_fit")
    direct = de.voom_lm_fit(store, "~ condition", norm_factors="tmm")
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    lost = int((direct["df_residual"].values < 21).sum())
    assert f"voomLmFit linear model (exact zeros cut the df of {lost} genes)" in (
        capsys.readouterr().out
    )
    extra = ["--filter-by-expr", "--block", "patient", "--sample-weights", "genebygene"]
    assert main([*command, *extra, "--name", "all"]) == 0
    keep = filter_by_expr(store, "~ condition")
    direct = de.voom_lm_fit(
        open_cohort(store, genes=keep.values),
        "~ condition",
        norm_factors="tmm",
        block="patient",
        sample_weights=True,
    )
    saved = read_result(store, "all")
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert saved.attrs["correlation"] == direct.attrs["correlation"]
    out = capsys.readouterr().out
    assert "correlated within patient (estimated correlation" in out
    assert "sample weights by limma's gene-by-gene update (lowest:" in out
    assert main([*command, "--voom"]) == 2
    assert "leave out --voom" in capsys.readouterr().err
    assert main([*command, "--block", "patient", "--correlation", "0.1"]) == 2
    assert "leave out --correlation" in capsys.readouterr().err


def test_glm_ql_command(tmp_path, capsys):
    """--glm-ql: edgeR's estimateDisp, glmQLFit and glmQLFTest (TMM factors), saved as
    de_glm_ql and equal to R's; --robust in both; after filterByExpr."""
    from cohortex import filter_by_expr

    fixtures = Path(__file__).parents[1] / "fixtures" / "edger"
    counts = pd.read_csv(fixtures / "ql_counts.csv", index_col=0).to_numpy(float).T
    samples = pd.read_csv(fixtures / "ql_samples.csv", index_col=0)
    store = tmp_path / "ql.zarr"
    create_cohort(store, counts, samples=samples, scale="counts")
    command = ["de", str(store), "--design", "~ condition + batch", "--glm-ql", "--top", "3"]
    assert main([*command, "--contrast", "batch[T.y]"]) == 0
    out = capsys.readouterr().out
    assert "edgeR quasi-likelihood F-tests (common dispersion 0.1" in out
    theirs = pd.read_csv(fixtures / "ql_additive_test_last.csv")
    assert f"{theirs['PValue'].min():.4g}" in out  # the top table starts with R's best gene
    saved = read_result(store, "de_glm_ql")
    np.testing.assert_allclose(saved["pvalue"].values[0], theirs["PValue"], rtol=1e-9)
    two = ["--contrast", "condition[T.b]", "--contrast", "condition[T.c]", "--robust"]
    assert main([*command, *two, "--name", "robust"]) == 0
    theirs = pd.read_csv(fixtures / "ql_robust_test_condition.csv")
    np.testing.assert_allclose(
        read_result(store, "robust")["F_pvalue"], theirs["PValue"], rtol=1e-9
    )
    assert main([*command, "--filter-by-expr", "--name", "kept"]) == 0
    keep = filter_by_expr(store, "~ condition + batch")
    direct = de.glm_ql(open_cohort(store, genes=keep.values), "~ condition + batch")
    saved = read_result(store, "kept")
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    capsys.readouterr()
    assert main([*command, "--voom"]) == 2
    assert "leave out --voom" in capsys.readouterr().err
    assert main([*command, "--trend", "--block", "batch"]) == 2
    assert "leave out --block, --trend" in capsys.readouterr().err
    lrt = ["de", str(store), "--design", "~ condition + batch", "--glm-lrt", "--top", "0"]
    assert main([*lrt, "--contrast", "batch[T.y]"]) == 0
    assert "edgeR likelihood-ratio tests (tagwise dispersions" in capsys.readouterr().out
    theirs = pd.read_csv(fixtures / "ql_lrt_last.csv")
    saved = read_result(store, "de_glm_lrt")
    np.testing.assert_allclose(saved["pvalue"].values[0], theirs["PValue"], rtol=1e-9)
    assert main([*lrt, "--glm-ql"]) == 2
    assert "choose one" in capsys.readouterr().err
    # --treat with --glm-ql: edgeR's glmTreat after glmQLFit
    treat = [*command, "--contrast", "condition[T.b]", "--treat", repr(float(np.log2(1.5)))]
    assert main([*treat, "--name", "treated"]) == 0
    assert "edgeR glmTreat, |log2 FC| > 0.585, after glmQLFit (common" in capsys.readouterr().out
    theirs = pd.read_csv(fixtures / "treat_ql_additive.csv", index_col=0)
    saved = read_result(store, "treated").isel(contrast=0)
    saved = saved.isel(gene=[int(name[1:]) - 1 for name in theirs.index])  # g001 is the first
    np.testing.assert_allclose(saved["pvalue"].values, theirs["PValue"], rtol=1e-8, atol=1e-12)


def test_deseq_command(tmp_path, capsys):
    """--deseq: DESeq2's DESeq and results, saved as de_deseq and equal to R's; the table
    written with --out holds the genes (the size factors stay in the store)."""
    fixtures = Path(__file__).parents[1] / "fixtures" / "deseq"
    counts = pd.read_csv(fixtures / "counts.csv", index_col=0).to_numpy(float).T
    samples = pd.read_csv(fixtures / "samples.csv", index_col=0)
    store = tmp_path / "deseq.zarr"
    create_cohort(store, counts, samples=samples, scale="counts")
    table = tmp_path / "deseq.tsv"
    command = ["de", str(store), "--design", "~ condition", "--deseq", "--top", "3"]
    assert main([*command, "--contrast", "b=condition[T.b]", "--out", str(table)]) == 0
    out = capsys.readouterr().out
    assert "DESeq2 Wald tests (MAP dispersions; " in out
    theirs = pd.read_csv(fixtures / "oneway_genes.csv")
    saved = read_result(store, "de_deseq")
    np.testing.assert_allclose(saved["pvalue"].values[0], theirs["b_pvalue"], rtol=1e-9)
    np.testing.assert_allclose(saved["size_factor"].values.size, counts.shape[0])
    written = pd.read_csv(table, sep="\t")
    assert len(written) == counts.shape[1] and "size_factor" not in written
    np.testing.assert_allclose(written["padj"], theirs["b_padj"], rtol=1e-9)
    assert main([*command, "--reduced", "~ 1", "--name", "lrt"]) == 0
    assert "DESeq2 likelihood-ratio tests against ~ 1" in capsys.readouterr().out
    theirs = pd.read_csv(fixtures / "lrt_genes.csv")
    saved = read_result(store, "lrt").sel(contrast="condition[T.b]")
    np.testing.assert_allclose(saved["pvalue"], theirs["b_pvalue"], rtol=1e-9)
    assert main([*command, "--shrink", "--name", "shrunk"]) == 0
    assert "fold changes shrunk by the Normal prior (lfcShrink)" in capsys.readouterr().out
    theirs = pd.read_csv(fixtures / "shrink_oneway.csv")
    saved = read_result(store, "shrunk").sel(contrast="condition[T.b]")
    np.testing.assert_allclose(saved["coefficient"], theirs["condition_b_vs_a_lfc"], rtol=1e-9)
    assert main(["de", str(store), "--groupby", "condition", "--shrink"]) == 2
    assert "--shrink goes with --deseq" in capsys.readouterr().err
    # --ihw: 600 genes make one bin (IHW is then BH, as it says)
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # the tests otherwise raise cohortex's warnings
        assert main([*command, "--ihw", "--name", "weighted"]) == 0
    captured = capsys.readouterr()
    assert "padj weighted by IHW on the mean counts" in captured.out
    assert "587 tests make one bin" in captured.err
    saved = read_result(store, "weighted").sel(contrast="condition[T.b]")
    np.testing.assert_array_equal(saved["ihw_weight"].values[~np.isnan(saved["pvalue"])], 1.0)
    np.testing.assert_allclose(saved["padj"], fdr.adjust(saved["pvalue"].values), rtol=1e-12)
    assert main([*command, "--ihw", "--fdr", "by"]) == 2
    assert "--ihw weights the bh or bonferroni adjustment" in capsys.readouterr().err
    # with other tests too: de.ihw on the result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one bin: IHW is BH here
        assert main(["de", str(store), "--design", "~ condition", "--glm-ql", "--ihw"]) == 0
        expected = de.ihw(de.glm_ql(store, "~ condition"), method="bh")
    assert "padj weighted by IHW on the mean expression" in capsys.readouterr().out
    saved = read_result(store, "de_glm_ql")
    np.testing.assert_allclose(saved["padj"], expected["padj"], rtol=1e-12)
    # --alpha: the FDR of DESeq2's independent filter and of IHW's weights
    assert main([*command, "--alpha", "0.001", "--name", "strict"]) == 0
    capsys.readouterr()
    saved = read_result(store, "strict")
    expected = de.deseq(store, "~ condition", alpha=0.001)  # filters 253 genes, not 26
    assert saved.attrs["alpha"] == 0.001
    np.testing.assert_allclose(saved["padj"].values, expected["padj"].values, rtol=1e-12)
    assert (
        np.isnan(saved["padj"].values).sum()
        > np.isnan(read_result(store, "de_deseq")["padj"].values).sum()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one bin
        ihw = ["de", str(store), "--design", "~ condition", "--glm-ql", "--ihw", "--alpha", "0.05"]
        assert main([*ihw, "--name", "ihw05"]) == 0
    assert read_result(store, "ihw05").attrs["ihw_alpha"] == 0.05
    assert main(["de", str(store), "--groupby", "condition", "--alpha", "0.05"]) == 2
    assert "--alpha goes with --ihw or --deseq" in capsys.readouterr().err
    assert main([*command, "--alpha", "1.5"]) == 2
    assert "--alpha must be in (0, 1); got 1.5" in capsys.readouterr().err
    assert main([*command, "--use-t", "--name", "with_t"]) == 0
    assert "p-values from Student's t on 21 df (useT)" in capsys.readouterr().out
    expected = de.deseq(store, "~ condition", use_t=True)
    saved = read_result(store, "with_t")
    np.testing.assert_allclose(saved["pvalue"].values, expected["pvalue"].values, rtol=1e-12)
    assert saved.attrs["t_df"] == counts.shape[0] - 3
    assert main([*command, "--fit-type", "local", "--name", "local"]) == 0
    assert "the local dispersion trend" in capsys.readouterr().out
    theirs = pd.read_csv(fixtures / "localfit_genes.csv")
    saved = read_result(store, "local").sel(contrast="condition[T.b]")
    np.testing.assert_allclose(saved["pvalue"], theirs["b_pvalue"], rtol=1e-6)
    assert main(["de", str(store), "--groupby", "condition", "--fit-type", "mean"]) == 2
    assert "--fit-type goes with --deseq" in capsys.readouterr().err
    assert main([*command, "--robust"]) == 2
    assert "no robust mode" in capsys.readouterr().err
    assert main([*command, "--glm-ql"]) == 2
    assert "--glm-ql and --deseq are different tests; choose one" in capsys.readouterr().err


def test_exact_test_command(tmp_path, capsys):
    """--test exact: classic edgeR's exactTest of two groups (TMM factors), equal to R's."""
    fixtures = Path(__file__).parents[1] / "fixtures" / "edger"
    counts = pd.read_csv(fixtures / "ql_counts.csv", index_col=0).to_numpy(float).T
    samples = pd.read_csv(fixtures / "ql_samples.csv", index_col=0)
    store = tmp_path / "classic.zarr"
    create_cohort(store, counts, samples=samples, scale="counts")
    command = ["de", str(store), "--groupby", "condition", "--test", "exact", "--top", "0"]
    assert main([*command, "--reference", "b", "--groups", "c"]) == 0
    assert "edgeR exact test of condition: b against c (common dispersion" in (
        capsys.readouterr().out
    )
    theirs = pd.read_csv(fixtures / "exact_bc.csv")
    saved = read_result(store, "de_exact_condition")
    np.testing.assert_allclose(saved["pvalue"].values, theirs["PValue"], rtol=1e-8, atol=1e-14)
    assert main([*command, "--reference", "b"]) == 2
    assert "give --reference and one group in --groups" in capsys.readouterr().err


def test_vooma_command(tmp_path, capsys):
    """--vooma: limma's vooma then the weighted fit; with --block, the correlation of the
    values, vooma with the blocks, and the correlation again with the weights."""
    fixtures = Path(__file__).parents[1] / "fixtures" / "limma"
    values = pd.read_csv(fixtures / "fry_expression.csv", index_col=0).to_numpy().T
    samples = pd.read_csv(fixtures / "fry_samples.csv", index_col=0)
    store = tmp_path / "arrays.zarr"
    create_cohort(store, values, samples=samples)
    command = ["de", str(store), "--design", "~ group + batch", "--vooma", "--top", "0"]
    assert main(command) == 0
    assert "limma linear model with vooma's weights" in capsys.readouterr().out
    direct = de.fit(de.vooma(store, "~ group + batch"), "~ group + batch")
    saved = read_result(store, "de_vooma")
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert main([*command, "--block", "patient", "--name", "blocks"]) == 0
    first = de.duplicate_correlation(store, "~ group + batch", "patient")
    weighted = de.vooma(
        store,
        "~ group + batch",
        block="patient",
        correlation=first.attrs["consensus_correlation"],
    )
    direct = de.fit(weighted, "~ group + batch", block="patient")
    saved = read_result(store, "blocks")
    assert saved.attrs["correlation"] == pytest.approx(direct.attrs["correlation"], rel=1e-12)
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert main([*command, "--voom"]) == 2
    assert "leave out --voom" in capsys.readouterr().err


def test_de_with_sample_weights(tmp_path, capsys):
    """--sample-weights: arrayWeights then the weighted fit; with --voom,
    voomWithQualityWeights; --var-group, one weight per group."""
    from cohortex import simulate

    counts = tmp_path / "counts.zarr"
    simulate(counts, 30, 80, n_de=8, distribution="negbinom", batches=2, seed=5)
    command = ["de", str(counts), "--design", "~ condition", "--voom", "--sample-weights"]
    assert main([*command, "--top", "0"]) == 0
    voomed = de.voom(counts, "~ condition", norm_factors="tmm", sample_weights=True)
    weights = voomed["sample_weights"].values
    lowest = voomed["sample"].values[np.argmin(weights)]
    out = capsys.readouterr().out
    assert f"sample weights by REML (lowest: {lowest} {weights.min():.3g}" in out
    direct = de.fit(voomed, "~ condition")
    saved = read_result(counts, "de_voom")
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert saved.attrs["sample_weights"] == "REML, by sample"
    assert main([*command, "--var-group", "batch", "--name", "by_batch", "--top", "0"]) == 0
    assert read_result(counts, "by_batch").attrs["sample_weights"] == "REML, by batch"
    assert "sample weights by batch (from" in capsys.readouterr().out
    # limma's own default update, asked for by name
    assert main([*command, "genebygene", "--name", "gbg", "--top", "0"]) == 0
    voomed = de.voom(counts, "~ condition", norm_factors="tmm", sample_weights="genebygene")
    direct = de.fit(voomed, "~ condition")
    saved = read_result(counts, "gbg")
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert saved.attrs["sample_weights"] == "gene by gene, by sample"
    assert "sample weights by limma's gene-by-gene update (lowest:" in capsys.readouterr().out

    logs = tmp_path / "logs.zarr"
    simulate(logs, 30, 80, n_de=8, batches=2, seed=6)
    assert main(["de", str(logs), "--design", "~ condition", "--sample-weights"]) == 0
    aw = de.array_weights(logs, "~ condition")
    direct = de.fit(logs, "~ condition", weights=aw)
    saved = read_result(logs, "de_limma")
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert not np.allclose(direct["pvalue"].values, de.fit(logs, "~ condition")["pvalue"].values)
    # with blocks: arrayWeights, then the block fit with them (its correlation with them too)
    command = ["de", str(logs), "--design", "~ condition", "--sample-weights"]
    assert main([*command, "--block", "batch", "--name", "blocked"]) == 0
    direct = de.fit(logs, "~ condition", weights=aw, block="batch")
    saved = read_result(logs, "blocked")
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert saved.attrs["correlation"] == pytest.approx(direct.attrs["correlation"], rel=1e-12)
    capsys.readouterr()
    assert main(["de", str(logs), "--design", "~ condition", "--var-group", "batch"]) == 2
    assert "--var-group goes with --sample-weights" in capsys.readouterr().err
    assert main(["de", str(logs), "--groupby", "condition", "--sample-weights"]) == 2


def test_bad_input_exits_2_with_the_message(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("gene\tA\tB\ng1\t1\n")
    assert main(["import", str(bad), str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err
    assert "cohortex import: error: Line 2 of" in err and "has 2 fields" in err
    assert not (tmp_path / "x.zarr").exists()
    assert main(["simulate", str(tmp_path / "y.zarr"), "--chunks", "10"]) == 2  # argparse


def test_demo_runs_as_a_command(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cohortex.app.cli",
            "demo",
            "--samples",
            "300",
            "--genes",
            "100",
            "--store",
            str(tmp_path / "demo.zarr"),
            "--report",
            str(tmp_path / "report.html"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "cohortex demo: simulated 300 × 100" in done.stdout
    assert "is_de          bool: 5 true, 95 false" in done.stdout
    assert open_cohort(tmp_path / "demo.zarr").sizes == {"sample": 300, "gene": 100}
    from cohortex import list_results, read_result

    assert list_results(tmp_path / "demo.zarr") == [
        "consensus",
        "de_moderated_t_condition",
        "de_welch_condition",
        "de_wilcoxon_condition",
        "gsea_welch_condition",
        "mds",
        "network",
        "pca",
        "survival_cox",
        "tsne",
    ]
    report = (tmp_path / "report.html").read_text()
    # volcano, top genes, gene sets, forest, Kaplan-Meier, the survival signature's risk
    # groups and calibration, ROC, PCA and t-SNE by condition and by batch, MDS, consensus
    # CDF, the gene tree and module-trait heatmap, autoencoder loss
    assert report.count("<img ") == 17
    network = report.split("<h2>Gene network</h2>")[1].split("<h2>")[0]
    assert "co-expression modules of the 100 most variable genes" in network
    assert "modules of at least 5 genes" in network  # the demo's planted modules: 5 genes
    assert "against them give an adjusted Rand index of" in network
    assert "every hidden factor behind the planted modules is followed" in network
    samples = report.split("<h2>Samples</h2>")[1].split("<h2>")[0]
    assert "The first 300 samples" in samples and "against the batch" in samples
    assert "its first surrogate variable correlates with it at |r| = " in samples
    survival_section = report.split("<h2>Survival</h2>")[1].split("<h2>")[0]
    assert "above against below its median: log-rank p = " in survival_section
    signature = report.split("<p>A survival signature, cross-validated")[1].split("</p>")[0]
    assert "Harrell's C" in signature and "Uno's" in signature
    assert signature.count("time-dependent AUC") == 2
    assert "<h2>Gene sets</h2>" in report and "<td>planted DE" in report
    run = report.split("<h2>This run</h2>")[1].split("<h2>")[0]
    assert "<td>samples</td><td>300</td>" in run and "<td>cohortex</td>" in run
    cohort = report.split("<h2>The cohort</h2>")[1].split("<h2>")[0]
    assert "de_welch_condition" in cohort and "results      (none)" not in cohort
    top = report.split("<h2>Top genes (Welch, tumor vs normal)</h2>")[1].split("<h2>")[0]
    assert top.count("<tr><td>") == 15
    assert "PCA by batch" in report and "t-SNE by batch" in report
    side_by_side = report.split("<h2>Autoencoder, PCA and a shallow autoencoder</h2>")[1]
    side_by_side = side_by_side.split("<h2>")[0]
    for name in ("deep (128, 16, 128)", "pca 16", "shallow (16,)"):
        assert f"<tr><td>{name}</td><td>" in side_by_side
    modules = report.split("<h2>Autoencoder modules</h2>")[1].split("<h2>")[0]
    assert modules.count("<tr><td>") == 16  # a row per bottleneck node, its best set named
    assert "empirical FDR" in report and "5 genes were planted" in report
    assert "of the 2 genes planted" in report and "AUROC" in report
    welch = read_result(tmp_path / "demo.zarr", "de_welch_condition")
    called = int((welch["padj"].values < 0.05).sum())
    assert "welch" in done.stdout and f"{called:5d} genes called" in done.stdout
    moderated = read_result(tmp_path / "demo.zarr", "de_moderated_t_condition")
    called = int((moderated["padj"].values < 0.05).sum())
    assert "moderated t" in done.stdout and f"{called:5d} genes called" in done.stdout
    assert "<td>moderated t</td>" in report


def test_de_command(tmp_path, capsys):
    store = tmp_path / "s.zarr"
    assert (
        main(
            [
                "simulate",
                str(store),
                "--samples",
                "200",
                "--genes",
                "60",
                "--n-de",
                "6",
                "--seed",
                "2",
            ]
        )
        == 0
    )
    capsys.readouterr()
    out = tmp_path / "table.tsv"
    assert (
        main(
            [
                "de",
                str(store),
                "--groupby",
                "condition",
                "--reference",
                "normal",
                "--out",
                str(out),
                "--top",
                "3",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "saved as result 'de_welch_condition'" in printed
    from cohortex import de, read_result

    saved = read_result(store, "de_welch_condition")
    direct = de.test(store, "condition", reference="normal")
    np.testing.assert_array_equal(saved["pvalue"].values, direct["pvalue"].values)
    import pandas as pd

    table = pd.read_csv(out, sep="\t")
    assert len(table) == 60 and {"gene", "statistic", "pvalue", "padj"} <= set(table.columns)
    best = de.top(direct, 3)["gene"].tolist()
    assert all(gene in printed for gene in best)
    assert (
        main(
            [
                "de",
                str(store),
                "--groupby",
                "condition",
                "--test",
                "wilcoxon",
                "--no-tie-correct",
                "--name",
                "untied",
                "--top",
                "0",
            ]
        )
        == 0
    )
    untied = read_result(store, "untied")
    direct = de.test(store, "condition", test="wilcoxon", tie_correct=False)
    np.testing.assert_array_equal(untied["pvalue"].values, direct["pvalue"].values)
    # two groups each against the rest: both directions are saved, one is printed
    capsys.readouterr()
    assert main(["de", str(store), "--groupby", "condition", "--top", "4"]) == 0
    printed = capsys.readouterr().out
    both = read_result(store, "de_welch_condition")
    assert list(both["contrast"].values) == ["normal_vs_tumor", "tumor_vs_normal"]
    assert "normal_vs_tumor (tumor_vs_normal is its mirror image, also saved)" in printed
    shown = de.top(both.isel(contrast=[0]), 4)["gene"].tolist()
    assert all(printed.count(f" {gene} ") == 1 for gene in shown)
    assert " tumor_vs_normal " not in printed
    assert main(["de", str(store), "--groupby", "cond"]) == 2
    assert "Sample variables: condition" in capsys.readouterr().err


def test_de_command_with_a_design(tmp_path, capsys):
    from cohortex import de, read_result, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 120, 50, n_de=6, seed=3)
    capsys.readouterr()
    arguments = ["de", str(store), "--design", "~ condition", "--top", "2"]
    contrast = "tumor=condition[T.tumor]"
    assert main([*arguments, "--contrast", contrast, "--robust", "--name", "lm"]) == 0
    printed = capsys.readouterr().out
    assert "limma linear model in" in printed and "saved as result 'lm'" in printed
    saved = read_result(store, "lm")
    direct = de.fit(store, "~ condition", contrasts={"tumor": "condition[T.tumor]"}, robust=True)
    np.testing.assert_array_equal(saved["pvalue"].values, direct["pvalue"].values)
    assert list(saved["contrast"].values) == ["tumor"] and saved.attrs["robust"] == 1
    assert main([*arguments, "--treat", "0.5", "--trend"]) == 0
    treated = read_result(store, "de_limma")
    assert treated.attrs["treat_lfc"] == 0.5 and treated.attrs["trend"] == 1
    capsys.readouterr()
    assert main(["de", str(store), "--groupby", "condition", "--trend"]) == 2
    assert "go with --design" in capsys.readouterr().err
    assert main(["de", str(store), "--design", "~ condition", "--contrast", "x=tumour"]) == 2
    assert "unknown coefficients: tumour" in capsys.readouterr().err
    assert main([*arguments, "--robust-fit", "--name", "rlm"]) == 0
    assert "limma linear model (robust: rlm) in" in capsys.readouterr().out
    saved = read_result(store, "rlm")
    direct = de.fit(store, "~ condition", method="robust")
    np.testing.assert_array_equal(saved["pvalue"].values, direct["pvalue"].values)
    assert saved.attrs["method"] == "robust"
    assert main(["de", str(store), "--groupby", "condition", "--robust-fit"]) == 2
    assert "--robust-fit and --treat go with --design" in capsys.readouterr().err


def test_de_command_with_voom(tmp_path, capsys):
    from cohortex import de, read_result, simulate

    store = tmp_path / "c.zarr"
    simulate(store, 60, 80, n_de=8, distribution="negbinom", seed=4)
    capsys.readouterr()
    assert main(["de", str(store), "--design", "~ condition", "--voom", "--top", "0"]) == 0
    assert "limma-voom linear model in" in capsys.readouterr().out
    saved = read_result(store, "de_voom")
    direct = de.fit(de.voom(store, "~ condition", norm_factors="tmm"), "~ condition")
    np.testing.assert_array_equal(saved["pvalue"].values, direct["pvalue"].values)
    unweighted = de.fit(de.voom(store, "~ condition").drop_vars("weights"), "~ condition")
    assert not np.allclose(saved["pvalue"].values, unweighted["pvalue"].values)
    assert main(["de", str(store), "--groupby", "condition", "--voom"]) == 2
    assert "go with --design" in capsys.readouterr().err


def test_de_command_paired_and_one_sided(tmp_path, capsys):
    import pandas as pd

    from cohortex import create_cohort, de, read_result

    rng = np.random.default_rng(5)
    x = rng.normal(5, 1, (20, 30))
    samples = pd.DataFrame(
        {"tissue": ["tumour"] * 10 + ["normal"] * 10, "patient": [f"P{i}" for i in range(10)] * 2}
    )
    store = tmp_path / "p.zarr"
    create_cohort(store, x, samples=samples)
    arguments = ["de", str(store), "--groupby", "tissue", "--reference", "normal", "--top", "0"]
    assert main([*arguments, "--paired-by", "patient", "--alternative", "less"]) == 0
    assert "paired t test of tissue" in capsys.readouterr().out
    saved = read_result(store, "de_paired_tissue")
    direct = de.test(store, "tissue", reference="normal", paired_by="patient", alternative="less")
    np.testing.assert_array_equal(saved["pvalue"].values, direct["pvalue"].values)
    assert saved.attrs["alternative"] == "less" and saved.attrs["paired_by"] == "patient"
    assert main(["de", str(store), "--design", "~ tissue", "--paired-by", "patient"]) == 2
    assert "go with --groupby" in capsys.readouterr().err


def test_result_names_from_odd_variables_and_bad_names(tmp_path, capsys):
    import pandas as pd

    from cohortex import create_cohort, list_results

    x = np.random.default_rng(6).normal(5, 1, (20, 30))
    samples = pd.DataFrame({"tumor stage": ["I"] * 10 + ["II/III"] * 10})
    store = tmp_path / "s.zarr"
    create_cohort(store, x, samples=samples)
    assert main(["de", str(store), "--groupby", "tumor stage", "--top", "0"]) == 0
    assert list_results(store) == ["de_welch_tumor_stage"]  # a name the store can hold
    for command in (["de", str(store), "--groupby", "tumor stage"], ["pca", str(store)]):
        capsys.readouterr()
        assert main([*command, "--name", "../outside"]) == 2  # refused before any work
        assert "The 'name' parameter of write_result() must be" in capsys.readouterr().err
    assert list_results(store) == ["de_welch_tumor_stage"]


def test_pca_and_tsne_commands(tmp_path, capsys):
    from cohortex import pca, read_result

    store = tmp_path / "s.zarr"
    assert (
        main(
            [
                "simulate",
                str(store),
                "--samples",
                "150",
                "--genes",
                "80",
                "--groups",
                "a=0.34,b=0.33,c=0.33",
                "--n-de",
                "0.5",
                "--seed",
                "4",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "pca",
                str(store),
                "--n-components",
                "10",
                "--genes",
                "all",
                "--plot",
                str(tmp_path / "pca.png"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "saved as result 'pca'" in printed and (tmp_path / "pca.png").stat().st_size > 1000
    saved = read_result(store, "pca")
    direct = pca(store, 10)
    np.testing.assert_allclose(saved["explained_variance"], direct["explained_variance"])
    assert main(["tsne", str(store), "--perplexity", "10", "--n-iter", "100"]) == 0
    embedded = read_result(store, "tsne")
    assert embedded["embedding"].shape == (150, 2)
    assert set(embedded["condition"].values) == {"a", "b", "c"}


def test_tsne_with_too_few_samples_stores_nothing(tmp_path, capsys):
    from cohortex import list_results

    store = tmp_path / "s.zarr"
    assert main(["simulate", str(store), "--samples", "60", "--genes", "40"]) == 0
    assert main(["tsne", str(store), "--perplexity", "30"]) == 2
    assert "needs at least 90 samples" in capsys.readouterr().err
    assert list_results(store) == []  # no PCA computed and stored for a t-SNE that cannot run
    assert main(["tsne", str(store), "--perplexity", "-1"]) == 2
    assert "expected a positive number" in capsys.readouterr().err
    assert list_results(store) == []


def test_ae_commands(tmp_path, capsys):
    from cohortex import read_result
    from cohortex.ae import Autoencoder

    store = tmp_path / "s.zarr"
    assert (
        main(
            [
                "simulate",
                str(store),
                "--samples",
                "300",
                "--genes",
                "60",
                "--n-de",
                "10",
                "--seed",
                "5",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "ae",
                "train",
                str(store),
                "--hidden",
                "16,4,16",
                "--lr",
                "0.005",
                "--max-epochs",
                "5",
                "--batch-size",
                "32",
            ]
        )
        == 0
    )
    assert "held-out MSE" in capsys.readouterr().out
    model = Autoencoder.load(tmp_path / "s.autoencoder.pt")
    assert model.hidden == (16, 4, 16) and len(model.history_) == 5 and model.pca_path
    # a checkpointed run, resumed: the same model as the run above
    resume = ["ae", "train", str(store), "--hidden", "16,4,16", "--lr", "0.005", "--max-epochs"]
    resume += ["5", "--batch-size", "32", "--checkpoint", str(tmp_path / "ck.pt")]
    resume += ["--model", str(tmp_path / "again.pt")]
    assert main(resume) == 0 and main([*resume, "--resume"]) == 0
    again = Autoencoder.load(tmp_path / "again.pt")
    assert again.history_ == model.history_
    assert main(["ae", "train", str(store), "--resume"]) == 2
    assert "--resume needs --checkpoint" in capsys.readouterr().err
    dwivedi = ["ae", "train", str(store), "--recipe", "dwivedi", "--hidden", "16,4,16"]
    assert main([*dwivedi, "--max-epochs", "2", "--model", str(tmp_path / "d.pt")]) == 0
    assert not Autoencoder.load(tmp_path / "d.pt").pca_path
    assert (
        main(
            [
                "ae",
                "modules",
                str(store),
                "--groupby",
                "condition",
                "--reference",
                "normal",
                "--layer",
                "1",
                "--module-size",
                "10",
                "--out",
                str(tmp_path / "module.txt"),
            ]
        )
        == 0
    )
    saved = read_result(store, "ae_modules_condition")
    listed = (tmp_path / "module.txt").read_text().split()
    assert listed == list(saved["gene"].values[saved["in_module"].values])


def test_bench_command(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "--samples", "240", "--genes", "90", "--only", "de,wilcoxon"]
    assert main([*argv, "--out", str(out), "--scipy-genes", "30"]) == 0
    report = json.loads((out / "bench.json").read_text())
    assert report["shape"] == [240, 90]
    assert report["machine"]["device"] == "cpu" and report["machine"]["cpus"] >= 1
    rows = {(r["suite"], r["case"]): r for r in report["rows"]}
    assert {suite for suite, _ in rows} == {"limits", "de", "wilcoxon"}
    for key in [("limits", "memory_pass"), ("limits", "zarr_read"), ("de", "scanpy")]:
        assert rows[key]["seconds"] > 0 and rows[key]["peak_rss_bytes"] > 0, key
    for suite in ("de", "wilcoxon"):
        mine = rows[(suite, "cohortex_memory")]
        assert mine["fraction_of_limit"] == pytest.approx(
            rows[("limits", "memory_pass")]["seconds"] / mine["seconds"]
        )
        assert rows[(suite, "cohortex_zarr")]["fraction_of_limit"] == pytest.approx(
            rows[("limits", "zarr_read")]["seconds"] / rows[(suite, "cohortex_zarr")]["seconds"]
        )
        scipy = rows[(suite, "scipy")]
        assert scipy["extrapolated_from_genes"] == 30
        assert scipy["seconds"] == pytest.approx(scipy["measured_seconds"] * 90 / 30)
        assert scipy["speedup"] == pytest.approx(scipy["seconds"] / mine["seconds"])
        assert rows[(suite, "scanpy")]["speedup"] == pytest.approx(
            rows[(suite, "scanpy")]["seconds"] / mine["seconds"]
        )
    assert ("de", "rapids_singlecell") not in rows  # GPU anchors only in GPU runs
    table = (out / "bench.md").read_text()
    assert "| cpu | de | scipy |" in table and "extrapolated from 30 genes" in table
    assert "wrote" in capsys.readouterr().out


def test_bench_paired_suite_agrees_with_scipy(tmp_path):
    """The signed-rank suite: the i-th tumor paired with the i-th normal sample, cohortex in
    memory and from the store against scipy's wilcoxon of the same differences."""
    out = tmp_path / "bench"
    argv = ["bench", "--samples", "240", "--genes", "90", "--only", "paired"]
    assert main([*argv, "--out", str(out), "--scipy-genes", "30"]) == 0
    report = json.loads((out / "bench.json").read_text())
    rows = {(r["suite"], r["case"]): r for r in report["rows"]}
    assert {case for suite, case in rows if suite == "paired"} == {
        "cohortex_memory",
        "cohortex_zarr",
        "scipy",
    }
    assert rows[("paired", "scipy")]["extrapolated_from_genes"] == 30
    for case in ("cohortex_memory", "cohortex_zarr"):
        assert report["agreement"][f"paired {case} cpu"] < 1e-10


def test_bench_ae_suite_compares_rates(tmp_path):
    """cohortex trains two epochs of 90% of the samples and the plain loop one of all: the
    speed-up is the ratio of samples per second, not of seconds."""
    out = tmp_path / "bench"
    assert (
        main(["bench", "--samples", "300", "--genes", "40", "--only", "ae", "--out", str(out)]) == 0
    )
    rows = {r["case"]: r for r in json.loads((out / "bench.json").read_text())["rows"]}
    mine, plain = rows["cohortex_zarr"], rows["torch_loop"]
    assert mine["samples_trained"] == 2 * 270 and plain["samples_trained"] == 300
    assert mine["epoch_samples_per_second"] > 0 and "fraction_of_limit" not in mine
    assert plain["speedup"] == pytest.approx((540 / mine["seconds"]) / (300 / plain["seconds"]))


def test_bench_voom_suite(tmp_path):
    """On a log2 cohort the suite simulates counts of the same shape; R runs where installed."""
    import shutil

    out = tmp_path / "bench"
    argv = ["bench", "--samples", "120", "--genes", "80", "--only", "voom", "--r-samples", "60"]
    assert main([*argv, "--out", str(out)]) == 0
    report = json.loads((out / "bench.json").read_text())
    rows = {(r["suite"], r["case"]): r for r in report["rows"]}
    assert (out / "counts_120x80.zarr" / "zarr.json").exists()
    for case in ("cohortex_zarr", "unweighted_zarr", "cohortex_slice"):
        row = rows[("voom", case)]
        assert 0 < row["fit_seconds"] < row["seconds"] and row["peak_rss_bytes"] > 0, case
    assert rows[("voom", "cohortex_slice")]["samples"] == 60
    limma = rows[("voom", "limma_r")]
    if shutil.which("Rscript") is None:
        assert "not installed" in limma["skipped"]
    elif "skipped" not in limma:
        assert limma["samples"] == 60
        assert limma["extrapolated_seconds"] == pytest.approx(limma["seconds"] * 2)
        slice_seconds = rows[("voom", "cohortex_slice")]["seconds"]
        assert limma["speedup"] == pytest.approx(limma["seconds"] / slice_seconds)
    assert "the fit alone" in (out / "bench.md").read_text()
    counts = open_cohort(out / "counts_120x80.zarr")
    for case, data in (("lmfit_zarr", counts), ("lmfit_slice", counts.isel(sample=slice(0, 60)))):
        df = de.voom_lm_fit(data, "~ condition", norm_factors="tmm")["df_residual"].values
        assert rows[("voom", case)]["genes_losing_df"] == (df < df.max()).sum(), case
    assert rows[("voom", "lmfit_slice")]["samples"] == 60
    edger = rows[("voom", "edger_lmfit_r")]
    if shutil.which("Rscript") is None:
        assert "not installed" in edger["skipped"]
    elif "skipped" not in edger:
        lmfit_seconds = rows[("voom", "lmfit_slice")]["seconds"]
        assert edger["speedup"] == pytest.approx(edger["seconds"] / lmfit_seconds)
    # glmTreat after glmQLFit on the slice, R's beside it
    assert rows[("voom", "treat_slice")]["common_dispersion"] > 0
    treat = rows[("voom", "edger_treat_r")]
    if "skipped" not in treat:
        assert treat["speedup"] == pytest.approx(
            treat["seconds"] / rows[("voom", "treat_slice")]["seconds"]
        )


def test_bench_survival_suite(tmp_path):
    """Without time and event in the store the suite draws an outcome; lifelines where
    installed, extrapolated from --scipy-genes genes."""
    out = tmp_path / "bench"
    argv = ["bench", "--samples", "150", "--genes", "30", "--only", "survival"]
    assert main([*argv, "--out", str(out), "--scipy-genes", "10"]) == 0
    rows = {r["case"]: r for r in json.loads((out / "bench.json").read_text())["rows"]}
    for case in ("cohortex_zarr", "logrank_zarr", "zph_zarr"):
        assert rows[case]["seconds"] > 0 and rows[case]["fraction_of_limit"] > 0, case
    for anchor, against in (("lifelines", "cohortex_zarr"), ("lifelines_logrank", "logrank_zarr")):
        lifelines = rows[anchor]
        if "skipped" in lifelines:
            assert lifelines["skipped"] == "lifelines is not installed"
        else:
            assert lifelines["extrapolated_from_genes"] == 10
            assert lifelines["seconds"] == pytest.approx(lifelines["measured_seconds"] * 3)
            assert lifelines["speedup"] == pytest.approx(
                lifelines["seconds"] / rows[against]["seconds"]
            )


def test_bench_predict_suite(tmp_path):
    out = tmp_path / "bench"
    argv = ["bench", "--samples", "200", "--genes", "60", "--only", "predict"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = {r["case"]: r for r in json.loads((out / "bench.json").read_text())["rows"]}
    mine, usual = rows["cohortex_zarr"], rows["select_then_sklearn"]
    stages = ("selection_seconds", "reading_seconds", "fitting_seconds")
    assert sum(mine[s] for s in stages) <= mine["seconds"]
    assert 0.5 < mine["auroc"] <= 1 and 0.5 < usual["auroc"] <= 1
    assert usual["speedup"] == pytest.approx(usual["seconds"] / mine["seconds"])


def test_bench_genesets_suite(tmp_path):
    out = tmp_path / "bench"
    argv = ["bench", "--samples", "100", "--genes", "80", "--only", "genesets"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = {r["case"]: r for r in json.loads((out / "bench.json").read_text())["rows"]}
    assert rows["cohortex_gsea"]["seconds"] > 0
    anchor = rows["gseapy"]
    if "skipped" in anchor:
        assert anchor["skipped"] == "gseapy is not installed"
    else:
        assert anchor["seconds"] == pytest.approx(anchor["measured_seconds"] * 1000)
        assert (
            "**extrapolated** from 100 sets × 1000 permutations" in (out / "bench.md").read_text()
        )
    # fry on the first --r-samples samples, R's fry beside it where R is installed
    assert rows["cohortex_fry"]["seconds"] > 0 and rows["cohortex_fry"]["samples"] == 100
    limma = rows["limma_fry_r"]
    if "skipped" in limma:
        assert "not installed" in limma["skipped"]
    else:
        assert limma["speedup"] == pytest.approx(limma["seconds"] / rows["cohortex_fry"]["seconds"])
    # roast of the first 100 sets, R's mroast beside it
    assert rows["cohortex_roast"]["sets"] == 100 and rows["cohortex_fry"]["sets"] == 1000
    limma = rows["limma_roast_r"]
    if "skipped" in limma:
        assert "not installed" in limma["skipped"]
    else:
        assert limma["sets"] == 100
        assert limma["speedup"] == pytest.approx(
            limma["seconds"] / rows["cohortex_roast"]["seconds"]
        )
    assert rows["cohortex_romer"]["sets"] == 100
    assert "skipped" in rows["limma_romer_r"] or rows["limma_romer_r"]["speedup"] > 0
    # GSVA's scores of fry's sets on the first 200 samples (here all 100), R's GSVA beside
    assert rows["cohortex_gsva"]["samples"] == 100 and rows["cohortex_gsva"]["sets"] == 1000
    gsva_r = rows["gsva_r"]
    if "skipped" in gsva_r:
        assert "not installed" in gsva_r["skipped"]
    else:
        assert gsva_r["speedup"] == pytest.approx(
            gsva_r["seconds"] / rows["cohortex_gsva"]["seconds"]
        )


def test_bench_batch_suite(tmp_path):
    """ComBat and ComBat-seq (on the counts store) from the store and on the slice, sva
    beside them where R has it."""
    import shutil

    out = tmp_path / "bench"
    argv = ["bench", "--samples", "90", "--genes", "60", "--only", "batch", "--r-samples", "45"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = {r["case"]: r for r in json.loads((out / "bench.json").read_text())["rows"]}
    assert rows["combat_zarr"]["seconds"] > 0 and rows["combat_zarr"]["iterations"] > 0
    assert rows["combat_slice"]["samples"] == 45
    sva = rows["sva_r"]
    if shutil.which("Rscript") is None or "skipped" in sva:
        assert "not installed" in sva.get("skipped", "not installed")
    else:
        assert sva["speedup"] == pytest.approx(sva["seconds"] / rows["combat_slice"]["seconds"])
    assert rows["combat_seq_zarr"]["seconds"] > 0
    assert rows["combat_seq_slice"]["samples"] == 90  # up to 300
    seq = rows["sva_seq_r"]
    if shutil.which("Rscript") is None or "skipped" in seq:
        assert "not installed" in seq.get("skipped", "not installed")
    else:
        assert seq["samples"] == 90
        assert seq["speedup"] == pytest.approx(seq["seconds"] / rows["combat_seq_slice"]["seconds"])


def test_bench_refuses_bad_options(tmp_path, capsys):
    assert main(["bench", "--only", "de,foo"]) == 2
    assert (
        "unknown suite(s) foo; choose from de, wilcoxon, paired, pca, tsne, ae, survival, predict, "
        "genesets, voom" in capsys.readouterr().err
    )
    assert main(["bench", "--device", "gpu", "--out", str(tmp_path)]) == 2
    assert "pip install 'cohortex[cuda12]'" in capsys.readouterr().err


def test_survival_command(tmp_path, capsys):
    from cohortex import list_results, open_cohort, read_result, simulate, survival

    store = tmp_path / "s.zarr"
    simulate(store, 300, 40, n_de=4, survival_genes=2, log_hr=1.0, seed=6)
    capsys.readouterr()
    truth = open_cohort(store)["true_log_hr"].to_series()
    best = str(truth.abs().idxmax())
    plot, out = tmp_path / "km.png", tmp_path / "cox.tsv"
    arguments = ["survival", str(store), "--time", "time", "--event", "event", "--top", "2"]
    assert main([*arguments, "--out", str(out), "--km", best, "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "Cox models of 40 genes" in printed and "saved as result 'survival_cox'" in printed
    saved = read_result(store, "survival_cox")
    direct = survival.cox(store, "time", "event")
    np.testing.assert_array_equal(saved["pvalue"].values, direct["pvalue"].values)
    top_two = {line.split()[0] for line in printed.splitlines()[2:4]}
    assert top_two == {str(g) for g in truth[truth != 0].index}  # the planted genes lead
    assert plot.stat().st_size > 1000 and len(out.read_text().splitlines()) == 41
    assert main([*arguments, "--test", "logrank", "--strata", "condition"]) == 0
    assert read_result(store, "survival_logrank").attrs["strata"] == "condition"
    capsys.readouterr()
    # cox.zph of every gene's model, with the rank transform of time
    assert main([*arguments, "--test", "zph", "--transform", "rank"]) == 0
    assert "tests of proportional hazards of 40 genes" in capsys.readouterr().out
    saved = read_result(store, "survival_zph")
    tested = survival.cox_zph(store, "time", "event", transform="rank")
    np.testing.assert_array_equal(saved["pvalue"].values, tested["pvalue"].values)
    # with covariates each one's own test too, as columns of the table
    zph_out = tmp_path / "zph.tsv"
    assert (
        main([*arguments, "--test", "zph", "--covariates", "~ condition", "--out", str(zph_out)])
        == 0
    )
    assert "saved as result 'survival_zph'" in capsys.readouterr().out
    with_terms = survival.cox_zph(store, "time", "event", covariates="~ condition")
    written = pd.read_csv(zph_out, sep="\t")
    np.testing.assert_allclose(
        written["condition_statistic"], with_terms["term_statistic"].sel(term="condition")
    )
    assert main([*arguments, "--transform", "log"]) == 2
    assert "--transform goes with --test zph" in capsys.readouterr().err
    # each model's concordance too, printed with the top genes
    assert main([*arguments, "--name", "with_c", "--concordance"]) == 0
    assert "concordance" in capsys.readouterr().out
    with_c = survival.cox(store, "time", "event", concordance=True)
    np.testing.assert_array_equal(
        read_result(store, "with_c")["concordance"].values, with_c["concordance"].values
    )
    assert main([*arguments, "--test", "logrank", "--concordance"]) == 2
    assert "--concordance goes with --test cox" in capsys.readouterr().err
    assert main([*arguments, "--km", best]) == 2
    assert "--km GENE and --plot FILE go together" in capsys.readouterr().err
    # an unknown gene fails before the models are fitted and stored
    assert main([*arguments, "--name", "again", "--km", "NOPE", "--plot", str(plot)]) == 2
    assert "The gene 'NOPE' is not in the cohort" in capsys.readouterr().err
    assert "again" not in list_results(store)
    # the store's variables called time and event are the default outcome
    assert main(["survival", str(store), "--name", "defaults", "--top", "0"]) == 0
    defaults = read_result(store, "defaults")
    np.testing.assert_array_equal(defaults["pvalue"].values, direct["pvalue"].values)
    unnamed = tmp_path / "plain.zarr"
    simulate(unnamed, 40, 10, seed=1)
    assert main(["survival", str(unnamed), "--event", "condition"]) == 2
    assert "--time must name the sample variable of the follow-up times" in (
        capsys.readouterr().err
    )


def test_survival_command_by_groups(tmp_path, capsys):
    """--by compares the survival of a sample variable's groups: survdiff's test, the
    medians and restricted means, the Kaplan–Meier plot, the table; nothing stored."""
    from cohortex import list_results, simulate, survival

    store = tmp_path / "s.zarr"
    simulate(store, 300, 40, n_de=4, survival_genes=2, log_hr=1.0, seed=6)
    capsys.readouterr()
    plot, out = tmp_path / "groups.png", tmp_path / "groups.csv"
    arguments = ["survival", str(store), "--by", "condition"]
    assert main([*arguments, "--rho", "1", "--plot", str(plot), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    test = survival.compare_groups(store, "time", "event", "condition", rho=1.0)
    assert f"G-rho (rho = 1) chi-square {test.statistic:.3f} on 1 df" in printed
    written = pd.read_csv(out).set_index("group")
    np.testing.assert_allclose(written["expected"], test.table["expected"], rtol=1e-12)
    medians = survival.median_survival(store, "time", "event", by="condition")
    np.testing.assert_allclose(written["rmean"], medians["rmean"], rtol=1e-12)
    assert plot.stat().st_size > 1000 and list_results(store) == []
    assert main([*arguments, "--test", "logrank"]) == 2
    assert "--by compares sample groups" in capsys.readouterr().err
    assert main(["survival", str(store), "--rho", "1"]) == 2
    assert "--rho and --causes go with --by" in capsys.readouterr().err


def test_survival_command_competing_causes(tmp_path, capsys):
    """--by with --causes: each cause's cumulative incidence by group and Gray's tests, the
    curves' table and plot (R's mgus2: progression or death first)."""
    from cohortex import read_result, survival
    from cohortex.store import create_cohort

    data = pd.read_csv(Path(__file__).parents[1] / "fixtures" / "survival" / "mgus2.csv")
    store = tmp_path / "mgus2.zarr"
    samples = data[["sample", "etime", "status", "sex"]].set_index("sample")
    expression = pd.DataFrame({"age": data["age"].to_numpy(float)}, index=data["sample"])
    create_cohort(store, expression, samples=samples, scale="linear")
    plot, out = tmp_path / "cif.png", tmp_path / "cif.tsv"
    arguments = ["survival", str(store), "--time", "etime", "--event", "status", "--by", "sex"]
    assert main([*arguments, "--causes", "--plot", str(plot), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    expected = survival.cumulative_incidence(None, data["etime"], data["status"], by=data["sex"])
    for cause, row in expected.tests.iterrows():
        assert f"Gray's test of cause {cause}: chi-square {row['statistic']:.3f} on 1 df" in printed
    written = pd.read_csv(out, sep="\t")
    np.testing.assert_allclose(written["estimate"], expected.curves["estimate"], rtol=1e-12)
    assert plot.stat().st_size > 1000
    # a Fine-Gray model per gene (here the one "gene", age), stored as a result
    base = ["survival", str(store), "--time", "etime", "--event", "status"]
    assert main([*base, "--test", "finegray", "--cause", "2", "--covariates", "~ sex"]) == 0
    printed = capsys.readouterr().out
    assert "Fine-Gray models of cause 2 of 1 genes" in printed
    saved = read_result(store, "survival_finegray")
    alone = survival.fine_gray(store, "etime", "status", genes=["age"], covariates="~ sex", cause=2)
    assert float(saved["coefficient"][0]) == pytest.approx(alone.terms["coefficient"].iloc[0])
    assert main([*base, "--test", "finegray", "--strata", "sex"]) == 2
    assert "--test finegray takes no --strata" in capsys.readouterr().err


def test_predict_command(tmp_path, capsys):
    import pandas as pd

    from cohortex import predict, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 120, 200, n_de=10, log2fc=2.0, seed=7)
    capsys.readouterr()
    out = tmp_path / "predictions.tsv"
    argv = ["predict", str(store), "--target", "condition", "--k", "20", "--folds", "4"]
    assert main([*argv, "--permutations", "3", "--out", str(out), "--top", "5"]) == 0
    printed = capsys.readouterr().out
    direct = predict.cross_validate(store, "condition", k=20, folds=4, permutations=3)
    assert f"AUROC {direct.auroc:.3f} (95% CI" in printed
    assert "permutation p = " in printed and "selected" in printed
    table = pd.read_csv(out, sep="\t")
    assert len(table) == 120 and {"sample", "truth", "p_tumor", "p_normal"} <= set(table.columns)
    assert main([*argv, "--C", "0.01", "1", "--top", "0"]) == 0
    assert "C chosen by nested cross-validation, per fold: " in capsys.readouterr().out
    assert main(["predict", str(store), "--target", "conditon"]) == 2
    assert "must name a sample variable" in capsys.readouterr().err
    assert main(["predict", str(store)]) == 2
    assert "--target (classes) or --time and --event" in capsys.readouterr().err


def test_predict_survival_command(tmp_path, capsys):
    from cohortex import predict, simulate, survival

    store = tmp_path / "s.zarr"
    simulate(store, 200, 300, survival_genes=3, log_hr=0.6, seed=9)
    capsys.readouterr()
    out = tmp_path / "risks.tsv"
    argv = ["predict", str(store), "--time", "time", "--event", "event", "--k", "10"]
    plot = tmp_path / "groups.png"
    assert main([*argv, "--ridge", "1", "--out", str(out), "--top", "3", "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 1000
    printed = capsys.readouterr().out
    direct = predict.cross_validate_survival(store, "time", "event", k=10, ridge=1.0)
    assert f"Harrell's C {direct.concordance:.3f}" in printed
    assert f"log-rank chi-square {direct.logrank_statistic:.2f}" in printed
    written = pd.read_csv(out, sep="\t")
    np.testing.assert_allclose(written["risk"], direct.predictions["risk"], rtol=1e-12)
    assert main([*argv, "--penalty", "l1"]) == 0
    printed = capsys.readouterr().out
    lasso = predict.cross_validate_survival(store, "time", "event", model="lasso", k=10)
    assert printed.startswith("lasso Cox on 10 genes") and "genes kept per fold" in printed
    assert f"Harrell's C {lasso.concordance:.3f}" in printed
    assert main([*argv, "--penalty", "l1", "--lambda-choice", "lambda_1se"]) == 0
    sparse = predict.cross_validate_survival(
        store, "time", "event", model="lasso", k=10, lambda_choice="lambda_1se"
    )
    assert f"Harrell's C {sparse.concordance:.3f}" in capsys.readouterr().out
    assert main([*argv, "--penalty", "elasticnet"]) == 2
    assert "l2 (the ridge) or l1 (the lasso)" in capsys.readouterr().err
    assert main([*argv, "--model", "random_forest"]) == 2
    assert "--model go with --target" in capsys.readouterr().err
    assert main(["predict", str(store), "--target", "condition", "--ridge", "1"]) == 2
    assert "--at-times, --validate and --plot go" in capsys.readouterr().err
    assert main([*argv, "--ridge", "1", "--at-times", "2,5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    scored = predict.cross_validate_survival(
        store, "time", "event", k=10, ridge=1.0, times=[2.0, 5.0]
    )
    assert f"Uno's C {scored.weighted_concordance().concordance:.3f}" in printed
    for at in (2.0, 5.0):
        row = scored.scores.loc[at]
        assert f"at {at:g}: Brier {row['brier']:.3f}" in printed
        assert f"IPA {row['ipa']:.3f}), AUC {row['auc']:.3f}" in printed
    written = pd.read_csv(out, sep="\t")
    np.testing.assert_allclose(written["survival_5"], scored.predictions["survival_5"], rtol=1e-12)
    assert main([*argv, "--at-times", "2,x"]) == 2
    assert "--at-times takes comma-separated numbers" in capsys.readouterr().err
    other = tmp_path / "other.zarr"
    simulate(other, 150, 300, survival_genes=3, log_hr=0.6, seed=10)
    capsys.readouterr()
    assert main([*argv, "--ridge", "1", "--validate", str(other), "--at-times", "2,5"]) == 0
    printed = capsys.readouterr().out
    final = predict.fit_survival(store, "time", "event", k=10, ridge=1.0)
    risk = final.predict(other).to_numpy()
    harrell = survival.concordance(other, "time", "event", risk)
    uno = survival.concordance(other, "time", "event", risk, time_weights="n/G2")
    assert (
        f"(150 samples), the signature fitted on all of {store}: Harrell's C "
        f"{harrell.concordance:.3f} (se {harrell.std_err:.3f}), Uno's {uno.concordance:.3f}"
    ) in printed
    curves = final.predict_survival(other, [2.0, 5.0])
    scores = survival.time_dependent_scores(other, "time", "event", curves)
    for at in (2.0, 5.0):
        row = scores.loc[at]
        assert f"validation at {at:g}: Brier {row['brier']:.3f}" in printed
        assert f"IPA {row['ipa']:.3f}), AUC {row['auc']:.3f}" in printed
    assert main([*argv, "--penalty", "l1", "--covariates", "~ condition"]) == 0
    printed = capsys.readouterr().out
    adjusted = predict.cross_validate_survival(
        store, "time", "event", model="lasso", k=10, covariates="~ condition"
    )
    assert f"Harrell's C {adjusted.concordance:.3f}" in printed
    assert (
        f"alone, fitted in the same folds: Harrell's C {adjusted.covariates_concordance:.3f}"
        in printed
    )


def test_gsva_command(tmp_path, capsys):
    """Scores of a simulated cohort's planted set, written as a store that `cohortex de`
    tests, and as a table of sets × samples."""
    from cohortex import genesets, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 60, 300, n_de=30, log2fc=1.5, seed=9)
    truth = open_cohort(store)["true_log2fc"].to_series()
    planted = [str(g) for g in truth.index[truth.to_numpy() > 0]]
    others = [str(g) for g in truth.index[truth.to_numpy() == 0]]
    sets = genesets.GeneSets.from_dict(
        {"planted": planted, **{f"random{i}": others[i * 20 : i * 20 + 20] for i in range(5)}}
    )
    sets.to_gmt(tmp_path / "sets.gmt")
    scores = tmp_path / "scores.zarr"
    arguments = ["gsva", str(store), str(scores), "--sets", str(tmp_path / "sets.gmt")]
    assert main(arguments) == 0
    assert "gsva, gaussian kernel: 6 gene sets scored in 60 samples" in capsys.readouterr().out
    scored = open_cohort(scores)
    assert list(scored["gene"].values) == ["planted", *[f"random{i}" for i in range(5)]]
    assert "condition" in scored
    assert main(["de", str(scores), "--groupby", "condition", "--reference", "normal"]) == 0
    tested = read_result(scores, "de_welch_condition")
    assert str(tested["gene"].values[np.argmin(tested["pvalue"].values.ravel())]) == "planted"
    assert main(arguments) == 2  # exists
    assert "already exists" in capsys.readouterr().err
    heat = tmp_path / "heat.png"
    assert main([*arguments, "--overwrite", "--plot", str(heat), "--groupby", "condition"]) == 0
    assert (
        heat.stat().st_size > 1000 and "heatmap of the 6 most variable" in capsys.readouterr().out
    )
    assert main([*arguments, "--overwrite", "--groupby", "condition"]) == 2
    table = tmp_path / "scores.tsv"
    assert (
        main(
            [
                "gsva",
                str(store),
                str(table),
                "--sets",
                str(tmp_path / "sets.gmt"),
                "--method",
                "ssgsea",
            ]
        )
        == 0
    )
    written = pd.read_csv(table, sep="\t", index_col=0)
    assert written.shape == (6, 60)
    assert main(["gsva", str(store), str(tmp_path / "x.h5"), "--sets", "s.gmt"]) == 2


def test_enrich_command(tmp_path, capsys):
    from cohortex import genesets, open_cohort, read_result, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 120, 400, n_de=40, log2fc=1.5, seed=8)
    truth = open_cohort(store)["true_log2fc"].to_series()
    de_genes = [str(g) for g in truth.index[truth.to_numpy() > 0]]  # up in tumor
    others = [str(g) for g in truth.index[truth.to_numpy() == 0]]
    sets = genesets.GeneSets.from_dict(
        {"planted": de_genes, **{f"random{i}": others[i * 30 : i * 30 + 30] for i in range(6)}}
    )
    sets.to_gmt(tmp_path / "sets.gmt")
    de = ["de", str(store), "--groupby", "condition", "--reference", "normal", "--top", "0"]
    assert main(de) == 0
    capsys.readouterr()
    arguments = ["enrich", str(store), "--sets", str(tmp_path / "sets.gmt"), "--top", "3"]
    plot = tmp_path / "dots.png"
    assert main([*arguments, "--permutations", "1000", "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "gsea of 7 gene sets" in printed and printed.splitlines()[2].split()[0] == "planted"
    saved = read_result(store, "enrich_gsea_de_welch_condition")
    assert float(saved["padj"].sel(gene_set="planted")) < 0.05 and plot.stat().st_size > 1000
    # the multilevel estimate goes below what 1,000 permutations can show; without it, it cannot
    assert float(saved["pvalue"].sel(gene_set="planted")) < 1e-5
    assert main([*arguments, "--no-multilevel"]) == 0
    simple = read_result(store, "enrich_gsea_de_welch_condition")
    assert float(simple["pvalue"].sel(gene_set="planted")) >= 1 / 1001
    assert main([*arguments, "--method", "ora", "--min-size", "5"]) == 0
    assert "ora of 7 gene sets" in capsys.readouterr().out
    # cameraPR and geneSetTest of the stored result's statistic
    assert main([*arguments, "--method", "camera_pr", "--ranks"]) == 0
    saved = read_result(store, "enrich_camera_pr_de_welch_condition")
    stored = read_result(store, "de_welch_condition")
    direct = genesets.camera_pr(stored, sets, use_ranks=True)
    np.testing.assert_array_equal(saved["pvalue"].values, direct["pvalue"].values)
    assert float(saved["pvalue"].sel(gene_set="planted")) < 1e-6
    assert main([*arguments, "--method", "gene_set_test", "--by", "log2fc"]) == 0
    saved = read_result(store, "enrich_gene_set_test_de_welch_condition")
    assert float(saved["pvalue"].sel(gene_set="planted")) < 1e-6
    assert main([*arguments, "--method", "camera_pr", "--inter-gene-cor", "estimate"]) == 2
    assert "a number" in capsys.readouterr().err
    assert main([*arguments, "--method", "camera"]) == 2
    assert "needs --design" in capsys.readouterr().err
    assert main([*arguments, "--method", "camera", "--design", "~ condition"]) == 0
    camera = read_result(store, "enrich_camera_camera")
    assert float(camera["pvalue"].sel(gene_set="planted")) < 1e-3


def test_camera_on_a_counts_store_with_voom(tmp_path, capsys):
    """enrich --method camera --voom: camera(voom(counts), ...), with voom's weights; on
    counts without --voom it warns, as de does."""
    from cohortex import de, genesets, read_result, simulate

    store = tmp_path / "c.zarr"
    simulate(store, 40, 300, n_de=30, log2fc=1.5, distribution="negbinom", seed=12)
    truth = open_cohort(store)["true_log2fc"].to_series()
    planted = [str(g) for g in truth.index[truth.to_numpy() > 0]]
    others = [str(g) for g in truth.index[truth.to_numpy() == 0]]
    sets = genesets.GeneSets.from_dict(
        {"planted": planted, **{f"random{i}": others[i * 25 : i * 25 + 25] for i in range(5)}}
    )
    sets.to_gmt(tmp_path / "sets.gmt")
    command = ["enrich", str(store), "--sets", str(tmp_path / "sets.gmt"), "--method", "camera"]
    command += ["--design", "~ condition", "--top", "0"]
    assert main([*command, "--voom"]) == 0
    assert "raw counts" not in capsys.readouterr().err
    saved = read_result(store, "enrich_camera_camera")
    direct = genesets.camera(de.voom(store, "~ condition", norm_factors="tmm"), "~ condition", sets)
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert float(saved["pvalue"].sel(gene_set="planted")) < 1e-3
    assert main(command) == 0
    assert "cohortex enrich: warning: this store holds raw counts" in capsys.readouterr().err
    assert main(["enrich", str(store), "--sets", str(tmp_path / "sets.gmt"), "--voom"]) == 2
    assert "--voom goes with --method camera" in capsys.readouterr().err
    # camera's correlation estimated (each gene's residual effects in its own weighted
    # basis) and its rank test
    assert main([*command, "--voom", "--inter-gene-cor", "estimate", "--ranks"]) == 0
    saved = read_result(store, "enrich_camera_camera")
    voomed = de.voom(store, "~ condition", norm_factors="tmm")
    direct = genesets.camera(voomed, "~ condition", sets, inter_gene_cor=None, use_ranks=True)
    np.testing.assert_allclose(saved["pvalue"].values, direct["pvalue"].values, rtol=1e-12)
    assert saved.attrs["use_ranks"] == 1
    assert main([*command, "--inter-gene-cor", "1.5"]) == 2
    assert "--inter-gene-cor must be a correlation" in capsys.readouterr().err
    # fry the same way: fry(voom(counts), ...), its weights per observation
    fry_command = [*command[:5], "fry", *command[6:], "--voom", "--top", "3"]
    assert main(fry_command) == 0
    assert "pvalue_mixed" in capsys.readouterr().out
    saved = read_result(store, "enrich_fry_fry")
    direct = genesets.fry(de.voom(store, "~ condition", norm_factors="tmm"), "~ condition", sets)
    for name in ("pvalue", "pvalue_mixed"):
        np.testing.assert_allclose(saved[name].values, direct[name].values, rtol=1e-12)
    assert float(saved["pvalue"].sel(gene_set="planted")) < 1e-3
    # roast: fry's question by rotations, its seed and statistic passed on
    roast_command = [*command[:5], "roast", *command[6:], "--voom", "--rotations", "499"]
    assert main([*roast_command, "--set-statistic", "msq", "--seed", "3"]) == 0
    saved = read_result(store, "enrich_roast_roast")
    direct = genesets.roast(
        de.voom(store, "~ condition", norm_factors="tmm"),
        "~ condition",
        sets,
        set_statistic="msq",
        n_rotations=499,
        random_state=3,
    )
    for name in ("pvalue", "pvalue_mixed", "prop_up"):
        np.testing.assert_array_equal(saved[name].values, direct[name].values)
    assert float(saved["pvalue"].sel(gene_set="planted")) == 1.0 / 500
    # romer on voom's log-CPM (its weights are per observation: romer takes none, as limma's)
    romer_command = [*command[:5], "romer", *command[6:], "--voom", "--rotations", "999"]
    assert main([*romer_command, "--top", "3"]) == 0
    assert "pvalue_down" in capsys.readouterr().out
    saved = read_result(store, "enrich_romer_romer")
    voomed = de.voom(store, "~ condition", norm_factors="tmm").drop_vars("weights")
    direct = genesets.romer(voomed, "~ condition", sets, n_rotations=999)
    for name in ("pvalue_up", "pvalue_down", "pvalue_mixed"):
        np.testing.assert_array_equal(saved[name].values, direct[name].values)
    assert float(saved["pvalue_up"].sel(gene_set="planted")) == 1.0 / 1000
    assert main([*romer_command, "--set-statistic", "msq"]) == 2
    assert "'set_statistic' must be one of" in capsys.readouterr().err


def test_de_command_on_counts_warns_or_normalises(tmp_path, capsys):
    from cohortex import de, normalize, read_result, simulate

    store = tmp_path / "c.zarr"
    simulate(store, 60, 50, n_de=5, distribution="negbinom", seed=9)
    capsys.readouterr()
    arguments = ["de", str(store), "--groupby", "condition", "--reference", "normal", "--top", "0"]
    assert main(arguments) == 0
    assert "this store holds raw counts" in capsys.readouterr().err
    assert main([*arguments, "--normalize", "log_cpm", "--name", "logcpm"]) == 0
    assert "raw counts" not in capsys.readouterr().err
    saved = read_result(store, "logcpm")
    direct = de.test(
        normalize(store, "log_cpm", norm_factors="tmm"), "condition", reference="normal"
    )
    np.testing.assert_array_equal(saved["pvalue"].values, direct["pvalue"].values)
    assert saved.attrs["scale"] == "log2"
    # a linear model of raw counts warns too; of log-CPM with a trend (limma-trend) it does not
    model = ["de", str(store), "--design", "~ condition", "--top", "0"]
    assert main(model) == 0
    assert "this store holds raw counts" in capsys.readouterr().err
    assert main([*model, "--normalize", "log_cpm", "--trend", "--name", "trend"]) == 0
    assert "raw counts" not in capsys.readouterr().err
    trend = de.fit(normalize(store, "log_cpm", norm_factors="tmm"), "~ condition", trend=True)
    np.testing.assert_array_equal(read_result(store, "trend")["pvalue"], trend["pvalue"])
    assert main([*model, "--voom", "--normalize", "log_cpm"]) == 2
    assert "--voom normalises the counts itself" in capsys.readouterr().err


def test_results_command_and_flag_worded_errors(tmp_path, capsys):
    from cohortex import simulate

    store = tmp_path / "r.zarr"
    simulate(store, 60, 30, n_de=4, seed=5)
    assert main(["results", "list", str(store)]) == 0
    assert "holds no results" in capsys.readouterr().out
    de = ["de", str(store), "--groupby", "condition", "--reference", "normal", "--top", "0"]
    assert main(de) == 0
    capsys.readouterr()
    assert main(["results", "list", str(store)]) == 0
    assert (
        "de_welch_condition" in capsys.readouterr().out
        and "welch" in capsys.readouterr().out + "welch"
    )
    assert main(["results", "show", str(store), "de_welch_condition", "--top", "3"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].split()[:2] == ["gene", "padj"] and len(shown) == 4
    out = tmp_path / "welch.csv"
    assert main(["results", "export", str(store), "de_welch_condition", str(out)]) == 0
    assert out.read_text().splitlines()[0].startswith("contrast,gene,statistic,pvalue,padj")
    assert main(["results", "show", str(store), "nothing"]) == 2
    assert "has no result named 'nothing'. Results: de_welch_condition" in capsys.readouterr().err
    # --from names a result that must exist; the library's overwrite=True reads as the flag
    assert main(["tsne", str(store), "--from", "pca_typo"]) == 2
    assert "--from 'pca_typo' names no stored result" in capsys.readouterr().err
    assert main(["simulate", str(store), "--samples", "10", "--genes", "5"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err


def test_every_option_has_help_and_its_default(capsys):
    import argparse

    from cohortex.app.cli import _parser

    def options(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from options(sub, [*path, name])
            elif action.option_strings:
                yield " ".join(path), action

    missing = [f"{path} {a.option_strings[-1]}" for path, a in options(_parser(), []) if not a.help]
    assert missing == []
    assert main(["enrich", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--permutations PERMUTATIONS gsea: random sets per size (default: 1000)" in text
    assert "--no-multilevel gsea: permutation p-values only" in text  # a flag: no default shown


def test_warmup_and_the_notice_of_a_slow_first_run(capsys):
    import time

    from cohortex._progress import slow_start_notice

    assert main(["warmup"]) == 0
    printed = capsys.readouterr().out
    assert "wilcoxon  float32  ready in" in printed and "cached on disk" in printed
    assert "log-rank  float32  ready in" in printed
    assert "signed-rank (paired) ready in" in printed
    assert "gsva      float32  ready in" in printed
    with slow_start_notice("compiling, once", after=0.05):
        time.sleep(0.3)
    assert "compiling, once" in capsys.readouterr().err
    with slow_start_notice("never said", after=1.0):
        pass
    time.sleep(0.05)
    assert "never said" not in capsys.readouterr().err


def test_long_work_reports_progress_in_a_log(tmp_path, capsys, monkeypatch):
    """stderr is not a terminal here: no bar, a line every LOG_EVERY seconds once work runs
    that long (0 here, so every epoch), and a last line when it ends; short work is silent."""
    from cohortex import _progress, simulate

    store = tmp_path / "p.zarr"
    simulate(store, 200, 30, modules=1, module_size=10, seed=2)
    capsys.readouterr()
    train = ["ae", "train", str(store), "--hidden", "8,3,8", "--max-epochs", "3"]
    assert main(train) == 0
    assert "training:" not in capsys.readouterr().err  # under half a minute: nothing
    monkeypatch.setattr(_progress, "LOG_EVERY", 0.0)
    assert main([*train, "--patience", "3"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("training:")]
    assert lines[0].startswith("training: 1/3 epoch, 0 s (loss=") and len(lines) == 4
    assert lines[-1].startswith("training: 3/3 epoch")


def test_work_cut_short_by_an_error_closes_its_progress_display(tmp_path, capsys, monkeypatch):
    """A write refused half-way (its error, and so its display, still referenced) must not
    leave a display open: Dask passes stay quiet inside an open one, and would report
    nothing for the rest of the session."""
    import dask.array as da

    from cohortex import CohortexError, _progress

    monkeypatch.setattr(_progress, "LOG_EVERY", 0.0)
    values = np.ones((40, 5))
    values[30, 2] = np.inf  # in the fourth block of ten rows
    with pytest.raises(CohortexError, match="finite or NaN") as refused:
        create_cohort(tmp_path / "x.zarr", values, chunks=(10, 5))
    assert "writing cohort: 3/4 block" in capsys.readouterr().err  # the display was open
    assert refused.value is not None
    with _progress.dask_progress("pass"):
        da.ones(100, chunks=10).sum().compute()
    assert "pass: " in capsys.readouterr().err


def test_dask_passes_report_progress_in_the_same_style(tmp_path, capsys, monkeypatch):
    """A DE pass is a Dask computation: in a log it writes the same lines as cohortex's own
    loops (every LOG_EVERY seconds, here every task, and a last one at the end); on a terminal
    (--progress) a tqdm bar of its tasks; --no-progress and a short pass say nothing; inside
    another open display (an epoch's chunk reads) it stays quiet."""
    import dask.array as da

    from cohortex import _progress, simulate

    store = tmp_path / "p.zarr"
    simulate(store, 120, 40, seed=1, chunks=(30, 20))
    capsys.readouterr()
    de = ["de", str(store), "--groupby", "condition", "--top", "0"]
    assert main(de) == 0
    assert "task" not in capsys.readouterr().err  # a second's work: silent in a log
    monkeypatch.setattr(_progress, "LOG_EVERY", 0.0)
    assert main([*de, "--name", "again"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("de: ")]
    done, total = (int(v) for v in lines[-1].split()[1].split("/"))
    assert total > 8 and done == total  # the chunks' tasks and their reduction, all counted
    assert [int(line.split()[1].split("/")[0]) for line in lines[:-1]] == list(range(1, total + 1))
    assert main([*de, "--name", "quiet", "--no-progress"]) == 0
    assert "task" not in capsys.readouterr().err
    monkeypatch.setattr(_progress, "DASK_DELAY", 0.0)
    assert main([*de, "--name", "bar", "--progress"]) == 0
    assert f"/{total} [" in capsys.readouterr().err  # tqdm's "n/total [elapsed<left"
    with _progress.dask_progress("outer"):
        training = _progress.progress_bar(3, "training", None)
        da.ones(100, chunks=10).sum().compute()
        training.close()
        assert "outer:" not in capsys.readouterr().err
        da.ones(100, chunks=10).sum().compute()
    assert "outer: " in capsys.readouterr().err


def test_de_with_surrogate_variables(tmp_path, capsys):
    """de --design F --sva K: sva's surrogate variables of the hidden batches added to limma's
    design; --sva auto counts them; refused with the counts models."""
    from cohortex import de, open_cohort, read_result, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 60, 300, batches=3, n_de=20, seed=4)
    capsys.readouterr()
    assert main(["de", str(store), "--design", "~ condition", "--sva", "2"]) == 0
    assert "with 2 surrogate variables of sva (asked for)" in capsys.readouterr().out
    ours = read_result(store, "de_limma")
    cohort = open_cohort(store)
    found = de.sva(cohort, "~ condition", n_sv=2)
    expected = de.fit(cohort.merge(found[["sv1", "sv2"]]), "~ condition + sv1 + sv2")
    np.testing.assert_allclose(ours["statistic"].values, expected["statistic"].values, rtol=1e-9)
    assert ours.attrs["formula"] == "~ condition + sv1 + sv2"
    command = ["de", str(store), "--design", "~ condition", "--name", "with_sva"]
    assert main([*command, "--sva", "auto"]) == 0
    assert "surrogate variables of sva (counted by num.sv)" in capsys.readouterr().out
    assert main([*command, "--sva", "two"]) == 2
    assert "--sva takes a count of surrogate variables or 'auto'" in capsys.readouterr().err
    assert main(["de", str(store), "--groupby", "condition", "--sva", "2"]) == 2
    assert "--sva goes with --design" in capsys.readouterr().err


def test_de_counts_model_with_svaseq(tmp_path, capsys):
    """de --glm-ql --sva K: svaseq of the counts scaled by DESeq2's size factors, as its
    vignette, then edgeR's QL F-tests with the surrogate variables in the design."""
    from cohortex import de, normalize, open_cohort, read_result, simulate

    store = tmp_path / "c.zarr"
    simulate(store, 40, 300, batches=2, n_de=20, seed=5, distribution="negbinom")
    capsys.readouterr()
    command = ["de", str(store), "--design", "~ condition", "--glm-ql", "--sva", "1"]
    assert main(command) == 0
    assert "with 1 surrogate variable of sva (asked for)" in capsys.readouterr().out
    ours = read_result(store, "de_glm_ql")
    cohort = open_cohort(store)
    found = de.sva(normalize(cohort, "median_ratio"), "~ condition", n_sv=1)
    assert found.attrs["transform"] == "log(x + 1)"
    expected = de.glm_ql(cohort.merge(found[["sv1"]]), "~ condition + sv1")
    np.testing.assert_allclose(ours["pvalue"].values, expected["pvalue"].values, rtol=1e-9)


def test_consensus_clusters_into_the_store(tmp_path, capsys):
    """consensus STORE: the result in the store equals the API's, the clusters as a table and
    the consensus CDF as a figure."""
    from cohortex import consensus_clusters, read_result, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 40, 200, n_de=30, seed=6)
    capsys.readouterr()
    out, figure = tmp_path / "classes.tsv", tmp_path / "cdf.png"
    command = ["consensus", str(store), "--max-k", "4", "--reps", "25", "--genes", "100"]
    assert main([*command, "--out", str(out), "--plot", str(figure), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Consensus clustering of 40 samples on 100 genes (25 subsamples)" in printed
    assert "saved as result 'consensus'" in printed and figure.stat().st_size > 0
    stored = read_result(store, "consensus")
    expected = consensus_clusters(store, max_k=4, reps=25, genes=100, progress=False)
    np.testing.assert_array_equal(stored["consensus"].values, expected["consensus"].values)
    table = pd.read_csv(out, sep="\t", index_col=0)
    assert list(table.columns) == ["k2", "k3", "k4"]
    np.testing.assert_array_equal(table["k3"], expected["consensus_class"].sel(k=3).values)
    assert main([*command, "--max-k", "1"]) == 2
    assert "2 ≤ max_k" in capsys.readouterr().err
    assert main([*command, "--cluster-algorithm", "pam", "--no-progress"]) == 0
    stored = read_result(store, "consensus")
    expected = consensus_clusters(
        store, max_k=4, reps=25, genes=100, cluster_algorithm="pam", progress=False
    )
    assert stored.attrs["cluster_algorithm"] == "pam"
    np.testing.assert_array_equal(stored["consensus"].values, expected["consensus"].values)
    assert main([*command, "--cluster-algorithm", "km", "--seed", "5", "--no-progress"]) == 0
    stored = read_result(store, "consensus")
    expected = consensus_clusters(
        store, max_k=4, reps=25, genes=100, cluster_algorithm="km", seed=5, progress=False
    )
    assert stored.attrs["cluster_algorithm"] == "km" and stored.attrs["seed"] == 5
    np.testing.assert_array_equal(stored["consensus"].values, expected["consensus"].values)


def test_survival_cutpoints_into_the_store(tmp_path, capsys):
    """survival --test cutpoint: the result in the store equals the API's, the best genes
    printed with their cutpoints, the Kaplan-Meier plot split at the gene's cutpoint."""
    from cohortex import read_result, simulate, survival

    store = tmp_path / "s.zarr"
    simulate(store, 200, 60, n_de=0, survival_genes=5, seed=9)
    capsys.readouterr()
    expected = survival.cutpoint(store, "time", "event")
    best = str(expected["gene"].values[int(np.argmin(expected["pvalue"].values))])
    figure = tmp_path / "km.png"
    command = ["survival", str(store), "--test", "cutpoint", "--top", "3"]
    assert main([*command, "--km", best, "--plot", str(figure)]) == 0
    printed = capsys.readouterr().out
    assert "maximally selected log-rank statistics" in printed and "cutpoint" in printed
    assert best in printed.splitlines()[2]  # the first of the best genes
    stored = read_result(store, "survival_cutpoint")
    np.testing.assert_array_equal(stored["cutpoint"].values, expected["cutpoint"].values)
    assert figure.stat().st_size > 0
    assert main([*command, "--quantile", "0.3"]) == 2
    assert "no --strata or --quantile" in capsys.readouterr().err
    assert main([*command, "--km", "nope", "--plot", str(figure)]) == 2
    assert "--km must name a gene" in capsys.readouterr().err


def test_network_into_the_store(tmp_path, capsys):
    """network STORE: the soft-threshold table printed, then the modules in the store equal
    the API's, each gene's module as a table and the gene tree as a figure."""
    from cohortex import network, open_cohort, read_result, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 120, 400, n_de=0, modules=3, seed=8)
    capsys.readouterr()
    figure = tmp_path / "fit.png"
    assert main(["network", str(store), "--soft-threshold", "--plot", str(figure)]) == 0
    printed = capsys.readouterr().out
    table = network.soft_threshold(store, progress=False)
    assert "Scale-free fit of the unsigned network of 400 genes × 120 samples" in printed
    estimate = table.attrs["power_estimate"]
    assert f"lowest power with R² > 0.85: {estimate:g}" in printed and figure.stat().st_size
    out, figure = tmp_path / "modules.csv", tmp_path / "tree.png"
    command = ["network", str(store), "--min-module-size", "20", "--no-progress"]
    assert main([*command, "--out", str(out), "--plot", str(figure)]) == 0
    printed = capsys.readouterr().out
    expected = network.modules(store, min_module_size=20, progress=False)
    stored = read_result(store, "network")
    np.testing.assert_array_equal(stored["label"].values, expected["label"].values)
    np.testing.assert_allclose(stored["eigengene"].values, expected["eigengene"].values)
    assert f"{expected.attrs['n_modules']} modules of 400 genes × 120 samples" in printed
    assert f"(power {estimate:g}, scale-free fit)" in printed
    hub = network.hub_genes(expected, 1).iloc[0]
    assert f"{hub['gene']} ({hub['kme']:.2f})" in printed
    assert "factor_" in printed  # the modules' eigengenes follow the planted factors
    genes = pd.read_csv(out, index_col=0)
    assert list(genes.columns) == ["module", "kme", "k_total", "k_within"]
    np.testing.assert_array_equal(genes["module"], expected["label"].values)
    assert figure.stat().st_size > 0
    assert main([*command, "--merge-cut-height", "2"]) == 2
    assert "'merge_cut_height' parameter" in capsys.readouterr().err
    # the gene sets over-represented in each module: the planted modules
    planted = open_cohort(store)["module"].values
    ids = open_cohort(store)["gene"].values
    gmt = tmp_path / "planted.gmt"
    gmt.write_text(
        "".join(f"planted{k}\tmodule {k}\t" + "\t".join(ids[planted == k]) + "\n" for k in range(3))
    )
    assert main([*command, "--names", "symbol"]) == 2
    assert "--names goes with --sets" in capsys.readouterr().err
    assert main([*command, "--sets", str(gmt), "--names", "nope"]) == 2
    assert "'nope' is not a gene variable" in capsys.readouterr().err
    assert main([*command, "--sets", str(gmt)]) == 0
    printed = capsys.readouterr().out
    assert "most over-represented gene set (padj)" in printed
    for k in range(3):
        assert f"planted{k} (" in printed
    # a module's edges for Cytoscape
    edges_path = tmp_path / "edges.tsv"
    assert main([*command, "--edges", str(edges_path), "--edges-module", "2"]) == 0
    printed = capsys.readouterr().out
    edges = pd.read_csv(edges_path, sep="\t")
    assert f"{len(edges)} edges of module 2 (TOM ≥ 0.02) written to" in printed
    expected_edges = network.module_edges(store, expected, 2, progress=False)
    pd.testing.assert_frame_equal(edges, expected_edges, check_exact=False, rtol=1e-12)
    assert main([*command, "--edges", str(edges_path), "--edges-module", "99"]) == 2
    assert "'module' parameter of module_edges" in capsys.readouterr().err


def test_network_of_a_cohort_with_missing_values(tmp_path, capsys):
    """A table with empty cells and NA imported, then its soft threshold and modules: the
    missing values are said, the modules the API's (held to WGCNA by test_missing_values)."""
    from cohortex import network

    values = pd.read_csv(
        Path(__file__).parents[1] / "fixtures" / "wgcna" / "missing_simulated_expression.csv",
        index_col=0,
    )
    src = tmp_path / "proteins.csv"
    values.T.to_csv(src, na_rep="NA", index_label="gene")
    store = tmp_path / "p.zarr"
    assert main(["import", str(src), str(store), "--scale", "log2"]) == 0
    capsys.readouterr()
    assert main(["network", str(store), "--soft-threshold", "--network-type", "signed"]) == 0
    printed = capsys.readouterr().out
    assert "of 398 genes × 100 samples" in printed
    assert "missing values: 4.3% of the genes' values" in printed
    assert "2 genes missing in half the samples or more left out" in printed
    command = ["network", str(store), "--power", "12", "--network-type", "signed"]
    assert main([*command, "--min-module-size", "20", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    expected = network.modules(
        store, power=12, network="signed", min_module_size=20, progress=False
    )
    stored = read_result(store, "network")
    np.testing.assert_array_equal(stored["label"].values, expected["label"].values)
    assert expected.attrs["n_modules"] == 5 and "5 modules of 398 genes" in printed
    assert "missing values: 4.3%" in printed
    # blockwiseModules takes them as well (held to WGCNA by test_missing_blockwise); the
    # consensus of two such stores does not
    assert main([*command, "--blockwise", "--max-block-size", "150", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    blockwise = network.blockwise_modules(
        store, power=12, network="signed", max_block_size=150, progress=False
    )
    stored = read_result(store, "network")
    np.testing.assert_array_equal(stored["label"].values, blockwise["label"].values)
    assert blockwise.attrs["n_blocks"] == 3 and "in 3 blocks" in printed
    assert "missing values: 4.3%" in printed and "eigengene the hub gene's: 4" in printed
    # and blockwiseConsensusModules: the store's samples in two halves, each its own set
    halves = [tmp_path / "first.zarr", tmp_path / "second.zarr"]
    for path, rows in zip(halves, (slice(0, 50), slice(50, 100)), strict=True):
        half = tmp_path / f"{path.stem}.csv"
        values.iloc[rows].T.to_csv(half, na_rep="NA", index_label="gene")
        assert main(["import", str(half), str(path), "--scale", "log2"]) == 0
    capsys.readouterr()
    consensus = ["network", str(halves[0]), "--consensus", str(halves[1]), "--power", "12"]
    assert main([*consensus, "--network-type", "signed", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    expected = network.consensus_modules(halves, power=12, network="signed", progress=False)
    stored = read_result(halves[0], "network")
    np.testing.assert_array_equal(stored["label"].values, expected["label"].values)
    assert "first 5.0% (2 genes left out), second 3.7% (1 genes left out)" in printed
    assert "eigengene the hub gene's: 4" in printed


def test_network_blockwise_into_the_store(tmp_path, capsys):
    """network --blockwise: blockwiseModules with its own defaults (only the settings given
    are passed), its blocks printed, a block's tree drawn and its modules' edges written."""
    from cohortex import network, read_result, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 120, 400, n_de=0, modules=3, seed=8)
    capsys.readouterr()
    figure, edges_path = tmp_path / "tree.png", tmp_path / "edges.tsv"
    command = ["network", str(store), "--blockwise", "--max-block-size", "150", "--no-progress"]
    assert main([*command, "--plot", str(figure), "--edges", str(edges_path)]) == 0
    printed = capsys.readouterr().out
    expected = network.blockwise_modules(store, max_block_size=150, progress=False)
    stored = read_result(store, "network")
    np.testing.assert_array_equal(stored["label"].values, expected["label"].values)
    np.testing.assert_array_equal(stored["block"].values, expected["block"].values)
    assert expected.attrs["tom"] == "signed" and expected.attrs["n_blocks"] >= 3
    assert f"modules of 400 genes × 120 samples in {expected.attrs['n_blocks']} blocks" in printed
    assert figure.stat().st_size > 0 and len(pd.read_csv(edges_path, sep="\t")) > 0
    assert main([*command, "--tom-type", "unsigned", "--min-module-size", "10"]) == 0
    stored = read_result(store, "network")
    assert (stored.attrs["tom"], stored.attrs["min_module_size"]) == ("unsigned", 10)
    assert main([*command, "--tom-denominator", "mean"]) == 0
    stored = read_result(store, "network")
    expected = network.blockwise_modules(
        store, max_block_size=150, tom_denominator="mean", progress=False
    )
    np.testing.assert_array_equal(stored["label"].values, expected["label"].values)
    assert (stored.attrs["tom"], stored.attrs["tom_denominator"]) == ("signed", "mean")
    # bicor, its outliers capped
    bicor = ["--correlation-type", "bicor", "--max-p-outliers", "0.05"]
    assert main([*command, *bicor]) == 0
    stored = read_result(store, "network")
    expected = network.blockwise_modules(
        store,
        max_block_size=150,
        correlation_type="bicor",
        max_p_outliers=0.05,
        progress=False,
    )
    np.testing.assert_array_equal(stored["label"].values, expected["label"].values)
    assert (stored.attrs["correlation_type"], stored.attrs["max_p_outliers"]) == ("bicor", 0.05)
    assert main(["network", str(store), "--soft-threshold", *bicor]) == 0
    assert "Scale-free fit of the unsigned network (bicor) of 400 genes" in capsys.readouterr().out


def test_network_preservation_of_stored_modules(tmp_path, capsys):
    """network REF --preservation TEST: the stored modules' preservation in another cohort,
    equal to the API's, saved beside them."""
    from cohortex import network, read_result, simulate

    reference, test = tmp_path / "ref.zarr", tmp_path / "test.zarr"
    simulate(reference, 80, 300, n_de=0, modules=3, seed=8)
    simulate(test, 60, 300, n_de=0, modules=3, seed=8)
    capsys.readouterr()
    command = ["network", str(reference), "--no-progress"]
    assert main([*command, "--preservation", str(test)]) == 2
    assert "no result 'network'" in capsys.readouterr().err
    assert main([*command, "--min-module-size", "20"]) == 0
    capsys.readouterr()
    assert main([*command, "--preservation", str(test), "--permutations", "10"]) == 0
    printed = capsys.readouterr().out
    stored = read_result(reference, "network_preservation")
    expected = network.module_preservation(
        reference, test, read_result(reference, "network"), n_permutations=10, progress=False
    )
    np.testing.assert_allclose(stored["z_summary"].values, expected["z_summary"].values)
    assert "Zsummary   median rank" in printed and "gold" in printed
    assert "missing values" not in printed and "permutations, pearson)" in printed
    # modules of bicor: their preservation takes bicor too, with the modules' cap
    bicor = ["--correlation-type", "bicor", "--max-p-outliers", "0.1"]
    assert main([*command, "--min-module-size", "20", *bicor]) == 0
    assert main([*command, "--preservation", str(test), "--permutations", "10"]) == 0
    assert "permutations, bicor)" in capsys.readouterr().out
    stored = read_result(reference, "network_preservation")
    assert stored.attrs["correlation_type"] == "bicor" and stored.attrs["max_p_outliers"] == 0.1


def test_network_preservation_with_missing_values(tmp_path, capsys):
    """network REF --preservation TEST of cohorts with missing values: said, and the API's
    result with --quick-cor 0 (held to WGCNA by test_preservation)."""
    from cohortex import create_cohort, network, read_result

    values = pd.read_csv(
        Path(__file__).parents[1] / "fixtures" / "wgcna" / "missing_simulated_expression.csv",
        index_col=0,
    )
    reference, test = tmp_path / "ref.zarr", tmp_path / "test.zarr"
    for path, rows in ((reference, slice(0, 50)), (test, slice(50, None))):
        create_cohort(path, values.iloc[rows])
    command = ["network", str(reference), "--no-progress"]
    assert main([*command, "--power", "6", "--min-module-size", "20"]) == 0
    capsys.readouterr()
    options = ["--permutations", "5", "--quick-cor", "0", "--cluster-coefficients"]
    assert main([*command, "--preservation", str(test), *options]) == 0
    printed = capsys.readouterr().out
    stored = read_result(reference, "network_preservation")
    expected = network.module_preservation(
        reference,
        test,
        read_result(reference, "network"),
        n_permutations=5,
        quick_cor=0.0,
        cluster_coefficients=True,
        progress=False,
    )
    np.testing.assert_allclose(stored["z_summary"].values, expected["z_summary"].values)
    np.testing.assert_allclose(
        stored["cor_cluster_coefficient"].values, expected["cor_cluster_coefficient"].values
    )
    assert "pairwise correlations within modules" in printed
    assert "left out: 2 and 1" in printed


def test_network_consensus_of_stores(tmp_path, capsys):
    """network STORE --consensus OTHER: the modules both stores' samples share, equal to the
    API's, saved in the first store with each set's kME written out and the tree drawn."""
    from cohortex import network, read_result, simulate

    first, second = tmp_path / "first.zarr", tmp_path / "second.zarr"
    simulate(first, 80, 300, n_de=0, modules=3, seed=8)
    simulate(second, 60, 300, n_de=0, modules=3, seed=8)
    capsys.readouterr()
    out, figure = tmp_path / "modules.tsv", tmp_path / "tree.png"
    command = ["network", str(first), "--consensus", str(second), "--no-progress"]
    assert main([*command, "--out", str(out), "--plot", str(figure)]) == 0
    printed = capsys.readouterr().out
    expected = network.consensus_modules({"first": first, "second": second}, progress=False)
    stored = read_result(first, "network")
    np.testing.assert_array_equal(stored["label"].values, expected["label"].values)
    np.testing.assert_allclose(stored["eigengene"].values, expected["eigengene"].values)
    assert expected.attrs["n_modules"] >= 2
    assert (
        f"{expected.attrs['n_modules']} consensus modules of 300 genes shared by first (80 "
        "samples), second (60 samples) in 1 block (powers 6, 6, WGCNA FAQ)"
    ) in printed
    assert "factor_" in printed  # the sample variable a module follows in both stores
    table = pd.read_csv(out, sep="\t", index_col=0)
    assert list(table.columns) == ["module", "consensus_kme", "block", "kme_first", "kme_second"]
    np.testing.assert_array_equal(table["module"], expected["label"].values)
    np.testing.assert_allclose(
        table["consensus_kme"], table[["kme_first", "kme_second"]].min(axis=1)
    )
    assert figure.stat().st_size > 0
    assert main([*command, "--min-module-size", "40", "--max-block-size", "100"]) == 0
    stored = read_result(first, "network")
    assert stored.attrs["min_module_size"] == 40 and stored.attrs["n_blocks"] >= 3
    assert main([*command, "--genes", "100"]) == 2
    assert "--consensus does not take --genes" in capsys.readouterr().err
    assert main([*command, "--correlation-type", "bicor", "--max-p-outliers", "0.05"]) == 0
    stored = read_result(first, "network")
    assert (stored.attrs["correlation_type"], stored.attrs["max_p_outliers"]) == ("bicor", 0.05)


def test_mds_into_the_store(tmp_path, capsys):
    from cohortex import mds, read_result, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 30, 200, n_de=20, seed=7)
    capsys.readouterr()
    figure = tmp_path / "mds.png"
    assert main(["mds", str(store), "--top", "50", "--plot", str(figure), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "MDS (pairwise, top 50 genes) of 30 samples" in printed and figure.stat().st_size > 0
    stored = read_result(store, "mds")
    expected = mds(store, top=50, progress=False)
    np.testing.assert_allclose(stored["embedding"].values, expected["embedding"].values)


def test_de_kruskal_prints_the_best_genes(tmp_path, capsys):
    from scipy import stats

    from cohortex import open_cohort, read_result, simulate

    store = tmp_path / "s.zarr"
    simulate(store, 45, 60, n_de=10, seed=8)
    capsys.readouterr()
    assert main(["de", str(store), "--groupby", "condition", "--test", "kruskal"]) == 0
    printed = capsys.readouterr().out
    assert "kruskal test of condition" in printed and "statistic    pvalue      padj" in printed
    result = read_result(store, "de_kruskal_condition")
    cohort = open_cohort(store)
    x, labels = cohort["expression"].values.astype(np.float64), cohort["condition"].values
    expected = [stats.kruskal(*(x[labels == g, 7] for g in sorted(set(labels)))).statistic]
    np.testing.assert_allclose(result["statistic"].values[7], expected[0], rtol=1e-10)
