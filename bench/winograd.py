"""Winograd's F(2×2, 3×3) for the NumPy engine's 3×3 convolutions, measured against its im2col.

Not in the engine: measured here because it is the one known way to do fewer multiply-adds than
im2col + a BLAS, and the NumPy engine's batch-norm networks are bound by their products
(docs/BENCHMARKS.md, "The NumPy engine on batch-norm networks"). This file holds a whole
implementation (forward, weight gradient, input gradient), checks it against the engine's
Conv2D, then times, interleaved round by round, the engine's layer and this one at 1 and at all
threads, and where each one's forward spends its time on each thread.

    .venv/bin/python bench/winograd.py                       # best's and fast93's 3×3 layers
    .venv/bin/python bench/winograd.py --layers 64,64,14 --batch 128 --rounds 7

The method (Lavin and Gray, 2015). The output is cut into 2×2 tiles. Each tile's four outputs come
from the 4×4 input patch under it (patches overlap by two pixels). Instead of 4 · 9 = 36
multiply-adds per channel pair, the patch d and the kernel g are carried into a 4×4 "Winograd
domain", multiplied there element by element (16), and the 2×2 result carried back:

    Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A

    Bᵀ = [1  0 −1  0]     G = [ 1    0    0 ]     Aᵀ = [1  1  1  0]
         [0  1  1  0]         [ ½    ½    ½ ]          [0  1 −1 −1]
         [0 −1  1  0]         [ ½   −½    ½ ]
         [0  1  0 −1]         [ 0    0    1 ]

For each of the 16 domain positions the sum over the channels is a matrix product, so a layer is
16 products of K × C by C × (tiles · N): 2.25× fewer multiply-adds than im2col's, and the
matrices Bᵀ d B hold 16 values per tile (4 per output) instead of im2col's 9 per output. The
exact same numbers up to float rounding: the outputs differ from the direct sum by a few units in
the last place (the transforms' sums are of like-sized terms).

The backward is Winograd's too. The weight gradient is the transpose of the products: with
dM = A dY Aᵀ per tile (the adjoint of the output transform),

    dU[ξ, ν] = Σ over tiles and images dM[ξ, ν] · V[ξ, ν]ᵀ        (K × C per domain position)
    dW = Gᵀ dU G

and the input gradient of a stride-1 convolution is itself a convolution: of dY, padded by
2 − P, with the kernel turned 180° and its channels swapped (see the engine's conv.py), done
here the same way.

Everything runs a block of tiles at a time (`tiles`), each block's matrices small enough to stay
in the cache between its transform, its product and its transform back, the blocks shared
between threads; the weight gradient is summed over the blocks in block order, so its bits do not
depend on the thread count. Shapes: the engine's C×H×W×N, the batch innermost, so every
transform is a few strided NumPy additions over runs of N values.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import convnet  # noqa: E402,F401  (before NumPy: it picks OpenBLAS's kernels, cpu.py)
import numpy as np  # noqa: E402

from convnet import cpu  # noqa: E402
from convnet.engines.allocator import keep_freed_memory  # noqa: E402
from convnet.engines.numpy import blas, parallel  # noqa: E402
from convnet.engines.numpy.conv import Conv2D  # noqa: E402

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# The largest block: 16 domain positions × max(C, K) channels × its tiles × N, in bytes (--budget;
# on the 64 → 64 layer at 14×14, batch 256, 1 MB was as fast as any of 0.25–4 MB).
BUDGET = 1 << 20


def kernel(weight: np.ndarray) -> np.ndarray:
    """U = G g Gᵀ for every filter and channel: (16, K, C), domain position ξ·4 + ν first."""
    g = G.astype(weight.dtype)
    u = np.einsum("ai,kcij,bj->abkc", g, weight, g, optimize=True)
    return np.ascontiguousarray(u.reshape(16, *weight.shape[:2]))


def kernel_grad(d_u: np.ndarray) -> np.ndarray:
    """dW = Gᵀ dU G: the gradient of `kernel`, (K, C, 3, 3) from (16, K, C)."""
    g = G.astype(d_u.dtype)
    k, c = d_u.shape[1:]
    return np.einsum("ai,abkc,bj->kcij", g, d_u.reshape(4, 4, k, c), g, optimize=True)


def flipped(weight: np.ndarray) -> np.ndarray:
    """The kernel of the input gradient: turned 180°, in- and out-channels swapped, (C, K, 3, 3)."""
    return weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


class Tiles(NamedTuple):
    """Tile rows t0 … t1 − 1 and tile columns s0 … s1 − 1 (all of them, or part of one row)."""
    t0: int
    t1: int
    s0: int
    s1: int

    @property
    def count(self) -> int:
        return (self.t1 - self.t0) * (self.s1 - self.s0)


def tiles(rows: int, cols: int, n: int, width: int, itemsize: int,
          budget: int | None = None) -> list[Tiles]:
    """The rows × cols tiles in blocks of at most `budget` bytes of 16 × width × tiles × N
    values: whole tile rows where one fits, else pieces of one row. Depends on the shapes alone."""
    budget = BUDGET if budget is None else budget
    step = max(1, budget // (16 * width * n * itemsize))
    if step >= cols:
        down = step // cols
        return [Tiles(t, min(rows, t + down), 0, cols) for t in range(0, rows, down)]
    return [Tiles(t, t + 1, s, min(cols, s + step))
            for t in range(rows) for s in range(0, cols, step)]


def scratch_size(c: int, k: int, n: int, itemsize: int) -> int:
    """Values of scratch one thread needs for any block of a C → K layer's forward, weight
    gradient or input gradient (C and K swapped): at most 16·(C + K) values a tile-image for the
    transformed input and the products, as many for the halfway array (its 4·(2·bs + 2) columns
    are at most 16·bs), and half as many for the sums after the products."""
    width = max(c, k)
    most = max(1, BUDGET // (16 * width * n * itemsize))  # tiles in a block, at most
    return 56 * width * most * n


class Scratch:
    """One thread's arrays for a block, carved out of a flat buffer."""

    def __init__(self, buffer: np.ndarray) -> None:
        self.buffer, self.used = buffer, 0

    def take(self, *shape: int) -> np.ndarray:
        size = int(np.prod(shape))
        out = self.buffer[self.used:self.used + size]
        if out.size < size:  # a block larger than the budget foresaw: a fresh array
            return np.empty(shape, self.buffer.dtype)
        self.used += size
        return out.reshape(shape)


