"""What an optimiser step costs on a recipe's network: the torch engine's SGD (the recipes'
optimiser) against Muon (conv kernels orthogonalised by 5 Newton–Schulz iterations in float32,
the other weights by SGD), the same gradients, interleaved rounds, minimum and median per step —
beside the whole training step of the same recipe, timed in the same run.

    .venv/bin/python bench/optimizer_step.py --recipe fast94
    .venv/bin/python bench/optimizer_step.py --recipe fast93 --path fp32
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import asdict

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from convnet import augment as augmentation  # noqa: E402
from convnet import cpu  # noqa: E402
from convnet.recipes import RECIPES, changed, path_for, recipe  # noqa: E402
from convnet.spec import load as load_spec  # noqa: E402
from convnet.train import TrainConfig, build_network  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="fast94", choices=list(RECIPES))
    p.add_argument("--path", choices=("bf16", "fp32"), help="default: the one this CPU gets")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=20, help="optimiser steps per round")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    path = args.path or path_for()[0]
    settings = recipe(args.recipe, path=path)
    rng = np.random.default_rng(0)
    nets, configs = {}, {}
    for name in ("sgd", "muon"):
        config = TrainConfig(**changed({**asdict(TrainConfig()), **settings},
                                       {"optimizer": name})).check()
        network = load_spec(config.network).with_input((28, 28, 1))
        images = rng.integers(0, 256, (config.batch_size, 28, 28, 1), dtype=np.uint8)
        labels = rng.integers(0, 10, len(images))
        net = build_network(config, network, images)
        kinds = augmentation.parse(config.augment)
        batch = augmentation.augment(images, kinds, rng)
        for _ in range(3):
            net.train_step(batch, labels)  # warm, and leaves gradients in place
        nets[name], configs[name] = (net, batch, labels), config
    times: dict[str, list[float]] = {"sgd": [], "muon": [], "training step (sgd)": []}
    for _ in range(args.rounds):
        for name in ("sgd", "muon"):
            optimizer = nets[name][0].engine.optimizer
            start = time.perf_counter()
            for _ in range(args.steps):
                optimizer.step()
            times[name].append((time.perf_counter() - start) / args.steps)
        net, batch, labels = nets["sgd"]
        start = time.perf_counter()
        for _ in range(5):
            net.train_step(batch, labels)
        times["training step (sgd)"].append((time.perf_counter() - start) / 5)
    step = min(times["training step (sgd)"])
    print(f"# {args.recipe}, {path} path, batch {configs['sgd'].batch_size}, "
          f"{torch.get_num_threads()} threads, {cpu.describe()}")
    print(f"{'':22} {'min ms':>8} {'median ms':>10} {'share of a step':>16}")
    for name, values in times.items():
        print(f"{name:22} {1000 * min(values):8.2f} {1000 * statistics.median(values):10.2f} "
              f"{min(values) / step:16.1%}")


if __name__ == "__main__":
    main()
