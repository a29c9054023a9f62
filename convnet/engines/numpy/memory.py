"""The engine's large arrays, each at its own offset within a 4 KiB page.

A pass that reads one array and writes another (a copy, an element-wise layer, im2col into its
block) stalls when a load's address matches an earlier, still pending store's in its lowest 12
bits: the CPU takes the load for one that may depend on the store ("4K aliasing", on Intel's and
AMD's cores alike). That happens on every load when the output lies a few dozen bytes past the
input, modulo 4 KiB — and with engines/allocator.py keeping freed memory in malloc's heap, the
large arrays of a training step lay within 200 bytes of one page offset (1,024–1,216 bytes in
fast91's step on the AMD EPYC Zen 3 of 2026-12-04). The first conv's forward took 3.2–3.7 ms with
its im2col blocks written 16 bytes past its padded input's offset, 2.3–2.9 ms with them elsewhere.

So arrays of SPREAD_MIN_BYTES or more come from here: over-allocated by two pages and started
at an offset that moves on by STEP bytes with every array — 17 cache lines, so that arrays made
one after another (a layer's input and output, a buffer and the next) lie a kilobyte or more
apart within their pages, and 64 arrays in turn take every cache-line offset. Whole training
steps, the same network with and without (80–100 interleaved pairs of steps, the median of each
pair's ratio): fast91's 1.020–1.035× in five runs, fast93's 1.02×, LeNet 1.01×, the 28x28 CNN
1.00× (AMD EPYC Zen 3, 2 cores; docs/BENCHMARKS.md, "… a seventh time"). The arrays are views
into their uint8 buffer, C-contiguous and aligned to 64 bytes; smaller arrays are NumPy's own.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

SPREAD_MIN_BYTES = 1 << 16
PAGE = 4096
STEP = 17 * 64  # bytes from one array's page offset to the next's
_turns = itertools.count()


def _placed(shape: int | tuple[int, ...], dtype: np.dtype | type, zeroed: bool) -> np.ndarray:
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    kind = np.dtype(dtype)
    size = math.prod(dims) * kind.itemsize
    make = np.zeros if zeroed else np.empty
    if size < SPREAD_MIN_BYTES:
        return make(dims, kind)
    raw = make(size + 2 * PAGE, np.uint8)
    start = -raw.ctypes.data % PAGE + next(_turns) * STEP % PAGE
    return raw[start:start + size].view(kind).reshape(dims)


def empty(shape: int | tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """np.empty(shape, dtype), C order, at the next page offset when large."""
    return _placed(shape, dtype, False)


def zeros(shape: int | tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """np.zeros(shape, dtype), C order, at the next page offset when large."""
    return _placed(shape, dtype, True)


# NumPy's loops take a stride-0 operand (a scalar, a per-row column) on a slower path for some
# ufuncs: np.maximum(x, 0) ran 4× slower than np.maximum(x, zeros) with zeros an array of x's
# shape (94 against 24–39 µs on a 1 MB block; AMD EPYC Zen 4, NumPy 2.4). A row of the constant
# as long as x's last axis, broadcast over the others, keeps both operands on the fast path.
_rows: dict[tuple[float, str], np.ndarray] = {}


def row(value: float, length: int, dtype: np.dtype | type) -> np.ndarray:
    """`length` copies of value (read-only, shared: kept and grown as longer ones are asked
    for), to broadcast over an array's last axis."""
    key = (value, np.dtype(dtype).str)
    kept = _rows.get(key)
    if kept is None or kept.size < length:
        kept = np.full(max(length, 1024), value, dtype)
        kept.flags.writeable = False
        _rows[key] = kept
    return kept[:length]
