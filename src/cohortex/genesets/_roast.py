"""limma's ``roast``/``mroast``: self-contained gene-set tests by rotation of the residuals."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from .. import fdr as _fdr
from .._cohort import CohortLike, shared_docs
from .._errors import CohortexError
from .._progress import DASK_DELAY, progress_bar
from ..stats._ebayes import squeeze_var
from ._collection import GeneSets
from ._fry import SetFit
from ._rotations import rotation_numbers

__all__ = ["FULL_ROTATIONS_UP_TO", "SET_STATISTICS", "roast"]

SET_STATISTICS = ("mean", "floormean", "mean50", "msq")
# Up to this many effects a rotation is drawn in full, as limma draws it (the same normal
# stream gives limma's p-values); beyond it a set of fewer genes draws only its own span.
FULL_ROTATIONS_UP_TO = 200
_CHUNK = 1000  # rotations at a time, as limma's .roastEffects
_ACTIVE = np.sqrt(2.0)  # a gene is active when its z-score passes ±√2 (limma)
_FLOOR = float(stats.norm.isf(0.25))  # floormean's floor: the median of |N(0, 1)|
_DF_CAP = 10000.0  # limma winsorises the total df at 10,000 for Bailey's z-score


@shared_docs
def roast(
    cohort: CohortLike,
    design: Any,
    gene_sets: GeneSets,
    *,
    contrast: str | None = None,
    set_statistic: str = "mean",
    n_rotations: int = 1999,
    weights: Any = None,
    gene_weights: Any = None,
    block: str | Any = None,
    correlation: float | None = None,
    trend: bool = False,
    robust: bool = False,
    midp: bool = True,
    fdr: str = "bh",
    random_state: int | np.random.Generator | None = 0,
    device: str = "auto",
) -> xr.Dataset:
    """Test whether the genes of each set change, by rotation, as limma's ``mroast``.

    A self-contained test (is the set changed at all?): each gene's moderated t for the
    ``contrast`` (limma's ``squeezeVar`` of the residual variances, as a z-score by Bailey's
    approximation) is summarised over the set's genes (``set_statistic``), and compared with
    the same summary after random rotations of the residual space — exact for any correlation
    between the genes of a set, the residuals being normal (Wu et al. 2010). p-values are
    ``(b + 1) / (n_rotations + 1)`` for b rotations at least as extreme. :func:`fry` is the
    fast approximation of the same test with the mean statistic.

    Parameters
    ----------
    {cohort}
        Complete values (no NaN).
    design : str, DataFrame or array
        As for :func:`cohortex.de.fit`.
    gene_sets : GeneSets
        Members named by the cohort's gene ids; sets with no gene of the cohort are left out.
    contrast : str, optional
        A coefficient of the design (default the last, as limma's ``ncol(design)``), or a
        combination of them such as ``"group[T.c] - group[T.b]"``.
    set_statistic : {{"mean", "floormean", "mean50", "msq"}}
        limma's statistics: the mean z (default), the mean with |z| floored at the median of
        |N(0, 1)| (the mixed test then ignores small changes), the mean of the larger half,
        the mean square.
    n_rotations : int, default 1999
        Random rotations per set; the smallest p-value is ``1 / (n_rotations + 1)``.
    weights : array of shape (n_samples, n_genes) or (n_samples,), optional
        Precision weights > 0, per observation or per sample, as for :func:`fry` (default the
        cohort's ``weights`` variable, as a :func:`voom <cohortex.de.voom>` result has).
    gene_weights : array of shape (n_genes,) or mapping of gene id to float, optional
        limma's ``gene.weights``, as for :func:`fry`: each gene's z-score multiplied by its
        weight within every set (msq: by its absolute value), the active shares counted by
        its sign.
    block : str or array of shape (n_samples,), optional
        Samples correlated within blocks, with ``correlation`` (required, as in limma).
    correlation : float, optional
    trend, robust : bool
        limma's ``trend`` (the prior variance follows the genes' mean) and ``robust``.
    midp : bool, default True
        limma's mid-p correction of the p-values before the FDR (the reported p-values stay as
        they are; each adjusted value is at least its p-value).
    fdr : str, default "bh"
        Correction across the sets of the two-sided and the mixed p-values.
    random_state : int, numpy Generator or None, default 0
        The rotations' random numbers. An int is R's ``set.seed``: the rotations are those of
        ``set.seed(random_state); mroast(...)`` (see Notes), so the p-values are limma's
        exactly. A NumPy Generator draws them instead; None draws from fresh entropy.
    {device}

    Returns
    -------
    xarray.Dataset
        On ``gene_set``, in the order of ``gene_sets`` (limma's ``sort = "none"``):
        ``n_genes``, ``prop_down`` and ``prop_up`` (the share of the set's genes with z below
        −√2 or above √2), ``direction`` ("Up" when the up p-value is the smaller),
        ``pvalue_down`` and ``pvalue_up`` (one-sided), ``pvalue`` (two-sided: up or down),
        ``padj``, ``pvalue_mixed`` (changed in either direction, not necessarily together),
        ``padj_mixed``. Attrs: ``contrast``, ``df``, ``set_statistic``, ``n_rotations``.

    Raises
    ------
    CohortexError
        For missing values, weights ≤ 0, a block without its correlation, fewer than one
        rotation, and when the sets' genes' effects would exceed
        :data:`~cohortex.genesets._fry.FRY_EFFECTS` values (use :func:`camera`).

    Notes
    -----
    With at most :data:`FULL_ROTATIONS_UP_TO` effects (samples less coefficients, plus one)
    each rotation is drawn as limma draws it: with R's normal stream (an int
    ``random_state``), the p-values are limma's. With more, a set of m genes with fewer than
    that many effects draws only the m-dimensional span of its effects and the chi-square of
    the rest — the same distribution at a fraction of the cost (a cohort of 50,000 samples
    would otherwise draw 50,000 normals per rotation and set). limma's robust mode, when some
    genes' prior df are infinite, rotates those genes' variances without their prior; here
    they keep the prior, as their observed t does.
    """
    if set_statistic not in SET_STATISTICS:
        raise CohortexError(
            f"roast's 'set_statistic' must be one of {', '.join(map(repr, SET_STATISTICS))}; "
            f"got {set_statistic!r}."
        )
    _fdr.check_method(fdr, "roast()")
    rng = rotation_numbers(n_rotations, random_state, "roast()")
    fitted = SetFit(
        cohort, design, gene_sets, contrast, weights, block, correlation, device, "roast"
    )
    df = fitted.df
    contrast_effect, squares = fitted.summary["contrast"], fitted.summary["squares"]
    s2 = (squares - contrast_effect**2) / df
    covariate = fitted.summary["mean"] if trend else None
    prior = squeeze_var(s2, float(df), covariate=covariate, robust=robust)
    n_genes = s2.size
    var_prior = np.broadcast_to(np.asarray(prior.s2_prior, dtype=np.float64), (n_genes,))
    df_prior = np.broadcast_to(np.asarray(prior.df_prior, dtype=np.float64), (n_genes,))
    effects = fitted.effects.of_genes(fitted.in_sets).T  # genes of the sets × (df + 1)
    genes_in_sets = np.flatnonzero(fitted.in_sets)
    weighted = fitted.gene_weights(gene_weights)

    n_sets = len(fitted.positions)
    pvalues = np.empty((n_sets, 4))  # down, up, up or down, mixed
    active = np.empty((n_sets, 2))  # down, up
    with progress_bar(n_sets, "roast", unit="set", delay=DASK_DELAY) as bar:
        for i, columns in enumerate(fitted.positions):
            genes = genes_in_sets[columns]
            set_test = _SetRotations(
                effects[columns],
                squares[genes],
                var_prior[genes],
                df_prior[genes],
                prior.s2_post[genes],
                df,
                set_statistic,
                None if weighted is None else weighted[columns],
            )
            pvalues[i], active[i] = set_test.pvalues(n_rotations, rng)
            bar.update(1)

    two_sided, mixed = pvalues[:, 2], pvalues[:, 3]
    shift = 0.5 / (n_rotations + 1) if midp else 0.0
    padj = np.asarray(_fdr.adjust(two_sided - shift, fdr))
    padj_mixed = np.asarray(_fdr.adjust(mixed - shift, fdr))
    if midp:
        padj, padj_mixed = np.maximum(padj, two_sided), np.maximum(padj_mixed, mixed)
    sizes = np.array([c.size for c in fitted.positions])
    return xr.Dataset(
        {
            "n_genes": ("gene_set", sizes),
            "prop_down": ("gene_set", active[:, 0]),
            "prop_up": ("gene_set", active[:, 1]),
            "direction": (
                "gene_set",
                np.where(pvalues[:, 1] < pvalues[:, 0], "Up", "Down").astype(object),
            ),
            "pvalue_down": ("gene_set", pvalues[:, 0]),
            "pvalue_up": ("gene_set", pvalues[:, 1]),
            "pvalue": ("gene_set", two_sided),
            "padj": ("gene_set", padj),
            "pvalue_mixed": ("gene_set", mixed),
            "padj_mixed": ("gene_set", padj_mixed),
        },
        coords={"gene_set": np.asarray(fitted.sets.names, dtype=object)},
        attrs={
            "test": "roast",
            "contrast": fitted.contrast,
            "df": float(df),
            "set_statistic": set_statistic,
            "n_rotations": int(n_rotations),
            "midp": int(midp),
            "trend": int(trend),
            "robust": int(robust),
            "weighted": int(fitted.effects.weighted),
            "gene_weights": int(weighted is not None),
        },
    )


def zscore_t_bailey(t: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """limma's ``.zscoreTBailey``: the normal quantile of a t on ``df`` degrees of freedom by
    Bailey's approximation (``df`` broadcast against ``t``)."""
    with np.errstate(invalid="ignore"):
        return (
            ((df + 0.125) / (df + 1.125))
            * np.sqrt((df + 19.0 / 12.0) * np.log1p(t / (df + 1.0 / 12.0) * t))
            * np.sign(t)
        )