def transform_input(xp: np.ndarray, part: Tiles, v: np.ndarray, s: Scratch) -> None:
    """V = Bᵀ d B for every tile of the block, into v (16, C, tiles · N), ξ·4 + ν first."""
    c, n = xp.shape[0], xp.shape[3]
    bt, bs = part.t1 - part.t0, part.s1 - part.s0
    wide = 2 * bs + 2
    top, left = 2 * part.t0, 2 * part.s0
    # along the height: rows 2t + i of the block's columns, i = 0 … 3
    r = [xp[:, top + i:top + i + 2 * bt - 1:2, left:left + wide] for i in range(4)]
    h = s.take(4, c, bt, wide, n)
    np.subtract(r[0], r[2], out=h[0])
    np.add(r[1], r[2], out=h[1])
    np.subtract(r[2], r[1], out=h[2])
    np.subtract(r[1], r[3], out=h[3])
    out = v.reshape(4, 4, c, bt, bs, n)
    for a in range(4):  # along the width
        col = [h[a][:, :, j:j + 2 * bs - 1:2] for j in range(4)]
        np.subtract(col[0], col[2], out=out[a, 0])
        np.add(col[1], col[2], out=out[a, 1])
        np.subtract(col[2], col[1], out=out[a, 2])
        np.subtract(col[1], col[3], out=out[a, 3])


