"""Dropout (inverted): while training, values are zeroed with probability p and the rest scaled
by 1/(1 − p), so nothing changes at test time, when dropout does nothing.

    dropout(p)     each value on its own
    dropout2d(p)   whole activation maps (every value of one map of one image), as
                   PyTorch's Dropout2d: neighbouring values are alike, so dropping one of them
                   alone hides little
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..shapes import Geometry, LayerShape, Place, format_shape
from .base import Arg, FieldError, LayerRecord, Shape, kind, number
from .words import no_weights

WORDS = {
    "en": {"dropout": "while training, each value is zeroed with probability {p} and the rest "
                      "scaled by 1/(1 − p); untouched at test time",
           "dropout2d": "while training, each of the {c} maps of an image is zeroed whole with "
                        "probability {p} and the rest scaled by 1/(1 − p); untouched at test "
                        "time"},
    "ko": {"dropout": "학습할 때 각 값을 확률 {p}로 0으로 만들고 나머지는 1/(1 − p)배; "
                      "테스트할 때는 그대로",
           "dropout2d": "학습할 때 이미지마다 맵 {c}개를 각각 확률 {p}로 통째로 0으로 만들고 "
                        "나머지는 1/(1 − p)배; 테스트할 때는 그대로"},
}

P = Arg("p", "real", "p", default=0.5, positional=True)


def _check_p(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise FieldError("p", f"p is a probability in [0, 1), got {number(p)}")


@kind
@dataclass(frozen=True)
class Dropout(LayerRecord):
    p: float  # probability of zeroing a value during training (inverted dropout)

    type: ClassVar[str] = "dropout"
    order: ClassVar[float] = 50
    names: ClassVar[tuple[str, ...]] = ("dropout",)
    arguments: ClassVar[tuple[Arg, ...]] = (P,)
    usage: ClassVar[str] = "{name}(p)"
    summary: ClassVar[str] = ("while training, zeroes each value with probability p (default "
                              "0.5) and scales the rest by 1/(1 − p)")
    example: ClassVar[str] = "dropout(0.25)"
    init_looks_through: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_p(self.p)

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        return Geometry(input_shape)

    def explain(self, info: LayerShape, lang: str) -> str:
        return (f"{WORDS[lang]['dropout'].format(p=self.p)} → {format_shape(info.output)}; "
                f"{no_weights(lang)}")


@kind
@dataclass(frozen=True)
class Dropout2d(LayerRecord):
    p: float  # probability of zeroing a whole map of one image during training

    type: ClassVar[str] = "dropout2d"
    order: ClassVar[float] = 55
    names: ClassVar[tuple[str, ...]] = ("dropout2d",)
    arguments: ClassVar[tuple[Arg, ...]] = (P,)
    usage: ClassVar[str] = "{name}(p)"
    summary: ClassVar[str] = ("while training, zeroes whole activation maps with probability p "
                              "and scales the rest by 1/(1 − p)")
    example: ClassVar[str] = "conv(8,3) dropout2d(0.1)"
    needs: ClassVar[str] = "image"
    makes: ClassVar[str] = "image"
    init_looks_through: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_p(self.p)

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        return Geometry(input_shape)

    def explain(self, info: LayerShape, lang: str) -> str:
        text = WORDS[lang]["dropout2d"].format(p=self.p, c=f"{info.input[-1]:,}")
        return f"{text} → {format_shape(info.output)}; {no_weights(lang)}"
