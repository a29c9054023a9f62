"""Convolution: K filters of F×F×C slide over the (zero-padded) input with stride S.

At each position a filter yields one number, W·x + b (the lecture's "one number"); the same
weights are used at every position. Computed as im2col + one matrix product:

    cols[n·Ho·Wo + i·Wo + j, :] = the F×F×C window under output cell (i, j) of image n
    y = cols @ W + b                       (N·Ho·Wo × F·F·C) @ (F·F·C × K)

Shapes: x N×H×W×C, padded xp N×Hp×Wp×C, y N×Ho×Wo×K, with Ho = (H − F + 2P)/S + 1.
The weight is stored as PyTorch's K×C×F×F; the matrix W is its (F, F, C) × K view.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .base import Layer


def im2col(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """Every kh×kw window of the padded input as one row: (N·Ho·Wo, kh·kw·C), a copy."""
    n, _, _, c = xp.shape
    s_n, s_h, s_w, s_c = xp.strides
    windows = as_strided(xp, (n, ho, wo, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h, s_w, s_c),
                         writeable=False)  # N×Ho×Wo×kh×kw×C, a view: no copy yet
    return windows.reshape(n * ho * wo, kh * kw * c)


def col2im(dcols: np.ndarray, padded_shape: tuple[int, ...], kh: int, kw: int, sh: int, sw: int,
           ho: int, wo: int) -> np.ndarray:
    """The adjoint of im2col: add each window's gradient back where the window came from."""
    n, hp, wp, c = padded_shape
    dxp = np.zeros(padded_shape, dcols.dtype)  # N×Hp×Wp×C
    d = dcols.reshape(n, ho, wo, kh, kw, c)
    for i in range(kh):  # one strided add per filter offset; windows overlap, so add
        for j in range(kw):
            dxp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :] += d[:, :, :, i, j, :]
    return dxp


class Conv2D(Layer):
    def __init__(self, in_channels: int, filters: int, kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int], bias: bool,
                 dtype: np.dtype) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding
        kh, kw = kernel
        self.params["weight"] = np.zeros((filters, in_channels, kh, kw), dtype)  # K×C×kh×kw
        if bias:
            self.params["bias"] = np.zeros((filters,), dtype)

    def _pad(self, x: np.ndarray) -> np.ndarray:
        top, bottom, left, right = self.padding
        if not any(self.padding):
            return x
        n, h, w, c = x.shape
        xp = np.zeros((n, h + top + bottom, w + left + right, c), x.dtype)
        xp[:, top:top + h, left:left + w, :] = x
        return xp

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        weight = self.params["weight"]
        k, c = weight.shape[:2]
        xp = self._pad(x)
        n, hp, wp, _ = xp.shape
        ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1  # shapes.infer checked the fit
        cols = im2col(xp, kh, kw, sh, sw, ho, wo)  # (N·Ho·Wo, kh·kw·C)
        w_mat = weight.transpose(2, 3, 1, 0).reshape(kh * kw * c, k)  # (kh·kw·C, K)
        y = cols @ w_mat  # (N·Ho·Wo, K): one number per position and filter
        if "bias" in self.params:
            y += self.params["bias"]
        if training:
            self.cache = (cols, w_mat, xp.shape, x.shape)
        return y.reshape(n, ho, wo, k)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        cols, w_mat, padded_shape, input_shape = self.cache
        self.cache = None
        n, ho, wo, k = dy.shape
        c = padded_shape[3]
        dy2 = dy.reshape(n * ho * wo, k)  # (N·Ho·Wo, K)
        # dL/dW = Σ over positions of window ⊗ dy: one matrix product
        d_w = cols.T @ dy2  # (kh·kw·C, K)
        self.grads["weight"] = d_w.reshape(kh, kw, c, k).transpose(3, 2, 0, 1).copy()
        if "bias" in self.params:
            self.grads["bias"] = dy2.sum(axis=0)
        if not self.needs_input_grad:
            return None
        dcols = dy2 @ w_mat.T  # (N·Ho·Wo, kh·kw·C)
        dxp = col2im(dcols, padded_shape, kh, kw, sh, sw, ho, wo)
        top, _, left, _ = self.padding
        h, w = input_shape[1:3]
        return dxp[:, top:top + h, left:left + w, :]
