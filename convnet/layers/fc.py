"""The lecture's classifier after the last pool: flatten, fully connected (FC) layers, softmax.

    flatten   H×W×C → H·W·C, channel-major as PyTorch (implied before the first fc on an image)
    fc(N)     N units, each sees every input: weights N·D + N
    softmax   the scores as probabilities that sum to 1 (implied at the end)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..shapes import Geometry, LayerShape, Place, format_shape, image_input, vector_input
from .base import Arg, LayerRecord, Shape, kind
from .words import no_weights, weights

WORDS = {
    "en": {"flatten": "{formula} = {n} values in one vector (channel-major, as PyTorch)",
           "fc": "each of the {units} units sees all {inputs} inputs",
           "softmax": "turns the {n} scores into probabilities that sum to 1"},
    "ko": {"flatten": "{formula} = {n}개 값을 한 벡터로 펼침 (PyTorch처럼 채널 우선)",
           "fc": "{units}개 유닛이 각각 입력 {inputs}개를 모두 봄",
           "softmax": "점수 {n}개를 합이 1인 확률로 바꿈"},
}


@kind
@dataclass(frozen=True)
class Flatten(LayerRecord):
    """H×W×C → H·W·C, in PyTorch's channel-major (C, H, W) order so weights load unchanged."""

    type: ClassVar[str] = "flatten"
    order: ClassVar[float] = 60
    names: ClassVar[tuple[str, ...]] = ("flatten",)
    usage: ClassVar[str] = "{name}"
    summary: ClassVar[str] = ("H×W×C → one vector of H·W·C values (channel-major, as PyTorch); "
                              "implied before the first fc")
    example: ClassVar[str] = "flatten"
    needs: ClassVar[str] = "image"
    makes: ClassVar[str] = "vector"

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        h, w, c = image_input(place.path, self, input_shape)
        return Geometry((h * w * c,))

    def explain(self, info: LayerShape, lang: str) -> str:
        formula = "·".join(str(d) for d in info.input)
        text = WORDS[lang]["flatten"].format(formula=formula, n=f"{info.output[0]:,}")
        return f"{text} → {format_shape(info.output)}"


@kind
@dataclass(frozen=True)
class FC(LayerRecord):
    units: int
    bias: bool = True

    type: ClassVar[str] = "fc"
    order: ClassVar[float] = 65
    names: ClassVar[tuple[str, ...]] = ("fc",)
    arguments: ClassVar[tuple[Arg, ...]] = (
        Arg("units", "whole", "the number of units N", positional=True),
        Arg("bias", "flag", "bias", default=True),
    )
    usage: ClassVar[str] = "{name}(N)"
    summary: ClassVar[str] = "N units, each sees every input: W·x + b, weights N·D + N"
    example: ClassVar[str] = "fc(10)"
    example_input: ClassVar[Shape] = (4, 4, 3)
    needs: ClassVar[str] = "vector"
    makes: ClassVar[str] = "vector"
    flatten_before: ClassVar[bool] = True

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        d = vector_input(place.path, self, input_shape)
        return Geometry((self.units,), params=self.units * d + (self.units if self.bias else 0),
                        macs=self.units * d)

    def explain(self, info: LayerShape, lang: str) -> str:
        inputs = info.input[0]
        bias = f" + {self.units}" if self.bias else ""
        what = WORDS[lang]["fc"].format(units=f"{self.units:,}", inputs=f"{inputs:,}")
        return (f"{what} → {format_shape(info.output)}; "
                f"{weights(lang, f'{self.units}·{inputs}{bias}', info.params)}")


@kind
@dataclass(frozen=True)
class Softmax(LayerRecord):
    type: ClassVar[str] = "softmax"
    order: ClassVar[float] = 70
    names: ClassVar[tuple[str, ...]] = ("softmax",)
    usage: ClassVar[str] = "{name}"
    summary: ClassVar[str] = "the scores as probabilities that sum to 1; implied at the end"
    example: ClassVar[str] = "fc(10) softmax"
    example_input: ClassVar[Shape] = (4, 4, 3)
    flatten_before: ClassVar[bool] = True
    ends: ClassVar[bool] = True

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        return Geometry(input_shape)

    def explain(self, info: LayerShape, lang: str) -> str:
        return (f"{WORDS[lang]['softmax'].format(n=f'{info.input[0]:,}')} → "
                f"{format_shape(info.output)}; {no_weights(lang)}")
