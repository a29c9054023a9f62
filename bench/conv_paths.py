"""The NumPy engine's convolution paths on this CPU: im2col in blocks of several sizes against
computing by kernel rows and by shifted products, on the recipes' 3×3 layers, forward and
backward.

The engine builds im2col's matrix a block of output positions at a time (conv.BLOCK_BYTES, 4 MB,
chosen on the AMD EPYC Zen 4: each block still in the cache when the product reads it), and computes
layers with fewer than conv.ROWS_MAX_FILTERS filters by kernel rows instead (the input copied kw
times, laid out row-first since 12-04: one product per output row); since 12-03, on CPUs without
AVX-512 (since 12-04 also on AMD's with it), layers of 8 channels and filters or more by shifted
products (conv.SHIFTED_MIN_CHANNELS,
conv.shifted_pays: since 12-04 one product per kernel column and run of an output row, reading all
kernel rows and channels of the padded input, laid out row-first, where they lie and adding into
the output, conv.SHIFTED_CHUNK positions a product). Each was tuned on one CPU kind; this measures
them on the one at hand, each variant a whole forward + backward of the engine's own Conv2D (the
input gradient included where the layer has an input before it), interleaved round by round, the
minimum of `--repeats` in each round and the minimum over rounds after a first, warming one.

    .venv/bin/python bench/conv_paths.py                          # the recipes' layers, batch 256
    .venv/bin/python bench/conv_paths.py --blocks 2 4 --rows 8192 --rounds 7
    .venv/bin/python bench/conv_paths.py --blocks 4 --rows 0 --shifted 1024 4096 16384
    .venv/bin/python bench/conv_paths.py --layers 64,64,14 --batch 128
    .venv/bin/python bench/conv_paths.py --layers 32,64,14 --batch 128 --parts   # by parts

A layer is C,K,H: C input channels, K filters, an H×H input, padded to keep its size, by a 3×3
kernel; or C,K,H,F,P: an F×F kernel with P zeros around the input (LeNet's layers: 3,6,32,5,0
and 6,16,14,5,0).

Beside them, PyTorch's own convolution (oneDNN, channels-last, as convnet's torch engine runs it on
the CPU) on the same numbers and threads, forward and backward (`aten::convolution_backward`, the
input gradient where the engine computes one), timed in the same rounds; the last column is the
engine's speed as a share of PyTorch's (its time ÷ the engine's). `--no-torch` leaves it out.
Each layer's second line gives the rates both reach, in GFLOP/s (2 × the multiply-adds of the
forward, the weight gradient and the input gradient, over the time), and the header the rate of
OpenBLAS's own threads on a 1024 × 1024 × 1024 product: the most its products reach here.

Measured (docs/BENCHMARKS.md, "The same CPU kind that afternoon" and "… in the evening"): on an
AMD EPYC Zen 3 (AVX2 only, 2 cores, 2026-12-03) 4 MB blocks were the fastest or within the host's
noise on all seven layers, and kernel rows lost on every layer with 24 or more filters
(1.2–2.3×); shifted products beat both on every layer with 8 channels and filters or more
(64 → 64: 104 against 120 ms) and lost on the first layers (one input channel). On an AMD EPYC
Zen 4 (AVX-512, 2026-12-04, "The AMD EPYC Zen 4 again") with OpenBLAS's own (SkylakeX) kernels
shifted products were as fast as 4 MB blocks or faster on the five layers of 16 channels or more
(48 → 48: 45.7 against 54.8 ms), with its Haswell kernels (convnet's choice there since) faster
on all five (48 → 48: 39.2 against 53.1 ms).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import convnet  # noqa: E402,F401  (before NumPy: it picks OpenBLAS's kernels, cpu.py)
import numpy as np  # noqa: E402

from convnet import cpu  # noqa: E402
from convnet.engines.allocator import keep_freed_memory  # noqa: E402
from convnet.engines.numpy import blas, conv  # noqa: E402

# fast93's (24/48/48, pooling after the first), best's (32/64/64), fast91's (16/32)
LAYERS = ["1,24,28", "24,48,14", "48,48,14", "1,32,28", "32,64,14", "64,64,14", "16,32,14"]


def layer_of(text: str) -> tuple[int, int, int, int, int]:
    """(C, K, H, F, P) from C,K,H (a 3×3 kernel, padded to keep the size) or C,K,H,F,P."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (3, 5):
        raise SystemExit(f"conv_paths.py: a layer is C,K,H or C,K,H,F,P (whole numbers), "
                         f"not {text!r}")
    c, k, h, f, pad = numbers if len(numbers) == 5 else numbers + [3, 1]
    if min(c, k, h, f) < 1 or pad < 0 or h + 2 * pad < f:
        raise SystemExit(f"conv_paths.py: {text!r}: C, K, H and F at least 1, P at least 0, "
                         f"the kernel no larger than the padded input")
    return c, k, h, f, pad


