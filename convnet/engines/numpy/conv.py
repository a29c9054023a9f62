"""Convolution: K filters of F×F×C slide over the (zero-padded) input with stride S.

At each position a filter yields one number, W·x + b (the lecture's "one number"); the same
weights are used at every position. Computed as im2col + one matrix product:

    cols[(i, j, c), (a, b, n)] = xp[c, a·S + i, b·S + j, n]      (F·F·C × Ho·Wo·N)
    y = W @ cols + b                                             (K × Ho·Wo·N)

The bias rides along as one more column of W against a row of ones under cols, so the product
adds it, and the weight-gradient product sums its gradient, with no extra pass over y.

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

    def offsets(a: int, b: int) -> None:  # one block copy per filter offset, runs of Wo·N values
        for offset in range(a, b):
            i, j = divmod(offset, kw)
            cols[i, j] = window(xp, i, j, sh, sw, ho, wo)

    parallel.each(offsets, kh * kw, cols.size)
    return cols.reshape(kh * kw * c, ho * wo * n)


def col2im(dcols: np.ndarray, padded_shape: tuple[int, ...], kh: int, kw: int, sh: int, sw: int,
           ho: int, wo: int) -> np.ndarray:
    """The adjoint of im2col: add each window's gradient back where the window came from."""
    c, _, _, n = padded_shape
    dxp = np.zeros(padded_shape, dcols.dtype)  # C×Hp×Wp×N
    d = dcols.reshape(kh, kw, c, ho, wo, n)

    def channels(a: int, b: int) -> None:  # windows overlap when S < F, so add
        target = dxp[a:b]
        for i in range(kh):
            for j in range(kw):
                window(target, i, j, sh, sw, ho, wo)[...] += d[i, j, a:b]

    parallel.each(channels, c, dcols.size)
    return dxp


# When to compute by kernel rows (see conv_by_rows) instead of im2col: with few filters K the
# full product reads a K-times larger matrix than it writes and is memory-bound; the rows
# variant's 5×-smaller matrix stays in cache. Measured with bench/profile_layers.py: LeNet's
# first layer (K = 6, 5×5×3) trains 1.6× faster; for K ≥ 16 im2col is as fast or faster.
ROWS_MAX_FILTERS = 16
ROWS_MIN_DEPTH = 8  # kw·C: the inner size of each row's product
ROWS_MIN_BYTES = 4 << 20  # below this im2col's matrix fits in cache anyway
ROWS_CHUNK = 8192  # positions per product: operands and result stay in L2


def widen(xp: np.ndarray, kw: int, sw: int, wo: int, out: np.ndarray) -> np.ndarray:
    """Unroll only the width: xw[(j, c), (h, b, n)] = xp[c, h, b·S + j, n], (kw·C, Hp·Wo·N)."""
    c, hp, _, n = xp.shape
    xw = out.reshape(kw, c, hp, wo, n)
    for j in range(kw):
        xw[j] = xp[:, :, j:j + sw * (wo - 1) + 1:sw, :]
    return out.reshape(kw * c, hp * wo * n)


def conv_by_rows(flat: np.ndarray, w_rows: np.ndarray, ho: int, row: int) -> np.ndarray:
    """The convolution (stride 1 along the height) as one product per kernel row i:

        y = Σ_i W_i @ flat[:, rows i .. i + Ho − 1]                  (K × Ho·Wo·N)

    where W_i is (K, kw·C) and `row` = Wo·N values per image row. The row block is a strided view
    that BLAS reads in place (its leading dimension), so only `flat` (from widen) is a copy. The
    sum runs over chunks of positions, so each chunk's output stays in cache while it's summed."""
    k, block = w_rows.shape[1], ho * row
    y = np.empty((k, block), flat.dtype)
    for start in range(0, block, ROWS_CHUNK):
        stop = min(block, start + ROWS_CHUNK)
        out = y[:, start:stop]
        np.matmul(w_rows[0], flat[:, start:stop], out=out)
        for i in range(1, len(w_rows)):
            out += w_rows[i] @ flat[:, i * row + start:i * row + stop]
    return y


def weight_grad_by_rows(flat: np.ndarray, dy2: np.ndarray, kh: int, row: int) -> np.ndarray:
    """dL/dW_i = Σ over positions of dy ⊗ (row block i), in chunks whose operands fit in cache:
    (kh, kw·C, K)."""
    kwc, (k, positions) = flat.shape[0], dy2.shape
    acc = np.zeros((kh, kwc, k), flat.dtype)
    for start in range(0, positions, ROWS_CHUNK):
        stop = min(positions, start + ROWS_CHUNK)
        d = dy2[:, start:stop].T
        for i in range(kh):
            acc[i] += flat[:, i * row + start:i * row + stop] @ d
    return acc


def input_grad_by_rows(dy2: np.ndarray, w_rows: np.ndarray, padded_shape: tuple[int, ...],
                       kw: int, sw: int, wo: int) -> np.ndarray:
    """The adjoint of conv_by_rows and widen: dL/dxp, C×Hp×Wp×N."""
    c, hp, wp, n = padded_shape
    row, block = wo * n, dy2.shape[1]
    d_flat = np.zeros((w_rows.shape[2], hp * row), dy2.dtype)  # (kw·C, Hp·Wo·N)
    for i in range(len(w_rows)):
        d_flat[:, i * row:i * row + block] += w_rows[i].T @ dy2
    d_xw = d_flat.reshape(kw, c, hp, wo, n)
    dxp = np.zeros(padded_shape, dy2.dtype)
    for j in range(kw):  # windows overlap along the width when S < F, so add
        dxp[:, :, j:j + sw * (wo - 1) + 1:sw, :] += d_xw[j]
    return dxp


