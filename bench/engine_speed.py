"""NumPy engine vs PyTorch eager fp32 on the CPU: training steps and inference, batch 128.

Both engines run in the same process, interleaved round by round, with the same thread count.
A training step is forward + backward + SGD-with-momentum update (--optimizer muon: the conv
kernels by Muon, as the recipes train them; PyTorch's side runs the torch engine's Muon, the same
rule in tensor operations); inference is forward + softmax.
Peak memory is measured per engine in a child process: its peak RSS while it builds the network,
makes the batch and runs 3 training steps and 3 inferences, above the RSS after imports.

    .venv/bin/python bench/engine_speed.py                 # the lecture's networks, 7 rounds
    .venv/bin/python bench/engine_speed.py --rounds 3 --threads 2
    .venv/bin/python bench/engine_speed.py --networks fast93 best --batch 256 --convs im2col shifted
    .venv/bin/python bench/engine_speed.py --networks fast93 --batch 256 --optimizer muon
    .venv/bin/python bench/engine_speed.py --networks fast93 best --batch 256 --input 32x32x3

--networks also takes the recipes' batch-norm networks (fast91, fast93, best, ensemble: each
recipe's float32 network on 28x28x1). --convs times the NumPy engine once per way of computing
its convolutions (CONVNET_NUMPY_CONV: im2col or shifted; auto is the engine's own choice for
this CPU), all interleaved round by round with PyTorch, so that each gets a ratio measured on
the same machine in the same minutes.

PyTorch runs twice: "torch" takes an N×C×H×W copy of the images, as most PyTorch code feeds a
network; "torch/cl" the images' own N×H×W×C memory seen as N×C×H×W (channels-last), as convnet's
torch engine feeds it on the CPU, where oneDNN then keeps the activations channels-last.

Each side rests --settle seconds before each of its rounds and then runs --warm batches untimed
(see time_per_batch). Prints ms per batch (median of rounds, with min–max), images per second,
and the throughput ratios to each PyTorch row (≥ 1.0 means at least as fast): the ratio of the medians, and — the
figure to quote on a host whose speed drifts — "paired ÷ torch/cl", the median (and range) of each
round's own ratio, both engines timed within the same second or two: a host that slows down for a
minute slows both sides of the rounds in it, and the ratio of medians can pair one side's fast
rounds with the other's slow ones (on the AMD EPYC Zen 3 of 2026-12-04 fast91's network measured
0.71× and 0.86× by the ratio of medians in two runs minutes apart).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

LECTURE = {
    "lenet": ("conv(6,5) relu pool(2) conv(16,5) relu pool(2) fc(120) relu fc(84) relu fc(10)",
              (32, 32, 3)),
    "mnist-cnn": ("conv(32,3,pad=same) relu pool(2) conv(64,3,pad=same) relu pool(2) fc(128) "
                  "relu fc(10)", (28, 28, 1)),
}


RECIPES = ("fast91", "fast93", "best", "ensemble")  # their batch-norm networks (issue 16)


def network(name: str) -> tuple[str, tuple[int, int, int]]:
    """(description, input) of a lecture's network, or of a recipe's as its float32 path trains
    it, on 28x28x1 (convnet is imported only here, after the thread counts are set)."""
    if name in LECTURE:
        return LECTURE[name]
    from convnet.recipes import FP32, RECIPES as ALL
    return {**ALL[name], **FP32.get(name, {})}["network"], (28, 28, 1)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", nargs="+", default=list(LECTURE), choices=[*LECTURE, *RECIPES])
    p.add_argument("--convs", nargs="+", default=["auto"], choices=("auto", "im2col", "shifted"),
                   help="the NumPy engine's convolutions, each timed (default: auto)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--input", metavar="HxWxC",
                   help="every network on images of this shape (default: each one's own)")
    p.add_argument("--optimizer", choices=("sgd", "muon"), default="sgd",
                   help="the update of a training step (default: %(default)s; muon: the conv "
                        "kernels by Muon, the rest by SGD, as the recipes)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=10, help="timed batches per round")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--settle", type=float, default=0.5,
                   help="seconds of rest before each timed block, so spinning threads sleep")
    p.add_argument("--warm", type=int, default=3,
                   help="untimed batches after the rest, before each timed block")
    p.add_argument("--memory-child", nargs=2, metavar=("ENGINE", "NETWORK"), help=argparse.SUPPRESS)
    return p.parse_args()


ARGS = parse_args()
# Thread counts must be fixed before NumPy's BLAS and PyTorch start.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # its convnet

import convnet  # noqa: E402,F401  (before NumPy: it picks OpenBLAS's kernels, cpu.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from convnet import Network, cpu  # noqa: E402
from convnet.config import OptimizerConfig  # noqa: E402
from convnet.engines.numpy import blas  # noqa: E402
from convnet.engines.torch.build import build_sequential  # noqa: E402
from convnet.engines.torch.optim import make_optimizer  # noqa: E402
from convnet.errors import UserError  # noqa: E402
from convnet.spec import parse_input_shape  # noqa: E402

try:
    INPUT = parse_input_shape(ARGS.input) if ARGS.input else None
except UserError as e:
    print(f"engine_speed.py: --input: {e}", file=sys.stderr)
    sys.exit(2)

torch.set_num_threads(ARGS.threads)


def make(name: str, seed: int = 0, engines=("numpy", "torch")):
    text, shape = network(name)
    shape = INPUT or shape
    rng = np.random.default_rng(seed)
    x = rng.random((ARGS.batch, *shape), dtype=np.float32)
    y = rng.integers(0, 10, ARGS.batch)
    config = OptimizerConfig(name=ARGS.optimizer, lr=0.01, momentum=0.9, muon_lr=0.01)
    net = Network(text, input=shape, seed=seed, optimizer=config)
    result = {}
    for engine in engines:
        if engine.startswith("numpy"):
            mode = engine.partition("/")[2] or "auto"
            result[engine] = (convs(mode, lambda: net.train_step(x, y)),
                              convs(mode, lambda: net.predict(x)))
    if not any(engine.startswith("torch") for engine in engines):
        return result
    model = build_sequential(net.spec, shape)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    if ARGS.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    else:
        named = list(model.named_parameters())
        opt = make_optimizer([{"names": [n for n, _ in named], "params": [p for _, p in named],
                               "lr": config.lr, "scale": 1.0}], config)
    yt = torch.from_numpy(y)

    def steps(xt):
        def torch_train():
            opt.zero_grad()  # (set_to_none: both optimisers)
            F.cross_entropy(model(xt), yt).backward()
            opt.step()

        def torch_infer():
            model.eval()
            with torch.no_grad():
                torch.softmax(model(xt), dim=1)
            model.train()
        return torch_train, torch_infer

    # "torch": an N×C×H×W copy, as most PyTorch code feeds a network; "torch/cl": the images'
    # own N×H×W×C memory seen as N×C×H×W, channels-last, as convnet's torch engine feeds it on
    # the CPU — oneDNN keeps the activations channels-last then (25–45% faster on colour images
    # on the AVX2 EPYC; with one channel PyTorch takes the copy channels-first)
    inputs = {"torch": torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
              "torch/cl": torch.from_numpy(x).permute(0, 3, 1, 2)}
    result.update({engine: steps(inputs[engine]) for engine in inputs if engine in engines})
    return result


def convs(mode: str, fn):
    """fn with the NumPy engine's convolutions computed `mode`'s way (auto: the engine's)."""
    def run() -> None:
        before = os.environ.pop("CONVNET_NUMPY_CONV", None)
        if mode != "auto":
            os.environ["CONVNET_NUMPY_CONV"] = mode
        try:
            fn()
        finally:
            os.environ.pop("CONVNET_NUMPY_CONV", None)
            if before is not None:
                os.environ["CONVNET_NUMPY_CONV"] = before
    return run


def numpy_engines() -> tuple[str, ...]:
    """The NumPy engine's labels: "numpy", or "numpy/im2col", "numpy/shifted", … for --convs."""
    if ARGS.convs == ["auto"]:
        return ("numpy",)
    return tuple(dict.fromkeys(f"numpy/{mode}" for mode in ARGS.convs))


def time_per_batch(fn, steps: int) -> float:
    # On a machine this small, the idle engine's thread pools (OpenMP, OpenBLAS) spin for a
    # while after their last call and take the cores from the other engine; let them sleep.
    # Then a few batches untimed: after the rest, the first batches wake a core that has gone
    # idle at every hand-off to a thread — in a KVM guest (the AMD EPYC Zen 3 of 2026-12-04)
    # the NumPy engine's first three LeNet steps took 18–20 ms and the next 14.5 (on one thread
    # 20 ms from the first), PyTorch's OpenMP threads, which spin between their parallel
    # regions, one step; a training run's steps follow each other with no rest.
    time.sleep(ARGS.settle)
    for _ in range(ARGS.warm):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def paired(mine: list[float], theirs: list[float]) -> str:
    """The median (min–max) of each round's own ratio theirs ÷ mine: throughput against theirs."""
    ratios = [t / m for m, t in zip(mine, theirs)]
    return f"{float(np.median(ratios)):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(engine: str, name: str) -> None:
    # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM), so imports' peak doesn't count.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status_kib("VmRSS")
    except OSError:
        print(json.dumps({"peak_mib": float("nan")}))
        return
    fns = make(name, engines=(engine,))[engine]  # (a NumPy label sets its convolutions)
    for _ in range(3):
        fns[0]()
        fns[1]()
    print(json.dumps({"peak_mib": (_status_kib("VmHWM") - base) / 1024}))


def peak_memory(engine: str, name: str) -> float:
    given = ["--optimizer", ARGS.optimizer] + \
        (["--input", ARGS.input] if ARGS.input else [])
    out = subprocess.run([sys.executable, __file__, "--threads", str(ARGS.threads),
                          "--batch", str(ARGS.batch), *given, "--memory-child", engine, name],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])["peak_mib"]


