"""A parsed network as NumPy layers: forward through them, backward in reverse.

Layer i of the description is `self.layers[i]`; its parameters are named "i.weight", "i.bias"
(and batch norm's buffers "i.running_mean", ...) exactly as in the equivalent nn.Sequential.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ...layers import FC, Activation, BatchNorm, Conv, Dropout, Flatten, Pool, Softmax
from ...layers.dropout import Dropout2d
from ...layers.globalavgpool import GlobalAvgPool
from ...layers.residual import Residual
from ...shapes import LayerShape
from . import activation, batchnorm, conv, dense, dropout, memory, parallel, pool, residual
from .base import Layer

Build = Callable[[LayerShape, np.dtype, np.random.Generator], "Layer | None"]


def _residual(info: LayerShape, dtype: np.dtype, rng: np.random.Generator) -> Layer:
    paths = {name: link([build_layer(row, dtype, rng) for row in rows])
             for name, rows in info.paths}
    return residual.Residual(paths["inner"], paths["shortcut"])


# Each layer kind of convnet/layers/ → the class that computes it here, built for its input.
BUILDERS: dict[type, Build] = {
    Conv: lambda info, dtype, rng: conv.Conv2D(
        info.input[2], info.layer.filters, info.layer.kernel, info.layer.stride,
        info.padding, info.layer.bias, dtype),
    Pool: lambda info, dtype, rng: (pool.MaxPool2D if info.layer.kind == "max" else
                                    pool.AvgPool2D)(info.layer.kernel, info.layer.stride,
                                                    info.padding),
    GlobalAvgPool: lambda info, dtype, rng: pool.GlobalAvgPool2D(),
    Activation: lambda info, dtype, rng: {"relu": activation.ReLU, "sigmoid": activation.Sigmoid,
                                          "tanh": activation.Tanh}[info.layer.name](),
    Dropout: lambda info, dtype, rng: dropout.Dropout(info.layer.p, rng),
    Dropout2d: lambda info, dtype, rng: dropout.Dropout2d(info.layer.p, rng),
    BatchNorm: lambda info, dtype, rng: batchnorm.BatchNorm(
        info.input[-1], info.layer.eps, info.layer.momentum, dtype),
    Flatten: lambda info, dtype, rng: dense.Flatten(),
    FC: lambda info, dtype, rng: dense.Dense(info.input[0], info.layer.units, info.layer.bias,
                                             dtype),
    Softmax: lambda info, dtype, rng: None,  # applied to the logits by the loss and by predict
    Residual: _residual,
}


def build_layer(info: LayerShape, dtype: np.dtype, rng: np.random.Generator) -> Layer | None:
    try:
        build = BUILDERS[type(info.layer)]
    except KeyError:
        raise TypeError(f"the numpy engine has no layer for {type(info.layer).__name__}; add it "
                        "to BUILDERS in engines/numpy/model.py") from None
    return build(info, dtype, rng)


def link(layers: list[Layer | None]) -> list:
    """A sequence's layers, each ReLU set to work in place where the layer before it keeps no
    reference to its output (which saves a pass over memory and an allocation), and its work
    done by a batch norm just before it (BatchNorm.relu_after: in the norm's own passes), or
    else by a max pooling just after it (MaxPool2D.relu_before: max(0, ·) commutes with the max
    of a window, so it is taken of the pooled values, a quarter as many under 2×2 windows),
    training and predicting; and a max pooling after a convolution (a ReLU whose work it does
    between them or not) pooling the convolution's output a block of rows at a time as the
    convolution makes them (Conv2D.pool_after), training and predicting. Looking inside, each
    shows its own output (Layer.shown)."""
    for before, layer in zip(layers, layers[1:]):
        if isinstance(layer, activation.ReLU) and before is not None and not before.keeps_output:
            layer.inplace = True
        if isinstance(layer, activation.ReLU) and isinstance(before, batchnorm.BatchNorm):
            before.relu_after = layer.done_before = True
        if isinstance(layer, pool.MaxPool2D) and isinstance(before, activation.ReLU) and \
                not before.done_before:
            layer.relu_before = before.done_after = True
    for index, layer in enumerate(layers):
        if isinstance(layer, pool.MaxPool2D):
            source = index - 1
            if source > 0 and isinstance(layers[source], activation.ReLU) and \
                    layers[source].done_after:
                source -= 1
            if source >= 0 and isinstance(layers[source], conv.Conv2D):
                layers[source].pool_after = layer
    return layers


def to_engine_layout(x: np.ndarray) -> np.ndarray:
    """N×H×W×C → the engine's C×H×W×N, as a fresh contiguous array.

    A direct transposed copy jumps H·W·C values in the source for every value written; copied a
    block of images at a time, each block's runs stay in the cache: 64 images a block for one
    channel, 8 for several (LeNet's 128 images of 32x32x3: 0.36 ms against 1.05 through an
    (H·W·C)×N copy first; 256 of 28x28x1: 0.10 against 0.19; AMD EPYC Zen 3, 2026-12-04)."""
    n, h, w, c = x.shape
    block = 64 if c == 1 else 8
    out = memory.empty((c, h, w, n), x.dtype)
    source = x.transpose(3, 1, 2, 0)
    for start in range(0, n, block):
        np.copyto(out[..., start:start + block], source[..., start:start + block])
    return out


class NumpyModel:
    def __init__(self, shapes: list[LayerShape], dtype: np.dtype, seed: int) -> None:
        self.dtype = np.dtype(dtype)
        # Dropout masks come from their own generator, seeded from the network's seed.
        self.rng = np.random.default_rng([seed, 1])
        self.layers = link([build_layer(info, self.dtype, self.rng) for info in shapes])
        first = next(layer for layer in self.layers if layer is not None)
        first.needs_input_grad = False  # d(loss)/d(image) is never needed

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Logits N×classes for an N×H×W×C batch (softmax is left to the loss and predict)."""
        x = to_engine_layout(x)
        with parallel.batch():  # products on this thread alone, the large ones shared out
            for layer in self.layers:
                if layer is not None:
                    x = layer.forward(x, training)
        return x.T  # classes×N → N×classes

    def activations(self, x: np.ndarray) -> list[tuple[np.ndarray | None, dict]]:
        """Every layer's output for an N×H×W×C batch (evaluation mode), in the user's layout
        (N×H×W×C for activation volumes, N×D for vectors; None for the final softmax), each with
        its paths' outputs when it is a block: [(output, {"inner": [...], "shortcut": [...]})]."""
        with parallel.batch():
            return _trace(self.layers, to_engine_layout(x))[0]

    def backward(self, d_logits: np.ndarray) -> None:
        """From d(loss)/d(logits) (N×classes), every layer's gradients after a training forward."""
        d = np.ascontiguousarray(d_logits.T)
        with parallel.batch():
            for layer in reversed(self.layers):
                if layer is None:
                    continue
                d = layer.backward(d)
                if d is None:
                    break

    def named(self, *kinds: str) -> dict[str, np.ndarray]:
        """{"i.name": array} of the layers' params, grads and/or buffers, in layer order
        (within a layer: the kinds in the order asked, as PyTorch's state_dict does)."""
        return {f"{i}.{name}": array for i, layer in enumerate(self.layers) if layer is not None
                for name, array in layer.named(*kinds).items()}


def _user_layout(y: np.ndarray) -> np.ndarray:
    return y.transpose(3, 1, 2, 0).copy() if y.ndim == 4 else y.T.copy()


def _trace(layers: list, x: np.ndarray) -> tuple[list[tuple[np.ndarray | None, dict]], np.ndarray]:
    """Each layer's output (user layout) in evaluation mode, a block's paths layer by layer; and
    the sequence's last output in the engine's layout."""
    found: list[tuple[np.ndarray | None, dict]] = []
    for layer in layers:
        if layer is None:
            found.append((None, {}))
            continue
        if isinstance(layer, residual.Residual):
            inner, made = _trace(layer.paths["inner"], x)
            shortcut, added = _trace(layer.paths["shortcut"], x) if layer.paths["shortcut"] \
                else ([], x)
            y = made + added
            found.append((_user_layout(y), {"inner": inner, "shortcut": shortcut}))
        else:
            y = layer.shown(x)
            found.append((_user_layout(y), {}))  # copied before the next layer may overwrite it
        x = y
    return found, x
