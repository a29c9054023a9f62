"""Where one training step of a recipe spends its time: torch.profiler over a few steps of the
real loop (`convnet.train.train_epoch`'s work: augmentation, the uint8 → float preparation, the
forward, the loss, backward and the optimiser), grouped by kind of work, with the achieved FLOP/s
of the matrix work as a share of this machine's measured peak.

    .venv/bin/python bench/profile_step.py --recipe fast91 [--steps 20] [--fp32]

Prints the ten most expensive operators, then the share of the step in: convolutions (forward
and backward), the fc layers' matrix products, batch norm, element-wise layers and pooling, the
optimiser, and everything outside PyTorch's operators (Python, NumPy: augmentation and the
batch's preparation).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from convnet import augment as augmentation  # noqa: E402
from convnet import cpu  # noqa: E402
from convnet.recipes import RECIPES, recipe  # noqa: E402
from convnet.shapes import infer  # noqa: E402
from convnet.spec import load as load_spec  # noqa: E402
from convnet.train import TrainConfig, build_network  # noqa: E402

GROUPS = [  # (group, words in an operator's name)
    ("convolution", ("conv", "mkldnn_convolution", "convolution")),
    ("fc matrix products", ("addmm", "mm", "linear", "matmul")),
    ("batch norm", ("batch_norm", "native_batch_norm")),
    ("pooling", ("max_pool", "pool")),
    ("element-wise (ReLU, casts, copies)", ("relu", "threshold", "copy_", "to", "clone",
                                            "contiguous", "permute", "add", "mul", "div",
                                            "sub", "fill_", "zero_", "empty")),
    ("loss", ("cross_entropy", "log_softmax", "nll_loss")),
    ("optimiser", ("sgd", "_foreach", "optimizer")),
]


def group_of(name: str) -> str:
    low = name.lower()
    if "optimizer" in low or "sgd" in low or "_foreach" in low:
        return "optimiser"
    for group, words in GROUPS:
        if any(word in low for word in words):
            return group
    return "other PyTorch operators"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="fast91", choices=list(RECIPES))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--path", choices=("bf16", "fp32"), default=None,
                   help="the recipe's path (default: the one this CPU gets)")
    p.add_argument("--network", help="another description, with the recipe's settings")
    p.add_argument("--batch-size", type=int)
    args = p.parse_args()
    settings = recipe(args.recipe, path=args.path)
    settings["path"] = args.path or __import__("convnet.recipes").recipes.path_for()[0]
    if args.network:
        settings["network"] = args.network
    if args.batch_size:
        settings["batch_size"] = args.batch_size
    config = TrainConfig(**{**asdict(TrainConfig()),
                            **{k: v for k, v in settings.items() if k != "path"}}).check()
    network = load_spec(config.network).with_input((28, 28, 1))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (config.batch_size * 4, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images))
    net = build_network(config, network, images)
    kinds = augmentation.parse(config.augment)

    def step(i: int) -> None:
        index = np.arange(config.batch_size) + (i % 4) * config.batch_size
        batch = augmentation.augment(images[index], kinds, rng)
        net.train_step(batch, labels[index])

    for i in range(5):
        step(i)
    start = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(args.steps):
            step(i)
    wall = (time.perf_counter() - start) / args.steps
    events = prof.key_averages()
    tops = [e for e in events if e.key.startswith("aten::") or "Optimizer" in e.key]
    total_self = sum(e.self_cpu_time_total for e in tops) / args.steps / 1e6
    grouped: dict[str, float] = {}
    for e in tops:
        grouped[group_of(e.key)] = grouped.get(group_of(e.key), 0.0) + \
            e.self_cpu_time_total / args.steps / 1e6
    macs = sum(row.macs for top in infer(network) for row in top.walk())
    flops = 3 * 2 * macs * config.batch_size  # forward + two backward products
    print(f"# {args.recipe}, {settings.get('path')} path, batch {config.batch_size}, "
          f"{torch.get_num_threads()} threads, {cpu.describe()}")
    print(f"one step: {1000 * wall:.1f} ms wall ({config.batch_size / wall:,.0f} img/s), "
          f"{flops / wall / 1e9:.0f} GFLOP/s of matrix work")
    print(f"\n{'operator':40} {'ms/step':>8} {'share':>6}")
    for e in sorted(tops, key=lambda e: -e.self_cpu_time_total)[:10]:
        ms = e.self_cpu_time_total / args.steps / 1e3
        print(f"{e.key[:40]:40} {ms:8.2f} {ms / 1000 / wall:6.1%}")
    print(f"\n{'kind of work':40} {'ms/step':>8} {'share':>6}")
    for group, seconds in sorted(grouped.items(), key=lambda kv: -kv[1]):
        print(f"{group:40} {1000 * seconds:8.2f} {seconds / wall:6.1%}")
    outside = max(0.0, wall - total_self)
    print(f"{'outside PyTorch (Python, NumPy)':40} {1000 * outside:8.2f} {outside / wall:6.1%}")


if __name__ == "__main__":
    main()
