"""Time to reach test accuracy on Fashion-MNIST: convnet's recipes vs the PyTorch reference.

The reference is the recipe of the PyTorch examples (examples/mnist/main.py): conv 3×3×32 → ReLU
→ conv 3×3×64 → ReLU → max pool 2 → dropout 0.25 → fc 128 → ReLU → dropout 0.5 → fc 10,
Adadelta lr 1.0 with StepLR(γ = 0.7) each epoch, batch 64, inputs normalised. Both sides hold
all 60,000 training images in memory, train on the same machine in the same run (the seeds are
interleaved: reference, then each recipe, per seed), and only training is timed; the real
10,000-image test set is evaluated after every epoch, outside the clock. The time to a target is
the training time until the first evaluation at or above it.

The reference runs twice per seed, each in a fresh process: as users run it ("reference"), and
with the allocator setting convnet makes for its own runs ("reference + allocator",
convnet/engines/allocator.py: it changes the whole process, so it cannot be undone within one).
With --command, `convnet train --recipe NAME` also runs whole, per seed, and its wall time —
start-up, loading, training, the final test, checkpoints and plots — is reported beside the
loop's training time.

    .venv/bin/python bench/time_to_accuracy.py --recipes fast91 --seeds 3 --command
    .venv/bin/python bench/time_to_accuracy.py --recipes fast94 --seeds 3 --no-reference
    .venv/bin/python bench/time_to_accuracy.py --path fp32   # the recipes' float32 path
    .venv/bin/python bench/time_to_accuracy.py --engine-line             # + the NumPy engine

Prints the CPU (model, cores, bf16 units or not), then per recipe: mean (min–max) of the time
to 91%, 93% and 94% and of the final accuracy, and the ratio of the reference's time to 91% to
each recipe's (training time, and the command's wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from convnet import cpu  # noqa: E402
from convnet.averaging import Averages  # noqa: E402
from convnet.data import load_dataset  # noqa: E402
from convnet.recipes import RECIPES, path_for, recipe  # noqa: E402
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


def reference_in_a_process(seed: int, max_epochs: int, allocator: bool
                           ) -> list[tuple[float, float]]:
    """The reference in a fresh Python process (with convnet's allocator setting or without:
    it changes the whole process, so each variant needs its own)."""
    command = [sys.executable, __file__, "--reference-only", str(seed), "--reference-epochs",
               str(max_epochs)] + (["--allocator"] if allocator else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("  reference"):
            print(line.replace("reference", "reference + allocator" if allocator
                               else "reference"), flush=True)
    return [tuple(point) for point in json.loads(done.stdout.splitlines()[-1])]


def command_run(name: str, seed: int, path: str) -> tuple[float, float]:
    """`convnet train --recipe NAME` whole, in its own process: (wall seconds, test accuracy)."""
    out = tempfile.mkdtemp(prefix="convnet-bench-")
    env = dict(os.environ)
    if path == "fp32" and path_for()[0] == "bf16":
        env["CONVNET_CPU_FLAGS"] = "avx2 avx512f"  # as a CPU without bf16 units would run it
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convnet", "train", "--recipe", name,
                           "--seed", str(seed), "--out", out, "--force"],
                          capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - start
    found = re.search(r"test accuracy ([\d.]+)%", done.stdout)
    accuracy = float(found.group(1)) / 100 if found else float("nan")
    print(f"  convnet train --recipe {name} --seed {seed}: {wall:6.1f} s wall, "
          f"test {accuracy:.2%}", flush=True)
    return wall, accuracy


def recipe_setup(data, name: str, seed: int, engine: str | None = None, path: str | None = None,
                 **changes):
    """A recipe's config (with `changes`), network, weight averages and augmentation, exactly
    as `convnet train --recipe NAME` builds them."""
    settings = recipe(name, "fp32" if engine == "numpy" else path)
    if engine:
        settings = {**settings, "engine": engine, "channels_last": False, "bf16": False}
    config = TrainConfig(**{**asdict(TrainConfig()), **settings, **changes, "seed": seed}).check()
    network = load_spec(config.network).with_input(data.shape)
    net = build_network(config, network, data.train.images)
    return config, net, Averages(net, config.ema, config.lookahead), \
        augmentation.parse(config.augment)


def recipe_run(data, name: str, seed: int, engine: str | None = None, path: str | None = None
               ) -> list[tuple[float, float]]:
    config, net, averages, kinds = recipe_setup(data, name, seed, engine, path)
    history, clock = [], 0.0
    for epoch in range(config.epochs):
        stats = train_epoch(net, data.train.images, data.train.labels, config, epoch, kinds,
                            after_step=averages.after_step)
        clock += stats["seconds"]
        with averages.evaluated():
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
    p.add_argument("--path", choices=("bf16", "fp32"),
                   help="the recipes' path (default: the one this CPU gets)")
    p.add_argument("--command", action="store_true",
                   help="also time `convnet train --recipe NAME` whole, per seed")
    p.add_argument("--json", help="write every run's history to this file")
    p.add_argument("--reference-only", type=int, metavar="SEED", help=argparse.SUPPRESS)
    p.add_argument("--allocator", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.reference_only is not None:  # one reference run, in this fresh process
        if args.allocator:
            from convnet.engines.allocator import keep_freed_memory
            keep_freed_memory()
        data = load_dataset("fashion-mnist")
        print(json.dumps(reference_run(data, args.reference_only, args.reference_epochs, 0.91)))
        return
    path = args.path or path_for()[0]
    data = load_dataset("fashion-mnist")
    print(f"# Fashion-MNIST {len(data.train):,} train / {len(data.test):,} test; "
          f"{cpu.describe()}; threads={args.threads}, torch {torch.__version__}, "
          f"seeds={args.seeds}, recipes on their {path} path", flush=True)
    runs: dict[str, list[list[tuple[float, float]]]] = {}
    commands: dict[str, list[tuple[float, float]]] = {}
    for seed in range(args.seeds):
        if not args.no_reference:
            runs.setdefault("reference", []).append(
                reference_in_a_process(seed, args.reference_epochs, allocator=False))
            runs.setdefault("reference + allocator", []).append(
                reference_in_a_process(seed, args.reference_epochs, allocator=True))
        for name in args.recipes:
            runs.setdefault(name, []).append(recipe_run(data, name, seed, path=path))
            if args.command:
                commands.setdefault(name, []).append(command_run(name, seed, path))
        if args.engine_line:
            runs.setdefault("fast91/numpy", []).append(recipe_run(data, "fast91", seed, "numpy"))
    reference = [time_to(h, 0.91) for h in runs.get("reference", [])]
    print(f"\n{'recipe':22} {'to 91%':>24} {'to 93%':>24} {'to 94%':>24} "
          f"{'final accuracy':>22} {'ref/this to 91%':>16}")
    for name, histories in runs.items():
        finals = [h[-1][1] for h in histories]
        times = {t: [time_to(h, t) for h in histories] for t in TARGETS}
        ratio = ""
        if reference and all(reference) and all(times[0.91]):
            ratio = f"{statistics.mean(reference) / statistics.mean(times[0.91]):.1f}×"
        spread = f"{100 * statistics.mean(finals):.2f}% ({100 * min(finals):.2f}–" \
                 f"{100 * max(finals):.2f})"
        print(f"{name:22} {summary(times[0.91]):>24} {summary(times[0.93]):>24} "
              f"{summary(times[0.94]):>24} {spread:>22} {ratio:>16}")
    for name, results in commands.items():
        walls = [wall for wall, _ in results]
        accuracies = [accuracy for _, accuracy in results]
        ratio = f"{statistics.mean(reference) / statistics.mean(walls):.1f}×" \
            if reference and all(reference) else ""
        print(f"{'convnet train --recipe ' + name:34} wall {summary(walls):>24}, test "
              f"{100 * statistics.mean(accuracies):.2f}% ({100 * min(accuracies):.2f}–"
              f"{100 * max(accuracies):.2f}); reference's training time to 91% ÷ this "
              f"command's wall time: {ratio}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "commands": commands}, f)


if __name__ == "__main__":
    main()
