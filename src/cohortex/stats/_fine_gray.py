"""The Fine–Gray model of a cause's subdistribution hazard (R's ``cmprsk::crr``), host code.

With the samples sorted by time, a type-1 failure at t has in its risk set everyone still
event-free at t and everyone who failed of another cause before t, the latter weighted by
``G(t−) / G(tᵢ−)`` (G the Kaplan–Meier curve of the censoring in the sample's censoring
group). Both parts are running sums, so the sums over every risk set take O(n p²). The
Newton iterations, the line search and the convergence test are crr's; the variance is its
sandwich ``H⁻¹ (Σ (ηᵢ + ψᵢ)(ηᵢ + ψᵢ)ᵀ) H⁻¹`` (crrvv: ηᵢ the score's terms, ψᵢ the censoring
curve's estimation), with the running sums in place of crrvv's nested loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FineGrayData", "FineGrayFit", "fine_gray_fit"]

_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class FineGrayData:
    """Samples sorted by time, with what every risk set needs.

    Attributes
    ----------
    x : (n, p) terms; time : (n,); status : (n,) 0 censored, 1 the cause, 2 another cause;
    group : (n,) censoring group codes; weight : (n_groups, n) each censoring group's
    Kaplan–Meier curve just before each sample's time (crr's ``uuu``).
    """

    x: np.ndarray
    time: np.ndarray
    status: np.ndarray
    group: np.ndarray
    weight: np.ndarray

    @classmethod
    def build(
        cls, x: np.ndarray, time: np.ndarray, status: np.ndarray, group: np.ndarray
    ) -> FineGrayData:
        order = np.argsort(time, kind="stable")
        x, time, status, group = x[order], time[order], status[order], group[order]
        n_groups = int(group.max()) + 1
        weight = np.empty((n_groups, time.size))
        for g in range(n_groups):
            weight[g] = _censoring_before(time[group == g], status[group == g] == 0, time)
        return cls(x, time, status, group, weight)

    @property
    def own_weight(self) -> np.ndarray:
        """Each sample's own censoring group's curve just before its time (n,)."""
        return self.weight[self.group, np.arange(self.time.size)]


def _censoring_before(time: np.ndarray, censored: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The Kaplan–Meier curve of the censoring of samples (``time``, ``censored``) just before
    each of ``at``, as crr reads it: R's ``approx(..., method = "constant")`` of the
    survfit curve at ``at (1 − 100 ε)``."""
    distinct, inverse = np.unique(time, return_inverse=True)
    lost = np.bincount(inverse, weights=censored.astype(float), minlength=distinct.size)
    leaving = np.bincount(inverse, minlength=distinct.size)
    at_risk = np.cumsum(leaving[::-1])[::-1]
    curve = np.cumprod(1.0 - lost / at_risk)
    knots = np.concatenate(
        ([min(0.0, distinct[0]) - 10 * _EPS], distinct, [distinct[-1] * (1 + 10 * _EPS)])
    )
    values = np.concatenate(([1.0], curve, [0.0]))
    index = np.searchsorted(knots, at * (1 - 100 * _EPS), side="right") - 1
    return values[np.clip(index, 0, values.size - 1)]


@dataclass(frozen=True)
class FineGrayFit:
    """crr's results: ``beta`` (p,), ``loglik`` (the log pseudo-likelihood at beta and at 0),
    ``information`` (p, p), ``covariance`` (p, p; the sandwich), ``iterations``,
    ``converged``, and the baseline's jumps at the cause's distinct times."""

    beta: np.ndarray
    loglik: float
    loglik_null: float
    information: np.ndarray
    covariance: np.ndarray
    iterations: int
    converged: bool
    jump_times: np.ndarray
    jumps: np.ndarray


