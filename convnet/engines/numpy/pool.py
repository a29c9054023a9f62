"""Pooling: each activation map shrinks on its own (the lecture's "sampling").

Max pooling keeps the largest value of each F×F window; average pooling keeps the mean. The
output size is (N − F + 2P)/S + 1 per side. Padding is −∞ for max pooling (a padded cell is
never chosen) and zeros for average pooling (counted in the mean), as PyTorch's defaults.

Shapes (batch innermost): x C×H×W×N → y C×Ho×Wo×N. A window is read as kh·kw strided views of x,
one per offset (i, j) inside it: view(i, j)[c, a, b, n] = x[c, a·S + i, b·S + j, n].
"""

from __future__ import annotations

import numpy as np

from . import memory, parallel
from .activation import relu
from .base import Layer
from .conv import window


def _offsets(kh: int, kw: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(kh) for j in range(kw)]  # row-major, as PyTorch scans


def _tiles_exactly(shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int]
                   ) -> bool:
    """Whether every input value lies in exactly one window (S = F and the windows fit)."""
    (h, w), (kh, kw) = shape[1:3], kernel
    return stride == kernel and h % kh == 0 and w % kw == 0


class _Pool2D(Layer):
    combine: np.ufunc  # how the values under one window are combined, pair by pair
    fill: float  # the value of a padded cell

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int, int, int] = (0, 0, 0, 0)) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def _pad(self, x: np.ndarray) -> np.ndarray:
        top, bottom, left, right = self.padding
        if not any(self.padding):
            return x
        c, h, w, n = x.shape
        xp = memory.empty((c, h + top + bottom, w + left + right, n), x.dtype)
        xp.fill(self.fill)
        xp[:, top:top + h, left:left + w, :] = x
        return xp

    def _unpad(self, dxp: np.ndarray) -> np.ndarray:
        top, bottom, left, right = self.padding
        if not any(self.padding):
            return dxp
        return dxp[:, top:dxp.shape[1] - bottom, left:dxp.shape[2] - right, :]

    def _combine_windows(self, x: np.ndarray) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
        y = memory.empty((x.shape[0], ho, wo, x.shape[3]), x.dtype)  # C×Ho×Wo×N

        def channels(a: int, b: int) -> None:
            part, out = x[a:b], y[a:b]
            out[...] = window(part, 0, 0, sh, sw, ho, wo)
            for i, j in _offsets(kh, kw)[1:]:
                self.combine(out, window(part, i, j, sh, sw, ho, wo), out=out)

        parallel.each(channels, x.shape[0], y.size)  # (each pass is over an output's size)
        return y


NONE_CHOSEN = 255  # a window whose values were all ≤ 0 under a ReLU taken here: no gradient


