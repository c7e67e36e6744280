"""Synthetic cohorts with known ground truth, written chunk by chunk.

The generator draws gene-level and sample-level parameters up front (small: O(n_genes) and
O(n_samples)), then the matrix in fixed blocks of :data:`GENERATION_BLOCK` samples, each block
from its own random stream derived from ``seed``. The values therefore depend only on the seed,
never on the store's chunking, and the whole matrix is never held in memory.

Model, per sample ``s`` and gene ``g`` (``log2`` scale for ``distribution="lognormal"``)::

    eta[s, g] = base[g]
              + true_log2fc[g] * (group[s] == de_group[g])       # planted DE genes
              + batch_shift[batch[s], g]                          # batch effects
              + amplitude[g] * sigmoid(steep[g] * (factor[s, module[g]] - threshold[g]))
    lognormal: x = eta + noise_sd[g] * N(0, 1)
    negbinom:  x ~ NB(mean = library_size[s] * 2**eta[s, g], dispersion[g]), with
               2**base summing to 1 over genes (``base`` is the log2 proportion): a
               log-normal spread of proportions, and a share (LOW_EXPRESSED) of the genes
               planted nothing barely expressed (e^LOW_SHIFT of it), as in real RNA-seq:
               at the default depth ~27% of 20,000 genes below 1 CPM, ~10% zeros, and
               edgeR's filterByExpr keeping ~74%

Module genes respond to their module's latent factor through a gene-specific sigmoid (different
thresholds and slopes), a non-linear structure that a linear method needs several components
to describe.

Survival (``survival_genes > 0``): each survival gene g gets a latent value ``u[s, g] ~ N(0, 1)``
per sample, its expression is ``base[g] + u[s, g]`` (no batch shift; for ``lognormal`` no other
noise, so the stored value is the latent one), and survival times follow a proportional-hazards
model ``h(t) = h0 · exp(Σ_g true_log_hr[g] · u[s, g])`` with an exponential baseline (median 5
at ``u = 0``) and uniform censoring on [1, 15] (about a third censored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import CohortexError

if TYPE_CHECKING:  # the store, pandas and xarray load when a cohort is made, not on import
    import pandas as pd
    import xarray as xr

__all__ = ["GENERATION_BLOCK", "simulate"]

GENERATION_BLOCK = 256  # samples per random stream; fixed so chunking never changes the values

# negbinom: the share of genes (of those planted nothing) barely expressed, and how far below
# the others their log proportion lies (natural log)
LOW_EXPRESSED = 0.3
LOW_SHIFT = -5.0
DISTRIBUTIONS = ("lognormal", "negbinom")


def simulate(
    path: str | os.PathLike[str],
    n_samples: int,
    n_genes: int,
    *,
    groups: Mapping[str, float] | None = None,
    n_de: int | float = 0.05,
    log2fc: float | tuple[float, float] = (1.0, 2.0),
    batches: int | Mapping[str, float] | None = None,
    batch_effect: float = 0.3,
    modules: int = 0,
    module_size: int = 50,
    distribution: str = "lognormal",
    library_size: float = 1e7,
    survival_genes: int = 0,
    log_hr: float | tuple[float, float] = (0.3, 0.7),
    seed: int = 0,
    chunks: tuple[int, int] | None = None,
    compressor: Any = "lz4",
    overwrite: bool = False,
    progress: bool | None = None,
) -> xr.Dataset:
    """Simulate an expression cohort with planted DE genes, batches and co-expression modules.

    Parameters
    ----------
    path : str or path-like
        Destination store (see :func:`cohortex.create_cohort`).
    n_samples, n_genes : int
        Matrix shape.
    groups : mapping of str to float, default ``{"tumor": 0.5, "normal": 0.5}``
        Condition labels and their fractions (summing to 1); stored as ``condition``. Group
        sizes are the fractions rounded, every group getting at least 2 samples.
    n_de : int or float, default 0.05
        Number of DE genes, or a fraction of ``n_genes`` when below 1. With two groups a DE gene
        is shifted in the first group; with more, in one group drawn per gene (``de_group``).
    log2fc : float or (float, float), default (1.0, 2.0)
        Absolute log2 fold change of DE genes: fixed, or drawn uniformly from the range. The sign
        is random.
    batches : int or mapping of str to float, optional
        Number of equal batches (``batch1``, ...), or batch names and fractions; stored as
        ``batch``. Each batch shifts every gene by N(0, ``batch_effect``²) on the log2 scale.
    batch_effect : float, default 0.3
        Standard deviation of the batch shifts.
    modules : int, default 0
        Number of co-expression modules, each of ``module_size`` genes (disjoint from the DE
        genes) driven by one latent factor through a non-linear link.
    module_size : int, default 50
        Genes per module.
    distribution : {"lognormal", "negbinom"}, default "lognormal"
        ``"lognormal"`` writes log2 expression (``scale="log2"``); ``"negbinom"`` writes
        negative-binomial counts (``scale="counts"``) with library sizes around
        ``library_size``.
    library_size : float, default 1e7
        Median library size for ``"negbinom"``.
    survival_genes : int, default 0
        Genes (disjoint from the DE and module genes) whose expression sets each sample's
        hazard (see the module notes); with any, the samples get ``time`` and ``event``.
    log_hr : float or (float, float), default (0.3, 0.7)
        Absolute log hazard ratio per log2 unit of a survival gene: fixed, or drawn uniformly
        from the range; the sign is random. With one survival gene a per-gene Cox model
        estimates it without bias; with several, each gene's own model sees the others as
        noise, and hazard ratios are not collapsible: its estimate is smaller.
    seed : int, default 0
        The values depend only on the seed and the parameters, not on ``chunks``.
    chunks, compressor, overwrite, progress
        As for :func:`cohortex.create_cohort`.

    Returns
    -------
    xarray.Dataset
        The store, opened. Ground truth is kept as gene variables ``is_de`` (bool),
        ``true_log2fc`` (float; 0 for non-DE genes), ``de_group`` (str; "" for non-DE genes),
        ``module`` (int; -1 outside modules), for ``lognormal`` the noise's ``noise_sd`` (what
        no reconstruction of held-out samples can recover) and, with survival genes,
        ``true_log_hr`` (0 elsewhere); the latent factors as sample variables ``factor_0``,
        ``factor_1``, ..., and ``time`` and ``event`` (1: the event, 0: censored) with survival
        genes.
    """
    model = _Model(
        n_samples,
        n_genes,
        groups=groups,
        n_de=n_de,
        log2fc=log2fc,
        batches=batches,
        batch_effect=batch_effect,
        modules=modules,
        module_size=module_size,
        distribution=distribution,
        library_size=library_size,
        survival_genes=survival_genes,
        log_hr=log_hr,
        seed=seed,
    )
    from ._progress import progress_bar
    from .store import CohortWriter, open_cohort

    with CohortWriter(
        path,
        sample_ids=model.sample_ids,
        gene_ids=model.gene_ids,
        samples=model.samples,
        genes=model.genes,
        scale=model.scale,
        chunks=chunks,
        compressor=compressor,
        overwrite=overwrite,
        attrs={"simulated": 1, "seed": seed, "distribution": distribution},
    ) as writer:
        rows = writer.chunks[0]
        starts = range(0, n_samples, rows)
        with progress_bar(len(starts), "simulating", progress) as bar:
            for start in starts:
                stop = min(start + rows, n_samples)
                writer.write(slice(start, stop), slice(None), model.rows(start, stop))
                bar.update()
    return open_cohort(path)


def simulate_array(
    n_samples: int, n_genes: int, **kwargs: Any
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """The same model in memory, for tests and small examples.

    Parameters
    ----------
    n_samples, n_genes : int
    **kwargs
        The model parameters of :func:`simulate` (not ``path``, ``chunks``, ...).

    Returns
    -------
    expression : ndarray of shape (n_samples, n_genes), float32
    samples : DataFrame of n_samples rows
    genes : DataFrame of n_genes rows (with the ground truth)
    """
    model = _Model(n_samples, n_genes, **kwargs)
    return model.rows(0, n_samples), model.samples, model.genes


class _Model:
    def __init__(
        self,
        n_samples: int,
        n_genes: int,
        *,
        groups: Mapping[str, float] | None = None,
        n_de: int | float = 0.05,
        log2fc: float | tuple[float, float] = (1.0, 2.0),
        batches: int | Mapping[str, float] | None = None,
        batch_effect: float = 0.3,
        modules: int = 0,
        module_size: int = 50,
        distribution: str = "lognormal",
        library_size: float = 1e7,
        survival_genes: int = 0,
        log_hr: float | tuple[float, float] = (0.3, 0.7),
        seed: int = 0,
    ) -> None:
        import pandas as pd  # on use: importing cohortex stays light

        if int(n_samples) < 2 or int(n_genes) < 1:
            raise CohortexError(
                f"simulate() needs at least 2 samples and 1 gene; got n_samples={n_samples}, "
                f"n_genes={n_genes}."
            )
        if distribution not in DISTRIBUTIONS:
            raise CohortexError(
                f"The 'distribution' parameter of simulate() must be one of "
                f"{', '.join(repr(d) for d in DISTRIBUTIONS)}; got {distribution!r}."
            )
        self.n_samples, self.n_genes = int(n_samples), int(n_genes)
        self.distribution = distribution
        self.scale = "log2" if distribution == "lognormal" else "counts"
        self.seed = int(seed)
        groups = dict(groups) if groups is not None else {"tumor": 0.5, "normal": 0.5}
        group_names, group_sizes = _split(groups, self.n_samples, "groups", minimum=2)

        gene_rng = self._rng(0)
        sample_rng = self._rng(1)

        # ---- genes ----------------------------------------------------------------------
        n_de_genes = round(n_de * self.n_genes) if 0 < n_de < 1 else int(n_de)
        n_module_genes = int(modules) * int(module_size)
        if n_de_genes < 0 or modules < 0 or module_size < 1:
            raise CohortexError("n_de and modules must be non-negative, module_size positive.")
        if survival_genes < 0:
            raise CohortexError(f"survival_genes must be non-negative; got {survival_genes}.")
        if n_de_genes + n_module_genes + int(survival_genes) > self.n_genes:
            raise CohortexError(
                f"{n_de_genes} DE genes, {modules} modules of {module_size} genes and "
                f"{survival_genes} survival genes do not fit in {self.n_genes} genes."
            )
        order = gene_rng.permutation(self.n_genes)
        de_idx = np.sort(order[:n_de_genes])
        low, high = (
            (float(log2fc), float(log2fc))
            if isinstance(log2fc, int | float)
            else (float(log2fc[0]), float(log2fc[1]))
        )
        fold = np.zeros(self.n_genes)
        fold[de_idx] = gene_rng.uniform(low, high, n_de_genes) * gene_rng.choice(
            [-1, 1], n_de_genes
        )
        de_group_index = np.full(self.n_genes, -1)
        if len(group_names) == 2:
            de_group_index[de_idx] = 0
        else:
            de_group_index[de_idx] = gene_rng.integers(0, len(group_names), n_de_genes)
        module = np.full(self.n_genes, -1)
        for m in range(int(modules)):
            start = n_de_genes + m * module_size
            module[order[start : start + module_size]] = m
        self.module = module
        self.amplitude = gene_rng.uniform(1.0, 2.0, self.n_genes) * gene_rng.choice(
            [-1, 1], self.n_genes
        )
        self.steepness = gene_rng.uniform(5.0, 10.0, self.n_genes)
        self.threshold = gene_rng.normal(0.0, 1.0, self.n_genes)
        if distribution == "lognormal":
            self.base = gene_rng.normal(7.0, 2.0, self.n_genes)
            self.noise_sd = 0.1 + gene_rng.gamma(4.0, 0.1, self.n_genes)
        else:
            log_prop = gene_rng.normal(0.0, 1.5, self.n_genes)
            # genes barely expressed in the tissue, as in real RNA-seq (a fraction of them
            # below 1 CPM, zeros in many samples; what edgeR's filterByExpr leaves out): a
            # share of the genes planted nothing, from a stream of their own so that every
            # other draw stays as it was
            low_rng = self._rng(4)
            planted = np.zeros(self.n_genes, dtype=bool)
            planted[order[: n_de_genes + n_module_genes + int(survival_genes)]] = True
            barely = ~planted & (low_rng.uniform(size=self.n_genes) < LOW_EXPRESSED)
            log_prop[barely] += LOW_SHIFT
            prop = np.exp(log_prop)
            self.base = np.log2(prop / prop.sum())
            self.dispersion = np.exp(gene_rng.normal(np.log(0.1), 0.5, self.n_genes))
        self.fold = fold
        self.de_group_index = de_group_index
        batch_names: list[str] = []
        if batches is not None:
            batch_fractions = (
                {f"batch{i + 1}": 1.0 for i in range(int(batches))}
                if isinstance(batches, int | np.integer)
                else dict(batches)
            )
            total = sum(batch_fractions.values())
            batch_fractions = {k: v / total for k, v in batch_fractions.items()}
            batch_names, batch_sizes = _split(batch_fractions, self.n_samples, "batches", minimum=1)
            self.batch_shift = gene_rng.normal(0.0, batch_effect, (len(batch_names), self.n_genes))

        # ---- samples --------------------------------------------------------------------
        self.group = sample_rng.permutation(np.repeat(np.arange(len(group_names)), group_sizes))
        samples: dict[str, Any] = {"condition": np.asarray(group_names, dtype=object)[self.group]}
        self.batch = None
        if batch_names:
            self.batch = sample_rng.permutation(np.repeat(np.arange(len(batch_names)), batch_sizes))
            samples["batch"] = np.asarray(batch_names, dtype=object)[self.batch]
        self.factors = sample_rng.standard_normal((self.n_samples, int(modules)))
        for m in range(int(modules)):
            samples[f"factor_{m}"] = self.factors[:, m]
        if distribution == "negbinom":
            self.library = library_size * np.exp(sample_rng.normal(0.0, 0.3, self.n_samples))
            samples["library_size"] = self.library

        # ---- survival (its own random stream: the other draws do not change) ------------
        self.survival_idx = np.sort(
            order[n_de_genes + n_module_genes : n_de_genes + n_module_genes + int(survival_genes)]
        )
        self.true_log_hr = np.zeros(self.n_genes)
        if survival_genes:
            survival_rng = self._rng(3)
            low_hr, high_hr = (
                (float(log_hr), float(log_hr))
                if isinstance(log_hr, int | float)
                else (float(log_hr[0]), float(log_hr[1]))
            )
            k = self.survival_idx.size
            self.true_log_hr[self.survival_idx] = survival_rng.uniform(
                low_hr, high_hr, k
            ) * survival_rng.choice([-1, 1], k)
            self.latent = survival_rng.standard_normal((self.n_samples, k))
            risk = self.latent @ self.true_log_hr[self.survival_idx]
            event_time = survival_rng.exponential(1.0, self.n_samples) / (
                np.log(2.0) / 5.0 * np.exp(risk)
            )
            censor_time = survival_rng.uniform(1.0, 15.0, self.n_samples)
            samples["time"] = np.minimum(event_time, censor_time)
            samples["event"] = (event_time <= censor_time).astype(np.int64)

        width = len(str(self.n_samples))
        self.sample_ids = [f"S{i:0{width}d}" for i in range(1, self.n_samples + 1)]
        gwidth = len(str(self.n_genes))
        self.gene_ids = [f"G{i:0{gwidth}d}" for i in range(1, self.n_genes + 1)]
        self.samples = pd.DataFrame(samples, index=self.sample_ids)
        self.genes = pd.DataFrame(
            {
                "is_de": de_group_index >= 0,
                "true_log2fc": fold,
                "de_group": np.where(
                    de_group_index >= 0, np.asarray(group_names, dtype=object)[de_group_index], ""
                ).astype(object),
                "module": module,
                **({"true_log_hr": self.true_log_hr} if survival_genes else {}),
                **({"noise_sd": self.noise_sd} if distribution == "lognormal" else {}),
            },
            index=self.gene_ids,
        )
        self._cache: tuple[int, np.ndarray] | None = None

    def _rng(self, *stream: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, *stream])))

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` as float32, assembled from whole generation blocks."""
        first, last = start // GENERATION_BLOCK, (stop - 1) // GENERATION_BLOCK
        parts = [self._block(b) for b in range(first, last + 1)]
        joined = parts[0] if len(parts) == 1 else np.concatenate(parts)
        offset = first * GENERATION_BLOCK
        return joined[start - offset : stop - offset]

    def _block(self, index: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == index:
            return self._cache[1]
        start = index * GENERATION_BLOCK
        stop = min(start + GENERATION_BLOCK, self.n_samples)
        rng = self._rng(2, index)
        eta = np.broadcast_to(self.base.astype(np.float32), (stop - start, self.n_genes)).copy()
        group = self.group[start:stop]
        de = np.flatnonzero(self.de_group_index >= 0)
        eta[:, de] += (group[:, None] == self.de_group_index[de][None, :]) * self.fold[de].astype(
            np.float32
        )
        if self.batch is not None:
            shift = self.batch_shift[self.batch[start:stop]].astype(np.float32)
            shift[:, self.survival_idx] = 0.0  # survival genes: their latent value only
            eta += shift
        if self.survival_idx.size:
            eta[:, self.survival_idx] += self.latent[start:stop].astype(np.float32)
        for m in range(self.factors.shape[1]):
            genes = np.flatnonzero(self.module == m)
            z = self.factors[start:stop, m][:, None]
            link = 1.0 / (1.0 + np.exp(-self.steepness[genes] * (z - self.threshold[genes])))
            eta[:, genes] += (self.amplitude[genes] * link).astype(np.float32)
        if self.distribution == "lognormal":
            noise = rng.standard_normal((stop - start, self.n_genes), dtype=np.float32)
            noise[:, self.survival_idx] = 0.0
            block = eta + noise * self.noise_sd.astype(np.float32)
        else:
            mean = self.library[start:stop, None] * np.exp2(eta.astype(np.float64))
            size = 1.0 / self.dispersion
            block = rng.negative_binomial(size, size / (size + mean)).astype(np.float32)
        self._cache = (index, block)
        return block


def _split(
    fractions: Mapping[str, float], n: int, what: str, minimum: int
) -> tuple[list[str], np.ndarray]:
    """Names and sizes summing to ``n`` from fractions (largest remainders)."""
    names = [str(k) for k in fractions]
    values = np.asarray(list(fractions.values()), dtype=float)
    if not names or np.any(values <= 0) or not np.isclose(values.sum(), 1.0):
        raise CohortexError(
            f"The '{what}' parameter of simulate() must map names to positive fractions summing "
            f"to 1; got {dict(fractions)!r}."
        )
    exact = values * n
    sizes = np.floor(exact).astype(int)
    remainder_order = np.argsort(-(exact - sizes), kind="stable")
    sizes[remainder_order[: n - sizes.sum()]] += 1
    if np.any(sizes < minimum):
        small = [f"{k} ({s})" for k, s in zip(names, sizes, strict=True) if s < minimum]
        raise CohortexError(
            f"With {n} samples, these {what} get fewer than {minimum} samples: "
            + ", ".join(small)
            + "."
        )
    return names, sizes
