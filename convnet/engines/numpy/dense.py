"""Fully connected (FC) layer and flatten: the lecture's classifier after the last pool.

Shapes (batch innermost): x D×N, weight U×D (PyTorch's layout), y U×N. Flatten turns C×H×W×N
into (C·H·W)×N — each image's values in channel-major order, as PyTorch's nn.Flatten gives on
N×C×H×W — so fc weights load unchanged; in this layout it is a free reshape.
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .base import Layer


class Dense(Layer):
    keeps_output = False

    def __init__(self, in_features: int, units: int, bias: bool, dtype: np.dtype) -> None:
        super().__init__()
        self.params["weight"] = np.zeros((units, in_features), dtype)  # U×D
        if bias:
            self.params["bias"] = np.zeros((units,), dtype)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        # (U, D) @ (D, N): every unit sees every input
        y = parallel.matmul(self.params["weight"], x)
        if "bias" in self.params:
            y += self.params["bias"][:, None]
        if training:
            self.cache = x
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        x = self.cache
        self.cache = None
        self.grads["weight"] = parallel.matmul(dy, x.T)  # (U, N) @ (N, D)
        if "bias" in self.params:
            self.grads["bias"] = dy.sum(axis=1)
        if not self.needs_input_grad:
            return None
        return parallel.matmul(self.params["weight"].T, dy)  # (D, U) @ (U, N)


class Flatten(Layer):
    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if training:
            self.cache = x.shape
        return x.reshape(-1, x.shape[-1])  # C×H×W×N → (C·H·W)×N

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape = self.cache
        self.cache = None
        return dy.reshape(shape)
