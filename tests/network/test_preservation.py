"""WGCNA's modulePreservation against WGCNA 1.72 (fixtures from
tests/fixtures/make_preservation_fixtures.R): the simulated cohort's first 50 samples the
reference, its last 50 the test set, its four planted modules the reference's modules; a test
set where the 4th module's genes are shuffled; a signed network; the same halves with missing
values (make_missing_network_fixtures.R: R's quick correlations within modules, each eigengene
from its genes imputed, the 4th module's the hub gene's in the reference, whose first 10
samples miss 27 of its 30 genes). The observed statistics are exact; the Z scores come from
random gene sets (R's and NumPy's differ) and agree within their permutation error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from network_cohorts import WGCNA

from cohortex import CohortexError, network
from cohortex.network._preservation import log10_pvalues, median_ranks

OBSERVED = {  # R's column: ours
    "propVarExplained.pres": "prop_var_explained",
    "meanSignAwareKME.pres": "mean_sign_aware_kme",
    "meanSignAwareCorDat.pres": "mean_sign_aware_cor",
    "meanAdj.pres": "mean_adjacency",
    "meanMAR.pres": "mean_mar",
    "cor.kIM": "cor_kim",
    "cor.kME": "cor_kme",
    "cor.cor": "cor_cor",
    "cor.MAR": "cor_mar",
}
QUALITY = {
    "propVarExplained.qual": "quality_prop_var_explained",
    "meanSignAwareKME.qual": "quality_mean_sign_aware_kme",
    "meanSignAwareCorDat.qual": "quality_mean_sign_aware_cor",
    "meanAdj.qual": "quality_mean_adjacency",
    "meanMAR.qual": "quality_mean_mar",
}
CASES = {
    "unsigned": ("test", {}),
    "broken": ("broken", {}),
    "signed": ("test", {"network": "signed"}),
    "missing": ("missing", {}),
    "bicor": ("test", {"correlation_type": "bicor", "max_p_outliers": 0.05}),
    "missing_bicor": ("missing", {"correlation_type": "bicor", "max_p_outliers": 0.05}),
    "cluster": ("test", {"cluster_coefficients": True}),
}
CLUSTER = {  # calculateClusterCoeff's statistics, R's: ours
    "meanClusterCoeff.pres": "mean_cluster_coefficient",
    "cor.clusterCoeff": "cor_cluster_coefficient",
}
MODULES = [0, 1, 2, 3, 4]  # the gold module is a random draw: R's and ours differ


def as_cohort(values: pd.DataFrame) -> xr.Dataset:
    return xr.Dataset(
        {"expression": (("sample", "gene"), values.to_numpy(np.float64))},
        coords={"sample": values.index.to_numpy(), "gene": values.columns.to_numpy()},
        attrs={"scale": "log2"},
    )


def cohorts(which: str) -> tuple[xr.Dataset, xr.Dataset, pd.Series]:
    source = "missing_simulated" if which == "missing" else "simulated"
    values = pd.read_csv(WGCNA / f"{source}_expression.csv", index_col=0)
    test = values.iloc[50:]
    if which == "broken":
        test = pd.read_csv(WGCNA / "preservation_broken.csv", index_col=0)
    table = pd.read_csv(WGCNA / "preservation_modules.csv")
    return (
        as_cohort(values.iloc[:50]),
        as_cohort(test),
        pd.Series(table["module"].to_numpy(), index=table["gene"].to_numpy()),
    )


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    which, options = CASES[request.param]
    reference, test, modules = cohorts(which)
    result = network.module_preservation(reference, test, modules, progress=False, **options)
    return request.param, result


def r_table(name: str, part: str) -> pd.DataFrame:
    table = pd.read_csv(WGCNA / f"preservation_{name}_{part}.csv", index_col=0)
    table.index = [GOLD_R if abs(i - 0.1) < 1e-9 else int(i) for i in table.index]
    # R names its connectivity statistics after corFnc: bicor.kIM, bicor.bicor, …
    table.columns = [
        c.replace("bicor.bicor", "cor.cor").replace("bicor.", "cor.") for c in table.columns
    ]
    return table


GOLD_R = network.GOLD


def test_observed_statistics_equal_rs(case):
    name, result = case
    observed, quality = r_table(name, "observed"), r_table(name, "quality")
    separability = r_table(name, "separability")
    for module in MODULES:
        mine = result.sel(module=module)
        assert int(mine["size"]) == observed.loc[module, "moduleSize"]
        for theirs, ours in OBSERVED.items():
            # MAR subtracts the diagonal's 1 from sums near 1 (a shuffled module's adjacencies
            # are ~1e-6): R's and our orders of summing differ there by 1e-9
            assert float(mine[ours]) == pytest.approx(
                observed.loc[module, theirs], rel=1e-8, abs=1e-10
            ), (module, ours)
        for theirs, ours in QUALITY.items():
            assert float(mine[ours]) == pytest.approx(
                quality.loc[module, theirs], rel=1e-8, abs=1e-10
            ), (module, ours)
        assert float(mine["separability"]) == pytest.approx(
            separability.loc[module, "separability.pres"], abs=1e-10
        )
        if name == "cluster":
            for theirs, ours in CLUSTER.items():
                assert float(mine[ours]) == pytest.approx(
                    observed.loc[module, theirs], rel=1e-9, abs=1e-12
                ), (module, ours)
            assert float(mine["quality_mean_cluster_coefficient"]) == pytest.approx(
                quality.loc[module, "meanClusterCoeff.qual"], rel=1e-9
            )
        else:
            assert "mean_cluster_coefficient" not in result
        assert float(mine["quality_separability"]) == pytest.approx(
            separability.loc[module, "separability.qual"], abs=1e-10
        )
    # kME over all genes counts the gold module's genes too (a third of them, R's draw or
    # ours): close to R's, not equal; bicor's medians move with them more than Pearson's means
    np.testing.assert_allclose(
        result["cor_kme_all"].sel(module=MODULES),
        observed.loc[MODULES, "cor.kMEall"],
        atol=0.12 if "bicor" in name else 0.06,
    )


def test_missing_values_leave_out_the_genes_wgcna_does(case):
    """Genes missing in half of either cohort's samples are left out, as the genes R was given
    (goodSamplesGenes of each half)."""
    name, result = case
    assert result.attrs["correlation_type"] == ("bicor" if "bicor" in name else "pearson")
    if not name.startswith("missing"):
        assert result.attrs["n_genes"] == 400
        return
    kept = pd.read_csv(WGCNA / "preservation_missing_genes.csv")["gene"]
    assert result.attrs["n_genes"] == kept.shape[0] == 398
    assert int(result["size"].sel(module=0)) == r_table(name, "observed").loc[0, "moduleSize"]


def test_median_ranks_and_log_p_as_rs(case):
    """The ranks from R's own statistics (its gold module included) are R's median ranks;
    the log10 p-values from R's Z's are R's."""
    name, result = case
    observed, z, log_p = r_table(name, "observed"), r_table(name, "z"), r_table(name, "log_p")
    table = {ours: observed[theirs].to_numpy() for theirs, ours in OBSERVED.items()}
    density = ("prop_var_explained", "mean_sign_aware_kme", "mean_sign_aware_cor", "mean_adjacency")
    connectivity = ("cor_kim", "cor_kme", "cor_cor")
    np.testing.assert_array_equal(
        median_ranks(table, density + connectivity), observed["medianRank.pres"]
    )
    np.testing.assert_array_equal(median_ranks(table, density), observed["medianRankDensity.pres"])
    np.testing.assert_array_equal(
        median_ranks(table, connectivity), observed["medianRankConnectivity.pres"]
    )
    columns = ["Z.propVarExplained.pres", "Z.meanSignAwareKME.pres", "Z.meanSignAwareCorDat.pres"]
    for column in columns:
        np.testing.assert_allclose(
            log10_pvalues(z[column].to_numpy()),
            log_p[column.replace("Z.", "log.p.")],
            rtol=1e-12,
        )
    # ours: the same ranks where the gold module ranks as R's does
    for module in (1, 2, 3):
        assert float(result["median_rank"].sel(module=module)) == pytest.approx(
            observed.loc[module, "medianRank.pres"], abs=1.0
        )