def _risk_sums(
    data: FineGrayData, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At each type-1 failure (sample order, one row each): the risk set's sums S0 (f,),
    S1 (f, p), S2 (f, p, p), and the failures' indices (f,)."""
    x, time = data.x, data.time
    risk = np.exp(x @ beta)
    failures = np.flatnonzero(data.status == 1)
    first = np.searchsorted(time, time[failures], side="left")  # the tied group's first row
    outer = x[:, :, None] * x[:, None, :]

    def tail(values: np.ndarray) -> np.ndarray:  # Σ over rows ≥ each failure's first row
        sums = np.concatenate((np.cumsum(values[::-1], axis=0)[::-1], np.zeros_like(values[:1])))
        return sums[first]

    s0 = tail(risk)
    s1 = tail(risk[:, None] * x)
    s2 = tail(risk[:, None, None] * outer)
    # those who failed of another cause earlier: G(t−) / G(tᵢ−) within their censoring group
    for g in range(data.weight.shape[0]):
        other = (data.status == 2) & (data.group == g)
        if not other.any():
            continue
        scaled = np.where(other, risk / np.where(other, data.weight[g], 1.0), 0.0)

        def head(values: np.ndarray) -> np.ndarray:  # Σ over rows before each failure's first
            sums = np.concatenate((np.zeros_like(values[:1]), np.cumsum(values, axis=0)))
            return sums[first]

        at = data.weight[g, failures][:, None]
        s0 = s0 + at[:, 0] * head(scaled)
        s1 = s1 + at * head(scaled[:, None] * x)
        s2 = s2 + at[:, :, None] * head(scaled[:, None, None] * outer)
    return s0, s1, s2, failures


def _objective(data: FineGrayData, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """crrfsv: minus the log pseudo-likelihood, its gradient and Hessian."""
    s0, s1, s2, failures = _risk_sums(data, beta)
    eta = data.x[failures] @ beta
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = float(np.sum(np.log(s0)) - np.sum(eta))
        mean = s1 / s0[:, None]
        gradient = mean.sum(axis=0) - data.x[failures].sum(axis=0)
        hessian = (s2 / s0[:, None, None] - mean[:, :, None] * mean[:, None, :]).sum(axis=0)
    return loss, gradient, hessian


def fine_gray_fit(
    data: FineGrayData, max_iterations: int = 10, tolerance: float = 1e-6
) -> FineGrayFit:
    """crr's Newton–Raphson from β = 0 with its backtracking line search and convergence
    test (``max |score| · max(|β|, 1) < max(|loss|, 1) · tolerance``), then its variance."""
    p = data.x.shape[1]
    beta = np.zeros(p)
    converged = False
    iterations = 0
    for iteration in range(max_iterations + 1):
        iterations = iteration
        loss, gradient, hessian = _objective(data, beta)
        scale = max(abs(loss), 1.0) * tolerance
        if np.max(np.abs(gradient) * np.maximum(np.abs(beta), 1.0)) < scale:
            converged = True
            break
        if iteration == max_iterations:
            break
        step = -np.linalg.solve(hessian, gradient)
        new_loss = _objective(data, beta + step)[0]
        halvings = 0
        while not np.isfinite(new_loss) or new_loss > loss + 1e-4 * float(step @ gradient):
            halvings += 1
            step = step * 0.5
            new_loss = _objective(data, beta + step)[0]
            if halvings > 20:
                break
        if halvings > 20:
            break
        beta = beta + step
    loss, _, information = _objective(data, beta)
    covariance = _sandwich(data, beta, information)
    jump_times, jumps = _baseline_jumps(data, beta)
    return FineGrayFit(
        beta=beta,
        loglik=-loss,
        loglik_null=-_objective(data, np.zeros(p))[0],
        information=information,
        covariance=covariance,
        iterations=iterations,
        converged=converged,
        jump_times=jump_times,
        jumps=jumps,
    )


def _sandwich(data: FineGrayData, beta: np.ndarray, information: np.ndarray) -> np.ndarray:
    """crrvv's variance ``H⁻¹ V H⁻¹``, V the sum of each sample's ``(ηᵢ + ψᵢ)(ηᵢ + ψᵢ)ᵀ``."""
    x, time, status, group = data.x, data.time, data.status, data.group
    n, p = x.shape
    n_groups = data.weight.shape[0]
    risk = np.exp(x @ beta)
    s0, s1, _, failures = _risk_sums(data, beta)
    # ηᵢ: its dN part, and minus its share of every failure's risk set
    eta = np.zeros((n, p))
    eta[failures] += x[failures] - s1 / s0[:, None]
    inverse = 1.0 / s0  # each failure's 1/S0 and S1/S0²
    mean_term = s1 / (s0 * s0)[:, None]
    # failures at or before tᵢ (prefix over the failures sorted by time, through tᵢ's ties)
    last = np.searchsorted(time[failures], time, side="right")
    prefix0 = np.concatenate(([0.0], np.cumsum(inverse)))
    prefix1 = np.concatenate((np.zeros((1, p)), np.cumsum(mean_term, axis=0)))
    eta -= risk[:, None] * (x * prefix0[last][:, None] - prefix1[last])
    # another cause's failure i is in the risk sets of later failures j, by G(tⱼ−)/G(tᵢ−)
    own = data.own_weight
    for g in range(n_groups):
        rows = np.flatnonzero((status == 2) & (group == g))
        if rows.size == 0:
            continue
        at = data.weight[g, failures]
        suffix0 = np.concatenate((np.cumsum((at * inverse)[::-1])[::-1], [0.0]))
        suffix1 = np.concatenate(
            (np.cumsum((at[:, None] * mean_term)[::-1], axis=0)[::-1], np.zeros((1, p)))
        )
        after = last[rows]  # the failures strictly after tᵢ
        eta[rows] -= (risk[rows] / own[rows])[:, None] * (
            x[rows] * suffix0[after][:, None] - suffix1[after]
        )
    psi = _censoring_terms(data, risk, s0, s1, failures)
    total = eta + psi
    middle = total.T @ total
    bread = np.linalg.inv(information)
    return bread @ middle @ bread.T


def _censoring_terms(
    data: FineGrayData,
    risk: np.ndarray,
    s0: np.ndarray,
    s1: np.ndarray,
    failures: np.ndarray,
) -> np.ndarray:
    """crrvv's ψᵢ: the effect of estimating G on the score, from each censoring time's q(t)
    (the failures' risk-set shares of the other-cause failures before t)."""
    x, time, status, group = data.x, data.time, data.status, data.group
    p = x.shape[1]
    n_groups = data.weight.shape[0]
    # q(t) for group g = Σ_{failures j with tⱼ ≥ t} G_g(tⱼ−) [B_g(t) − S1ⱼ/S0ⱼ A_g(t)] / S0ⱼ,
    # A_g(t), B_g(t) the sums of exp(η)/G_g(tᵢ−) (and × x) of group g's other-cause failures
    # before t: suffix sums over the failures and prefix sums over the samples
    failure_time = time[failures]
    q_times = np.unique(time)
    starts = np.searchsorted(time, q_times, side="left")
    from_failure = np.searchsorted(failure_time, q_times, side="left")  # failures with t ≥
    q = np.zeros((q_times.size, n_groups, p))
    for g in range(n_groups):
        # crr sums the failures of group g only
        at = np.where(group[failures] == g, data.weight[g, failures], 0.0)
        c = np.concatenate((np.cumsum((at / s0)[::-1])[::-1], [0.0]))
        shares = at[:, None] * s1 / (s0 * s0)[:, None]
        d = np.concatenate((np.cumsum(shares[::-1], axis=0)[::-1], np.zeros((1, p))))
        other = (status == 2) & (group == g)
        scaled = np.where(other, risk / np.where(other, data.weight[g], 1.0), 0.0)
        a = np.concatenate(([0.0], np.cumsum(scaled)))[starts]
        b = np.concatenate((np.zeros((1, p)), np.cumsum(scaled[:, None] * x, axis=0)))[starts]
        q[:, g] = b * c[from_failure][:, None] - a[:, None] * d[from_failure]
    # the censoring curve's martingale: at each censoring time, the censored of group g add
    # q/Y_g and everyone of group g still at risk loses q/Y_g² for each of them (crr's ss2)
    at_risk = np.zeros((q_times.size, n_groups))
    for g in range(n_groups):
        at_risk[:, g] = np.cumsum(
            np.bincount(np.searchsorted(q_times, time[group == g]), minlength=q_times.size)[::-1]
        )[::-1]
    lost = np.zeros((q_times.size, n_groups))
    censored = status == 0
    np.add.at(lost, (np.searchsorted(q_times, time[censored]), group[censored]), 1.0)
    # crr computes q also at the last time when no one is censored there; it adds nothing
    with np.errstate(divide="ignore", invalid="ignore"):
        increment = np.where((lost > 0)[:, :, None], -q * (lost / at_risk**2)[:, :, None], 0.0)
    running = np.cumsum(increment, axis=0)  # (times, groups, p): through each time
    index = np.searchsorted(q_times, time)
    psi = running[index, group]
    censored_rows = np.flatnonzero(censored)
    psi[censored_rows] += (
        q[index[censored_rows], group[censored_rows]]
        / at_risk[index[censored_rows], group[censored_rows]][:, None]
    )
    return psi


def _baseline_jumps(data: FineGrayData, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """crrfit: the baseline cumulative subdistribution hazard's jump at each distinct time
    of the cause, d / S0 with d its failures there."""
    s0, _, _, failures = _risk_sums(data, beta)
    times, first = np.unique(data.time[failures], return_index=True)
    counts = np.diff(np.append(first, failures.size))
    return times, counts / s0[first]
