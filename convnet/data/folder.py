"""A folder of the user's own images: one subfolder per class.

    photos/cat/*.jpg  photos/dog/*.png ...              → split with a seeded, stratified hold-out
    photos/train/cat/... photos/test/cat/...            → the given split

PNG, JPEG, BMP, GIF, TIFF and WebP of any size, grey or colour, are converted to the network's
depth (1 = grey, 3 = RGB) and resized to its H×W. Files that are not readable images are skipped
and counted; a folder with nothing left, or with one class only, is an error.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MAX_PIXELS = 64_000_000  # a larger image is refused (and guards against decompression bombs)
# Peak memory of one decode, per pixel of the decoded image, measured with
# scripts/decode_memory.py on 4000×4000 images of every mode (worst: a palette PNG with
# transparency, 9.3: 1 + 4 bytes decoded and expanded, 4 more to resize with premultiplied alpha).
DECODE_BYTES_PER_PIXEL = 10


def read_image(path: Path | bytes, shape: tuple[int, int, int],
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One image file (or its bytes) as H×W×C uint8, converted and resized to `shape`.

    Cheap on memory: a JPEG is decoded at reduced size in the DCT (Pillow's draft mode) when
    it is larger than needed, and an image is resized before its transparency is flattened, so
    a decode costs at most DECODE_BYTES_PER_PIXEL bytes per decoded pixel (before: 17). Larger than
    `max_pixels` (after draft) is refused before decoding."""
    import io

    from PIL import Image

    h, w, c = shape
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(source) as image:
            if image.format == "JPEG":
                image.draft("L" if c == 1 else "RGB", (w, h))  # size stays ≥ (w, h)
            if image.width * image.height > max_pixels:
                raise ValueError(f"{image.width}×{image.height} pixels is more than "
                                 f"{max_pixels:,}")
            image.load()
            if image.mode in ("P", "PA"):  # a palette may carry transparency; resizing needs
                image = image.convert("RGBA")  # real colours
            if image.size != (w, h):  # Pillow resizes RGBA and LA with premultiplied alpha,
                image = image.resize((w, h), Image.Resampling.BILINEAR)  # 16-bit grey as is
            image = _flatten_alpha(_eight_bit(image))
            image = image.convert("L" if c == 1 else "RGB")
            array = np.asarray(image, np.uint8)
    return array.reshape(h, w, c)


def _eight_bit(image):
    """16-bit and floating-point grey as 8-bit grey (0–65535 → 0–255; floats clipped)."""
    from PIL import Image

    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, np.float64) / 257
        return Image.fromarray(np.uint8(np.clip(np.round(values), 0, 255)))
    if image.mode == "F":
        return Image.fromarray(np.uint8(np.clip(np.asarray(image), 0, 255)))
    return image


def _flatten_alpha(image):
    """Transparent parts become white (as a viewer shows them)."""
    from PIL import Image

    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image


def class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_files(folder: Path) -> list[Path]:
    """Every file under `folder`, sorted, in subfolders too; hidden files and folders (.DS_Store,
    .ipynb_checkpoints) left out, and folder links not followed (no loops)."""
    found: list[Path] = []
    for directory, folders, names in os.walk(folder, followlinks=False):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [Path(directory) / name for name in sorted(names) if not name.startswith(".")]
    return found


@dataclass(frozen=True)
class Listing:
    """A folder of class folders, as files: `train` and `test` (empty without a split)."""

    root: Path
    classes: list[str]
    split: bool  # the folder has train/ and test/
    train: list[tuple[Path, int]]  # (file, class number)
    test: list[tuple[Path, int]]


def scan(root: Path) -> Listing:
    """The class folders of `root` (or of its train/ and test/) and every file in them."""
    classes, split = find_classes(root)
    parts = [("train", root / "train"), ("test", root / "test")] if split else [("", root)]
    found: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
    for part, base in parts:
        for label, name in enumerate(classes):
            folder = base / name
            if folder.is_dir():
                found[part or "train"] += [(path, label) for path in list_files(folder)]
    return Listing(root, classes, split, found["train"], found["test"])


def find_classes(root: Path) -> tuple[list[str], bool]:
    """(class names, whether the folder has train/ and test/ splits)."""
    if not root.is_dir():
        raise UserError(f"no folder {root}")
    split = (root / "train").is_dir() and (root / "test").is_dir()
    base = root / "train" if split else root
    classes = [p.name for p in class_folders(base)]
    if split:
        test_classes = {p.name for p in class_folders(root / "test")}
        extra = sorted(test_classes - set(classes))
        if extra:
            raise UserError(f"{root}/test has classes that {root}/train lacks: {', '.join(extra)}")
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise UserError(f"{base} needs one subfolder per class, at least two; found {found}")
    return classes, split
