"""A deep autoencoder of the cohort and the gene modules of its hidden layers.

After Dwivedi, Tjärnberg, Tegnér & Gustafsson (Nat. Commun. 2020): genes scaled to [0, 1], an
MSE loss, hidden nodes read by "lighting them up" — one node at its maximum, the others of its
layer at their training mean — and ranking the genes by the change of the output. Their network
(three sigmoid layers of 512, Adam at 1e-4) is :meth:`Autoencoder.dwivedi`; the default is
built around a linear PCA path with a curve per gene on its output (``ae/_network.py``) and
trained by a current recipe (GELU, AdamW with warm-up and cosine decay, input dropout, gradient
clipping), which on held-out samples reconstructs better than PCA of the code's width
(benchmarks/RESULTS.md).

A cohort that fits the training device's budget (:func:`cache_budget`: 1 GiB on a CPU, a
sixth of the free memory on a GPU) is read once, chunk by chunk, into one tensor there. A
larger one is streamed: every epoch visits the stored row chunks in a random order, keeps each
chunk's training samples, shuffles them and feeds mini-batches, so a cohort larger than memory
trains; the next chunk is decompressed by a thread and, on a GPU, copied from page-locked
memory on a stream of its own while the current one trains. The min–max scaling is fitted on
the training split only. A validation split (``validation``) gives the held-out loss for early
stopping and :meth:`Autoencoder.score`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask
import dask.array as da
import numpy as np
import torch
import xarray as xr
from torch import nn

from .._backend import dask_on, namespace, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix
from .._errors import CohortexError
from .._memory import release_free_memory
from .._progress import progress_bar
from ._network import ACTIVATIONS, Network

__all__ = ["ACTIVATIONS", "Autoencoder", "baselines", "cache_budget"]

# format 4: the network of ae/_network.py with its optional output curves; format 3 (the same
# network without them) and formats 1 and 2 (plain sigmoid stacks saved as one nn.Sequential)
# still load. Since format 2 the checksum covers every tensor's name, dtype and shape; format 1
# hashed the bytes alone.
_FORMAT = "cohortex-autoencoder-4"
_FORMATS = ("cohortex-autoencoder-1", "cohortex-autoencoder-2", "cohortex-autoencoder-3", _FORMAT)
_CHECKPOINT = "cohortex-autoencoder-checkpoint-1"
# a cohort up to this size (of the chosen genes, float32) is read once and kept on the device
CACHE_BYTES = 1 << 30
# on a GPU, up to this share of its free memory (at least CACHE_BYTES): the kept matrix, the
# float64 copy of its training rows for the PCA start (twice its size) and the network's
# working memory must all fit, so a sixth
GPU_CACHE_SHARE = 1 / 6
# the PCA start of a cohort in device memory: an eigendecomposition of the gene × gene
# covariance up to this many genes (embed's exact limit too), a randomized SVD above
EXACT_PCA_GENES = 4096
# rows per float64 block of that covariance
PCA_BLOCK_ROWS = 2048
# the output curves' learning rate over the network's: three weights per gene, each fitted from
# every sample, do best at about 1e-2 (on the simulator, held out: 3e-3 reached less by the
# time the layers overfit, k = 32: 0.381 against 0.383; 3e-2 stopped early at k = 4: 0.164
# against 0.197)
CURVE_LR_FACTOR = 30
# what a saved model records besides its widths, seed, genes and history
_SETTINGS = (
    "activation",
    "pca_path",
    "output_curve",
    "lr",
    "weight_decay",
    "schedule",
    "warmup",
    "dropout",
    "clip",
)


def cache_budget(device: torch.device) -> int:
    """Bytes of a cohort (float32) that training keeps on ``device`` instead of re-reading it
    every epoch: :data:`CACHE_BYTES` on a CPU (the host's memory is shared with everything
    else), :data:`GPU_CACHE_SHARE` of the free memory on a GPU (at least ``CACHE_BYTES``), where
    reading chunks from the store would leave the device waiting every epoch."""
    if device.type != "cuda":
        return CACHE_BYTES
    free, _ = torch.cuda.mem_get_info(device)
    return max(CACHE_BYTES, int(free * GPU_CACHE_SHARE))


class Autoencoder:
    """Dense autoencoder of the cohort's genes, its hidden layers read as gene modules.

    Parameters
    ----------
    hidden : tuple of int, default (256, 16, 256)
        Widths of the hidden layers. With ``pca_path`` the first narrowest is the code.
    activation : {"gelu", "elu", "relu", "tanh", "sigmoid"}, default "gelu"
        Of the hidden layers (the code of a PCA-path network is linear). Without the PCA path
        the output is a sigmoid (genes are scaled to [0, 1]); with it, linear.
    pca_path : bool, default True
        Build the network around a linear path that starts as PCA of the training split
        (``z = Vᵀ(x − μ) + f(x)``, ``x̂ = μ + W z + g(z)``, see ``ae/_network.py``): training
        starts from PCA's reconstruction, and early stopping keeps it when the non-linear
        layers add nothing on the validation split. False gives the plain stack of Dwivedi et al.
    output_curve : bool, default True
        With the PCA path, pass each gene's reconstruction through a curve of its own (three
        weights, starting flat; see ``ae/_network.py``), learnt at ``CURVE_LR_FACTOR`` times
        ``lr`` without weight decay: genes that saturate along their module's factor, which a
        linear code needs several components for and a dense decoder overfits, are bent per
        gene.
    lr : float, default 3e-4
        Peak learning rate of AdamW (better held out than 1e-3 at every code width measured).
    weight_decay : float, default 1e-4
        AdamW's decoupled weight decay (0: Adam).
    schedule : {"cosine", "constant"}, default "cosine"
        ``"cosine"``: linear warm-up over the first ``warmup`` of the steps, then cosine decay
        to 0 at ``max_epochs``.
    warmup : float, default 0.05
    dropout : float, default 0.2
        Input dropout of the non-linear encoder (a denoising autoencoder); PCA path only.
    clip : float or None, default 1.0
        Largest gradient norm per step (None: no clipping).
    batch_size : int, default 128
    max_epochs : int, default 100
    patience : int, default 5
        Stop after this many epochs without a better validation loss; the best weights are kept.
        (10 costs 16–19% more epochs for at most 0.00014 more held-out variance in
        ``benchmarks/ae_versus_pca.py``; ``benchmarks/RESULTS.md``.)
    validation : float, default 0.1
        Fraction of samples held out (never used to fit weights, scaling or the PCA start).
    n_top_genes : int, optional
        Keep only this many most variable genes.
    seed : int, default 0
        The split, the initial weights, dropout and the batch order; the same seed gives the
        same weights on the CPU.
    device : {"auto", "cpu", "gpu"}, default "auto"
        On a GPU, training runs in bfloat16 autocast.
    progress : bool or None, default None
        A bar per epoch with the loss (``None``: only on a terminal).

    Attributes
    ----------
    history_ : list of dict
        ``epoch``, ``train_loss``, ``validation_loss`` per epoch.
    genes_ : ndarray of str
        The genes the model was trained on.
    start_loss_ : float
        The validation loss before the first step (PCA's, with the PCA path).
    epoch_seconds_ : list of float
        Wall time of each epoch of the last ``fit`` (its training sweep and validation; the
        one-off passes before and after are not in it).

    See Also
    --------
    Autoencoder.dwivedi : the published network and training (three sigmoid layers of 512).
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (256, 16, 256),
        *,
        activation: str = "gelu",
        pca_path: bool = True,
        output_curve: bool = True,
        lr: float = 3e-4,
        weight_decay: float = 1e-4,
        schedule: str = "cosine",
        warmup: float = 0.05,
        dropout: float = 0.2,
        clip: float | None = 1.0,
        batch_size: int = 128,
        max_epochs: int = 100,
        patience: int = 5,
        validation: float = 0.1,
        n_top_genes: int | None = None,
        seed: int = 0,
        device: str = "auto",
        progress: bool | None = None,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise CohortexError(
                f"The 'activation' parameter must be one of {', '.join(ACTIVATIONS)}; "
                f"got {activation!r}."
            )
        if schedule not in ("cosine", "constant"):
            raise CohortexError(
                f"The 'schedule' parameter must be 'cosine' or 'constant'; got {schedule!r}."
            )
        if not hidden or any(int(h) < 1 for h in hidden):
            raise CohortexError(f"The 'hidden' layer widths must be positive; got {hidden!r}.")
        if not 0 < validation < 1:
            raise CohortexError(f"The 'validation' fraction must be in (0, 1); got {validation}.")
        for name, value in (
            ("batch_size", batch_size),
            ("max_epochs", max_epochs),
            ("patience", patience),
            ("n_top_genes", 1 if n_top_genes is None else n_top_genes),
        ):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise CohortexError(
                    f"The '{name}' parameter of Autoencoder must be a positive whole number; "
                    f"got {value!r}."
                )

        def number(value: Any) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool)

        for setting, given, allowed in (
            ("lr", lr, number(lr) and 0 < lr < np.inf),
            ("weight_decay", weight_decay, number(weight_decay) and 0 <= weight_decay < np.inf),
            ("warmup", warmup, number(warmup) and 0 <= warmup < 1),
            ("dropout", dropout, number(dropout) and 0 <= dropout < 1),
            ("clip", clip, clip is None or (number(clip) and 0 < clip < np.inf)),
        ):
            if not allowed:
                raise CohortexError(
                    f"The '{setting}' parameter of Autoencoder is out of range; got {given!r}."
                )
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        self.pca_path = bool(pca_path)
        self.output_curve = bool(output_curve)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.schedule = schedule
        self.warmup = float(warmup)
        self.dropout = float(dropout)
        self.clip = None if clip is None else float(clip)
        self.batch_size = int(batch_size)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.validation = float(validation)
        self.n_top_genes = n_top_genes
        self.seed = int(seed)
        self.device = device
        self.progress = progress
        self.history_: list[dict[str, float]] = []
        self.genes_: Any = None  # ndarray of gene ids once fitted
        self._network: Network | None = None

    @classmethod
    def dwivedi(cls, **overrides: Any) -> Autoencoder:
        """Dwivedi et al.'s network and training: three sigmoid layers of 512, a sigmoid
        output, Adam at 1e-4 with a constant rate, batches of 256, no dropout or clipping.

        Kept so that the published seed study reproduces; ``overrides`` change any setting.
        """
        settings: dict[str, Any] = {
            "hidden": (512, 512, 512),
            "activation": "sigmoid",
            "pca_path": False,
            "output_curve": False,
            "lr": 1e-4,
            "weight_decay": 0.0,
            "schedule": "constant",
            "warmup": 0.0,
            "dropout": 0.0,
            "clip": None,
            "batch_size": 256,
            "patience": 10,  # as when the seed study was reproduced
        }
        settings.update(overrides)
        return cls(settings.pop("hidden"), **settings)

    # ---------------------------------------------------------------------------- training

    def fit(
        self,
        cohort: CohortLike,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
    ) -> Autoencoder:
        """Train on a cohort (store, Dataset or samples × genes array).

        Parameters
        ----------
        cohort : store path, xarray.Dataset or array of shape (n_samples, n_genes)
        checkpoint : path, optional
            Where to write the training state (weights, optimiser, random streams, history)
            every ``checkpoint_every`` epochs. Each write replaces the previous one atomically,
            so a run killed while writing leaves the last complete checkpoint.
        checkpoint_every : int, default 1
        resume : bool, default False
            Continue from ``checkpoint``, which must have been written by a model of the same
            settings on the same cohort. The run ends with the weights an uninterrupted run
            would have reached (on the same device).

        Returns
        -------
        Autoencoder
            ``self``, fitted.
        """
        if resume and checkpoint is None:
            raise CohortexError("resume=True needs the 'checkpoint' path to resume from.")
        if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise CohortexError(
                f"The 'checkpoint_every' parameter must be a positive whole number; got "
                f"{checkpoint_every!r}."
            )
        data = as_cohort_matrix(cohort)
        n_samples, n_genes = data.matrix.shape
        if n_samples < 4:
            raise CohortexError(f"An autoencoder needs at least 4 samples; got {n_samples}.")
        genes = np.arange(n_genes)
        if self.n_top_genes is not None and self.n_top_genes < n_genes:
            # from the stored chunks (whole rows of every gene would be copied to make them);
            # the variances of device chunks are a device array: the choice is made on the host
            stored = dask_on(data.matrix, resolve_device(self.device), (1024, -1))
            variance = np.asarray(to_host(da.nanvar(stored, axis=0, ddof=1).compute()))
            genes = np.sort(np.argsort(-np.nan_to_num(variance, nan=-1.0))[: self.n_top_genes])
        x = self._rows(data.matrix, genes if len(genes) < n_genes else None)
        self.genes_ = np.asarray(data.gene_ids)[genes]
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(n_samples)
        n_validation = max(1, round(self.validation * n_samples))
        self.validation_index_ = np.sort(order[:n_validation])
        training = np.ones(n_samples, dtype=bool)
        training[self.validation_index_] = False
        budget = cache_budget(self._torch_device())
        cache_all = n_samples * x.shape[1] * 4 <= budget
        # the validation rows come out of the same read as the scaling (kept if they fit)
        keep_held = not cache_all and n_validation * x.shape[1] * 4 <= budget
        whole, held = None, None
        if cache_all:  # a cohort that fits is read once: its scaling comes from that copy
            whole, low, high, n_nan = self._read_whole(x, training)
        else:
            low, high, n_nan, held = dask.compute(
                x[training].min(axis=0),
                x[training].max(axis=0),
                da.isnan(x).sum(),
                x[self.validation_index_] if keep_held else None,
            )
        if int(n_nan):
            raise CohortexError(
                f"The autoencoder needs complete data; the matrix holds {int(n_nan)} NaN values."
            )
        self.minimum_ = np.asarray(to_host(low), dtype=np.float32)
        span = np.asarray(to_host(high), dtype=np.float32) - self.minimum_
        self.span_ = np.where(span > 0, span, 1.0).astype(np.float32)

        torch_device = self._torch_device()
        torch.manual_seed(self.seed)
        self._network = self._new_network(len(genes)).to(torch_device)
        self._cache = None
        self._held = None
        if whole is not None:  # kept on the device, scaled where it lies
            self._cache = (x, self._scale(whole))
        elif keep_held:
            self._held = (x, ~training, self._scaled_tensor(held))
        if self.pca_path:
            self._network.start_at_pca(*self._training_pca(x, training))
        release_free_memory()  # what the reading and the PCA start freed, before training
        curves = [self._network.curve_weight] if self._network.output_curve else []
        layers = [p for p in self._network.parameters() if all(p is not c for c in curves)]
        groups = [{"params": layers, "lr_factor": 1.0, "weight_decay": self.weight_decay}]
        if curves:
            groups.append({"params": curves, "lr_factor": CURVE_LR_FACTOR, "weight_decay": 0.0})
        optimiser = torch.optim.AdamW(
            groups,
            lr=self.lr,
            # one kernel over all parameters instead of a loop of small ops: the step was a
            # quarter of a CPU epoch of the 3 × 512 network, a twentieth with it
            fused=True,
        )
        steps_per_epoch = self._steps_per_epoch(x, training)
        total_steps = steps_per_epoch * self.max_epochs
        loss_function = nn.MSELoss()
        self.history_ = []
        self.start_loss_ = self._loss(x, ~training)
        best, best_state, stale, first_epoch, step = np.inf, None, 0, 1, 0
        if self.pca_path:  # the PCA start is a candidate: early stopping may keep it
            best, best_state = self.start_loss_, self._state_copy()
        if resume:
            assert checkpoint is not None
            saved = self._read_checkpoint(checkpoint, n_samples)
            self._network.load_state_dict(saved["state"])
            optimiser.load_state_dict(saved["optimiser"])
            rng.bit_generator.state = json.loads(saved["numpy_rng"])
            torch.set_rng_state(saved["torch_rng"])
            if torch_device.type == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(saved["cuda_rng"], torch_device)
            self.history_ = json.loads(saved["history"])
            best, stale = float(saved["best"]), int(saved["stale"])
            best_state = saved["best_state"] or None
            first_epoch, step = int(saved["epoch"]) + 1, int(saved["step"])
            if stale >= self.patience:
                first_epoch = self.max_epochs + 1  # it had stopped early: nothing left to do
        with progress_bar(self.max_epochs, "training", self.progress, unit="epoch") as bar:
            bar.update(first_epoch - 1)
            self.epoch_seconds_ = []
            for epoch in range(first_epoch, self.max_epochs + 1):
                epoch_start = time.perf_counter()
                self._network.train()
                # summed on the training device: one transfer per epoch, not a sync per step
                running = torch.zeros((), dtype=torch.float64, device=torch_device)
                count = 0
                for batch in self._batches(x, training, rng, shuffle=True):
                    rate = self._learning_rate(step, total_steps)
                    for group in optimiser.param_groups:
                        group["lr"] = rate * group["lr_factor"]
                    optimiser.zero_grad()
                    with self._autocast():
                        loss = loss_function(self._network(batch), batch)
                    loss.backward()
                    if self.clip is not None:
                        nn.utils.clip_grad_norm_(self._network.parameters(), self.clip)
                    optimiser.step()
                    step += 1
                    running += loss.detach().double() * batch.shape[0]
                    count += batch.shape[0]
                total = float(running)
                validation_loss = self._loss(x, ~training)
                self.history_.append(
                    {
                        "epoch": epoch,
                        "train_loss": total / max(count, 1),
                        "validation_loss": validation_loss,
                    }
                )
                self.epoch_seconds_.append(time.perf_counter() - epoch_start)
                bar.set_postfix(loss=f"{total / max(count, 1):.5f}", val=f"{validation_loss:.5f}")
                bar.update()
                if validation_loss < best - 1e-12:
                    best, stale = validation_loss, 0
                    best_state = self._state_copy()
                else:
                    stale += 1
                if checkpoint is not None and (
                    epoch % checkpoint_every == 0
                    or epoch == self.max_epochs
                    or stale >= self.patience
                ):
                    self._write_checkpoint(
                        checkpoint,
                        n_samples=n_samples,
                        epoch=epoch,
                        step=step,
                        optimiser=optimiser,
                        rng=rng,
                        best=best,
                        best_state=best_state,
                        stale=stale,
                    )
                if stale >= self.patience:
                    break
        if best_state is not None:
            self._network.load_state_dict(best_state)
        self._layer_statistics(x, training)
        self._validation_cache = (x, ~training)
        self._cache = self._held = None
        return self

    def _new_network(self, n_genes: int) -> Network:
        return Network(
            n_genes,
            self.hidden,
            self.activation,
            pca_path=self.pca_path,
            dropout=self.dropout,
            output_curve=self.output_curve,
        )

    def _state_copy(self) -> dict[str, torch.Tensor]:
        assert self._network is not None
        return {k: v.detach().clone() for k, v in self._network.state_dict().items()}

    def _learning_rate(self, step: int, total_steps: int) -> float:
        """Linear warm-up, then cosine decay to 0 at the last step (or constant)."""
        if self.schedule == "constant":
            return self.lr
        warm = round(self.warmup * total_steps)
        if step < warm:
            return self.lr * (step + 1) / warm
        progress = (step - warm) / max(total_steps - warm, 1)
        return self.lr * 0.5 * (1.0 + float(np.cos(np.pi * min(progress, 1.0))))

    def _steps_per_epoch(self, x: da.Array, training: np.ndarray) -> int:
        if self._cache is not None:
            return -(-int(training.sum()) // self.batch_size)
        edges = np.cumsum((0, *x.chunks[0]))
        counts = [int(training[a:b].sum()) for a, b in itertools.pairwise(edges)]
        return sum(-(-c // self.batch_size) for c in counts)

    def _read_whole(
        self, x: da.Array, training: np.ndarray
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, int]:
        """The cohort as one float32 tensor on the training device, filled chunk by chunk so
        that the host holds one chunk at a time (the next decompressed in a background thread
        while the last is copied), with the training rows' minimum and maximum per gene (host
        arrays of shape (n_genes,)) and the count of NaN values, all from that one read."""
        device = self._torch_device()
        whole = torch.empty(x.shape, dtype=torch.float32, device=device)
        low = torch.full((x.shape[1],), torch.inf, device=device)
        high = torch.full((x.shape[1],), -torch.inf, device=device)
        nan_seen = torch.zeros((), dtype=torch.bool, device=device)
        edges = np.cumsum((0, *x.chunks[0]))

        def read(c: int) -> Any:
            return x[edges[c] : edges[c + 1]].compute()

        with ThreadPoolExecutor(max_workers=1) as reader:
            upcoming = reader.submit(read, 0)
            for c in range(len(edges) - 1):
                chunk = upcoming.result()
                if c + 2 < len(edges):
                    upcoming = reader.submit(read, c + 1)
                block = whole[edges[c] : edges[c + 1]]
                block.copy_(self._device_tensor(chunk))
                keep = training[edges[c] : edges[c + 1]]
                if not keep.all():  # validation rows: only their NaN matter
                    held = torch.as_tensor(np.flatnonzero(~keep), device=device)
                    nan_seen |= torch.isnan(block[held]).any()
                if keep.any():  # amin and amax carry a training row's NaN into low and high
                    rows = block if keep.all() else block[torch.as_tensor(keep, device=device)]
                    low = torch.minimum(low, rows.amin(dim=0))
                    high = torch.maximum(high, rows.amax(dim=0))
        n_nan = int(torch.isnan(whole).sum()) if bool(nan_seen | torch.isnan(low).any()) else 0
        return whole, low.cpu().numpy(), high.cpu().numpy(), n_nan

    def _device_tensor(self, block: Any) -> torch.Tensor:
        """Rows read from the cohort (NumPy or CuPy) as float32 on the training device."""
        device = self._torch_device()
        if isinstance(block, np.ndarray):
            return torch.as_tensor(np.asarray(block, dtype=np.float32)).to(device)
        return torch.from_dlpack(block.astype("float32")).to(device)  # CuPy, through DLPack

    def _scaled_tensor(self, block: Any) -> torch.Tensor:
        """Rows read from the cohort (NumPy or CuPy), scaled, as a tensor on the training
        device."""
        return self._scale(self._device_tensor(block))

    def _scale(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` (rows on the training device) min–max scaled in place."""
        low = torch.as_tensor(self.minimum_, device=tensor.device)
        return tensor.sub_(low).div_(torch.as_tensor(self.span_, device=tensor.device))

    def _training_pca(
        self, x: da.Array, training: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, principal axes and the variance along each, of the scaled training rows:
        shapes (n_genes,), (n_genes, ≤ code width) and (≤ code width,).

        Up to EXACT_PCA_GENES genes: exact, from the float64 covariance summed over blocks of
        rows (of the kept copy, or read chunk by chunk), so that no float64 copy of the whole
        training split is made. Above: a randomized SVD, by torch of the kept copy or by
        :func:`cohortex.embed.pca` from the chunks.
        """
        rows = np.flatnonzero(training)
        width = min(min(self.hidden), len(rows) - 1, x.shape[1])
        if x.shape[1] <= EXACT_PCA_GENES:
            return self._exact_pca(self._training_blocks(x, training), x.shape[1], width)
        if self._cache is None:
            from ..embed import pca

            xp = namespace(x)
            low, span = xp.asarray(self.minimum_), xp.asarray(self.span_)
            train = (x[rows].astype(np.float64) - low) / span
            mean = np.asarray(to_host(train.mean(axis=0).compute()), dtype=np.float64)
            found = pca(train, width, device=resolve_device(self.device), seed=self.seed)
            axes = np.asarray(to_host(found["loadings"].values), dtype=np.float64)[:, :width]
            variances = np.asarray(to_host(found["explained_variance"].values), dtype=np.float64)
            return mean, axes, variances[:width]
        cache = self._cache[1]
        train = cache[torch.as_tensor(rows, device=cache.device)].double()
        mean_t = train.mean(dim=0)
        train -= mean_t
        generator_state = torch.get_rng_state()
        torch.manual_seed(self.seed)
        _, values_t, axes_t = torch.svd_lowrank(train, q=min(width + 10, *train.shape), niter=4)
        torch.set_rng_state(generator_state)  # the weights' stream is left as it was
        variances_t = values_t[:width] ** 2 / max(len(rows) - 1, 1)
        return mean_t.cpu().numpy(), axes_t[:, :width].cpu().numpy(), variances_t.cpu().numpy()

    def _training_blocks(self, x: da.Array, training: np.ndarray) -> Iterator[torch.Tensor]:
        """The scaled training rows, a block at a time, on the training device."""
        if self._cache is not None:
            cache = self._cache[1]
            index = torch.as_tensor(np.flatnonzero(training), device=cache.device)
            # one buffer for every block: blocks allocated and freed in turn grow the host heap
            buffer = torch.empty((PCA_BLOCK_ROWS, cache.shape[1]), device=cache.device)
            for block in index.split(PCA_BLOCK_ROWS):
                yield torch.index_select(cache, 0, block, out=buffer[: len(block)])
            return
        edges = np.cumsum((0, *x.chunks[0]))
        for a, b in itertools.pairwise(edges):
            wanted = np.flatnonzero(training[a:b])
            if len(wanted):
                block = self._scaled_tensor(x[a:b].compute())
                yield block[torch.as_tensor(wanted, device=block.device)]

    @staticmethod
    def _exact_pca(
        blocks: Iterator[torch.Tensor], n_genes: int, width: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, leading ``width`` axes and the variances along them from float64 sums over
        blocks of rows, each block shifted by the first block's mean so that the covariance is
        not the small difference of two large sums."""
        first = next(blocks)
        shift = first.double().mean(dim=0)
        total = torch.zeros(n_genes, dtype=torch.float64, device=first.device)
        gram = torch.zeros((n_genes, n_genes), dtype=torch.float64, device=first.device)
        buffer = torch.empty((0, n_genes), dtype=torch.float64, device=first.device)
        n = 0
        for block in itertools.chain([first], blocks):
            if len(block) > len(buffer):  # the float64 copies reuse one buffer
                buffer = torch.empty(
                    (len(block), n_genes), dtype=torch.float64, device=block.device
                )
            centred = buffer[: len(block)]
            centred.copy_(block)
            centred -= shift
            total += centred.sum(dim=0)
            gram.addmm_(centred.T, centred)
            n += len(block)
        offset = total / n
        gram -= n * torch.outer(offset, offset)
        values, vectors = torch.linalg.eigh(gram)
        variances = values.flip(0)[:width] / max(n - 1, 1)
        return (
            (shift + offset).cpu().numpy(),
            vectors.flip(1)[:, :width].cpu().numpy(),
            variances.cpu().numpy(),
        )

    # ------------------------------------------------------------------------------ using it

    def transform(self, cohort: CohortLike, layer: int = 1) -> xr.Dataset:
        """Activations of hidden layer ``layer`` (1 = nearest the input).

        Returns
        -------
        xarray.Dataset
            ``activation(sample, node)``.
        """
        self._check_fitted()
        self._check_layer(layer)
        data = as_cohort_matrix(cohort)
        x = self._align(data)
        parts = []
        with torch.no_grad():
            for batch in self._batches(x, np.ones(x.shape[0], bool), None, shuffle=False):
                parts.append(self._encode(batch, layer).float().cpu().numpy())
        return xr.Dataset(
            {"activation": (("sample", "node"), np.concatenate(parts))},
            coords={"sample": data.sample_ids, "node": np.arange(self.hidden[layer - 1])},
            attrs={"layer": layer},
        )

    def reconstruct(self, cohort: CohortLike) -> xr.Dataset:
        """The model's reconstruction, in the data's units: ``expression(sample, gene)``."""
        self._check_fitted()
        data = as_cohort_matrix(cohort)
        x = self._align(data)
        parts = []
        with torch.no_grad():
            for batch in self._batches(x, np.ones(x.shape[0], bool), None, shuffle=False):
                parts.append(self._network(batch).float().cpu().numpy())  # type: ignore[misc]
        scaled = np.concatenate(parts)
        return xr.Dataset(
            {"expression": (("sample", "gene"), scaled * self.span_ + self.minimum_)},
            coords={"sample": data.sample_ids, "gene": self.genes_},
        )

    def score(self, cohort: CohortLike | None = None) -> dict[str, float]:
        """Reconstruction quality on held-out samples (default: the validation split, which
        chose the best epoch; pass samples kept out of ``fit`` for an untouched score).

        Returns
        -------
        dict
            ``mse`` (on the [0, 1]-scaled genes) and ``variance_explained``
            (1 − residual sum of squares / total sum of squares around the gene means).
        """
        self._check_fitted()
        if cohort is None:
            x, rows = self._validation_cache
        else:
            x = self._align(as_cohort_matrix(cohort))
            rows = np.ones(x.shape[0], bool)
        device = self._torch_device()
        # float64 sums on the training device, read once at the end
        residual = torch.zeros((), dtype=torch.float64, device=device)
        sums = torch.zeros(len(self.genes_), dtype=torch.float64, device=device)
        squares = torch.zeros(len(self.genes_), dtype=torch.float64, device=device)
        n = 0
        with torch.no_grad():
            for batch in self._batches(x, rows, None, shuffle=False):
                output = self._network(batch).float()  # type: ignore[misc]
                residual += ((output - batch) ** 2).sum(dtype=torch.float64)
                values = batch.double()
                sums += values.sum(dim=0)
                squares += (values**2).sum(dim=0)
                n += values.shape[0]
        total = float((squares - sums**2 / n).sum())
        return {
            "mse": float(residual) / (n * len(self.genes_)),
            "variance_explained": 1.0 - float(residual) / total,
        }

    def light_up(self, layer: int) -> xr.Dataset:
        """Light up each node of ``layer`` in turn: ``change(node, gene)``.

        Every node of the layer is set to its training mean, then one node at a time to its
        training maximum; the output (on the [0, 1] gene scale) minus the output at the means
        is that node's change per gene. With ``output_curve`` the output is read before the
        genes' curves (see :meth:`~cohortex.ae._network.Network.decode`).
        """
        self._check_fitted()
        self._check_layer(layer)
        mean, maximum = self.layer_mean_[layer - 1], self.layer_max_[layer - 1]
        states = np.repeat(mean[None, :], len(mean) + 1, axis=0)
        states[np.arange(len(mean)), np.arange(len(mean))] = maximum
        with torch.no_grad():
            decoded = self._decode(torch.as_tensor(states, device=self._torch_device()), layer)
        output = decoded.float().cpu().numpy()
        change = output[:-1] - output[-1][None, :]
        return xr.Dataset(
            {"change": (("node", "gene"), change)},
            coords={"node": np.arange(len(mean)), "gene": self.genes_},
            attrs={"layer": layer},
        )

    def jacobian(self, layer: int) -> xr.Dataset:
        """d output / d node at the layer's mean state (a cross-check of :meth:`light_up`)."""
        self._check_fitted()
        self._check_layer(layer)
        mean = torch.as_tensor(self.layer_mean_[layer - 1], device=self._torch_device())
        matrix = torch.autograd.functional.jacobian(lambda h: self._decode(h[None], layer)[0], mean)
        return xr.Dataset(
            {"jacobian": (("node", "gene"), matrix.T.float().cpu().numpy())},
            coords={"node": np.arange(len(mean)), "gene": self.genes_},
            attrs={"layer": layer},
        )

    def gene_modules(self, layer: int, top: int = 50) -> dict[int, list[str]]:
        """The ``top`` genes of each node of ``layer``, by absolute light-up change."""
        change = self.light_up(layer)["change"].values
        order = np.argsort(-np.abs(change), axis=1, kind="stable")[:, :top]
        return {node: [str(g) for g in self.genes_[order[node]]] for node in range(len(change))}

    def condition_modules(
        self,
        cohort: CohortLike,
        groupby: str,
        layer: int,
        *,
        reference: str = "rest",
        q: float = 0.05,
        top: int | None = None,
    ) -> xr.Dataset:
        """Genes driven by the nodes that separate groups.

        The layer's activations are tested between groups with :func:`cohortex.de.test`
        (Welch, BH); the nodes with ``padj < q`` are lit up and their changes summed, weighted
        by their t statistic; the ``top`` genes by the absolute score form the module (the sign
        tells whether a gene goes up or down in the group). ``top`` defaults to a twentieth of
        the model's genes, at most 1000 (1000 of 20,000 genes); it must leave genes outside
        the module.

        Returns
        -------
        xarray.Dataset
            ``score(gene)`` and ``in_module(gene)``, ``node_statistic(node)`` and
            ``node_padj(node)`` for the first contrast of the test.
        """
        from ..de import test

        if not (isinstance(q, int | float) and 0 < q <= 1):
            raise CohortexError(f"The 'q' parameter must be in (0, 1]; got {q!r}.")
        self._check_fitted()
        n_genes = len(self.genes_)
        if top is None:
            top = min(1000, max(1, n_genes // 20))
        if not isinstance(top, int | np.integer) or not 1 <= top < n_genes:
            raise CohortexError(
                f"The 'top' parameter must be a whole number from 1 to {n_genes - 1} (a module "
                f"smaller than the model's {n_genes} genes); got {top!r}."
            )
        self._check_layer(layer)
        data = as_cohort_matrix(cohort)
        labels = data.sample_variable(groupby, "groupby") if isinstance(groupby, str) else groupby
        activation = self.transform(cohort, layer)["activation"].values
        result = test(activation, labels, reference=reference, scale="linear")
        if "contrast" in result.dims:
            result = result.isel(contrast=0)
        statistic = np.nan_to_num(result["statistic"].values)
        padj = result["padj"].values
        chosen = np.nan_to_num(padj, nan=1.0) < q
        change = self.light_up(layer)["change"].values
        score = (statistic[chosen][:, None] * change[chosen]).sum(axis=0)
        module = np.zeros(len(score), dtype=bool)
        module[np.argsort(-np.abs(score), kind="stable")[:top]] = chosen.any()
        return xr.Dataset(
            {
                "score": ("gene", score),
                "in_module": ("gene", module),
                "node_statistic": ("node", statistic),
                "node_padj": ("node", padj),
            },
            coords={"gene": self.genes_, "node": np.arange(len(statistic))},
            attrs={
                "layer": layer,
                "groupby": str(groupby),
                "q": q,
                "contrast": str(result["contrast"].values),
            },
        )

    # ------------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the weights and the configuration (a torch file of tensors and plain types).

        The file carries a SHA-256 of the configuration and of every tensor's name, dtype,
        shape and bytes, which :meth:`load` checks. An unkeyed hash detects corruption, not
        deliberate tampering (whoever alters the file can recompute it): trust a model file
        for where it came from, as you would code.
        """
        self._check_fitted()
        assert self._network is not None
        payload = {
            "format": _FORMAT,
            "config": json.dumps(self._config()),
            "state": {k: v.cpu() for k, v in self._network.state_dict().items()},
            "minimum": torch.as_tensor(self.minimum_),
            "span": torch.as_tensor(self.span_),
            "layer_mean": [torch.as_tensor(m) for m in self.layer_mean_],
            "layer_max": [torch.as_tensor(m) for m in self.layer_max_],
        }
        payload["checksum"] = _checksum(payload)
        torch.save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "auto") -> Autoencoder:
        """Read a model written by :meth:`save` (``weights_only=True``: no code is unpickled).

        The checksum, and every tensor's dtype (float32) and shape against the configuration,
        are checked before any weight is used; see :meth:`save` for what the checksum can tell.
        """
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(payload, dict) or payload.get("format") not in _FORMATS:
                raise ValueError("not a cohortex autoencoder")
            if payload.get("checksum") != _checksum(payload, payload["format"]):
                raise ValueError("its checksum does not match: the file was altered")
            config = json.loads(payload["config"])
            settings = {k: config[k] for k in _SETTINGS if k in config}
            if payload["format"] == "cohortex-autoencoder-3":  # before the output curves
                settings["output_curve"] = False
            elif payload["format"] != _FORMAT:  # formats 1 and 2: plain stacks, one Sequential
                settings["pca_path"] = False
                payload["state"] = _renamed_plain_state(payload["state"], len(config["hidden"]))
            model = cls(tuple(config["hidden"]), seed=config["seed"], device=device, **settings)
            model.genes_ = np.asarray(config["genes"], dtype=object)
            model.history_ = config["history"]
            model.minimum_ = payload["minimum"].numpy()
            model.span_ = payload["span"].numpy()
            model.layer_mean_ = [m.numpy() for m in payload["layer_mean"]]
            model.layer_max_ = [m.numpy() for m in payload["layer_max"]]
            model._network = model._new_network(len(model.genes_))
            _check_tensors(payload, model._network, model.hidden, len(model.genes_))
            model._network.load_state_dict(payload["state"])
            model._network.to(model._torch_device())
        except CohortexError:
            raise
        except Exception as error:
            raise CohortexError(
                f"{str(path)!r} is not a readable cohortex autoencoder file ({error})."
            ) from None
        return model

    # ---------------------------------------------------------------------------- internals

    def _config(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden),
            **{k: getattr(self, k) for k in _SETTINGS},
            "seed": self.seed,
            "genes": [str(g) for g in self.genes_] if self.genes_ is not None else [],
            "history": self.history_,
        }

    def _write_checkpoint(
        self,
        path: str | os.PathLike[str],
        *,
        n_samples: int,
        epoch: int,
        step: int,
        optimiser: torch.optim.Optimizer,
        rng: np.random.Generator,
        best: float,
        best_state: dict[str, torch.Tensor] | None,
        stale: int,
    ) -> None:
        """The whole training state, written to a temporary file and renamed over ``path``."""
        assert self._network is not None
        device = self._torch_device()
        payload = {
            "format": _CHECKPOINT,
            "config": json.dumps(self._checkpoint_config(n_samples)),
            "epoch": epoch,
            "step": step,
            "state": {k: v.cpu() for k, v in self._network.state_dict().items()},
            "optimiser": optimiser.state_dict(),
            "numpy_rng": json.dumps(rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "history": json.dumps(self.history_),
            "best": float(best),
            "best_state": {k: v.cpu() for k, v in (best_state or {}).items()},
            "stale": stale,
        }
        target = os.fspath(path)
        partial = f"{target}.partial"
        torch.save(payload, partial)
        os.replace(partial, target)

    def _read_checkpoint(self, path: str | os.PathLike[str], n_samples: int) -> dict[str, Any]:
        """A checkpoint of this model's settings on this cohort (``weights_only``: no code is
        unpickled), or an error saying what differs."""
        try:
            # on the host: the random-stream states must be CPU tensors; weights and the
            # optimiser's moments are copied to the device by their load_state_dict
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CohortexError(f"No checkpoint at {str(path)!r} to resume from.") from None
        except Exception as error:
            raise CohortexError(
                f"{str(path)!r} is not a readable autoencoder checkpoint ({error})."
            ) from None
        if not isinstance(saved, dict) or saved.get("format") != _CHECKPOINT:
            raise CohortexError(f"{str(path)!r} is not an autoencoder checkpoint.")
        mine, theirs = self._checkpoint_config(n_samples), json.loads(saved["config"])
        differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
        if differ:
            raise CohortexError(
                f"The checkpoint {str(path)!r} was written with other settings or another "
                f"cohort ({', '.join(differ)} differ); resume with the same ones."
            )
        return saved

    def _checkpoint_config(self, n_samples: int) -> dict[str, Any]:
        config = self._config()
        del config["history"]
        config |= {
            "batch_size": self.batch_size,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "validation": self.validation,
            "n_top_genes": self.n_top_genes,
            "n_samples": n_samples,
            "device": self._torch_device().type,
        }
        return config

    def _torch_device(self) -> torch.device:
        return torch.device("cuda" if resolve_device(self.device) == "gpu" else "cpu")

    def _autocast(self) -> Any:
        device = self._torch_device()
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def _check_fitted(self) -> None:
        if self._network is None or self.genes_ is None:
            raise CohortexError("This Autoencoder is not fitted yet; call fit() first.")

    def _check_layer(self, layer: int) -> None:
        if not 1 <= layer <= len(self.hidden):
            raise CohortexError(
                f"The 'layer' parameter must be between 1 and {len(self.hidden)}; got {layer}."
            )

    def _rows(self, matrix: Any, columns: Any = None) -> da.Array:
        """The matrix (its ``columns`` when given) in chunks of whole rows, on the model's
        device (decoded on the host). Columns are taken before the chunks are joined into
        rows, so that only the chosen genes are copied."""
        x = dask_on(matrix, resolve_device(self.device), (1024, -1))
        if columns is not None:
            x = x[:, columns]
        return x.rechunk({1: -1})

    def _align(self, data: Any) -> da.Array:
        position = {str(g): i for i, g in enumerate(data.gene_ids)}
        missing = [str(g) for g in self.genes_ if str(g) not in position]
        if missing:
            raise CohortexError(
                f"The cohort lacks {len(missing)} of the model's genes (e.g. "
                + ", ".join(missing[:5])
                + ")."
            )
        return self._rows(data.matrix, [position[str(g)] for g in self.genes_])

    def _batches(
        self, x: da.Array, rows: np.ndarray, rng: np.random.Generator | None, *, shuffle: bool
    ) -> Any:
        """Scaled float32 tensors of ``batch_size`` samples, chunk by stored chunk.

        The next chunk is read (decompressed, in a background thread) while the batches of the
        current one are used. NumPy chunks are copied to a GPU once, from page-locked memory on
        a copy stream of their own; CuPy chunks are handed to torch through DLPack, without a
        trip through the host.
        """
        device = self._torch_device()
        held = getattr(self, "_held", None)
        if held is not None and held[0] is x and np.array_equal(held[1], rows):
            for start in range(0, held[2].shape[0], self.batch_size):  # the validation rows
                yield held[2][start : start + self.batch_size]
            return
        cache = getattr(self, "_cache", None)
        if cache is not None and cache[0] is x:  # the matrix is on the device already
            wanted = np.flatnonzero(rows)
            if shuffle and rng is not None:
                wanted = wanted[rng.permutation(len(wanted))]
            index = torch.as_tensor(wanted, device=device)
            for start in range(0, len(wanted), self.batch_size):
                yield cache[1][index[start : start + self.batch_size]]
            return
        low = torch.as_tensor(self.minimum_, device=device)
        span = torch.as_tensor(self.span_, device=device)
        edges = np.cumsum((0, *x.chunks[0]))
        chunk_order = np.arange(len(edges) - 1)
        if shuffle and rng is not None:
            chunk_order = rng.permutation(chunk_order)
        plan = []  # (chunk, its wanted rows in the order they are used)
        for c in chunk_order:
            wanted = np.flatnonzero(rows[edges[c] : edges[c + 1]])
            if len(wanted):
                if shuffle and rng is not None:
                    wanted = wanted[rng.permutation(len(wanted))]
                plan.append((int(c), wanted))

        # on a GPU, host chunks are copied on a stream of their own, issued by the reading
        # thread as soon as a chunk is decompressed: the copy of the next chunk overlaps the
        # training on this one instead of queueing behind it
        copy_stream = torch.cuda.Stream(device) if device.type == "cuda" else None

        def read(c: int) -> tuple[Any, Any]:
            block = x[edges[c] : edges[c + 1]].compute()
            if copy_stream is None or not isinstance(block, np.ndarray):
                return block, None
            pinned = torch.as_tensor(np.asarray(block, dtype=np.float32)).pin_memory()
            with torch.cuda.stream(copy_stream):
                on_device = pinned.to(device, non_blocking=True)
                copied = torch.cuda.Event()
                copied.record(copy_stream)
            return on_device, copied

        with ThreadPoolExecutor(max_workers=1) as reader:
            upcoming = reader.submit(read, plan[0][0]) if plan else None
            for position, (_, wanted) in enumerate(plan):
                assert upcoming is not None
                block, copied = upcoming.result()
                if position + 1 < len(plan):
                    upcoming = reader.submit(read, plan[position + 1][0])
                if copied is not None:  # on the device, once the copy stream gets there
                    training_stream = torch.cuda.current_stream(device)
                    training_stream.wait_event(copied)
                    # its memory came from the copy stream: not reused while this one reads it
                    block.record_stream(training_stream)
                    tensor = block
                elif isinstance(block, np.ndarray):
                    tensor = torch.as_tensor(np.asarray(block, dtype=np.float32))
                else:  # a CuPy chunk
                    tensor = torch.from_dlpack(block.astype("float32")).to(device)
                # the gather copies (never the caller's array); scaling works in that copy
                tensor = tensor[torch.as_tensor(wanted, device=device)].sub_(low).div_(span)
                for start in range(0, len(wanted), self.batch_size):
                    yield tensor[start : start + self.batch_size]

    def _loss(self, x: da.Array, rows: np.ndarray) -> float:
        assert self._network is not None
        self._network.eval()
        total = torch.zeros((), dtype=torch.float64, device=self._torch_device())
        count = 0
        with torch.no_grad():
            for batch in self._batches(x, rows, None, shuffle=False):
                output = self._network(batch).float()
                total += ((output - batch) ** 2).mean().double() * batch.shape[0]
                count += batch.shape[0]
        return float(total) / max(count, 1)

    def _encode(self, batch: torch.Tensor, layer: int) -> torch.Tensor:
        assert self._network is not None
        return self._network.states(batch)[layer - 1]

    def _decode(self, state: torch.Tensor, layer: int) -> torch.Tensor:
        assert self._network is not None
        code_mean = torch.zeros(0)
        if self.pca_path:
            code = self._network.code
            code_mean = torch.as_tensor(self.layer_mean_[code], device=state.device)
        return self._network.decode(state.float(), layer, code_mean)

    def _layer_statistics(self, x: da.Array, training: np.ndarray) -> None:
        """Mean and maximum activation of every hidden node over the training samples."""
        device = self._torch_device()
        # kept on the training device and moved to the host once, at the end
        sums = [torch.zeros(h, dtype=torch.float64, device=device) for h in self.hidden]
        maxima = [torch.full((h,), -torch.inf, device=device) for h in self.hidden]
        n = 0
        assert self._network is not None
        self._network.eval()
        with torch.no_grad():
            for batch in self._batches(x, training, None, shuffle=False):
                states = self._network.states(batch)  # one pass, every layer, no output
                for layer, state in enumerate(states, start=1):
                    sums[layer - 1] += state.sum(dim=0, dtype=torch.float64)
                    maxima[layer - 1] = torch.maximum(
                        maxima[layer - 1], state.max(dim=0).values.float()
                    )
                n += batch.shape[0]
        self.layer_mean_ = [(s / n).cpu().numpy().astype(np.float32) for s in sums]
        self.layer_max_ = [m.cpu().numpy().astype(np.float32) for m in maxima]


def _tensors(payload: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every tensor of a saved model with a name that says where it sits."""
    return [
        *((f"state.{k}", v) for k, v in payload["state"].items()),
        ("minimum", payload["minimum"]),
        ("span", payload["span"]),
        *((f"layer_mean.{i}", m) for i, m in enumerate(payload["layer_mean"])),
        *((f"layer_max.{i}", m) for i, m in enumerate(payload["layer_max"])),
    ]


def _checksum(payload: dict[str, Any], version: str = _FORMAT) -> str:
    """SHA-256 of the configuration and every tensor (torch does not verify its zip CRCs).

    Format 2 hashes each tensor's name, dtype and shape with its bytes: the same bytes read as
    another dtype or shape no longer match. Format 1 hashed the bytes alone.
    """
    digest = hashlib.sha256(payload["config"].encode())
    for name, tensor in _tensors(payload):
        if version != "cohortex-autoencoder-1":
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_tensors(
    payload: dict[str, Any], network: nn.Module, hidden: tuple[int, ...], n_genes: int
) -> None:
    """Every tensor float32, of the shape the configuration gives it (load_state_dict would
    convert another dtype's values without a word)."""
    expected = {f"state.{k}": tuple(v.shape) for k, v in network.state_dict().items()}
    expected |= {"minimum": (n_genes,), "span": (n_genes,)}
    expected |= {f"layer_mean.{i}": (h,) for i, h in enumerate(hidden)}
    expected |= {f"layer_max.{i}": (h,) for i, h in enumerate(hidden)}
    found = dict(_tensors(payload))
    if set(found) != set(expected):
        raise ValueError("its tensors are not those of the configured network")
    for name, tensor in found.items():
        if tensor.dtype != torch.float32 or tuple(tensor.shape) != expected[name]:
            raise ValueError(
                f"tensor {name} is {tensor.dtype} of shape {tuple(tensor.shape)}; expected "
                f"float32 of shape {expected[name]}"
            )


def _renamed_plain_state(state: dict[str, Any], n_hidden: int) -> dict[str, Any]:
    """A format 1–2 state (one ``nn.Sequential``: Linear/activation pairs, then the output
    Linear and its sigmoid) under the names of :class:`~cohortex.ae._network.Network`."""
    renamed = {}
    for key, tensor in state.items():
        index, _, rest = key.partition(".")
        if int(index) < 2 * n_hidden:
            renamed[f"layers.{index}.{rest}"] = tensor
        else:
            renamed[f"output.{int(index) - 2 * n_hidden}.{rest}"] = tensor
    return renamed


def baselines(cohort: CohortLike, model: Autoencoder, *, shallow: int | None = None) -> xr.Dataset:
    """Held-out reconstruction of the model beside PCA and a shallow autoencoder.

    Held out is the model's validation split, which also chose its best epoch; on a split that
    no model saw (``benchmarks/ae_versus_pca.py``) the deep model's gain over PCA was as large,
    higher or lower by chance (by at most 0.005). All three use the model's genes,
    training/validation split and [0, 1] scaling. PCA keeps as many components as the model's
    narrowest hidden layer; the shallow autoencoder is a plain one (no PCA path, no dropout)
    with one hidden layer of ``shallow`` nodes (default: the model's first layer width) and the
    model's activation and training settings.

    Returns
    -------
    xarray.Dataset
        ``mse`` and ``variance_explained`` on ``model`` ∈ {deep, pca, shallow}.
    """
    model._check_fitted()
    latent = min(model.hidden)
    width = shallow or model.hidden[0]
    deep = model.score()
    x, held_out = model._validation_cache
    # exact PCA of the scaled training rows, streamed from the chunks as the PCA start is (a
    # float64 copy of a large cohort's training split would be the demo's peak memory)
    mean, axes, _ = model._training_pca(x, ~held_out)
    scaled_test = _scaled_rows(model, x, held_out)
    reconstruction = (scaled_test - mean) @ axes @ axes.T + mean
    residual = float(((reconstruction - scaled_test) ** 2).sum())
    total = float(((scaled_test - scaled_test.mean(axis=0)) ** 2).sum())
    pca_score = {"mse": residual / scaled_test.size, "variance_explained": 1 - residual / total}
    one_layer = Autoencoder(
        (width,),
        activation=model.activation,
        pca_path=False,
        lr=model.lr,
        weight_decay=model.weight_decay,
        schedule=model.schedule,
        warmup=model.warmup,
        dropout=0.0,
        clip=model.clip,
        batch_size=model.batch_size,
        max_epochs=model.max_epochs,
        patience=model.patience,
        validation=model.validation,
        n_top_genes=model.n_top_genes,
        seed=model.seed,
        device=model.device,
        progress=False,
    ).fit(cohort)
    shallow_score = one_layer.score()
    rows = [deep, pca_score, shallow_score]
    return xr.Dataset(
        {
            "mse": ("model", [r["mse"] for r in rows]),
            "variance_explained": ("model", [r["variance_explained"] for r in rows]),
        },
        coords={"model": [f"deep {model.hidden}", f"pca {latent}", f"shallow ({width},)"]},
    )


def _scaled_rows(model: Autoencoder, x: da.Array, rows: np.ndarray) -> np.ndarray:
    values = np.asarray(to_host(x[np.flatnonzero(rows)].compute()), dtype=np.float64)
    values -= model.minimum_  # in place: the rows of a large cohort are copied once
    values /= model.span_
    return values
