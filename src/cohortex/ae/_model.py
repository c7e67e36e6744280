"""A deep autoencoder of the cohort and the gene modules of its hidden layers.

After Dwivedi, Tjärnberg, Tegnér & Gustafsson (Nat. Commun. 2020): genes scaled to [0, 1],
dense layers with sigmoid activations, MSE loss, Adam; hidden nodes are read by "lighting them
up" — one node at its maximum, the others of its layer at their training mean — and ranking
the genes by the change of the output.

Training streams the cohort: every epoch visits the stored row chunks in a random order, keeps
each chunk's training samples, shuffles them and feeds mini-batches, so a cohort larger than
memory trains. The min–max scaling is fitted on the training split only. A validation split
(``validation``) gives the held-out loss for early stopping and :meth:`Autoencoder.score`.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask
import dask.array as da
import numpy as np
import torch
import xarray as xr
from torch import nn

from .._backend import dask_on, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix
from .._errors import CohortexError
from .._progress import progress_bar

__all__ = ["ACTIVATIONS", "Autoencoder", "baselines"]

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
# format 2: the checksum covers every tensor's name, dtype and shape; format 1 (bytes only)
# files still load, their tensors' dtypes and shapes checked against the configuration
_FORMAT = "cohortex-autoencoder-2"
_FORMATS = ("cohortex-autoencoder-1", _FORMAT)


class Autoencoder:
    """Dense autoencoder ``genes → hidden[0] → … → hidden[-1] → genes``.

    Parameters
    ----------
    hidden : tuple of int, default (512, 512, 512)
        Widths of the hidden layers (Dwivedi et al.: three of 512).
    activation : {"sigmoid", "relu", "tanh"}, default "sigmoid"
        Of the hidden layers; the output layer is always sigmoid (genes are scaled to [0, 1]).
    lr : float, default 1e-4
        Adam's learning rate.
    batch_size : int, default 256
    max_epochs : int, default 100
    patience : int, default 10
        Stop after this many epochs without a better validation loss; the best weights are kept.
    validation : float, default 0.1
        Fraction of samples held out (never used to fit weights or scaling).
    n_top_genes : int, optional
        Keep only this many most variable genes.
    seed : int, default 0
        The split, the initial weights and the batch order; the same seed gives the same
        weights on the CPU.
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
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (512, 512, 512),
        *,
        activation: str = "sigmoid",
        lr: float = 1e-4,
        batch_size: int = 256,
        max_epochs: int = 100,
        patience: int = 10,
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
        if not (isinstance(lr, int | float) and np.isfinite(lr) and lr > 0):
            raise CohortexError(
                f"The 'lr' parameter of Autoencoder must be a positive number; got {lr!r}."
            )
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        self.lr = float(lr)
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
        self._network: nn.Sequential | None = None

    # ---------------------------------------------------------------------------- training

    def fit(self, cohort: CohortLike) -> Autoencoder:
        """Train on a cohort (store, Dataset or samples × genes array).

        Returns
        -------
        Autoencoder
            ``self``, fitted.
        """
        data = as_cohort_matrix(cohort)
        x = self._rows(data.matrix)
        n_samples = x.shape[0]
        if n_samples < 4:
            raise CohortexError(f"An autoencoder needs at least 4 samples; got {n_samples}.")
        genes = np.arange(x.shape[1])
        if self.n_top_genes is not None and self.n_top_genes < x.shape[1]:
            # the variances of device chunks are a device array: the choice is made on the host
            variance = np.asarray(to_host(da.nanvar(x, axis=0, ddof=1).compute()))
            genes = np.sort(np.argsort(-np.nan_to_num(variance, nan=-1.0))[: self.n_top_genes])
            x = x[:, genes]
        self.genes_ = np.asarray(data.gene_ids)[genes]
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(n_samples)
        n_validation = max(1, round(self.validation * n_samples))
        self.validation_index_ = np.sort(order[:n_validation])
        training = np.ones(n_samples, dtype=bool)
        training[self.validation_index_] = False
        low, high, n_nan = dask.compute(
            x[training].min(axis=0), x[training].max(axis=0), da.isnan(x).sum()
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
        self._network = _network(len(genes), self.hidden, self.activation).to(torch_device)
        optimiser = torch.optim.Adam(self._network.parameters(), lr=self.lr)
        loss_function = nn.MSELoss()
        best, best_state, stale = np.inf, None, 0
        self.history_ = []
        bar = progress_bar(self.max_epochs, "training", self.progress, unit="epoch")
        for epoch in range(1, self.max_epochs + 1):
            self._network.train()
            # summed on the training device: one transfer per epoch, not a sync per step
            running = torch.zeros((), dtype=torch.float64, device=torch_device)
            count = 0
            for batch in self._batches(x, training, rng, shuffle=True):
                optimiser.zero_grad()
                with self._autocast():
                    loss = loss_function(self._network(batch), batch)
                loss.backward()
                optimiser.step()
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
            bar.set_postfix(loss=f"{total / max(count, 1):.5f}", val=f"{validation_loss:.5f}")
            bar.update()
            if validation_loss < best - 1e-12:
                best, stale = validation_loss, 0
                best_state = {k: v.detach().clone() for k, v in self._network.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        bar.close()
        if best_state is not None:
            self._network.load_state_dict(best_state)
        self._layer_statistics(x, training)
        self._validation_cache = (x, ~training)
        return self

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
        """Reconstruction quality on held-out samples (default: the validation split).

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
        is that node's change per gene.
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
        top: int = 1000,
    ) -> xr.Dataset:
        """Genes driven by the nodes that separate groups.

        The layer's activations are tested between groups with :func:`cohortex.de.test`
        (Welch, BH); the nodes with ``padj < q`` are lit up and their changes summed, weighted
        by their t statistic; the ``top`` genes by the absolute score form the module (the sign
        tells whether a gene goes up or down in the group).

        Returns
        -------
        xarray.Dataset
            ``score(gene)`` and ``in_module(gene)``, ``node_statistic(node)`` and
            ``node_padj(node)`` for the first contrast of the test.
        """
        from ..de import test

        if not (isinstance(q, int | float) and 0 < q <= 1):
            raise CohortexError(f"The 'q' parameter must be in (0, 1]; got {q!r}.")
        if not isinstance(top, int | np.integer) or top < 1:
            raise CohortexError(
                f"The 'top' parameter must be a positive whole number; got {top!r}."
            )
        self._check_layer(layer)
        data = as_cohort_matrix(cohort)
        if isinstance(groupby, str):
            variables = data.sample_variables()
            if groupby not in variables:
                raise CohortexError(
                    f"The 'groupby' parameter must name a sample variable; got {groupby!r}. "
                    f"Sample variables: {', '.join(variables) or '(none)'}."
                )
        activation = self.transform(cohort, layer)["activation"].values
        labels = data.dataset[groupby].values if data.dataset is not None else groupby
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
            model = cls(
                tuple(config["hidden"]),
                activation=config["activation"],
                seed=config["seed"],
                device=device,
            )
            model.genes_ = np.asarray(config["genes"], dtype=object)
            model.history_ = config["history"]
            model.minimum_ = payload["minimum"].numpy()
            model.span_ = payload["span"].numpy()
            model.layer_mean_ = [m.numpy() for m in payload["layer_mean"]]
            model.layer_max_ = [m.numpy() for m in payload["layer_max"]]
            model._network = _network(len(model.genes_), model.hidden, model.activation)
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
            "activation": self.activation,
            "seed": self.seed,
            "genes": [str(g) for g in self.genes_] if self.genes_ is not None else [],
            "history": self.history_,
        }

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

    def _rows(self, matrix: Any) -> da.Array:
        """The matrix in chunks of whole rows, on the model's device (decoded on the host)."""
        return dask_on(matrix, resolve_device(self.device), (1024, -1)).rechunk({1: -1})

    def _align(self, data: Any) -> da.Array:
        x = self._rows(data.matrix)
        position = {str(g): i for i, g in enumerate(data.gene_ids)}
        missing = [str(g) for g in self.genes_ if str(g) not in position]
        if missing:
            raise CohortexError(
                f"The cohort lacks {len(missing)} of the model's genes (e.g. "
                + ", ".join(missing[:5])
                + ")."
            )
        return x[:, [position[str(g)] for g in self.genes_]]

    def _batches(
        self, x: da.Array, rows: np.ndarray, rng: np.random.Generator | None, *, shuffle: bool
    ) -> Any:
        """Scaled float32 tensors of ``batch_size`` samples, chunk by stored chunk.

        The next chunk is read (decompressed, in a background thread) while the batches of the
        current one are used. NumPy chunks are copied to the training device once; CuPy chunks
        are handed to torch through DLPack, without a trip through the host.
        """
        device = self._torch_device()
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

        def read(c: int) -> Any:
            return x[edges[c] : edges[c + 1]].compute()

        with ThreadPoolExecutor(max_workers=1) as reader:
            upcoming = reader.submit(read, plan[0][0]) if plan else None
            for position, (_, wanted) in enumerate(plan):
                assert upcoming is not None
                block = upcoming.result()
                if position + 1 < len(plan):
                    upcoming = reader.submit(read, plan[position + 1][0])
                if isinstance(block, np.ndarray):
                    tensor = torch.as_tensor(np.asarray(block, dtype=np.float32))
                    if device.type == "cuda":  # page-locked: the copy to the GPU runs async
                        tensor = tensor.pin_memory().to(device, non_blocking=True)
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
        return self._network[: 2 * layer](batch)

    def _decode(self, state: torch.Tensor, layer: int) -> torch.Tensor:
        assert self._network is not None
        return self._network[2 * layer :](state.float())

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
                state = batch
                for layer in range(1, len(self.hidden) + 1):
                    # one forward pass through the encoder: each layer from the one before
                    state = self._network[2 * layer - 2 : 2 * layer](state)
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
    payload: dict[str, Any], network: nn.Sequential, hidden: tuple[int, ...], n_genes: int
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


def _network(n_genes: int, hidden: tuple[int, ...], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_genes
    for size in hidden:
        layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
        width = size
    layers += [nn.Linear(width, n_genes), nn.Sigmoid()]
    return nn.Sequential(*layers)


def baselines(cohort: CohortLike, model: Autoencoder, *, shallow: int | None = None) -> xr.Dataset:
    """Held-out reconstruction of the model beside PCA and a shallow autoencoder.

    All three use the model's genes, training/validation split and [0, 1] scaling. PCA keeps
    as many components as the model's narrowest hidden layer; the shallow autoencoder has one
    hidden layer of ``shallow`` nodes (default: the model's first layer width) and the
    model's training settings.

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
    training = ~held_out
    scaled_train = _scaled_rows(model, x, training)
    scaled_test = _scaled_rows(model, x, held_out)
    from sklearn.decomposition import PCA

    pca = PCA(min(latent, *scaled_train.shape)).fit(scaled_train)
    reconstruction = pca.inverse_transform(pca.transform(scaled_test))
    residual = float(((reconstruction - scaled_test) ** 2).sum())
    total = float(((scaled_test - scaled_test.mean(axis=0)) ** 2).sum())
    pca_score = {"mse": residual / scaled_test.size, "variance_explained": 1 - residual / total}
    one_layer = Autoencoder(
        (width,),
        activation=model.activation,
        lr=model.lr,
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
    return (values - model.minimum_) / model.span_
