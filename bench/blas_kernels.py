"""OpenBLAS's kernels for this CPU against the other kernels it carries, on the NumPy engine's work.

NumPy's OpenBLAS picks its kernels when it loads, by the CPU: SkylakeX's on CPUs with AVX-512
(the AMD EPYC Zen 4 and the Intel Xeons here), Haswell's on AVX2 ones. OPENBLAS_CORETYPE, set
before NumPy loads, picks others. Which are fastest depends on the shapes, and the NumPy engine's
speed is mostly its products (docs/BENCHMARKS.md), so this measures, for each kernel set in child
processes of its own, interleaved round by round:

1. products of the shapes the engine multiplies, on one thread (the engine shares its products
   out between its own threads, OpenBLAS on one thread each): GFLOP/s;
2. a training step and an inference of each network on the NumPy engine, and of PyTorch eager
   float32 in the same child: milliseconds and the NumPy ÷ PyTorch throughput.

    .venv/bin/python bench/blas_kernels.py     # OpenBLAS's choice, SkylakeX, Haswell
    .venv/bin/python bench/blas_kernels.py --kernels SkylakeX Zen --rounds 3 --networks lenet best
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

# (label, M, K, N, b stored transposed): out (M×N) = a (M×K) @ b (K×N), as the engine multiplies
# them (b stored N×K where the engine reads it so: the kernel rows' weight gradients, whose b is
# the widened input, and the shifted products')
SHAPES = [
    ("conv 64→64 14×14 forward block", 64, 576, 1792, False),
    ("conv 64→64 weight gradient block", 576, 1792, 64, False),
    ("conv 32→64 14×14 forward block", 64, 288, 3584, False),
    ("conv 1→32 28×28 forward block", 32, 9, 8192, False),
    ("conv 1→32 weight gradient block", 9, 8192, 32, False),
    ("conv 48→48 14×14 shifted, forward", 48, 144, 3584, False),
    ("conv 48→48 14×14 shifted, weight gradient", 48, 3584, 144, True),
    ("LeNet conv(6,5) by rows, forward (2 rows)", 12, 90, 8192, False),
    ("LeNet conv(6,5) by rows, weight gradient", 12, 8192, 90, True),
    ("LeNet conv(16,5) by rows, forward", 16, 150, 1280, False),
    ("LeNet conv(16,5) by rows, weight gradient", 16, 1280, 150, True),
    ("fc(128) of 64×7×7, forward", 128, 3136, 256, False),
]

LECTURE = {  # bench/engine_speed.py's networks, at its batch
    "lenet": ("conv(6,5) relu pool(2) conv(16,5) relu pool(2) fc(120) relu fc(84) relu fc(10)",
              (32, 32, 3), 128),
    "mnist-cnn": ("conv(32,3,pad=same) relu pool(2) conv(64,3,pad=same) relu pool(2) fc(128) "
                  "relu fc(10)", (28, 28, 1), 128),
}
RECIPE_NETWORKS = ("fast91", "fast93", "best")  # bench/throughput.py's, at batch 256


def network(name: str) -> tuple[str, tuple[int, int, int], int]:
    if name in LECTURE:
        return LECTURE[name]
    from convnet.recipes import RECIPES
    return RECIPES[name]["network"], (28, 28, 1), 256


def product_speeds(seconds: float) -> dict[str, float]:
    import numpy as np
    from convnet.engines.numpy import blas
    rng = np.random.default_rng(0)
    speeds = {}
    with blas.one_core():
        for label, m, k, n, transposed in SHAPES:
            a = rng.random((m, k), dtype=np.float32)
            b = rng.random((n, k), dtype=np.float32).T if transposed else \
                rng.random((k, n), dtype=np.float32)
            out = np.empty((m, n), np.float32)
            np.matmul(a, b, out=out)
            best, start = float("inf"), time.perf_counter()
            while time.perf_counter() - start < seconds:
                began = time.perf_counter()
                np.matmul(a, b, out=out)
                best = min(best, time.perf_counter() - began)
            speeds[label] = 2 * m * k * n / best / 1e9
    return speeds


def step_times(names: list[str], seconds: float) -> dict[str, dict[str, float]]:
    """{network: {"numpy train": ms, "torch train": ms, "numpy infer": …, "torch infer": …}}:
    medians of three alternating rounds."""
    import numpy as np
    import torch
    from convnet import Network, spec
    torch.set_num_threads(os.cpu_count() or 1)
    results = {}
    for name in names:
        description, shape, batch = network(name)
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (batch, *shape), dtype=np.uint8)
        y = rng.integers(0, 10, batch)
        parsed = spec.parse(description).with_input(shape)
        nets = {engine: Network(parsed, engine=engine, lr=0.01) for engine in ("numpy", "torch")}
        times: dict[str, list[float]] = {}
        for _ in range(3):
            for engine, net in nets.items():
                for kind, fn in (("train", lambda: net.train_step(x, y)),
                                 ("infer", lambda: net.logits(x, batch_size=batch))):
                    fn()
                    count, start = 0, time.perf_counter()
                    while time.perf_counter() - start < seconds or count < 2:
                        fn()
                        count += 1
                    times.setdefault(f"{engine} {kind}", []).append(
                        (time.perf_counter() - start) / count * 1e3)
        results[name] = {key: float(np.median(values)) for key, values in times.items()}
    return results


def child(args: argparse.Namespace) -> None:
    from convnet.engines.numpy import blas
    print(json.dumps({"kernel": blas.kernel(), "products": product_speeds(args.seconds / 2),
                      "steps": step_times(args.networks, args.seconds)}))


def run_child(kernel: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if kernel != "default":
        env["OPENBLAS_CORETYPE"] = kernel
    command = [sys.executable, os.path.abspath(__file__), "--child", "--seconds",
               str(args.seconds), "--networks", *args.networks]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", nargs="+", default=["default", "SkylakeX", "Haswell"],
                        help="OPENBLAS_CORETYPE values; 'default' leaves OpenBLAS to choose")
    from convnet.recipes import RECIPES
    parser.add_argument("--networks", nargs="+", choices=[*LECTURE, *RECIPES],
                        default=[*LECTURE, *RECIPE_NETWORKS])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.6,
                        help="time per measurement (a product, a network's step)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import numpy as np
    from convnet import cpu
    runs: dict[str, list[dict]] = {kernel: [] for kernel in args.kernels}
    for _ in range(args.rounds):  # interleaved: every kernel sees the machine's same phases
        for kernel in args.kernels:
            runs[kernel].append(run_child(kernel, args))
    names = {kernel: f"{kernel} ({results[0]['kernel']})" if kernel == "default" else
             str(results[0]["kernel"]) for kernel, results in runs.items()}
    print(f"# {cpu.describe()}; numpy {np.__version__}; {args.rounds} rounds, interleaved; "
          f"the products' best, the steps' fastest time and median ratio")
    width = max(len(label) for label, *_ in SHAPES)
    print(f"\n{'product (one thread), GFLOP/s':{width}} " +
          " ".join(f"{names[k]:>18}" for k in args.kernels))
    for label, *_ in SHAPES:
        best = {k: max(r["products"][label] for r in runs[k]) for k in args.kernels}
        print(f"{label:{width}} " + " ".join(f"{best[k]:18.1f}" for k in args.kernels))
    print(f"\n{'network, ms (NumPy ÷ PyTorch)':{width}} " +
          " ".join(f"{names[k]:>18}" for k in args.kernels))
    for name in args.networks:
        for kind in ("train", "infer"):
            cells = []
            for k in args.kernels:
                numpy_ms = min(r["steps"][name][f"numpy {kind}"] for r in runs[k])
                ratios = [r["steps"][name][f"torch {kind}"] / r["steps"][name][f"numpy {kind}"]
                          for r in runs[k]]
                cells.append(f"{numpy_ms:8.2f} ({float(np.median(ratios)):.2f}×)")
            print(f"{name + ' ' + kind:{width}} " + " ".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
