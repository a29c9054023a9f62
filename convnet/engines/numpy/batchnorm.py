"""Batch normalisation, which behaves differently in training and testing.

While training, each channel is normalised with the batch's mean and (biased)
variance, then scaled by γ (weight) and shifted by β (bias); the running statistics, updated
as running = (1 − m)·running + m·batch (with the unbiased variance, as PyTorch), are used at test
time. Channels are the first axis (batch innermost): C×H×W×N or D×N.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import memory, parallel
from .activation import relu as relu_into
from .base import Layer


class BatchNorm(Layer):
    keeps_output = False
    # Set by the model where a ReLU follows (model.link): this layer then takes max(0, ·) of its
    # output and, in the backward, applies the ReLU's slope to dy, each block while it is in the
    # cache, and the ReLU passes values through untouched — a pass over memory fewer forward and
    # two backward. Looking inside (shown), each layer shows its own output: this one's with
    # its negative values.
    relu_after = False

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
            return self._evaluated(x, self.relu_after)
        count = flat.shape[1]  # values per channel, M
        mean = np.empty(c, flat.dtype)
        var = np.empty(c, flat.dtype)
        inv_std = np.empty(c, flat.dtype)
        centered = memory.empty(flat.shape, flat.dtype)
        out = memory.empty(flat.shape, flat.dtype)
        eps = flat.dtype.type(self.eps)

        def normalise(start: int, stop: int) -> None:  # a block of channels, in the cache
            rows = flat[start:stop]
            mu = mean[start:stop] = rows.sum(axis=1) / count
            part = np.subtract(rows, mu[:, None], out=centered[start:stop])
            # the biased variance normalises the batch; a row-wise dot product, no temporary
            v = var[start:stop] = np.einsum("ij,ij->i", part, part) / count
            inv = inv_std[start:stop] = 1 / np.sqrt(v + eps)
            # y = γ·x̂ + β = (γ/σ)·(x − μ) + β, into a fresh array: `centered` is kept for
            # the backward
            y = np.multiply(part, (gamma[start:stop] * inv)[:, None], out=out[start:stop])
            y += beta[start:stop, None]
            if self.relu_after:
                relu_into(y, out=y)

        by_blocks(normalise, flat)
        m = self.momentum
        self.buffers["running_mean"] *= 1 - m
        self.buffers["running_mean"] += m * mean
        self.buffers["running_var"] *= 1 - m
        self.buffers["running_var"] += m * var * (count / max(count - 1, 1))  # unbiased
        self.buffers["num_batches_tracked"] += 1
        # the output too where the ReLU's slope is applied here: [y > 0]
        self.cache = (centered, inv_std, count, x.shape, out if self.relu_after else None)
        return out.reshape(x.shape)

    def _evaluated(self, x: np.ndarray, relu: bool) -> np.ndarray:
        """y = γ·(x − running mean)/√(running var + ε) + β, and max(0, y) with `relu`."""
        flat = np.ascontiguousarray(x).reshape(x.shape[0], -1)
        scale = self.params["weight"] / np.sqrt(self.buffers["running_var"] + self.eps)
        shift = self.params["bias"] - self.buffers["running_mean"] * scale
        return _affine(flat, scale, shift, relu).reshape(x.shape)

    def shown(self, x: np.ndarray) -> np.ndarray:
        return self._evaluated(x, False)  # with its negative values, before the ReLU

    def backward(self, dy: np.ndarray) -> np.ndarray:
        centered, inv_std, count, shape, relu_output = self.cache
        self.cache = None
        c = dy.shape[0]
        d = np.ascontiguousarray(dy).reshape(c, -1)  # written into: dy is this layer's own
        sum_dy = np.empty(c, d.dtype)
        sum_dy_centered = np.empty(c, d.dtype)
        gamma = self.params["weight"].astype(d.dtype, copy=False)

        def gradient(start: int, stop: int) -> None:  # into dy (this layer's own) and centered
            rows, part = d[start:stop], centered[start:stop]
            if relu_output is not None:  # the ReLU's backward, dy·[y > 0]
                np.multiply(rows, relu_output[start:stop] > 0, out=rows)
            total = sum_dy[start:stop] = rows.sum(axis=1)  # Σ dy and Σ dy·(x − μ), row-wise
            total_centered = sum_dy_centered[start:stop] = np.einsum("ij,ij->i", rows, part)
            # dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)) = a·dy + b·(x − μ) + shift per channel
            inv = inv_std[start:stop]
            a = gamma[start:stop] * inv
            b = -a * inv * inv * total_centered / count
            shift = -a * total / count
            out = np.multiply(rows, a[:, None], out=rows)
            out += np.multiply(part, b[:, None], out=part)
            out += shift[:, None]

        by_blocks(gradient, d)
        self.grads["bias"] = sum_dy
        self.grads["weight"] = (sum_dy_centered * inv_std).astype(dy.dtype, copy=False)
        return d.reshape(shape)


# Batch norm reads and writes each value several times (the sums, x − μ, the variance, the scale
# and the shift): done a block of channels at a time, all of a block's passes run while it is in
# the cache, and the full array is read from memory once. 2 MB blocks (with x − μ and the output,
# 6 MB a thread, within a shared L3) against 1 MB: forward + backward with the ReLU, batch 256,
# 1.07–1.20× faster on the recipes' maps (24, 32, 48, 64 channels at 14×14; 48, 64 at 7×7) —
# fewer blocks, fewer NumPy calls; 4 MB no faster again (a scratch comparison, interleaved;
# whole steps within the noise, 0.998–1.008×; AMD EPYC Zen 4, 2026-12-04).
BLOCK_BYTES = 2 << 20


def blocks_of(c: int, row_bytes: int, threads: int) -> list[tuple[int, int]]:
    """C channels of row_bytes each in blocks of about BLOCK_BYTES at most, as many as a multiple
    of the threads (where there are channels enough) and differing by a channel at most, so that
    each thread gets the same share. (Blocks of a fixed number of channels left the last one
    short: fast93's 48 channels at 7×7 went 20 + 20 + 8, two blocks on one thread, 40 channels
    against 8.)"""
    fits = max(1, BLOCK_BYTES // max(1, row_bytes))  # channels a block may hold
    count = -(-c // fits)
    count = min(c, -(-count // threads) * threads)
    return [(c * i // count, c * (i + 1) // count) for i in range(count)]


def by_blocks(fn: Callable[[int, int], None], rows: np.ndarray) -> None:
    """fn(start, stop) for blocks of rows (channels) of a C×M array (blocks_of), the blocks
    shared between threads (parallel.each: an equal number each)."""
    c, row_bytes = rows.shape[0], rows.shape[1] * rows.itemsize
    blocks = blocks_of(c, row_bytes, len(parallel.parts(c, rows.size)))

    def some(first: int, last: int) -> None:  # blocks first … last − 1, on one thread
        for start, stop in blocks[first:last]:
            fn(start, stop)

    parallel.each(some, len(blocks), rows.size)


def _affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, relu: bool = False
            ) -> np.ndarray:
    """scale·x + shift per row (channel) of a C×M array, into a fresh array; max(0, ·) of it
    with `relu`, in the same block."""
    out = memory.empty(x.shape, x.dtype)
    scale = scale.astype(x.dtype, copy=False)
    shift = shift.astype(x.dtype, copy=False)

    def rows(start: int, stop: int) -> None:
        np.multiply(x[start:stop], scale[start:stop, None], out=out[start:stop])
        out[start:stop] += shift[start:stop, None]
        if relu:
            relu_into(out[start:stop], out=out[start:stop])

    by_blocks(rows, x)
    return out
