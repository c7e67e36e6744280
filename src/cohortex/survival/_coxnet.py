"""The elastic-net Cox path of many genes: ``coxnet()``, as R's ``glmnet(family = "cox")`` and
``cv.glmnet``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._backend import to_host
from .._cohort import CohortLike, as_cohort_matrix
from .._errors import CohortexError, CohortexWarning
from .._progress import progress_bar
from ..stats._cox import RiskSets
from ..stats._cpu.cholesky import CholeskyFactor
from ..stats._cpu.coxnet import (
    breslow_terms,
    gene_gradients,
    implicit_descent,
    implicit_diagonal,
    penalised_objective,
    quadratic_descent,
    risk_set_sums,
)
from ._cox import covariate_model, covariates_like
from ._fit_cox import BaselineHazard, survival_curves
from ._outcome import Outcome, sample_numbers, strata_of

__all__ = [
    "CoxnetModel",
    "CoxnetPath",
    "choose_lambda",
    "coxnet",
    "coxnet_path",
    "cross_validated_deviance",
    "fold_labels",
]

_MIN_STEPS = 5  # glmnet.control()'s mnlam: the path's early stop looks this far back
_MAX_DEV_RATIO = 0.99  # devmax · 0.99 / 0.999 of glmnet's Cox path
_MIN_DEV_GAIN = 1e-3  # fdev · 100 of glmnet's Cox path
_CYCLES = 50  # coordinate-descent cycles before the feature-sign search takes over
_EXPLICIT_GENES = 4_000  # above, the information (genes², 128 MB here) is never formed
_IMPLICIT_CYCLES = 2_000
_CHORD_RATE = 0.1  # a chord step that shrinks the move less than this: the information anew
_SMALL = 1 << 20  # genes × samples below which the gradients are one matrix product


@dataclass(frozen=True)
class CoxnetPath:
    """An elastic-net Cox path over penalties (:func:`coxnet_path`).

    Attributes
    ----------
    lambdas : ndarray of shape (n_lambdas,)
        The penalties, decreasing.
    coefficients : ndarray of shape (n_lambdas, n_genes)
        Each penalty's coefficients on the genes' own scale.
    dev_ratio : ndarray of shape (n_lambdas,)
        The share of the null deviance explained (glmnet's ``dev.ratio``).
    null_deviance : float
        ``2 (l_saturated − l(0))`` (glmnet's ``nulldev``).
    iterations : ndarray of shape (n_lambdas,)
        Newton steps (quadratic approximations) each penalty took.
    unbounded : ndarray of int
        The unpenalised variables whose coefficient may be infinite (R's coxph test: the
        Newton step left at their own fit is not negligible; e.g. a level without events).
        Each is held along the path at the value their own fit reached, where moving it
        further changes the likelihood only within rounding.
    """

    lambdas: np.ndarray
    coefficients: np.ndarray
    dev_ratio: np.ndarray
    null_deviance: float
    iterations: np.ndarray
    unbounded: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class CoxnetModel:
    """A fitted elastic-net Cox path of a cohort's genes (:func:`coxnet`).

    Attributes
    ----------
    path : pandas.DataFrame
        One row per penalty, decreasing: ``lambda``, ``dev_ratio``, ``nonzero`` (genes with
        a coefficient) and, cross-validated, ``cv_deviance`` (cv.glmnet's ``cvm``: the
        held-out partial-likelihood deviance per event) with ``cv_se`` (``cvsd``).
    coefficients : ndarray of shape (n_lambdas, n_genes)
        Each penalty's coefficients (log hazard ratio per unit of expression).
    genes : ndarray of str
    lambda_min, lambda_1se : float
        The penalty of the smallest cross-validated deviance, and the largest within one
        standard error of it (NaN without cross-validation).
    null_deviance : float
    alpha : float
    n_samples, n_events : int
    folds : ndarray of int or None
        Each sample's cross-validation fold.
    covariates : tuple of str
        The unpenalised covariates' columns (``coxnet(covariates=...)``; empty without).
    covariate_coefficients : ndarray of shape (n_lambdas, n_covariates)
        Their coefficients at each penalty.
    chosen : {"lambda_min", "lambda_1se"}
        The penalty that :meth:`coef`, :meth:`covariate_coef` and :meth:`predict` use when
        none is given.
    training_predictors : ndarray of shape (n_lambdas, n_samples)
        The linear predictor of each sample fitted at each penalty, for the baseline hazard
        of :meth:`predict_survival`.
    training_outcome : Outcome
        The samples' times, events and strata.
    training_weights : ndarray of shape (n_samples,) or None
        Their observation weights (``coxnet(weights=...)``).
    strata : str or None
        The sample variable of the strata when the fit was given one by name.
    offset : str, bool or None
        The fit's offset: its sample variable's name, True when given as values (then
        :meth:`predict` needs them), None without.
    """

    path: pd.DataFrame
    coefficients: np.ndarray = field(repr=False)
    genes: np.ndarray = field(repr=False)
    lambda_min: float
    lambda_1se: float
    null_deviance: float
    alpha: float
    n_samples: int
    n_events: int
    folds: np.ndarray | None = field(repr=False)
    covariates: tuple[str, ...] = ()
    covariate_coefficients: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    covariate_spec: Any = field(default=None, repr=False, compare=False)
    chosen: str = "lambda_min"
    training_predictors: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 0)), repr=False, compare=False
    )
    training_outcome: Outcome | None = field(default=None, repr=False, compare=False)
    training_weights: np.ndarray | None = field(default=None, repr=False, compare=False)
    strata: str | None = None
    offset: str | bool | None = None

    def coef(self, penalty: str | float | None = None) -> pd.Series:
        """The genes with a coefficient at ``penalty`` ("lambda_min", "lambda_1se" or a
        value; between two of the path's penalties, interpolated as glmnet's ``coef``;
        default :attr:`chosen`)."""
        beta = self._beta(penalty)
        keep = np.flatnonzero(beta)
        return pd.Series(beta[keep], index=pd.Index(self.genes[keep], name="gene"))

    def covariate_coef(self, penalty: str | float | None = None) -> pd.Series:
        """The unpenalised covariates' coefficients at ``penalty`` (as :meth:`coef`)."""
        values = interpolate(
            self.path["lambda"].to_numpy(), self.covariate_coefficients, self._penalty(penalty)
        )
        return pd.Series(values, index=pd.Index(list(self.covariates), name="covariate"))

    def predict(
        self,
        cohort: CohortLike,
        penalty: str | float | None = None,
        *,
        offset: str | Any | None = None,
    ) -> pd.Series:
        """The linear predictor ``x · β`` (plus the covariates' ``z · γ`` and the offset) of
        every sample of ``cohort`` at ``penalty`` (glmnet's ``predict(type = "link",
        newoffset)``): higher, a higher hazard. Genes are found by id, covariates encoded as
        in the fit (a level it never saw is refused); a sample missing a gene with a
        coefficient gets NaN. A model fitted with an offset takes ``offset`` (a sample
        variable or values; by default the fit's variable)."""
        beta = self._beta(penalty)
        keep = np.flatnonzero(beta)
        data = as_cohort_matrix(cohort)
        where = {str(g): i for i, g in enumerate(data.gene_ids)}
        missing = [str(g) for g in self.genes[keep] if str(g) not in where]
        if missing:
            raise CohortexError(
                f"{len(missing)} of the model's {keep.size} genes are not in the cohort (the "
                f"first: {missing[0]!r})."
            )
        columns = data.matrix[:, [where[str(g)] for g in self.genes[keep]]]
        values = np.asarray(to_host(getattr(columns, "compute", lambda: columns)()), np.float64)
        risk = values @ beta[keep]
        if self.covariates:
            risk += (
                covariates_like(self.covariate_spec, data.dataset)
                @ self.covariate_coef(penalty).to_numpy()
            )
        if self.offset is None:
            if offset is not None:
                raise CohortexError("The model was fitted without an offset; give none.")
        else:
            given = self.offset if offset is None else offset
            if given is True:
                raise CohortexError(
                    "The model was fitted with an offset given as values: give each sample's "
                    "(offset=...)."
                )
            risk = risk + sample_numbers(data, given, "offset", risk.size)
        return pd.Series(risk, index=data.sample_ids)

    def predict_survival(
        self,
        cohort: CohortLike,
        times: Sequence[float],
        penalty: str | float | None = None,
        *,
        strata: str | Any | None = None,
        offset: str | Any | None = None,
    ) -> pd.DataFrame:
        """Each sample's predicted probability of surviving past each of ``times`` at
        ``penalty`` (default :attr:`chosen`), as glmnet's ``survfit(fit, s, x, y, newx)``:
        ``exp(−Λ₀(t) · exp(η))`` with ``η`` the sample's linear predictor and ``Λ₀`` the
        Efron-type baseline cumulative hazard of the fitted samples' linear predictors
        (within the sample's stratum), as R's ``survfit`` of ``coxph(y ~ η)`` held at
        coefficient 1.

        Parameters
        ----------
        cohort : path, xarray.Dataset or array
        times : sequence of float
        penalty : str or float, optional
            As :meth:`predict`'s.
        strata : str or sequence, optional
            Each sample's stratum, for a model fitted within strata: by default the fit's
            strata variable (when it was given by name).
        offset : str or sequence, optional
            As :meth:`predict`'s.

        Returns
        -------
        pandas.DataFrame
            One row per (sample, time): ``sample``, ``time``, ``survival`` and
            ``cumulative_hazard``; with strata also ``stratum``. No standard errors: a
            penalised fit's coefficients have none that would be honest (glmnet gives none
            either). NaN beyond the last follow-up time of the sample's stratum.
        """
        outcome = self.training_outcome
        if outcome is None:
            raise CohortexError("This model keeps no training samples to predict survival.")
        fitted = interpolate(
            self.path["lambda"].to_numpy(), self.training_predictors, self._penalty(penalty)
        )
        centre = float(fitted.mean())  # coxph centres the predictor at its mean
        codes = np.zeros(fitted.size, np.int64) if outcome.strata is None else outcome.strata
        levels = [""] if outcome.strata is None else outcome.strata_names
        weights = self.training_weights
        baseline = {
            levels[code]: BaselineHazard.build(
                np.zeros((int(np.sum(codes == code)), 0)),
                np.exp(fitted[codes == code] - centre),
                outcome.time[codes == code],
                outcome.event[codes == code],
                efron=True,
                weight=None if weights is None else weights[codes == code],
            )
            for code in np.unique(codes)
        }
        data = as_cohort_matrix(cohort)
        predictor = self.predict(cohort, penalty, offset=offset).to_numpy()
        stratum = strata_of(data, strata, self.strata, levels, predictor.size)
        table = survival_curves(
            baseline,
            stratum,
            np.zeros((predictor.size, 0)),
            np.exp(predictor - centre),
            times,
            np.zeros((0, 0)),
            0.0,
            np.asarray(data.sample_ids),
        )
        return table.drop(columns=["std_err", "lower", "upper"])

    def _beta(self, penalty: str | float | None) -> np.ndarray:
        return interpolate(
            self.path["lambda"].to_numpy(), self.coefficients, self._penalty(penalty)
        )

    def _penalty(self, penalty: str | float | None) -> float:
        if penalty is None:
            penalty = self.chosen
        if isinstance(penalty, str):
            if penalty not in ("lambda_min", "lambda_1se"):
                raise CohortexError(
                    f"'penalty' must be 'lambda_min', 'lambda_1se' or a value; got {penalty!r}."
                )
            penalty = float(getattr(self, penalty))
            if not np.isfinite(penalty):
                raise CohortexError(
                    "This model was not cross-validated (folds=0): give the penalty's value."
                )
        return float(penalty)


def coxnet(
    cohort: CohortLike,
    time: str | Any,
    event: str | Any,
    *,
    genes: Sequence[str] | None = None,
    covariates: str | None = None,
    penalty_factor: Mapping[str, float] | None = None,
    alpha: float = 1.0,
    lambdas: Sequence[float] | None = None,
    n_lambdas: int = 100,
    lambda_min_ratio: float | None = None,
    standardize: bool = True,
    strata: str | Any | None = None,
    offset: str | Any | None = None,
    weights: str | Any | None = None,
    folds: int | Sequence[Any] = 10,
    seed: int = 0,
    tolerance: float = 1e-10,
    max_iterations: int = 100,
    progress: bool | None = None,
) -> CoxnetModel:
    """The lasso or elastic-net Cox model of many genes over a path of penalties, with the
    penalty chosen by cross-validation: R's ``cv.glmnet(x, y, family = "cox")``.

    At each penalty λ the coefficients minimise ``−l(β)/n + λ (α ‖β‖₁ + (1 − α)/2 ‖β‖²)``,
    ``l`` Breslow's log partial likelihood (glmnet's ties) of the genes standardised to unit
    variance (the coefficients reported on their own scale). From the smallest λ with every
    coefficient 0 down, warm-started; the genes enter by the strong rule and each solution is
    checked against every gene's gradient (the KKT conditions), so the path is the exact
    solution, not glmnet's approximate one (glmnet's default ``thresh`` leaves its gradients
    up to ~10⁻³ λ off).

    Parameters
    ----------
    cohort : path, xarray.Dataset or array
    time, event : str or sequence
        As for :func:`cox`.
    genes : sequence of str, optional
        The candidate genes (default all). Complete values are needed: a gene with a missing
        value is refused.
    covariates : str, optional
        A formula on sample variables entered unpenalised beside the genes, e.g.
        ``"~ age + grade"`` (categorical variables as R's treatment contrasts, no intercept):
        clinical variables that every model keeps, the genes chosen for what they add. As
        glmnet given these columns before the genes with ``penalty.factor`` 0; the path
        starts from their own Cox fit (Breslow's ties), its first penalty the smallest that
        keeps every gene out at that fit.
    penalty_factor : mapping of gene to float, optional
        Each gene's weight on the penalty (glmnet's ``penalty.factor``; genes not named: 1):
        0 leaves a gene unpenalised, ``inf`` keeps it out. As glmnet's, the factors of all
        variables (the covariates' 0, an excluded gene's counted as 1) are rescaled to sum
        to their number.
    alpha : float, default 1
        The lasso's share of the penalty: 1 the lasso, 0 the ridge.
    lambdas : sequence of float, optional
        The penalties (glmnet's ``lambda``); by default ``n_lambdas`` from the smallest that
        keeps every coefficient 0 down to ``lambda_min_ratio`` of it, log-spaced, stopped
        early as glmnet's once 99% of the deviance is explained or the last five penalties
        gained less than 0.1% of it.
    n_lambdas : int, default 100
    lambda_min_ratio : float, optional
        Default 0.01 with more genes than samples, else 10⁻⁴ (glmnet's).
    standardize : bool, default True
        Penalise the standardised coefficients (each gene's variance over the samples, with
        divisor n, as glmnet).
    strata : str or sequence, optional
        A sample variable whose levels get their own baseline hazard (glmnet's
        ``stratifySurv``).
    offset : str or sequence, optional
        A fixed part of each sample's linear predictor (glmnet's ``offset``), e.g. an
        established clinical risk score: the genes are fitted for what they add to it, with
        no coefficient of its own (unlike ``covariates``). A sample variable or values.
    weights : str or sequence, optional
        Observation weights (glmnet's ``weights``, positive; a sample variable or values),
        e.g. the inverse sampling fractions of a case-cohort design: each sample's term of
        the partial likelihood, its share of the risk sets and of the genes' standardisation
        weighted. The deviance is in the weights' units, as glmnet's.
    folds : int or sequence, default 10
        Cross-validation folds (0: none): a number of folds, balanced for events (shuffled with
        ``seed``), or each sample's fold label (cv.glmnet's ``foldid``). Each fold's path is
        fitted on the whole path's penalties and scored by cv.glmnet's grouped deviance:
        ``2 (l(β₋ₖ) − l₋ₖ(β₋ₖ))`` of the held-out fold, per event.
    seed : int, default 0
    tolerance : float, default 1e-10
        A penalty's fit ends when no standardised coefficient moves the linear predictor by
        more than this.
    max_iterations : int, default 100
        Newton steps per penalty.
    progress : bool or None, default None
        A progress display over the paths (the whole cohort's, then each fold's): ``None``
        a bar on a terminal and a line every half minute in a log, ``False`` none.

    Returns
    -------
    CoxnetModel
        The path, the cross-validated deviance, ``lambda_min``/``lambda_1se``; ``coef`` and
        ``predict`` at a penalty.

    Raises
    ------
    CohortexError
        For invalid options, unknown genes, missing values, or no event.

    Notes
    -----
    Near an unpenalised fit of many genes the coefficients can run to infinity (the genes
    separate the outcomes): a penalty whose fit does not converge ends the path there, with a
    warning, as glmnet's; a cross-validation fold that stops so is left out of the smaller
    penalties' deviance. The genes are held in memory (n_samples × n_genes, in the store's
    dtype); the work is on the host's cores.
    """
    if not 0.0 <= alpha <= 1.0:
        raise CohortexError(f"'alpha' must be in [0, 1]; got {alpha!r}.")
    if not 0 < tolerance < 1 or max_iterations < 1 or n_lambdas < 1:
        raise CohortexError(
            "coxnet() needs 0 < tolerance < 1, max_iterations >= 1 and n_lambdas >= 1; got "
            f"{tolerance!r}, {max_iterations!r}, {n_lambdas!r}."
        )
    data = as_cohort_matrix(cohort)
    outcome = Outcome.resolve(data.dataset, time, event, strata, data.sample_ids)
    gene_ids = np.asarray([str(g) for g in data.gene_ids])
    clinical: np.ndarray = np.zeros((outcome.event.size, 0))
    clinical_names: list[str] = []
    spec: Any = None
    if covariates is not None:
        clinical, clinical_names, spec = covariate_model(
            covariates, data.dataset, outcome.event.size
        )
    if genes is None:
        columns = np.arange(gene_ids.size)
    else:
        where = {g: i for i, g in enumerate(gene_ids)}
        wanted = [str(g) for g in ([genes] if isinstance(genes, str) else genes)]
        unknown = [g for g in wanted if g not in where]
        if unknown:
            raise CohortexError(
                f"{len(unknown)} gene(s) are not in the cohort (the first: {unknown[0]!r})."
            )
        columns = np.asarray([where[g] for g in wanted], dtype=np.int64)
    if columns.size == 0:
        raise CohortexError("coxnet() needs at least one gene.")
    values = data.matrix if columns.size == gene_ids.size else data.matrix[:, columns]
    x = np.asarray(to_host(getattr(values, "compute", lambda: values)()))
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    missing = np.isnan(x).any(axis=0)
    if missing.any():
        raise CohortexError(
            f"{int(missing.sum())} gene(s) have missing values (the first: "
            f"{gene_ids[columns][np.argmax(missing)]!r}); coxnet() needs complete values "
            "(impute them, or leave those genes out with 'genes')."
        )
    if outcome.event.sum() == 0:
        raise CohortexError("No sample has an event: there is nothing to fit.")
    factor = _penalty_factors(penalty_factor, gene_ids[columns])
    n = outcome.event.size
    fixed = None if offset is None else sample_numbers(data, offset, "offset", n)
    weighted = (
        None if weights is None else sample_numbers(data, weights, "weights", n, positive=True)
    )
    settings: dict[str, Any] = {
        "covariates": clinical if clinical_names else None,
        "offset": fixed,
        "weights": weighted,
        "penalty_factor": factor,
        "alpha": float(alpha),
        "tolerance": tolerance,
        "max_iterations": max_iterations,
    }
    given = None if lambdas is None else _checked_lambdas(lambdas)
    ratio = lambda_min_ratio
    if ratio is None:
        ratio = 0.01 if x.shape[0] < x.shape[1] else 1e-4
    if given is None and not 0 < ratio < 1:
        raise CohortexError(f"'lambda_min_ratio' must be in (0, 1); got {ratio!r}.")
    labels = fold_labels(folds, outcome.event, seed)
    paths = 1 + (0 if labels is None else np.unique(labels).size)
    with progress_bar(paths, "coxnet", enabled=progress, unit="path") as bar:
        full = coxnet_path(
            x,
            outcome.time,
            outcome.event,
            outcome.strata,
            lambdas=given,
            n_lambdas=n_lambdas,
            lambda_min_ratio=ratio,
            standardize=standardize,
            **settings,
        )
        bar.update(1)
        q = len(clinical_names)
        if full.unbounded.size:
            names = [*clinical_names, *gene_ids[columns]]
            flagged = ", ".join(repr(names[i]) for i in full.unbounded)
            warnings.warn(
                f"The coefficient of the unpenalised {flagged} may be infinite (R's coxph test; "
                "e.g. a covariate's level without events): its value is not an estimate.",
                CohortexWarning,
                stacklevel=2,
            )
        table = pd.DataFrame(
            {
                "lambda": full.lambdas,
                "dev_ratio": full.dev_ratio,
                "nonzero": (full.coefficients[:, q:] != 0).sum(axis=1),
            }
        )
        lambda_min = lambda_1se = np.nan
        if labels is not None:
            deviance, spread = cross_validated_deviance(
                x,
                outcome.time,
                outcome.event,
                outcome.strata,
                labels,
                full.lambdas,
                standardize=standardize,
                on_fold=lambda: bar.update(1),
                **settings,
            )
            table["cv_deviance"], table["cv_se"] = deviance, spread
            lambda_min, lambda_1se = choose_lambda(full.lambdas, deviance, spread)
    # the training samples' linear predictors along the path (the genes ever in it only)
    ever = np.flatnonzero((full.coefficients[:, q:] != 0).any(axis=0))
    predictors = full.coefficients[:, :q] @ clinical.T if q else np.zeros((len(table), x.shape[0]))
    if ever.size:
        predictors = predictors + full.coefficients[:, q + ever] @ x[:, ever].T.astype(np.float64)
    if fixed is not None:
        predictors = predictors + fixed[None, :]
    return CoxnetModel(
        path=table,
        coefficients=full.coefficients[:, q:],
        genes=gene_ids[columns],
        lambda_min=lambda_min,
        lambda_1se=lambda_1se,
        null_deviance=full.null_deviance,
        alpha=float(alpha),
        n_samples=int(x.shape[0]),
        n_events=int(outcome.event.sum()),
        folds=labels,
        covariates=tuple(clinical_names),
        covariate_coefficients=full.coefficients[:, :q],
        covariate_spec=spec,
        training_predictors=predictors,
        training_outcome=outcome,
        training_weights=weighted,
        strata=strata if isinstance(strata, str) else None,
        offset=offset if isinstance(offset, str) else (None if offset is None else True),
    )


def _penalty_factors(given: Mapping[str, float] | None, genes: np.ndarray) -> np.ndarray | None:
    """Each of ``genes``' penalty factor (1 where not given); None when none is given."""
    if given is None:
        return None
    named = {str(g): v for g, v in dict(given).items()}
    candidates = set(genes.tolist())
    unknown = [g for g in named if g not in candidates]
    if unknown:
        raise CohortexError(
            f"'penalty_factor' names {len(unknown)} gene(s) not among the candidates (the "
            f"first: {unknown[0]!r})."
        )
    factor = np.asarray([float(named.get(g, 1.0)) for g in genes])
    if np.isnan(factor).any() or (factor < 0).any():
        raise CohortexError("'penalty_factor' values must be >= 0 (inf: the gene is left out).")
    if not (np.isfinite(factor) & (factor > 0)).any():
        raise CohortexError("'penalty_factor' leaves no gene penalised: there is no path.")
    return factor


class _NotConverged(Exception):
    """A penalty whose fit did not converge: the path stops before it."""


@dataclass
class _Terms:
    """What :func:`breslow_terms` computes at one linear predictor."""

    loglik: float
    rate: np.ndarray
    gradient: np.ndarray
    ratio: np.ndarray
    group_second: np.ndarray


@dataclass(frozen=True)
class _Problem:
    """One cohort's variables and outcomes, prepared for the path: the variables as rows
    (n_variables × n_samples, the unpenalised covariates first, then the genes) in risk-set
    order, each one's centre, inverse scale and penalty factor."""

    x: np.ndarray
    mean: np.ndarray
    inv_scale: np.ndarray
    usable: np.ndarray
    factor: np.ndarray
    event: np.ndarray
    strata: np.ndarray
    group_starts: np.ndarray
    group_stops: np.ndarray
    group_events: np.ndarray
    saturated: float
    order: np.ndarray
    weight: np.ndarray
    weight_total: float

    @classmethod
    def build(
        cls,
        x: np.ndarray,
        time: np.ndarray,
        event: np.ndarray,
        strata: np.ndarray | None,
        standardize: bool,
        covariates: np.ndarray | None = None,
        penalty_factor: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> _Problem:
        """``x`` (n_samples × n_genes) and ``covariates`` (n_samples × q, unpenalised) are
        held together in ``x``'s dtype; ``penalty_factor`` (n_genes,) as :func:`coxnet`'s,
        default 1; ``weights`` (n_samples,) glmnet's observation weights, scaled here to
        mean 1 (the objective's minimiser is glmnet's, which scales them to sum 1)."""
        risk = RiskSets.build(time, event, strata)
        n = x.shape[0]
        q = 0 if covariates is None else covariates.shape[1]
        rows = np.empty((q + x.shape[1], n), dtype=x.dtype)
        if covariates is not None:
            rows[:q] = covariates[risk.order].T
        rows[q:] = x[risk.order].T
        if weights is None:
            weight, total = np.ones(n), float(n)
            mean = rows.mean(axis=1, dtype=np.float64)
            second = np.mean(np.square(rows, dtype=np.float64), axis=1)
        else:
            total = float(np.sum(weights))
            weight = np.asarray(weights, np.float64)[risk.order] * (n / total)
            mean = rows @ weight / n  # glmnet's weighted mean and variance
            second = np.square(rows, dtype=np.float64) @ weight / n
        spread = np.sqrt(np.maximum(second - mean * mean, 0.0))
        # glmnet's weighted_mean_sd: a variance below 10 ε is a constant variable
        usable = spread * spread >= 10 * np.finfo(np.float64).eps
        scale = spread if standardize else np.ones_like(spread)
        inv_scale = np.where(usable, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
        factor = np.ones(rows.shape[0])
        factor[:q] = 0.0
        if penalty_factor is not None:
            factor[q:] = penalty_factor
        excluded = np.isinf(factor)
        # glmnet's: an excluded variable counts as 1, and the factors sum to the variables
        factor[excluded] = 1.0
        if factor.sum() > 0:
            factor *= factor.size / factor.sum()
        factor[excluded] = 0.0
        usable &= ~excluded
        # each tied group's events, weighted: the saturated model's −Σ d log d
        group_events = risk.max_events.astype(np.float64)
        if weights is not None and group_events.size:
            group_events = np.add.reduceat(weight[risk.event_rows], risk.event_starts[:-1])
        return cls(
            x=rows,
            mean=mean,
            inv_scale=inv_scale,
            usable=usable,
            factor=factor,
            event=risk.event,
            strata=np.asarray(risk.strata, dtype=np.int64).reshape(-1, 2),
            group_starts=risk.starts.astype(np.int64),
            group_stops=risk.stops.astype(np.int64),
            group_events=group_events,
            saturated=-float(np.sum(group_events * np.log(group_events))),
            order=risk.order,
            weight=weight,
            weight_total=total,
        )

    @property
    def n(self) -> int:
        return int(self.event.size)

    def terms(self, eta: np.ndarray) -> _Terms:
        """The log partial likelihood at ``eta`` and the parts of its derivatives."""
        terms = _Terms(
            loglik=0.0,
            rate=np.empty(self.n),
            gradient=np.empty(self.n),
            ratio=np.empty(self.n),
            group_second=np.empty(self.group_starts.size),
        )
        terms.loglik = float(
            breslow_terms(
                eta,
                self.event,
                self.weight,
                self.strata,
                self.group_starts,
                self.group_stops,
                self.group_events,
                terms.rate,
                terms.gradient,
                terms.ratio,
                terms.group_second,
            )
        )
        return terms

    def standard(self, genes: np.ndarray) -> np.ndarray:
        """The standardised values of ``genes`` (n_samples × genes, float64, C-contiguous)."""
        rows = self.x[genes].astype(np.float64)  # gathered and scaled gene by gene
        rows -= self.mean[genes, None]
        rows *= self.inv_scale[genes, None]
        return np.ascontiguousarray(rows.T)

    def newton_model(self, standard: np.ndarray, terms: _Terms) -> tuple[np.ndarray, np.ndarray]:
        """The score and information of ``l/n`` in the standardised coefficients of genes
        whose values are ``standard``: ``X̃ᵀ g / n`` and ``X̃ᵀ (diag(rate) − Σ_g c_g r⁽ᵍ⁾
        r⁽ᵍ⁾ᵀ) X̃ / n``."""
        score = standard.T @ terms.gradient / self.n
        # both parts as Gram matrices (rate, c ≥ 0): symmetric products, half the flops
        weighted = np.sqrt(terms.rate)[:, None] * standard
        information = weighted.T @ weighted
        # each group's Σ_{k in its risk set} r_k x̃_k, scaled by √c_g
        at_groups = np.empty((self.group_stops.size, standard.shape[1]))
        risk_set_sums(standard, terms.ratio, self.strata, self.group_stops, at_groups)
        at_groups *= np.sqrt(terms.group_second)[:, None]
        information -= at_groups.T @ at_groups
        return score, information / self.n

    def implicit_step(
        self,
        genes: np.ndarray,
        terms: _Terms,
        beta: np.ndarray,
        eta: np.ndarray,
        l1: float,
        l2: float,
        tolerance: float,
    ) -> np.ndarray:
        """The quadratic model's solution by :func:`implicit_descent` (``beta`` and ``eta``
        moved in place; at most ``_IMPLICIT_CYCLES`` cycles, the Newton steps go on from
        there); returns the information's diagonal of ``genes``."""
        score = np.zeros(beta.size)
        score[genes] = self.gradients(terms.gradient)[genes]
        diagonal = np.zeros(beta.size)
        common = (terms.rate, terms.ratio, self.strata, self.group_stops, terms.group_second)
        implicit_diagonal(self.x, self.mean, self.inv_scale, genes, *common, diagonal)
        moved, curved = np.zeros(self.n), np.zeros(self.n)
        implicit_descent(
            self.x,
            self.mean,
            self.inv_scale,
            genes,
            beta,
            score,
            diagonal,
            self.factor,
            *common,
            moved,
            curved,
            l1,
            l2,
            tolerance,
            _IMPLICIT_CYCLES,
        )
        eta += moved
        return diagonal[genes]

    def gradients(self, gradient: np.ndarray) -> np.ndarray:
        """Every gene's gradient of ``l/n`` (standardised)."""
        if self.x.size <= _SMALL:  # starting the threads would cost more than the sums
            return (self.x @ gradient - self.mean * gradient.sum()) * self.inv_scale / self.n
        out = np.empty(self.x.shape[0])
        gene_gradients(self.x, self.mean, self.inv_scale, gradient, out)
        return out

    def deviance(self, loglik: float, given_units: bool = True) -> float:
        """glmnet's: in the units of the weights as given (their sum, not n); with
        ``given_units`` False in those scaled to mean 1 (coxnet.deviance's, for cv.glmnet)."""
        deviance = 2.0 * (self.saturated - loglik)
        return deviance * self.weight_total / self.n if given_units else deviance


def coxnet_path(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray | None,
    *,
    covariates: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    penalty_factor: np.ndarray | None = None,
    alpha: float = 1.0,
    lambdas: np.ndarray | None = None,
    n_lambdas: int = 100,
    lambda_min_ratio: float = 1e-4,
    standardize: bool = True,
    tolerance: float = 1e-10,
    max_iterations: int = 100,
) -> CoxnetPath:
    """The elastic-net Cox path of the columns of ``x`` (n_samples × n_genes, complete),
    with the columns of ``covariates`` (n_samples × q) unpenalised, ``offset`` (n_samples,)
    fixed in the linear predictor, observation ``weights`` (n_samples,) and
    ``penalty_factor`` (n_genes,) as :func:`coxnet`'s; the coefficients are the
    covariates', then the genes'.

    With ``lambdas`` given the path is fitted at each of them (sorted, decreasing) and not
    stopped early; otherwise as :func:`coxnet` describes.
    """
    problem = _Problem.build(
        x, time, event, strata, standardize, covariates, penalty_factor, weights
    )
    n, p = problem.n, problem.x.shape[0]
    base = np.zeros(n) if offset is None else np.asarray(offset, np.float64)[problem.order]
    null = problem.terms(base)  # glmnet's null model: the offset alone
    null_deviance = problem.deviance(null.loglik)
    beta = np.zeros(p)
    eta = base.copy()
    free = np.flatnonzero(problem.usable & (problem.factor == 0))
    terms, first_steps = null, 0
    if free.size:  # the unpenalised variables' own fit: every penalised coefficient 0
        try:
            terms, first_steps = _fit_penalty(
                problem, free, beta, eta, 0.0, 0.0, tolerance, max_iterations
            )
        except _NotConverged as stop:
            raise CohortexError(
                f"The Cox model of the unpenalised variables alone did not converge within "
                f"{stop}; check them for separation or collinearity."
            ) from None
        unbounded = free[_unbounded(problem, free, terms, beta)]
    else:
        unbounded = np.zeros(0, dtype=np.int64)
    # an unbounded coefficient runs on at every penalty (the genes cannot bound it), each
    # Newton step moving it by about as much for ever less gain: it is held where it got to
    held = np.zeros(p, dtype=bool)
    held[unbounded] = True
    gradients = problem.gradients(terms.gradient)
    if lambdas is None:
        penalised = problem.usable & (problem.factor > 0)
        if not penalised.any():
            raise CohortexError("No penalised gene varies: the path has nothing to fit.")
        largest = float(np.max(np.abs(gradients[penalised]) / problem.factor[penalised]))
        largest /= max(alpha, 1e-3)
        if largest <= 0:
            raise CohortexError("No gene varies: the path has nothing to fit.")
        path = np.exp(np.linspace(np.log(largest), np.log(largest * lambda_min_ratio), n_lambdas))
    else:
        path = np.sort(np.asarray(lambdas, dtype=np.float64))[::-1]
    strong = np.zeros(p, dtype=bool)
    coefficients: list[np.ndarray] = []
    dev_ratio: list[float] = []
    steps: list[int] = []
    previous = path[0]
    before = np.zeros(p)  # the solution at the penalty before the last
    for index, penalty in enumerate(path):
        l1, l2 = penalty * alpha, penalty * (1.0 - alpha)
        start = beta.copy()
        if index >= 2:
            ratio = np.log(penalty / previous) / np.log(previous / path[index - 2])
            _extrapolate(problem, beta, eta, before, ratio)
        before = start
        # the strong rule (Tibshirani et al. 2012): variables likely to enter at this
        # penalty (the unpenalised always)
        threshold = alpha * (2.0 * penalty - previous) * problem.factor
        strong |= problem.usable & (np.abs(gradients) >= threshold)
        strong |= beta != 0
        strong &= ~held
        taken = first_steps if index == 0 else 0
        while not (lambdas is None and index == 0):  # the largest penalty: solved above
            try:
                terms, used = _fit_penalty(
                    problem, np.flatnonzero(strong), beta, eta, l1, l2, tolerance, max_iterations
                )
            except _NotConverged as stop:
                # as glmnet: the path ends at the last penalty solved (near an unpenalised
                # fit whose coefficients run to infinity, or collinear genes)
                warnings.warn(
                    f"The elastic-net Cox path stops at penalty {path[index - 1]:.4g}: the next, "
                    f"{penalty:.4g}, did not converge within {stop}.",
                    CohortexWarning,
                    stacklevel=3,
                )
                return _path(path, coefficients, dev_ratio, null_deviance, steps, unbounded)
            taken += used
            gradients = problem.gradients(terms.gradient)
            # the KKT conditions of every variable left out
            bound = l1 * problem.factor * (1 + 1e-9)
            violated = problem.usable & ~strong & ~held & (np.abs(gradients) > bound)
            if not violated.any():
                break
            strong |= violated
        coefficients.append(beta * problem.inv_scale)
        dev_ratio.append(1.0 - problem.deviance(terms.loglik) / null_deviance)
        steps.append(taken)
        previous = penalty
        if lambdas is None and index + 1 >= min(n_lambdas, _MIN_STEPS):
            if dev_ratio[-1] > _MAX_DEV_RATIO:
                break
            if index > 0 and (
                dev_ratio[-1] - dev_ratio[index - _MIN_STEPS + 1] < _MIN_DEV_GAIN * dev_ratio[-1]
            ):
                break
    return _path(path, coefficients, dev_ratio, null_deviance, steps, unbounded)


def _path(
    path: np.ndarray,
    coefficients: list[np.ndarray],
    dev_ratio: list[float],
    null_deviance: float,
    steps: list[int],
    unbounded: np.ndarray,
) -> CoxnetPath:
    kept = len(coefficients)
    return CoxnetPath(
        lambdas=path[:kept].copy(),
        coefficients=np.asarray(coefficients).reshape(kept, -1),
        dev_ratio=np.asarray(dev_ratio),
        null_deviance=null_deviance,
        iterations=np.asarray(steps),
        unbounded=unbounded,
    )


def _unbounded(problem: _Problem, free: np.ndarray, terms: _Terms, beta: np.ndarray) -> np.ndarray:
    """Which of the unpenalised variables ``free``, fitted alone, may have an infinite
    coefficient: R's coxph test, the Newton step still left (``|V u|``) above 10⁻⁹ and
    above √10⁻⁹ of the coefficient."""
    score, information = problem.newton_model(problem.standard(free), terms)
    try:
        remaining = np.abs(np.linalg.solve(information, score))
    except np.linalg.LinAlgError:
        remaining = np.abs(np.linalg.lstsq(information, score, rcond=None)[0])
    eps = 1e-9
    return (remaining > eps) & (remaining > np.sqrt(eps) * np.abs(beta[free]))


def _extrapolate(
    problem: _Problem, beta: np.ndarray, eta: np.ndarray, before: np.ndarray, ratio: float
) -> None:
    """Start the next penalty's fit where the last two solutions point (``beta`` and ``eta``
    moved in place): ``β + ratio · (β − β_before)`` for the coefficients nonzero in both that
    keep their sign. On a fixed support the path is smooth in log λ, so the first Newton step
    starts off by the path's curvature only, and one step fewer is needed."""
    moving = (beta != 0) & (before != 0)
    guess = beta[moving] + ratio * (beta[moving] - before[moving])
    keeps = np.sign(guess) == np.sign(beta[moving])
    genes = np.flatnonzero(moving)[keeps]
    if genes.size == 0:
        return
    change = guess[keeps] - beta[genes]
    beta[genes] += change
    scaled = change * problem.inv_scale[genes]
    eta += scaled @ problem.x[genes] - float(scaled @ problem.mean[genes])


def _fit_penalty(
    problem: _Problem,
    genes: np.ndarray,
    beta: np.ndarray,
    eta: np.ndarray,
    l1: float,
    l2: float,
    tolerance: float,
    max_iterations: int,
) -> tuple[_Terms, int]:
    """Proximal Newton steps on ``genes`` (their coefficients in ``beta`` and the predictor
    ``eta`` updated in place): each solves the quadratic model with the likelihood's exact
    information by coordinate descent, and is halved while it does not lower the penalised
    objective; between them, while the support holds and they converge fast, chord steps
    with the last information (:class:`_Chord`). glmnet's diagonal approximation of the
    information converges linearly, slowly where risk sets are small; this converges
    quadratically. Returns the terms at the solution and the steps taken."""
    n = problem.n
    terms = problem.terms(eta)
    objective = penalised_objective(terms.loglik, n, beta, problem.factor, l1, l2)
    explicit = genes.size <= _EXPLICIT_GENES
    standard = problem.standard(genes) if explicit else None
    factor = problem.factor[genes]
    # the implicit models are solved loosely while the steps are large (inexact Newton); the
    # explicit ones cost little next to forming them
    inner = tolerance / 10 if explicit else 1e-4
    previous = 0.0  # the last full step's move on an unchanged support (0: none)
    last = 0.0  # the last step's move, of any kind
    chord: _Chord | None = None
    for step in range(1, max_iterations + 1):
        if genes.size == 0:
            return terms, step
        start_beta, start_eta = beta.copy(), eta.copy()
        chorded = False
        if standard is not None:
            local = None
            if chord is not None:
                score = standard.T @ terms.gradient / n
                local = chord.step(score, beta[genes], factor, l1, l2)
                chorded = local is not None
            if local is None:
                score, information = problem.newton_model(standard, terms)
                local = _solve_quadratic(information, score, beta[genes], factor, l1, l2, inner)
                curvature = np.diag(information)
                chord = _Chord.build(information, local, factor, l2)
            beta[genes] = local
            eta[:] = start_eta + standard @ (local - start_beta[genes])
        else:
            curvature = problem.implicit_step(genes, terms, beta, eta, l1, l2, inner)
        terms = problem.terms(eta)
        candidate = penalised_objective(terms.loglik, n, beta, problem.factor, l1, l2)
        halved = False
        for _ in range(40):  # a step that overshoots: halved towards the last fit
            if candidate <= objective + 1e-13 * abs(objective):
                break
            halved = True
            beta[:] = 0.5 * (beta + start_beta)
            eta[:] = 0.5 * (eta + start_eta)
            terms = problem.terms(eta)
            candidate = penalised_objective(terms.loglik, n, beta, problem.factor, l1, l2)
        else:  # no step lowers the objective: the last fit is as good as rounding allows
            beta[:], eta[:] = start_beta, start_eta
            return problem.terms(eta), step
        if halved and candidate > objective - 1e-13 * abs(objective):
            return terms, step  # only a step within rounding lowers it: as good as it gets
        objective = candidate
        spread = np.sqrt(np.maximum(curvature, 0.0))
        moved = float((np.abs(beta[genes] - start_beta[genes]) * spread).max())
        if moved < tolerance and inner <= tolerance / 10:
            return terms, step
        # on a fixed support the full Newton steps converge at least as fast as the last two
        # did: the next would move less than moved² / previous, so it need not be taken once
        # that is below the tolerance (the chord's cheap steps go on to the tolerance itself)
        smooth = not halved and np.array_equal(beta[genes] != 0, start_beta[genes] != 0)
        predicted = moved * moved < tolerance * previous
        if smooth and not chorded and inner <= tolerance / 10 and predicted:
            return terms, step
        if halved or (chorded and moved > _CHORD_RATE * last):
            chord = None  # the information is out of date: the next step forms it anew
        previous = moved if smooth else 0.0
        last = moved
        inner = max(tolerance / 10, min(inner, 1e-3 * moved))
    raise _NotConverged(f"{max_iterations} Newton steps")


@dataclass
class _Chord:
    """A Newton step's information on the support of its solution, for the steps after it:
    the gradient at each new point, the information held (the chord method). Its fixed
    point is the exact solution; it converges linearly at a rate set by how far the
    information was formed from it, ~100× a step within a penalty, where forming the
    information anew (n × genes²) costs more than several such steps (n × genes + active²).
    The active block is factored at the first step that needs it."""

    information: np.ndarray
    active: np.ndarray
    l2: np.ndarray
    factor: CholeskyFactor | None = None
    singular: bool = False

    @classmethod
    def build(
        cls, information: np.ndarray, solution: np.ndarray, factor: np.ndarray, l2: float
    ) -> _Chord | None:
        active = np.flatnonzero(solution)
        if active.size == 0:
            return None
        return cls(information, active, l2 * factor[active])

    def step(
        self, score: np.ndarray, current: np.ndarray, factor: np.ndarray, l1: float, l2: float
    ) -> np.ndarray | None:
        """The coefficients after one step from ``current`` with ``score`` the gradient there;
        None where the step would change the support or a coefficient left out would enter
        (the quadratic model's conditions fail: a Newton step must decide), or the active
        block is singular."""
        if self.factor is None and not self.singular:
            active = self.active
            system = self.information[np.ix_(active, active)] + np.diag(self.l2)
            self.factor = CholeskyFactor.of(system, active, active.size)
            self.singular = self.factor is None
        if self.factor is None:
            return None
        active = self.active
        if not np.array_equal(np.flatnonzero(current), active):
            return None
        signs = np.sign(current[active])
        right = score[active] - factor[active] * (l1 * signs + l2 * current[active])
        delta = self.factor.solve(right)
        moved = current.copy()
        moved[active] += delta
        if np.any(np.sign(moved[active]) != signs):
            return None
        residual = score - self.information[:, active] @ delta
        residual[active] = 0.0
        if np.any(np.abs(residual) > l1 * factor * (1 + 1e-9)):
            return None
        return moved


def _solve_quadratic(
    information: np.ndarray,
    score: np.ndarray,
    start: np.ndarray,
    factor: np.ndarray,
    l1: float,
    l2: float,
    tolerance: float,
) -> np.ndarray:
    """The minimum of the penalised quadratic model around ``start``: coordinate descent, and
    where it crawls (nearly collinear genes at a small penalty) the feature-sign search from
    where it got to (:func:`_feature_sign`)."""
    local = start.copy()
    cycles = quadratic_descent(information, score, local, factor, l1, l2, tolerance, _CYCLES)
    if cycles <= _CYCLES:
        return local
    return _feature_sign(information, score + information @ start, local, l1 * factor, l2 * factor)


class _ActiveSystem:
    """The feature-sign search's equations ``(H + diag(l2))`` on its changing active set:
    Cholesky-factored once and then updated as coefficients enter and leave (O(k²) a change
    where a new factorisation or solve costs O(k³)); where the set becomes singular (a
    coefficient entering is a combination of the others), dense solves, least squares where
    needed, for the rest of the search."""

    def __init__(self, hessian: np.ndarray, l2: np.ndarray, members: np.ndarray) -> None:
        self.hessian, self.l2 = hessian, l2
        self.factor = CholeskyFactor.of(self._block(members), members, l2.size)
        self._members = [int(j) for j in members]

    @property
    def members(self) -> np.ndarray:
        held = self._members if self.factor is None else self.factor.members
        return np.asarray(held, dtype=np.int64)

    def _block(self, members: np.ndarray) -> np.ndarray:
        return self.hessian[np.ix_(members, members)] + np.diag(self.l2[members])

    def hold(self, members: np.ndarray) -> None:
        """Make the active set ``members`` (those held keep their order, the new ones after)."""
        wanted = set(members.tolist())
        held = list(self._members if self.factor is None else self.factor.members)
        for j in held:
            if j in wanted:
                continue
            if self.factor is None:
                self._members.remove(j)
            else:
                self.factor.remove(j)
        known = set(held)
        for j in members.tolist():
            if j in known:
                continue
            if self.factor is not None:
                column = self.hessian[self.factor.members, j]
                if self.factor.append(j, column, self.hessian[j, j] + self.l2[j]):
                    continue
                self._members, self.factor = list(self.factor.members), None
            self._members.append(j)

    def solve(self, right: np.ndarray) -> np.ndarray:
        if self.factor is not None:
            return self.factor.solve(right)
        system = self._block(self.members)
        try:
            return np.linalg.solve(system, right)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(system, right, rcond=None)[0]

    def quadratic(self, vector: np.ndarray) -> float:
        if self.factor is not None:
            return self.factor.quadratic(vector)
        return float(vector @ self._block(self.members) @ vector)


def _feature_sign(
    hessian: np.ndarray, linear: np.ndarray, beta: np.ndarray, l1: np.ndarray, l2: np.ndarray
) -> np.ndarray:
    """Lee et al.'s (2007) feature-sign search for ``½βᵀHβ − linearᵀβ + Σ_j (l1_j |β_j| +
    l2_j/2 β_j²)`` from ``beta``: solve the nonzero coefficients' equations with their signs
    fixed, walk towards that solution as far as the objective falls (a coefficient that
    crosses 0 leaves), and let in the zero coefficients that violate their condition (the
    largest alone when all together get nowhere); exact in finitely many steps, where
    coordinate descent on collinear genes only approaches it."""
    beta = beta.copy()
    scale = max(1.0, float(np.abs(linear).max()))
    alone: np.ndarray | None = None
    system = _ActiveSystem(hessian, l2, np.flatnonzero(beta))
    for _ in range(10 * beta.size + 100):
        gradient = linear - hessian @ beta - l2 * beta  # minus the smooth part's gradient
        system.hold(np.flatnonzero(beta))
        active = system.members
        signs = np.sign(beta[active])
        inactive = np.flatnonzero(beta == 0)
        off = np.abs(gradient[active] - l1[active] * signs)
        if off.size == 0 or float(off.max()) <= 1e-13 * scale:
            excess = np.abs(gradient[inactive]) - l1[inactive]
            if inactive.size == 0 or float(excess.max()) <= 1e-13 * scale:
                return beta
            # every violator enters at once; when that gets nowhere, the largest alone
            entering = inactive[excess > 1e-13 * scale] if alone is None else alone
            system.hold(np.append(active, entering))
            active = system.members
            signs = np.where(beta[active] != 0, np.sign(beta[active]), np.sign(gradient[active]))
        right = linear[active] - l1[active] * signs
        target = system.solve(right)
        current = beta[active]
        direction = target - current
        # the objective along the way, less its value at beta: a quadratic plus the l1 terms
        slope = -float(gradient[active] @ direction)
        curvature = system.quadratic(direction)
        # the points where a coefficient crosses 0 on the way, then the solution itself
        with np.errstate(divide="ignore", invalid="ignore"):
            crossings = current / (current - target)
        steps = np.append(crossings[(crossings > 0) & (crossings < 1)], 1.0)
        moved = current[None, :] + steps[:, None] * direction[None, :]
        change = (
            steps * slope
            + 0.5 * steps**2 * curvature
            + (np.abs(moved) - np.abs(current)) @ l1[active]
        )
        best = int(np.argmin(change))
        if not change[best] < 0.0:
            if alone is None and off.size and float(off.max()) <= 1e-13 * scale:
                alone = inactive[[int(np.argmax(np.abs(gradient[inactive]) - l1[inactive]))]]
                continue
            return beta  # no step lowers the objective: rounding is all that is left
        beta[active] = moved[best]
        beta[active[np.isclose(steps[best], crossings)]] = 0.0
        alone = None
    raise _NotConverged("the feature-sign search's steps")


def cross_validated_deviance(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray | None,
    labels: np.ndarray,
    lambdas: np.ndarray,
    *,
    covariates: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    penalty_factor: np.ndarray | None = None,
    alpha: float = 1.0,
    standardize: bool = True,
    tolerance: float = 1e-10,
    max_iterations: int = 100,
    on_fold: Callable[[], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """cv.glmnet's grouped deviance of each penalty and its standard error: each fold's path
    fitted on the other folds at ``lambdas``, scored by ``2 (l(β₋ₖ) − l₋ₖ(β₋ₖ))`` (the
    whole cohort's log partial likelihood less the training samples') per event of the fold,
    averaged over the folds weighted by their events (their weights' sum, with ``weights``);
    ``covariates``, ``offset``, ``weights`` and ``penalty_factor`` as :func:`coxnet_path`'s;
    ``on_fold`` is called after each fold."""
    # the outcomes' risk sets only: the predictors come from the fits' few nonzero genes
    whole = _Problem.build(x[:, :0], time, event, strata, False, weights=weights)
    counted = event if weights is None else event * weights
    levels = np.unique(labels)
    raw = np.empty((levels.size, lambdas.size))
    events = np.empty(levels.size)
    short = 0
    for i, level in enumerate(levels):
        train = np.flatnonzero(labels != level)
        fold_strata = None if strata is None else strata[train]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CohortexWarning)
            fit = coxnet_path(
                x[train],
                time[train],
                event[train],
                fold_strata,
                covariates=None if covariates is None else covariates[train],
                offset=None if offset is None else offset[train],
                weights=None if weights is None else weights[train],
                penalty_factor=penalty_factor,
                alpha=alpha,
                lambdas=lambdas,
                standardize=standardize,
                tolerance=tolerance,
                max_iterations=max_iterations,
            )
        short += bool(caught)
        part = _Problem.build(
            x[train, :0],
            time[train],
            event[train],
            fold_strata,
            False,
            weights=None if weights is None else weights[train],
        )
        raw[i] = np.nan  # penalties past a fold's path (it stopped: not converged) count not
        train_covariates = None if covariates is None else covariates[train]
        train_offset = None if offset is None else offset[train]
        # each in weights scaled to mean 1 over its own samples (glmnet's coxnet.deviance)
        raw[i, : fit.lambdas.size] = [
            whole.deviance(_loglik(whole, x, covariates, beta, offset), given_units=False)
            - part.deviance(
                _loglik(part, x[train], train_covariates, beta, train_offset), given_units=False
            )
            for beta in fit.coefficients
        ]
        events[i] = float(counted[labels == level].sum())
        if on_fold is not None:
            on_fold()
    if short:
        warnings.warn(
            f"{short} of {levels.size} cross-validation folds' paths stopped early (a penalty "
            "did not converge); the smaller penalties are scored on the other folds.",
            CohortexWarning,
            stacklevel=3,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = raw / events[:, None]
    raw[~np.isfinite(raw)] = np.nan  # a fold without events: no deviance per event
    weights = np.where(np.isnan(raw), 0.0, events[:, None])
    mean = np.nansum(raw * weights, axis=0) / weights.sum(axis=0)
    spread = np.sqrt(
        np.nansum(weights * (raw - mean) ** 2, axis=0)
        / weights.sum(axis=0)
        / ((weights > 0).sum(axis=0) - 1)
    )
    return mean, spread


def _loglik(
    problem: _Problem,
    x: np.ndarray,
    covariates: np.ndarray | None,
    beta: np.ndarray,
    offset: np.ndarray | None = None,
) -> float:
    """The log partial likelihood of ``beta`` (the covariates', then the genes', on their own
    scale) for the samples of ``x`` (n_samples × n_genes), ``covariates`` (n_samples × q) and
    ``offset`` (n_samples,), in their own order, whose outcomes ``problem`` holds."""
    q = 0 if covariates is None else covariates.shape[1]
    eta = np.zeros(x.shape[0]) if offset is None else np.asarray(offset, np.float64).copy()
    if covariates is not None and q:
        eta += covariates @ beta[:q]
    genes = np.flatnonzero(beta[q:])
    if genes.size:
        eta += x[:, genes].astype(np.float64) @ beta[q:][genes]
    return problem.terms(eta[problem.order]).loglik


def choose_lambda(
    lambdas: np.ndarray, deviance: np.ndarray, spread: np.ndarray
) -> tuple[float, float]:
    """cv.glmnet's ``lambda.min`` (the largest penalty of the smallest deviance) and
    ``lambda.1se`` (the largest within one standard error of it)."""
    best = np.nanmin(deviance)
    lambda_min = float(np.max(lambdas[deviance <= best]))
    index = int(np.flatnonzero(lambdas == lambda_min)[0])
    lambda_1se = float(np.max(lambdas[deviance <= best + spread[index]]))
    return lambda_min, lambda_1se


def interpolate(lambdas: np.ndarray, coefficients: np.ndarray, penalty: float) -> np.ndarray:
    """The coefficients at ``penalty``: a path's own, or linear between its two neighbours
    in λ (glmnet's ``lambda.interp``), the path's ends beyond it."""
    if not np.isfinite(penalty) or penalty < 0:
        raise CohortexError(f"The penalty must be a value >= 0; got {penalty!r}.")
    if lambdas.size == 1 or penalty >= lambdas[0]:
        return coefficients[0].copy()
    if penalty <= lambdas[-1]:
        return coefficients[-1].copy()
    right = int(np.searchsorted(-lambdas, -penalty))  # the first penalty <= it
    left = right - 1
    share = (penalty - lambdas[right]) / (lambdas[left] - lambdas[right])
    return share * coefficients[left] + (1.0 - share) * coefficients[right]


def _checked_lambdas(lambdas: Sequence[float]) -> np.ndarray:
    values = np.asarray(lambdas, dtype=np.float64).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise CohortexError("'lambdas' must be penalties >= 0 (at least one).")
    return values


def fold_labels(folds: int | Sequence[Any], event: np.ndarray, seed: int) -> np.ndarray | None:
    """Each sample's fold (None for no cross-validation)."""
    if isinstance(folds, int | np.integer):
        if folds == 0:
            return None
        if folds < 3:
            raise CohortexError(f"'folds' must be 0 or at least 3; got {folds}.")
        events = int(event.sum())
        if min(events, event.size - events) < folds:
            raise CohortexError(
                f"{events} events and {event.size - events} censored samples: too few for "
                f"{folds} folds balanced for events."
            )
        from sklearn.model_selection import StratifiedKFold

        labels = np.empty(event.size, dtype=np.int64)
        splitter = StratifiedKFold(int(folds), shuffle=True, random_state=seed)
        for fold, (_, held_out) in enumerate(splitter.split(np.zeros(event.size), event)):
            labels[held_out] = fold
        return labels
    labels = np.asarray(folds)
    if labels.shape != event.shape:
        raise CohortexError(
            f"'folds' as labels needs one per sample ({event.size}); got shape {labels.shape}."
        )
    if np.unique(labels).size < 3:
        raise CohortexError("'folds' as labels needs at least 3 folds.")
    return labels
