"""Cumulative incidence with competing risks and Gray's test (R's cmprsk: its Fortran
``cinc`` and ``crst``), compiled: one pass over the distinct times of samples sorted by time.

The cumulative incidence of a cause jumps at each of its event times t by ``S(t−) d₁ / n``
(S the Kaplan–Meier curve of any event, d₁ the cause's events, n at risk). Its variance
is Gray's (1988) delta-method estimate. Gray's test compares a cause's cumulative incidence
between groups by a score built on the subdistribution hazards, with ``(1 − F(t−))^ρ``
weights.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["cumulative_incidence_steps", "gray_scores"]


@njit(nogil=True, cache=True)
def cumulative_incidence_steps(  # type: ignore[no-untyped-def]
    time, failed, cause
):
    """One group's cumulative incidence of one cause, as cmprsk's ``cinc``.

    Parameters
    ----------
    time : ndarray of shape (n,)
        Sorted ascending.
    failed : ndarray of shape (n,)
        1 where the sample had an event of any cause.
    cause : ndarray of shape (n,)
        1 where that event was of the cause.

    Returns
    -------
    times, estimate, variance : ndarray of shape (n_jumps,)
        At each time the cause has events: the cumulative incidence just after it, and its
        variance.
    """
    n = time.size
    out_time = np.empty(n)
    estimate = np.empty(n)
    variance = np.empty(n)
    jumps = 0
    survival = 1.0  # S(t−) of any event
    current = 0.0
    v1 = 0.0
    v2 = 0.0
    v3 = 0.0
    at_risk = float(n)
    start = 0
    while start < n:
        stop = start
        while stop < n and time[stop] == time[start]:
            stop += 1
        d1 = 0.0
        d2 = 0.0
        for i in range(start, stop):
            d1 += cause[i]
            d2 += failed[i] - cause[i]
        if d1 + d2 > 0:
            after = survival * (at_risk - d1 - d2) / at_risk
            if d1 > 0:
                current += survival * d1 / at_risk
            if d2 > 0 and after > 0:
                tie = 1.0 if d2 <= 1 else 1.0 - (d2 - 1.0) / (at_risk - 1.0)
                t6 = survival * survival * tie * d2 / (at_risk * at_risk)
                t3 = 1.0 / after
                t4 = current / after
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
            if d1 > 0:
                tie = 1.0 if d1 <= 1 else 1.0 - (d1 - 1.0) / (at_risk - 1.0)
                t6 = survival * survival * tie * d1 / (at_risk * at_risk)
                t3 = 1.0 / after if after > 0 else 0.0
                t4 = 1.0 + t3 * current
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
                out_time[jumps] = time[start]
                estimate[jumps] = current
                variance[jumps] = v1 + current * current * v3 - 2.0 * current * v2
                jumps += 1
            survival = after
        at_risk = float(n - stop)
        start = stop
    return out_time[:jumps], estimate[:jumps], variance[:jumps]


@njit(nogil=True, cache=True)
def gray_scores(  # type: ignore[no-untyped-def]
    time, status, group, n_groups, rho
):
    """Gray's test of one cause in one stratum, as cmprsk's ``crst``.

    Parameters
    ----------
    time : ndarray of shape (n,)
        Sorted ascending.
    status : ndarray of int of shape (n,)
        0 censored, 1 the cause, 2 another cause.
    group : ndarray of int of shape (n,)
        0 … n_groups − 1.
    n_groups : int
    rho : float

    Returns
    -------
    score : ndarray of shape (n_groups − 1,)
    variance : ndarray of shape (n_groups − 1, n_groups − 1)
    """
    n = time.size
    ng = n_groups
    ng1 = ng - 1
    at_risk = np.zeros(ng)
    for i in range(n):
        at_risk[group[i]] += 1.0
    score = np.zeros(ng1)
    v = np.zeros((ng1, ng1))
    f1m = np.zeros(ng)  # each group's cumulative incidence, left- and right-continuous
    f1 = np.zeros(ng)
    skmm = np.ones(ng)  # each group's Kaplan–Meier curve of any event, likewise
    skm = np.ones(ng)
    v3 = np.zeros(ng)
    v2 = np.zeros((ng1, ng))
    c = np.zeros((ng, ng))
    a = np.zeros((ng, ng))
    d = np.zeros((3, ng))
    fm = 0.0
    f = 0.0
    start = 0
    while start < n:
        stop = start
        while stop < n and time[stop] == time[start]:
            stop += 1
        d[:, :] = 0.0
        for i in range(start, stop):
            d[status[i], group[i]] += 1.0
        nd1 = d[1].sum()
        nd2 = d[2].sum()
        if nd1 > 0 or nd2 > 0:
            tr = 0.0
            tq = 0.0
            for i in range(ng):
                if at_risk[i] <= 0:
                    continue
                td = d[1, i] + d[2, i]
                skm[i] = skmm[i] * (at_risk[i] - td) / at_risk[i]
                f1[i] = f1m[i] + skmm[i] * d[1, i] / at_risk[i]
                tr += at_risk[i] / skmm[i]
                tq += at_risk[i] * (1.0 - f1m[i]) / skmm[i]
            f = fm + nd1 / tr
            fb = (1.0 - fm) ** rho
            for i in range(ng):
                for j in range(i, ng):
                    a[i, j] = 0.0
                if at_risk[i] <= 0:
                    continue
                t1 = at_risk[i] / skmm[i]
                a[i, i] = fb * t1 * (1.0 - t1 / tr)
                if a[i, i] != 0:
                    c[i, i] += a[i, i] * nd1 / (tr * (1.0 - fm))
                for j in range(i + 1, ng):
                    if at_risk[j] <= 0:
                        continue
                    a[i, j] = -fb * t1 * at_risk[j] / (skmm[j] * tr)
                    if a[i, j] != 0:
                        c[i, j] += a[i, j] * nd1 / (tr * (1.0 - fm))
            for i in range(1, ng):
                for j in range(i):
                    a[i, j] = a[j, i]
                    c[i, j] = c[j, i]
            for i in range(ng1):
                if at_risk[i] > 0:
                    score[i] += fb * (d[1, i] - nd1 * at_risk[i] * (1.0 - f1m[i]) / (skmm[i] * tq))
            if nd1 > 0:
                for k in range(ng):
                    if at_risk[k] <= 0:
                        continue
                    t4 = 1.0 - (1.0 - f) / skm[k] if skm[k] > 0 else 1.0
                    t5 = 1.0 - (nd1 - 1.0) / (tr * skmm[k] - 1.0) if nd1 > 1 else 1.0
                    t3 = t5 * skmm[k] * nd1 / (tr * at_risk[k])
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = a[i, k] - t4 * c[i, k]
                        v2[i, k] += t1 * t4 * t3
                        for j in range(i + 1):
                            v[i, j] += t1 * (a[j, k] - t4 * c[j, k]) * t3
            if nd2 > 0:
                for k in range(ng):
                    if skm[k] <= 0 or d[2, k] <= 0:
                        continue
                    t4 = (1.0 - f) / skm[k]
                    t5 = 1.0 - (d[2, k] - 1.0) / (at_risk[k] - 1.0) if d[2, k] > 1 else 1.0
                    t3 = t5 * skmm[k] * skmm[k] * d[2, k] / (at_risk[k] * at_risk[k])
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = t4 * c[i, k]
                        v2[i, k] -= t1 * t4 * t3
                        for j in range(i + 1):
                            v[i, j] += t1 * t4 * c[j, k] * t3
        if stop >= n:
            break
        for i in range(start, stop):
            at_risk[group[i]] -= 1.0
        fm = f
        for i in range(ng):
            f1m[i] = f1[i]
            skmm[i] = skm[i]
        start = stop
    for i in range(ng1):
        for j in range(i + 1):
            for k in range(ng):
                v[i, j] += c[i, k] * c[j, k] * v3[k] + c[i, k] * v2[j, k] + c[j, k] * v2[i, k]
            v[j, i] = v[i, j]
    return score, v
