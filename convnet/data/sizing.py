"""The input shape a folder of images asks for, when `--input` does not say.

The rule, from the images' headers (no decoding):
  - every image the same size: that size; otherwise the median height and width, scaled down
    so that the shorter side is at most SHORT_SIDE (64) pixels — phone photos become 64×85;
  - grey (one channel) when every image is grey, colour (three) otherwise.
SHORT_SIDE is where the time per epoch keeps growing and accuracy does not: measured with
bench/input_size.py (docs/BENCHMARKS.md). A folder of up to ALL_HEADERS files has every header
read; a larger one a spread-out sample of that many.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHORT_SIDE = 64
ALL_HEADERS = 20_000
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass(frozen=True)
class Inferred:
    shape: tuple[int, int, int]
    reason: str  # why, for the user: "all 5,000 images are 28×28 grey"


def _header(path: Path) -> tuple[int, int, bool] | None:
    """(height, width, grey) from the file's header, or None when it is not an image."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                grey = image.mode in GREY_MODES or (
                    image.mode in ("P", "PA") and _grey_palette(image))
                return image.height, image.width, grey
    except Exception:  # noqa: BLE001 - not an image: it will be skipped and counted
        return None


def _grey_palette(image) -> bool:
    palette = image.getpalette() or []
    triples = np.asarray(palette[:len(palette) // 3 * 3]).reshape(-1, 3)
    return bool(len(triples)) and bool((triples == triples[:, :1]).all())


def _which(readable: int, read: int, sampled_of: int | None) -> str:
    """The images a reason speaks of: "all 5,000 images", "the 4,990 readable images of 5,000
    files", "the 20,000 sampled of 90,000 images" (the count is of those measured)."""
    if sampled_of is not None:
        unreadable = "" if readable == read else f" ({read - readable:,} not readable)"
        return f"the {read:,} sampled of {sampled_of:,} images{unreadable}"
    if readable < read:
        return (f"the {readable:,} readable images of {read:,} files" if readable != 1
                else f"the one readable image of {read:,} files")
    return f"all {read:,} images" if read != 1 else "the one image"


def infer_input(files: list[Path]) -> Inferred:
    """The input shape for these image files (see the module's rule)."""
    sampled = len(files) > ALL_HEADERS
    chosen = ([files[i] for i in np.linspace(0, len(files) - 1, ALL_HEADERS).astype(int)]
              if sampled else files)
    headers = [h for h in (_header(path) for path in chosen) if h is not None]
    if not headers:
        return Inferred((SHORT_SIDE, SHORT_SIDE, 3), "no readable image to measure")
    sizes = np.array([(h, w) for h, w, _ in headers])
    grey = all(g for _, _, g in headers)
    channels, colour = (1, "grey") if grey else (3, "colour")
    which = _which(len(headers), len(chosen), len(files) if sampled else None)
    are = "is" if len(headers) == 1 else "are"
    if (sizes == sizes[0]).all():
        h, w = (int(v) for v in sizes[0])
        scale = min(1.0, SHORT_SIDE / min(h, w))
        if scale == 1.0:
            return Inferred((h, w, channels), f"{which} {are} {h}×{w} {colour}")
        reason = f"{which} {are} {h}×{w} {colour}, scaled so the short side is {SHORT_SIDE}"
    else:
        h, w = (int(v) for v in np.median(sizes, axis=0))
        scale = min(1.0, SHORT_SIDE / min(h, w))
        reason = (f"{which} differ in size; their median {h}×{w}" +
                  (f", scaled so the short side is {SHORT_SIDE}" if scale < 1 else "") +
                  f", {colour}")
    shape = (max(1, round(h * scale)), max(1, round(w * scale)), channels)
    return Inferred(shape, reason)
