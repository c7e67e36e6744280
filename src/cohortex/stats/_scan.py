"""Running maxima and minima along the last axis, on any ``xp`` (NumPy or CuPy).

CuPy implements ``ufunc.accumulate`` only for ``add`` and ``multiply``, so
``xp.maximum.accumulate`` is not available on a GPU. The scan below (Hillis & Steele 1986)
needs only elementwise ``maximum``/``minimum`` and slicing: ⌈log2 n⌉ passes, each combining
every element with the one ``2^k`` places before it. NaN propagates as in ``ufunc.accumulate``.
"""

from __future__ import annotations

from typing import Any

from .._backend import namespace

__all__ = ["running_max", "running_min"]


def running_max(x: Any, *, reverse: bool = False) -> Any:
    """``max(x[..., :i + 1])`` at every ``i`` (``max(x[..., i:])`` with ``reverse=True``).

    Parameters
    ----------
    x : array of shape (..., n)

    Returns
    -------
    array of shape (..., n), a new array on ``x``'s device
    """
    return _scan(x, namespace(x).maximum, reverse)


def running_min(x: Any, *, reverse: bool = False) -> Any:
    """``min(x[..., :i + 1])`` at every ``i`` (``min(x[..., i:])`` with ``reverse=True``)."""
    return _scan(x, namespace(x).minimum, reverse)


def _scan(x: Any, combine: Any, reverse: bool) -> Any:
    xp = namespace(x)
    out = xp.flip(x, axis=-1).copy() if reverse else x.copy()
    n = out.shape[-1]
    step = 1
    while step < n:
        # the right side is evaluated into a new array before the assignment: no overlap
        out[..., step:] = combine(out[..., step:], out[..., :-step])
        step *= 2
    return xp.flip(out, axis=-1) if reverse else out
