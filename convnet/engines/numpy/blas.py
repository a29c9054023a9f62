"""How many cores the matrix products use.

NumPy's matrix products are OpenBLAS's, which splits each product between all cores with threads
of its own; after a product those threads keep spinning on the cores for a while, waiting for the
next one. Beside the engine's own threads (engines/numpy/parallel.py: element-wise work, the
convolutions' blocks) that spinning takes a core away. So while the engine runs a batch, OpenBLAS
is told to use one thread (`one_core`), and the engine shares the large products out between its
own threads itself (parallel.matmul, parallel.spread): each thread copies and multiplies its own
blocks, and OpenBLAS's threads are never woken. Measured on fast93's network (AMD EPYC Zen 4,
2 cores, batch 128, training step): 116–120 ms with OpenBLAS splitting the products, 96–99 ms so.

OpenBLAS's thread count is one setting for the whole process (its "_local" setter too, in the
builds NumPy ships), so it is set once around a batch and put back after.

    available()   whether this process's BLAS is an OpenBLAS whose threads can be set
    one_core()    a context: OpenBLAS on one thread (for the whole process), put back after
    kernel()      the name of the kernels OpenBLAS chose for this CPU ("SkylakeX", "Haswell",
                  "Zen", …), or None for another BLAS: the benchmarks print it beside their
                  figures. OpenBLAS picks them when it loads; OPENBLAS_CORETYPE, set before
                  NumPy is imported, picks others (bench/blas_kernels.py compares them)
    gemm(dtype)   OpenBLAS's own matrix product on raw row-major pointers, C = A·op(B) + β·C,
                  or None where this process has no such OpenBLAS: NumPy's `@` always writes a
                  fresh result, while a sum of products accumulated in place (β = 1) is what
                  lets a convolution multiply shifted views of its input without copying
                  them first (conv.py, "Shifted products")
    product(a, b, out, beta)
                  out = a @ b (+ beta · out) for 2-D arrays by that product where it can read
                  them in place, else NumPy's `@`. NumPy's `@` keeps the GIL while it multiplies
                  when the result has fewer than 500 values, so the weight gradients of small
                  layers (a 9 × 16 result summed over 21,504 positions a block: fast91's first
                  conv) ran one thread at a time under parallel.spread — 4.0 ms on two threads
                  against 2.0 on one; the product called through ctypes lets go of the GIL
                  always (AMD EPYC Zen 3, 2026-12-03)
    Matrix, matrix(x), product_at(a, b, c, m, n, k, …)
                  the same product on parts of row-major matrices given by where they start:
                  a NumPy view and its address cost microseconds each, a small layer's
                  products tens (LeNet's second conv: 40 input-gradient products 2.3–2.6 ms
                  through views, 1.4–1.5 ms by address; AMD EPYC Zen 3, 2026-12-04)

Where it cannot be set (another BLAS, another system) the products are split by the BLAS as
before: the same results, a little slower. CONVNET_BLAS_THREADS=keep leaves it alone, to measure.
"""

from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager
from functools import cache
from typing import Callable, Iterator, NamedTuple, Protocol

import numpy as np  # (importing it loads the BLAS looked for below)

# the names the setter and getter go by: NumPy's wheels (scipy-openblas, 64-bit integers), its
# 32-bit-integer builds, and a plain OpenBLAS
_NAMES = [("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
          ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
          ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
          ("openblas_set_num_threads", "openblas_get_num_threads")]


# the names the kernels' name goes by, in the same builds
_CORENAMES = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
              "openblas_get_corename64_", "openblas_get_corename")


