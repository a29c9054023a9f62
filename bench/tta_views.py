"""Which test-time views pay: a recipe trained per seed, then its final (evaluated) weights
scored on Fashion-MNIST's test set with several sets of views, their logits averaged.

    .venv/bin/python bench/tta_views.py --recipe fast94 --epochs 9 --seeds 1 2

The views: the image alone; moved a pixel up, down, left and right as well (what --tta-shift 1
does: 5 views); those and the four diagonal moves (9); those and the four moves of two pixels
(9); all of them (13); and the 5 and 9 views with the unmoved image counted twice. Training is
exactly `convnet train --recipe`'s (the loop of bench/time_to_accuracy.py); only the evaluation at
the end differs, so the views cost nothing in training time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from time_to_accuracy import recipe_setup  # noqa: E402

from convnet import cpu  # noqa: E402
from convnet.data import load_dataset  # noqa: E402
from convnet.network import SHIFTS, shifted  # noqa: E402
from convnet.recipes import RECIPES, path_for  # noqa: E402
from convnet.train import train_epoch  # noqa: E402

DIAGONALS = ((-1, -1), (-1, 1), (1, -1), (1, 1))
# name: ((dy, dx, pixels, weight), ...)
VIEW_SETS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "the image alone": ((0, 0, 0, 1),),
    "5: moved 1 pixel along the axes (--tta-shift 1)":
        ((0, 0, 0, 1),) + tuple((dy, dx, 1, 1) for dy, dx in SHIFTS),
    "9: and the diagonals": ((0, 0, 0, 1),) + tuple((dy, dx, 1, 1) for dy, dx in
                                                    SHIFTS + DIAGONALS),
    "9: and 2 pixels along the axes": ((0, 0, 0, 1),) + tuple(
        (dy, dx, by, 1) for by in (1, 2) for dy, dx in SHIFTS),
    "13: all of them": ((0, 0, 0, 1),) + tuple((dy, dx, 1, 1) for dy, dx in SHIFTS + DIAGONALS)
    + tuple((dy, dx, 2, 1) for dy, dx in SHIFTS),
    "5, the image itself counted twice":
        ((0, 0, 0, 2),) + tuple((dy, dx, 1, 1) for dy, dx in SHIFTS),
    "9 with diagonals, the image itself counted twice":
        ((0, 0, 0, 2),) + tuple((dy, dx, 1, 1) for dy, dx in SHIFTS + DIAGONALS),
}


SHORT = dict(zip(VIEW_SETS, ("alone", "5", "9 diagonal", "9 two-pixel", "13", "5 (×2)",
                            "9 diagonal (×2)")))


def trained(data, name: str, seed: int, path: str, epochs: int | None):
    """The recipe trained as `convnet train --recipe` trains it; (network, averages, accuracy
    as the recipe evaluates it)."""
    config, net, averages, kinds = recipe_setup(data, name, seed, path=path,
                                                **({"epochs": epochs} if epochs else {}))
    for epoch in range(config.epochs):
        train_epoch(net, data.train.images, data.train.labels, config, epoch, kinds,
                    after_step=averages.after_step)
    with averages.evaluated():
        accuracy = net.evaluate(data.test.images, data.test.labels)["accuracy"]
    return net, averages, accuracy


def view_accuracies(net, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Each view set's accuracy, each view's logits computed once."""
    moves = {(dy, dx, by) for views in VIEW_SETS.values() for dy, dx, by, _ in views}
    logits: dict[tuple[int, int, int], list[np.ndarray]] = {move: [] for move in moves}
    for start in range(0, len(images), 1000):
        batch = net.prepare_images(images[start:start + 1000])
        for dy, dx, by in moves:
            view = shifted(batch, dy, dx, by) if by else batch
            logits[(dy, dx, by)].append(net.engine.logits(view))
    whole = {move: np.concatenate(parts) for move, parts in logits.items()}
    return {name: float((sum(weight * whole[(dy, dx, by)] for dy, dx, by, weight in views)
                         .argmax(axis=1) == labels).mean())
            for name, views in VIEW_SETS.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="fast94", choices=[r for r in RECIPES if r != "ensemble"])
    p.add_argument("--epochs", type=int, help="instead of the recipe's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--path", choices=("bf16", "fp32"), help="default: the one this CPU gets")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    path = args.path or path_for()[0]
    data = load_dataset("fashion-mnist")
    rows: dict[str, list[float]] = {name: [] for name in VIEW_SETS}
    recipes_own = []
    for seed in args.seeds:
        net, averages, accuracy = trained(data, args.recipe, seed, path, args.epochs)
        recipes_own.append(accuracy)
        with averages.evaluated():
            found = view_accuracies(net, data.test.images, data.test.labels)
        print(f"  seed {seed}: the recipe's own evaluation {accuracy:.2%}; " + ", ".join(
            f"{SHORT[name]} {value:.2%}" for name, value in found.items()), flush=True)
        for name, value in found.items():
            rows[name].append(value)
    epochs = f"{args.epochs} epochs" if args.epochs else "the recipe's epochs"
    print(f"\n# {args.recipe} ({path} path), {epochs}, seeds "
          f"{' '.join(map(str, args.seeds))}; {cpu.describe()}")
    print(f"{'views':52} {'accuracy':>9}   per seed")
    for name, values in rows.items():
        print(f"{name:52} {100 * statistics.mean(values):8.2f}%   "
              f"({' / '.join(f'{100 * v:.2f}' for v in values)})")
    print(f"{'(the recipe as it evaluates)':52} {100 * statistics.mean(recipes_own):8.2f}%")


if __name__ == "__main__":
    main()
