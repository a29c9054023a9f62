"""A parsed network as NumPy layers: forward through them, backward in reverse.

Layer i of the description is `self.layers[i]`; its parameters are named "i.weight", "i.bias"
(and batch norm's buffers "i.running_mean", ...) exactly as in the equivalent nn.Sequential.
"""

from __future__ import annotations

import numpy as np

from ...shapes import LayerShape, conv_padding
from ...spec import FC, Activation, BatchNorm, Conv, Dropout, Flatten, Pool, Softmax
from . import activation, conv, dense, pool, regularize
from .base import Layer


# Layers whose forward output is not part of their cache (so the next layer may overwrite it).
KEEPS_NO_OUTPUT = (conv.Conv2D, dense.Dense, regularize.BatchNorm, pool.AvgPool2D)


def build_layer(info: LayerShape, dtype: np.dtype, rng: np.random.Generator) -> Layer | None:
    layer = info.layer
    if isinstance(layer, Conv):
        return conv.Conv2D(info.input[2], layer.filters, layer.kernel, layer.stride,
                           conv_padding(layer), layer.bias, dtype)
    if isinstance(layer, Pool):
        cls = pool.MaxPool2D if layer.kind == "max" else pool.AvgPool2D
        return cls(layer.kernel, layer.stride)
    if isinstance(layer, Activation):
        return {"relu": activation.ReLU, "sigmoid": activation.Sigmoid,
                "tanh": activation.Tanh}[layer.name]()
    if isinstance(layer, Dropout):
        return regularize.Dropout(layer.p, rng)
    if isinstance(layer, BatchNorm):
        return regularize.BatchNorm(info.input[-1], layer.eps, layer.momentum, dtype)
    if isinstance(layer, Flatten):
        return dense.Flatten()
    if isinstance(layer, FC):
        return dense.Dense(info.input[0], layer.units, layer.bias, dtype)
    if isinstance(layer, Softmax):
        return None  # applied to the logits by the loss and by predict
    raise TypeError(f"not a layer record: {layer!r}")


def to_engine_layout(x: np.ndarray, block: int = 16) -> np.ndarray:
    """N×H×W×C → the engine's C×H×W×N, as a fresh contiguous array.

    A direct transposed copy jumps H·W·C values in the source for every value written; going
    through (H·W·C)×N in blocks of 16 images keeps both sides in cache (2.5× faster)."""
    n, h, w, c = x.shape
    rows = x.reshape(n, h * w * c)
    hwcn = np.empty((h * w * c, n), x.dtype)
    for start in range(0, n, block):
        np.copyto(hwcn[:, start:start + block], rows[start:start + block].T)
    out = np.empty((c, h, w, n), x.dtype)
    np.copyto(out, hwcn.reshape(h, w, c, n).transpose(2, 0, 1, 3))
    return out


class NumpyModel:
    def __init__(self, shapes: list[LayerShape], dtype: np.dtype, seed: int) -> None:
        self.dtype = np.dtype(dtype)
        # Dropout masks come from their own generator, seeded from the network's seed.
        self.rng = np.random.default_rng([seed, 1])
        self.layers = [build_layer(info, self.dtype, self.rng) for info in shapes]
        for before, layer in zip(self.layers, self.layers[1:]):
            # A ReLU may overwrite its input when the layer that made it keeps no reference.
            if isinstance(layer, activation.ReLU) and isinstance(before, KEEPS_NO_OUTPUT):
                layer.inplace = True
        first = next(layer for layer in self.layers if layer is not None)
        first.needs_input_grad = False  # d(loss)/d(image) is never needed

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Logits N×classes for an N×H×W×C batch (softmax is left to the loss and predict)."""
        x = to_engine_layout(x)
        for layer in self.layers:
            if layer is not None:
                x = layer.forward(x, training)
        return x.T  # classes×N → N×classes

    def activations(self, x: np.ndarray) -> list[np.ndarray | None]:
        """Every layer's output for an N×H×W×C batch (evaluation mode), in the user's layout:
        N×H×W×C for activation volumes, N×D for vectors; None for the final softmax."""
        x = to_engine_layout(x)
        outputs: list[np.ndarray | None] = []
        for layer in self.layers:
            if layer is None:
                outputs.append(None)
                continue
            x = layer.forward(x, training=False)
            outputs.append(x.transpose(3, 1, 2, 0).copy() if x.ndim == 4 else x.T.copy())
        return outputs

    def backward(self, d_logits: np.ndarray) -> None:
        """From d(loss)/d(logits) (N×classes), every layer's gradients after a training forward."""
        d = np.ascontiguousarray(d_logits.T)
        for layer in reversed(self.layers):
            if layer is None:
                continue
            d = layer.backward(d)
            if d is None:
                break

    def named(self, *kinds: str) -> dict[str, np.ndarray]:
        """{"i.name": array} of the layers' params, grads and/or buffers, in layer order
        (within a layer: the kinds in the order asked, as PyTorch's state_dict does)."""
        out = {}
        for i, layer in enumerate(self.layers):
            if layer is not None:
                for kind in kinds:
                    for name, array in getattr(layer, kind).items():
                        out[f"{i}.{name}"] = array
        return out
