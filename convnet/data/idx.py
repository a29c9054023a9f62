"""IDX files (MNIST, Fashion-MNIST): a big-endian header, then raw unsigned bytes.

    0x00 0x00 | type (0x08 = unsigned byte) | number of dimensions D | D × 4-byte sizes | data

Gzip or raw. The header's sizes are checked against what the file holds before anything large
is allocated, and decompression stops at the size the header promises.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError

MAX_BYTES = 2 << 30  # no IDX file of a real data set comes near 2 GiB


def read_idx(path: Path, dims: int) -> np.ndarray:
    """The array of an IDX file of unsigned bytes with `dims` dimensions."""
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as f:
            header = f.read(4)
            if len(header) < 4 or header[:2] != b"\x00\x00":
                raise UserError(f"{path}: not an IDX file (bad magic number)")
            if header[2] != 0x08:
                raise UserError(f"{path}: IDX data type 0x{header[2]:02x} is not unsigned bytes")
            if header[3] != dims:
                raise UserError(f"{path}: IDX file has {header[3]} dimensions, expected {dims}")
            size_bytes = f.read(4 * dims)
            if len(size_bytes) < 4 * dims:
                raise UserError(f"{path}: truncated IDX header")
            shape = struct.unpack(">" + "I" * dims, size_bytes)
            expected = math.prod(shape)
            if expected > MAX_BYTES:
                raise UserError(f"{path}: IDX header claims {expected:,} bytes of data, more "
                                "than any real data set")
            if not gzipped:
                data = f.read(expected + 1)  # at most one byte more than promised
        if gzipped:
            data = _gunzip(path, 4 + 4 * dims, expected + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    if len(data) < expected:
        raise UserError(f"{path}: truncated: the header promises {expected:,} bytes of data, "
                        f"the file holds {len(data):,}")
    if len(data) > expected:
        raise UserError(f"{path}: the file holds more data than its header says")
    return np.frombuffer(data, np.uint8).reshape(shape)


def _gunzip(path: Path, skip: int, limit: int) -> memoryview:
    """Up to `limit` bytes of a gzip file's content after its first `skip`, decompressed in one
    call per gzip member: zlib then runs without Python's lock, beside the thread that imports
    PyTorch meanwhile (train.py), where gzip.open's 8 KiB reads each waited for the lock
    (fashion-mnist's 47 MB: 2.0–2.5 s with the import beside it, 0.3 s alone)."""
    compressed = path.read_bytes()
    wanted = skip + limit
    parts, have = [], 0
    while compressed and have < wanted:
        member = zlib.decompressobj(wbits=31)
        part = member.decompress(compressed, wanted - have)
        parts.append(part)
        have += len(part)
        if not member.eof:
            if have < wanted:
                raise EOFError("the compressed file ends before its end-of-stream marker")
            break  # the limit reached: the caller says that the file holds more than promised
        compressed = member.unused_data.lstrip(b"\0")  # as gzip: zeros may pad a file
    return memoryview(b"".join(parts))[skip:]  # (one part is joined without a copy)


def read_images_and_labels(images_path: Path, labels_path: Path
                           ) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise UserError(f"{images_path} holds {len(images):,} images but {labels_path} holds "
                        f"{len(labels):,} labels")
    return images[..., None].copy(), labels.astype(np.int64)  # N×H×W×1