def test_z_scores_within_permutation_error_of_rs(case):
    name, result = case
    z = r_table(name, "z")
    for module in MODULES:
        for theirs, ours in (
            ("Zsummary.pres", "z_summary"),
            ("Zdensity.pres", "z_density"),
            ("Zconnectivity.pres", "z_connectivity"),
        ):
            expected = z.loc[module, theirs]
            got = float(result[ours].sel(module=module))
            assert abs(got - expected) <= 0.15 * abs(expected) + 1.0, (module, theirs)
        for theirs, ours in CLUSTER.items() if name == "cluster" else ():
            expected = z.loc[module, f"Z.{theirs}"]
            got = float(result[f"z_{ours}"].sel(module=module))
            assert abs(got - expected) <= 0.15 * abs(expected) + 1.0, (module, theirs)


def test_missing_values_give_finite_z_scores_where_rs_are_infinite(case):
    """R's impute.knn sets the random seed and leaves it set, so every one of R's permutations
    after an imputation is the same and its Z's are infinite; the Z's held to R's above are
    from R's run with the seed restored (make_missing_network_fixtures.R)."""
    name, result = case
    if name != "missing":
        return
    as_r = r_table(name, "z_as_r")
    assert np.isinf(as_r.loc[MODULES, "Zsummary.pres"]).all()
    assert np.isfinite(result["z_summary"].sel(module=MODULES)).all()
    assert float(result["z_summary"].sel(module=0)) < 2  # grey: not preserved
    assert float(result["z_summary"].sel(module=[1, 2, 3, 4]).min()) > 5  # the planted ones are