@cache
def _openblas() -> list[ctypes.CDLL]:
    """The OpenBLAS libraries this process has loaded (NumPy's), from /proc/self/maps."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps
                     if "openblas" in line.lower() and ".so" in line}
    except OSError:  # not Linux
        return []
    libraries = []
    for path in sorted(paths):
        try:
            libraries.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libraries


@cache
def _controls() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    if os.environ.get("CONVNET_BLAS_THREADS", "").strip() == "keep":
        return None
    for library in _openblas():
        for set_name, get_name in _NAMES:
            setter, getter = getattr(library, set_name, None), getattr(library, get_name, None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                return setter, getter
    return None


@cache
def kernel() -> str | None:
    for library in _openblas():
        for name in _CORENAMES:
            getter = getattr(library, name, None)
            if getter is not None:
                getter.argtypes, getter.restype = [], ctypes.c_char_p
                value = getter()
                return value.decode("ascii", "replace").strip() if value else None
    return None


def available() -> bool:
    return _controls() is not None


@contextmanager
def one_core() -> Iterator[None]:
    controls = _controls()
    if controls is None:
        yield
        return
    setter, getter = controls
    before = getter()
    if before != 1:
        setter(1)
    try:
        yield
    finally:
        if before != 1:
            setter(before)


class Gemm(Protocol):
    """c[:m, :n] = a · b + beta · c, a (m × k) and b (k × n) each a row-major matrix at an
    address with its leading dimension (the distance between rows) — or, with trans_a or
    trans_b, the transpose of one (a stored k × m, b stored n × k)."""

    def __call__(self, m: int, n: int, k: int, a: int, lda: int, b: int, ldb: int, beta: float,
                 c: int, ldc: int, trans_b: bool = False, trans_a: bool = False) -> None: ...


# CBLAS's names (scipy-openblas's 64-bit-integer build, its 32-bit one, a plain OpenBLAS) and
# whether their integers are 64-bit; the enums: row-major, no transpose, transpose
_GEMM_NAMES = [("scipy_cblas_{}gemm64_", True), ("scipy_cblas_{}gemm", False),
               ("cblas_{}gemm64_", True), ("cblas_{}gemm", False)]
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@cache
def _gemm(letter: str) -> Gemm | None:
    real = ctypes.c_float if letter == "s" else ctypes.c_double
    for library in _openblas():
        for pattern, wide in _GEMM_NAMES:
            function = getattr(library, pattern.format(letter), None)
            if function is None:
                continue
            integer = ctypes.c_int64 if wide else ctypes.c_int32
            function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer,
                                 integer, real, ctypes.c_void_p, integer, ctypes.c_void_p,
                                 integer, real, ctypes.c_void_p, integer]
            function.restype = None

            def call(m: int, n: int, k: int, a: int, lda: int, b: int, ldb: int, beta: float,
                     c: int, ldc: int, trans_b: bool = False, trans_a: bool = False,
                     function=function) -> None:
                function(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS,
                         _TRANS if trans_b else _NO_TRANS, m, n, k, 1.0,
                         a, lda, b, ldb, beta, c, ldc)  # (ctypes lets go of the GIL meanwhile)

            return call
    return None


_LETTERS = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}


def gemm(dtype: np.dtype) -> Gemm | None:
    """The product for float32 or float64 arrays, or None (another BLAS or dtype, or an
    OpenBLAS whose threads can't be set: its products are the engine's to share out, see
    parallel.spread, only where they can)."""
    letter = _LETTERS.get(dtype if isinstance(dtype, np.dtype) else np.dtype(dtype))
    return None if letter is None or not available() else _gemm(letter)


def _stored(x: np.ndarray) -> tuple[int, bool] | None:
    """How the product reads 2-D x in place: (leading dimension, transposed) — rows of unit
    stride (row-major), or columns of unit stride (the transpose of a row-major matrix) — or
    None where it can't (no unit stride, a negative or odd one)."""
    size, (rows, cols), (down, across) = x.itemsize, x.shape, x.strides
    if (across == size or cols == 1) and down % size == 0 and down // size >= max(1, cols):
        return down // size, False
    if (down == size or rows == 1) and across % size == 0 and across // size >= max(1, rows):
        return across // size, True
    return None


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta: float = 0.0) -> np.ndarray:
    """out = a @ b + beta · out for 2-D arrays (beta 0: out's values are not read), by OpenBLAS's
    product on the arrays where they lie, so that the GIL is let go whatever the sizes (see the
    module's notes); NumPy's `@` where that product is not at hand or can't read them in place.
    out must not overlap a or b (the engine's never do; NumPy's `@` would copy). Returns out."""
    (m, k), n = a.shape, b.shape[1]
    gemm_ = gemm(out.dtype)
    sides = (_stored(a), _stored(b), _stored(out))
    if gemm_ is None or a.dtype != out.dtype or b.dtype != out.dtype or \
            b.shape[0] != k or out.shape != (m, n) or min(m, n, k) == 0 or \
            None in sides or sides[2][1]:  # type: ignore[index]
        if beta == 0.0:
            return np.matmul(a, b, out=out)
        out *= out.dtype.type(beta)
        out += a @ b
        return out
    (lda, trans_a), (ldb, trans_b), (ldc, _) = sides  # type: ignore[misc]
    gemm_(m, n, k, a.ctypes.data, lda, b.ctypes.data, ldb, beta, out.ctypes.data, ldc,
          trans_b=trans_b, trans_a=trans_a)
    return out


