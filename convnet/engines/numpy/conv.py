"""Convolution: K filters of F×F×C slide over the (zero-padded) input with stride S.

At each position a filter yields one number, W·x + b (the lecture's "one number"); the same
weights are used at every position. Computed as im2col + one matrix product:

    cols[(i, j, c), (a, b, n)] = xp[c, a·S + i, b·S + j, n]      (F·F·C × Ho·Wo·N)
    y = W @ cols + b                                             (K × Ho·Wo·N)

The bias rides along as one more column of W against a row of ones under cols, so the product
adds it, and the weight-gradient product sums its gradient, with no extra pass over y.

The matrix is built and multiplied a block of output positions at a time (`blocks`), each block
while it is still in the cache, the blocks shared between threads; the backward builds them again
from the padded input rather than keeping the whole matrix. Layers with few filters compute by
kernel rows instead (`conv_by_rows`), and stride-1 layers with 8 channels and filters or more by
shifted products, with no matrix at all (`conv_shifted`: the padded input laid out row-first,
Hp × C × Wp × N, and one product per kernel column over all kernel rows and channels, added into
the output, where the BLAS can add and the CPU is one where this pays: `shifted_pays`). With a max
pooling after it, im2col's blocks go to the pooling as they are made (`conv_blocks_pooled`), and
a first layer's weight gradient takes its dy from the pooling a block at a time too; kernel
rows with few filters, whose products lay their output out row-first, hand it to the pooling as
it lies and take its gradient back laid out so (`rows_first`: LeNet's steps 1.03–1.07× faster).
(Winograd's F(2×2, 3×3) does 2.25× fewer multiply-adds, but its transforms are memory passes
that a second core hardly speeds up: on 2 cores it gained at most 8% on the widest layers and
lost up to 42% on others; bench/winograd.py measures it.)

Shapes (batch innermost, see __init__): x C×H×W×N, padded xp C×Hp×Wp×N (xq Hp×C×Wp×N for
shifted products), y K×Ho×Wo×N, with
Ho = (H − F + 2P)/S + 1. The weight is stored as PyTorch's K×C×F×F; W is its K × (F, F, C) view.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple, Protocol

import numpy as np

from ...cpu import this_cpu
from . import blas, memory, parallel
from .base import Layer


def window(xp: np.ndarray, i: int, j: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """The values under offset (i, j) of every window: xp[:, a·S + i, b·S + j, :], C×Ho×Wo×N."""
    return xp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]


def im2col(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int,
           out: np.ndarray | None = None, threads: bool = True) -> np.ndarray:
    """Every window of the padded input as one column: (kh·kw·C, Ho·Wo·N). `threads`: the
    offsets shared between threads (see parallel), else copied on this one."""
    c, _, _, n = xp.shape
    cols = memory.empty((kh, kw, c, ho, wo, n), xp.dtype) if out is None else out

    def offsets(a: int, b: int) -> None:  # one block copy per filter offset, runs of Wo·N values
        for offset in range(a, b):
            i, j = divmod(offset, kw)
            cols[i, j] = window(xp, i, j, sh, sw, ho, wo)

    if threads:
        parallel.each(offsets, kh * kw, cols.size)
    else:
        offsets(0, kh * kw)
    return cols.reshape(kh * kw * c, ho * wo * n)


def col2im(dcols: np.ndarray, padded_shape: tuple[int, ...], kh: int, kw: int, sh: int, sw: int,
           ho: int, wo: int) -> np.ndarray:
    """The adjoint of im2col: add each window's gradient back where the window came from."""
    dxp = memory.zeros(padded_shape, dcols.dtype)  # C×Hp×Wp×N
    add_windows(dcols, dxp, kh, kw, sh, sw, ho, wo)
    return dxp


def add_windows(dcols: np.ndarray, dxp: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int,
                wo: int) -> None:
    """dxp += col2im(dcols): each window's gradient added where the window came from."""
    c, n = dxp.shape[0], dxp.shape[3]
    d = dcols.reshape(kh, kw, c, ho, wo, n)

    def channels(a: int, b: int) -> None:  # windows overlap when S < F, so add
        target = dxp[a:b]
        for i in range(kh):
            for j in range(kw):
                window(target, i, j, sh, sw, ho, wo)[...] += d[i, j, a:b]

    parallel.each(channels, c, dcols.size)


# im2col's matrix is written and at once read back by the product: for fast93's 32 → 32 layer at
# batch 128 it is 115 MB, so both passes stream through main memory. Done in blocks of output
# rows, each block's matrix (BLOCK_BYTES at most) is still in the cache when the product reads it:
# that layer's forward took 35 ms whole and 18 ms in 4 MB blocks, its weight gradient 34 and
# 19 ms (AMD EPYC Zen 4, 2 cores, 32 MB L3; 1–8 MB blocks measured within noise of each other).
BLOCK_BYTES = 4 << 20
MIN_BLOCKS = 8  # (fast93's first layer, 9 × 100,352 values, was one block and one thread)
# The input gradient's blocks run one after another, each product and each window sum split
# between the threads on its own: for small layers those hand-offs cost more than the cache
# saves (LeNet's conv(16,5): 4.1 ms in blocks, 1.1 ms whole), so below this it is done whole.
WHOLE_BYTES = 16 << 20


class Block(NamedTuple):
    """Output rows h0 … h1 − 1, columns w0 … w1 − 1 (all of them, or part of a single row), and
    where their positions lie in the K × Ho·Wo·N output: columns start … stop − 1."""
    h0: int
    h1: int
    w0: int
    w1: int
    start: int
    stop: int


