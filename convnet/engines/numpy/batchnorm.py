"""Batch normalisation, which behaves differently in training and testing.

While training, each channel is normalised with the batch's mean and (biased)
variance, then scaled by γ (weight) and shifted by β (bias); the running statistics, updated
as running = (1 − m)·running + m·batch (with the unbiased variance, as PyTorch), are used at test
time. Channels are the first axis (batch innermost): C×H×W×N or D×N.
"""

from __future__ import annotations

import numpy as np

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
