"""The public API, pinned, and the package's rules of the house, checked from its imports."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import cohortex
from cohortex import CohortexError

PUBLIC = {
    "cohortex": {
        "CohortexError",
        "CohortexWarning",
        "__version__",
        "ae",
        "append_samples",
        "cluster",
        "consensus_clusters",
        "create_cohort",
        "de",
        "fdr",
        "filter_by_expr",
        "genesets",
        "gpu_available",
        "io",
        "list_results",
        "mds",
        "network",
        "norm_factors",
        "normalize",
        "open_cohort",
        "pca",
        "plot",
        "predict",
        "read_result",
        "resolve_device",
        "simulate",
        "survival",
        "tsne",
        "verify",
        "write_result",
    },
    "cohortex.de": {
        "RANK_MEMORY_BUDGET",
        "SVA_METHODS",
        "TESTS",
        "array_weights",
        "combat",
        "combat_seq",
        "decide",
        "deseq",
        "duplicate_correlation",
        "estimate_dispersion",
        "exact_test",
        "fit",
        "fsva",
        "glm_lrt",
        "glm_ql",
        "ihw",
        "normalize",
        "num_sv",
        "remove_batch_effect",
        "rlog",
        "select_k_best",
        "sva",
        "test",
        "top",
        "voom",
        "voom_lm_fit",
        "vooma",
        "vst",
        "wsva",
    },
    "cohortex.store": {
        "COMPRESSORS",
        "DEFAULT_CHUNKS",
        "FORMAT_VERSION",
        "LOCK_TIMEOUT",
        "SCALES",
        "StoreReport",
        "append_samples",
        "create_cohort",
        "describe",
        "list_results",
        "open_cohort",
        "read_result",
        "verify",
        "write_result",
    },
    "cohortex.io": {
        "COUNTS_FROM_ABUNDANCE",
        "ORIENTATIONS",
        "QUANTIFIERS",
        "export_anndata",
        "export_gct",
        "export_table",
        "from_anndata",
        "import_anndata",
        "import_featurecounts",
        "import_file",
        "import_gct",
        "import_quantifications",
        "import_table",
        "read_metadata",
        "read_quantifications",
        "to_anndata",
        "to_pandas",
    },
    "cohortex.embed": {"consensus_clusters", "mds", "pca", "tsne"},
    "cohortex.network": {
        "CALIBRATIONS",
        "CORRELATION_TYPES",
        "DEFAULT_POWERS",
        "GOLD",
        "NETWORK_TYPES",
        "TOM_DENOMINATORS",
        "TOM_TYPES",
        "blockwise_modules",
        "consensus_modules",
        "hub_genes",
        "module_edges",
        "module_enrichment",
        "module_preservation",
        "module_traits",
        "modules",
        "soft_threshold",
    },
    "cohortex.ae": {"ACTIVATIONS", "Autoencoder", "baselines", "enrichment"},
    "cohortex.fdr": {"METHODS", "IHWResult", "adjust", "check_method", "ihw", "lfdr", "pi0"},
    "cohortex.plot": {
        "barcode",
        "calibration",
        "consensus",
        "cumulative_incidence",
        "dendrogram",
        "embedding",
        "enrichment",
        "forest",
        "gsea",
        "heatmap",
        "km",
        "loss",
        "ma",
        "module_traits",
        "roc",
        "scree",
        "soft_threshold",
        "top_genes",
        "volcano",
    },
    "cohortex.simulate": {"GENERATION_BLOCK", "simulate"},
    "cohortex.survival": {
        "CUTPOINT_PVALUES",
        "TIES",
        "TIME_WEIGHTS",
        "Concordance",
        "CoxModel",
        "CoxnetModel",
        "CumulativeIncidence",
        "FineGrayModel",
        "GroupComparison",
        "calibration",
        "compare_groups",
        "concordance",
        "cox",
        "cutpoint",
        "cox_zph",
        "coxnet",
        "cumulative_incidence",
        "fine_gray",
        "fine_gray_genes",
        "fit_cox",
        "kaplan_meier",
        "logrank",
        "median_survival",
        "time_dependent_scores",
    },
    "cohortex.genesets": {
        "GSVA_KERNELS",
        "GSVA_METHODS",
        "GeneSets",
        "camera",
        "camera_pr",
        "fry",
        "gene_set_test",
        "gsea",
        "gsva",
        "ora",
        "ora_de",
        "read_gmt",
        "roast",
        "romer",
    },
    "cohortex.predict": {
        "MODELS",
        "RIDGE_GRID",
        "SELECTIONS",
        "SURVIVAL_MODELS",
        "Classifier",
        "CrossValidation",
        "SurvivalCrossValidation",
        "cross_validate",
        "cross_validate_survival",
        "fit",
        "fit_survival",
    },
}


@pytest.mark.parametrize("module", list(PUBLIC))
def test_public_names_are_pinned(module):
    imported = importlib.import_module(module)
    assert set(imported.__all__) == PUBLIC[module]
    for name in imported.__all__:
        assert hasattr(imported, name), name


def test_one_exception_base():
    assert issubclass(CohortexError, ValueError)
    assert issubclass(cohortex.CohortexWarning, UserWarning)


# ------------------------------------------------------------------------ rules of the house

SOURCE = Path(cohortex.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SOURCE.rglob("*.py")}


def _imports(module: str) -> list[tuple[str, str]]:
    """(imported module, imported name) of every import in a module, function bodies too."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.append((full, "") if full in MODULES else (target, alias.name))
    return found


def test_no_module_imports_another_modules_private_name():
    private = [
        (module, target, name)
        for module in MODULES
        for target, name in _imports(module)
        if target.startswith("cohortex") and name.startswith("_") and name != "__version__"
    ]
    assert private == []


def test_no_import_cycle():
    graph = {m: {t for t, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in graph[module]:
            assert state.get(target) != 1, " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [])


def test_stats_is_a_leaf_without_xarray():
    """stats/: arrays in, arrays out; it knows the backend, nothing above it."""
    for module in (m for m in MODULES if m.startswith("cohortex.stats")):
        for target, _ in _imports(module):
            assert not target.startswith(("xarray", "pandas")), (module, target)
            if target.startswith("cohortex"):
                allowed = (
                    "cohortex.stats",
                    "cohortex._backend",
                    "cohortex._errors",
                    "cohortex._jit",
                )
                assert target.startswith(allowed), (module, target)


def test_the_library_never_imports_the_application():
    for module in (m for m in MODULES if not m.startswith("cohortex.app")):
        assert not any(t.startswith("cohortex.app") for t, _ in _imports(module)), module


def test_importing_cohortex_and_the_command_line_stays_light():
    """`import cohortex` and `cohortex --help` load no array library beyond NumPy; the public
    names load on first use (and cohortex.simulate stays the function)."""
    import subprocess
    import sys

    heavy = ("dask", "zarr", "xarray", "pandas", "scipy", "numba", "torch", "matplotlib")
    probe = (
        "import sys, cohortex; from cohortex.app import cli; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "cohortex.app.cli", "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0 and "survival" in help_text.stdout
    module = importlib.import_module("cohortex.simulate")
    assert callable(cohortex.simulate) and module.simulate is cohortex.simulate
    assert cohortex.survival.cox.__module__ == "cohortex.survival._cox"