def blocks(ho: int, wo: int, n: int, depth: int, itemsize: int,
           budget: int | None = None) -> list[Block]:
    """The output split into blocks whose im2col matrix (depth × positions) fits the budget, and
    into MIN_BLOCKS at least, for parallel.spread to share out: whole rows where one row fits,
    else pieces of one row. The split depends on the shapes alone, so the weight gradient's
    sum over the blocks is the same on any number of threads."""
    budget = BLOCK_BYTES if budget is None else budget
    budget = min(budget, max(1, depth * ho * wo * n * itemsize // MIN_BLOCKS))
    row = depth * wo * n * itemsize
    if row <= budget:
        step = budget // row
        return [Block(h0, min(ho, h0 + step), 0, wo, h0 * wo * n, min(ho, h0 + step) * wo * n)
                for h0 in range(0, ho, step)]
    step = max(1, budget // (depth * n * itemsize))
    return [Block(h, h + 1, w0, min(wo, w0 + step), (h * wo + w0) * n,
                  (h * wo + min(wo, w0 + step)) * n)
            for h in range(ho) for w0 in range(0, wo, step)]


def room(scratch: np.ndarray, size: int) -> np.ndarray:
    """The first `size` values of scratch, or a fresh array where a single position's matrix
    is larger than the budget (very deep inputs at a large batch)."""
    return scratch[:size] if size <= scratch.size else np.empty(size, scratch.dtype)


def input_of(xp: np.ndarray, block: Block, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """The part of the padded input that block's windows read (a view)."""
    return xp[:, block.h0 * sh:(block.h1 - 1) * sh + kh, block.w0 * sw:(block.w1 - 1) * sw + kw]


def block_cols(xp: np.ndarray, block: Block, kh: int, kw: int, sh: int, sw: int, ones: bool,
               scratch: np.ndarray) -> np.ndarray:
    """im2col of one block into the start of `scratch` (1-D): (kh·kw·C [+ a row of ones], m)."""
    c, n = xp.shape[0], xp.shape[3]
    bh, bw, m = block.h1 - block.h0, block.w1 - block.w0, block.stop - block.start
    depth = kh * kw * c
    cols = room(scratch, (depth + ones) * m).reshape(depth + ones, m)
    im2col(input_of(xp, block, kh, kw, sh, sw), kh, kw, sh, sw, bh, bw,
           out=cols[:depth].reshape(kh, kw, c, bh, bw, n), threads=False)
    if ones:
        cols[depth] = 1
    return cols


def conv_blocks(xp: np.ndarray, w_mat: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int,
                wo: int, scratch: np.ndarray) -> np.ndarray:
    """y = w_mat @ im2col(xp), block by block: (K, Ho·Wo·N). A last column of w_mat beyond
    kh·kw·C is the bias, against a row of ones. The blocks are shared between threads
    (parallel.spread), thread t building its blocks' matrices in scratch[t]."""
    y = memory.empty((w_mat.shape[0], ho * wo * xp.shape[3]), xp.dtype)
    parts = blocks(ho, wo, xp.shape[3], w_mat.shape[1], xp.itemsize)
    products_over(xp, w_mat, parts, kh, kw, sh, sw, scratch,
                  lambda part, thread: y[:, part.start:part.stop])
    return y


def products_over(xp: np.ndarray, w_mat: np.ndarray, parts: list[Block], kh: int, kw: int,
                  sh: int, sw: int, scratch: np.ndarray,
                  out_of: Callable[[Block, int], np.ndarray],
                  then: Callable[[Block, np.ndarray], None] | None = None) -> None:
    """w_mat @ each block's im2col matrix into out_of(block, thread) (K × the block's
    positions), the blocks shared between threads (parallel.spread), thread t building its
    blocks' matrices in scratch[t]; then(block, output) at once, while it is in the cache."""
    ones = w_mat.shape[1] > kh * kw * xp.shape[0]

    def block(item: int, thread: int) -> None:
        part = parts[item]
        cols = block_cols(xp, part, kh, kw, sh, sw, ones, scratch[thread])
        out = out_of(part, thread)
        blas.product(w_mat, cols, out)
        if then is not None:
            then(part, out)

    positions = sum(part.stop - part.start for part in parts)
    parallel.spread(block, len(parts), w_mat.shape[0] * w_mat.shape[1] * positions)


class RowPooling(Protocol):
    """A pooling that takes the output of the layer before it a block of whole rows at a time
    (pool.MaxPool2D, set as Conv2D.pool_after by the model)."""

    def rows_at_once(self, shape: tuple[int, ...]) -> int | None:
        """The rows a block of an input of `shape` must be a multiple of, or None where it
        takes no blocks."""
        ...

    def receive(self, shape: tuple[int, ...], dtype: np.dtype, training: bool, by_rows: bool
                ) -> tuple[np.ndarray, Callable[[np.ndarray, int], None]]:
        """Its output, and the function each block (C×r×W×N, from input row h0) goes to;
        `by_rows`: its backward passes its dy on as it is, for gradient_rows."""
        ...

    def gradient_rows(self, dy: np.ndarray) -> Callable[[np.ndarray, int], None]:
        """The function that writes the gradient of a block of its input rows (C×r×W×N, from
        input row h0) into a given array, for the dy its backward passed on."""
        ...


# With a max pooling after it, the convolution's output need never be written whole: each block
# of output rows is pooled at once, while it is in the cache. A block's im2col matrix and output
# together of POOLED_BYTES at most (whole rows, a multiple of the pooling's): the first layers of
# fast91, fast93 and `best` (1 → 16, 24, 32 filters, 28×28, batch 256) forward and pooled
# 3.9 → 2.6–2.9, 5.9–6.8 → 4.0–4.8, 8.1–9.2 → 4.8–5.5 ms (scratch, interleaved; blocks of 2 or
# 8 rows slower than 4–6; AMD EPYC Zen 4, 2026-12-04). It pays where writing the output is
# much of the work, a matrix no deeper than POOLED_DEPTH times the filters: 3 → 32 at 32×32
# 1.27×, 4 → 32 at 28×28 1.34×, 3 → 16 and 8 → 16 1.03×; but 16 → 32 at 14×14 (144 deep)
# 0.89×, 32 → 64 and 64 → 64 1.00× (forward and pooling, batch 256, im2col's blocks alone).
POOLED_BYTES = 5 << 20
POOLED_DEPTH = 2


def pooled_blocks(ho: int, wo: int, n: int, depth: int, k: int, multiple: int,
                  itemsize: int) -> list[Block] | None:
    """Blocks of whole output rows, a multiple of `multiple` each (Ho is one), whose matrix
    (depth deep) and output (K filters) fit POOLED_BYTES where `multiple` rows do; None where
    the matrix is deeper than POOLED_DEPTH·K (the product, not the output, is the work), or
    where the matrix of `multiple` rows alone is larger than a thread's space for it
    (BLOCK_BYTES: large images, deep windows), which conv_blocks fills a piece of a row at a
    time."""
    if depth > POOLED_DEPTH * k or multiple * depth * wo * n * itemsize > BLOCK_BYTES:
        return None
    row = (depth + k) * wo * n * itemsize
    step = multiple * max(1, POOLED_BYTES // (multiple * row))
    return [Block(h0, min(ho, h0 + step), 0, wo, h0 * wo * n, min(ho, h0 + step) * wo * n)
            for h0 in range(0, ho, step)]


def conv_blocks_pooled(xp: np.ndarray, w_mat: np.ndarray, kh: int, kw: int, sh: int, sw: int,
                       ho: int, wo: int, scratch: np.ndarray, outputs: np.ndarray,
                       pooling: RowPooling, parts: list[Block], training: bool,
                       by_rows: bool) -> np.ndarray:
    """conv_blocks with a max pooling after it: each block of output rows (`parts`, from
    pooled_blocks) into outputs[thread] and handed to the pooling (RowPooling.receive) at
    once. Returns the pooling's output; the convolution's own is never whole. `by_rows`: the
    gradient will be asked for by rows too (weight_grad_blocks_pooled)."""
    k, n = w_mat.shape[0], xp.shape[3]
    pooled, pool_rows = pooling.receive((k, ho, wo, n), xp.dtype, training, by_rows)
    products_over(xp, w_mat, parts, kh, kw, sh, sw, scratch,
                  lambda part, thread: room(outputs[thread], k * (part.stop - part.start))
                  .reshape(k, -1),
                  lambda part, y: pool_rows(y.reshape(k, part.h1 - part.h0, wo, n), part.h0))
    return pooled


def weight_grad_blocks(xp: np.ndarray, dy2: np.ndarray, kh: int, kw: int, sh: int, sw: int,
                       ho: int, wo: int, ones: bool, scratch: np.ndarray) -> np.ndarray:
    """dL/dW = Σ over positions of window ⊗ dy, block by block: (kh·kw·C [+ 1], K); the last row
    (with `ones`) is Σ dy per filter, the bias's gradient. Each block's share is a product of its
    own, summed in block order afterwards: the same bits on any number of threads."""
    parts = blocks(ho, wo, xp.shape[3], kh * kw * xp.shape[0] + ones, xp.itemsize)
    return grads_over(xp, parts, dy2.shape[0], lambda part, thread: dy2[:, part.start:part.stop],
                      kh, kw, sh, sw, ones, scratch)


def grads_over(xp: np.ndarray, parts: list[Block], k: int,
               dy_of: Callable[[Block, int], np.ndarray], kh: int, kw: int, sh: int, sw: int,
               ones: bool, scratch: np.ndarray) -> np.ndarray:
    """Σ over the blocks of each one's im2col matrix times dy_of(block, thread)ᵀ (K × the
    block's positions): (kh·kw·C [+ 1], K), each block's share a product of its own, summed in
    block order afterwards — the same bits on any number of threads."""
    depth = kh * kw * xp.shape[0] + ones
    shares = np.empty((len(parts), depth, k), xp.dtype)

    def block(item: int, thread: int) -> None:
        part = parts[item]
        dy = dy_of(part, thread)
        cols = block_cols(xp, part, kh, kw, sh, sw, ones, scratch[thread])
        blas.product(cols, dy.T, shares[item])

    parallel.spread(block, len(parts), depth * k * sum(part.stop - part.start for part in parts))
    return shares.sum(axis=0) if len(parts) > 1 else shares[0]


def weight_grad_blocks_pooled(xp: np.ndarray, gradient_rows: Callable[[np.ndarray, int], None],
                              k: int, kh: int, kw: int, sh: int, sw: int, wo: int,
                              ones: bool, scratch: np.ndarray, outputs: np.ndarray,
                              parts: list[Block]) -> np.ndarray:
    """weight_grad_blocks where a max pooling followed (conv_blocks_pooled, `by_rows`): each
    block's dy written by the pooling (RowPooling.gradient_rows) into outputs[thread] and
    multiplied at once, the K × Ho·Wo·N gradient never whole. The same blocks as the forward:
    the same bits on any number of threads."""
    n = xp.shape[3]

    def dy_of(part: Block, thread: int) -> np.ndarray:
        m = part.stop - part.start
        dy = room(outputs[thread], k * m).reshape(k, part.h1 - part.h0, wo, n)
        gradient_rows(dy, part.h0)
        return dy.reshape(k, m)

    return grads_over(xp, parts, k, dy_of, kh, kw, sh, sw, ones, scratch)


def input_grad_blocks(dy2: np.ndarray, w_mat: np.ndarray, padded_shape: tuple[int, ...], kh: int,
                      kw: int, sh: int, sw: int, ho: int, wo: int,
                      scratch: np.ndarray) -> np.ndarray:
    """dL/dxp = col2im(Wᵀ @ dy): C×Hp×Wp×N. Whole where the matrix is at most WHOLE_BYTES, else
    block by block, one after another (neighbouring blocks add to the same rows)."""
    n, depth = padded_shape[3], w_mat.shape[1]
    w_t = w_mat.T
    if depth * dy2.shape[1] * dy2.itemsize <= WHOLE_BYTES:
        return col2im(parallel.matmul(w_t, dy2), padded_shape, kh, kw, sh, sw, ho, wo)
    dxp = memory.zeros(padded_shape, dy2.dtype)
    for block in blocks(ho, wo, n, depth, dy2.itemsize):  # neighbours add to the same rows: serial
        m = block.stop - block.start
        dcols = parallel.matmul(w_t, dy2[:, block.start:block.stop],
                                out=room(scratch[0], depth * m).reshape(depth, m))
        add_windows(dcols, input_of(dxp, block, kh, kw, sh, sw), kh, kw, sh, sw,
                    block.h1 - block.h0, block.w1 - block.w0)
    return dxp


# Shifted products (stride 1) over the padded input laid out row-first. With the padded input
# held as Hp × C × Wp × N (each input row's channels together, the batch innermost), the values
# under kernel column j of the windows of output row h, for every kernel row i and channel c, are
# one (kh·C) × Wo·N matrix read where it lies: its rows (i, c) are rows h·C … (h + kh)·C − 1 of the
# input seen as an Hp·C × Wp·N matrix, its columns a run starting at column j·N. So each output
# row is
#
#     y[:, h] = Σ_j W_j @ xq[h·C … (h + kh)·C, j·N … j·N + Wo·N]            (K × Wo·N)
#
# with W_j the K × (kh·C) weights of kernel column j: kw products kh·C deep that add into the same
# output (β = 1), no im2col matrix written and read back. NumPy's `@` cannot add into its output,
# so these call OpenBLAS's product directly (blas.gemm); where there is none, im2col. The weight
# gradient is the same sum turned round (dW_j += dy[:, h] @ xq[… shifted]ᵀ), the input gradient a
# shifted convolution of the padded dy (laid out row-first too) with the kernel turned 180° (as
# input_grad_by_flipped_kernel). The row-first layout costs nothing: the padded copy is made
# anyway, only in another order. Until 12-04 the products were one per kernel offset over the
# channel-first padded input, C deep, kh·kw of them adding into each output row: OpenBLAS's
# products of an inner size of 16 ran at 50 GFLOP/s on a core against 68 at 48 (fast91's
# 16 → 32 layer), and each output row was read and written kh·kw times instead of kw. Forward,
# weight gradient and input gradient of that layer (14×14, batch 256, 2 cores): 6.5 / 6.7 /
# 7.4 ms one product per offset, 5.7 / 5.5 / 4.9 ms row-first (AMD EPYC Zen 3, AVX2;
# docs/BENCHMARKS.md, "… a seventh time"). Before that, im2col: best's 64 → 64 layer forward +
# backward 119 against 152 ms (bench/conv_paths.py), and shifted products faster on every layer
# with 8 channels and filters or more (8 → 8 at 28×28: 33 against 41 ms), slower with 1–6 input
# channels (the first layer: 29–37 against 16–19 ms; 6 → 16: 20 against 15 ms).
SHIFTED_MIN_CHANNELS = 8  # input channels C and filters K at least
SHIFTED_CHUNK = 4096  # output positions per product
SHIFTED_GROUPS = 8  # the weight gradient's partial sums: fixed, so the bits don't depend on threads
# Item i of the weight gradient's products goes to group i mod SHIFTED_GROUPS (the kernel rows'
# too, ROWS_GROUPS): 14 output rows so give 2 threads 7 each, where runs of two items a group had
# given them 8 and 6 (a 14×14 layer at batch 256; LeNet's 10 rows: 6 and 4)


def shifted_pays() -> bool:
    """Whether shifted products are the engine's choice on this CPU. Measured faster than
    im2col's blocks where the vectors are AVX2's (AMD EPYC Zen 3: 6–13% on the recipes' whole
    training steps one product per kernel offset, 7–13% more since laid out row-first) and on
    AMD's AVX-512 (Zen 4, 2026-12-04: the batch-norm networks' training steps 1.10–1.29×
    faster with the OpenBLAS kernels cpu.blas_kernels asks for there, 0.97–1.19× with
    OpenBLAS's own); on Intel's AVX-512 this code has not been measured yet (an earlier
    version, NumPy's products with no adding into the output, lost to the blocks on an Intel
    Xeon), so those keep im2col until it is (bench/conv_paths.py and bench/engine_speed.py
    --convs im2col shifted time both). CONVNET_NUMPY_CONV=shifted or =im2col decides
    instead."""
    given = os.environ.get("CONVNET_NUMPY_CONV", "").strip().lower()
    if given in ("shifted", "im2col"):
        return given == "shifted"
    cpu = this_cpu()
    return "avx512f" not in cpu.flags or cpu.vendor == "AuthenticAMD"


def row_groups(ho: int, stack: int, row: int, chunk: int) -> list[tuple[int, int, int, int]]:
    """(first output row h, rows r ≤ stack, first position, positions) of each product over
    output rows h … h + r − 1, `chunk` of their `row` positions (Wo·N) at most: the shifted
    products' items (a row each) and the kernel rows' (rows_stacked rows each)."""
    return [(h, min(stack, ho - h), s, min(chunk, row - s))
            for h in range(0, ho, stack) for s in range(0, row, chunk)]


def turn_round(source: np.ndarray, out: np.ndarray,
               bias: np.ndarray | None = None) -> np.ndarray:
    """out[b, a] = source[a, b] (+ bias[b]) for source (A, B, M) and out (B, A, M): a
    row-first output filter-first or a filter-first gradient row-first, out's first axis shared
    between the threads."""
    def part(lo: int, hi: int) -> None:
        view = source[:, lo:hi].transpose(1, 0, 2)
        if bias is None:
            np.copyto(out[lo:hi], view)
        else:
            np.add(view, bias[lo:hi, None, None], out=out[lo:hi])

    parallel.each(part, out.shape[0], out.size)
    return out


def pad_rows(x: np.ndarray, pads: tuple[int, int, int, int],
             out: np.ndarray | None = None) -> np.ndarray:
    """x (C×H×W×N) laid out row-first, Hp × C × Wp × N, with `pads` zeros (top, bottom, left,
    right) around each map; into `out` where given, whose border must be zeros already (only
    the inside is written)."""
    c, h, w, n = x.shape
    shape = (h + pads[0] + pads[1], c, w + pads[2] + pads[3], n)
    xq = memory.zeros(shape, x.dtype) if out is None else out
    if xq.shape != shape or not xq.flags.c_contiguous:
        raise ValueError(f"the row-first padded maps are {shape} and compact, not {xq.shape}")

    def rows(a: int, b: int) -> None:
        xq[pads[0] + a:pads[0] + b, :, pads[2]:pads[2] + w] = x[:, a:b].transpose(1, 0, 2, 3)

    parallel.each(rows, h, xq.size)
    return xq


def _shifted_gemm(xq: np.ndarray, kh: int, kw: int, ho: int, wo: int,
                  other: np.ndarray) -> blas.Gemm:
    """The product for shifted runs over xq (Hp × C × Wp × N), after checking what the raw
    addresses rely on: xq and the other operand compact and of one dtype, the runs inside xq
    (Ho = Hp − kh + 1, Wo = Wp − kw + 1). (Errors here are the engine's, never a user's.)"""
    gemm = blas.gemm(xq.dtype)
    hp, _, wp, _ = xq.shape
    if gemm is None or other.dtype != xq.dtype or not other.flags.c_contiguous or \
            not xq.flags.c_contiguous:
        raise ValueError("shifted products need OpenBLAS's product and compact operands")
    if (ho, wo) != (hp - kh + 1, wp - kw + 1):
        raise ValueError(f"{ho}×{wo} is not the stride-1 output of {hp}×{wp} by {kh}×{kw}")
    return gemm


def shifted_weights(weight: np.ndarray) -> np.ndarray:
    """A K×C×kh×kw weight as the shifted products use it: W_j, (kw, K, kh·C), rows (i, c)."""
    k, c, kh, kw = weight.shape
    return np.ascontiguousarray(weight.transpose(3, 0, 2, 1).reshape(kw, k, kh * c))


def conv_shifted(xq: np.ndarray, w_cols: np.ndarray, ho: int, wo: int,
                 bias: np.ndarray | None) -> np.ndarray:
    """The stride-1 convolution of the row-first padded input xq (Hp × C × Wp × N, see
    pad_rows) with w_cols (kw × K × kh·C, see shifted_weights) by shifted products:
    (K, Ho·Wo·N)."""
    kw, k, depth = w_cols.shape
    hp, c, wp, n = xq.shape
    if depth % c:
        raise ValueError(f"weights {depth} deep for {c} input channels")
    gemm = _shifted_gemm(xq, depth // c, kw, ho, wo, w_cols)
    y = memory.empty((k, ho * wo * n), xq.dtype)
    size = xq.itemsize
    x0, y0, w0 = xq.ctypes.data, y.ctypes.data, w_cols.ctypes.data
    ldx, ldy, row = wp * n, y.shape[1], wo * n
    items = row_groups(ho, 1, wo * n, SHIFTED_CHUNK)

    def item(index: int, thread: int) -> None:
        h, _, start, m = items[index]
        out = y0 + (h * row + start) * size
        if bias is not None:
            y[:, h * row + start:h * row + start + m] = bias[:, None]
        for j in range(kw):
            beta = 0.0 if bias is None and j == 0 else 1.0
            gemm(k, m, depth, w0 + j * k * depth * size, depth,
                 x0 + (h * c * ldx + j * n + start) * size, ldx, beta, out, ldy)

    parallel.spread(item, len(items), kw * k * depth * y.shape[1])
    return y


def weight_grad_shifted(xq: np.ndarray, dy2: np.ndarray, kh: int, kw: int, ho: int,
                        wo: int) -> np.ndarray:
    """dL/dW_jᵀ = Σ over output positions of the input under kernel column j (all kernel rows)
    ⊗ dy, by shifted products: (kw, kh·C, K), rows (i, c) as shifted_weights' columns. (Turned
    so, each product the shifted input times dyᵀ, OpenBLAS's Haswell kernels ran them 1–4%
    faster than dy times the shifted inputᵀ: fast93's, best's and fast91's layers, AMD EPYC Zen
    4, 2026-12-04.) The runs are summed in SHIFTED_GROUPS fixed groups, added in order
    afterwards: the same bits on any number of threads."""
    gemm = _shifted_gemm(xq, kh, kw, ho, wo, dy2)
    _, c, wp, n = xq.shape
    k, depth = dy2.shape[0], kh * c
    if dy2.shape[1] != ho * wo * n:
        raise ValueError(f"dy has {dy2.shape[1]} positions, not {ho}·{wo}·{n}")
    items = row_groups(ho, 1, wo * n, SHIFTED_CHUNK)
    groups = min(SHIFTED_GROUPS, len(items))
    shares = np.zeros((groups, kw, depth, k), xq.dtype)
    size = xq.itemsize
    x0, d0 = xq.ctypes.data, dy2.ctypes.data
    ldx, ldd, row = wp * n, dy2.shape[1], wo * n

    def group(index: int, thread: int) -> None:
        w0 = shares[index].ctypes.data
        for h, _, start, m in items[index::groups]:  # dealt round: see SHIFTED_GROUPS
            for j in range(kw):
                gemm(depth, k, m, x0 + (h * c * ldx + j * n + start) * size, ldx,
                     d0 + (h * row + start) * size, ldd, 1.0,
                     w0 + j * depth * k * size, k, trans_b=True)

    parallel.spread(group, groups, kw * k * depth * dy2.shape[1])
    return shares.sum(axis=0) if groups > 1 else shares[0]


def pad_maps(x: np.ndarray, pads: tuple[int, int, int, int],
             out: np.ndarray | None = None) -> np.ndarray:
    """x (C×H×W×N) with `pads` zeros (top, bottom, left, right) around each map; into `out`
    where given, whose border must be zeros already (only the inside is written)."""
    c, h, w, n = x.shape
    shape = (c, h + pads[0] + pads[1], w + pads[2] + pads[3], n)
    xp = memory.zeros(shape, x.dtype) if out is None else out
    if xp.shape != shape:
        raise ValueError(f"the padded maps are {shape}, not {xp.shape}")

    def channels(a: int, b: int) -> None:
        xp[a:b, pads[0]:pads[0] + h, pads[2]:pads[2] + w] = x[a:b]

    parallel.each(channels, c, xp.size)
    return xp


# When to compute by kernel rows (see conv_by_rows) instead of im2col: with few filters K the
# full product reads a K-times larger matrix than it writes and is memory-bound; the rows
# variant copies the input kw times, not kh·kw. Measured with bench/profile_layers.py: LeNet's
# first layer (K = 6, 5×5×3) trains 1.6× faster; for K ≥ 16 im2col is as fast or faster (AMD
# EPYC Zen 4, 2026-11-30, when each chunk was kh products kw·C deep; laid out row-first since
# 12-04, one product kh·kw·C deep per output row: LeNet's whole step 1.11× faster on the Zen 3).
# And with few input channels (fewer than ROWS_FEW_CHANNELS) and windows kh·kw·C of
# ROWS_DEEP_WINDOW values or more, by kernel rows whatever the filters: im2col's blocks there are
# kh·kw copies of thin runs and its input gradient adds kh·kw windows back (or convolves dy with
# a few output channels), where kernel rows copy kw times and add each output row's share in its
# product. Forward + backward, batch 128 (bench/conv_paths.py, AMD EPYC Zen 3, 2026-12-04): 6 → 16,
# 24, 32, 64 filters, 5×5 on 14×14: 4.8 / 5.6 / 7.1 / 8.9 ms against im2col's 7.3 / 9.2 / 10.4 /
# 12.8; 3 → 24, 5×5 padded, 32×32: 17.3 against 50.0; 6 → 16, 3×3 on 28×28: 12.5 against 16.3;
# but 3 → 16, 32, 64, 3×3 (27 deep): 12.6 / 16.7 / 25.5 against 11.7 / 15.1 / 24.3 — im2col.
ROWS_MAX_FILTERS = 16
ROWS_FEW_CHANNELS = 8
ROWS_DEEP_WINDOW = 48
ROWS_MIN_DEPTH = 8  # kw·C: the widened rows per input row
ROWS_CHUNK = 8192  # positions per product at most (an output row is Wo·N)
ROWS_GROUPS = 8  # the weight gradient's partial sums: fixed, so the bits don't depend on threads


def widen(xp: np.ndarray, kw: int, sw: int, wo: int, out: np.ndarray) -> np.ndarray:
    """Unroll only the width, laid out row-first: xw[h, j, c, b, n] = xp[c, h, b·S + j, n],
    returned as the (Hp·kw·C, Wo·N) matrix whose rows h·kw·C … (h + kh)·kw·C − 1 are the im2col
    matrix of output row h (rows (i, j, c)): one plain slice."""
    c, hp, _, n = xp.shape
    xw = out.reshape(hp, kw, c, wo, n)

    def rows(a: int, b: int) -> None:
        for j in range(kw):
            xw[a:b, j] = xp[:, a:b, j:j + sw * (wo - 1) + 1:sw, :].transpose(1, 0, 2, 3)

    parallel.each(rows, hp, out.size)
    return out.reshape(hp * kw * c, wo * n)


# Products of few rows run far below the CPU's peak: OpenBLAS packs the whole (kh·kw·C) × Wo·N
# slice of each output row for K = 6 output rows, and its time hardly grows with more rows — on
# the AVX2 EPYC (one core) 6 rows of a 75-deep product ran at 18 GFLOP/s, 12 at 34, 16 at 35.
# So with few filters one product computes R neighbouring output rows: its weights hold W R
# times, row r's copy kw·C columns further on (zeros around), against the R rows' input rows —
# one slice of the widened input, (kh + R − 1)·kw·C deep — into an output laid out row-first
# (Ho × K × Wo·N), turned round (and the bias added) in one pass afterwards. R·K ≈ ROWS_STACK:
# LeNet's first layer (K = 6, R = 2) forward 1.29–1.34× and weight gradient 1.36–1.42× faster;
# K = 3, 4 and 8 (R = 4, 3, 2) 1.8–2.0×, 1.2–1.3×, 1.12×; K = 12 with R = 2 no faster (AMD EPYC
# Zen 3, 2026-12-04, batch 128 and 256).
ROWS_STACK = 12


def rows_stacked(k: int) -> int:
    """How many neighbouring output rows one kernel-rows product computes for K filters."""
    return max(1, int(ROWS_STACK / k + 0.5))


def stacked_weights(w_all: np.ndarray, stack: int, kwc: int) -> np.ndarray:
    """W (K, kh·kw·C) for `stack` output rows at once: (stack·K, kh·kw·C + (stack − 1)·kw·C),
    rows r·K … (r + 1)·K − 1 holding W from column r·kw·C on, zeros elsewhere."""
    k, depth = w_all.shape
    out = np.zeros((stack * k, depth + (stack - 1) * kwc), w_all.dtype)
    for r in range(stack):
        out[r * k:(r + 1) * k, r * kwc:r * kwc + depth] = w_all
    return out


def conv_by_rows(flat: np.ndarray, w_all: np.ndarray, ho: int, kwc: int,
                 bias: np.ndarray | None = None, rows_first: bool = False) -> np.ndarray:
    """The convolution (stride 1 along the height) as one product per output row h:

        y[:, h] = W @ flat[h·kw·C … h·kw·C + kh·kw·C]                 (K × Wo·N)

    W is (K, kh·kw·C), its columns (i, j, c); each output row's im2col matrix is a slice of
    `flat` (widen; kwc = kw·C of its rows per input row), read in place: one product per output
    row (and chunk of ROWS_CHUNK positions), kh·kw·C deep — or per rows_stacked(K) output rows
    (stacked_weights) with few filters. Plus the bias, where given. (K, Ho·Wo·N) — or, with
    `rows_first` where the products' output is laid out row-first (stacked rows), that output
    as it lies, a (K, Ho, Wo·N) view, not turned round: for a max pooling, which reads any
    layout (see MaxPool2D)."""
    k, depth = w_all.shape
    row = flat.shape[1]
    stack = rows_stacked(k)
    items = row_groups(ho, stack, row, ROWS_CHUNK)
    source = blas.matrix(flat)  # (products by address: see blas.product_at)
    if stack == 1:
        y = memory.empty((k, ho * row), flat.dtype)
        weights, out = blas.matrix(np.ascontiguousarray(w_all)), blas.matrix(y)

        def item(index: int, thread: int) -> None:
            h, _, start, m = items[index]
            blas.product_at((weights, 0, 0), (source, h * kwc, start),
                            (out, 0, h * row + start), k, m, depth)

        parallel.spread(item, len(items), k * depth * ho * row)
        if bias is not None:
            y += bias[:, None]
        return y
    weights = blas.matrix(stacked_weights(w_all, stack, kwc))
    y_rows = memory.empty((ho * k, row), flat.dtype)  # row-first: (Ho, K, Wo·N)
    out, laid = blas.matrix(y_rows), y_rows.reshape(ho, k, row)
    start_from = bias if rows_first else None  # the products add to it, item by item

    def rows(index: int, thread: int) -> None:
        h, r, start, m = items[index]
        if start_from is not None:
            laid[h:h + r, :, start:start + m] = start_from[:, None]
        blas.product_at((weights, 0, 0), (source, h * kwc, start), (out, h * k, start),
                        r * k, m, depth + (r - 1) * kwc, beta=0.0 if start_from is None else 1.0)

    parallel.spread(rows, len(items), k * depth * ho * row)
    if rows_first:
        return laid.transpose(1, 0, 2)
    y = turn_round(laid, memory.empty((k, ho, row), flat.dtype), bias)
    return y.reshape(k, ho * row)  # (the bias added on the way)


def rows_first(dy: np.ndarray) -> np.ndarray | None:
    """The memory of a (K, Ho, Wo, N) array laid out row-first, (Ho, K, Wo, N) compact, as
    conv_by_rows' rows_first output lies and the max pooling after it gives its gradient back
    (MaxPool2D); None for any other layout."""
    laid = dy.transpose(1, 0, 2, 3)
    return laid if laid.flags.c_contiguous and not dy.flags.c_contiguous else None


def weight_grad_by_rows(flat: np.ndarray, dy: np.ndarray, ho: int, kwc: int,
                        depth: int) -> np.ndarray:
    """dL/dW = Σ over output rows h of dy[:, h] @ (row h's im2col slice of flat)ᵀ: (K, kh·kw·C),
    the products summed in ROWS_GROUPS fixed groups, added in order afterwards (the same bits on
    any number of threads). With few filters, rows_stacked(K) output rows a product (dy
    row-first for it: as it lies, or turned), each row's share of the stacked result added in
    order afterwards. dy: (K, Ho, Wo, N), K-first or row-first (rows_first)."""
    k, row = dy.shape[0], flat.shape[1]
    stack = rows_stacked(k)
    items = row_groups(ho, stack, row, ROWS_CHUNK)
    groups = min(ROWS_GROUPS, len(items))
    width = depth + (stack - 1) * kwc
    shares = np.zeros((groups, stack * k, width), flat.dtype)
    source = blas.matrix(flat)
    laid = rows_first(dy)
    if stack == 1:
        grads = blas.matrix(np.ascontiguousarray(dy.reshape(k, ho * row)))
    elif laid is not None:  # (Ho·K, Wo·N): the rows of neighbouring output rows one matrix
        grads = blas.matrix(laid.reshape(ho * k, row))
    else:
        grads = blas.matrix(turn_round(dy.reshape(k, ho, row), memory.empty(
            (ho, k, row), dy.dtype)).reshape(ho * k, row))

    def group(index: int, thread: int) -> None:
        share = blas.matrix(shares[index])
        for h, r, start, m in items[index::groups]:  # dealt round: see SHIFTED_GROUPS
            d = (grads, 0, h * row + start) if stack == 1 else (grads, h * k, start)
            blas.product_at(d, (source, h * kwc, start), (share, 0, 0), r * k,
                            depth + (r - 1) * kwc, m, beta=1.0, trans_b=True)

    parallel.spread(group, groups, k * depth * ho * row)
    total = shares.sum(axis=0) if groups > 1 else shares[0]
    if stack == 1:
        return total
    d_w = total[:k, :depth].copy()
    for r in range(1, stack):
        d_w += total[r * k:(r + 1) * k, r * kwc:r * kwc + depth]
    return d_w


ROWS_PARTS = 4  # the input gradient's runs of positions, shared between the threads, at most
# and ROWS_PART_MIN positions each at least: 40 products of 80 positions at LeNet's batch 32 cost
# more than they share. Fewer, longer runs — LeNet's steps, one run against four: batch 16
# 1.085×, 32 1.057×, 64 1.036×; two at 128 1.016× (one 0.99×) (AMD EPYC Zen 4, 2026-12-04)
ROWS_PART_MIN = 512


def input_grad_by_rows(dy: np.ndarray, w_all: np.ndarray, padded_shape: tuple[int, ...],
                       kh: int, kw: int, sw: int, wo: int) -> np.ndarray:
    """The adjoint of conv_by_rows and widen: dL/dxp, C×Hp×Wp×N. Output row h's share,
    Wᵀ @ dy[:, h] (kh·kw·C × Wo·N), is added by the product itself (β = 1) into rows
    h·kw·C … (h + kh)·kw·C − 1 of the widened input's gradient, the rows one after another
    (neighbours overlap) and up to ROWS_PARTS runs of positions side by side, as many as the
    shapes make whatever the threads (OpenBLAS's bits for a value depend on how the positions
    are split); then each of its kw copies into the padded input's gradient. (Until 12-04 kh
    products over all rows, each added afterwards: LeNet's second layer 1.4–2.1× slower.)
    dy: (K, Ho, Wo, N), K-first or row-first (rows_first)."""
    c, hp, wp, n = padded_shape
    k, ho, row = dy.shape[0], dy.shape[1], wo * n
    kwc = kw * c
    depth = kh * kwc
    d_flat = memory.zeros((hp * kwc, row), dy.dtype)  # (Hp, (j, c), Wo·N)
    w_t = np.ascontiguousarray(w_all.T)  # (kh·kw·C, K)
    step = -(-row // max(1, min(ROWS_PARTS, row // ROWS_PART_MIN)))
    parts = [(start, min(step, row - start)) for start in range(0, row, step)]

    laid = rows_first(dy)
    weights, out = blas.matrix(w_t), blas.matrix(d_flat)
    if laid is None:  # output row h's gradient: columns h·Wo·N … of (K, Ho·Wo·N)
        grads, down, across = blas.matrix(np.ascontiguousarray(dy.reshape(k, ho * row))), 0, row
    else:  # rows h·K … of (Ho·K, Wo·N)
        grads, down, across = blas.matrix(laid.reshape(ho * k, row)), k, 0

    def part(index: int, thread: int) -> None:
        start, m = parts[index]
        for h in range(ho):
            blas.product_at((weights, 0, 0), (grads, h * down, h * across + start),
                            (out, h * kwc, start), depth, m, k, beta=1.0)

    parallel.spread(part, len(parts), depth * k * ho * row)
    d_xw5 = d_flat.reshape(hp, kw, c, wo, n)
    dxp = memory.zeros(padded_shape, dy.dtype)

    def rows(a: int, b: int) -> None:  # windows overlap along the width when S < F, so add
        for j in range(kw):
            dxp[:, a:b, j:j + sw * (wo - 1) + 1:sw, :] += d_xw5[a:b, j].transpose(1, 0, 2, 3)

    parallel.each(rows, hp, dxp.size)
    return dxp


def input_grad_by_flipped_kernel(dy: np.ndarray, weight: np.ndarray,
                                 padding: tuple[int, int, int, int], h: int, w: int,
                                 scratch: np.ndarray, shifted: bool = False,
                                 padded: np.ndarray | None = None) -> np.ndarray:
    """dL/dx of a stride-1 convolution as a convolution itself: of dy, padded by F − 1 − P, with
    the kernel turned 180° and its in- and out-channels swapped,

        dx[c, u, v] = Σ_{k, i, j} W[k, c, F−1−i, F−1−j] · dyp[k, u + i, v + j]

    one product per block, where im2col's adjoint (col2im) would first write a kh·kw·C-row matrix
    and then add it back window by window. When K ≤ C the matrix here is no larger, and on
    fast93's 32 → 32 layer the input gradient took 23 ms instead of 38 (batch 128, whole).
    `shifted`: by shifted products (conv_shifted), with no matrix at all, dy padded row-first
    (pad_rows). `padded`: where to pad dy (see pad_maps and pad_rows), else a fresh array."""
    k, c, kh, kw = weight.shape
    top, bottom, left, right = padding
    n = dy.shape[3]
    pads = (kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right)
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, K, kh, kw)
    if shifted:
        dyq = pad_rows(dy, pads, padded)
        return conv_shifted(dyq, shifted_weights(flipped), h, w, None).reshape(c, h, w, n)
    dyp = pad_maps(dy, pads, padded)
    w_mat = flipped.transpose(0, 2, 3, 1).reshape(c, kh * kw * k)
    return conv_blocks(dyp, w_mat, kh, kw, 1, 1, h, w, scratch).reshape(c, h, w, n)


class Conv2D(Layer):
    keeps_output = False
    # Set by the model where a max pooling follows (model.link; with a ReLU between whose work
    # the pooling does): computing by im2col's blocks, this layer hands its output to the
    # pooling a block of rows at a time (conv_blocks_pooled) and returns the pooling's output,
    # which the pooling's forward then takes as it is. Looking inside (shown), its own.
    pool_after: RowPooling | None = None

    def __init__(self, in_channels: int, filters: int, kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int], bias: bool,
                 dtype: np.dtype) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding
        kh, kw = kernel
        self.params["weight"] = np.zeros((filters, in_channels, kh, kw), dtype)  # K×C×kh×kw
        if bias:
            self.params["bias"] = np.zeros((filters,), dtype)

    def _pad(self, x: np.ndarray, training: bool, rows_first: bool = False) -> np.ndarray:
        """x with zeros around each map, in a buffer kept between steps whose border stays
        zero (only its inside is written): no fresh zeros on every forward. `rows_first`: laid
        out Hp × C × Wp × N for shifted products (pad_rows; a copy even with no padding)."""
        top, bottom, left, right = self.padding
        c, h, w, n = x.shape
        hp, wp = h + top + bottom, w + left + right
        if rows_first:
            out = self.workspace((hp, c, wp, n), x.dtype, training, "padded input, rows first",
                                 zeroed=True)
            return pad_rows(x, self.padding, out)
        if not any(self.padding):
            return x
        out = self.workspace((c, hp, wp, n), x.dtype, training, "padded input", zeroed=True)
        return pad_maps(x, self.padding, out)

    def how(self, dtype: np.dtype) -> str:
        """How this layer computes, whatever the images' size and the batch: "shifted" (shifted
        products: stride 1, C and K of SHIFTED_MIN_CHANNELS at least, OpenBLAS at hand, and a
        CPU where they pay), "rows" (kernel rows: few filters, or few channels in deep windows)
        or "im2col"."""
        (kh, kw), (sh, sw) = self.kernel, self.stride
        k, c = self.params["weight"].shape[:2]
        if (sh, sw) == (1, 1) and min(c, k) >= SHIFTED_MIN_CHANNELS and \
                blas.gemm(dtype) is not None and shifted_pays():
            return "shifted"
        few = k < ROWS_MAX_FILTERS or (c < ROWS_FEW_CHANNELS and kh * kw * c >= ROWS_DEEP_WINDOW)
        if sh == 1 and kh > 1 and few and kw * c >= ROWS_MIN_DEPTH:
            return "rows"  # at any size: a floor of 4 MB of im2col matrix made LeNet's steps
            # 1.31×, 1.39×, 1.82×, 1.66× slower at batch 64, 32, 16, 4, its predictions for one
            # image 2.26× (AMD EPYC Zen 3, 2026-12-04)
        return "im2col"

    def scratch(self, dtype: np.dtype, training: bool) -> np.ndarray:
        """The block matrices' space (see blocks), one row per thread, kept between steps."""
        return self.workspace((parallel.threads(), BLOCK_BYTES // np.dtype(dtype).itemsize),
                              dtype, training, "blocks")

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return self._forward(x, training, self.pool_after)

    def shown(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x, False, None)  # its own output, whatever pools it

    def _forward(self, x: np.ndarray, training: bool, pooling: RowPooling | None) -> np.ndarray:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        weight = self.params["weight"]
        k, c = weight.shape[:2]
        top, bottom, left, right = self.padding
        _, h, w, n = x.shape
        hp, wp = h + top + bottom, w + left + right
        ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1  # shapes.infer checked the fit
        how = self.how(x.dtype)
        bias = self.params.get("bias")
        xp = self._pad(x, training, rows_first=how == "shifted")  # (Hp×C×Wp×N for shifted)
        if how == "shifted":
            w_mat = shifted_weights(weight)  # W_j: (kw, K, kh·C)
            y = conv_shifted(xp, w_mat, ho, wo, bias)
            kept = xp  # the weight gradient's products read it again
        elif how == "rows":
            flat = widen(xp, kw, sw, wo, self.workspace((hp * kw * c, wo * n), x.dtype,
                                                        training, "rows"))
            w_mat = weight.transpose(0, 2, 3, 1).reshape(k, kh * kw * c)  # W: (K, (i, j, c))
            # (K, Ho·Wo·N); laid out row-first, with few filters, for a max pooling after it
            y = conv_by_rows(flat, w_mat, ho, kw * c, bias, rows_first=pooling is not None)
            kept = flat
        else:
            w_mat = weight.transpose(0, 2, 3, 1).reshape(k, kh * kw * c)  # (K, kh·kw·C)
            if bias is not None:  # one more column, against a row of ones
                w_mat = np.concatenate([w_mat, bias[:, None]], axis=1)
            multiple = None if pooling is None else pooling.rows_at_once((k, ho, wo, n))
            parts = None if not multiple else \
                pooled_blocks(ho, wo, n, w_mat.shape[1], k, multiple, x.itemsize)
            if pooling is not None and parts:  # pooled a block at a time
                by_rows = training and not self.needs_input_grad  # dy by rows too
                if training:
                    self.cache = (how, xp, w_mat, (c, hp, wp, n), x.shape,
                                  (ho, wo, parts, pooling) if by_rows else None)
                return conv_blocks_pooled(xp, w_mat, kh, kw, sh, sw, ho, wo,
                                          self.scratch(x.dtype, training),
                                          self.output_blocks(x.dtype, training),
                                          pooling, parts, training, by_rows)
            # one number W·x + b per filter and position, block by block
            y = conv_blocks(xp, w_mat, kh, kw, sh, sw, ho, wo, self.scratch(x.dtype, training))
            kept = xp  # the backward rebuilds each block's matrix from it
        if training:
            self.cache = (how, kept, w_mat, (c, hp, wp, n), x.shape, None)
        return y.reshape(k, ho, wo, n)

    def output_blocks(self, dtype: np.dtype, training: bool) -> np.ndarray:
        """The space of the output's (and its gradient's) blocks when a pooling takes them
        (conv_blocks_pooled), one row per thread, kept between steps."""
        return self.workspace((parallel.threads(), POOLED_BYTES // np.dtype(dtype).itemsize),
                              dtype, training, "output blocks")

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        how, kept, w_mat, padded_shape, input_shape, by_rows = self.cache
        self.cache = None
        if by_rows is None:
            k, ho, wo, n = dy.shape
        else:  # dy is the pooling's, which gives it back by rows (im2col; no input gradient)
            (ho, wo, parts, pooling), (k, n) = by_rows, (dy.shape[0], dy.shape[3])
        c = padded_shape[0]
        # (K, Ho·Wo·N), or the pooled positions (by_rows), for every path but kernel rows, which
        # take dy as it lies (a pooling may give it back row-first; reshaping would copy it)
        dy2 = dy if how == "rows" else dy.reshape(k, -1)
        depth = kh * kw * c
        bias = "bias" in self.params
        scratch = self.scratch(dy.dtype, True)
        # dL/dW = Σ over positions of dy ⊗ window: a matrix product with the (im2col) matrix.
        if how == "shifted":
            dy2 = np.ascontiguousarray(dy2)
            d_w = weight_grad_shifted(kept, dy2, kh, kw, ho, wo)  # (kw, (i, c), K)
            self.grads["weight"] = d_w.reshape(kw, kh, c, k).transpose(3, 2, 1, 0).copy()
            if bias:
                self.grads["bias"] = dy2.sum(axis=1)
        elif how == "rows":
            d_w = weight_grad_by_rows(kept, dy, ho, kw * c, depth)  # (K, (i, j, c))
            self.grads["weight"] = d_w.reshape(k, kh, kw, c).transpose(0, 3, 1, 2).copy()
            if bias:  # each output row's sum, then theirs: the same bits whichever way dy lies
                laid = rows_first(dy)
                rows = dy.reshape(k, ho, -1).sum(axis=2) if laid is None else \
                    np.ascontiguousarray(laid.reshape(ho, k, -1).sum(axis=2).T)
                self.grads["bias"] = rows.sum(axis=1)
        else:
            d_w = weight_grad_blocks(kept, dy2, kh, kw, sh, sw, ho, wo, bias, scratch) \
                if by_rows is None else \
                weight_grad_blocks_pooled(kept, pooling.gradient_rows(dy), k, kh, kw, sh, sw,
                                          wo, bias, scratch,
                                          self.output_blocks(dy.dtype, True), parts)
            if bias:
                self.grads["bias"] = d_w[depth].copy()  # the row of ones: Σ dy per filter
            d_w = d_w[:depth]  # ((i, j, c), K): the faster orientation for small K
            self.grads["weight"] = d_w.reshape(kh, kw, c, k).transpose(3, 2, 0, 1).copy()
        if not self.needs_input_grad:
            return None
        top, bottom, left, right = self.padding
        h, w = input_shape[1:3]
        # by the flipped kernel where its matrix is no larger than col2im's (K ≤ C) or col2im's
        # would be done in blocks one after another (fast91's 16 → 32 layer at batch 256:
        # 14.2 ms backward that way, 10 ms so), or with shifted products (no matrix at all)
        large = depth * dy[0].size * dy.itemsize > WHOLE_BYTES
        pads = (kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right)  # dy's, F − 1 − P
        if how != "rows" and (sh, sw) == (1, 1) and (k <= c or large or how == "shifted") and \
                min(pads) >= 0:
            hp, wp = ho + pads[0] + pads[1], wo + pads[2] + pads[3]
            padded = self.workspace((hp, k, wp, n) if how == "shifted" else (k, hp, wp, n),
                                    dy.dtype, True, f"padded gradient, {how}", zeroed=True)
            return input_grad_by_flipped_kernel(dy, self.params["weight"], self.padding, h, w,
                                                scratch, shifted=how == "shifted", padded=padded)
        if how == "rows":
            dxp = input_grad_by_rows(dy, w_mat, padded_shape, kh, kw, sw, wo)
        else:  # the bias has no input
            w_cols = w_mat[:, :depth] if how == "im2col" else \
                w_mat.reshape(kw, k, kh, c).transpose(1, 2, 0, 3).reshape(k, depth)  # shifted's
            dxp = input_grad_blocks(dy2, w_cols, padded_shape, kh, kw, sh, sw, ho, wo, scratch)
        return dxp[:, top:top + h, left:left + w, :]
