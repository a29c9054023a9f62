"""Augmentation of one batch: convnet's crop and erasing against the same choices made with
whole-batch fancy indexing (how convnet did it until issue 16's fifth session), and its turn
and zoom (rotate,zoom) against PyTorch's grid_sample on the whole batch (what torchvision's
tensor transforms run), side by side.

    .venv/bin/python bench/augment_speed.py [--batch 256] [--shape 28x28x1] [--rounds 7]

Both sides draw the same random numbers in the same order, so their batches are checked to be
equal (the warp: within 1 of 255, float32 against float64 rounding) before anything is timed.
Prints ms per batch (median of the rounds) and the ratio. The process keeps freed memory as a
training run does (engines/allocator.py); convnet's warp shares the images between the cores,
PyTorch's grid_sample runs on its own threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from convnet import augment as augmentation  # noqa: E402
from convnet import cpu  # noqa: E402
from convnet.engines.allocator import keep_freed_memory  # noqa: E402


def crop_by_indexing(images: np.ndarray, rng: np.random.Generator, pad: int = 2) -> np.ndarray:
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def erase_by_mask(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    images = images.copy()
    n, h, w, c = images.shape
    chosen = rng.random(n) < 0.5
    area = rng.uniform(*augmentation.ERASE_AREA, n) * h * w
    aspect = np.exp(rng.uniform(*np.log(augmentation.ERASE_ASPECT), n))
    eh = np.clip(np.round(np.sqrt(area * aspect)), 1, h).astype(int)
    ew = np.clip(np.round(np.sqrt(area / aspect)), 1, w).astype(int)
    top = (rng.random(n) * (h - eh + 1)).astype(int)
    left = (rng.random(n) * (w - ew + 1)).astype(int)
    fill = rng.integers(0, 256, (n, c), dtype=np.uint8)
    rows, cols = np.arange(h)[None, :], np.arange(w)[None, :]
    inside = ((rows >= top[:, None]) & (rows < (top + eh)[:, None]))[:, :, None] & \
        ((cols >= left[:, None]) & (cols < (left + ew)[:, None]))[:, None, :]
    inside &= chosen[:, None, None]
    images[inside] = fill[np.nonzero(inside)[0]]
    return images


def warp_by_grid_sample(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import torch

    n, h, w, _ = images.shape
    angle = np.radians(rng.uniform(-augmentation.ROTATE, augmentation.ROTATE, n))
    scale = rng.uniform(*augmentation.ZOOM, n)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32) - (h - 1) / 2,
                            torch.arange(w, dtype=torch.float32) - (w - 1) / 2, indexing="ij")
    cos = torch.tensor(np.cos(angle) / scale, dtype=torch.float32)[:, None, None]
    sin = torch.tensor(np.sin(angle) / scale, dtype=torch.float32)[:, None, None]
    grid = torch.stack([(sin * ys + cos * xs) / ((w - 1) / 2),
                        (cos * ys - sin * xs) / ((h - 1) / 2)], dim=-1)
    source = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    out = torch.nn.functional.grid_sample(source, grid, mode="bilinear", padding_mode="border",
                                          align_corners=True)
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def timed(fn, rounds: int, repeats: int = 50) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        times.append((time.perf_counter() - start) / repeats * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--shape", default="28x28x1")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    keep_freed_memory()  # as both engines set it for a training run
    h, w, c = (int(v) for v in args.shape.split("x"))
    images = np.random.default_rng(0).integers(0, 256, (args.batch, h, w, c), dtype=np.uint8)
    pairs = {
        "crop": (lambda rng: augmentation.augment(images, ("crop",), rng),
                 lambda rng: crop_by_indexing(images, rng)),
        "erase": (lambda rng: augmentation.augment(images, ("erase",), rng),
                  lambda rng: erase_by_mask(images, rng)),
        "rotate,zoom": (lambda rng: augmentation.augment(images, ("rotate", "zoom"), rng),
                        lambda rng: warp_by_grid_sample(images, rng)),
    }
    print(f"# batch {args.batch} of {args.shape} uint8 images; {cpu.describe()}")
    print(f"{'augmentation':14} {'convnet ms':>11} {'other ms':>12} {'speed-up':>9}  (other: "
          "fancy indexing; grid_sample for rotate,zoom)")
    for name, (ours, theirs) in pairs.items():
        a, b = ours(np.random.default_rng(1)), theirs(np.random.default_rng(1))
        if not np.array_equal(a, b) and (
                name != "rotate,zoom" or np.abs(a.astype(int) - b).max() > 1):
            raise SystemExit(f"{name}: the two ways gave different batches")
        ms_ours = timed(lambda: ours(np.random.default_rng(2)), args.rounds)
        ms_theirs = timed(lambda: theirs(np.random.default_rng(2)), args.rounds)
        print(f"{name:14} {ms_ours:11.3f} {ms_theirs:12.3f} {ms_theirs / ms_ours:8.1f}×")


if __name__ == "__main__":
    main()
