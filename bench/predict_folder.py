"""`convnet predict` on a folder of phone photos: the folder decoded on every core (as training
decodes one) against the same files named one by one (decoded in turn), in the same run.

    .venv/bin/python bench/predict_folder.py [--photos 120] [--size 4000x3000]

The photos are JPEGs (quality 90) written to a temporary folder; the network is the one a bare
`convnet train` builds for them (64x85x3, 5 classes), untrained: the decoding is what is timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from convnet import Network, predict_files
from convnet.cpu import this_cpu
from convnet.train import default_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--size", default="4000x3000", help="width x height of each photo")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    cpu = this_cpu()
    print(f"# {cpu.describe()}; {args.photos} JPEGs of {width}×{height}")
    net = Network(default_network((64, 85, 3), 5), input=(64, 85, 3))
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        photo = Image.fromarray(small).resize((width, height))
        for i in range(args.photos):
            photo.save(Path(folder) / f"{i:04}.jpg", quality=90)
        files = sorted(str(p) for p in Path(folder).glob("*.jpg"))
        timings = {}
        for what, given in (("folder (every core)", [folder]), ("files one by one", files)):
            started = time.perf_counter()
            answers, _ = predict_files(net, given)
            timings[what] = time.perf_counter() - started
            print(f"{what:20} {timings[what]:6.2f} s  {len(answers) / timings[what]:6.1f} "
                  "photos/s")
        ratio = timings["files one by one"] / timings["folder (every core)"]
        print(f"ratio: the folder {ratio:.2f}× faster")


if __name__ == "__main__":
    main()