def transform_output(m: np.ndarray, part: Tiles, y: np.ndarray, s: Scratch) -> None:
    """Y = Aᵀ M A for every tile of the block, from m (16, K, tiles · N) into y (K, 2T, 2S, N)."""
    k, n = y.shape[0], y.shape[3]
    bt, bs = part.t1 - part.t0, part.s1 - part.s0
    mm = m.reshape(4, 4, k, bt * bs * n)
    p = s.take(2, 4, k, bt * bs * n)  # along the height: rows 0 and 1 of Aᵀ
    np.add(mm[1], mm[2], out=p[0])
    np.subtract(mm[1], mm[2], out=p[1])
    np.add(p[0], mm[0], out=p[0])
    np.subtract(p[1], mm[3], out=p[1])
    out = y[:, 2 * part.t0:2 * part.t1, 2 * part.s0:2 * part.s1]
    shape = (k, bt, bs, n)
    for i in range(2):  # along the width, into the output's rows 2t + i and columns 2s + j
        q = p[i]
        both = mm[0, :2]  # the products' first two rows are read no more: room for two sums
        np.add(q[1], q[2], out=both[0])
        np.subtract(q[1], q[2], out=both[1])
        np.add(q[0].reshape(shape), both[0].reshape(shape), out=out[:, i::2, 0::2])
        np.subtract(both[1].reshape(shape), q[3].reshape(shape), out=out[:, i::2, 1::2])


def transform_grad(dy: np.ndarray, part: Tiles, dm: np.ndarray, s: Scratch) -> None:
    """dM = A dY Aᵀ for every tile of the block (the adjoint of transform_output), from dy
    (K, 2T, 2S, N) into dm (16, K, tiles · N). A's columns: (1, 0), (1, 1), (1, −1), (0, −1)."""
    k, n = dy.shape[0], dy.shape[3]
    bt, bs = part.t1 - part.t0, part.s1 - part.s0
    g = dy[:, 2 * part.t0:2 * part.t1, 2 * part.s0:2 * part.s1]
    r0, r1 = g[:, 0::2], g[:, 1::2]  # (K, bt, 2·bs, N)
    q = s.take(2, k, bt, 2 * bs, n)
    np.add(r0, r1, out=q[0])
    np.subtract(r0, r1, out=q[1])
    out = dm.reshape(4, 4, k, bt, bs, n)
    for a, row in enumerate((r0, q[0], q[1])):
        c0, c1 = row[:, :, 0::2], row[:, :, 1::2]
        np.copyto(out[a, 0], c0)
        np.add(c0, c1, out=out[a, 1])
        np.subtract(c0, c1, out=out[a, 2])
        np.negative(c1, out=out[a, 3])
    c0, c1 = r1[:, :, 0::2], r1[:, :, 1::2]  # the last row is −r1
    np.negative(c0, out=out[3, 0])
    np.subtract(out[3, 0], c1, out=out[3, 1])
    np.subtract(c1, c0, out=out[3, 2])
    np.copyto(out[3, 3], c1)


def transformed(xp: np.ndarray, part: Tiles, row: np.ndarray) -> tuple[Scratch, np.ndarray]:
    """A block's V = Bᵀ d B (16, C, tiles · N) in a thread's scratch row, and what is left of it."""
    s = Scratch(row)
    v = s.take(16, xp.shape[0], part.count * xp.shape[3])
    transform_input(xp, part, v, s)
    return s, v


def conv(xp: np.ndarray, u: np.ndarray, rows: int, cols: int,
         scratch: np.ndarray) -> np.ndarray:
    """The convolution of the padded input xp (C × ≥ 2·rows + 2 × ≥ 2·cols + 2 × N) with the
    transformed kernel u (16, K, C): (K, 2·rows, 2·cols, N). scratch: one row per thread of at
    least `scratch_size` values."""
    c, n = xp.shape[0], xp.shape[3]
    k = u.shape[1]
    y = np.empty((k, 2 * rows, 2 * cols, n), xp.dtype)
    parts = tiles(rows, cols, n, max(c, k), xp.itemsize)

    def block(item: int, thread: int) -> None:
        s, v = transformed(xp, parts[item], scratch[thread])
        products = s.take(16, k, v.shape[2])
        np.matmul(u, v, out=products)
        transform_output(products, parts[item], y, s)

    parallel.spread(block, len(parts))
    return y


