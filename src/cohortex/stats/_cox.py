"""Cox proportional-hazards models of many genes at once, on ``xp`` (R's ``coxph``, step for step).

Every gene g has its own model ``log h(t) = h0(t) + β_g x_g + γ_g·z`` over the samples where
``x_g`` is observed (the covariates z are shared). The partial likelihood's score and information
come from risk-set sums: with the samples sorted by stratum and from the latest time, the sums
over ``{j : t_j ≥ t}`` of ``w = exp(η)``, ``w v`` and ``w v vᵀ`` (``v = (x_g, z)``) are
cumulative sums within each stratum, read at the last sample of each tied time; only the rows
with an event enter the other sums. Ties follow Efron (R's default):
the r-th of d tied events sees the risk set less ``r/d`` of the tied events' sums; Breslow uses
the whole risk set d times. ``exp(η)`` is taken relative to each gene's largest η, which every
ratio and the log-likelihood cancel.

Newton–Raphson runs for all genes together, each with its own state, as ``coxfit6``: start at
the given coefficients; after each step the log-likelihood is evaluated, the gene is done when
``|1 − ll_old/ll_new| ≤ eps`` (the coefficients and information of that last evaluation are
kept), a step that lowers the log-likelihood is halved. Batched p × p solves give the steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import namespace, to_host
from .._errors import CohortexError

__all__ = [
    "CoxFit",
    "RiskSets",
    "covariance",
    "cox_newton",
    "cox_terms",
    "group_sums",
    "risk_sums",
    "score_residuals",
]


@dataclass(frozen=True)
class RiskSets:
    """The samples' order and their tied-time groups (host arrays).

    Attributes
    ----------
    order : ndarray of shape (n_samples,)
        Samples sorted by stratum, then time from the latest: a risk set is then a stratum's
        rows up to the last of a tied group, a forward cumulative sum.
    event : ndarray of shape (n_samples,), float64
        The event indicator in that order.
    strata : list of (start, stop)
        Each stratum's rows in that order.
    starts, stops : ndarray of shape (n_groups,)
        The rows of each tied (stratum, time) group that holds an event.
    max_events : ndarray of shape (n_groups,)
        Events per group (before any sample is left out for missing expression).
    event_rows : ndarray of shape (n_events,)
        The rows with an event, in order; group g's are ``event_rows[event_starts[g]:
        event_starts[g + 1]]`` (``event_starts`` of shape (n_groups + 1,)).
    """

    order: np.ndarray
    event: np.ndarray
    strata: list[tuple[int, int]]
    starts: np.ndarray
    stops: np.ndarray
    max_events: np.ndarray
    event_rows: np.ndarray
    event_starts: np.ndarray

    @property
    def tied(self) -> bool:
        """Whether any time holds more than one event."""
        return bool((self.max_events > 1).any())

    @classmethod
    def build(cls, time: np.ndarray, event: np.ndarray, strata: np.ndarray | None) -> RiskSets:
        """From per-sample times, events (0/1) and stratum codes (or None)."""
        codes = np.zeros(time.size, dtype=np.int64) if strata is None else strata
        order = np.lexsort((-time, codes))
        t, s, e = time[order], codes[order], event[order].astype(np.float64)
        new_group = np.ones(t.size, dtype=bool)
        new_group[1:] = (t[1:] != t[:-1]) | (s[1:] != s[:-1])
        group_starts = np.flatnonzero(new_group)
        group_stops = np.append(group_starts[1:], t.size)
        events = np.add.reduceat(e, group_starts) if t.size else np.zeros(0)
        with_events = events > 0
        stratum_starts = np.flatnonzero(np.append(True, s[1:] != s[:-1]))[: t.size]
        stratum_stops = np.append(stratum_starts[1:], t.size)
        return cls(
            order=order,
            event=e,
            strata=[(int(a), int(b)) for a, b in zip(stratum_starts, stratum_stops, strict=True)],
            starts=group_starts[with_events],
            stops=group_stops[with_events],
            max_events=events[with_events],
            event_rows=np.flatnonzero(e > 0),
            event_starts=np.concatenate([[0], np.cumsum(events[with_events])]).astype(np.int64),
        )


@dataclass
class CoxFit:
    """Per-gene results of :func:`cox_newton`; arrays of shape (n_genes, ...) on ``xp``.

    Attributes
    ----------
    beta : (n_genes, p)
    loglik : (n_genes,)
        At ``beta``.
    score, information : (n_genes, p) and (n_genes, p, p)
        At ``beta``.
    start_loglik, start_score, start_information
        At the starting coefficients (the score test's ingredients).
    iterations : (n_genes,)
        Newton steps taken.
    converged : (n_genes,) bool
    """

    beta: Any
    loglik: Any
    score: Any
    information: Any
    start_loglik: Any
    start_score: Any
    start_information: Any
    iterations: Any
    converged: Any


def cox_terms(
    variables: list[Any],
    valid: Any,
    beta: Any,
    risk: RiskSets,
    efron: bool,
    *,
    compiled: bool = True,
    penalty: Any = None,
    one_model: bool = False,
    case_weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> tuple[Any, Any, Any]:
    """Log partial likelihood, score and information of every gene at ``beta``; with
    ``penalty`` (p,), those of the likelihood less ``Σ penalty · β² / 2`` (a ridge: R's
    ``coxph`` with ``ridge()`` terms).

    Parameters
    ----------
    variables : list of p arrays broadcastable to (n_samples, n_genes)
        The model's variables in risk-set order (the gene's values, covariates as (n, 1)),
        0 where not ``valid``.
    valid : array of shape (n_samples, n_genes), bool
        Samples in each gene's model.
    beta : array of shape (n_genes, p)
    risk : RiskSets
    efron : bool
        Efron's ties (else Breslow's).
    compiled : bool, default True
        On the CPU, the compiled twin (:mod:`cohortex.stats._cpu.cox`): one pass instead of
        about fifteen.
    one_model : bool, default False
        One model of several variables (one "gene", every sample in it) on the CPU: its
        terms by matrix products (:func:`_one_model_terms`), for the Newton steps of
        ``fit_cox`` and the ridge's choice; the per-gene models keep the compiled kernel,
        whose rounding their convergence and monotone-likelihood checks are held to.
    case_weights, offset : ndarray of shape (n_samples,), optional
        R's case ``weights`` and ``offset()`` in risk-set order, for ``one_model`` only.

    Returns
    -------
    loglik : (n_genes,)
    score : (n_genes, p)
    information : (n_genes, p, p)
    """
    loglik, score, information = _partial_likelihood_terms(
        variables, valid, beta, risk, efron, compiled, one_model, case_weights, offset
    )
    if penalty is None:
        return loglik, score, information
    xp = namespace(valid)
    weights = xp.asarray(penalty, dtype=xp.float64)[None, :]
    loglik = loglik - 0.5 * xp.sum(weights * beta * beta, axis=1)
    score = score - weights * beta
    information = information + xp.eye(beta.shape[1])[None, :, :] * weights[:, None, :]
    return loglik, score, information


def _partial_likelihood_terms(
    variables: list[Any],
    valid: Any,
    beta: Any,
    risk: RiskSets,
    efron: bool,
    compiled: bool,
    one_model: bool = False,
    case_weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> tuple[Any, Any, Any]:
    """:func:`cox_terms` without a penalty."""
    xp = namespace(valid)
    p = len(variables)
    if one_model and xp is np and valid.shape[1] == 1 and bool(valid.all()):
        x = np.concatenate([np.broadcast_to(v, (valid.shape[0], 1)) for v in variables], axis=1)
        # x/0 is ±inf or NaN, as in the compiled kernel: a step whose exp(η) underflows in a
        # risk set gives a non-finite likelihood, which Newton–Raphson halves
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _one_model_terms(
                np.asarray(x, dtype=np.float64), beta[0], risk, efron, case_weights, offset
            )
    if case_weights is not None or offset is not None:
        raise CohortexError("Case weights and an offset are for one model on the CPU only.")
    if compiled and xp is np:
        from ._cpu.cox import cox_terms_compiled  # numba: CPU only

        shared = [np.broadcast_to(v, (valid.shape[0], 1)) for v in variables[1:]]
        return cox_terms_compiled(
            np.asarray(variables[0]),
            np.concatenate(shared, axis=1) if shared else np.zeros((valid.shape[0], 0)),
            valid,
            beta,
            risk.event,
            np.asarray([start for start, _ in risk.strata], dtype=np.int64),
            risk.stops,
            efron,
        )
    complete = bool(xp.all(valid))  # no missing value: no masking
    eta = sum(v * beta[None, :, a] for a, v in enumerate(variables))
    if complete:
        shift = xp.max(eta, axis=0)
        w = xp.exp(eta - shift[None, :])
    else:
        eta = xp.where(valid, eta, 0.0)
        shift = xp.max(xp.where(valid, eta, -np.inf), axis=0)
        shift = xp.where(xp.isfinite(shift), shift, 0.0)
        w = xp.where(valid, xp.exp(eta - shift[None, :]), 0.0)
    pairs = [(a, b) for a in range(p) for b in range(a, p)]
    weighted = [w, *(w * v for v in variables)]
    weighted += [w * variables[a] * variables[b] for a, b in pairs]
    at_risk = [risk_sums(a, risk.strata, risk.stops) for a in weighted]  # (groups, genes) each
    # the event rows only: each group's events are a run of them
    rows = xp.asarray(risk.event_rows)
    counted = valid[rows].astype(xp.float64)  # (events, genes)
    runs = (xp.asarray(risk.event_starts[:-1]), xp.asarray(risk.event_starts[1:]))
    d = group_sums(counted, *runs) if risk.tied else counted
    loglik = xp.sum(counted * (eta[rows] - shift[None, :]), axis=0)
    score = xp.stack([xp.sum(counted * v[rows], axis=0) for v in variables], axis=-1)
    information = xp.zeros((valid.shape[1], p, p))

    def add(sums: list[Any], multiplicity: Any) -> None:
        nonlocal loglik, score
        s0 = xp.where(multiplicity > 0, sums[0], 1.0)
        loglik = loglik - xp.sum(multiplicity * xp.log(s0), axis=0)
        means = [s / s0 for s in sums[1 : p + 1]]
        score = score - xp.stack([xp.sum(multiplicity * m, axis=0) for m in means], axis=-1)
        for k, (a, b) in enumerate(pairs):
            term = xp.sum(multiplicity * (sums[p + 1 + k] / s0 - means[a] * means[b]), axis=0)
            information[:, a, b] += term
            if a != b:
                information[:, b, a] += term

    if not (efron and risk.tied):  # Breslow, or Efron without ties (the same)
        add(at_risk, d)
        return loglik, score, information
    add(at_risk, (d > 0).astype(xp.float64))  # the first of each group's events: r = 0
    tied_groups = np.flatnonzero(risk.max_events > 1)
    tied_xp = xp.asarray(tied_groups)
    # the tied events' own sums, for the groups with ties
    tied = [group_sums(counted * a[rows], *runs)[tied_xp] for a in weighted]
    d_tied, at_risk_tied = d[tied_xp], [a[tied_xp] for a in at_risk]
    for r in range(1, int(risk.max_events.max())):
        # the r-th tied event (r = 1 …) sees the risk set less r / d of the tied events
        keep = np.flatnonzero(risk.max_events[tied_groups] > r)
        keep_xp = xp.asarray(keep)
        present = d_tied[keep_xp]
        active = present > r
        fraction = xp.where(active, r / xp.where(present > 0, present, 1.0), 0.0)
        sums = [s[keep_xp] - fraction * e[keep_xp] for s, e in zip(at_risk_tied, tied, strict=True)]
        add(sums, active.astype(xp.float64))
    return loglik, score, information


def _one_model_terms(
    x: np.ndarray,
    beta: np.ndarray,
    risk: RiskSets,
    efron: bool,
    case_weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cox_terms` of one model of the columns of ``x`` (n_samples × p, risk-set order,
    every sample in it) at ``beta`` (p,), with BLAS: the information's risk-set part is
    ``Xᵀ diag(v) X`` with each sample's ``v`` the sum, over the risk sets that hold it, of
    ``m w / den`` (less, for an event, its own group's Efron share ``(r/d) m w / den``), and
    the means' part ``MᵀM`` over one row per event: O(n p²) in two matrix products where
    the per-gene kernel accumulates p² running sums a sample. With case weights ``c`` (R's
    coxfit6), ``w = c exp(η)`` and each event counts ``m``: its own ``c`` (Breslow's) or its
    tied group's mean ``c`` (Efron's); ``offset`` is added to ``η``. Returns arrays with a
    leading gene axis of length 1."""
    n, p = x.shape
    # centred: the same terms exactly, with less cancellation in Xᵀ diag(v) X − MᵀM
    x = x - x.mean(axis=0) if n else x
    if risk.event_rows.size == 0:
        return np.zeros(1), np.zeros((1, p)), np.zeros((1, p, p))
    e = _EventSums.build(x, beta, risk, efron, case_weights, offset)
    rows, dead, count = risk.event_rows, e.case[risk.event_rows], e.count
    loglik = float(np.sum(dead * (e.eta[rows] - e.shift)) - np.sum(count * np.log(e.den)))
    score = (dead[:, None] * x[rows]).sum(axis=0) - (count[:, None] * e.means).sum(axis=0)
    v = e.w * e.reach(e.hazard)  # Σ m/den over the risk sets that hold each row
    v[rows] -= e.w[rows] * e.by_group(e.hazard * e.share)[e.group]
    information = (x * v[:, None]).T @ x - e.means.T @ (count[:, None] * e.means)
    return np.array([loglik]), score[None, :], information[None, :, :]


