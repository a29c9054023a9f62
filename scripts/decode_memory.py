"""Peak memory of one image decode (convnet.data.folder.read_image), per decoded pixel.

    .venv/bin/python scripts/decode_memory.py [--side 4000]

Writes an N×N image in every mode Pillow reads (PNG RGBA, LA, RGB, L, palette with
transparency, 16-bit grey; JPEG), decodes each in a fresh process to a 28×28 grey and a 32×32
colour input, and prints the growth of the process's peak resident memory (Linux: VmHWM, reset before
the decode) divided by N².
DECODE_BYTES_PER_PIXEL in convnet/data/folder.py is the worst of these, rounded up; the
server's pixel cap and its number of concurrent decodes are derived from it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

PROBE = """
import sys
from convnet.data.folder import read_image

def resident(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

data = open(sys.argv[1], "rb").read()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to what is resident now
base = resident("VmRSS:")
read_image(data, (int(sys.argv[3]), int(sys.argv[3]), int(sys.argv[2])), max_pixels=10**9)
print(resident("VmHWM:") - base)
"""


def images(side: int, folder: Path) -> list[Path]:
    pattern = np.zeros((side, side, 4), np.uint8)
    pattern[::7, ::5] = 200  # compresses well: a small file, a large decode (as a bomb does)
    made = {
        "rgba.png": Image.fromarray(pattern, "RGBA"),
        "la.png": Image.fromarray(pattern[:, :, :2].copy(), "LA"),
        "rgb.png": Image.fromarray(pattern[:, :, :3].copy(), "RGB"),
        "grey.png": Image.fromarray(pattern[:, :, 0].copy(), "L"),
        "grey16.png": Image.fromarray(pattern[:, :, 0].astype(np.uint16) * 257),
        "rgb.jpg": Image.fromarray(pattern[:, :, :3].copy(), "RGB"),
    }
    palette = Image.fromarray(pattern[:, :, 0].copy(), "L").convert("P")
    palette.info["transparency"] = 0
    made["palette.png"] = palette
    paths = []
    for name, image in made.items():
        path = folder / name
        image.save(path)
        paths.append(path)
    return paths


def peak_growth(path: Path, channels: int, size: int) -> int:
    """Bytes the peak resident memory of a fresh process grows by while it decodes `path`."""
    return int(subprocess.run([sys.executable, "-c", PROBE, str(path), str(channels), str(size)],
                              capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        worst = 0.0
        for path in images(args.side, Path(folder)):
            for channels, size in ((1, 28), (3, 32)):
                per_pixel = peak_growth(path, channels, size) / args.side ** 2
                worst = max(worst, per_pixel)
                print(f"{path.name:12} → {size}x{size}x{channels}: {per_pixel:5.2f} bytes per pixel "
                      f"({path.stat().st_size:,} bytes on disk)")
        print(f"worst: {worst:.2f} bytes per pixel")


if __name__ == "__main__":
    main()
