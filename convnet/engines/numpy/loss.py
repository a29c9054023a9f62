"""Softmax and cross-entropy from the logits, the numerically stable way.

softmax(z)_k = e^(z_k − max z) / Σ_j e^(z_j − max z); the loss of one image with label y is
−log softmax(z)_y = logsumexp(z) − z_y, averaged over the batch. Its gradient is
(softmax(z) − onehot(y)) / N.
"""

from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray, label_smoothing: float = 0.0
                  ) -> tuple[float, np.ndarray]:
    """Mean loss over the batch and d(loss)/d(logits), both as PyTorch's F.cross_entropy."""
    n, k = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_sum  # N×K
    target = np.zeros_like(log_probs)
    target[np.arange(n), labels] = 1
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / k
    loss = -float(np.sum(target * log_probs)) / n
    grad = (np.exp(log_probs) - target) / n
    return loss, grad.astype(logits.dtype, copy=False)
