"""Where the NumPy engine's time goes: forward and backward of each layer, batch 128 (or B).

    .venv/bin/python bench/profile_layers.py [lenet|mnist-cnn|fast91|fast91-pool-first|fast93|
                                              fast94|best|ensemble|
                                              fast91-16-32] [--batch B]
    .venv/bin/python bench/profile_layers.py fast91-16-32 --batch 256 --torch

With --torch, PyTorch eager runs the same network beside it (float32, the same weights and batch,
channels-last as convnet's torch engine runs it on the CPU), in interleaved rounds, and each layer
gets both engines' forward and backward and the gap between them: where the NumPy engine loses.
"""

from __future__ import annotations

import time
from collections import defaultdict

import convnet  # noqa: F401  (before NumPy: it picks OpenBLAS's kernels, cpu.py)
import numpy as np

from convnet import Network
from convnet.recipes import RECIPES
from convnet.spec import layer_to_string

NETWORKS = {
    "lenet": ("conv(6,5) relu pool(2) conv(16,5) relu pool(2) fc(120) relu fc(84) relu fc(10)",
              (32, 32, 3)),
    "mnist-cnn": ("conv(32,3,pad=same) relu pool(2) conv(64,3,pad=same) relu pool(2) fc(128) "
                  "relu fc(10)", (28, 28, 1)),
    # the batch-norm networks of the recipes (issue 16)
    "fast91": ("conv(32,3,pad=same,bias=false) batchnorm relu pool(2) conv(64,3,pad=same,"
               "bias=false) batchnorm relu pool(2) fc(128,bias=false) batchnorm relu fc(10)",
               (28, 28, 1)),
    "fast91-pool-first": ("conv(24,3,pad=same,bias=false) pool(2) batchnorm relu conv(48,3,"
                          "pad=same,bias=false) pool(2) batchnorm relu fc(128,bias=false) "
                          "batchnorm relu fc(10)", (28, 28, 1)),
    # the recipes' own, so that they follow the recipes: fast93's, fast94's (which was fast93's
    # until its third session and best's until its fourth) and best's
    "fast93": (RECIPES["fast93"]["network"], (28, 28, 1)),
    "fast94": (RECIPES["fast94"]["network"], (28, 28, 1)),
    "best": (RECIPES["best"]["network"], (28, 28, 1)),
    "ensemble": (RECIPES["ensemble"]["network"], (28, 28, 1)),  # best's with a residual block
    # fast91 since issue 16: 16/32 filters, pooling first
    "fast91-16-32": ("conv(16,3,pad=same,bias=false) pool(2) batchnorm relu conv(32,3,pad=same,"
                     "bias=false) pool(2) batchnorm relu fc(128,bias=false) batchnorm relu fc(10)",
                     (28, 28, 1)),
}


def numpy_layers(net: Network, x: np.ndarray, y: np.ndarray, steps: int
                 ) -> tuple[dict[str, float], dict[tuple[int, str], float]]:
    """The NumPy engine's time a step (training and inference) and each layer's forward and
    backward time a training step, in seconds."""
    spent: dict[tuple[int, str], float] = defaultdict(float)
    model = net.engine.model
    originals = []
    for layer_index, layer in enumerate(model.layers):  # wrap every layer with a timer
        if layer is None:
            continue
        for method in ("forward", "backward"):
            original = getattr(layer, method)
            originals.append((layer, method, original))

            def timed(*args, _f=original, _key=(layer_index, method), **kwargs):
                start = time.perf_counter()
                out = _f(*args, **kwargs)
                spent[_key] += time.perf_counter() - start
                return out

            setattr(layer, method, timed)
    try:
        return timed_steps(lambda: net.predict(x), lambda: net.train_step(x, y), spent, steps)
    finally:
        for layer, method, original in originals:
            setattr(layer, method, original)


def timed_steps(infer, train, spent: dict[tuple[int, str], float], steps: int
                ) -> tuple[dict[str, float], dict[tuple[int, str], float]]:
    """The time a step of `infer` and of `train` (after 3 warming ones each), and the layers'
    times `spent` gathered over the training steps, each a step's share."""
    totals = {}
    for what, run in (("inference", infer), ("training step", train)):
        for _ in range(3):
            run()
        spent.clear()  # (the training steps' remain)
        start = time.perf_counter()
        for _ in range(steps):
            run()
        totals[what] = (time.perf_counter() - start) / steps
    return totals, {key: value / steps for key, value in spent.items()}


