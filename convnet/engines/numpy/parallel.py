"""Element-wise work on every core. NumPy runs a ufunc on one thread, while the matrix products
(BLAS) use them all; with the matrix work that fast, batch norm, ReLU, pooling and the copies of
im2col became most of a batch-norm network's step. NumPy releases the GIL inside a ufunc's loop,
so the channels of a C×… array can be handed to a few threads at once: each does its rows.

    parts(n)               the row ranges [(start, stop), …] of n rows, one per thread (one range
                           when the work is too small to pay for the threads)
    each(fn, n, size)      fn(start, stop) for every range, in parallel; the results in order
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")
MIN_VALUES = 1 << 17  # below this many values a thread's start costs more than it saves


def threads() -> int:
    """How many threads share element-wise work: CONVNET_NUMPY_THREADS, else OMP_NUM_THREADS
    (which the matrix products follow too), else the cores this process may use (at most 8)."""
    for name in ("CONVNET_NUMPY_THREADS", "OMP_NUM_THREADS"):
        given = os.environ.get(name, "").strip()
        if given.isdigit() and int(given) > 0:
            return int(given)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


_pool: ThreadPoolExecutor | None = None
_size = 0


def _executor(count: int) -> ThreadPoolExecutor:
    global _pool, _size
    if _pool is None or _size != count:
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
