"""Training and inference throughput of the recipes' networks, and how close to the machine's
physical limit they run.

For each network: images per second for a training step (forward, backward, SGD) and for
inference, batch 256, on the torch engine in fp32 (as it is and channels-last) and with the fast
path (channels-last + bf16 autocast), and on the NumPy engine; achieved FLOP/s (2 FLOPs per
multiply-add; a training step counts 3× the forward's multiply-adds, for the forward and the two
backward products; the counts come from `convnet inspect`); and that as a fraction of this
machine's peak FLOP/s in fp32 and bf16, measured here as the fastest of a large square matrix
product (PyTorch's, and NumPy's OpenBLAS in fp32) and oneDNN's 3×3 convolution of the recipes'
widest layer, each the fastest of ten runs (a square product alone is no peak: on the AMD EPYC
Zen 4 PyTorch's reached 190–197 GFLOP/s, OpenBLAS's 216 and oneDNN's convolution 241, so that
PyTorch's training steps came out at 101% of a "peak" of square products).

    .venv/bin/python bench/throughput.py [--batch 256] [--rounds 5] [--seconds 1] [--only NAME ...]

The paths of a network are timed in interleaved rounds (each path for --seconds a round, after a
short rest), so that they share the host's slow and fast minutes: each figure is the median over
the rounds, each ratio the median of the rounds' ratios. (Timed one after another, 3 s each, the
NumPy engine's ratios to PyTorch moved by up to a tenth between runs on a KVM guest whose speed
drifts within the hour.)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import convnet  # noqa: E402,F401  (before NumPy: it picks OpenBLAS's kernels, cpu.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from convnet import Network, shapes, spec  # noqa: E402
from convnet.config import SpeedOptions  # noqa: E402
from convnet import cpu  # noqa: E402
from convnet.engines.numpy import blas  # noqa: E402
from convnet.recipes import FP32, RECIPES  # noqa: E402

# the batch-norm networks measured: each recipe's (a float32 path with a network of its own
# too), and fast91 before issue 16; recipes that share a network share a row
NAMED = [
    ("fast91", RECIPES["fast91"]["network"]),
    *((f"{name} fp32 path", path["network"]) for name, path in FP32.items() if "network" in path),
    ("fast93", RECIPES["fast93"]["network"]),
    ("fast94", RECIPES["fast94"]["network"]),
    ("best/ensemble", RECIPES["best"]["network"]),
    ("fast91 of issue 5", "conv(32,3,pad=same,bias=false) batchnorm relu pool(2) "
                          "conv(64,3,pad=same,bias=false) batchnorm relu pool(2) "
                          "fc(128,bias=false) batchnorm relu fc(10)"),
]


def one_row_per_network(named: list[tuple[str, str]]) -> dict[str, str]:
    """{"a/b": network} for the labels a, b, … that name the same network, in first-seen order."""
    labels: dict[str, list[str]] = {}
    for label, network in named:
        labels.setdefault(network, []).append(label)
    return {"/".join(names): network for network, names in labels.items()}


NETWORKS = one_row_per_network(NAMED)

BATCH = 256


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=BATCH, help="images per step (default %(default)s)")
    p.add_argument("--rounds", type=int, default=5,
                   help="interleaved rounds over the paths of a network (default %(default)s)")
    p.add_argument("--seconds", type=float, default=1.0,
                   help="how long each path is timed in each round, for training and for "
                        "inference (default %(default)s)")
    p.add_argument("--settle", type=float, default=0.3,
                   help="seconds of rest before each timing, for the other engine's spinning "
                        "threads to sleep (default %(default)s)")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(NETWORKS),
                   help="these networks only (the rows' names)")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="time the bf16 path and peak too (default: where the CPU has bf16 units; "
                        "without them a bf16 product runs at about 1 GFLOP/s, on one core)")
    args = p.parse_args()
    if args.batch < 1 or args.rounds < 1 or args.seconds <= 0 or args.settle < 0:
        p.error("--batch and --rounds must be at least 1, --seconds more than 0, --settle "
                "not negative")
    return args


def fastest_rate(fn, flops: float, repeat: int = 10) -> float:
    """FLOP/s of fn's fastest run of `repeat`, after two warming ones: the host's noise only ever
    slows a run down, so the fastest is the nearest to what the machine can do."""
    fn()
    fn()
    fastest = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - start)
    return flops / fastest


Candidate = tuple[str, Callable[[], object], float]  # (what, a run of it, its FLOPs)


def peak_candidates(dtype, n: int = 2048) -> list[Candidate]:
    """(what, a function, its FLOPs): a square product by PyTorch, the same by NumPy's OpenBLAS
    (float32 only), and oneDNN's 3×3 convolution of 64 channels into 64 at 14×14, batch 256,
    channels-last — `best`'s widest layer, on which oneDNN comes nearest the CPU's limit."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    x = torch.randn(256, 64, 14, 14).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)

    def conv() -> None:
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, padding=1)

    found = [(f"PyTorch's {n}² product", lambda: a @ b, 2.0 * n ** 3),
             ("oneDNN's 3×3 convolution", conv, 2.0 * 64 * 64 * 9 * 14 * 14 * 256)]
    if dtype == torch.float32:
        an, bn = a.numpy(), b.numpy()
        out = np.empty_like(an)
        found.append((f"OpenBLAS's {n}² product", lambda: np.matmul(an, bn, out=out),
                      2.0 * n ** 3))
    return found


