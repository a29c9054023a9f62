"""Mutation fuzzing of everything convnet reads from strangers: descriptions, IDX and CIFAR-10
files, safetensors weights, model.json, image files, and a whole checkpoint directory.

Each target takes a seeded random generator, makes one case (a valid file, mutated: bytes
flipped, cut short, repeated, header fields set to lies) and reads it the way convnet does. A
case passes when it is read or refused with convnet's own error (UserError) — for images, any
Exception, which the folder loader and the server catch and report — and fails on anything else:
IndexError, struct.error, RecursionError, MemoryError, a hang. Used by tests/test_fuzz.py (a few
hundred cases per target) and scripts/fuzz_soak.py (many, under a memory limit and a time limit
per case).
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import random
import struct
import tempfile
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np


def mutate(data: bytes, rng: random.Random, protect: int = 0) -> bytes:
    """One to four of: flip bytes, cut short, repeat a piece, insert random bytes, set a byte to
    an extreme; the first `protect` bytes stay (to get past a magic number sometimes)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        if not out:
            out += rng.randbytes(rng.randint(1, 16))
            continue
        at = rng.randrange(protect if protect < len(out) else 0, len(out))
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(out))
                out[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del out[at:]
        elif kind == 2:
            end = min(len(out), at + rng.randint(1, 64))
            out[at:at] = out[at:end] * rng.randint(1, 4)
        elif kind == 3:
            out[at:at] = rng.randbytes(rng.randint(1, 32))
        elif kind == 4:
            out[at] = rng.choice([0, 0x7F, 0x80, 0xFF])
        else:
            out[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                         b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00"])
    return bytes(out)


# -- valid inputs to start from -------------------------------------------------------------------

def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.tobytes()


@lru_cache(maxsize=None)
def seeds_idx() -> tuple[bytes, ...]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 6).astype(np.uint8)
    return _idx(images), _idx(labels), gzip.compress(_idx(images)), gzip.compress(_idx(labels))


@lru_cache(maxsize=None)
def seed_cifar() -> bytes:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    return pickle.dumps({b"batch_label": b"x", b"labels": [1, 2, 3, 4], b"data": data,
                         b"filenames": [b"a.png"] * 4}, protocol=2)


@lru_cache(maxsize=None)
def seed_model() -> tuple[bytes, str]:
    """A tiny checkpoint's model.safetensors and model.json."""
    from convnet import checkpoint
    from convnet.network import Network

    net = Network("conv(2,3) relu pool(2) fc(3)", "8x8x1", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint.save(net, Path(tmp) / "m", classes=("a", "b", "c"))
        return ((Path(tmp) / "m" / "model.safetensors").read_bytes(),
                (Path(tmp) / "m" / "model.json").read_text())


@lru_cache(maxsize=None)
def seed_images() -> tuple[bytes, ...]:
    from PIL import Image

    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    out = []
    for fmt, mode in (("PNG", "RGB"), ("PNG", "P"), ("PNG", "LA"), ("JPEG", "RGB"),
                      ("GIF", "P"), ("BMP", "RGB"), ("WEBP", "RGB"), ("TIFF", "RGB")):
        buffer = io.BytesIO()
        image = Image.fromarray(array)
        image = image.convert(mode) if mode != "RGB" else image
        try:
            image.save(buffer, format=fmt)
        except (OSError, KeyError):  # a Pillow built without that format
            continue
        out.append(buffer.getvalue())
    return tuple(out)


# -- the targets ---------------------------------------------------------------------------------

def target_description(rng: random.Random, tmp: Path) -> None:
    from convnet import spec
    from convnet.shapes import infer

    words = ["conv(6,5)", "conv(", "relu", "pool(2)", "fc(10)", "residual(", ")", "x", "3",
             "stride=", "pad=same", ",", "batchnorm", "dropout(0.5)", "avgpool(3,stride=2)",
             "globalavgpool", "[", "]", "*", "9" * rng.randint(1, 30), "-1", "1e999", "é",
             "합성곱", "\x00", "(" * rng.randint(1, 40), ")" * rng.randint(1, 40), "  ", "\n"]
    if rng.random() < 0.3:
        text = "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randint(0, 60)))
    else:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
    if rng.random() < 0.5:
        text = mutate(text.encode("utf-8", "surrogatepass"), rng).decode("utf-8", "replace")
    shape = rng.choice(["28x28x1", "32x32x3", "1x1x1", "65536x65536x3", "224x224x3"])
    parsed = spec.parse(text)
    infer(parsed.with_input(spec.parse_input_shape(shape)) if parsed.input is None else parsed)


def target_idx(rng: random.Random, tmp: Path) -> None:
    from convnet.data.idx import read_idx

    which = rng.randrange(4)
    data = seeds_idx()[which]
    if which >= 2 and rng.random() < 0.5:  # mutate inside the gzip stream, then compress
        data = gzip.compress(mutate(gzip.decompress(data), rng))
    else:
        data = mutate(data, rng, protect=rng.choice([0, 4]))
    path = tmp / "file-idx-ubyte"
    path.write_bytes(data)
    read_idx(path, 3 if which in (0, 2) else 1)


def target_cifar(rng: random.Random, tmp: Path) -> None:
    from convnet.data.cifar import _batch, unpickle

    data = mutate(seed_cifar(), rng, protect=rng.choice([0, 2]))
    _batch(unpickle(data, "fuzz"), "fuzz")


def _lying_header(rng: random.Random, data: bytes) -> bytes:
    """A safetensors file whose JSON header says other offsets, shapes or dtypes."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    name = rng.choice([k for k in header if k != "__metadata__"])
    entry = header[name]
    choice = rng.randrange(5)
    huge = rng.choice([-1, 0, 2**31, 2**63 - 1, 2**64, 10**30, 3.5, "12", None])
    if choice == 0:
        entry["data_offsets"] = [rng.choice([0, huge]), rng.choice([huge, 8, 10**12])]
    elif choice == 1:
        entry["shape"] = [rng.choice([huge, 0, 1, 2**40]) for _ in range(rng.randint(0, 9))]
    elif choice == 2:
        entry["dtype"] = rng.choice(["F64", "I64", "BOOL", "F16", "U8", "XYZ", 3, None])
    elif choice == 3:
        header[name] = rng.choice([[], "x", 5, {"dtype": "F32"}])
    else:
        other = rng.choice(list(header))
        header[other] = entry  # two tensors over the same bytes
    text = json.dumps(header).encode()
    claimed = len(text) if rng.random() < 0.8 else rng.choice([0, 7, 2**40, len(text) + 5])
    return struct.pack("<Q", claimed) + text + data[8 + length:]


def target_safetensors(rng: random.Random, tmp: Path) -> None:
    from convnet import checkpoint

    weights, _ = seed_model()
    data = _lying_header(rng, weights) if rng.random() < 0.6 else mutate(weights, rng)
    path = tmp / "model.safetensors"
    path.write_bytes(data)
    net = _tiny_net()
    arrays = checkpoint._load_arrays(path, net.engine.state_dict())
    expected = net.engine.state_dict()
    assert arrays.keys() == expected.keys()
    for key, value in arrays.items():
        assert value.shape == expected[key].shape and value.dtype == expected[key].dtype, key


@lru_cache(maxsize=None)
def _tiny_net():
    from convnet.network import Network

    return Network("conv(2,3) relu pool(2) fc(3)", "8x8x1", seed=0)


def _wrong_value(rng: random.Random, depth: int = 0):
    kinds = [lambda: rng.choice([-1, 0, 1, 2**31, 2**63, 10**400 if rng.random() < 0.1 else 7]),
             lambda: rng.choice([0.5, -0.0, 1e308, float("inf"), float("nan")]),
             lambda: rng.choice(["", "x", "conv(6,5)", "a" * 10_000, "\u202e", "..", "/etc"]),
             lambda: rng.choice([True, False, None]),
             lambda: [_wrong_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
             if depth < 4 else [],
             lambda: {rng.choice(["kind", "out", "kernel", "x"]): _wrong_value(rng, depth + 1)}
             if depth < 4 else {}]
    return rng.choice(kinds)()


def _change(rng: random.Random, value, depth: int = 0):
    """`value` with one field somewhere inside replaced, removed or added."""
    if isinstance(value, dict) and value and depth < 6 and rng.random() < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.25:
            out[rng.choice(["extra", "kind", key + "x"])] = _wrong_value(rng)
        else:
            out[key] = _change(rng, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and depth < 6 and rng.random() < 0.7:
        out = list(value)
        i = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.15:
            del out[i]
        elif roll < 0.25:
            out.insert(i, _wrong_value(rng))
        else:
            out[i] = _change(rng, out[i], depth + 1)
        return out
    return _wrong_value(rng)


def target_model_json(rng: random.Random, tmp: Path) -> None:
    from convnet import checkpoint, schema

    weights, text = seed_model()
    folder = tmp / "model"
    folder.mkdir(exist_ok=True)
    (folder / "model.safetensors").write_bytes(weights)
    if rng.random() < 0.3:
        data = mutate(text.encode(), rng)
    else:
        meta = json.loads(text)
        for _ in range(rng.randint(1, 3)):
            meta = _change(rng, meta)
        data = json.dumps(meta, allow_nan=True).encode() if rng.random() < 0.95 else \
            ("[" * 100_000).encode()
    (folder / "model.json").write_bytes(data)
    schema.check_model(schema.read_json(folder / "model.json"), "fuzz")
    checkpoint.load(folder, engine="numpy")


def target_image(rng: random.Random, tmp: Path) -> None:
    from convnet.data.folder import read_image

    data = mutate(rng.choice(seed_images()), rng, protect=rng.choice([0, 0, 8]))
    shape = rng.choice([(8, 8, 1), (28, 28, 1), (32, 32, 3), (64, 48, 3)])
    try:
        pixels = read_image(data, shape)
    except (MemoryError, RecursionError):
        raise
    except Exception as e:  # noqa: BLE001 - what the loader and the server catch: unreadable
        from convnet.errors import UserError

        raise UserError(f"not a readable image ({type(e).__name__})") from None
    assert pixels.shape == shape and pixels.dtype == np.uint8


TARGETS: dict[str, Callable[[random.Random, Path], None]] = {
    "description": target_description, "idx": target_idx, "cifar": target_cifar,
    "safetensors": target_safetensors, "model.json": target_model_json, "image": target_image,
}


@dataclass
class Result:
    target: str
    cases: int = 0
    read: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.target:12} {self.cases:7,} cases: {self.read:,} read, {self.refused:,} "
                f"refused with one line, {len(self.failures)} failures")


def run(target: str, cases: int, seed: int = 0, on_case: Callable[[], None] | None = None
        ) -> Result:
    """`cases` cases of one target; each failure is described with its seed and traceback."""
    from convnet.errors import UserError

    result = Result(target)
    function = TARGETS[target]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for case in range(cases):
            rng = random.Random(f"{target}-{seed}-{case}")
            if on_case is not None:
                on_case()
            result.cases += 1
            try:
                function(rng, tmp)
                result.read += 1
            except UserError as e:
                result.refused += 1
                message = str(e)
                if "\n" in message.strip() or not message.strip() or "Traceback" in message:
                    result.failures.append(f"case {case}: not one line: {message[:200]!r}")
            except BaseException as e:  # noqa: BLE001 - that is what a fuzzer looks for
                if isinstance(e, KeyboardInterrupt):
                    raise
                trace = "".join(traceback.format_exception(e)[-3:])
                result.failures.append(f"case {case} (seed {seed}): {type(e).__name__}: "
                                       f"{str(e)[:200]}\n{trace}")
    return result

