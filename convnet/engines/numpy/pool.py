"""Pooling: each activation map shrinks on its own (the lecture's "sampling").

Max pooling keeps the largest value of each F×F window; average pooling keeps the mean. The
output size is (N − F + 2P)/S + 1 per side. Padding is −∞ for max pooling (a padded cell is
never chosen) and zeros for average pooling (counted in the mean), as PyTorch's defaults.

Shapes (batch innermost): x C×H×W×N → y C×Ho×Wo×N. A window is read as kh·kw strided views of x,
one per offset (i, j) inside it: view(i, j)[c, a, b, n] = x[c, a·S + i, b·S + j, n].
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import memory, parallel
from .activation import relu
from .base import Layer
from .conv import rows_first, window


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


def choose(x: np.ndarray, best: np.ndarray, which: np.ndarray | None, kernel: tuple[int, int],
           relu_before: bool) -> None:
    """Windows of `kernel` that tile x (C×H×W×N, stride = kernel): the largest value of each
    into best (C×H/kh×W/kw×N) and, where `which` is given, the offset that held it into which
    (uint8, row-major offsets, the first on ties as PyTorch). `relu_before`: max(0, ·) of the
    largest values and NONE_CHOSEN where none was > 0. The maxima first (kh·kw − 1 passes),
    then the offset as ne₀·(1 + ne₁·(1 + … ne_{L−2})) with ne_i = [value i ≠ the maximum], from
    the inside out: L − 1 comparisons where keeping the maximum and its offset together took 2L
    passes and 3L on bytes. (A window holding NaN gives NaN, as PyTorch's; its gradient goes to
    the window's last value, PyTorch's to the NaN.)"""
    (kh, kw) = kernel
    ho, wo = x.shape[1] // kh, x.shape[2] // kw
    views = [window(x, i, j, kh, kw, ho, wo) for i, j in _offsets(kh, kw)]
    if len(views) == 1:
        np.copyto(best, views[0])
    else:
        np.maximum(views[0], views[1], out=best)
        for view in views[2:]:
            np.maximum(best, view, out=best)
    if which is not None and len(views) == 1:
        which.fill(0)
    elif which is not None:
        np.not_equal(views[-2], best, out=which.view(np.bool_))  # 0: offset L − 2, else L − 1
        for view in views[-3::-1]:
            which += 1
            which *= np.not_equal(view, best).view(np.uint8)
    if relu_before:  # nothing chosen where the maximum is ≤ 0
        if which is not None:
            zeros = memory.row(0.0, best.shape[-1], best.dtype)
            which |= np.less_equal(best, zeros).view(np.uint8) * np.uint8(NONE_CHOSEN)
        relu(best, out=best)


def spread_max(dy: np.ndarray, chosen: np.ndarray, dx: np.ndarray,
               kernel: tuple[int, int]) -> None:
    """The adjoint of choose: each window's gradient (dy, C×Ho×Wo×N) into dx (C×H×W×N, windows
    that tile it) at the offset that held the window's maximum, zeros elsewhere."""
    (kh, kw) = kernel
    ho, wo = dy.shape[1:3]
    for index, (i, j) in enumerate(_offsets(kh, kw)):
        np.multiply(dy, chosen == index, out=window(dx, i, j, kh, kw, ho, wo))


