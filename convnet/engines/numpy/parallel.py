"""The engine's work on every core. NumPy runs a ufunc on one thread; with the matrix work fast,
batch norm, ReLU, pooling and the copies of im2col became most of a batch-norm network's step.
NumPy releases the GIL inside a ufunc's loop (and inside a matrix product), so the channels of a
C×… array can be handed to a few threads at once, each doing its rows; and while a batch runs the
BLAS is kept on one thread (blas.py) and the large products are shared out here instead.

    batch()                a context around a batch: the BLAS on one core, the thread count
                           read once
    parts(n)               the row ranges [(start, stop), …] of n rows, one per thread (one range
                           when the work is too small to pay for the threads)
    each(fn, n, size)      fn(start, stop) for every range, in parallel; the results in order
    spread(fn, count)      fn(item, thread) for items 0 … count − 1, each taken by the next
                           thread free, with the BLAS on one thread (blas.one_core): T products
                           side by side
    matmul(a, b, out)      a @ b, its output's columns (or rows) shared between the threads

Where the BLAS's threads can't be set (blas.available() is False), `spread` runs the items on
the calling thread and `matmul` is NumPy's: the BLAS splits each product itself.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import numpy as np

from . import blas, memory

T = TypeVar("T")
MIN_VALUES = 1 << 17  # below this many values a thread's start costs more than it saves


def threads() -> int:
    """How many threads share element-wise work: CONVNET_NUMPY_THREADS, else OMP_NUM_THREADS
    (which the matrix products follow too), else the cores this process may use (at most 8);
    inside `batch`, the count it found on entering (on this thread)."""
    fixed = getattr(_batch, "threads", None)
    if fixed is not None:
        return fixed
    for name in ("CONVNET_NUMPY_THREADS", "OMP_NUM_THREADS"):
        given = os.environ.get(name, "").strip()
        if given.isdigit() and int(given) > 0:
            return int(given)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


_batch = threading.local()  # .threads: threads() for the batch this thread runs (see batch)


@contextmanager
def batch() -> Iterator[None]:
    """Around a batch's forward or backward: the BLAS on one core (blas.one_core: the large
    products shared out by `spread` and `matmul` instead) and the thread count looked up once —
    two environment variables and the process's cores, some fifty times a step, took 2% of
    LeNet's training step (AMD EPYC Zen 4, 2026-12-04). Per calling thread (a server's
    requests run batches side by side); nested, the outer count holds."""
    outer = getattr(_batch, "threads", None)
    if outer is None:
        _batch.threads = threads()
    try:
        with blas.one_core():
            yield
    finally:
        _batch.threads = outer


_pool: ThreadPoolExecutor | None = None
_size = 0


def _executor(count: int) -> ThreadPoolExecutor:
    global _pool, _size
    if _pool is None or _size < count:  # (a larger pool serves fewer ranges too)
        _pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="convnet-numpy")
        _size = count
    return _pool


def parts(n: int, values: int) -> list[tuple[int, int]]:
    """Row ranges of n rows holding `values` values in all: one per thread, or one range."""
    count = min(threads(), n)
    if count <= 1 or values < MIN_VALUES:
        return [(0, n)]
    step = -(-n // count)
    return [(start, min(n, start + step)) for start in range(0, n, step)]


def each(fn: Callable[[int, int], T], n: int, values: int) -> list[T]:
    """fn(start, stop) over the row ranges of `parts`, in parallel when there are several."""
    ranges = parts(n, values)
    if len(ranges) == 1:
        return [fn(*ranges[0])]
    pool = _executor(len(ranges))
    futures = [pool.submit(fn, start, stop) for start, stop in ranges[1:]]
    first = fn(*ranges[0])  # this thread does a share too
    return [first] + [future.result() for future in futures]


# `spread`'s items go to whichever thread is free, not thread t to items t, t + T, …: a thread
# woken from sleep starts tens of microseconds late (26 µs back to back, 65–174 µs after 0.2–5 ms
# idle, AMD EPYC Zen 4 KVM guest), and a core the host slows for a while holds up every item
# dealt to it. Which thread computes an item changes no bits: each item writes its own output
# (a product's rows, a weight gradient's group, summed in order afterwards).


# Multiply-adds (all items together) below which `spread` keeps its items on this thread: handing
# work to a second thread and waiting for it costs 55–120 µs here (a no-op round trip through
# two locks 55 µs, through the pool 68 µs; AMD EPYC Zen 4 KVM guest, 2026-12-04), where a core
# does a small product's 4–8 M multiply-adds in some 100–200 µs. LeNet's training steps
# (interleaved, in one process, against no threshold): 8 M at batch 4 1.57×, 16 1.17–1.27×, 32
# 0.97–1.08× (1.09× against 4 M), 64 0.94–1.00×, 128 1.00× (nothing that small there); 4 M
# 1.59×, 1.13–1.16×, 0.97–1.02×; the 28x28 CNN at 8–64 within the noise (1.03× at 32 against 4 M),
# fast91's network at batch 256 1.02× against 4 M.
MIN_SPREAD = 1 << 23


def spread_threads(count: int, work: int | None = None) -> int:
    """How many threads `spread` uses for `count` items of `work` multiply-adds in all."""
    if not blas.available() or (work is not None and work < MIN_SPREAD):
        return 1
    return min(threads(), count)


def spread(fn: Callable[[int, int], None], count: int, work: int | None = None) -> None:
    """fn(item, thread) for every item, each item taken by the next thread free (see the note
    above spread_threads); on this thread alone where the items' `work` (multiply-adds in all)
    is below MIN_SPREAD. fn must not call `each`, `spread` or `matmul`."""
    width = spread_threads(count, work)
    taken = itertools.count()  # (its next() is one step under the GIL: no item taken twice)

    def run(thread: int) -> None:
        while (item := next(taken)) < count:
            fn(item, thread)

    if width == 1:
        run(0)
        return
    with blas.one_core():
        pool = _executor(width)
        futures = [pool.submit(run, thread) for thread in range(1, width)]
        run(0)
        for future in futures:
            future.result()


MIN_PRODUCT = 1 << 24  # multiply-adds below which a product stays on one thread (LeNet's fc(120))
# A larger product's parts: as many whatever the threads, because OpenBLAS's bits for a value
# depend on how a product is split (whole, in halves, in quarters: each differs in the last bit),
# and a model must come out the same on any number of threads (trained at once or alone).
MATMUL_PARTS = 4


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b for 2-D a and b, the output split along its longer side into MATMUL_PARTS parts
    shared between the threads."""
    m, n = a.shape[0], b.shape[1]
    if out is None:
        out = memory.empty((m, n), np.result_type(a, b))
    if not blas.available() or m * n * a.shape[1] < MIN_PRODUCT:
        return np.matmul(a, b, out=out)
    along = n if n >= m else m
    step = -(-along // min(MATMUL_PARTS, along))

    def part(item: int, thread: int) -> None:
        s = slice(item * step, min(along, (item + 1) * step))
        if n >= m:
            blas.product(a, b[:, s], out[:, s])
        else:
            blas.product(a[s], b, out[s])

    spread(part, -(-along // step), m * n * a.shape[1])
    return out
