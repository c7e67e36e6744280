"""p-values on the device, in float64, without underflow where SciPy gives a non-zero p.

CuPy has no Student-t survival function, so both distributions go through the regularized
incomplete beta function, which CuPy and SciPy both provide and which stays accurate in the far
tail (it computes the small tail directly, never as 1 - something)::

    two-sided t:  p = I_{df / (df + t²)}(df / 2, 1 / 2)
    F upper tail: p = I_{d2 / (d2 + d1 F)}(d2 / 2, d1 / 2)
    two-sided z:  p = erfc(z / √2) for z ≥ 0 (callers clip at 1)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import namespace, special

__all__ = ["f_sf", "normal_two_sided_upper", "t_two_sided"]


def t_two_sided(t: Any, df: Any) -> Any:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom (arrays broadcast).

    NaN where ``t`` or ``df`` is NaN or ``df <= 0``.
    """
    xp = namespace(t)
    t = xp.asarray(t, dtype=xp.float64)
    df = xp.asarray(df, dtype=xp.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = df / (df + t * t)
        p = special(xp).betainc(df / 2.0, 0.5, x)
    return xp.where(df > 0, p, xp.nan)


def f_sf(f: Any, dfn: Any, dfd: Any) -> Any:
    """Upper-tail p-value of the F distribution (arrays broadcast); NaN for NaN input."""
    xp = namespace(f)
    f = xp.asarray(f, dtype=xp.float64)
    dfn = xp.asarray(dfn, dtype=xp.float64)
    dfd = xp.asarray(dfd, dtype=xp.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = dfd / (dfd + dfn * f)
        p = special(xp).betainc(dfd / 2.0, dfn / 2.0, x)
    return xp.where((dfn > 0) & (dfd > 0), p, xp.nan)


def normal_two_sided_upper(z: Any) -> Any:
    """``2 · P(Z > z) = erfc(z / √2)``, not folded: above 1 for negative z (callers clip)."""
    xp = namespace(z)
    return special(xp).erfc(xp.asarray(z, dtype=xp.float64) / np.sqrt(2.0))
