"""Start a Dask cluster on this machine: one worker per GPU (dask-cuda) or CPU processes.

Every cohortex computation runs on whatever Dask scheduler is active, so a cluster started
here, or a ``distributed.Client`` connected to a multi-node cluster (``dask scheduler`` on one
node, ``dask cuda worker SCHEDULER_ADDRESS`` on each GPU node, or ``dask worker`` on CPU
nodes), is all it takes to spread the work; see docs/scaling.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._errors import CohortexError

__all__ = ["cluster"]


def cluster(
    gpus: str | int | Sequence[int] | None = "all",
    *,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    rmm_pool_size: float | str | None = 0.9,
    spill: bool = True,
) -> Any:
    """Start a local cluster and return a connected ``distributed.Client``.

    Parameters
    ----------
    gpus : "all", int, sequence of int or None, default "all"
        GPUs to use, one worker each (dask-cuda's ``LocalCUDACluster``): all visible ones, the
        first N, or these device ids. ``None`` starts CPU worker processes instead.
    n_workers, threads_per_worker : int, optional
        For CPU clusters (default: Dask's choice for this machine).
    rmm_pool_size : float, str or None, default 0.9
        Each GPU worker's RMM memory pool (faster allocation): a fraction of the device's
        memory, or a size such as ``"40GB"``; ``None`` for no pool. CuPy and torch allocate
        from the pool too, so that the pool does not leave them the rest of the device.
    spill : bool, default True
        Let GPU workers spill device memory to host memory above 80 % of the device's memory.

    Returns
    -------
    distributed.Client
        Close it (or use it as a context manager) to stop the cluster.
    """
    import distributed

    if gpus is None:
        local = distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=":0",
        )
        return distributed.Client(local)
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        raise CohortexError(
            "cluster(gpus=...) needs dask-cuda: pip install 'cohortex[cuda12]' or "
            "'cohortex[cuda13]'; pass gpus=None for CPU workers."
        ) from None
    if gpus == "all":
        visible = None
    elif isinstance(gpus, int):
        visible = ",".join(str(i) for i in range(gpus))
    else:
        visible = ",".join(str(int(i)) for i in gpus)
    pool = _memory_size(rmm_pool_size)
    local = LocalCUDACluster(
        CUDA_VISIBLE_DEVICES=visible,
        rmm_pool_size=pool,
        # without this, CuPy and torch allocate beside the pool, from what it leaves free
        rmm_allocator_external_lib_list=["cupy", "torch"] if pool is not None else None,
        enable_cudf_spill=False,
        device_memory_limit=0.8 if spill else 0,
        dashboard_address=":0",
    )
    return distributed.Client(local)


def _memory_size(value: float | str | None) -> float | str | None:
    """Check a device memory size as dask-cuda reads it: a fraction in (0, 1] or a size that
    ``dask.utils.parse_bytes`` parses ("%" is not one)."""
    from dask.utils import parse_bytes

    if value is None:
        return None
    if isinstance(value, str):
        try:
            parse_bytes(value)
        except ValueError:
            raise CohortexError(
                f"The 'rmm_pool_size' parameter must be a fraction of the device memory in "
                f"(0, 1] or a size such as '40GB'; got {value!r}."
            ) from None
        return value
    if not 0 < float(value) <= 1:
        raise CohortexError(
            f"The 'rmm_pool_size' parameter must be a fraction of the device memory in (0, 1] "
            f"or a size such as '40GB'; got {value!r}."
        )
    return float(value)