def main() -> None:
    if ARGS.memory_child:
        memory_child(*ARGS.memory_child)
        return
    shape = "x".join(map(str, INPUT)) if INPUT else "each network's own"
    print(f"# {cpu.describe()}, threads={ARGS.threads}, batch={ARGS.batch}, "
          f"optimizer={ARGS.optimizer}, input={shape}, rounds={ARGS.rounds}×{ARGS.steps} batches, "
          f"numpy {np.__version__} (OpenBLAS kernels: {blas.kernel()}), "
          f"torch {torch.__version__}")
    print(f"{'network':10} {'what':6} {'engine':13} {'ms/batch':>9} {'min–max':>13} "
          f"{'img/s':>8} {'peak MiB':>9} {'÷ torch':>8} {'÷ torch/cl':>10}  "
          f"paired ÷ torch/cl")
    for name in ARGS.networks:
        fns = make(name, engines=(*numpy_engines(), "torch", "torch/cl"))
        for kind, index in (("train", 0), ("infer", 1)):
            for engine in fns:  # warm up
                for _ in range(3):
                    fns[engine][index]()
            times: dict[str, list[float]] = {engine: [] for engine in fns}
            for _ in range(ARGS.rounds):  # interleaved: both engines see the same machine
                for engine in fns:
                    times[engine].append(time_per_batch(fns[engine][index], ARGS.steps))
            med = {e: float(np.median(t)) for e, t in times.items()}
            for engine, t in times.items():
                memory = peak_memory(engine, name) if kind == "train" else float("nan")
                ratios = [f"{med[base] / med[engine]:.2f}×" if engine != base else ""
                          for base in ("torch", "torch/cl")]
                pair = "" if engine == "torch/cl" else paired(t, times["torch/cl"])
                print(f"{name:10} {kind:6} {engine:13} {med[engine] * 1e3:9.2f} "
                      f"{min(t) * 1e3:6.2f}–{max(t) * 1e3:6.2f} "
                      f"{ARGS.batch / med[engine]:8.0f} {memory:9.1f} {ratios[0]:>8} "
                      f"{ratios[1]:>10}  {pair}", flush=True)


if __name__ == "__main__":
    main()
