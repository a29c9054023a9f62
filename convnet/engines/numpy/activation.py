"""Activations, applied to each value on its own. ReLU is the lecture's: max(0, x)."""

from __future__ import annotations

import numpy as np

from .base import Layer


class ReLU(Layer):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        # In place when the layer before keeps no reference to its output (the model decides):
        # it saves a pass over memory and a fresh allocation.
        self.inplace = inplace

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y = np.maximum(x, 0, out=x if self.inplace else None)
        if training:
            self.cache = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self.cache
        self.cache = None
        # d max(0, x)/dx = 1 where x > 0, else 0 (PyTorch's choice at 0). dy is this layer's
        # own (the next layer's fresh result), so it is overwritten.
        return np.multiply(dy, y > 0, out=dy)


class Sigmoid(Layer):
    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        # 1/(1 + e^−x), written so that neither branch overflows
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        if training:
            self.cache = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self.cache
        self.cache = None
        return dy * y * (1 - y)  # σ' = σ(1 − σ)


class Tanh(Layer):
    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y = np.tanh(x)
        if training:
            self.cache = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self.cache
        self.cache = None
        return dy * (1 - y * y)  # tanh' = 1 − tanh²
