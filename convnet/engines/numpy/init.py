"""Weight initialisers. The lecture: weights start random, then are learned from data.

    normal   N(0, 0.01²): the lecture's "small random numbers"
    xavier   U(−a, a), a = √(6 / (fan_in + fan_out))   (Glorot & Bengio, 2010)
    he       N(0, 2 / fan_in)                            (He et al., 2015), made for ReLU
    auto     he for a layer whose output goes into a ReLU, xavier otherwise

fan_in = C·kh·kw for a conv (D for an fc), fan_out = K·kh·kw (U). Biases start at zero.
Values are drawn in float64 from one seeded generator, then cast, so a seed gives the same
network in every dtype and engine.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import UserError
from ...spec import Activation, BatchNorm, Dropout, Layer, Pool

SCHEMES = ("auto", "he", "xavier", "normal")


def feeds_relu(layers: tuple[Layer, ...], index: int) -> bool:
    """Whether layer `index`'s output reaches a ReLU through only shape-keeping layers."""
    for layer in layers[index + 1:]:
        if isinstance(layer, Activation):
            return layer.name == "relu"
        if not isinstance(layer, (BatchNorm, Dropout, Pool)):
            return False
    return False


def draw_weight(shape: tuple[int, ...], scheme: str, rng: np.random.Generator) -> np.ndarray:
    """A weight of PyTorch shape (out, in, kh, kw) or (out, in), drawn by `scheme`."""
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    if scheme == "normal":
        return rng.normal(0.0, 0.01, shape)
    if scheme == "xavier":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape)
    if scheme == "he":
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    raise UserError(f"unknown initialiser {scheme!r}; choose one of {', '.join(SCHEMES)}")


def scheme_for(layers: tuple[Layer, ...], index: int, scheme: str) -> str:
    if scheme != "auto":
        return scheme
    return "he" if feeds_relu(layers, index) else "xavier"


def initial_weights(layers: tuple[Layer, ...], weight_shapes: dict[int, tuple[int, ...]],
                    scheme: str, seed: int) -> dict[int, np.ndarray]:
    """Float64 weights for every conv and fc layer (by index), in layer order, from one seed."""
    if scheme not in SCHEMES:
        raise UserError(f"unknown initialiser {scheme!r}; choose one of {', '.join(SCHEMES)}")
    rng = np.random.default_rng(seed)
    out = {}
    for index, shape in weight_shapes.items():
        out[index] = draw_weight(shape, scheme_for(layers, index, scheme), rng)
    return out