OFF = 1 << 30  # a minimum no layer reaches: the path turned off


def variants(blocks: list[float], rows: list[int],
             shifted: list[int]) -> list[tuple[str, dict[str, int]]]:
    """(label, the conv module's settings) for every variant; rows and shifted products forced
    with no size floor (shifted products need an OpenBLAS product convnet can call)."""
    found = [(f"im2col {mb:g} MB", {"BLOCK_BYTES": int(mb * (1 << 20)), "ROWS_MAX_FILTERS": 0,
                                     "SHIFTED_MIN_CHANNELS": OFF})
             for mb in blocks]
    found += [(f"rows, chunks of {chunk}", {"ROWS_MAX_FILTERS": OFF, "ROWS_MIN_DEPTH": 0,
                                             "ROWS_CHUNK": chunk, "SHIFTED_MIN_CHANNELS": OFF})
              for chunk in rows]
    if blas.gemm(np.float32) is not None:  # (on any CPU: CONVNET_NUMPY_CONV=shifted, in main)
        found += [(f"shifted, runs of {chunk}", {"SHIFTED_MIN_CHANNELS": 1,
                                                  "SHIFTED_CHUNK": chunk})
                  for chunk in shifted]
    return found


TORCH = "PyTorch"


def torch_conv():
    """A maker of timed PyTorch convolutions (forward, backward) on the engine's numbers, or None
    where PyTorch is not installed. PyTorch runs on the engine's threads."""
    try:
        import torch
    except ImportError:
        print("# PyTorch is not installed: its column is left out")
        return None
    from convnet.engines.numpy import parallel

    torch.set_num_threads(parallel.threads())

    def make(x: np.ndarray, dy: np.ndarray, weight: np.ndarray, input_grad: bool, pad: int):
        xt, dyt, wt = as_torch(x), as_torch(dy), torch.from_numpy(weight.copy())

        def run() -> tuple[float, float]:
            start = time.perf_counter()
            torch_forward(xt, wt, pad)
            middle = time.perf_counter()
            torch_backward(dyt, xt, wt, input_grad, pad)
            return middle - start, time.perf_counter() - middle
        return run
    return make


def as_torch(a: np.ndarray):
    """The engine's C×H×W×N maps as PyTorch's N×C×H×W, in channels-last memory."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(a.transpose(3, 1, 2, 0))).permute(0, 3, 1, 2)


def torch_forward(xt, wt, pad: int):
    """PyTorch's stride-1 convolution with `pad` zeros around the input."""
    import torch

    return torch.nn.functional.conv2d(xt, wt, padding=pad)


def torch_backward(dyt, xt, wt, input_grad: bool, pad: int):
    """(dL/dx or None, dL/dW) of torch_forward, by the operator autograd calls."""
    import torch

    dx, dw, _ = torch.ops.aten.convolution_backward(dyt, xt, wt, None, [1, 1], [pad, pad], [1, 1],
                                                   False, [0, 0], 1, [input_grad, True, False])
    return dx, dw


def layer_flops(c: int, k: int, ho: int, f: int, batch: int, input_grad: bool) -> float:
    """Floating-point operations of a stride-1 layer's forward and backward: 2 × C·K·F²·Ho²·N
    multiply-adds for the forward, as many for the weight gradient and for the input gradient."""
    return 2.0 * c * k * f * f * ho * ho * batch * (3 if input_grad else 2)


def square_rate(size: int = 1024, repeats: int = 5) -> float:
    """GFLOP/s of OpenBLAS's own threads on one size³ float32 product: its best case here."""
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best / 1e9


def engines_choice(layer: conv.Conv2D, given: str | None) -> str:
    """How the engine computes this layer as the user runs it (CONVNET_NUMPY_CONV as given)."""
    if given is None:
        del os.environ["CONVNET_NUMPY_CONV"]
    else:
        os.environ["CONVNET_NUMPY_CONV"] = given
    how = layer.how(np.dtype(np.float32))
    os.environ["CONVNET_NUMPY_CONV"] = "shifted"
    return how


def made(c: int, k: int, h: int, f: int, pad: int, batch: int, rng: np.random.Generator):
    """A layer's float32 input in the engine's C×H×W×N, a gradient for its output, and the
    engine's Conv2D with small random weights."""
    ho = h + 2 * pad - f + 1
    x = rng.standard_normal((c, h, h, batch), dtype=np.float32)
    dy = rng.standard_normal((k, ho, ho, batch), dtype=np.float32)
    layer = conv.Conv2D(c, k, (f, f), (1, 1), (pad,) * 4, False, np.dtype(np.float32))
    layer.params["weight"][...] = rng.standard_normal(layer.params["weight"].shape) * 0.1
    return x, dy, layer