def score_residuals(
    x: np.ndarray,
    beta: np.ndarray,
    risk: RiskSets,
    efron: bool,
    case_weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """Each sample's score residual of one Cox model (R's ``residuals(fit, "score")``, not
    multiplied by its case weight), in risk-set order: ``δ_i (x_i − x̄(t_i)) − exp(η_i)
    Σ_{t ≤ t_i} (x_i − x̄(t)) dΛ(t)``, its terms summing to the score. Under Efron's ties a
    tied event's own term is averaged over the group's d steps, in each of which it is at
    risk with weight ``1 − r/d`` (R's coxscore2).

    Parameters
    ----------
    x : ndarray of shape (n_samples, p)
        The terms in risk-set order.
    beta : ndarray of shape (p,)
    risk : RiskSets
    efron : bool
    case_weights, offset : ndarray of shape (n_samples,), optional
        In risk-set order.

    Returns
    -------
    ndarray of shape (n_samples, p)
    """
    n, p = x.shape
    if risk.event_rows.size == 0:
        return np.zeros((n, p))
    e = _EventSums.build(x, beta, risk, efron, case_weights, offset)
    rows = risk.event_rows
    level = np.exp(e.eta - e.shift)  # exp(η) on the scale of the sums: × dΛ is invariant
    cumulative = e.reach(e.hazard)  # Λ(t_i) and Σ x̄ dΛ, over the steps that hold i
    mean_hazard = e.reach(e.hazard[:, None] * e.means)
    residual = -level[:, None] * (x * cumulative[:, None] - mean_hazard)
    # an event's own steps: x − the mean of its group's x̄, and under Efron the part of
    # each step's hazard it was not at risk for, r/d, given back
    counts = np.diff(risk.event_starts)
    average = e.by_group(e.means) / counts[:, None]
    given = e.by_group(e.hazard * e.share)[e.group]
    given_means = e.by_group((e.hazard * e.share)[:, None] * e.means)[e.group]
    residual[rows] += x[rows] - average[e.group]
    residual[rows] += level[rows, None] * (x[rows] * given[:, None] - given_means)
    return residual


@dataclass(frozen=True)
class _EventSums:
    """One Cox model's risk-set sums at each event step, in risk-set order: an event's step
    is its group's r-th (Efron: its risk set less r/d of the group's events' own sums;
    Breslow: r = 0)."""

    eta: np.ndarray  # (n,) the linear predictor, offset included
    shift: float  # max η: exp(η − shift) keeps the sums finite
    case: np.ndarray  # (n,) case weights
    w: np.ndarray  # (n,) c exp(η − shift)
    group: np.ndarray  # (events,) each event's group
    share: np.ndarray  # (events,) r/d
    den: np.ndarray  # (events,) the step's risk sum
    means: np.ndarray  # (events, p) the step's risk-weighted mean of x
    count: np.ndarray  # (events,) the step's weight m: the event's c, or its group's mean c
    last: np.ndarray  # (groups,) each group's last row: its risk set ends there
    firsts: np.ndarray  # (groups,) each group's first event
    strata: list[tuple[int, int]]

    @property
    def hazard(self) -> np.ndarray:
        """Each step's hazard increment ``m / den`` (events,)."""
        return self.count / self.den

    @classmethod
    def build(
        cls,
        x: np.ndarray,
        beta: np.ndarray,
        risk: RiskSets,
        efron: bool,
        case_weights: np.ndarray | None,
        offset: np.ndarray | None,
    ) -> _EventSums:
        n, p = x.shape
        eta = x @ beta if offset is None else x @ beta + offset
        shift = float(eta.max())
        case = np.ones(n) if case_weights is None else case_weights
        w = case * np.exp(eta - shift)
        rows = risk.event_rows
        weighted = w[:, None] * x
        running0, running1 = np.empty(n), np.empty((n, p))
        for start, stop in risk.strata:  # a risk set: its stratum's rows up to its group's last
            running0[start:stop] = np.cumsum(w[start:stop])
            running1[start:stop] = np.cumsum(weighted[start:stop], axis=0)
        last = risk.stops - 1
        counts = np.diff(risk.event_starts)
        group = np.repeat(np.arange(last.size), counts)
        firsts = risk.event_starts[:-1]
        tied0 = np.add.reduceat(w[rows], firsts)
        tied1 = np.add.reduceat(weighted[rows], firsts, axis=0)
        share = (
            (np.arange(rows.size) - firsts[group]) / counts[group] if efron else np.zeros(rows.size)
        )
        den = running0[last][group] - share * tied0[group]
        means = (running1[last][group] - share[:, None] * tied1[group]) / den[:, None]
        dead = case[rows]
        count = np.repeat(np.add.reduceat(dead, firsts) / counts, counts) if efron else dead
        return cls(eta, shift, case, w, group, share, den, means, count, last, firsts, risk.strata)

    def by_group(self, values: np.ndarray) -> np.ndarray:
        """Per-event ``values`` (events, …) summed by group (groups, …): each group's
        events are a run of them."""
        return np.add.reduceat(values, self.firsts, axis=0)

    def reach(self, values: np.ndarray) -> np.ndarray:
        """Per-event ``values`` (events, …) summed, for each row, over the steps whose risk
        sets hold it (its stratum's groups at or before its time) (n, …)."""
        grouped = self.by_group(values)
        n = self.eta.size
        out = np.zeros((n, *values.shape[1:]))
        for start, stop in self.strata:
            inside = np.flatnonzero((self.last >= start) & (self.last < stop))
            tail = np.cumsum(grouped[inside][::-1], axis=0)[::-1]
            after = np.concatenate((tail, np.zeros((1, *values.shape[1:]))), axis=0)
            out[start:stop] = after[np.searchsorted(self.last[inside], np.arange(start, stop))]
        return out


def cox_newton(
    variables: list[Any],
    valid: Any,
    start: Any,
    risk: RiskSets,
    *,
    efron: bool = True,
    max_iterations: int = 20,
    eps: float = 1e-9,
    penalty: Any = None,
    one_model: bool = False,
    case_weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> CoxFit:
    """Newton–Raphson for every gene's Cox model, as R's ``coxph`` (see the module notes).

    Parameters
    ----------
    variables, valid, risk, efron, penalty, one_model, case_weights, offset
        As for :func:`cox_terms` (with a penalty the fit's log-likelihood, score and
        information are the penalised ones).
    start : array of shape (n_genes, p)
        Starting coefficients.
    max_iterations : int, default 20
        R's ``iter.max``.
    eps : float, default 1e-9
        R's ``eps``: the relative change of the log-likelihood that ends the iterations.
    """
    if not variables:
        raise CohortexError("A Cox model needs at least one variable.")
    xp = namespace(valid)
    n_genes = start.shape[0]
    beta = xp.asarray(start, dtype=xp.float64)
    extra: dict[str, Any] = {"one_model": one_model, "case_weights": case_weights, "offset": offset}
    loglik, score, information = cox_terms(
        variables, valid, beta, risk, efron, penalty=penalty, **extra
    )
    fit = CoxFit(
        beta=beta,
        loglik=loglik,
        score=score,
        information=information,
        start_loglik=loglik,
        start_score=score,
        start_information=information,
        iterations=xp.zeros(n_genes, dtype=xp.int64),
        converged=xp.zeros(n_genes, dtype=bool),
    )
    if max_iterations == 0:
        return fit
    step = _solve(information, score)
    candidate = beta + step
    halving = xp.zeros(n_genes, dtype=bool)
    stuck = ~_usable(information)  # a constant variable or no event: nothing to fit
    for iteration in range(1, max_iterations + 1):
        running = ~fit.converged & ~stuck
        new_loglik, new_score, new_information = _running_terms(
            running, fit, variables, valid, candidate, risk, efron, penalty, extra
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            done = running & ~halving & (xp.abs(1.0 - fit.loglik / new_loglik) <= eps)
        # a step so long that exp(η) underflows in a risk set counts as worse: halve it
        improved = running & ~done & xp.isfinite(new_loglik) & (new_loglik >= fit.loglik)
        worse = running & ~done & ~improved
        accept = done | improved
        fit.beta = xp.where(accept[:, None], candidate, fit.beta)
        fit.loglik = xp.where(accept, new_loglik, fit.loglik)
        fit.score = xp.where(accept[:, None], new_score, fit.score)
        fit.information = xp.where(accept[:, None, None], new_information, fit.information)
        fit.iterations = xp.where(running, iteration, fit.iterations)
        fit.converged = fit.converged | done
        if bool(xp.all(fit.converged | stuck)) or iteration == max_iterations:
            break
        # a lower likelihood: halve the step towards the last accepted coefficients
        halving = worse
        next_step = _solve(fit.information, fit.score)
        candidate = xp.where(
            worse[:, None],
            (candidate + fit.beta) / 2.0,
            xp.where(improved[:, None], fit.beta + next_step, candidate),
        )
    return fit


def _running_terms(
    running: Any,
    fit: CoxFit,
    variables: list[Any],
    valid: Any,
    beta: Any,
    risk: RiskSets,
    efron: bool,
    penalty: Any,
    extra: dict[str, Any],
) -> tuple[Any, Any, Any]:
    """:func:`cox_terms` at ``beta`` of the genes still ``running``; the others keep ``fit``'s
    (no step of theirs is accepted). Most genes converge in two steps and a few take a third:
    once fewer than half run, only theirs are computed (one model, ``extra``'s
    ``one_model``, always runs whole)."""
    xp = namespace(valid)
    n_genes = valid.shape[1]
    chosen = np.flatnonzero(np.asarray(to_host(running)))
    if 2 * chosen.size > n_genes:
        return cox_terms(variables, valid, beta, risk, efron, penalty=penalty, **extra)
    loglik, score, information = fit.loglik.copy(), fit.score.copy(), fit.information.copy()
    if chosen.size:
        rows = xp.asarray(chosen)
        own = [v[:, rows] if v.shape[1] == n_genes else v for v in variables]  # not covariates
        loglik[rows], score[rows], information[rows] = cox_terms(
            own, valid[:, rows], beta[rows], risk, efron, penalty=penalty
        )
    return loglik, score, information


def covariance(information: Any) -> Any:
    """Inverse information per gene, NaN where it is singular. Shape (n_genes, p, p)."""
    xp = namespace(information)
    p = information.shape[-1]
    usable = _usable(information)
    eye = xp.broadcast_to(xp.eye(p), information.shape)
    inverse = xp.linalg.inv(xp.where(usable[:, None, None], information, eye))
    return xp.where(usable[:, None, None], inverse, xp.nan)


def _usable(information: Any) -> Any:
    """Genes whose information is finite with a positive diagonal (variables that vary; the
    caller makes a constant variable exactly 0)."""
    xp = namespace(information)
    diagonal = xp.diagonal(information, axis1=-2, axis2=-1)
    finite = xp.all(xp.isfinite(information.reshape(information.shape[0], -1)), axis=1)
    return finite & xp.all(diagonal > 0, axis=1)


def _solve(information: Any, score: Any) -> Any:
    """Newton steps I⁻¹U per gene; 0 where the information is singular."""
    xp = namespace(information)
    p = information.shape[-1]
    usable = _usable(information)
    eye = xp.broadcast_to(xp.eye(p), information.shape)
    step = xp.linalg.solve(xp.where(usable[:, None, None], information, eye), score[:, :, None])[
        :, :, 0
    ]
    return xp.where(usable[:, None], step, 0.0)


def risk_sums(values: Any, strata: list[tuple[int, int]], stops: np.ndarray) -> Any:
    """Sums over the risk sets of the groups ending before ``stops`` (host, ascending).

    With the rows sorted from the latest time, a group's risk set is its stratum's rows up to
    its last row: a forward cumulative sum within the stratum, read at ``stops - 1``.
    Returns an array of shape (len(stops), n_genes).
    """
    xp = namespace(values)
    parts = []
    for start, stop in strata:
        inside = stops[(stops > start) & (stops <= stop)]
        if inside.size:
            running = xp.cumsum(values[start:stop], axis=0)
            parts.append(running[xp.asarray(inside - 1 - start)])
    if not parts:
        return xp.zeros((0, values.shape[1]))
    return parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=0)


def group_sums(values: Any, starts: Any, stops: Any) -> Any:
    """Sums of the rows of each group (contiguous rows starts..stops-1), shape (groups, genes)."""
    xp = namespace(values)
    cumulative = xp.concatenate([xp.zeros((1, values.shape[1])), xp.cumsum(values, axis=0)], axis=0)
    return cumulative[stops] - cumulative[starts]
