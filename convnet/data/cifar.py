"""CIFAR-10's python batches, read without unpickling arbitrary objects.

Each batch is a pickled dict {b"data": uint8 array 10000×3072 (1024 red, 1024 green, 1024 blue
values, row by row), b"labels": [int]}; batches.meta holds b"label_names". Python's pickle can run
any code a file names, so the unpickler here allows only what these files contain: NumPy's array
reconstruction and dtypes (and _codecs.encode, with which Python 3 writes bytes in protocol 2).
Anything else is refused.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ..errors import UserError

ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle; no side effects
}
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
FOLDER = "cifar-10-batches-py"


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds "
                                     "only NumPy arrays")


def unpickle(data: bytes, where: str) -> dict:
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # any malformed pickle: it is the user's file that is wrong
        reason = " ".join(str(e).split()) or type(e).__name__  # pickle's words, on one line
        raise UserError(f"{where}: not a CIFAR-10 batch ({reason[:300]})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{where}: not a CIFAR-10 batch (no dictionary inside)")
    return obj


def _batch(obj: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    data, labels = obj.get(b"data"), obj.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        raise UserError(f"{where}: b'data' is not an N×3072 uint8 array")
    if not isinstance(labels, list) or len(labels) != len(data) \
            or not all(isinstance(v, int) and 0 <= v < 10 for v in labels):
        raise UserError(f"{where}: b'labels' is not a list of {len(data)} classes 0–9")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # N×32×32×3
    return np.ascontiguousarray(images), np.asarray(labels, np.int64)


def _members(source: Path) -> dict[str, bytes]:
    """The batch files, from the .tar.gz or from an extracted folder."""
    names = TRAIN_BATCHES + ["test_batch", "batches.meta"]
    found: dict[str, bytes] = {}
    try:
        if source.is_dir():
            folder = source / FOLDER if (source / FOLDER).is_dir() else source
            for name in names:
                if (folder / name).is_file():
                    found[name] = (folder / name).read_bytes()
        else:
            with tarfile.open(source, "r:*") as tar:
                for member in tar.getmembers():
                    name = member.name.rsplit("/", 1)[-1]
                    if name in names and member.isfile():
                        f = tar.extractfile(member)
                        found[name] = f.read() if f else b""
    except (OSError, tarfile.TarError, EOFError) as e:
        raise UserError(f"{source}: cannot read CIFAR-10 ({e})") from None
    missing = [n for n in names if n not in found]
    if missing:
        raise UserError(f"{source}: CIFAR-10 files missing: {', '.join(missing)}")
    return found


def read_cifar10(source: Path) -> tuple[tuple[np.ndarray, np.ndarray],
                                        tuple[np.ndarray, np.ndarray], tuple[str, ...]]:
    files = _members(source)
    train = [_batch(unpickle(files[n], f"{source}:{n}"), f"{source}:{n}") for n in TRAIN_BATCHES]
    test = _batch(unpickle(files["test_batch"], f"{source}:test_batch"), f"{source}:test_batch")
    meta = unpickle(files["batches.meta"], f"{source}:batches.meta")
    names = meta.get(b"label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise UserError(f"{source}:batches.meta: no list of 10 label names")
    try:
        classes = tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)
    except UnicodeDecodeError:
        raise UserError(f"{source}:batches.meta: the label names are not UTF-8 text") from None
    if any(not name or len(name) > 1000 for name in classes) or len(set(classes)) != 10:
        raise UserError(f"{source}:batches.meta: the label names must be 10 different, "
                        "non-empty names")
    images = np.concatenate([b[0] for b in train])
    labels = np.concatenate([b[1] for b in train])
    return (images, labels), test, classes
