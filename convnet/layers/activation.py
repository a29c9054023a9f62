"""Activations, applied to each value on its own: relu (the lecture's max(0, x)), sigmoid, tanh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..shapes import Geometry, LayerShape, Place, format_shape
from .base import LayerRecord, Shape, kind
from .words import no_weights

WORDS = {
    "en": {"relu": "max(0, x) on each value", "sigmoid": "1/(1 + e^−x) on each value",
           "tanh": "tanh(x) on each value"},
    "ko": {"relu": "각 값에 max(0, x)", "sigmoid": "각 값에 1/(1 + e^−x)", "tanh": "각 값에 tanh(x)"},
}


@kind
@dataclass(frozen=True)
class Activation(LayerRecord):
    name: Literal["relu", "sigmoid", "tanh"]

    type: ClassVar[str] = "activation"
    order: ClassVar[float] = 30
    names: ClassVar[tuple[str, ...]] = ("relu", "sigmoid", "tanh")
    usage: ClassVar[str] = "{name}"
    summary: ClassVar[str] = "max(0, x), 1/(1 + e^−x) or tanh(x) on each value"
    example: ClassVar[str] = "relu"

    @classmethod
    def build(cls, word: str, values: dict[str, Any]) -> "Activation":
        return cls(word)  # type: ignore[arg-type]

    def word(self) -> str:
        return self.name

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        return Geometry(input_shape)

    def explain(self, info: LayerShape, lang: str) -> str:
        return f"{WORDS[lang][self.name]} → {format_shape(info.output)}; {no_weights(lang)}"
