"""Every compute entry point runs on a multi-process dask.distributed cluster, with the same
results as the local threaded scheduler."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex import de, pca, simulate

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("dist") / "c.zarr"
    simulate(path, 400, 120, n_de=12, batches=2, seed=8, chunks=(64, 32))
    return path


def _remote(client, function):
    """Run on the cluster, and check that its workers did the work."""
    with distributed.get_task_stream(client) as stream:
        result = function()
    assert len(stream.data) > 0
    return result


def _local(function):
    import dask

    with dask.config.set(scheduler="threads"):
        return function()


@pytest.mark.parametrize("kind", ["welch", "wilcoxon"])
def test_tests_match_local(client, store, kind):
    run = lambda: de.test(store, "condition", test=kind, reference="normal")  # noqa: E731
    remote, local = _remote(client, run), _local(run)
    np.testing.assert_allclose(remote["pvalue"], local["pvalue"], rtol=1e-12)
    np.testing.assert_allclose(remote["statistic"], local["statistic"], rtol=1e-12)


def test_linear_model_matches_local(client, store):
    run = lambda: de.fit(store, "~ condition + batch")  # noqa: E731
    remote, local = _remote(client, run), _local(run)
    np.testing.assert_allclose(remote["statistic"], local["statistic"], rtol=1e-12)
    assert remote.attrs["df_prior"] == pytest.approx(local.attrs["df_prior"], rel=1e-12)


@pytest.mark.parametrize("path", ["covariance", "randomized"])
def test_streaming_pca_matches_local(client, store, monkeypatch, path):
    if path == "randomized":  # the block Krylov path at this width (the policy runs here)
        import cohortex.embed._pca as pca_module

        monkeypatch.setattr(pca_module, "COVARIANCE_MAX_GENES", 50)
    run = lambda: pca(store, 5, method="streaming")  # noqa: E731
    remote, local = _remote(client, run), _local(run)
    expected = "randomized-streaming" if path == "randomized" else "covariance"
    assert remote.attrs["method"] == local.attrs["method"] == expected
    np.testing.assert_allclose(
        remote["explained_variance"], local["explained_variance"], rtol=1e-10
    )
    np.testing.assert_allclose(remote["scores"], local["scores"], rtol=1e-8, atol=1e-10)


def test_cluster_helper():
    import cohortex

    with cohortex.cluster(gpus=None, n_workers=1, threads_per_worker=1) as started:
        assert len(started.scheduler_info()["workers"]) == 1
        result = de.test(np.random.default_rng(0).normal(size=(20, 5)), ["a"] * 10 + ["b"] * 10)
        assert result.sizes["gene"] == 5
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        with pytest.raises(cohortex.CohortexError, match="needs dask-cuda: pip install"):
            cohortex.cluster()