def torch_layers(net: Network, x: np.ndarray, y: np.ndarray, steps: int
                 ) -> tuple[dict[str, float], dict[tuple[int, str], float]]:
    """The same for PyTorch eager (float32, the same weights, the images' channels-last view as
    convnet's torch engine feeds them on the CPU, SGD with momentum, the engine's threads). A
    layer's forward is timed by module hooks; its backward from the moment the gradient of its
    output is ready to the moment the gradient of its input is (tensor hooks), the first
    layer's until backward returns."""
    import torch
    import torch.nn.functional as F

    from convnet.engines.numpy import parallel
    from convnet.engines.torch.build import build_sequential

    torch.set_num_threads(parallel.threads())
    model = build_sequential(net.spec, net.input_shape)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y)
    spent: dict[tuple[int, str], float] = defaultdict(float)
    marks: dict[object, float] = {}
    first: list[int] = []

    def backward_done(i: int) -> None:
        spent[i, "backward"] += time.perf_counter() - marks["b", i]

    for i, module in enumerate(model):
        def before(module, args, i=i):
            marks["f", i] = time.perf_counter()

        def after(module, args, out, i=i):
            spent[i, "forward"] += time.perf_counter() - marks["f", i]
            if not torch.is_grad_enabled():
                return
            out.register_hook(lambda grad, i=i: marks.__setitem__(("b", i), time.perf_counter()))
            if args[0].requires_grad:
                args[0].register_hook(lambda grad, i=i: backward_done(i))
            else:
                first[:] = [i]

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)

    def train() -> None:
        optimizer.zero_grad()
        F.cross_entropy(model(xt), yt).backward()
        for i in first:
            backward_done(i)
        optimizer.step()

    def infer() -> None:
        model.eval()
        with torch.no_grad():
            torch.softmax(model(xt), dim=1)
        model.train()

    found = timed_steps(infer, train, spent, steps)
    time.sleep(0.3)  # PyTorch's idle threads spin a while: let them sleep before the engine runs
    return found


def main(name: str, steps: int = 20, batch: int = 128, torch: bool = False,
         rounds: int = 3) -> None:
    text, shape = NETWORKS[name]
    net = Network(text, input=shape, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((batch, *shape), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    sides = {"numpy": numpy_layers} | ({"torch": torch_layers} if torch else {})
    totals: dict[str, dict[str, float]] = {side: {} for side in sides}
    layers: dict[str, dict[tuple[int, str], float]] = {side: {} for side in sides}
    for _ in range(rounds if torch else 1):  # interleaved; the least of each figure
        for side, measure in sides.items():
            for kept, found in zip((totals[side], layers[side]), measure(net, x, y, steps)):
                for key, value in found.items():
                    kept[key] = min(value, kept.get(key, float("inf")))
    ms = 1e3
    if not torch:
        print(f"{name}: {totals['numpy']['training step'] * ms:.2f} ms per training step")
        for i, layer in enumerate(net.spec.layers):
            f, b = layers["numpy"].get((i, "forward"), 0), layers["numpy"].get((i, "backward"), 0)
            if f or b:
                print(f"  {i:2} {layer_to_string(layer):22} forward {f * ms:6.2f}  "
                      f"backward {b * ms:6.2f} ms")
        rest = totals["numpy"]["training step"] - sum(layers["numpy"].values())
        print(f"     input checks and layout, loss, optimiser {rest * ms:6.2f} ms")
        print(f"{name}: {totals['numpy']['inference'] * ms:.2f} ms per inference")
        return
    numpy_step, torch_step = totals["numpy"]["training step"], totals["torch"]["training step"]
    print(f"{name}, batch {batch}, training step: the NumPy engine {numpy_step * ms:.2f} ms, "
          f"PyTorch {torch_step * ms:.2f} ms ({torch_step / numpy_step:.2f}× PyTorch's speed); "
          f"inference {totals['numpy']['inference'] * ms:.2f} against "
          f"{totals['torch']['inference'] * ms:.2f} ms")
    print(f"  {'':2} {'layer':34} {'NumPy forward':>13} {'backward':>9}   "
          f"{'PyTorch forward':>15} {'backward':>9}   {'gap ms':>7}")
    for i, layer in enumerate(net.spec.layers):
        ours = [layers["numpy"].get((i, part), 0.0) for part in ("forward", "backward")]
        theirs = [layers["torch"].get((i, part), 0.0) for part in ("forward", "backward")]
        if any(ours + theirs):
            print(f"  {i:2} {layer_to_string(layer)[:34]:34} {ours[0] * ms:13.2f} "
                  f"{ours[1] * ms:9.2f}   {theirs[0] * ms:15.2f} {theirs[1] * ms:9.2f}   "
                  f"{(sum(ours) - sum(theirs)) * ms:+7.2f}")
    rest = [totals[side]["training step"] - sum(layers[side].values()) for side in sides]
    print(f"     {'the rest (layout, loss, optimiser)':34} {rest[0] * ms:23.2f}   "
          f"{rest[1] * ms:25.2f}   {(rest[0] - rest[1]) * ms:+7.2f}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("networks", nargs="*", metavar="NETWORK",
                        help=f"any of {', '.join(NETWORKS)} (default: all)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--torch", action="store_true",
                        help="PyTorch eager beside each layer, in interleaved rounds")
    parser.add_argument("--rounds", type=int, default=3,
                        help="with --torch: rounds, the least of each figure kept (default 3)")
    args = parser.parse_args()
    unknown = [name for name in args.networks if name not in NETWORKS]
    if unknown:
        parser.error(f"unknown network {unknown[0]!r}; choose from {', '.join(NETWORKS)}")
    if min(args.batch, args.steps, args.rounds) < 1:
        parser.error("--batch, --steps and --rounds are at least 1")
    for name in args.networks or list(NETWORKS):
        main(name, steps=args.steps, batch=args.batch, torch=args.torch, rounds=args.rounds)
