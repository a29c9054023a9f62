"""Ablations of a recipe: each trick taken out (or added), everything else the same.

Trains each variant on Fashion-MNIST with the same seeds and prints the training time, the time
to 91% and the final test accuracy (means over seeds), as in bench/time_to_accuracy.py. With
--compile-line, a variant with torch.compile is timed including its compilation (which happens
inside the first training step).

    .venv/bin/python bench/ablation.py --recipe fast91 --seeds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from time_to_accuracy import recipe_run, time_to  # noqa: E402

from convnet import recipes  # noqa: E402
from convnet.data import load_dataset  # noqa: E402

VARIANTS = {
    "recipe as is": {},
    "fp32 (no bf16, no channels-last)": {"bf16": False, "channels_last": False},
    "bf16 without channels-last": {"channels_last": False},
    "no label smoothing": {"label_smoothing": 0.0},
    "cosine schedule instead of one-cycle": {"schedule": "cosine"},
    "batch 128, lr halved": {"batch_size": 128, "lr": 0.1},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="fast91", choices=list(recipes.RECIPES))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--compile-line", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    data = load_dataset("fashion-mnist")
    variants = dict(VARIANTS)
    if args.compile_line:
        variants["+ torch.compile (compile time included)"] = {"compile": True}
    base = recipes.RECIPES[args.recipe]
    results = {}
    for label, change in variants.items():
        name = f"{args.recipe}:{label}"
        recipes.RECIPES[name] = {**base, **change}
        results[label] = [recipe_run(data, name, seed) for seed in range(args.seeds)]
    print(f"\n# {args.recipe}, {args.seeds} seeds, Fashion-MNIST, {os.cpu_count()} cores")
    print(f"{'variant':42} {'training s':>10} {'to 91% s':>9} {'final accuracy':>15}")
    for label, histories in results.items():
        total = statistics.mean(h[-1][0] for h in histories)
        reached = [time_to(h, 0.91) for h in histories]
        to91 = f"{statistics.mean(reached):.1f}" if all(reached) else \
            f"{sum(r is not None for r in reached)}/{len(reached)}"
        final = statistics.mean(h[-1][1] for h in histories)
        print(f"{label:42} {total:10.1f} {to91:>9} {100 * final:14.2f}%")


if __name__ == "__main__":
    main()
