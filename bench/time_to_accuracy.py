"""Time to reach test accuracy on Fashion-MNIST: convnet's recipes vs the PyTorch reference.

The reference is the recipe of the PyTorch examples (examples/mnist/main.py): conv 3×3×32 → ReLU
→ conv 3×3×64 → ReLU → max pool 2 → dropout 0.25 → fc 128 → ReLU → dropout 0.5 → fc 10,
Adadelta lr 1.0 with StepLR(γ = 0.7) each epoch, batch 64, inputs normalised. Both sides hold
all 60,000 training images in memory, train on the same machine in the same run (the seeds are
interleaved: reference, then each recipe, per seed), and only training is timed; the real
10,000-image test set is evaluated after every epoch, outside the clock. The time to a target is
the training time until the first evaluation at or above it.

    .venv/bin/python bench/time_to_accuracy.py                           # fast91 fast93, 3 seeds
    .venv/bin/python bench/time_to_accuracy.py --recipes fast94 --seeds 3 --no-reference
    .venv/bin/python bench/time_to_accuracy.py --engine-line             # + the NumPy engine

Prints, per recipe: mean ± spread (min–max) of the time to 91%, 93% and 94% and of the final
accuracy, and the ratio of the reference's time to 91% to each recipe's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from convnet.data import load_dataset  # noqa: E402
from convnet.recipes import RECIPES, recipe  # noqa: E402
from convnet.spec import load as load_spec  # noqa: E402
from convnet.train import TrainConfig, build_network, channel_stats, train_epoch  # noqa: E402
from convnet import augment as augmentation  # noqa: E402

TARGETS = (0.91, 0.93, 0.94)


def reference_run(data, seed: int, max_epochs: int, target: float) -> list[tuple[float, float]]:
    """The PyTorch-examples recipe; [(cumulative training seconds, test accuracy)] per epoch."""
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128),
                          nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    mean, std = channel_stats(data.train.images)
    def tensor(images):  # N×H×W×1 uint8 → normalised N×1×H×W float, all in memory
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
        return (x - mean[0]) / std[0]
    x, y = tensor(data.train.images), torch.from_numpy(data.train.labels)
    xt, yt = tensor(data.test.images), torch.from_numpy(data.test.labels)
    generator = torch.Generator().manual_seed(seed)
    history, clock = [], 0.0
    for _ in range(max_epochs):
        model.train()
        start = time.perf_counter()
        for index in torch.randperm(len(x), generator=generator).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
        scheduler.step()
        clock += time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            accuracy = float((model(xt).argmax(1) == yt).float().mean())
        history.append((clock, accuracy))
        print(f"  reference seed {seed}: {clock:6.1f} s, test {accuracy:.2%}", flush=True)
        if accuracy >= target:
            break
    return history


def recipe_run(data, name: str, seed: int, engine: str | None = None) -> list[tuple[float, float]]:
    settings = recipe(name)
    if engine:
        settings = {**settings, "engine": engine, "channels_last": False, "bf16": False}
    config = TrainConfig(**{**asdict(TrainConfig()), **settings, "seed": seed}).check()
    network = load_spec(config.network).with_input(data.shape)
    net = build_network(config, network, data.train.images)  # exactly as convnet train does
    kinds = augmentation.parse(config.augment)
    history, clock = [], 0.0
    for epoch in range(config.epochs):
        stats = train_epoch(net, data.train.images, data.train.labels, config, epoch, kinds)
        clock += stats["seconds"]
        accuracy = net.evaluate(data.test.images, data.test.labels)["accuracy"]
        history.append((clock, accuracy))
        print(f"  {name}{'/' + engine if engine else ''} seed {seed}: {clock:6.1f} s, "
              f"test {accuracy:.2%}", flush=True)
    return history


def time_to(history: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, accuracy in history if accuracy >= target), None)


def summary(values: list[float | None]) -> str:
    if not values or any(v is None for v in values):
        reached = sum(v is not None for v in values)
        return f"not reached ({reached}/{len(values)} seeds)"
    mean = statistics.mean(values)  # type: ignore[arg-type]
    return f"{mean:6.1f} s ({min(values):.1f}–{max(values):.1f})"  # type: ignore[type-var]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", nargs="+", default=["fast91", "fast93"], choices=list(RECIPES))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--reference-epochs", type=int, default=6,
                   help="the reference stops at 91%% or after this many epochs")
    p.add_argument("--engine-line", action="store_true",
                   help="also run fast91 on the NumPy engine (fp32) for its time to 91%%")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", help="write every run's history to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist")
    print(f"# Fashion-MNIST {len(data.train):,} train / {len(data.test):,} test, "
          f"{os.cpu_count()} cores, threads={args.threads}, torch {torch.__version__}, "
          f"seeds={args.seeds}", flush=True)
    runs: dict[str, list[list[tuple[float, float]]]] = {}
    for seed in range(args.seeds):
        if not args.no_reference:
            runs.setdefault("reference", []).append(
                reference_run(data, seed, args.reference_epochs, 0.91))
        for name in args.recipes:
            runs.setdefault(name, []).append(recipe_run(data, name, seed))
        if args.engine_line:
            runs.setdefault("fast91/numpy", []).append(recipe_run(data, "fast91", seed, "numpy"))
    reference = [time_to(h, 0.91) for h in runs.get("reference", [])]
    print(f"\n{'recipe':14} {'to 91%':>24} {'to 93%':>24} {'to 94%':>24} "
          f"{'final accuracy':>22} {'ref/this to 91%':>16}")
    for name, histories in runs.items():
        finals = [h[-1][1] for h in histories]
        times = {t: [time_to(h, t) for h in histories] for t in TARGETS}
        ratio = ""
        if reference and all(reference) and all(times[0.91]):
            ratio = f"{statistics.mean(reference) / statistics.mean(times[0.91]):.1f}×"
        spread = f"{100 * statistics.mean(finals):.2f}% ({100 * min(finals):.2f}–" \
                 f"{100 * max(finals):.2f})"
        print(f"{name:14} {summary(times[0.91]):>24} {summary(times[0.93]):>24} "
              f"{summary(times[0.94]):>24} {spread:>22} {ratio:>16}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f)


if __name__ == "__main__":
    main()
