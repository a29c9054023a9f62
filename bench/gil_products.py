"""The NumPy engine's products on its own threads: NumPy's `@` against OpenBLAS's product called
through ctypes (`convnet.engines.numpy.blas.product`, what the engine runs since 2026-12-03).

NumPy's `@` keeps Python's GIL while it multiplies when the result has fewer than 500 values, so
two threads each running such a product take turns. The engine's weight gradients of small
layers are such products (fast91's first conv: a 9 × 16 result summed over 21,504 positions a
block), shared between its threads by parallel.spread. Two parts, each interleaved round by round
in one process:

1. One product of an m × 40,000 and a 40,000 × n matrix, twice: one after the other on this
   thread, and on two threads at once, by NumPy's `@` and by blas.product (OpenBLAS on one
   thread) — results of 144 to 900 values.
2. Whole training steps of the engine (SGD, the batch given) with the products inside its
   threads done by NumPy's `@` (as before) and by blas.product: the median and minimum of
   --rounds rounds of --steps steps each.

    .venv/bin/python bench/gil_products.py
    .venv/bin/python bench/gil_products.py --networks fast91 lenet --rounds 8 --steps 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import convnet  # noqa: E402,F401  (before NumPy: it picks OpenBLAS's kernels, cpu.py)
import numpy as np  # noqa: E402

from convnet import Network, cpu  # noqa: E402
from convnet.engines.numpy import blas  # noqa: E402

NETWORKS = {  # (description, input, batch): the lecture's, as bench/engine_speed.py, and recipes'
    "lenet": ("conv(6,5) relu pool(2) conv(16,5) relu pool(2) fc(120) relu fc(84) relu fc(10)",
              (32, 32, 3), 128),
    "mnist-cnn": ("conv(32,3,pad=same) relu pool(2) conv(64,3,pad=same) relu pool(2) fc(128) "
                  "relu fc(10)", (28, 28, 1), 128),
    "fast91": (None, (28, 28, 1), 256),
    "fast93": (None, (28, 28, 1), 256),
    "best": (None, (28, 28, 1), 256),
}
OUTPUTS = [(9, 16), (20, 24), (16, 31), (22, 23), (24, 24), (30, 30)]


def numpys(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta: float = 0.0) -> np.ndarray:
    """The products as the engine ran them before: NumPy's `@`."""
    if beta == 0.0:
        return np.matmul(a, b, out=out)
    out += a @ b
    return out


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def products(rounds: int) -> None:
    print("1. one product, m × 40,000 by 40,000 × n, two of them: ms one after the other and "
          "on two threads at once (minimum of rounds)")
    print(f"{'result':>14} {'@ serial':>9} {'@ 2 threads':>12} {'product serial':>15} "
          f"{'product 2 threads':>18}")
    pool = ThreadPoolExecutor(2)
    rng = np.random.default_rng(0)
    with blas.one_core():
        for m, n in OUTPUTS:
            a = rng.random((m, 40_000), dtype=np.float32)
            b = rng.random((40_000, n), dtype=np.float32)
            outs = np.empty((2, m, n), np.float32)
            ways: list[Callable[[], None]] = []
            for product in (numpys, blas.product):
                def serial(product=product) -> None:
                    product(a, b, outs[0])
                    product(a, b, outs[1])

                def two(product=product) -> None:
                    other = pool.submit(product, a, b, outs[1])
                    product(a, b, outs[0])
                    other.result()
                ways += [serial, two]
            spent = [[timed(way, 5) for way in ways] for _ in range(rounds)]  # interleaved
            cells = [min(times) * 1e3 for times in zip(*spent)]
            print(f"{m:>4} × {n:<3} = {m * n:3} {cells[0]:9.2f} {cells[1]:12.2f} "
                  f"{cells[2]:15.2f} {cells[3]:18.2f}")


def steps(names: list[str], rounds: int, count: int) -> None:
    from convnet.recipes import FP32, RECIPES
    print(f"\n2. training steps (SGD), the threads' products by NumPy's @ and by blas.product, "
          f"{rounds} rounds × {count} steps interleaved: ms a step, median (min)")
    print(f"{'network':10} {'batch':>5} {'@':>16} {'blas.product':>16} {'ratio':>6}")
    engine_product = blas.product
    for name in names:
        text, shape, batch = NETWORKS[name]
        if text is None:
            text = {**RECIPES[name], **FP32.get(name, {})}["network"]
        net = Network(text, input=shape, seed=0, lr=0.05)
        rng = np.random.default_rng(0)
        x = rng.random((batch, *shape), dtype=np.float32)
        y = rng.integers(0, 10, batch)
        spent: dict[str, list[float]] = {"@": [], "product": []}
        try:
            for _ in range(rounds):
                for label, product in (("@", numpys), ("product", engine_product)):
                    blas.product = product  # what conv.py and parallel.py call
                    spent[label].append(timed(lambda: net.train_step(x, y), count) * 1e3)
        finally:
            blas.product = engine_product
        old, new = statistics.median(spent["@"]), statistics.median(spent["product"])
        print(f"{name:10} {batch:5} {old:8.2f} ({min(spent['@']):5.2f}) "
              f"{new:8.2f} ({min(spent['product']):5.2f}) {old / new:5.2f}×")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    args = p.parse_args()
    if blas.gemm(np.float32) is None:
        sys.exit("this NumPy's BLAS is not an OpenBLAS whose product convnet can call: "
                 "the engine uses NumPy's @ here, nothing to compare")
    print(f"# {cpu.describe()}; numpy {np.__version__} (OpenBLAS kernels: {blas.kernel()})\n")
    products(args.rounds)
    steps(args.networks, args.rounds, args.steps)


if __name__ == "__main__":
    main()
