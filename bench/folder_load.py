"""Loading a folder of phone photos: convnet's decode (cold, then from its cache) against a plain
Pillow loop and PyTorch's DataLoader, side by side in one run.

    .venv/bin/python bench/folder_load.py [--photos 120] [--side 4000x3000]

Writes a folder of JPEGs of phone size (4000×3000, quality 90, about 3 MB each like a phone's
12-megapixel photos, two classes) into a temporary folder, then times loading every image at the input shape convnet infers for it (64×85×3):
  plain       one process: Image.open, convert("RGB"), resize, np.asarray — what convnet did
              before its cache, and what a first script does
  DataLoader  torch.utils.data.DataLoader, 2 workers, batches of 32, the same per-image code
              (torchvision is not needed for it)
  cold        convnet's first load: JPEGs decoded at reduced size in the DCT (draft mode), all
              cores, written into the memory-mapped cache
  warm        convnet's next load: the files stat'ed, the cache opened and every image read
Each is timed once on fresh files (the page cache holds them after the first read for all).
Prints seconds, files per second, and each one's speed-up over the plain loop.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convnet.data import cache  # noqa: E402
from convnet.data.sizing import infer_input  # noqa: E402


def photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Something with the detail of a photo: smooth gradients, shapes and sensor noise."""
    y, x = np.mgrid[0:height:8, 0:width:8]
    base = np.stack([np.sin(x / rng.uniform(50, 300)) * 80 + 120,
                     np.cos(y / rng.uniform(50, 300)) * 80 + 120,
                     (x + y) % 255], axis=-1).astype(np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.Resampling.BILINEAR)
    noise = rng.integers(-6, 7, (height, width, 3), dtype=np.int16)
    return Image.fromarray(np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8))


def make_folder(root: Path, count: int, width: int, height: int) -> list[Path]:
    rng = np.random.default_rng(0)
    files = []
    for i in range(count):
        folder = root / ("cats" if i % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"IMG_{i:04d}.jpg"
        photo(rng, width, height).save(path, quality=90)
        files.append(path)
    return sorted(files)


def plain(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    h, w, _ = shape
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR))


def run_plain(files: list[Path], shape) -> float:
    start = time.perf_counter()
    images = np.stack([plain(path, shape) for path in files])
    assert images.shape == (len(files), *shape)
    return time.perf_counter() - start


class Photos:
    """A map-style dataset, as a DataLoader wants."""

    def __init__(self, files: list[Path], shape) -> None:
        self.files, self.shape = files, shape

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> np.ndarray:
        return plain(self.files[i], self.shape)


def run_dataloader(files: list[Path], shape) -> float:
    import torch

    import warnings

    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    loader = torch.utils.data.DataLoader(Photos(files, shape), batch_size=32, num_workers=2)
    start = time.perf_counter()
    total = sum(len(batch) for batch in loader)
    assert total == len(files)
    return time.perf_counter() - start


def cpu() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("Model name")), "?")
    flags = next((line for line in text.splitlines() if line.startswith("Flags")), "")
    extras = [f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()]
    cores = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("CPU(s)")), "?")
    return f"{model}, {cores} cores, {' '.join(extras) or 'no bf16 units'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--side", default="4000x3000")
    args = parser.parse_args()
    width, height = (int(v) for v in args.side.split("x"))
    print(f"CPU: {cpu()}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "photos"
        started = time.perf_counter()
        files = make_folder(root, args.photos, width, height)
        size = sum(p.stat().st_size for p in files) / 2**20
        print(f"{len(files)} JPEGs of {width}x{height} ({size:.0f} MiB) written in "
              f"{time.perf_counter() - started:.0f} s")
        shape = infer_input(files).shape
        print(f"input shape, as convnet infers it: {'x'.join(map(str, shape))}")
        results = {"plain": run_plain(files, shape), "DataLoader": run_dataloader(files, shape)}
        where = Path(scratch) / "cache"
        started = time.perf_counter()
        cold = cache.load(root, files, shape, where)
        results["convnet cold"] = time.perf_counter() - started
        started = time.perf_counter()
        warm = cache.load(root, files, shape, where)
        np.asarray(warm.images).sum()  # every image read
        results["convnet warm"] = time.perf_counter() - started
        assert cold.decoded == len(files) and warm.decoded == 0
        difference = np.abs(np.asarray(warm.images, np.int16) -
                            np.stack([plain(p, shape) for p in files]).astype(np.int16))
        print(f"convnet's images against the plain loop's: mean |difference| "
              f"{difference.mean():.2f} of 255 (draft mode scales in the DCT)")
    reference = results["plain"]
    print(f"\n{'':14}{'seconds':>9}{'files/s':>10}{'× plain':>9}")
    for name, seconds in results.items():
        print(f"{name:14}{seconds:9.2f}{len(files) / seconds:10.1f}{reference / seconds:9.1f}")


if __name__ == "__main__":
    main()
