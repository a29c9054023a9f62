"""Convolution: K filters of F×F×C slide over the (zero-padded) input with stride S.

At each position a filter yields one number, W·x + b (the lecture's "one number"); the same
weights are used at every position. Computed as im2col + one matrix product:

    cols[(i, j, c), (a, b, n)] = xp[c, a·S + i, b·S + j, n]      (F·F·C × Ho·Wo·N)
    y = W @ cols + b                                             (K × Ho·Wo·N)

Shapes (batch innermost, see __init__): x C×H×W×N, padded xp C×Hp×Wp×N, y K×Ho×Wo×N, with
Ho = (H − F + 2P)/S + 1. The weight is stored as PyTorch's K×C×F×F; W is its K × (F, F, C) view.
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .base import Layer


def window(xp: np.ndarray, i: int, j: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """The values under offset (i, j) of every window: xp[:, a·S + i, b·S + j, :], C×Ho×Wo×N."""
    return xp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]


def im2col(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int,
           out: np.ndarray | None = None) -> np.ndarray:
    """Every window of the padded input as one column: (kh·kw·C, Ho·Wo·N)."""
    c, _, _, n = xp.shape
    cols = np.empty((kh, kw, c, ho, wo, n), xp.dtype) if out is None else out

    def copy(lo: int, hi: int) -> None:  # one block copy per filter offset (i, j)
        for offset in range(lo, hi):
            i, j = divmod(offset, kw)
            cols[i, j] = window(xp, i, j, sh, sw, ho, wo)

    parallel.split(kh * kw, copy, cols.size)
    return cols.reshape(kh * kw * c, ho * wo * n)


def col2im(dcols: np.ndarray, padded_shape: tuple[int, ...], kh: int, kw: int, sh: int, sw: int,
           ho: int, wo: int) -> np.ndarray:
    """The adjoint of im2col: add each window's gradient back where the window came from."""
    c, _, _, n = padded_shape
    dxp = np.zeros(padded_shape, dcols.dtype)  # C×Hp×Wp×N
    d = dcols.reshape(kh, kw, c, ho, wo, n)

    def add(lo: int, hi: int) -> None:  # a range of channels, so threads write apart
        for i in range(kh):  # windows overlap when S < F, so add
            for j in range(kw):
                window(dxp[lo:hi], i, j, sh, sw, ho, wo)[...] += d[i, j, lo:hi]

    parallel.split(c, add, dcols.size)
    return dxp


# The row algorithm (below) is used for inference when im2col's matrix would be at least this
# large and each kernel row has enough inputs (kw·C) to make a reasonable matrix product.
ROWS_MIN_BYTES = 8 << 20
ROWS_MIN_DEPTH = 8


def conv_by_rows(xp: np.ndarray, w_rows: np.ndarray, kh: int, kw: int, sw: int, ho: int,
                 wo: int) -> np.ndarray:
    """The same convolution (stride 1 along the height) with a 5× smaller matrix: unroll only
    the width, then one product per kernel row i, whose input is a block of rows of that matrix.

        xw[(j, c), (h, b, n)] = xp[c, h, b·S + j, n]                  (kw·C × Hp·Wo·N)
        y = Σ_i W_i @ xw[:, rows i .. i + Ho − 1]                     (K × Ho·Wo·N)

    The row block is a strided view that BLAS reads in place (its leading dimension), so nothing
    but xw is copied. Used for inference, where im2col's full matrix isn't needed for backward.
    """
    c, hp, _, n = xp.shape
    xw = np.empty((kw, c, hp, wo, n), xp.dtype)
    for j in range(kw):
        xw[j] = xp[:, :, j:j + sw * (wo - 1) + 1:sw, :]
    flat = xw.reshape(kw * c, hp * wo * n)
    block = ho * wo * n
    y = w_rows[0] @ flat[:, :block]  # (K, Ho·Wo·N)
    for i in range(1, kh):
        y += w_rows[i] @ flat[:, i * wo * n:i * wo * n + block]
    return y


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
        c, h, w, n = x.shape
        xp = np.zeros((c, h + top + bottom, w + left + right, n), x.dtype)
        xp[:, top:top + h, left:left + w, :] = x
        return xp

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        weight = self.params["weight"]
        k, c = weight.shape[:2]
        xp = self._pad(x)
        _, hp, wp, n = xp.shape
        ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1  # shapes.infer checked the fit
        cols_bytes = kh * kw * c * ho * wo * n * x.itemsize
        if (not training and sh == 1 and kh > 1 and kw * c >= ROWS_MIN_DEPTH
                and cols_bytes >= ROWS_MIN_BYTES):
            w_rows = weight.transpose(2, 0, 3, 1).reshape(kh, k, kw * c)  # W_i: (K, (j, c))
            y = conv_by_rows(xp, w_rows, kh, kw, sw, ho, wo)
            if "bias" in self.params:
                y += self.params["bias"][:, None]
            return y.reshape(k, ho, wo, n)
        buffer = self.workspace((kh, kw, c, ho, wo, n), x.dtype, training)
        cols = im2col(xp, kh, kw, sh, sw, ho, wo, out=buffer)  # (kh·kw·C, Ho·Wo·N)
        w_mat = weight.transpose(0, 2, 3, 1).reshape(k, kh * kw * c)  # (K, kh·kw·C)
        y = w_mat @ cols  # (K, Ho·Wo·N): one number per filter and position
        if "bias" in self.params:
            y += self.params["bias"][:, None]
        if training:
            self.cache = (cols, w_mat, xp.shape, x.shape)
        return y.reshape(k, ho, wo, n)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        cols, w_mat, padded_shape, input_shape = self.cache
        self.cache = None
        k, ho, wo, n = dy.shape
        c = padded_shape[0]
        dy2 = dy.reshape(k, ho * wo * n)  # (K, Ho·Wo·N)
        # dL/dW = Σ over positions of dy ⊗ window: one matrix product. (cols @ dy2.T is the
        # faster orientation for BLAS when K is small, as in a first layer.)
        d_w = (cols @ dy2.T).T  # (K, kh·kw·C)
        self.grads["weight"] = d_w.reshape(k, kh, kw, c).transpose(0, 3, 1, 2).copy()
        if "bias" in self.params:
            self.grads["bias"] = dy2.sum(axis=1)
        if not self.needs_input_grad:
            return None
        dcols = w_mat.T @ dy2  # (kh·kw·C, Ho·Wo·N)
        dxp = col2im(dcols, padded_shape, kh, kw, sh, sw, ho, wo)
        top, _, left, _ = self.padding
        h, w = input_shape[1:3]
        return dxp[:, top:top + h, left:left + w, :]
