"""Dropout (inverted): while training, values are zeroed with probability p and the survivors are
scaled by 1/(1 − p), so nothing needs rescaling at test time, when dropout does nothing.

Dropout drops each value on its own; Dropout2d drops whole activation maps — one mask value per
channel and image, C×1×1×N in the engine's C×H×W×N layout, broadcast over H×W.
"""

from __future__ import annotations

import numpy as np

from .base import Layer


class Dropout(Layer):
    def __init__(self, p: float, rng: np.random.Generator) -> None:
        super().__init__()
        self.p, self.rng = p, rng

    def mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return x.shape  # every value on its own

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training or self.p == 0:
            self.cache = None
            return x
        keep = self.rng.random(self.mask_shape(x), dtype=np.float32) >= self.p
        mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self.cache = mask
        return x * mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        mask = self.cache
        self.cache = None
        return dy if mask is None else dy * mask


class Dropout2d(Dropout):
    def mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        c, _, _, n = x.shape  # one value per map of each image: C×1×1×N
        return (c, 1, 1, n)