class _SetRotations:
    """One set's observed statistics and their rotations (limma's ``.roastEffects``).

    Parameters
    ----------
    effects : ndarray of shape (m, d)
        The set's genes' effects: the contrast's, then the d − 1 residual effects.
    squares : ndarray of shape (m,)
        The sum of each gene's squared effects.
    var_prior, df_prior, var_post : ndarray of shape (m,)
        squeezeVar's prior and posterior variances of the genes.
    df : int
        The residual degrees of freedom, d − 1.
    statistic : str
        One of :data:`SET_STATISTICS`.
    gene_weights : ndarray of shape (m,), optional
        limma's ``gene.weights`` of the set's genes.
    """

    def __init__(
        self,
        effects: np.ndarray,
        squares: np.ndarray,
        var_prior: np.ndarray,
        df_prior: np.ndarray,
        var_post: np.ndarray,
        df: int,
        statistic: str,
        gene_weights: np.ndarray | None = None,
    ) -> None:
        self.effects = effects
        self.gene_weights = gene_weights
        self.squares = squares
        self.var_prior = var_prior
        self.df_prior = df_prior
        self.df = df
        self.statistic = statistic
        self.finite = np.isfinite(df_prior)
        self.df_total = np.minimum(df_prior + df, _DF_CAP)
        self.observed_z = zscore_t_bailey(effects[:, 0] / np.sqrt(var_post), self.df_total)
        m, d = effects.shape
        self.basis: np.ndarray | None = None
        if d > FULL_ROTATIONS_UP_TO and m < d:
            # E r = Rᵀ (Qᵀ r) for Eᵀ = QR; Qᵀ r of a uniform unit r is u / √(|u|² + χ²_{d−m})
            self.basis = np.asarray(np.linalg.qr(effects.T, mode="r")).T

    def pvalues(self, n_rotations: int, rng: Any) -> tuple[np.ndarray, np.ndarray]:
        """The p-values (down, up, up or down, mixed) and the active shares (down, up)."""
        z = self.observed_z
        if self.gene_weights is None:
            active = np.array([np.mean(z < -_ACTIVE), np.mean(z > _ACTIVE)])
        else:  # counted by the weights' signs
            sign = np.sign(self.gene_weights)
            signed = sign * z
            total = np.sum(np.abs(sign))
            active = np.array([np.sum(signed < -_ACTIVE), np.sum(signed > _ACTIVE)]) / total
        observed = self._statistics(z[:, None], observed=True)[:, 0]
        count = np.zeros(4, dtype=np.int64)
        chunks = -(-n_rotations // _CHUNK)
        size = -(-n_rotations // chunks)
        for chunk in range(chunks):
            rotations = size if chunk < chunks - 1 else n_rotations - size * (chunks - 1)
            rotated = self._statistics(self._rotated_z(rotations, rng))
            both = rotated[:2]  # limma counts down and up rotations against either tail
            count[0] += int(np.sum(both > observed[0]))
            count[1] += int(np.sum(both > observed[1]))
            count[2] += int(np.sum(rotated[2] > observed[2]))
            count[3] += int(np.sum(rotated[3] > observed[3]))
        if self.statistic == "mean":
            count[2] = min(count[0], count[1])
        return (count + 1) / (np.array([2, 2, 1, 1]) * n_rotations + 1), active

    def _rotated_z(self, rotations: int, rng: Any) -> np.ndarray:
        """The genes' z-scores under ``rotations`` random rotations: (m, rotations)."""
        m, d = self.effects.shape
        if self.basis is None:
            # limma's matrix(rnorm(rotations * d), rotations, d), filled by column
            normals = rng.standard_normal(rotations * d).reshape((rotations, d), order="F")
            normals /= np.sqrt(np.sum(normals * normals, axis=1))[:, None]
            t = self.effects @ normals.T
        else:
            normals = rng.standard_normal((rotations, m))
            length = np.sqrt(np.sum(normals * normals, axis=1) + rng.chisquare(d - m, rotations))
            t = self.basis @ (normals / length[:, None]).T
        s2 = (self.squares[:, None] - t * t) / self.df
        with np.errstate(invalid="ignore"):  # an infinite prior df: the prior, chosen below
            moderated = (self.df_prior[:, None] * self.var_prior[:, None] + self.df * s2) / (
                self.df_prior + self.df
            )[:, None]
        s2 = np.where(self.finite[:, None], moderated, self.var_prior[:, None])
        return zscore_t_bailey(t / np.sqrt(s2), self.df_total[:, None])

    def _statistics(self, z: np.ndarray, observed: bool = False) -> np.ndarray:
        """The set's statistics (down, up, up or down, mixed) of z-scores (m, k): (4, k); the
        gene weights as limma applies them (msq: the observed z signed by them, the rotated
        ones by their absolute roots)."""
        m = z.shape[0]
        out = np.zeros((4, z.shape[1]))
        w = None if self.gene_weights is None else self.gene_weights[:, None]
        if w is not None and self.statistic == "msq":
            if observed:
                signed, squares = w * z, np.abs(w) * z * z
                out[0] = np.where(signed < 0, squares, 0.0).sum(axis=0) / m
                out[1] = np.where(signed > 0, squares, 0.0).sum(axis=0) / m
                out[3] = squares.mean(axis=0)
                out[2] = np.maximum(out[0], out[1])
                return out
            z = np.sqrt(np.abs(w)) * z
            w = None
        if self.statistic == "floormean":
            floored = np.maximum(np.abs(z), _FLOOR)
            if w is not None:
                floored, z = w * floored, w * z
            out[0] = np.maximum(-z, 0.0).mean(axis=0)
            out[1] = np.maximum(z, 0.0).mean(axis=0)
            out[3] = floored.mean(axis=0)
            out[2] = np.maximum(out[0], out[1])
            return out
        if w is not None:
            z = w * z
        if self.statistic == "mean":
            mean = z.mean(axis=0)
            out[0], out[1], out[3] = -mean, mean, np.abs(z).mean(axis=0)
            return out  # limma's up-or-down of the mean is the smaller of the two counts
        if self.statistic == "mean50":  # the lower and the upper ⌈m/2⌉ of the set
            half = (m + 1) // 2
            ordered = np.sort(z, axis=0)
            out[0] = -ordered[:half].mean(axis=0)
            out[1] = ordered[m - half :].mean(axis=0)
            out[3] = np.sort(np.abs(z), axis=0)[m - half :].mean(axis=0)
        else:  # msq
            out[0] = (np.maximum(-z, 0.0) ** 2).mean(axis=0)
            out[1] = (np.maximum(z, 0.0) ** 2).mean(axis=0)
            out[3] = (z * z).mean(axis=0)
        out[2] = np.maximum(out[0], out[1])
        return out
