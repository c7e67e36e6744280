"""R's ``optimize``: Brent's minimisation on an interval without derivatives (R's
``Brent_fmin``, a translation of Forsythe, Malcolm and Moler's ``fmin``), step for step so
that a result that depends on where it stops (edgeR's common dispersion) equals R's."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["brent_minimize"]


def brent_minimize(
    function: Callable[[float], float], lower: float, upper: float, tol: float
) -> float:
    """The abscissa of a minimum of ``function`` on ``[lower, upper]`` to ``tol`` (R's
    ``optimize(f, c(lower, upper), tol = tol)$minimum``; for R's ``maximum = TRUE`` pass the
    negated function). A non-finite value counts as the largest double, as in R."""

    def f(x: float) -> float:
        value = function(x)
        return value if math.isfinite(value) else 1.7976931348623157e308

    c = (3.0 - math.sqrt(5.0)) * 0.5  # the squared inverse of the golden ratio
    eps = math.sqrt(2.220446049250313e-16)
    a, b = lower, upper
    v = a + c * (b - a)
    w = x = v
    d = e = 0.0
    fx = f(x)
    fv = fw = fx
    tol3 = tol / 3.0
    while True:
        xm = (a + b) * 0.5
        tol1 = eps * abs(x) + tol3
        t2 = tol1 * 2.0
        if abs(x - xm) <= t2 - (b - a) * 0.5:  # the stopping criterion
            return x
        p = q = r = 0.0
        if abs(e) > tol1:  # fit a parabola
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            else:
                q = -q
            r = e
            e = d
        if abs(p) >= abs(q * 0.5 * r) or p <= q * (a - x) or p >= q * (b - x):
            e = b - x if x < xm else a - x  # a golden-section step
            d = c * e
        else:  # a parabolic-interpolation step
            d = p / q
            u = x + d
            if u - a < t2 or b - u < t2:  # not too close to the ends
                d = tol1
                if x >= xm:
                    d = -d
        if abs(d) >= tol1:  # not too close to x
            u = x + d
        elif d > 0.0:
            u = x + tol1
        else:
            u = x - tol1
        fu = f(u)
        if fu <= fx:
            if u < x:
                b = x
            else:
                a = x
            v, w, x = w, x, u
            fv, fw, fx = fw, fx, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv = w, fw
                w, fw = u, fu
            elif fu <= fv or v in (x, w):
                v, fv = u, fu
