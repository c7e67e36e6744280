"""The GPU libraries CI cannot install (cuML, dask-cuda, RMM): what cohortex passes them is
held to their argument lists, frozen from the pinned releases; the extras pin those releases.

The lists below are copied from the released wheels ``cuml_cu13-26.10.0`` (its
``cuml/decomposition/pca.pyx`` and ``cuml/manifold/t_sne.pyx``, which the wheel ships) and
``dask_cuda-26.10.0`` (``dask_cuda/local_cuda_cluster.py``); cuML's ``LogisticRegression`` and
``RandomForestClassifier`` from the rapidsai/cuml repository at VERSION 26.10.00
(``cuml/linear_model/logistic_regression.py``, ``cuml/ensemble/randomforestclassifier.py``;
its PCA list there is the one above). When the extras move to another release, copy the lists
from that release's wheels and change ``PINNED`` with them.
"""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
import types
from pathlib import Path

import cupy
import distributed
import numpy as np
import pytest
from dask.utils import parse_bytes

import cohortex
from cohortex import CohortexError, pca, predict, tsne

from conftest import to_numpy

PINNED = "26.10.0"  # cuML and dask-cuda


def _frozen(text: str) -> inspect.Signature:
    namespace: dict[str, object] = {}
    exec(f"def init(self, {text}): pass", namespace)
    return inspect.signature(namespace["init"])


CUML_PCA = _frozen(
    "*, copy=True, iterated_power=15, n_components=None, svd_solver='auto', tol=1e-7, "
    "verbose=False, whiten=False, output_type=None"
)
CUML_TSNE = _frozen(
    "*, n_components=2, perplexity=30.0, early_exaggeration=12.0, late_exaggeration=1.0, "
    "learning_rate=200.0, max_iter=1000, n_iter_without_progress=300, min_grad_norm=1e-07, "
    "metric='euclidean', metric_params=None, init='random', random_state=None, method='fft', "
    "angle=0.5, n_neighbors=90, perplexity_max_iter=100, exaggeration_iter=250, "
    "pre_momentum=0.5, post_momentum=0.8, learning_rate_method='adaptive', "
    "square_distances=True, precomputed_knn=None, verbose=False, output_type=None"
)
CUML_LOGISTIC_REGRESSION = _frozen(
    "*, penalty='l2', tol=1e-4, C=1.0, fit_intercept=True, class_weight=None, max_iter=1000, "
    "linesearch_max_iter=50, l1_ratio=None, solver='qn', lbfgs_memory=5, "
    "penalty_normalized=True, verbose=False, output_type=None"
)
CUML_RANDOM_FOREST_CLASSIFIER = _frozen(
    "*, n_estimators=100, split_criterion='gini', bootstrap=True, max_samples=1.0, "
    "max_depth=None, max_leaves=-1, max_features='sqrt', n_bins=128, min_samples_leaf=1, "
    "min_samples_split=2, min_impurity_decrease=0.0, max_batch_size=4096, random_state=None, "
    "n_streams=4, oob_score=False, class_weight=None, verbose=False, output_type=None"
)
LOCAL_CUDA_CLUSTER = _frozen(
    "CUDA_VISIBLE_DEVICES=None, n_workers=None, threads_per_worker=1, memory_limit='auto', "
    "device_memory_limit='default', enable_cudf_spill=False, cudf_spill_stats=0, "
    "local_directory=None, protocol=None, enable_tcp_over_ucx=None, enable_infiniband=None, "
    "enable_nvlink=None, enable_rdmacm=None, rmm_pool_size=None, rmm_maximum_pool_size=None, "
    "rmm_managed_memory=False, rmm_async=False, rmm_allocator_external_lib_list=None, "
    "rmm_release_threshold=None, rmm_log_directory=None, rmm_track_allocations=False, "
    "log_spilling=False, pre_import=None, **kwargs"
)
# dask-cuda reads these with parse_device_memory_limit / parse_memory_limit: an int (bytes), a
# float (a fraction of the memory), a string that dask.utils.parse_bytes reads, 0 or None, and
# for the two limits also "auto" ("default" for the device limit)
_MEMORY_ARGUMENTS = {
    "memory_limit": {"auto"},
    "device_memory_limit": {"auto", "default"},
    "rmm_pool_size": set(),
    "rmm_maximum_pool_size": set(),
    "rmm_release_threshold": set(),
}


def _check_memory(name: str, value: object) -> None:
    if value is None or isinstance(value, int):
        return
    if isinstance(value, float):
        assert 0 <= value <= 1, f"{name}={value!r}: a fraction of the memory must be in [0, 1]"
        return
    assert isinstance(value, str), f"{name}={value!r}"
    if value not in _MEMORY_ARGUMENTS[name]:
        parse_bytes(value)  # raises ValueError for "90%", as dask-cuda would