def weight_grad(xp: np.ndarray, dy: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """dU = Σ over tiles of dM · Vᵀ: (16, K, C), from the padded input (as `conv` had it) and the
    output's gradient dy (K, 2·rows, 2·cols, N), zero where the output had no values."""
    c, n = xp.shape[0], xp.shape[3]
    k, rows, cols = dy.shape[0], dy.shape[1] // 2, dy.shape[2] // 2
    parts = tiles(rows, cols, n, max(c, k), xp.itemsize)
    shares = np.empty((len(parts), 16, k, c), xp.dtype)

    def block(item: int, thread: int) -> None:
        s, v = transformed(xp, parts[item], scratch[thread])
        dm = s.take(16, k, v.shape[2])
        transform_grad(dy, parts[item], dm, s)
        np.matmul(dm, v.transpose(0, 2, 1), out=shares[item])

    parallel.spread(block, len(parts))
    return shares.sum(axis=0) if len(parts) > 1 else shares[0]


def pad(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    c, h, w, n = x.shape
    xp = np.zeros((c, h + top + bottom, w + left + right, n), x.dtype)
    xp[:, top:top + h, left:left + w] = x
    return xp


class Layer:
    """A conv(K,3,pad=1,bias=false) layer computed Winograd's way: forward, then backward."""

    def __init__(self, weight: np.ndarray, n: int) -> None:
        self.weight = weight
        k, c = weight.shape[:2]
        self.scratch = np.empty((parallel.threads(), scratch_size(c, k, n, weight.itemsize)),
                                weight.dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[1:3]  # the output is h × w; odd sizes take one more row (column) of tiles
        self.xp = pad(x, 1, 1 + h % 2, 1, 1 + w % 2)
        y = conv(self.xp, kernel(self.weight), -(-h // 2), -(-w // 2), self.scratch)
        return np.ascontiguousarray(y[:, :h, :w]) if h % 2 or w % 2 else y

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k, h, w, n = dy.shape
        even = pad(dy, 0, h % 2, 0, w % 2) if h % 2 or w % 2 else dy
        d_w = kernel_grad(weight_grad(self.xp, even, self.scratch))
        dyp = pad(dy, 1, 1 + h % 2, 1, 1 + w % 2)  # 2 − P = 1
        dx = conv(dyp, kernel(flipped(self.weight)), -(-h // 2), -(-w // 2), self.scratch)
        return d_w, (np.ascontiguousarray(dx[:, :h, :w]) if h % 2 or w % 2 else dx)


def check(c: int, k: int, size: int, n: int, dtype: type) -> float:
    """The largest relative difference from the engine's Conv2D: output, dW, dx."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((c, size, size, n)).astype(dtype)
    dy = rng.standard_normal((k, size, size, n)).astype(dtype)
    engine = Conv2D(c, k, (3, 3), (1, 1), (1, 1, 1, 1), False, np.dtype(dtype))
    engine.params["weight"][...] = rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)
    ours = Layer(engine.params["weight"], n)
    pairs = [(ours.forward(x), engine.forward(x, True))]
    d_w, dx = ours.backward(dy)
    pairs += [(dx, engine.backward(dy.copy())), (d_w, engine.grads["weight"])]
    return max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in pairs)


def forward_phases(layer: Layer, x: np.ndarray) -> list[list[float]]:
    """One forward as `conv` runs it, each thread's seconds in the input transform, the
    products and the output transform."""
    h, w = x.shape[1:3]
    xp = pad(x, 1, 1 + h % 2, 1, 1 + w % 2)
    c, n = xp.shape[0], xp.shape[3]
    u = kernel(layer.weight)
    k = u.shape[1]
    rows, cols = -(-h // 2), -(-w // 2)
    y = np.empty((k, 2 * rows, 2 * cols, n), x.dtype)
    parts = tiles(rows, cols, n, max(c, k), x.itemsize)
    spent = [[0.0, 0.0, 0.0] for _ in range(len(layer.scratch))]

    def block(item: int, thread: int) -> None:
        t0 = time.perf_counter()
        s, v = transformed(xp, parts[item], layer.scratch[thread])
        t1 = time.perf_counter()
        products = s.take(16, k, v.shape[2])
        np.matmul(u, v, out=products)
        t2 = time.perf_counter()
        transform_output(products, parts[item], y, s)
        t3 = time.perf_counter()
        for i, dt in enumerate((t1 - t0, t2 - t1, t3 - t2)):
            spent[thread][i] += dt

    parallel.spread(block, len(parts))
    return spent


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", nargs="+", default=["32,64,14", "64,64,14", "24,48,14", "48,48,14"],
                   help="C,K,size: a conv(K,3,pad=1) on a size×size×C input")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--budget", type=float, default=1.0, help="a block's MB (see BUDGET)")
    args = p.parse_args()
    global BUDGET
    BUDGET = int(args.budget * (1 << 20))
    keep_freed_memory()  # as the engine runs: freed memory kept for reuse
    every = parallel.threads()
    print(f"# {cpu.describe()}; OpenBLAS kernels: {blas.kernel()}; batch {args.batch}, "
          f"{args.rounds} rounds; "
          f"ms, the best of each round's 3, the minimum over rounds")
    for dtype in (np.float64, np.float32):
        print(f"check against the engine's Conv2D ({np.dtype(dtype).name}): largest relative "
              f"difference {max(check(6, 5, 7, 3, dtype), check(16, 32, 8, 2, dtype)):.1e}")
    rng = np.random.default_rng(0)
    for spec in args.layers:
        c, k, size = (int(v) for v in spec.split(","))
        n = args.batch
        x = rng.standard_normal((c, size, size, n), dtype=np.float32)
        dy = rng.standard_normal((k, size, size, n), dtype=np.float32)
        engine = Conv2D(c, k, (3, 3), (1, 1), (1, 1, 1, 1), False, np.dtype(np.float32))
        engine.params["weight"][...] = rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)
        ours = Layer(engine.params["weight"], n)
        runs = {"engine": (lambda: engine.forward(x, True), lambda: engine.backward(dy.copy())),
                "winograd": (lambda: ours.forward(x), lambda: ours.backward(dy))}
        best: dict[tuple[str, int], list[float]] = {}
        phases: dict[int, list[list[float]]] = {}
        for _ in range(args.rounds):
            for threads in sorted({1, every}):
                os.environ["CONVNET_NUMPY_THREADS"] = str(threads)
                with blas.one_core():
                    for name, (fwd, bwd) in runs.items():
                        fwd()
                        f, b = best_of(fwd, 3), best_of(lambda: (fwd(), bwd()), 3)
                        old = best.get((name, threads), [f, b - f])
                        best[(name, threads)] = [min(old[0], f), min(old[1], b - f)]
                    spent = forward_phases(ours, x)
                    if threads not in phases or \
                            sum(map(sum, spent)) < sum(map(sum, phases[threads])):
                        phases[threads] = spent
        os.environ.pop("CONVNET_NUMPY_THREADS")
        print(f"\nconv {c} → {k} at {size}×{size}, batch {n}:")
        for threads in sorted({1, every}):
            (ef, eb), (wf, wb) = best[("engine", threads)], best[("winograd", threads)]
            print(f"  {threads} thread{'s' if threads > 1 else ' '}: engine forward {ef:6.1f} "
                  f"backward {eb:6.1f} | winograd forward {wf:6.1f} backward {wb:6.1f} | "
                  f"engine ÷ winograd {(ef + eb) / (wf + wb):.2f}×")
        for threads, spent in sorted(phases.items()):
            cells = "; ".join(f"thread {t}: {a * 1e3:.1f} / {b * 1e3:.1f} / {c_ * 1e3:.1f}"
                              for t, (a, b, c_) in enumerate(spent[:threads]))
            print(f"  winograd forward on {threads}, transform in / products / transform out: "
                  f"{cells}")


if __name__ == "__main__":
    main()
