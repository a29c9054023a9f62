"""Pooling: each activation map shrinks on its own (the lecture's "sampling").

Max pooling keeps the largest value of each F×F window; average pooling keeps the mean. The
output size is (N − F)/S + 1 per side, as for a conv without padding.

Shapes: x N×H×W×C → y N×Ho×Wo×C. Windows are read as kh·kw strided views of x, one per offset
(i, j) inside the window: view[i, j][n, a, b, c] = x[n, a·S + i, b·S + j, c].
"""

from __future__ import annotations

import numpy as np

from .base import Layer


def _window_views(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int):
    for i in range(kh):
        for j in range(kw):
            yield (i, j), x[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]


class MaxPool2D(Layer):
    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        n, h, w, c = x.shape
        ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
        y = None
        argmax = np.zeros((n, ho, wo, c), np.uint8) if training else None  # offset i·kw + j
        for (i, j), view in _window_views(x, kh, kw, sh, sw, ho, wo):
            if y is None:
                y = view.copy()
                continue
            # Strictly greater: on ties the first offset in row-major order wins, as in PyTorch.
            better = view > y
            np.copyto(y, view, where=better)
            if argmax is not None:
                argmax[better] = i * kw + j
        if training:
            self.cache = (argmax, x.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        argmax, input_shape = self.cache
        self.cache = None
        ho, wo = dy.shape[1:3]
        dx = np.zeros(input_shape, dy.dtype)
        for (i, j), view in _window_views(dx, kh, kw, sh, sw, ho, wo):
            # The gradient flows only to the value that was the maximum of its window.
            view += np.where(argmax == i * kw + j, dy, 0)
        return dx


class AvgPool2D(Layer):
    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        n, h, w, c = x.shape
        ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
        y = np.zeros((n, ho, wo, c), x.dtype)
        for _, view in _window_views(x, kh, kw, sh, sw, ho, wo):
            y += view
        y *= x.dtype.type(1.0 / (kh * kw))
        if training:
            self.cache = x.shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        dx = np.zeros(self.cache, dy.dtype)
        ho, wo = dy.shape[1:3]
        share = dy * dy.dtype.type(1.0 / (kh * kw))  # each window value got 1/(kh·kw) of y
        for _, view in _window_views(dx, kh, kw, sh, sw, ho, wo):
            view += share
        return dx
