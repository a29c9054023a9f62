"""Augmentation on whole batches of N×H×W×C uint8 images, no per-image Python.

    crop   pad each image by P zeros and cut a random H×W window back out (P = 2 by default)
    flip   mirror a random half of the images left–right (for classes where that is harmless)
    erase  in a random half of the images, a random rectangle (2–25% of the image, aspect
           0.3–3.3) filled with a random value (random erasing, Zhong et al. 2017)
"""

from __future__ import annotations

import numpy as np

from .errors import UserError

KINDS = ("crop", "flip", "erase")
ERASE_AREA = (0.02, 0.25)  # of the image
ERASE_ASPECT = (0.3, 3.3)


def parse(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    kinds = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UserError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(KINDS)}")
    return kinds


def check_fits(kinds: tuple[str, ...], height: int, width: int, pad: int = 2) -> None:
    if "crop" in kinds and pad >= min(height, width):
        raise UserError(f"a crop with padding {pad} does not fit {height}x{width} images")


def augment(images: np.ndarray, kinds: tuple[str, ...], rng: np.random.Generator,
            pad: int = 2, positions: np.ndarray | None = None, total: int | None = None
            ) -> np.ndarray:
    """The batch, augmented. With several processes each has a share of the step's batch:
    `positions` are its images' places in that batch of `total`, and the random choices are
    drawn for the whole batch and taken at those places, so every image is augmented as it
    would be in one process."""
    if not kinds:
        return images
    n, h, w, _ = images.shape
    total = n if total is None else total
    mine = np.arange(n) if positions is None else positions
    out = images
    if "crop" in kinds:
        check_fits(kinds, h, w, pad)
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        dy = rng.integers(0, 2 * pad + 1, total)[mine]
        dx = rng.integers(0, 2 * pad + 1, total)[mine]
        # every H×W window of the padded images as a view (N × 2P+1 × 2P+1 × C × H × W), then
        # one window per image: a block copy each, 3–15× faster than indexing rows and columns
        # (bench/augment_speed.py)
        windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
        out = np.ascontiguousarray(windows[np.arange(n), dy, dx].transpose(0, 2, 3, 1))
    if "flip" in kinds:
        flip = rng.random(total)[mine] < 0.5
        out = out.copy() if out is images else out
        out[flip] = out[flip, :, ::-1]
    if "erase" in kinds:
        out = erase(out if out is not images else images.copy(), rng, mine, total)
    return out


def erase(images: np.ndarray, rng: np.random.Generator, mine: np.ndarray, total: int
          ) -> np.ndarray:
    """Random erasing, in place: each chosen image gets one rectangle of a random value."""
    n, h, w, c = images.shape
    chosen = (rng.random(total) < 0.5)[mine]
    area = rng.uniform(*ERASE_AREA, total)[mine] * h * w
    aspect = np.exp(rng.uniform(*np.log(ERASE_ASPECT), total))[mine]
    eh = np.clip(np.round(np.sqrt(area * aspect)), 1, h).astype(int)
    ew = np.clip(np.round(np.sqrt(area / aspect)), 1, w).astype(int)
    top = (rng.random(total)[mine] * (h - eh + 1)).astype(int)
    left = (rng.random(total)[mine] * (w - ew + 1)).astype(int)
    fill = rng.integers(0, 256, (total, c), dtype=np.uint8)[mine]
    for i in np.flatnonzero(chosen):  # a slice each: cheaper than a mask over the batch
        images[i, top[i]:top[i] + eh[i], left[i]:left[i] + ew[i]] = fill[i]
    return images
