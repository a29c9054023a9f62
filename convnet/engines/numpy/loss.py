"""Softmax and cross-entropy from the logits, the numerically stable way.

softmax(z)_k = e^(z_k − max z) / Σ_j e^(z_j − max z); the loss of one image with label y is
−log softmax(z)_y = logsumexp(z) − z_y, averaged over the batch. Its gradient is
(softmax(z) − onehot(y)) / N.
"""

from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray, label_smoothing: float = 0.0,
                  weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Mean loss over the batch and d(loss)/d(logits), both as PyTorch's F.cross_entropy;
    with class `weights`, as its weight=: each image counts w[its label], the mean is over
    W = Σ w[labels], and the smoothing term weighs class k by w[k]."""
    n, k = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_sum  # N×K
    if weights is not None:
        return _weighted(log_probs, labels, label_smoothing, np.asarray(weights, np.float64),
                         logits.dtype)
    target = np.zeros_like(log_probs)
    target[np.arange(n), labels] = 1
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / k
    loss = -float(np.sum(target * log_probs)) / n
    grad = (np.exp(log_probs) - target) / n
    return loss, grad.astype(logits.dtype, copy=False)


def _weighted(log_probs: np.ndarray, labels: np.ndarray, eps: float, w: np.ndarray,
              dtype: np.dtype) -> tuple[float, np.ndarray]:
    """loss = (1 − ε)·Σ w_y·(−log p_y)/W + ε/K·Σ_i Σ_k w_k·(−log p_ik)/W, W = Σ_i w_{y_i}."""
    n, k = log_probs.shape
    rows = np.arange(n)
    w_y = w[labels]  # each image's weight
    total = float(w_y.sum())
    onehot = np.zeros_like(log_probs)
    onehot[rows, labels] = 1
    nll = -float(np.dot(w_y, log_probs[rows, labels])) / total
    smooth = -float(np.sum(log_probs * w)) / total
    loss = (1 - eps) * nll + eps / k * smooth
    p = np.exp(log_probs)
    grad = (1 - eps) * w_y[:, None] * (p - onehot) / total + \
        eps / k * (p * w.sum() - w[None, :]) / total
    return loss, grad.astype(dtype, copy=False)