def timed(layer: conv.Conv2D, x: np.ndarray, dy: np.ndarray, before: Callable[[], None]):
    """A run of one forward + backward of `layer`, after before() (not timed): (forward s,
    backward s)."""
    def run() -> tuple[float, float]:
        before()
        handed = dy.copy()  # (the backward may write into its dy; not timed)
        start = time.perf_counter()
        layer.forward(x, True)
        middle = time.perf_counter()
        layer.backward(handed)
        return middle - start, time.perf_counter() - middle
    return run


def parts(layers: list[tuple[int, int, int, int, int]], batch: int, rounds: int, repeats: int,
          rival) -> None:
    """Each layer's forward, weight gradient and input gradient on their own, the engine's way
    as it chooses here and PyTorch's: the backward timed without the input gradient and with
    it, the input gradient the difference (the minima over rounds after a warming one)."""
    print(f"# {cpu.describe()}; NumPy {np.__version__}, OpenBLAS kernels: {blas.kernel()}; "
          f"batch {batch}; ms (GFLOP/s), the minimum of {repeats} in each of {rounds - 1} "
          f"rounds; OpenBLAS's threads on a 1024³ product: {square_rate():.0f} GFLOP/s")
    print(f"{'layer':<20}{'engine':<10}{'forward':>16}{'weight gradient':>18}"
          f"{'input gradient':>18}")
    rng = np.random.default_rng(0)
    for c, k, h, f, pad in layers:
        ho = h + 2 * pad - f + 1
        x, dy, layer = made(c, k, h, f, pad, batch, rng)

        def asking(input_grad: bool) -> Callable[[], None]:
            return lambda: setattr(layer, "needs_input_grad", input_grad)

        grads = (False, True) if c > 1 else (False,)  # a first layer's input needs none
        runs = {("convnet", grad): timed(layer, x, dy, asking(grad)) for grad in grads}
        if rival is not None:
            for grad in grads:
                runs[("PyTorch", grad)] = rival(x, dy, layer.params["weight"], grad, pad)
        best: dict[tuple[str, bool], list[float]] = {}
        for round_ in range(rounds):
            for key, run in runs.items():
                times = [run() for _ in range(repeats)]
                if round_:
                    old = best.get(key, [float("inf")] * 2)
                    best[key] = [min(old[0], *(a for a, _ in times)),
                                 min(old[1], *(b for _, b in times))]
                if key[0] == "PyTorch":
                    time.sleep(0.2)  # PyTorch's idle threads spin a while: let them sleep first
        one = layer_flops(c, k, ho, f, batch, False) / 2  # each part's operations
        kernel = "" if (f, pad) == (3, 1) else f" {f}×{f} P{pad}"
        for who in ("convnet", "PyTorch"):
            if (who, False) not in best:
                continue
            forward = min(times[0] for (name, _), times in best.items() if name == who)
            weights = best[(who, False)][1]
            cells = [forward, weights] + ([best[(who, True)][1] - weights] if c > 1 else [])
            text = "".join(f"{t * 1e3:8.2f} ({one / max(t, 1e-9) / 1e9:4.0f})".rjust(width)
                           for t, width in zip(cells, (16, 18, 18)))
            text += "" if c > 1 else f"{'–':>18}"
            label = f"{c:>2} → {k:<2} {h}×{h}{kernel}" if who == "convnet" else ""
            how = layer.how(np.dtype(np.float32)) if who == "convnet" else "oneDNN"
            print(f"{label:<20}{how:<10}{text}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", nargs="+", default=LAYERS, metavar="C,K,H[,F,P]")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--blocks", nargs="+", type=float, default=[1, 2, 4, 8, 16], metavar="MB",
                   help="im2col's block budgets to time (default 1 2 4 8 16)")
    p.add_argument("--rows", nargs="+", type=int, default=[2048, 8192], metavar="POSITIONS",
                   help="kernel rows' chunk sizes to time (default 2048 8192; none: --rows 0)")
    p.add_argument("--shifted", nargs="+", type=int, default=[4096], metavar="POSITIONS",
                   help="shifted products' run lengths to time (default 4096; none: "
                        "--shifted 0)")
    p.add_argument("--no-torch", action="store_true",
                   help="leave out PyTorch's convolution (timed beside the engine's by default)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--parts", action="store_true",
                   help="the engine's own way and PyTorch's only, each part on its own: the "
                        "forward, the weight gradient and the input gradient, with their rates")
    args = p.parse_args()
    layers = [layer_of(text) for text in args.layers]
    if args.batch < 1 or args.rounds < 2 or args.repeats < 1 or min(args.blocks) <= 0:
        p.error("--batch and --repeats at least 1, --rounds at least 2, block sizes above 0")
    if min(args.rows + args.shifted) < 0:
        p.error("--rows and --shifted: positions at least 1 (0: none)")
    keep_freed_memory()
    if args.parts:
        parts(layers, args.batch, args.rounds, args.repeats,
              None if args.no_torch else torch_conv())
        return
    engine_settings = {name: getattr(conv, name) for name in
                       ("BLOCK_BYTES", "ROWS_MAX_FILTERS", "ROWS_MIN_DEPTH",
                        "ROWS_CHUNK", "SHIFTED_MIN_CHANNELS", "SHIFTED_CHUNK")}
    chosen = variants(args.blocks, [r for r in args.rows if r > 0],
                      [r for r in args.shifted if r > 0])
    given = os.environ.get("CONVNET_NUMPY_CONV")  # the engine's own choice, printed last
    os.environ["CONVNET_NUMPY_CONV"] = "shifted"  # each variant's settings decide here
    print(f"# {cpu.describe()}; NumPy {np.__version__}, OpenBLAS kernels: {blas.kernel()}; "
          f"batch {args.batch}; forward + backward ms, the minimum of {args.repeats} in each of "
          f"{args.rounds - 1} rounds (after a warming one); OpenBLAS's threads on a 1024³ "
          f"product: {square_rate():.0f} GFLOP/s")
    engine = {"im2col": f"im2col {conv.BLOCK_BYTES / (1 << 20):g} MB",
              "shifted": f"shifted, runs of {conv.SHIFTED_CHUNK}"}
    rival = None if args.no_torch else torch_conv()
    print(f"{'layer':<20}" + "  ".join(f"{label:>26}" for label, _ in chosen) + "  the engine's" +
          ("" if rival is None else f"  {'PyTorch (oneDNN)':>26}  engine ÷ PyTorch"))
    rng = np.random.default_rng(0)
    for c, k, h, f, pad in layers:
        ho = h + 2 * pad - f + 1
        x, dy, layer = made(c, k, h, f, pad, args.batch, rng)
        layer.needs_input_grad = c > 1  # a first layer's input needs no gradient
        theirs = None if rival is None else rival(x, dy, layer.params["weight"],
                                                   layer.needs_input_grad, pad)

        def setting(settings: dict[str, int]) -> Callable[[], None]:
            def apply() -> None:  # the variant's settings, the engine's own for the rest
                for name, value in {**engine_settings, **settings}.items():
                    setattr(conv, name, value)
            return apply

        runs = [(label, timed(layer, x, dy, setting(settings))) for label, settings in chosen]
        runs += [] if theirs is None else [(TORCH, theirs)]
        best: dict[str, tuple[float, float]] = {}
        for round_ in range(args.rounds):
            for label, run in runs:
                times = [run() for _ in range(args.repeats)]
                if round_:
                    old = best.get(label, (float("inf"), float("inf")))
                    best[label] = (min(old[0], *(f for f, _ in times)),
                                   min(old[1], *(b for _, b in times)))
                if label == TORCH:
                    time.sleep(0.2)  # PyTorch's idle threads spin a while: let them sleep first
        for name, value in engine_settings.items():
            setattr(conv, name, value)

        def cell(label: str) -> str:
            forward, backward = best[label]
            return f"{forward * 1e3:6.1f} + {backward * 1e3:6.1f} = " \
                   f"{(forward + backward) * 1e3:6.1f}"

        how = engines_choice(layer, given)
        kernel = "" if (f, pad) == (3, 1) else f" {f}×{f} P{pad}"
        line = f"{c:>2} → {k:<2} {h}×{h}{kernel:<7}" + \
            "  ".join(f"{cell(label):>26}" for label, _ in chosen) + f"  {engine.get(how, how)}"
        ours = best.get(engine.get(how, how))  # (where the engine's own variant was timed)
        if theirs is not None:
            share = f"{sum(best[TORCH]) / sum(ours):.2f}×" if ours else "–"
            line += f"  {cell(TORCH):>26}  {share:>16}"
        print(line, flush=True)
        flops = layer_flops(c, k, ho, f, args.batch, layer.needs_input_grad)
        rates = [f"the engine's {flops / sum(ours) / 1e9:.0f}"] if ours else []
        rates += [] if theirs is None else [f"PyTorch's {flops / sum(best[TORCH]) / 1e9:.0f}"]
        if rates:
            print(f"{'':<20}GFLOP/s: " + ", ".join(rates), flush=True)


if __name__ == "__main__":
    main()
