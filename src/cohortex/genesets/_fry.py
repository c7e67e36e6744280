"""limma's ``fry``: fast self-contained gene-set tests on the standardised effects of a fit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sparse
import xarray as xr
from scipy import special, stats

from .. import fdr as _fdr
from .._backend import dask_on, namespace, resolve_device, take_genes, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ..de._gene_columns import TASK_GENES, gene_columns
from ..de._least_squares import (
    check_design,
    design_matrix,
    sample_codes,
    sample_weights_of,
    weights_for,
)
from ..stats._ebayes import squeeze_var
from ..stats._householder import householder_effects, householder_effects_per_gene
from ._collection import GeneSets
from ._design import contrast_last

__all__ = ["FRY_EFFECTS", "GeneEffects", "SetFit", "fry"]

# float64 effects fry holds for the genes of the sets, (n_samples − p + 1) × genes: 2 GiB
FRY_EFFECTS = 2**28
STANDARDIZE = ("posterior.sd", "residual.sd", "p2", "none")
_QUADRATURE_NODES = 128  # statmod's gauss.quad.prob(128, "uniform"), as limma's fry


@shared_docs
def fry(
    cohort: CohortLike,
    design: Any,
    gene_sets: GeneSets,
    *,
    contrast: str | None = None,
    weights: Any = None,
    gene_weights: Any = None,
    block: str | Any = None,
    correlation: float | None = None,
    standardize: str = "posterior.sd",
    trend: bool = False,
    robust: bool = False,
    fdr: str = "bh",
    device: str = "auto",
) -> xr.Dataset:
    """Test whether the genes of each set change together, as limma's ``fry``.

    A self-contained test (is the set changed at all?, unlike :func:`camera`'s comparison
    with the other genes): each gene's effects of the fit (R's ``qr.qty``: the contrast's
    effect and its residual effects) are standardised by a robust residual variance — the
    sum of squared effects without the largest, moderated towards limma's prior
    (``standardize = "posterior.sd"``) — and a set's mean effect over its genes gives a t on
    the residual df ("directional": the genes move one way). The "mixed" p-value asks
    whether the genes change in either direction: Fry's beta approximation to the rotation
    distribution of ``Σ contrast effect²`` between the extreme eigenvalues of the set's
    effects (Wu et al. 2010; Giner & Smyth 2016).

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
        combination of them such as ``"group[T.c] - group[T.b]"`` (limma's contrast vector:
        the design reparametrised by ``contrastAsCoef``).
    weights : array of shape (n_samples, n_genes) or (n_samples,), optional
        Precision weights > 0, per observation (limma's ``weights``: every gene's effects in
        its own weighted basis) or per sample (``array.weights``). Default: the cohort's
        ``weights`` variable, as a :func:`voom <cohortex.de.voom>` result has.
    gene_weights : array of shape (n_genes,) or mapping of gene id to float, optional
        limma's ``gene.weights``: each gene's effects multiplied by its weight within every
        set — e.g. +1 and −1 for a signature's up and down genes, so that the set moves
        "up" when they move as the signature says (a mapping leaves the genes it does not
        name at 1).
    block : str or array of shape (n_samples,), optional
        Samples correlated within blocks, with ``correlation`` (required, as in limma).
    correlation : float, optional
    standardize : {"posterior.sd", "residual.sd", "p2", "none"}
        limma's choices: the robust variance moderated towards the prior of the genes'
        residual variances (default), as it is, squeezed towards its own prior, or none.
    trend, robust : bool
        limma's ``trend.var`` (the prior follows the genes' mean) and ``robust``.
    fdr : str, default "bh"
        Correction across the sets, of both p-values.
    {device}

    Returns
    -------
    xarray.Dataset
        On ``gene_set``, in the order of ``gene_sets``: ``n_genes`` (of the cohort),
        ``direction`` ("Up" or "Down"), ``pvalue`` (directional, two-sided), ``padj``,
        ``pvalue_mixed``, ``padj_mixed``. Attrs: ``contrast``, ``df``, ``standardize``.

    Raises
    ------
    CohortexError
        For missing values, weights ≤ 0, a block without its correlation, and when the sets'
        genes' effects would exceed :data:`FRY_EFFECTS` values (limma holds every effect of
        every gene; for cohorts that large use :func:`camera`).
    """
    if standardize not in STANDARDIZE:
        raise CohortexError(
            f"fry's 'standardize' must be one of {', '.join(map(repr, STANDARDIZE))}; got "
            f"{standardize!r}."
        )
    _fdr.check_method(fdr, "fry()")
    fitted = SetFit(cohort, design, gene_sets, contrast, weights, block, correlation, device, "fry")
    df, in_sets = fitted.df, fitted.in_sets
    contrast_effect, squares, largest, average = (
        fitted.summary[name] for name in ("contrast", "squares", "largest", "mean")
    )
    s2 = (squares - contrast_effect**2) / df  # limma: rowMeans(Effects[, -1]²)
    covariate = average if trend else None
    scale = _robust_variances(squares, largest, s2, df, standardize, covariate, robust)
    effects = fitted.effects.of_genes(in_sets)  # (df + 1) × genes of the sets
    if standardize != "none":
        effects = effects / np.sqrt(scale[in_sets])[None, :]
    weighted = fitted.gene_weights(gene_weights)
    if weighted is not None:
        effects = effects * weighted[None, :]
    return _set_tests(
        effects,
        fitted.positions,
        fitted.sets.names,
        df,
        fdr,
        {
            "test": "fry",
            "contrast": fitted.contrast,
            "df": float(df),
            "standardize": standardize,
            "trend": int(trend),
            "robust": int(robust),
            "weighted": int(fitted.effects.weighted),
            "gene_weights": int(weighted is not None),
        },
    )


class SetFit:
    """What limma's self-contained set tests (fry, roast) share: the design with the tested
    contrast last, the sets cut to the cohort's genes, and every gene's effects of the fit
    (:class:`GeneEffects`) summarised in one pass.

    Attributes
    ----------
    contrast : str
        The tested coefficient or combination.
    df : int
        The residual degrees of freedom, n − p.
    sets : GeneSets
        The sets with a gene of the cohort, their members cut to the cohort's genes.
    in_sets : ndarray of shape (n_genes,)
        True for the genes of any set.
    positions : list of ndarray
        Each set's genes as columns of :meth:`GeneEffects.of_genes` ``(in_sets)``.
    genes : list of str
        The cohort's gene ids.
    effects : GeneEffects
    summary : dict of str to ndarray of shape (n_genes,)
        :meth:`GeneEffects.summaries`, checked for missing values.
    """

    def __init__(
        self,
        cohort: CohortLike,
        design: Any,
        gene_sets: GeneSets,
        contrast: str | None,
        weights: Any,
        block: Any,
        correlation: float | None,
        device: str,
        caller: str,
    ) -> None:
        if (block is None) != (correlation is None):
            raise CohortexError(
                f"{caller}'s 'block' needs its 'correlation' (as limma's {caller}), and back."
            )
        data = as_cohort_matrix(cohort)
        n_samples = data.matrix.shape[0]
        x_design, names, _ = design_matrix(design, data.dataset, n_samples)
        check_design(x_design, names)
        self.contrast = contrast if contrast is not None else names[-1]
        x_design = contrast_last(x_design, names, self.contrast)
        n, p = x_design.shape
        self.df = n - p
        if self.df < 1:
            raise CohortexError(
                f"{caller}() needs residual degrees of freedom (more samples than columns)."
            )
        genes = [str(g) for g in data.gene_ids]
        self.genes = genes
        self.sets = gene_sets.restrict(genes, min_size=1)
        if not len(self.sets):
            raise CohortexError("No gene set has a gene of the cohort (translate the names?).")
        index = {g: i for i, g in enumerate(genes)}
        members = [np.fromiter((index[g] for g in m), dtype=np.int64) for m in self.sets.members]
        self.in_sets = np.zeros(len(genes), dtype=bool)
        self.in_sets[np.concatenate(members)] = True
        held = (self.df + 1) * int(self.in_sets.sum())
        if held > FRY_EFFECTS:
            raise CohortexError(
                f"{caller}() holds the {self.df + 1} effects of each of the sets' "
                f"{int(self.in_sets.sum())} genes, more than {FRY_EFFECTS:,} values; for a "
                "cohort this large use camera()."
            )
        position = np.cumsum(self.in_sets) - 1
        self.positions = [position[m] for m in members]
        self.effects = GeneEffects(data, x_design, weights, block, correlation, device)
        self.summary = self.effects.summaries()
        self.caller = caller
        if not np.all(np.isfinite(self.summary["squares"])):
            raise CohortexError(f"{caller}() needs complete values; the cohort has missing values.")

    def gene_weights(self, given: Any) -> np.ndarray | None:
        """limma's ``gene.weights`` of the genes of the sets (in :attr:`positions`' order):
        ``given`` one finite number per gene of the cohort, or a mapping (a pandas Series)
        from gene ids to weights, the genes it leaves out weighted 1; None for none."""
        if given is None:
            return None
        if isinstance(given, Mapping) or hasattr(given, "items"):  # a dict or a Series
            by_id = {str(g): w for g, w in given.items()}
            if not by_id.keys() & set(self.genes):
                raise CohortexError(
                    f"{self.caller}'s 'gene_weights' names none of the cohort's genes."
                )
            weights = np.array([by_id.get(g, 1.0) for g in self.genes], dtype=np.float64)
        else:
            weights = np.asarray(given, dtype=np.float64)
            if weights.shape != (len(self.genes),):
                raise CohortexError(
                    f"{self.caller}'s 'gene_weights' needs one weight per gene "
                    f"({len(self.genes)}); got shape {weights.shape}."
                )
        if not np.all(np.isfinite(weights)):
            raise CohortexError(f"{self.caller}'s 'gene_weights' must be finite numbers.")
        return weights[self.in_sets]


class GeneEffects:
    """Every gene's effects of a fit in R's Householder basis (limma's ``.lmEffects``): the
    values scaled by the root sample weights or each gene's root weights (then every gene
    has its own weighted design) and whitened within blocks (Cholesky), the design's last
    column the contrast (:func:`contrast_last`).

    Parameters
    ----------
    data : CohortMatrix
    x_design : ndarray of shape (n_samples, p)
    weights : array of shape (n_samples, n_genes) or (n_samples,), or None
        As :func:`fry` takes them (default the cohort's ``weights`` variable).
    block, correlation : optional
    device : str
    """

    def __init__(
        self,
        data: Any,
        x_design: np.ndarray,
        weights: Any,
        block: Any,
        correlation: float | None,
        device: str,
    ) -> None:
        n_samples = data.matrix.shape[0]
        self.x = dask_on(data.matrix, resolve_device(device), (min(n_samples, 2048), TASK_GENES))
        given = weights_for(weights, data, self.x)
        per_sample = sample_weights_of(weights, n_samples)
        self.arrays = [self.x] if given is None or per_sample is not None else [self.x, given]
        self.weighted = given is not None or per_sample is not None
        self.root = None if per_sample is None else np.sqrt(per_sample)
        design = x_design if self.root is None else x_design * self.root[:, None]
        self.whiten = None
        if block is not None:
            codes, _ = sample_codes(block, data, n_samples, "block")
            if not (isinstance(correlation, int | float | np.floating) and -1 < correlation < 1):
                raise CohortexError(
                    f"The 'correlation' parameter must be in (-1, 1); got {correlation!r}."
                )
            self.whiten = _whitening(codes, float(correlation))
        self.design = design
        self.p = x_design.shape[1]
        self._held = self.p + 3  # float64 values per gene and sample beside the inputs

    def shared_design(self) -> np.ndarray:
        """The design every gene shares, scaled by the root sample weights and whitened within
        blocks as the values are: (n_samples, p). Refused with weights per observation (then
        each gene has its own)."""
        if len(self.arrays) > 1:
            raise CohortexError("Weights per observation give every gene its own design.")
        return self.design if self.whiten is None else np.asarray(self.whiten @ self.design)

    def summaries(self) -> dict[str, np.ndarray]:
        """Per gene (host): the contrast's effect, the sum and the largest of the squared
        effects, and the mean value — one pass over every gene."""
        found = gene_columns(self.arrays, self._summaries, values_per_gene=self._held)
        return {name: np.asarray(to_host(v), dtype=np.float64) for name, v in found.items()}

    def of_genes(self, keep: np.ndarray) -> np.ndarray:
        """The effects of the genes where ``keep`` is true (host, (n − p + 1) × kept): the
        contrast's effect (the sign of its coefficient), then the residual effects."""
        chosen = [take_genes(a, keep) for a in self.arrays]
        found = gene_columns(chosen, self._effects_block, values_per_gene=self._held)
        return np.asarray(to_host(found["effects"]), dtype=np.float64)

    def _values(self, y: Any, w: Any) -> tuple[np.ndarray, Any]:
        """The transformed values, and the transformed designs per gene (None: shared)."""
        values = np.asarray(to_host(y), dtype=np.float64)
        if self.root is not None:
            values = values * self.root[:, None]
        designs = None
        if w is not None:
            root = np.sqrt(np.asarray(to_host(w), dtype=np.float64))
            if not np.all(np.isfinite(root)) or np.any(root <= 0):
                raise CohortexError("fry() needs weights > 0 (limma: 'weights must be positive').")
            values = values * root
            designs = root[:, :, None] * self.design[:, None, :]
        if self.whiten is not None:
            values = self.whiten @ values
            if designs is not None:
                n, g, p = designs.shape
                designs = (self.whiten @ designs.reshape(n, g * p)).reshape(n, g, p)
        return values, designs

    def _effects(self, y: Any, w: Any = None) -> np.ndarray:
        """The contrast's effect (sign of its coefficient) and the residual effects:
        ``(n − p + 1) × genes``."""
        values, designs = self._values(y, w)
        if designs is None:
            design = self.design if self.whiten is None else self.whiten @ self.design
            effects, sign = householder_effects(design, values)
            signs: Any = sign
        else:
            effects, signs = householder_effects_per_gene(designs, values)
        effects = effects[self.p - 1 :]
        effects[0] *= signs
        return effects

    def _summaries(self, y: Any, w: Any = None) -> dict[str, Any]:
        """:meth:`summaries` of a block of genes (on the device of ``y``, where gene_columns
        joins them)."""
        effects = self._effects(y, w)
        squared = effects * effects
        xp = namespace(y)
        return {
            "contrast": xp.asarray(effects[0]),
            "squares": xp.asarray(squared.sum(axis=0)),
            "largest": xp.asarray(squared.max(axis=0)),
            "mean": y.mean(axis=0),
        }

    def _effects_block(self, y: Any, w: Any = None) -> dict[str, Any]:
        return {"effects": namespace(y).asarray(self._effects(y, w))}


def _whitening(codes: np.ndarray, correlation: float) -> Any:
    """``R⁻ᵀ`` of limma's ``chol(cormatrix)`` (sparse, n × n): block by block, each block's
    samples in their order (the factor has no entry between blocks)."""
    n = codes.size
    rows, columns, values = [], [], []
    for b in np.unique(codes):
        samples = np.flatnonzero(codes == b)
        m = samples.size
        within = np.full((m, m), correlation)
        np.fill_diagonal(within, 1.0)
        inverse = np.linalg.inv(np.linalg.cholesky(within))  # L⁻¹ = R⁻ᵀ, lower
        r, c = np.nonzero(np.tril(np.ones((m, m), dtype=bool)))
        rows.append(samples[r])
        columns.append(samples[c])
        values.append(inverse[r, c])
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))), shape=(n, n)
    )


