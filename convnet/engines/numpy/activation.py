"""Activations, applied to each value on its own. ReLU is the lecture's: max(0, x).

Each keeps its output y for the backward, where its slope is written in terms of y:
ReLU' = [y > 0], σ' = y(1 − y), tanh' = 1 − y².
"""

from __future__ import annotations

import numpy as np

from .base import Layer


class _Elementwise(Layer):
    inplace = False  # may overwrite its input (set by the model when that is safe)

    def function(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def slope(self, y: np.ndarray) -> np.ndarray:
        """dy/dx, from the output y."""
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y = self.function(x)
        if training:
            self.cache = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self.cache
        self.cache = None
        # dy is this layer's own (the next layer's fresh result), so it is overwritten.
        return np.multiply(dy, self.slope(y), out=dy)


class ReLU(_Elementwise):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        # In place when the layer before keeps no reference to its output (the model decides):
        # it saves a pass over memory and a fresh allocation.
        self.inplace = inplace

    def function(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0, out=x if self.inplace else None)

    def slope(self, y: np.ndarray) -> np.ndarray:
        return y > 0  # 1 where x > 0, else 0 (PyTorch's choice at 0)


class Sigmoid(_Elementwise):
    def function(self, x: np.ndarray) -> np.ndarray:
        # 1/(1 + e^−x), written so that neither branch overflows
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def slope(self, y: np.ndarray) -> np.ndarray:
        return y * (1 - y)


class Tanh(_Elementwise):
    def function(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def slope(self, y: np.ndarray) -> np.ndarray:
        return 1 - y * y
