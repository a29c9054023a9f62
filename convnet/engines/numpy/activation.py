"""Activations, applied to each value on its own. ReLU is the lecture's: max(0, x).

Each keeps its output y for the backward, where its slope is written in terms of y:
ReLU' = [y > 0], σ' = y(1 − y), tanh' = 1 − y².
"""

from __future__ import annotations

import numpy as np

from . import memory, parallel
from .base import Layer


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0), into `out` where given: against a row of zeros, not the scalar 0, which
    NumPy's maximum takes on a slower path (memory.row)."""
    return np.maximum(x, memory.row(0.0, x.shape[-1], x.dtype), out=out)


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
        # Set by the model after a batch norm, which then does this layer's work (see
        # BatchNorm.relu_after): forward and backward pass values through.
        self.done_before = False
        # Set by the model before a max pooling, which then does this layer's work (see
        # MaxPool2D.relu_before): max(0, ·) of the pooled values only.
        self.done_after = False

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if self.done_before or self.done_after:
            return x  # max(0, ·) taken by the batch norm before or the pooling after
        return super().forward(x, training)

    def shown(self, x: np.ndarray) -> np.ndarray:
        return relu(x)  # its own work, wherever a neighbour does it otherwise

    def function(self, x: np.ndarray) -> np.ndarray:
        if not x.flags.c_contiguous:  # a view: rows of it are not rows of memory
            return relu(x, out=x if self.inplace else None)
        out = x if self.inplace else memory.empty(x.shape, x.dtype)
        flat_in, flat_out = x.reshape(x.shape[0], -1), out.reshape(x.shape[0], -1)
        parallel.each(lambda a, b: relu(flat_in[a:b], out=flat_out[a:b]),
                      x.shape[0], x.size)
        return out

    def slope(self, y: np.ndarray) -> np.ndarray:
        return y > 0  # 1 where x > 0, else 0 (PyTorch's choice at 0)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self.done_before or self.done_after:
            return dy  # the batch norm before or the pooling after applies [y > 0]
        y = self.cache
        self.cache = None
        if not (dy.flags.c_contiguous and y.flags.c_contiguous):
            return np.multiply(dy, y > 0, out=dy)
        d, kept = dy.reshape(dy.shape[0], -1), y.reshape(y.shape[0], -1)
        # dy is this layer's own (the next layer's fresh result), so it is overwritten
        parallel.each(lambda a, b: np.multiply(d[a:b], kept[a:b] > 0, out=d[a:b]),
                      dy.shape[0], dy.size)
        return dy


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
