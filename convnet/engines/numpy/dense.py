"""Fully connected (FC) layer and flatten: the lecture's classifier after the last pool.

Shapes: x N×D, weight U×D (PyTorch's layout), y N×U. Flatten turns N×H×W×C into N×(C·H·W) in
channel-major order, the order PyTorch's nn.Flatten gives on N×C×H×W, so fc weights load as is.
"""

from __future__ import annotations

import numpy as np

from .base import Layer


class Dense(Layer):
    def __init__(self, in_features: int, units: int, bias: bool, dtype: np.dtype) -> None:
        super().__init__()
        self.params["weight"] = np.zeros((units, in_features), dtype)  # U×D
        if bias:
            self.params["bias"] = np.zeros((units,), dtype)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y = x @ self.params["weight"].T  # (N, D) @ (D, U): every unit sees every input
        if "bias" in self.params:
            y += self.params["bias"]
        if training:
            self.cache = x
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        x = self.cache
        self.cache = None
        self.grads["weight"] = dy.T @ x  # (U, N) @ (N, D)
        if "bias" in self.params:
            self.grads["bias"] = dy.sum(axis=0)
        if not self.needs_input_grad:
            return None
        return dy @ self.params["weight"]  # (N, U) @ (U, D)


class Flatten(Layer):
    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if training:
            self.cache = x.shape
        n = x.shape[0]
        return x.transpose(0, 3, 1, 2).reshape(n, -1)  # N×H×W×C → N×(C·H·W)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        n, h, w, c = self.cache
        self.cache = None
        return dy.reshape(n, c, h, w).transpose(0, 2, 3, 1)  # back to N×H×W×C (a view)
