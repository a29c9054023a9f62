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


class NumpyModel:
    def __init__(self, shapes: list[LayerShape], dtype: np.dtype, seed: int) -> None:
        self.dtype = np.dtype(dtype)
        # Dropout masks come from their own generator, seeded from the network's seed.
        self.rng = np.random.default_rng([seed, 1])
        self.layers = [build_layer(info, self.dtype, self.rng) for info in shapes]
        first = next(layer for layer in self.layers if layer is not None)
        first.needs_input_grad = False  # d(loss)/d(image) is never needed

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Logits for an N×H×W×C batch (softmax is left to the loss and to predict)."""
        for layer in self.layers:
            if layer is not None:
                x = layer.forward(x, training)
        return x

    def backward(self, d_logits: np.ndarray) -> None:
        """From d(loss)/d(logits), every layer's gradients (after a training forward)."""
        d = d_logits
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