def peak_flops(candidates: list[Candidate]) -> tuple[float, str]:
    """The fastest rate among the candidates (each its fastest run) and which one gave it."""
    rates = [(fastest_rate(fn, flops), what) for what, fn, flops in candidates]
    return max(rates)


def median_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median of each round's own ratio of two speeds (images a second): a round where the
    host was slow for both sides counts as one ratio, not as a slow figure for one side."""
    return float(np.median([a / b for a, b in zip(ours, theirs, strict=True)]))


def images_per_second(fn, batch: int, seconds: float, settle: float = 0.0) -> float:
    time.sleep(settle)
    fn()
    fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count * batch / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    batch = args.batch
    torch.set_num_threads(os.cpu_count() or 1)
    with_bf16 = cpu.this_cpu().bf16 if args.bf16 is None else args.bf16
    peak32, by32 = peak_flops(peak_candidates(torch.float32))
    peak16, by16 = peak_flops(peak_candidates(torch.bfloat16)) if with_bf16 else \
        (float("nan"), "")
    why = "--no-bf16" if args.bf16 is False else "no bf16 units; --bf16 to time it"
    bf16 = f"bf16 {peak16 / 1e9:.0f} G ({by16})" if with_bf16 else f"bf16 not timed ({why})"
    print(f"# {cpu.describe()}; measured peak FLOP/s (the fastest of square products and a 3×3 "
          f"convolution): fp32 {peak32 / 1e9:.0f} G ({by32}), {bf16}; batch {batch}; "
          f"NumPy's OpenBLAS kernels: {blas.kernel()}", flush=True)
    print(f"{'network':20} {'engine/path':16} {'train img/s':>11} {'GFLOP/s':>8} {'% peak':>7} "
          f"{'infer img/s':>11} {'GFLOP/s':>8} {'% peak':>7}")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, batch)
    for name, description in NETWORKS.items():
        if args.only and name not in args.only:
            continue
        network = spec.parse(description).with_input((28, 28, 1))
        macs = sum(r.macs for r in shapes.infer(network))
        paths = [("torch fp32", "torch", SpeedOptions(), peak32),
                 ("torch fp32+cl", "torch", SpeedOptions(channels_last=True), peak32),
                 *([("torch bf16+cl", "torch", SpeedOptions(channels_last=True, bf16=True),
                     peak16)] if with_bf16 else []),
                 ("numpy fp32", "numpy", SpeedOptions(), peak32)]
        nets = {label: (Network(network, engine=engine, speed=speed, lr=0.01), peak)
                for label, engine, speed, peak in paths}
        rounds: dict[str, list[tuple[float, float]]] = {label: [] for label in nets}
        for _ in range(args.rounds):
            for label, (net, _) in nets.items():
                train = images_per_second(lambda: net.train_step(x, y), batch, args.seconds,
                                          args.settle)
                infer = images_per_second(lambda: net.logits(x, batch_size=batch), batch,
                                          args.seconds, args.settle)
                rounds[label].append((train, infer))
        for label, (_, peak) in nets.items():
            train, infer = (float(np.median([r[i] for r in rounds[label]])) for i in (0, 1))
            train_flops, infer_flops = train * 6 * macs, infer * 2 * macs
            print(f"{name:20} {label:16} {train:11.0f} {train_flops / 1e9:8.1f} "
                  f"{100 * train_flops / peak:6.1f}% {infer:11.0f} {infer_flops / 1e9:8.1f} "
                  f"{100 * infer_flops / peak:6.1f}%", flush=True)
        ratios = {"numpy": "numpy fp32", "channels-last": "torch fp32+cl",
                  "fast path": "torch bf16+cl"}

        def ratio(label: str, i: int) -> float:  # i: 0 training, 1 inference
            return median_ratio([r[i] for r in rounds[label]],
                                [r[i] for r in rounds["torch fp32"]])

        print(f"{name:20} ratios to torch fp32 (median of {args.rounds} rounds): " + "; ".join(
            f"{what} train {ratio(label, 0):.2f}×, infer {ratio(label, 1):.2f}×"
            for what, label in ratios.items() if label in rounds), flush=True)


if __name__ == "__main__":
    main()