class MaxPool2D(_Pool2D):
    combine = np.maximum
    fill = -np.inf
    # Set by the model after a ReLU, whose work this layer then does (see ReLU.done_after):
    # max(0, max of a window) = max of the window's max(0, ·), and the gradient reaches the
    # window's maximum only where it is > 0, as through the ReLU.
    relu_before = False
    # The output, offsets and input shape of a pooling done by the layer before, block by
    # block, until this layer's forward takes them (receive), and whether its gradient goes back
    # by rows (by_rows).
    handed: tuple[np.ndarray, np.ndarray | None, tuple[int, ...], bool] | None = None
    # The gradient the backward passed on as it is and the offsets, until the layer before
    # asks for it by rows (gradient_rows).
    given_back: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        handed, self.handed = self.handed, None
        if handed is not None:  # pooled already, block by block (receive)
            if x is handed[0]:
                if training:  # (offsets, input shape, gradient given by rows; K-first)
                    self.cache = (*handed[1:], False)
                return x
            if x.shape != handed[2]:  # (left over from a forward that failed on the way: not)
                raise RuntimeError("the max pooling was handed an output it was not given")
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

    def _forward_with_choice(self, x: np.ndarray, relu_before: bool) -> np.ndarray:
        """Windows that tile the input: the largest value of each, and which offset held it
        (choose), so that the backward reads a byte per output instead of the whole input
        again. An input laid out row-first (a convolution by stacked kernel rows, conv.
        conv_by_rows' rows_first) gets its gradient laid out so too: neither is turned round."""
        (kh, kw) = self.kernel
        c, n = x.shape[0], x.shape[3]
        y = memory.empty((c, x.shape[1] // kh, x.shape[2] // kw, n), x.dtype)
        chosen = memory.empty(y.shape, np.uint8)
        # (each pass is over an output's size)
        parallel.each(lambda a, b: choose(x[a:b], y[a:b], chosen[a:b], self.kernel,
                                          relu_before), c, y.size)
        self.cache = (chosen, x.shape, False, rows_first(x) is not None)
        return y

    def rows_at_once(self, shape: tuple[int, ...]) -> int | None:
        """For a layer before that would hand over its output (C×H×W×N of `shape`) a block of
        whole rows at a time (receive): the rows a block must be a multiple of, or None where
        this layer cannot take it so — padded, or windows that do not tile it."""
        if any(self.padding) or not _tiles_exactly(shape, self.kernel, self.stride) or \
                self.kernel[0] * self.kernel[1] >= NONE_CHOSEN:
            return None
        return self.kernel[0]

    def receive(self, shape: tuple[int, ...], dtype: np.dtype, training: bool, by_rows: bool
                ) -> tuple[np.ndarray, Callable[[np.ndarray, int], None]]:
        """This layer's output for an input of `shape` that the layer before hands over in
        blocks of whole rows (rows_at_once), and the function it hands each block to:
        rows(block, h0) pools the block (C×r×W×N, input rows h0 … h0 + r − 1) into output rows
        h0/kh …, the largest values (and, training, their offsets), while the block is in the
        cache. The next forward then takes that output as it is. `by_rows`: the layer before
        wants no gradient whole either — this layer's backward passes its dy on as it is, and
        the layer before asks for it a block of rows at a time (gradient_rows)."""
        (kh, kw) = self.kernel
        c, h, w, n = shape
        y = memory.empty((c, h // kh, w // kw, n), dtype)
        chosen = memory.empty(y.shape, np.uint8) if training else None

        def rows(block: np.ndarray, h0: int) -> None:
            r0, r1 = h0 // kh, (h0 + block.shape[1]) // kh
            choose(block, y[:, r0:r1], None if chosen is None else chosen[:, r0:r1],
                   self.kernel, self.relu_before)

        self.handed = (y, chosen, tuple(shape), by_rows)
        return y, rows

    def gradient_rows(self, dy: np.ndarray) -> Callable[[np.ndarray, int], None]:
        """For the dy this layer's backward passed on as it is (receive's `by_rows`): rows(out,
        h0) writes the gradient of input rows h0 … h0 + r − 1 into out (C×r×W×N): each window's
        share at the offset that held its maximum, zeros elsewhere."""
        kept, self.given_back = self.given_back, None
        if kept is None or kept[0] is not dy:
            raise RuntimeError("the max pooling gives back rows of a gradient it did not pass on")
        chosen = kept[1]
        kh = self.kernel[0]

        def rows(out: np.ndarray, h0: int) -> None:
            r0, r1 = h0 // kh, (h0 + out.shape[1]) // kh
            spread_max(dy[:, r0:r1], chosen[:, r0:r1], out, self.kernel)

        return rows

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # The gradient of a window flows only to its maximum; on ties, to the first maximum in
        # row-major order, as in PyTorch. `rest` is the gradient not yet given to a value.
        (kh, kw), (sh, sw) = self.kernel, self.stride
        if self.cache[0].dtype == np.uint8:  # tiling windows: the offset of each maximum
            chosen, shape, by_rows, laid = self.cache
            self.cache = None
            if by_rows:  # the layer before asks for it a block of rows at a time
                self.given_back = (dy, chosen)
                return dy
            c, h, w, n = shape
            dx = memory.empty((h, c, w, n), dy.dtype).transpose(1, 0, 2, 3) if laid else \
                memory.empty(shape, dy.dtype)
            parallel.each(lambda a, b: spread_max(dy[a:b], chosen[a:b], dx[a:b], self.kernel),
                          shape[0], dy.size)
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