def test_quick_cor_zero_correlates_each_pair_over_its_samples():
    """quick_cor=0: the correlations within a module are pandas' (pairwise complete); the
    default is R's quick correlation, which differs where genes miss values."""
    reference, test, modules = cohorts("missing")
    genes = modules.index[modules == 4]
    exact = network.module_preservation(
        reference, test, modules, quick_cor=0.0, n_permutations=2, progress=False
    )
    quick = network.module_preservation(reference, test, modules, n_permutations=2, progress=False)
    ref = reference["expression"].to_pandas()[genes].corr().to_numpy()
    tst = test["expression"].to_pandas()[genes].corr().to_numpy()
    lower = np.tril_indices(genes.shape[0], -1)
    expected = np.mean((np.sign(ref) * tst)[lower])
    assert float(exact["mean_sign_aware_cor"].sel(module=4)) == pytest.approx(expected, rel=1e-12)
    assert float(exact["mean_adjacency"].sel(module=4)) == pytest.approx(
        np.mean(np.abs(tst[lower]) ** 6), rel=1e-12
    )
    assert abs(float(quick["mean_sign_aware_cor"].sel(module=4)) - expected) > 1e-4
    assert exact.attrs["quick_cor"] == 0.0 and quick.attrs["quick_cor"] == 1.0
    assert quick.attrs["n_genes_missing"] == [2, 1]  # gene 301 has no value in the first half


def test_a_shuffled_module_is_not_preserved():
    """Zsummary > 10 for the planted modules, < 2 for the module whose genes were shuffled in
    the test set (and the same for R)."""
    reference, test, modules = cohorts("broken")
    result = network.module_preservation(reference, test, modules, progress=False)
    summary = result["z_summary"]
    assert all(float(summary.sel(module=m)) > 10 for m in (1, 2, 3))
    assert float(summary.sel(module=4)) < 2 and r_table("broken", "z").loc[4, "Zsummary.pres"] < 2
    assert float(result["median_rank"].sel(module=4)) > float(result["median_rank"].sel(module=1))


def test_a_modules_result_and_a_seed():
    """modules() of the reference as the modules; the same seed, the same Z's."""
    reference, test, _ = cohorts("test")
    found = network.modules(reference, power=6, min_module_size=20, progress=False)
    first = network.module_preservation(reference, test, found, n_permutations=20, progress=False)
    again = network.module_preservation(reference, test, found, n_permutations=20, progress=False)
    xr.testing.assert_identical(first, again)
    assert set(first["module"].values) == {*found["module"].values, network.GOLD}
    assert first.attrs["n_genes"] == 400 and first.attrs["n_permutations"] == 20


def test_large_modules_are_sampled():
    reference, test, modules = cohorts("test")
    result = network.module_preservation(
        reference, test, modules, max_module_size=45, n_permutations=10, progress=False
    )
    assert list(result["size"].sel(module=[1, 2, 3, 4]).values) == [45, 45, 40, 30]
    assert float(result["z_summary"].sel(module=1)) > 5


def test_refusals():
    reference, test, modules = cohorts("test")
    with pytest.raises(CohortexError, match="'n_permutations'"):
        network.module_preservation(reference, test, modules, n_permutations=1)
    with pytest.raises(CohortexError, match="two modules"):
        network.module_preservation(reference, test, modules * 0, progress=False)
    with pytest.raises(CohortexError, match="whole module numbers"):
        network.module_preservation(reference, test, modules - 5, progress=False)
    elsewhere = test.assign_coords(gene=[f"other{i}" for i in range(test.sizes["gene"])])
    with pytest.raises(CohortexError, match="share 0"):
        network.module_preservation(reference, elsewhere, modules, progress=False)
    with pytest.raises(CohortexError, match="'quick_cor'"):
        network.module_preservation(reference, test, modules, quick_cor=1.5)


@pytest.mark.parametrize("cap", [None, 0.05])
def test_statistics_correlated_over_the_genes_both_have(cap):
    """R correlates the statistics with use = "p": a gene whose statistic is NaN in either
    network (the MAR of a gene without neighbours) is left out of that pair, not the whole
    correlation made NaN."""
    from scipy import stats

    from cohortex.network._preservation import _correlate
    from cohortex.stats._network import bicor_columns

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=40), rng.normal(size=40)
    b = a + b
    a[3], b[17] = np.nan, np.nan
    both = ~np.isnan(a) & ~np.isnan(b)
    got = _correlate(a, b, cap)
    if cap is None:
        expected = stats.pearsonr(a[both], b[both]).statistic
    else:
        columns = bicor_columns(np.stack([a[both], b[both]], axis=1), cap)
        expected = columns[:, 0] @ columns[:, 1]
    assert got == pytest.approx(expected, rel=1e-13) and np.isfinite(got)
    assert np.isnan(_correlate(a[2:4], b[2:4], cap))  # one shared entry: no correlation