def input_grad_by_flipped_kernel(dy: np.ndarray, weight: np.ndarray,
                                 padding: tuple[int, int, int, int], h: int, w: int
                                 ) -> np.ndarray:
    """dL/dx of a stride-1 convolution as a convolution itself: of dy, padded by F − 1 − P, with
    the kernel turned 180° and its in- and out-channels swapped,

        dx[c, u, v] = Σ_{k, i, j} W[k, c, F−1−i, F−1−j] · dyp[k, u + i, v + j]

    one im2col and one product, where im2col's adjoint (col2im) would first write a kh·kw·C-row
    matrix and then add it back window by window. When K ≤ C the matrix here is no larger, and
    on fast93's 32 → 32 layer the input gradient takes 23 ms instead of 38 (batch 128)."""
    k, c, kh, kw = weight.shape
    top, bottom, left, right = padding
    _, ho, wo, n = dy.shape
    pads = (kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right)
    dyp = np.zeros((k, ho + pads[0] + pads[1], wo + pads[2] + pads[3], n), dy.dtype)

    def channels(a: int, b: int) -> None:
        dyp[a:b, pads[0]:pads[0] + ho, pads[2]:pads[2] + wo] = dy[a:b]

    parallel.each(channels, k, dyp.size)
    cols = im2col(dyp, kh, kw, 1, 1, h, w)  # (kh·kw·K, H·W·N), rows in (i, j, k) order
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 2, 3, 0).reshape(c, kh * kw * k)
    return (flipped @ cols).reshape(c, h, w, n)


class Conv2D(Layer):
    keeps_output = False

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

        def channels(a: int, b: int) -> None:
            xp[a:b, top:top + h, left:left + w, :] = x[a:b]

        parallel.each(channels, c, xp.size)
        return xp

    def by_rows(self, c: int, ho: int, wo: int, n: int, itemsize: int) -> bool:
        (kh, kw), (sh, _) = self.kernel, self.stride
        k = self.params["weight"].shape[0]
        return (sh == 1 and kh > 1 and k < ROWS_MAX_FILTERS and kw * c >= ROWS_MIN_DEPTH
                and kh * kw * c * ho * wo * n * itemsize >= ROWS_MIN_BYTES)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        weight = self.params["weight"]
        k, c = weight.shape[:2]
        xp = self._pad(x)
        _, hp, wp, n = xp.shape
        ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1  # shapes.infer checked the fit
        rows = self.by_rows(c, ho, wo, n, x.itemsize)
        if rows:
            flat = widen(xp, kw, sw, wo, self.workspace((kw * c, hp * wo * n), x.dtype, training))
            w_mat = weight.transpose(2, 0, 3, 1).reshape(kh, k, kw * c)  # W_i: (K, (j, c))
            y = conv_by_rows(flat, w_mat, ho, wo * n)  # (K, Ho·Wo·N)
            if "bias" in self.params:
                y += self.params["bias"][:, None]
        else:
            bias = "bias" in self.params
            depth = kh * kw * c
            buffer = self.workspace((depth + bias, ho * wo * n), x.dtype, training)
            flat = buffer  # (kh·kw·C [+ 1 row of ones], Ho·Wo·N)
            im2col(xp, kh, kw, sh, sw, ho, wo, out=buffer[:depth].reshape(kh, kw, c, ho, wo, n))
            w_mat = weight.transpose(0, 2, 3, 1).reshape(k, depth)  # (K, kh·kw·C)
            if bias:
                buffer[depth] = 1
                w_mat = np.concatenate([w_mat, self.params["bias"][:, None]], axis=1)
            y = w_mat @ flat  # (K, Ho·Wo·N): one number W·x + b per filter and position
        if training:
            self.cache = (rows, flat, w_mat, xp.shape, x.shape)
        return y.reshape(k, ho, wo, n)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        rows, flat, w_mat, padded_shape, input_shape = self.cache
        self.cache = None
        k, ho, wo, n = dy.shape
        c = padded_shape[0]
        dy2 = dy.reshape(k, ho * wo * n)  # (K, Ho·Wo·N)
        depth = kh * kw * c
        # dL/dW = Σ over positions of dy ⊗ window: a matrix product with the (im2col) matrix.
        if rows:
            d_w = weight_grad_by_rows(flat, dy2, kh, wo * n)  # (kh, (j, c), K)
            if "bias" in self.params:
                self.grads["bias"] = dy2.sum(axis=1)
        else:
            d_w = flat @ dy2.T  # ((i, j, c) [+ bias], K): the faster orientation for small K
            if "bias" in self.params:
                self.grads["bias"] = d_w[depth].copy()  # the row of ones: Σ dy per filter
            d_w = d_w[:depth]
        self.grads["weight"] = d_w.reshape(kh, kw, c, k).transpose(3, 2, 0, 1).copy()
        if not self.needs_input_grad:
            return None
        top, bottom, left, right = self.padding
        h, w = input_shape[1:3]
        if not rows and (sh, sw) == (1, 1) and k <= c and \
                min(kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right) >= 0:
            return input_grad_by_flipped_kernel(dy, self.params["weight"], self.padding, h, w)
        if rows:
            dxp = input_grad_by_rows(dy2, w_mat, padded_shape, kw, sw, wo)
        else:
            dcols = w_mat[:, :depth].T @ dy2  # (kh·kw·C, Ho·Wo·N); the bias has no input
            dxp = col2im(dcols, padded_shape, kh, kw, sh, sw, ho, wo)
        return dxp[:, top:top + h, left:left + w, :]