class MaxPool2D(_Pool2D):
    combine = np.maximum
    fill = -np.inf
    # Set by the model after a ReLU, whose work this layer then does (see ReLU.done_after):
    # max(0, max of a window) = max of the window's max(0, ·), and the gradient reaches the
    # window's maximum only where it is > 0, as through the ReLU.
    relu_before = False

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x = self._pad(x)
        if training and _tiles_exactly(x.shape, self.kernel, self.stride) and \
                self.kernel[0] * self.kernel[1] < NONE_CHOSEN:
            return self._forward_with_choice(x, self.relu_before)
        y = self._combine_windows(x)  # the largest value of each window
        if self.relu_before:
            relu(y, out=y)
        if training:
            self.cache = (x, y)
        return y

    def _forward_with_choice(self, x: np.ndarray, relu: bool) -> np.ndarray:
        """Windows that tile the input: the largest value of each, and which offset held it
        (the first in row-major order on ties, as PyTorch), so that the backward reads a byte
        per output instead of the whole input again. `relu`: the largest of 0 and the window's
        values, NONE_CHOSEN where no value was > 0."""
        (kh, kw), (sh, sw) = self.kernel, self.stride
        ho, wo = x.shape[1] // kh, x.shape[2] // kw
        c, n = x.shape[0], x.shape[3]
        y = memory.empty((c, ho, wo, n), x.dtype)
        chosen = memory.empty(y.shape, np.uint8)
        offsets = list(enumerate(_offsets(kh, kw)))

        def channels(a: int, b: int) -> None:  # a few channels, on one thread
            part, best, which = x[a:b], y[a:b], chosen[a:b]
            if relu:  # 0 is the value to beat, and nothing is chosen until a value beats it
                best.fill(0)
                which.fill(NONE_CHOSEN)
                rest = offsets
            else:
                best[...] = window(part, 0, 0, sh, sw, ho, wo)
                which.fill(0)
                rest = offsets[1:]
            for index, (i, j) in rest:
                view = window(part, i, j, sh, sw, ho, wo)
                larger = np.greater(view, best).view(np.uint8)  # strictly: the first max stays
                np.maximum(best, view, out=best)
                which += larger * (np.uint8(index) - which)  # where larger: index (mod 256)

        parallel.each(channels, c, y.size)  # (each pass is over an output's size)
        self.cache = (chosen, x.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # The gradient of a window flows only to its maximum; on ties, to the first maximum in
        # row-major order, as in PyTorch. `rest` is the gradient not yet given to a value.
        (kh, kw), (sh, sw) = self.kernel, self.stride
        if self.cache[0].dtype == np.uint8:  # tiling windows: the offset of each maximum
            chosen, shape = self.cache
            self.cache = None
            dx = memory.empty(shape, dy.dtype)
            ho, wo = dy.shape[1:3]

            def channels(a: int, b: int) -> None:
                for index, (i, j) in enumerate(_offsets(kh, kw)):
                    np.multiply(dy[a:b], chosen[a:b] == index,
                                out=window(dx[a:b], i, j, sh, sw, ho, wo))

            parallel.each(channels, shape[0], dy.size)
            return self._unpad(dx)
        x, y = self.cache
        self.cache = None
        ho, wo = y.shape[1:3]
        exact = _tiles_exactly(x.shape, self.kernel, self.stride)
        dx = (memory.empty if exact else memory.zeros)(x.shape, x.dtype)
        offsets = _offsets(kh, kw)
        rest = dy  # this layer's own (see Layer.backward), so it is used up in place
        if self.relu_before:  # the ReLU's slope: nothing flows where the window's max was ≤ 0
            np.multiply(rest, y > 0, out=rest)
        for index, (i, j) in enumerate(offsets):
            target = window(dx, i, j, sh, sw, ho, wo)
            if exact and index == len(offsets) - 1:
                target[...] = rest  # the last offset is the maximum wherever none before was
                break
            is_max = window(x, i, j, sh, sw, ho, wo) == y
            if exact:
                given = np.multiply(rest, is_max, out=target)
            else:
                given = rest * is_max
                target += given  # overlapping windows can share a value
            rest -= given
        return self._unpad(dx)


class AvgPool2D(_Pool2D):
    combine = np.add
    fill = 0.0
    keeps_output = False

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        (kh, kw) = self.kernel
        x = self._pad(x)
        y = self._combine_windows(x)
        y *= x.dtype.type(1.0 / (kh * kw))  # the sum of each window → its mean
        if training:
            self.cache = x.shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        input_shape = self.cache
        self.cache = None
        exact = _tiles_exactly(input_shape, self.kernel, self.stride)
        dx = (memory.empty if exact else memory.zeros)(input_shape, dy.dtype)
        ho, wo = dy.shape[1:3]
        share = dy * dy.dtype.type(1.0 / (kh * kw))  # each window value got 1/(kh·kw) of y
        for i, j in _offsets(kh, kw):
            target = window(dx, i, j, sh, sw, ho, wo)
            if exact:
                target[...] = share
            else:
                target += share
        return self._unpad(dx)


class GlobalAvgPool2D(Layer):
    """y[c, n] = the mean of map c of image n: C×H×W×N → C×N. Each value got 1/(H·W) of y."""

    keeps_output = False

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if training:
            self.cache = x.shape
        return x.mean(axis=(1, 2))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        c, h, w, n = self.cache
        self.cache = None
        share = dy * dy.dtype.type(1.0 / (h * w))  # C×N
        return np.broadcast_to(share[:, None, None, :], (c, h, w, n)).copy()