class Matrix(NamedTuple):
    """A row-major matrix's memory (a 2-D array whose rows have unit stride): its array, the
    address of its first value, and its leading dimension (values from one row to the next)."""
    array: np.ndarray
    address: int
    ld: int


def matrix(x: np.ndarray) -> Matrix:
    """x as a Matrix, for products on its parts by address (product_at)."""
    size = x.itemsize
    if x.ndim != 2 or (x.strides[1] != size and x.shape[1] > 1) or x.strides[0] % size or \
            x.strides[0] < size * max(1, x.shape[1]):
        raise ValueError(f"a {x.shape} array with strides {x.strides} is no row-major matrix")
    return Matrix(x, x.ctypes.data, x.strides[0] // size)


def product_at(a: tuple[Matrix, int, int], b: tuple[Matrix, int, int],
               c: tuple[Matrix, int, int], m: int, n: int, k: int, beta: float = 0.0,
               trans_b: bool = False) -> None:
    """C = A @ op(B) + beta · C on parts of matrices, each given as (matrix, first row, first
    column): A m × k, B k × n (n × k stored, with trans_b), C m × n. By OpenBLAS's product at
    their addresses (after checking that the parts lie inside their arrays), or product() on
    views where there is none."""
    (ma, ai, aj), (mb, bi, bj), (mc, ci, cj) = a, b, c
    b_rows, b_cols = (n, k) if trans_b else (k, n)
    for (mx, i, j), rows, cols in ((a, m, k), (b, b_rows, b_cols), (c, m, n)):
        if i < 0 or j < 0 or i + rows > mx.array.shape[0] or j + cols > mx.array.shape[1]:
            raise ValueError(f"a {rows} × {cols} part at ({i}, {j}) is outside a "
                             f"{mx.array.shape} matrix")
    dtype = mc.array.dtype
    gemm_ = gemm(dtype)
    if gemm_ is None or ma.array.dtype != dtype or mb.array.dtype != dtype or min(m, n, k) == 0:
        b_part = mb.array[bi:bi + b_rows, bj:bj + b_cols]
        product(ma.array[ai:ai + m, aj:aj + k], b_part.T if trans_b else b_part,
                mc.array[ci:ci + m, cj:cj + n], beta)
        return
    size = dtype.itemsize
    gemm_(m, n, k, ma.address + (ai * ma.ld + aj) * size, ma.ld,
          mb.address + (bi * mb.ld + bj) * size, mb.ld, beta,
          mc.address + (ci * mc.ld + cj) * size, mc.ld, trans_b=trans_b)
