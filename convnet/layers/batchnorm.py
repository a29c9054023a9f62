"""Batch normalisation: each channel normalised over the batch, then scaled by γ and shifted by
β (2 weights per channel); the running mean and variance are used at test time.

    batchnorm  batchnorm(eps=1e-05, momentum=0.1)     (PyTorch's defaults and convention)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..shapes import Geometry, LayerShape, Place, format_shape
from .base import Arg, FieldError, LayerRecord, Shape, kind, number
from .words import weights

WORDS = {
    "en": "each of the {c} channels normalised over the batch, then scaled by γ and shifted by β",
    "ko": "{c}개 채널을 각각 배치에서 정규화한 뒤 γ를 곱하고 β를 더함",
}


@kind
@dataclass(frozen=True)
class BatchNorm(LayerRecord):
    eps: float = 1e-5  # PyTorch's and Keras' default
    momentum: float = 0.1  # PyTorch's convention: running = (1 - m)·running + m·batch

    type: ClassVar[str] = "batchnorm"
    order: ClassVar[float] = 40
    names: ClassVar[tuple[str, ...]] = ("batchnorm",)
    arguments: ClassVar[tuple[Arg, ...]] = (
        Arg("eps", "real", "eps", default=1e-5),
        Arg("momentum", "real", "momentum", default=0.1),
    )
    usage: ClassVar[str] = "{name} or {name}(eps=E, momentum=M)"
    summary: ClassVar[str] = ("each channel normalised over the batch, then scaled by γ and "
                              "shifted by β (2 weights per channel)")
    example: ClassVar[str] = "conv(8,3) batchnorm"
    init_looks_through: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.eps <= 0:
            raise FieldError("eps", f"eps must be positive, got {number(self.eps)}")
        if not 0.0 <= self.momentum <= 1.0:
            raise FieldError("momentum", f"momentum is in [0, 1], got {number(self.momentum)}")

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        return Geometry(input_shape, params=2 * input_shape[-1])  # a γ and a β per channel

    def explain(self, info: LayerShape, lang: str) -> str:
        c = info.input[-1]
        return (f"{WORDS[lang].format(c=c)} → {format_shape(info.output)}; "
                f"{weights(lang, f'2·{c}', info.params)}")
