"""The optional extras: without one, the feature that needs it names the extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CASES = {
    "torch": ("import cohortex\ncohortex.ae", "pip install 'cohortex[ae]'"),
    "matplotlib": ("import cohortex\ncohortex.plot", "pip install 'cohortex[plot]'"),
    "openTSNE": (
        "import numpy as np, cohortex\n"
        "cohortex.tsne(np.random.default_rng(0).normal(size=(100, 4)), device='cpu')",
        "pip install 'cohortex[tsne]'",
    ),
}


def _without(*modules: str) -> str:
    """Python source that makes ``modules`` fail to import, as if they were not installed."""
    return textwrap.dedent(
        f"""
        import importlib.abc, sys

        class NotInstalled(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in {modules!r}:
                    raise ImportError(f"No module named {{name!r}}")

        sys.meta_path.insert(0, NotInstalled())
        """
    )


@pytest.mark.parametrize("module", list(CASES))
def test_a_missing_extra_is_named(module):
    code, said = CASES[module]
    script = _without(module) + code
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "CohortexError" in done.stderr and said in done.stderr


def test_the_core_imports_without_any_extra():
    script = _without("torch", "matplotlib", "openTSNE") + (
        "import numpy as np, cohortex\n"
        "x = np.random.default_rng(0).normal(size=(30, 8))\n"
        "print(cohortex.de.test(x, ['a', 'b'] * 15, reference='b')['pvalue'].shape)\n"
        "print(cohortex.pca(x, 2).sizes['pc'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(8,)", "2"]