def _robust_variances(
    squares: np.ndarray,
    largest: np.ndarray,
    s2: np.ndarray,
    df: int,
    standardize: str,
    covariate: np.ndarray | None,
    robust: bool,
) -> np.ndarray:
    """limma's ``s2.robust``: the effects' sum of squares without the largest, over its
    expectation, then moderated as ``standardize`` says (every gene of the cohort)."""
    nodes, node_weights = special.roots_legendre(_QUADRATURE_NODES)
    nodes, node_weights = (nodes + 1.0) / 2.0, node_weights / 2.0  # on [0, 1]
    expected_largest = float(np.sum((df + 1) * nodes**df * stats.chi2.ppf(nodes, 1) * node_weights))
    robust_s2 = (squares - largest) / (df + 1 - expected_largest)
    if standardize == "p2":
        return squeeze_var(robust_s2, 0.92 * df, covariate=covariate, robust=robust).s2_post
    if standardize == "posterior.sd":
        prior = squeeze_var(s2, float(df), covariate=covariate, robust=robust)
        df_prior = np.broadcast_to(np.asarray(prior.df_prior, dtype=np.float64), s2.shape)
        s2_prior = np.broadcast_to(np.asarray(prior.s2_prior, dtype=np.float64), s2.shape)
        with np.errstate(invalid="ignore"):
            posterior = (0.92 * df * robust_s2 + df_prior * s2_prior) / (0.92 * df + df_prior)
        return np.where(np.isfinite(df_prior), posterior, s2_prior)
    return robust_s2


