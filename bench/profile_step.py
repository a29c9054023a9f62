"""Where one training step of a recipe spends its time: torch.profiler over a few steps of the
real loop (`convnet.train.train_epoch`'s work: augmentation, the uint8 → float preparation, the
forward, the loss, backward and the optimiser), grouped by kind of work, with the achieved FLOP/s
of the matrix work as a share of this machine's peak (the fastest of square products and oneDNN's
3×3 convolution, as bench/throughput.py measures it, in the same run: bf16 on the bf16 path and
float32 on the float32 path).

    .venv/bin/python bench/profile_step.py --recipe fast91 [--steps 20] [--path fp32]
    .venv/bin/python bench/profile_step.py --recipe fast94 --optimizer muon
    .venv/bin/python bench/profile_step.py --table     # every recipe on each path, one table

Prints the ten most expensive operators, then the share of the step in: convolutions (forward
and backward), the fc layers' matrix products, batch norm, element-wise layers and pooling, the
optimiser, and everything outside PyTorch's operators (Python, NumPy: augmentation and the
batch's preparation). With --table, one column per recipe and path (the paths this CPU can run;
the float32 path is also what a CPU without bf16 units runs), as in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass, field

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import convnet  # noqa: E402,F401  (before NumPy: it picks OpenBLAS's kernels, cpu.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from throughput import peak_candidates, peak_flops  # noqa: E402

from convnet import augment as augmentation  # noqa: E402
from convnet import cpu  # noqa: E402
from convnet.recipes import PATH_WORDS, RECIPES, changed, path_for, recipe  # noqa: E402
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
OUTSIDE = "outside PyTorch (Python, NumPy)"
# the table's rows: (label, the groups it adds up)
ROWS = [("convolution", ("convolution",)),
        ("element-wise", ("element-wise (ReLU, casts, copies)",)),
        ("pooling", ("pooling",)),
        ("batch norm", ("batch norm",)),
        ("fc matrix products", ("fc matrix products",)),
        ("optimiser, loss, other", ("optimiser", "loss", "other PyTorch operators")),
        ("outside PyTorch (Python, NumPy)", (OUTSIDE,))]


def group_of(name: str) -> str:
    low = name.lower()
    if "optimizer" in low or "sgd" in low or "_foreach" in low or "muon" in low:
        return "optimiser"
    for group, words in GROUPS:
        if any(word in low for word in words):
            return group
    return "other PyTorch operators"


@dataclass
class Profile:
    recipe: str
    path: str
    batch: int
    wall: float  # seconds per step, without the profiler
    profiled: float  # seconds per step under the profiler (the shares are of this)
    flops: float  # matrix work per step
    peak: float  # this path's peak FLOP/s (throughput.peak_flops)
    groups: dict[str, float] = field(default_factory=dict)  # seconds per step
    operators: list[tuple[str, float]] = field(default_factory=list)  # the ten most expensive

    @property
    def achieved(self) -> float:
        return self.flops / self.wall

    @property
    def slowed(self) -> bool:
        """Whether the profiler took the step more than a fifth longer (then its shares are
        those of a distorted step)."""
        return self.profiled > 1.2 * self.wall


def profile(name: str, path: str, steps: int, network_text: str | None = None,
            batch_size: int | None = None, optimizer: str | None = None) -> Profile:
    settings = recipe(name, path=path)
    settings.pop("ensemble", None)  # one member's step: how many train is not a step's setting
    if optimizer:
        settings = changed(settings, {"optimizer": optimizer})
    if network_text:
        settings["network"] = network_text
    if batch_size:
        settings["batch_size"] = batch_size
    config = TrainConfig(**{**asdict(TrainConfig()), **settings}).check()
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
    for i in range(steps):
        step(i)
    wall = (time.perf_counter() - start) / steps
    # the profiler's first use in a process sets itself up inside its first steps (a 28-ms
    # step of fast91's took 106 ms profiled when it came first in --table): once, unmeasured
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
        for i in range(2):
            step(i)
    start = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(i)
    profiled = (time.perf_counter() - start) / steps
    tops = [e for e in prof.key_averages() if e.key.startswith("aten::") or "Optimizer" in e.key]
    groups: dict[str, float] = {}
    for e in tops:
        groups[group_of(e.key)] = groups.get(group_of(e.key), 0.0) + \
            e.self_cpu_time_total / steps / 1e6
    groups[OUTSIDE] = max(0.0, profiled - sum(groups.values()))
    operators = [(e.key, e.self_cpu_time_total / steps / 1e6)
                 for e in sorted(tops, key=lambda e: -e.self_cpu_time_total)[:10]]
    macs = sum(top.macs for top in infer(network))  # a residual block's row counts its own
    peak, _ = peak_flops(peak_candidates(torch.bfloat16 if config.bf16 else torch.float32))
    return Profile(name, path, config.batch_size, wall, profiled,
                   3 * 2 * macs * config.batch_size,  # forward + two backward products
                   peak, groups, operators)


def print_one(p: Profile) -> None:
    print(f"# {p.recipe}, {p.path} path, batch {p.batch}, {torch.get_num_threads()} threads, "
          f"{cpu.describe()}")
    print(f"one step: {1000 * p.wall:.1f} ms wall ({p.batch / p.wall:,.0f} img/s), "
          f"{p.achieved / 1e9:.0f} GFLOP/s of matrix work = {p.achieved / p.peak:.0%} of the "
          f"{'bf16' if p.path == 'bf16' else 'float32'} peak ({p.peak / 1e9:.0f} GFLOP/s)")
    print(f"under the profiler: {1000 * p.profiled:.1f} ms a step; the shares below are of that"
          + (" (the profiler slows this step down: read them with care)" if p.slowed else ""))
    print(f"\n{'operator':40} {'ms/step':>8} {'share':>6}")
    for key, seconds in p.operators:
        print(f"{key[:40]:40} {1000 * seconds:8.2f} {seconds / p.profiled:6.1%}")
    print(f"\n{'kind of work':40} {'ms/step':>8} {'share':>6}")
    for group, seconds in sorted(p.groups.items(), key=lambda kv: -kv[1]):
        print(f"{group[:40]:40} {1000 * seconds:8.2f} {seconds / p.profiled:6.1%}")


def print_table(profiles: list[Profile]) -> None:
    print(f"# batch {profiles[0].batch}, {torch.get_num_threads()} threads, {cpu.describe()}\n")
    print("| recipe, path | one step (img/s) | matrix work (share of the path's peak) | "
          + " | ".join(label for label, _ in ROWS) + " |")
    print("| --- | ---: | ---: |" + " ---: |" * len(ROWS))
    for p in profiles:
        shares = [sum(p.groups.get(g, 0.0) for g in groups) / p.profiled
                  for _, groups in ROWS]
        slowed = f" ({1000 * p.profiled:.0f} ms profiled)" if p.slowed else ""
        print(f"| {p.recipe}, {PATH_WORDS[p.path]} | "
              f"{1000 * p.wall:.1f} ms ({p.batch / p.wall:,.0f}){slowed} | "
              f"{p.achieved / 1e9:.0f} GFLOP/s ({p.achieved / p.peak:.0%}) | "
              + " | ".join(f"{share:.1%}" for share in shares) + " |")
    peaks = {PATH_WORDS[p.path]: p.peak for p in profiles}  # each path's last measurement
    print("\nthe step timed without the profiler, the shares of the step under it; peaks "
          "(the fastest of square products and a 3×3 convolution): " +
          ", ".join(f"{path} {peak / 1e9:.0f} GFLOP/s" for path, peak in peaks.items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="fast91", choices=list(RECIPES))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--path", choices=("bf16", "fp32"), default=None,
                   help="the recipe's path (default: the one this CPU gets)")
    p.add_argument("--network", help="another description, with the recipe's settings")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw", "muon"),
                   help="another optimiser, with the recipe's settings")
    p.add_argument("--table", action="store_true",
                   help="every recipe (the ensemble's row: one of its members) on each path "
                        "this CPU runs, as one table")
    args = p.parse_args()
    if not args.table:
        print_one(profile(args.recipe, args.path or path_for()[0], args.steps, args.network,
                          args.batch_size, args.optimizer))
        return
    paths = ("bf16", "fp32") if path_for()[0] == "bf16" else ("fp32",)
    profiles = [profile(name, path, args.steps, batch_size=args.batch_size)
                for name in RECIPES for path in paths]
    print_table(profiles)


if __name__ == "__main__":
    main()
