"""Where the NumPy engine's time goes: forward and backward of each layer, batch 128 (or B).

    .venv/bin/python bench/profile_layers.py [lenet|mnist-cnn|fast91|fast91-pool-first|fast93|
                                              fast94|best|fast91-16-32] [--batch B]
"""

from __future__ import annotations

import time
from collections import defaultdict

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
    # fast91 since issue 16: 16/32 filters, pooling first
    "fast91-16-32": ("conv(16,3,pad=same,bias=false) pool(2) batchnorm relu conv(32,3,pad=same,"
                     "bias=false) pool(2) batchnorm relu fc(128,bias=false) batchnorm relu fc(10)",
                     (28, 28, 1)),
}


def main(name: str, steps: int = 20, batch: int = 128) -> None:
    text, shape = NETWORKS[name]
    net = Network(text, input=shape, seed=0)
    model = net.engine.model
    rng = np.random.default_rng(0)
    x = rng.random((batch, *shape), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    spent: dict[tuple[int, str], float] = defaultdict(float)
    for layer_index, layer in enumerate(model.layers):  # wrap every layer with a timer
        if layer is None:
            continue
        for method in ("forward", "backward"):
            original = getattr(layer, method)

            def timed(*args, _f=original, _key=(layer_index, method), **kwargs):
                start = time.perf_counter()
                out = _f(*args, **kwargs)
                spent[_key] += time.perf_counter() - start
                return out

            setattr(layer, method, timed)
    for what, run in (("training step", lambda: net.train_step(x, y)),
                      ("inference", lambda: net.predict(x))):
        for _ in range(3):
            run()
        spent.clear()
        start = time.perf_counter()
        for _ in range(steps):
            run()
        total = (time.perf_counter() - start) / steps
        print(f"{name}: {total * 1e3:.2f} ms per {what}")
        for i, layer in enumerate(net.spec.layers):
            f, b = spent[(i, "forward")] / steps, spent[(i, "backward")] / steps
            if f or b:
                print(f"  {i:2} {layer_to_string(layer):22} forward {f * 1e3:6.2f}  "
                      f"backward {b * 1e3:6.2f} ms")
        rest = total - sum(spent.values()) / steps
        print(f"     input checks and layout, loss, optimiser {rest * 1e3:6.2f} ms")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("networks", nargs="*", metavar="NETWORK",
                        help=f"any of {', '.join(NETWORKS)} (default: all)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    unknown = [name for name in args.networks if name not in NETWORKS]
    if unknown:
        parser.error(f"unknown network {unknown[0]!r}; choose from {', '.join(NETWORKS)}")
    for name in args.networks or list(NETWORKS):
        main(name, steps=args.steps, batch=args.batch)
