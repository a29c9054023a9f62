"""A folder of the user's own images: one subfolder per class.

    photos/cat/*.jpg  photos/dog/*.png ...              → split with a seeded, stratified hold-out
    photos/train/cat/... photos/test/cat/...            → the given split

PNG, JPEG, BMP, GIF, TIFF and WebP of any size, grey or colour, are converted to the network's
depth (1 = grey, 3 = RGB) and resized to its H×W. Files that are not readable images are skipped
and counted; a folder with nothing left, or with one class only, is an error.
"""

from __future__ import annotations

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


@dataclass
class FolderImages:
    images: np.ndarray
    labels: np.ndarray
    skipped: list[str]


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


def read_class_folders(root: Path, classes: list[str], shape: tuple[int, int, int]
                       ) -> FolderImages:
    images: list[np.ndarray] = []
    labels: list[int] = []
    skipped: list[str] = []
    for label, name in enumerate(classes):
        folder = root / name
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        for path in files:
            if path.name.startswith("."):
                continue
            try:
                images.append(read_image(path, shape))
                labels.append(label)
            except Exception:  # noqa: BLE001 - any unreadable file is skipped and counted
                skipped.append(str(path))
    stack = np.stack(images) if images else np.zeros((0, *shape), np.uint8)
    return FolderImages(stack, np.asarray(labels, np.int64), skipped)


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
