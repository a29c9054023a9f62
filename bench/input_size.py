"""What the input size costs: the default network (train.default_network) for each short side a
folder of photos could be scaled to, trained on the CPU with the torch engine.

    .venv/bin/python bench/input_size.py [--sides 32 48 64 96 128] [--steps 30]

For each short side S (photos of 4:3, so S×4S/3×3 inputs) it builds the network a bare
`convnet train` would, trains it for --steps steps of batches of 128 random images, and prints
images per second, seconds per epoch of 10,000 images, weights and the decode cache's bytes per
image. SHORT_SIDE in convnet/data/sizing.py is chosen from these: the cost grows with the
square of the side, and no photo data set is at hand here to show accuracy growing with it —
so the default is the largest side whose epoch of 10,000 images stays near a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convnet import Network  # noqa: E402
from convnet.train import default_network  # noqa: E402
from folder_load import cpu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[32, 48, 64, 96, 128])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    print(f"CPU: {cpu()}")
    print(f"{'input':>12} {'weights':>10} {'img/s':>8} {'s/10k':>7} {'cache/img':>10}  network")
    rng = np.random.default_rng(0)
    for side in args.sides:
        shape = (side, round(side * 4 / 3), 3)
        text = default_network(shape, 10)
        net = Network(text, input=shape, engine="torch", seed=0)
        x = rng.integers(0, 256, (128, *shape), dtype=np.uint8)
        y = rng.integers(0, 10, 128)
        net.train_step(x, y)  # warm-up
        started = time.perf_counter()
        for _ in range(args.steps):
            net.train_step(x, y)
        rate = args.steps * 128 / (time.perf_counter() - started)
        weights = sum(v.size for v in net.state_dict().values())
        print(f"{'x'.join(map(str, shape)):>12} {weights:>10,} {rate:8.0f} {10_000 / rate:7.1f} "
              f"{int(np.prod(shape)):>9,}B  {text}")


if __name__ == "__main__":
    main()
