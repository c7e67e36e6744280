"""The autoencoder's network: a plain stack of dense layers, or one around a linear PCA path.

Plain (Dwivedi et al.): ``genes → hidden[0] → … → hidden[-1] → genes``, each hidden layer
followed by the activation, a sigmoid output for genes scaled to [0, 1].

With the PCA path (cohortex's default), the narrowest hidden layer is a linear code ``z``::

    z = Vᵀ (x − μ) + f(x − μ)          x̂ = μ + W z + g(z)

``V`` and ``W`` start as the training split's first principal axes and ``f``, ``g`` are dense
stacks (the hidden layers before and after the code) whose last layers start at zero: before
its first step the network reconstructs exactly as PCA of the code's width, and training adds
what the non-linear stacks find. ``f`` sees the input through dropout (denoising); the linear
path sees it clean.

With the output curve (the default), each gene's reconstruction then passes through a curve of
its own, ``x̂ ← x̂ + s Σⱼ aⱼ (tanh((x̂ − μ)/s − tⱼ) − tanh(−tⱼ))``, with knots ``tⱼ`` at −1.5,
0 and 1.5 in units of ``s``, the spread of the gene's PCA reconstruction, and weights ``aⱼ``
that start at zero. A gene that saturates (off below a threshold, on above it) is bent by three
numbers of its own: on 3,600 samples a decoder layer with hundreds of weights per gene fits the
noise before that shape (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["ACTIVATIONS", "CURVE_KNOTS", "Network"]

# where each gene's output curve bends, in units of the spread of its PCA reconstruction; five
# knots (−2 … 2) explained 0.001 more held out than these three and cost 2/3 more time, one
# knot 0.004–0.01 less (the simulator at k = 4 and 32)
CURVE_KNOTS = (-1.5, 0.0, 1.5)

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
}


def _stack(widths: list[int], activation: str, *, last_activated: bool) -> nn.Sequential:
    """Dense layers through ``widths``; each followed by the activation, the last optionally."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2 or last_activated:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class Network(nn.Module):
    """The autoencoder's layers.

    Parameters
    ----------
    n_genes : int
    hidden : tuple of int
        Hidden layer widths; with ``pca_path`` the first narrowest one is the linear code.
    activation : str
        A key of :data:`ACTIVATIONS`.
    pca_path : bool
        Build the network around a linear PCA path (see the module's docstring).
    dropout : float
        Input dropout of the non-linear encoder (``pca_path`` only).
    output_curve : bool
        A curve per gene on the output (``pca_path`` only; see the module's docstring).
    """

    center: torch.Tensor  # μ, a buffer (saved with the weights, not trained)
    curve_scale: torch.Tensor  # s per gene, a buffer set with the PCA start

    def __init__(
        self,
        n_genes: int,
        hidden: tuple[int, ...],
        activation: str,
        *,
        pca_path: bool,
        dropout: float = 0.0,
        output_curve: bool = False,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.pca_path = pca_path
        self.output_curve = pca_path and output_curve
        if not pca_path:
            self.layers = _stack([n_genes, *hidden], activation, last_activated=True)
            self.output = nn.Sequential(nn.Linear(hidden[-1], n_genes), nn.Sigmoid())
            return
        code = int(np.argmin(hidden))
        self.code = code
        self.register_buffer("center", torch.zeros(n_genes))
        self.encode_linear = nn.Linear(n_genes, hidden[code], bias=False)
        self.decode_linear = nn.Linear(hidden[code], n_genes, bias=False)
        self.dropout = nn.Dropout(dropout)
        before = [n_genes, *hidden[:code]]
        after = [*hidden[code + 1 :], n_genes]
        # f: the hidden layers before the code, then a zero-initialised layer into it
        self.has_encoder = code > 0
        self.has_decoder = code < len(hidden) - 1
        self.encoder = _stack(before, activation, last_activated=True)
        self.into_code = nn.Linear(before[-1], hidden[code]) if self.has_encoder else None
        # g: the hidden layers after the code, then a zero-initialised layer out to the genes
        self.decoder = _stack([hidden[code], *after[:-1]], activation, last_activated=True)
        self.out_of_code = nn.Linear(after[-2], n_genes) if self.has_decoder else None
        for layer in (self.into_code, self.out_of_code):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        if self.output_curve:
            self.curve_weight = nn.Parameter(torch.zeros(n_genes, len(CURVE_KNOTS)))
            self.register_buffer("curve_scale", torch.ones(n_genes))

    def start_at_pca(self, mean: np.ndarray, axes: np.ndarray, variances: np.ndarray) -> None:
        """Set ``μ`` and both linear maps to the training split's mean and principal axes.

        Parameters
        ----------
        mean : ndarray of shape (n_genes,)
        axes : ndarray of shape (n_genes, width)
            Orthonormal columns; fewer than the code's width (a cohort with fewer samples or
            genes) leaves the other code units at zero on the linear path.
        variances : ndarray of shape (width,)
            The training split's variance along each axis: the output curves' scale ``s`` is
            the standard deviation of each gene's PCA reconstruction.
        """
        with torch.no_grad():
            self.center.copy_(torch.as_tensor(mean, dtype=torch.float32))
            weight = torch.zeros_like(self.decode_linear.weight)  # (n_genes, width)
            weight[:, : axes.shape[1]] = torch.as_tensor(axes, dtype=torch.float32)
            self.decode_linear.weight.copy_(weight)
            self.encode_linear.weight.copy_(weight.T)
            if self.output_curve:
                spread = np.sqrt(axes**2 @ np.clip(variances, 0, None))
                # a gene PCA leaves flat keeps a finite scale: its curve input stays near 0
                spread = np.where(spread > 1e-6, spread, 1.0)
                self.curve_scale.copy_(torch.as_tensor(spread, dtype=torch.float32))

    def _curved(self, reconstruction: torch.Tensor) -> torch.Tensor:
        """Each gene's output curve applied to the reconstruction, shape (n, n_genes)."""
        if not self.output_curve:
            return reconstruction
        position = (reconstruction - self.center) / self.curve_scale
        weight = self.curve_weight * self.curve_scale[:, None]  # (n_genes, knots)
        # the constant terms per gene first: each knot is then two passes over the batch and
        # one fused multiply-add (the step's elementwise work is a third of a CPU step)
        offsets = torch.tensor([math.tanh(-knot) for knot in CURVE_KNOTS], device=weight.device)
        curved = reconstruction - weight @ offsets
        for j, knot in enumerate(CURVE_KNOTS):
            curved = torch.addcmul(curved, torch.tanh(position - knot), weight[:, j])
        return curved

    # ------------------------------------------------------------------ forward, by pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.states_and_output(x)[1]

    def states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every hidden layer's state, without the output layer (the widest matrix product)."""
        return self._states_and_output(x, output=False)[0]

    def states_and_output(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every hidden layer's state and the output, in one pass."""
        states, output = self._states_and_output(x, output=True)
        assert output is not None
        return states, output

    def _states_and_output(
        self, x: torch.Tensor, *, output: bool
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        if not self.pca_path:
            states = []
            state = x
            for i in range(len(self.hidden)):
                state = self.layers[2 * i : 2 * i + 2](state)
                states.append(state)
            return states, self.output(state) if output else None
        centred = x - self.center
        states = []
        state = self.dropout(centred)
        for i in range(self.code):
            state = self.encoder[2 * i : 2 * i + 2](state)
            states.append(state)
        code = self.encode_linear(centred)
        if self.into_code is not None:
            code = code + self.into_code(state)
        states.append(code)
        state = code
        for i in range(len(self.hidden) - self.code - 1):
            state = self.decoder[2 * i : 2 * i + 2](state)
            states.append(state)
        if not output:
            return states, None
        reconstruction = self.center + self.decode_linear(code)
        if self.out_of_code is not None:
            reconstruction = reconstruction + self.out_of_code(state)
        return states, self._curved(reconstruction)

    def decode(self, state: torch.Tensor, layer: int, code_mean: torch.Tensor) -> torch.Tensor:
        """The output from states of hidden layer ``layer`` (1-based).

        With the PCA path, an encoder layer's state reaches the code through ``f`` only (the
        linear path is held at its training mean, which is zero: ``μ`` is the training mean),
        and a decoder layer's state reaches the output through ``g`` only (the code's linear
        term held at ``code_mean``, the code's training mean). The output curves are not
        applied: they bend each gene on its own and mix none, so a node's genes are read where
        the layers put them, before each gene's curve (as a GLM's coefficients are read on its
        link scale). Read through the curves, lighting a node up to its maximum lands on each
        gene's saturated ends, and the planted modules were recovered worse (best-node AUROC
        0.77–0.93 against 0.83–0.98 before the curves, tests/ae's cohort).
        """
        if not self.pca_path:
            for i in range(layer, len(self.hidden)):
                state = self.layers[2 * i : 2 * i + 2](state)
            return self.output(state)
        index = layer - 1
        if index < self.code:
            for i in range(index + 1, self.code):
                state = self.encoder[2 * i : 2 * i + 2](state)
            assert self.into_code is not None
            state = self.into_code(state)
            index = self.code
        if index == self.code:
            output = self.center + self.decode_linear(state)
            if self.out_of_code is not None:
                for i in range(len(self.hidden) - self.code - 1):
                    state = self.decoder[2 * i : 2 * i + 2](state)
                output = output + self.out_of_code(state)
            return output
        for i in range(index - self.code, len(self.hidden) - self.code - 1):
            state = self.decoder[2 * i : 2 * i + 2](state)
        assert self.out_of_code is not None
        return self.center + self.decode_linear(code_mean) + self.out_of_code(state)
