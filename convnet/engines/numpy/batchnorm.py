"""Batch normalisation, which behaves differently in training and testing.

While training, each channel is normalised with the batch's mean and (biased)
variance, then scaled by γ (weight) and shifted by β (bias); the running statistics, updated
as running = (1 − m)·running + m·batch (with the unbiased variance, as PyTorch), are used at test
time. Channels are the first axis (batch innermost): C×H×W×N or D×N.
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .base import Layer


class BatchNorm(Layer):
    keeps_output = False

    def __init__(self, channels: int, eps: float, momentum: float, dtype: np.dtype) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.params["weight"] = np.ones((channels,), dtype)  # γ
        self.params["bias"] = np.zeros((channels,), dtype)  # β
        self.buffers["running_mean"] = np.zeros((channels,), dtype)
        self.buffers["running_var"] = np.ones((channels,), dtype)
        self.buffers["num_batches_tracked"] = np.zeros((), np.int64)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        c = x.shape[0]
        x = np.ascontiguousarray(x)
        flat = x.reshape(c, -1)  # channels first: each channel's values are one contiguous row
        gamma, beta = self.params["weight"], self.params["bias"]
        if not training:
            scale = gamma / np.sqrt(self.buffers["running_var"] + self.eps)
            shift = beta - self.buffers["running_mean"] * scale
            return _affine(flat, scale, shift).reshape(x.shape)
        count = flat.shape[1]  # values per channel, M
        mean = np.empty(c, flat.dtype)
        var = np.empty(c, flat.dtype)
        centered = np.empty_like(flat)

        def statistics(start: int, stop: int) -> None:  # a few channels, on one thread
            rows = flat[start:stop]
            mean[start:stop] = rows.sum(axis=1) / count
            part = np.subtract(rows, mean[start:stop, None], out=centered[start:stop])
            # the biased variance normalises the batch; a row-wise dot product, no temporary
            var[start:stop] = np.einsum("ij,ij->i", part, part) / count

        parallel.each(statistics, c, flat.size)
        inv_std = 1 / np.sqrt(var + self.eps)
        m = self.momentum
        self.buffers["running_mean"] *= 1 - m
        self.buffers["running_mean"] += m * mean
        self.buffers["running_var"] *= 1 - m
        self.buffers["running_var"] += m * var * (count / max(count - 1, 1))  # unbiased
        self.buffers["num_batches_tracked"] += 1
        self.cache = (centered, inv_std, count, x.shape)
        # y = γ·x̂ + β = (γ/σ)·(x − μ) + β, into a fresh array: `centered` is kept for backward
        return _affine(centered, gamma * inv_std, beta).reshape(x.shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        centered, inv_std, count, shape = self.cache
        self.cache = None
        c = dy.shape[0]
        d = np.ascontiguousarray(dy).reshape(c, -1)  # written into: dy is this layer's own
        sum_dy = np.empty(c, d.dtype)
        sum_dy_centered = np.empty(c, d.dtype)

        def sums(start: int, stop: int) -> None:  # Σ dy and Σ dy·(x − μ), row-wise
            sum_dy[start:stop] = d[start:stop].sum(axis=1)
            sum_dy_centered[start:stop] = np.einsum("ij,ij->i", d[start:stop],
                                                    centered[start:stop])

        parallel.each(sums, c, d.size)
        self.grads["bias"] = sum_dy
        self.grads["weight"] = (sum_dy_centered * inv_std).astype(dy.dtype, copy=False)
        # dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)) = a·dy + b·(x − μ) + shift per channel
        a = (self.params["weight"] * inv_std).astype(d.dtype, copy=False)
        b = (-a * inv_std * inv_std * sum_dy_centered / count).astype(d.dtype, copy=False)
        shift = (-a * sum_dy / count).astype(d.dtype, copy=False)

        def gradient(start: int, stop: int) -> None:  # into dy (this layer's own) and centered
            out = np.multiply(d[start:stop], a[start:stop, None], out=d[start:stop])
            part = np.multiply(centered[start:stop], b[start:stop, None],
                               out=centered[start:stop])
            out += part
            out += shift[start:stop, None]

        parallel.each(gradient, c, d.size)
        return d.reshape(shape)


def _affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """scale·x + shift per row (channel) of a C×M array, into a fresh array."""
    out = np.empty_like(x)
    scale = scale.astype(x.dtype, copy=False)
    shift = shift.astype(x.dtype, copy=False)

    def rows(start: int, stop: int) -> None:
        np.multiply(x[start:stop], scale[start:stop, None], out=out[start:stop])
        out[start:stop] += shift[start:stop, None]

    parallel.each(rows, x.shape[0], x.size)
    return out
