"""Dropout and batch normalisation: the layers that behave differently in training and testing.

Dropout (inverted): while training, each value is zeroed with probability p and the survivors are
scaled by 1/(1 − p), so nothing needs rescaling at test time, when dropout does nothing.

Batch norm: while training, each channel is normalised with the batch's mean and (biased)
variance, then scaled by γ (weight) and shifted by β (bias); the running statistics, updated
as running = (1 − m)·running + m·batch (with the unbiased variance, as PyTorch), are used at test
time. Channels are the first axis (batch innermost): C×H×W×N or D×N.
"""

from __future__ import annotations

import numpy as np

from .base import Layer


class Dropout(Layer):
    def __init__(self, p: float, rng: np.random.Generator) -> None:
        super().__init__()
        self.p, self.rng = p, rng

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training or self.p == 0:
            self.cache = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self.cache = mask
        return x * mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        mask = self.cache
        self.cache = None
        return dy if mask is None else dy * mask


class BatchNorm(Layer):
    def __init__(self, channels: int, eps: float, momentum: float, dtype: np.dtype) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.params["weight"] = np.ones((channels,), dtype)  # γ
        self.params["bias"] = np.zeros((channels,), dtype)  # β
        self.buffers["running_mean"] = np.zeros((channels,), dtype)
        self.buffers["running_var"] = np.ones((channels,), dtype)
        self.buffers["num_batches_tracked"] = np.zeros((), np.int64)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        axes = tuple(range(1, x.ndim))  # every axis but the channel
        per_channel = (-1,) + (1,) * (x.ndim - 1)  # broadcast a C-vector over C×H×W×N
        gamma = self.params["weight"].reshape(per_channel)
        beta = self.params["bias"].reshape(per_channel)
        if not training:
            scale = gamma / np.sqrt(self.buffers["running_var"].reshape(per_channel) + self.eps)
            return x * scale + (beta - self.buffers["running_mean"].reshape(per_channel) * scale)
        count = x.size // x.shape[0]  # values per channel, M
        mean = x.mean(axis=axes)
        centered = x - mean.reshape(per_channel)
        var = np.mean(centered * centered, axis=axes)  # biased: what normalises the batch
        inv_std = 1 / np.sqrt(var + self.eps)
        x_hat = centered * inv_std.reshape(per_channel)
        m = self.momentum
        self.buffers["running_mean"] *= 1 - m
        self.buffers["running_mean"] += m * mean
        self.buffers["running_var"] *= 1 - m
        self.buffers["running_var"] += m * var * (count / max(count - 1, 1))  # unbiased
        self.buffers["num_batches_tracked"] += 1
        self.cache = (x_hat, inv_std, count)
        return x_hat * gamma + beta

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x_hat, inv_std, count = self.cache
        self.cache = None
        axes = tuple(range(1, dy.ndim))
        per_channel = (-1,) + (1,) * (dy.ndim - 1)
        self.grads["weight"] = np.sum(dy * x_hat, axis=axes)
        self.grads["bias"] = dy.sum(axis=axes)
        # dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)), the batch mean and variance depend on x
        d_mean = (self.grads["bias"] / count).reshape(per_channel)
        d_var = (self.grads["weight"] / count).reshape(per_channel)
        return (dy - d_mean - x_hat * d_var) * (self.params["weight"] * inv_std
                                                ).reshape(per_channel)
