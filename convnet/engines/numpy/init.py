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
from ...layers import FC, Activation, Conv, LayerRecord
from ...shapes import LayerShape

SCHEMES = ("auto", "he", "xavier", "normal")


def feeds_relu(following: list[LayerRecord]) -> bool:
    """Whether a layer's output, followed by `following` (the rest of its sequence, then what
    follows the block it is in), reaches a ReLU through layers init looks through (batch norm,
    dropout, pooling)."""
    for layer in following:
        if isinstance(layer, Activation):
            return layer.name == "relu"
        if not layer.init_looks_through:
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


def weight_shape(info: LayerShape) -> tuple[int, ...] | None:
    """The PyTorch-layout shape of a conv's or an fc's weight; None for other layers."""
    layer = info.layer
    if isinstance(layer, Conv):
        return (layer.filters, info.input[2], *layer.kernel)
    if isinstance(layer, FC):
        return (layer.units, info.input[0])
    return None


def _weights(rows: list[LayerShape], after: list[LayerRecord]) -> list[tuple[LayerShape, list]]:
    """(row, what follows it) for every conv and fc, depth first, in state-name order."""
    found = []
    for i, row in enumerate(rows):
        following = [r.layer for r in rows[i + 1:]] + after
        if weight_shape(row) is not None:
            found.append((row, following))
        for _, inner in row.paths:
            found += _weights(list(inner), [r.layer for r in rows[i + 1:]] + after)
    return found


def initial_weights(shapes: list[LayerShape], scheme: str, seed: int) -> dict[str, np.ndarray]:
    """Float64 weights for every conv and fc layer, by state name ("3.weight",
    "4.inner.0.weight"), drawn in that order from one seed: the same in both engines."""
    if scheme not in SCHEMES:
        raise UserError(f"unknown initialiser {scheme!r}; choose one of {', '.join(SCHEMES)}")
    rng = np.random.default_rng(seed)
    out = {}
    for row, following in _weights(shapes, []):
        chosen = scheme if scheme != "auto" else ("he" if feeds_relu(following) else "xavier")
        out[f"{row.name}.weight"] = draw_weight(weight_shape(row), chosen, rng)  # type: ignore
    return out
