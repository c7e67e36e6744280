"""t-SNE of the samples: cuML on a GPU where installed, openTSNE (FFT-accelerated) otherwise."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr

from .._backend import resolve_device, to_host
from .._cohort import as_cohort_matrix
from .._errors import CohortexError
from .._optional import require
from .._progress import progress_bar

__all__ = ["EXAGGERATION_ITERATIONS", "check_perplexity", "cuml_arguments", "tsne"]

# openTSNE's early exaggeration phase, which its n_iter does not count and cuML's max_iter does
EXAGGERATION_ITERATIONS = 250
# openTSNE calls the progress callback every this many iterations (its default)
_CALLBACK_EVERY = 50


def cuml_arguments(*, perplexity: float, n_iter: int, seed: int) -> dict[str, Any]:
    """cuML ``TSNE`` arguments that run what openTSNE runs for the same ``n_iter``.

    cuML (26.10) counts the early exaggeration in ``max_iter``; openTSNE does not.
    """
    return {
        "n_components": 2,
        "perplexity": perplexity,
        "max_iter": n_iter + EXAGGERATION_ITERATIONS,
        "exaggeration_iter": EXAGGERATION_ITERATIONS,
        "method": "fft",
        "random_state": seed,
    }


def tsne(
    data: Any,
    *,
    n_components: int = 2,
    perplexity: float = 30.0,
    n_iter: int = 500,
    n_pcs: int = 50,
    seed: int = 0,
    device: str = "auto",
    n_jobs: int = -1,
    progress: bool | None = None,
) -> xr.Dataset:
    """t-SNE embedding of the samples.

    Parameters
    ----------
    data : xarray.Dataset, path or array of shape (n_samples, n_features)
        A result of :func:`cohortex.pca` (its ``scores`` are embedded), a cohort (store or
        Dataset; its first ``n_pcs`` principal components are computed first), or a matrix.
    n_components : int, default 2
    perplexity : float, default 30
        Needs at least ``3 × perplexity`` samples.
    n_iter : int, default 500
        Iterations after the 250 of early exaggeration (openTSNE's defaults).
    n_pcs : int, default 50
        Principal components to embed when ``data`` is a cohort.
    seed : int, default 0
        The same seed gives the same embedding on the CPU.
    device : {"auto", "cpu", "gpu"}, default "auto"
        On a GPU, cuML's TSNE (method="fft") when cuML is installed and ``n_components`` is 2
        (all that cuML supports); otherwise the scores go to the host and openTSNE runs.
    n_jobs : int, default -1
        CPU threads for openTSNE (-1: all cores).
    progress : bool or None, default None
        openTSNE's iterations as a bar on a terminal, as a line every half minute in a log
        (``None``), always or never.

    Returns
    -------
    xarray.Dataset
        ``embedding(sample, dim)`` and the sample variables of the input, attrs naming the
        implementation and parameters.
    """
    if not isinstance(n_iter, int | np.integer) or n_iter < 1:
        raise CohortexError(
            f"The 'n_iter' parameter of tsne() must be a positive whole number; got {n_iter!r}."
        )
    if n_components not in (1, 2, 3):
        raise CohortexError(
            f"The 'n_components' parameter of tsne() must be 1, 2 or 3; got {n_components!r}."
        )
    device = resolve_device(device)
    scores, carried = _scores(data, n_pcs, seed, device, perplexity)
    if np.isnan(scores).any():
        raise CohortexError(
            f"t-SNE needs complete data; the input holds {int(np.isnan(scores).sum())} NaN values."
        )
    embedding, implementation = None, "openTSNE"
    if device == "gpu" and n_components == 2:
        try:
            from cuml.manifold import TSNE as GpuTSNE
        except ImportError:
            GpuTSNE = None
        if GpuTSNE is not None:
            model = GpuTSNE(**cuml_arguments(perplexity=perplexity, n_iter=n_iter, seed=seed))
            embedding = np.asarray(to_host(model.fit_transform(scores)), dtype=np.float64)
            implementation = "cuml"
    if embedding is None:
        TSNE = require("openTSNE", "t-SNE on the CPU").TSNE

        with progress_bar(
            EXAGGERATION_ITERATIONS + n_iter, "t-SNE", progress, unit="iteration"
        ) as bar:

            def advance(iteration: int, error: float, embedding: Any) -> bool:
                bar.set_postfix(kl=f"{error:.3f}")
                bar.update(_CALLBACK_EVERY)
                return False  # never stop early

            model = TSNE(
                n_components=n_components,
                perplexity=perplexity,
                n_iter=n_iter,
                random_state=seed,
                n_jobs=n_jobs,
                callbacks=advance,
                callbacks_every_iters=_CALLBACK_EVERY,
                # openTSNE's "auto": Barnes–Hut below 10,000 samples (the FFT grid has a fixed
                # cost: 10 s for 240 samples), FFT above; FFT only exists for 1 or 2 dimensions
                negative_gradient_method="auto" if n_components <= 2 else "bh",
            )
            embedding = np.asarray(model.fit(np.ascontiguousarray(scores, dtype=np.float64)))
    result = xr.Dataset(
        {"embedding": (("sample", "dim"), embedding)},
        coords={"sample": carried["sample"], "dim": [f"tSNE{i + 1}" for i in range(n_components)]},
        attrs={
            "implementation": implementation,
            "perplexity": perplexity,
            "n_iter": n_iter,
            "seed": seed,
        },
    )
    for name, values in carried.items():
        if name != "sample":
            result[name] = ("sample", values)
    return result


def check_perplexity(n_samples: int, perplexity: float) -> None:
    """Raise unless ``perplexity`` is a positive number and ``n_samples`` are enough for it
    (3 × perplexity)."""
    if not (isinstance(perplexity, int | float) and np.isfinite(perplexity) and perplexity > 0):
        raise CohortexError(
            f"The 'perplexity' parameter of tsne() must be a positive number; got {perplexity!r}."
        )
    if n_samples < 3 * perplexity:
        raise CohortexError(
            f"t-SNE with perplexity {perplexity:g} needs at least {int(np.ceil(3 * perplexity))} "
            f"samples (3 × perplexity); got {n_samples}. Lower the perplexity."
        )


def _scores(
    data: Any, n_pcs: int, seed: int, device: str, perplexity: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """The matrix to embed and the sample variables to carry along (enough samples checked
    before a cohort's principal components are computed)."""
    from ._pca import pca

    if isinstance(data, str | os.PathLike) or (
        isinstance(data, xr.Dataset) and "expression" in data
    ):
        check_perplexity(as_cohort_matrix(data).matrix.shape[0], perplexity)
        data = pca(data, n_components=n_pcs, seed=seed, device=device)
    if isinstance(data, xr.Dataset):
        if "scores" not in data:
            raise CohortexError(
                "The Dataset given to tsne() must be a pca() result (with 'scores') or a cohort "
                "(with 'expression')."
            )
        carried = {"sample": np.asarray(data["sample"].values)}
        for name in data.data_vars:
            if data[name].dims == ("sample",):
                carried[str(name)] = np.asarray(data[name].values)
        check_perplexity(data.sizes["sample"], perplexity)
        return np.asarray(to_host(data["scores"].values), dtype=np.float64), carried
    matrix = np.asarray(to_host(data), dtype=np.float64)
    if matrix.ndim != 2:
        raise CohortexError(f"tsne() needs a 2-D matrix; got shape {matrix.shape}.")
    check_perplexity(matrix.shape[0], perplexity)
    return matrix, {"sample": np.asarray([f"S{i + 1}" for i in range(matrix.shape[0])], object)}
