"""Writers of small fixture files in the real formats: IDX (gzip or raw), CIFAR-10's pickled
python batches in a .tar.gz, and folders of image files. The loaders are tested on these."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, gz: bool = True, claim: tuple | None = None) -> Path:
    """An IDX file of unsigned bytes; `claim` writes other sizes in the header than the data's."""
    shape = claim or array.shape
    header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(">" + "I" * len(shape), *shape)
    data = header + np.ascontiguousarray(array, np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mnist_like(directory: Path, train: tuple[np.ndarray, np.ndarray],
                     test: tuple[np.ndarray, np.ndarray], gz: bool = True) -> Path:
    """The four MNIST/Fashion-MNIST files; images N×H×W (or N×H×W×1) uint8."""
    suffix = ".gz" if gz else ""
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", train[0].reshape(len(train[0]), 28, 28), gz)
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}", train[1], gz)
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", test[0].reshape(len(test[0]), 28, 28), gz)
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", test[1], gz)
    return directory


def cifar_batch(images: np.ndarray, labels: np.ndarray, name: str) -> bytes:
    """A pickled batch as CIFAR-10 ships it: {b'data': N×3072 uint8, b'labels': [int], ...}."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)  # planes R, G, B
    return pickle.dumps({b"batch_label": name.encode(), b"labels": [int(v) for v in labels],
                         b"data": np.ascontiguousarray(data),
                         b"filenames": [f"{i}.png".encode() for i in range(len(labels))]},
                        protocol=2)


def write_cifar(path: Path, per_batch: int = 12, seed: int = 0,
                replace: dict[str, bytes] | None = None) -> Path:
    """cifar-10-python.tar.gz with five train batches, a test batch and batches.meta."""
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        members[name] = cifar_batch(rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8),
                                    rng.integers(0, 10, per_batch), name)
    members["batches.meta"] = pickle.dumps({b"label_names": [
        b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship",
        b"truck"], b"num_vis": 3072}, protocol=2)
    members.update(replace or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def pattern(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Easily told apart classes: 0 horizontal stripes, 1 vertical stripes, 2 a bright centre."""
    image = rng.integers(0, 60, (size, size)).astype(np.uint8)
    if kind == 0:
        image[::4] = 230
    elif kind == 1:
        image[:, ::4] = 230
    else:
        image[size // 4:3 * size // 4, size // 4:3 * size // 4] = 230
    return image


def write_image_folder(root: Path, per_class: int = 10, size: int = 20, classes=("across", "down"),
                       split: bool = False, seed: int = 0) -> Path:
    """Class folders of PNG, JPEG and BMP files of varied sizes and modes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    formats = [("png", "L"), ("jpg", "RGB"), ("bmp", "RGB"), ("png", "RGBA"), ("png", "P")]
    for part in (["train", "test"] if split else [""]):
        for label, name in enumerate(classes):
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                extension, mode = formats[i % len(formats)]
                side = size + (i % 3) * 7  # any size: resized to the network's input
                image = Image.fromarray(pattern(label, side, rng)).convert(mode)
                image.save(folder / f"{i}.{extension}")
    return root
