"""PCA of the selected genes loaded into memory: scikit-learn, cuML on a GPU where installed,
else the CuPy covariance path."""

from __future__ import annotations

import dask.array as da
import numpy as np

from .._backend import as_device_dask
from ._covariance import ROWS_PER_CHUNK, covariance_pca

__all__ = ["in_memory_pca"]


def in_memory_pca(
    dense: np.ndarray, k: int, method: str, device: str, seed: int, sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """scikit-learn (or cuML) on the selected genes, in their own dtype (they centre)."""
    data = dense if dense.dtype in (np.float32, np.float64) else dense.astype(np.float64)
    if np.any(sd != 1.0):
        data = data / sd.astype(data.dtype)
    if device == "gpu":
        try:
            from cuml.decomposition import PCA as GpuPCA
        except ImportError:
            GpuPCA = None
        if GpuPCA is not None:
            import cupy

            model = GpuPCA(n_components=k)  # cuML's solvers are deterministic: no seed
            scores = cupy.asnumpy(model.fit_transform(cupy.asarray(data)))
            components = cupy.asnumpy(model.components_)
            explained = cupy.asnumpy(model.explained_variance_)
            return scores, components.T, explained, "cuml"
        chunked = as_device_dask(da.from_array(data, chunks=(ROWS_PER_CHUNK, -1)))
        scores, loadings, explained, _ = covariance_pca(
            chunked, k, np.asarray(data.mean(axis=0, dtype=np.float64)), np.ones(data.shape[1])
        )
        return scores, loadings, explained, "cupy-covariance"
    from sklearn.decomposition import PCA

    solver = {"exact": "full", "randomized": "randomized"}.get(method, "auto")
    model = PCA(n_components=k, svd_solver=solver, random_state=seed)
    scores = model.fit_transform(data)
    return scores, model.components_.T, model.explained_variance_, f"sklearn-{solver}"