class _Recorder:
    """A stand-in class of a GPU library that checks its arguments like the real one."""

    signature: inspect.Signature
    calls: list[dict[str, object]]

    def __init__(self, *args: object, **kwargs: object) -> None:
        bound = self.signature.bind(self, *args, **kwargs)  # TypeError, as the real class
        type(self).calls.append(dict(bound.arguments))
        self.arguments = bound.arguments


class FakePCA(_Recorder):
    """cuML's PCA (fit_transform, components_, explained_variance_), computed by NumPy."""

    signature, calls = CUML_PCA, []

    def fit_transform(self, x):
        data = x.get()  # cuML is given device data
        centred = data - data.mean(axis=0)
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        k = self.arguments["n_components"]
        self.components_ = type(x)(vt[:k])
        self.explained_variance_ = type(x)(singular[:k] ** 2 / (len(data) - 1))
        return type(x)(centred @ vt[:k].T)


class FakeTSNE(_Recorder):
    signature, calls = CUML_TSNE, []

    def fit_transform(self, x):
        return np.asarray(x)[:, :2] * 1.0  # what it computes is not the question here


class FakeLogisticRegression(_Recorder):
    """cuML's LogisticRegression on device data, computed by scikit-learn's (same C, no
    standardisation of its own: cohortex standardises before)."""

    signature, calls = CUML_LOGISTIC_REGRESSION, []

    def fit(self, x, y):
        from sklearn.linear_model import LogisticRegression

        assert not isinstance(x, np.ndarray) and not isinstance(y, np.ndarray)  # device data
        penalty = self.arguments.get("penalty", "l2")
        assert penalty in ("l1", "l2", "elasticnet", None)
        C = np.inf if penalty is None else self.arguments.get("C", 1.0)
        self.model = LogisticRegression(C=C, max_iter=5000).fit(x.get(), y.get())
        self.coef_ = type(x)(self.model.coef_)
        return self

    def predict_proba(self, x):
        return type(x)(self.model.predict_proba(x.get()))


class FakeRandomForestClassifier(_Recorder):
    signature, calls = CUML_RANDOM_FOREST_CLASSIFIER, []

    def fit(self, x, y):
        from sklearn.ensemble import RandomForestClassifier

        arguments = {k: self.arguments[k] for k in ("n_estimators", "random_state")}
        self.model = RandomForestClassifier(**arguments).fit(x.get(), y.get())
        self.feature_importances_ = type(x)(self.model.feature_importances_)
        return self

    def predict_proba(self, x):
        return type(x)(self.model.predict_proba(x.get()))


class FakeLocalCUDACluster(_Recorder):
    signature, calls = LOCAL_CUDA_CLUSTER, []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for name in _MEMORY_ARGUMENTS:
            if name in self.arguments:
                _check_memory(name, self.arguments[name])
        extra = self.arguments.get("kwargs", {})
        inspect.signature(distributed.LocalCluster).bind(**extra)  # passed on to LocalCluster


@pytest.fixture
def gpu_libraries(monkeypatch, surface):
    """cuML and dask-cuda as modules with the frozen classes above, on the CuPy stand-in."""
    fakes = (FakePCA, FakeTSNE, FakeLogisticRegression, FakeRandomForestClassifier)
    for fake in (*fakes, FakeLocalCUDACluster):
        fake.calls = []
    cuml = types.ModuleType("cuml")
    cuml.decomposition = types.SimpleNamespace(PCA=FakePCA)
    cuml.manifold = types.SimpleNamespace(TSNE=FakeTSNE)
    cuml.linear_model = types.SimpleNamespace(LogisticRegression=FakeLogisticRegression)
    cuml.ensemble = types.SimpleNamespace(RandomForestClassifier=FakeRandomForestClassifier)
    monkeypatch.setitem(sys.modules, "cuml", cuml)
    monkeypatch.setitem(sys.modules, "cuml.decomposition", cuml.decomposition)
    monkeypatch.setitem(sys.modules, "cuml.manifold", cuml.manifold)
    monkeypatch.setitem(sys.modules, "cupy", surface)  # _in_memory_pca's cupy.asnumpy
    monkeypatch.setitem(
        sys.modules, "dask_cuda", types.SimpleNamespace(LocalCUDACluster=FakeLocalCUDACluster)
    )
    monkeypatch.setattr(distributed, "Client", lambda cluster: cluster)
    return surface


def _low_rank(seed=6, n=300, genes=40):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 4)) @ rng.normal(size=(4, genes)) * 3) + rng.normal(size=(n, genes))


def test_pca_calls_cuml_as_26_10_takes_it(gpu_libraries):
    x = _low_rank()
    cpu = pca(x, 5, device="cpu")
    on_device = pca(gpu_libraries.asarray(x), 5, device="gpu")
    assert on_device.attrs["method"] == "cuml"
    assert FakePCA.calls == [{"self": FakePCA.calls[0]["self"], "n_components": 5}]
    np.testing.assert_allclose(on_device["explained_variance"], cpu["explained_variance"])
    np.testing.assert_allclose(np.abs(on_device["loadings"]), np.abs(cpu["loadings"]), atol=1e-8)