def _set_tests(
    effects: np.ndarray,
    members: list[np.ndarray],
    names: Any,
    df: int,
    fdr: str,
    attrs: dict[str, Any],
) -> xr.Dataset:
    """limma's ``.fryEffects`` of every set: the directional t of the mean effect and the
    mixed test's beta approximation."""
    n_sets = len(members)
    t = np.empty(n_sets)
    mixed = np.empty(n_sets)
    sizes = np.array([m.size for m in members])
    for i, m in enumerate(members):
        chosen = effects[:, m]  # effects × genes
        mean = chosen.mean(axis=1)
        t[i] = mean[0] / np.sqrt(np.mean(mean[1:] ** 2))
        mixed[i] = _mixed_pvalue(chosen.T) if m.size > 1 else np.nan
    pvalue = 2.0 * stats.t.sf(np.abs(t), df)
    mixed = np.where(sizes == 1, pvalue, mixed)
    return xr.Dataset(
        {
            "n_genes": ("gene_set", sizes),
            "direction": ("gene_set", np.where(t < 0, "Down", "Up").astype(object)),
            "pvalue": ("gene_set", pvalue),
            "padj": ("gene_set", np.asarray(_fdr.adjust(pvalue, fdr))),
            "pvalue_mixed": ("gene_set", mixed),
            "padj_mixed": ("gene_set", np.asarray(_fdr.adjust(mixed, fdr))),
        },
        coords={"gene_set": np.asarray(names, dtype=object)},
        attrs=attrs,
    )


def _mixed_pvalue(effects: np.ndarray) -> float:
    """Fry's beta approximation for one set's effects (genes × effects): limma's squared
    singular values, here the eigenvalues of the smaller Gram matrix (~4× faster than the
    SVD at 2,000 samples)."""
    genes, effect_count = effects.shape
    gram = effects @ effects.T if genes <= effect_count else effects.T @ effects
    eigen = np.maximum(np.linalg.eigvalsh(gram)[::-1], 0.0)  # decreasing
    count = eigen.size
    d = count - 1
    beta_mean = 1.0 / count
    beta_var = d / count / count / (count / 2.0 + 1.0)
    spread = eigen[0] - eigen[-1]
    observed = (np.sum(effects[:, 0] ** 2) - eigen[-1]) / spread
    f_mean = (np.sum(eigen) * beta_mean - eigen[-1]) / spread
    # A' COV A with COV = beta_var on the diagonal and -beta_var / d off it
    f_var = beta_var * (np.sum(eigen**2) - (np.sum(eigen) ** 2 - np.sum(eigen**2)) / d) / spread**2
    total = f_mean * (1.0 - f_mean) / f_var - 1.0
    alpha = total * f_mean
    return float(stats.beta.sf(observed, alpha, total - alpha))
