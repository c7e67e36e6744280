"""WGCNA's modulePreservation against WGCNA 1.72 (fixtures from
tests/fixtures/make_preservation_fixtures.R): the simulated cohort's first 50 samples the
reference, its last 50 the test set, its four planted modules the reference's modules; a test
set where the 4th module's genes are shuffled; a signed network. The observed statistics are
exact; the Z scores come from random gene sets (R's and NumPy's differ) and agree within their
permutation error."""

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
}
MODULES = [0, 1, 2, 3, 4]  # the gold module is a random draw: R's and ours differ


def as_cohort(values: pd.DataFrame) -> xr.Dataset:
    return xr.Dataset(
        {"expression": (("sample", "gene"), values.to_numpy(np.float64))},
        coords={"sample": values.index.to_numpy(), "gene": values.columns.to_numpy()},
        attrs={"scale": "log2"},
    )


def cohorts(which: str) -> tuple[xr.Dataset, xr.Dataset, pd.Series]:
    values = pd.read_csv(WGCNA / "simulated_expression.csv", index_col=0)
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
        assert float(mine["quality_separability"]) == pytest.approx(
            separability.loc[module, "separability.qual"], abs=1e-10
        )
    # kME over all genes counts the gold module's genes too: close to R's, not equal
    np.testing.assert_allclose(
        result["cor_kme_all"].sel(module=MODULES), observed.loc[MODULES, "cor.kMEall"], atol=0.06
    )


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