def test_tsne_calls_cuml_like_opentsne_and_only_in_two_dimensions(gpu_libraries):
    scores = np.random.default_rng(1).normal(size=(120, 6))
    result = tsne(scores, perplexity=10, n_iter=300, seed=4, device="gpu")
    assert result.attrs["implementation"] == "cuml"
    (call,) = FakeTSNE.calls
    assert call["max_iter"] == 300 + 250 and call["exaggeration_iter"] == 250  # openTSNE's
    assert call["perplexity"] == 10 and call["random_state"] == 4 and call["n_components"] == 2
    three = tsne(scores, n_components=3, perplexity=10, n_iter=250, seed=4, device="gpu", n_jobs=1)
    assert three.attrs["implementation"] == "openTSNE"  # cuML only embeds in 2 dimensions
    assert len(FakeTSNE.calls) == 1


@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet", "none"])
def test_predict_calls_cuml_as_26_10_takes_it(gpu_libraries, penalty):
    """On a GPU with cuML the models are cuML's, given arguments its 26.10 classes take, on
    device data standardised as scikit-learn's StandardScaler does."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(90, 30))
    y = np.repeat(["a", "b"], 45)
    x[y == "b", :3] += 1.0
    on_gpu = predict.cross_validate(x, y, k=8, folds=3, penalty=penalty, device="gpu")
    assert FakeLogisticRegression.calls and not FakeRandomForestClassifier.calls
    assert FakeLogisticRegression.calls[0].get("penalty", "l2") == (
        None if penalty == "none" else penalty
    )
    if penalty == "l2":  # the fake fits scikit-learn's l2 model: the CPU run's numbers
        on_cpu = predict.cross_validate(x, y, k=8, folds=3, device="cpu")
        np.testing.assert_allclose(on_gpu.folds["auroc"], on_cpu.folds["auroc"], rtol=1e-9)
    forest = predict.cross_validate(x, y, k=8, folds=3, model="random_forest", device="gpu")
    assert FakeRandomForestClassifier.calls[0]["n_estimators"] == 500
    assert forest.genes["importance"].notna().all()


def test_cluster_arguments_are_what_dask_cuda_26_10_parses(gpu_libraries):
    started = cohortex.cluster(gpus=2)
    (call,) = FakeLocalCUDACluster.calls
    assert call["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert call["rmm_pool_size"] == 0.9
    assert set(call["rmm_allocator_external_lib_list"]) == {"cupy", "torch"}
    assert started is call["self"]  # the client is connected to that cluster
    cohortex.cluster(gpus=[3], rmm_pool_size="40GB", spill=False)
    assert FakeLocalCUDACluster.calls[1]["device_memory_limit"] == 0
    cohortex.cluster(gpus="all", rmm_pool_size=None)
    assert FakeLocalCUDACluster.calls[2]["rmm_allocator_external_lib_list"] is None
    for wrong in ("90%", 1.5, 0, "lots"):
        with pytest.raises(CohortexError, match="'rmm_pool_size' parameter must be a fraction"):
            cohortex.cluster(gpus="all", rmm_pool_size=wrong)


def test_memory_check_refuses_percent_strings():
    """The check itself: dask-cuda parses "%" nowhere (parse_bytes refuses it)."""
    with pytest.raises(ValueError):
        _check_memory("device_memory_limit", "80%")
    _check_memory("device_memory_limit", "default")
    _check_memory("rmm_pool_size", "40GB")


def _extras() -> dict[str, list[str]]:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    return tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]


@pytest.mark.parametrize("extra", ["cuda12", "cuda13"])
def test_gpu_extras_pin_what_these_tests_hold_the_code_to(extra):
    requirements = {re.split(r"[\[<>=~!]", r)[0]: r for r in _extras()[extra]}
    suffix = "cu12" if extra == "cuda12" else "cu13"
    assert requirements[f"cuml-{suffix}"] == f"cuml-{suffix}~={PINNED}"
    assert requirements["dask-cuda"] == f"dask-cuda~={PINNED}"
    # the CuPy stand-in models the installed CuPy: the extras must not admit an older API
    cupy_requirement = requirements[f"cupy-cuda{suffix[2:]}x"]
    floor = re.search(r">=(\d+)\.(\d+)", cupy_requirement)
    assert floor is not None
    assert int(floor.group(1)) >= int(cupy.__version__.split(".")[0])
    assert "[ctk]" in cupy_requirement  # NVRTC, cuBLAS, cuSOLVER from wheels, not the system


def test_results_of_the_recorders_are_host_arrays(gpu_libraries):
    """The fake cuML returns device arrays, as cuML does for device input."""
    model = FakePCA(n_components=2)
    out = model.fit_transform(gpu_libraries.asarray(_low_rank()))
    assert to_numpy(out).shape == (300, 2)
    with pytest.raises(TypeError):
        FakePCA(n_components=2, random_state=0)  # what cohortex passed before
