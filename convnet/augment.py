"""Augmentation on whole batches of N×H×W×C uint8 images, no per-image Python.

    crop   pad each image by P zeros and cut a random H×W window back out (P = 2 by default)
    flip   mirror a random half of the images left–right (for classes where that is harmless)
    erase  in a random half of the images, a random rectangle (2–25% of the image, aspect
           0.3–3.3) filled with a random value (random erasing, Zhong et al. 2017)
    rotate turn each image about its centre by a random angle within ±10°
    zoom   enlarge each image about its centre by a random factor of 1–1.15 (with rotate, one
           warp does both: bilinear, the border's pixels repeated where the turn uncovers corners)
    light  each image's contrast scaled by a random factor of 0.75–1.33 about its mean and its
           brightness moved by up to ±15% of the full range (what a camera's exposure changes)
"""

from __future__ import annotations

import numpy as np

from .errors import UserError

KINDS = ("crop", "flip", "erase", "rotate", "zoom", "light")
ERASE_AREA = (0.02, 0.25)  # of the image
ERASE_ASPECT = (0.3, 3.3)
ROTATE = 10.0  # degrees either way
ZOOM = (1.0, 1.15)
CONTRAST = (0.75, 1 / 0.75)  # drawn log-uniformly, so as likely halved as doubled
BRIGHTNESS = 0.15  # of 255, either way
WARP_COST = 8  # a warped value is about as much work as 8 of a ufunc's (for parallel.each)


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
    if "rotate" in kinds or "zoom" in kinds:
        angle = np.radians(rng.uniform(-ROTATE, ROTATE, total))[mine] if "rotate" in kinds \
            else np.zeros(n)
        scale = rng.uniform(*ZOOM, total)[mine] if "zoom" in kinds else np.ones(n)
        out = warp(out, angle, scale)
    if "light" in kinds:
        contrast = np.exp(rng.uniform(*np.log(CONTRAST), total))[mine]
        shift = rng.uniform(-BRIGHTNESS, BRIGHTNESS, total)[mine] * 255
        out = light(out, contrast, shift)
    if "erase" in kinds:
        out = erase(out if out is not images else images.copy(), rng, mine, total)
    return out


def warp(images: np.ndarray, angle: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Each image turned by its angle (radians, clockwise as shown, y down) and enlarged by its
    scale about its centre: every output pixel samples the input at the inverse map of its
    place, bilinearly, places beyond the border clamped onto it (PyTorch's grid_sample with
    align_corners=True and padding_mode="border" does the same arithmetic). The images are
    shared between the cores (each image is its own work: the same result on any count)."""
    from .engines.numpy import parallel

    out = np.empty_like(images)

    def part(start: int, stop: int) -> None:
        out[start:stop] = _warp(images[start:stop], angle[start:stop], scale[start:stop])

    parallel.each(part, len(images), images.size * WARP_COST)
    return out


def _warp(images: np.ndarray, angle: np.ndarray, scale: np.ndarray) -> np.ndarray:
    n, h, w, c = images.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ys -= (h - 1) / 2
    xs -= (w - 1) / 2
    cos = (np.cos(angle) / scale).astype(np.float32)[:, None, None]
    sin = (np.sin(angle) / scale).astype(np.float32)[:, None, None]
    sy = np.clip(cos * ys - sin * xs + (h - 1) / 2, 0, h - 1)  # N×H×W places in the input
    sx = np.clip(sin * ys + cos * xs + (w - 1) / 2, 0, w - 1)
    y0 = np.minimum(sy.astype(np.intp), max(h - 2, 0))  # non-negative: truncation is floor
    x0 = np.minimum(sx.astype(np.intp), max(w - 2, 0))
    fy, fx = sy - y0, sx - x0
    down, right = (y0 + 1 < h) * w, (x0 + 1 < w) * 1  # 0 where the image is one pixel wide
    at = (np.arange(n) * (h * w))[:, None, None] + y0 * w + x0  # the upper-left neighbour
    out = np.empty_like(images)
    for channel in range(c):  # a channel's plane at a time: flat gathers, 2-3x faster than
        plane = images[..., channel].ravel()  # indexing all channels' rows together
        upper_left = plane.take(at).astype(np.float32)
        lower_left = plane.take(at + down).astype(np.float32)
        upper = upper_left + (plane.take(at + right) - upper_left) * fx
        lower = lower_left + (plane.take(at + down + right) - lower_left) * fx
        out[..., channel] = np.clip(np.rint(upper + (lower - upper) * fy), 0, 255)
    return out


def light(images: np.ndarray, contrast: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Each image's values moved away from (or towards) its mean by its contrast factor, then
    by its brightness shift (in 0–255 units), rounded and clipped back to uint8."""
    n = len(images)
    mean = images.reshape(n, -1).mean(axis=1, dtype=np.float64)
    scale = contrast.astype(np.float32).reshape(n, 1, 1, 1)
    offset = (mean * (1 - contrast) + shift).astype(np.float32).reshape(n, 1, 1, 1)
    return np.clip(np.rint(images * scale + offset), 0, 255).astype(np.uint8)


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
