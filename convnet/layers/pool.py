"""Pooling: each activation map shrinks on its own (the lecture's "sampling").

    pool(2)  maxpool(F, stride=S, pad=P)  avgpool(F, stride=S, pad=P)   (stride defaults to F)

Max pooling keeps the largest value of each F×F window — padded cells are −∞, never chosen, as in
PyTorch; average pooling keeps the mean, padded zeros counted (PyTorch's default). Output side
(N − F + 2P)/S + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..shapes import Geometry, LayerShape, Place, check_fit, image_input
from .base import Arg, FieldError, LayerRecord, Size2, Shape, kind
from .window import explain_window, sides_of
from .words import no_weights

POOL_WORDS = {
    "en": {"pool": "{kind} of each {window} window, each activation map on its own",
           "max": "the largest value", "avg": "the average",
           "pad_max": "pad={pad} adds {pad} {cells} on each side that {are} never chosen (−∞); ",
           "pad_avg": "pad={pad} adds {pad} {zeros} on each side, counted in the average; "},
    "ko": {"pool": "각 활성화 맵에서 {window} 창마다 {kind}을 뽑음",
           "max": "최댓값", "avg": "평균값",
           "pad_max": "pad={pad}: 가장자리마다 {pad}칸을 덧대지만 뽑히지 않음 (−∞); ",
           "pad_avg": "pad={pad}: 가장자리마다 0을 {pad}칸씩 덧대고 평균에 넣음; "},
}


@kind
@dataclass(frozen=True)
class Pool(LayerRecord):
    """Max or average pooling of each activation map on its own."""

    kind: Literal["max", "avg"]
    kernel: Size2
    stride: Size2  # defaults to the kernel: non-overlapping windows
    floor: bool = False
    pad: int = 0  # cells added on every side: −∞ for max pooling, zeros for average

    type: ClassVar[str] = "pool"
    order: ClassVar[float] = 20
    names: ClassVar[tuple[str, ...]] = ("pool", "maxpool", "avgpool")
    arguments: ClassVar[tuple[Arg, ...]] = (
        Arg("size", "size", "the window size F", positional=True, field="kernel"),
        Arg("stride", "size", "stride", default=lambda values: values["kernel"]),
        Arg("pad", "whole0", "pad", default=0, aliases=("padding",)),
        Arg("floor", "flag", "floor", default=False),
    )
    usage: ClassVar[str] = "{name}(F) or {name}(F, stride=S, pad=P)"
    summary: ClassVar[str] = ("each activation map on its own: the largest value (pool, maxpool) "
                              "or the mean (avgpool) of each F×F window; the stride defaults to "
                              "F; padding (at most F/2) is never chosen by max pooling")
    example: ClassVar[str] = "pool(2)"
    needs: ClassVar[str] = "image"
    makes: ClassVar[str] = "image"
    floors: ClassVar[bool] = True
    init_looks_through: ClassVar[bool] = True
    noun: ClassVar[str] = "window"
    pad_fixes: ClassVar[bool] = False  # PyTorch allows a pool at most half its window of padding

    def __post_init__(self) -> None:
        (kh, kw) = self.kernel
        if self.pad > min(kh, kw) // 2:
            raise FieldError("pad", f"pad can be at most half the window, {min(kh, kw) // 2} "
                                    f"for {kh}x{kw} (as in PyTorch), got {self.pad}")

    @classmethod
    def build(cls, word: str, values: dict[str, Any]) -> "Pool":
        return cls(kind="avg" if word == "avgpool" else "max", **values)

    def word(self) -> str:
        return "pool" if self.kind == "max" else "avgpool"

    @property
    def shows_pad(self) -> bool:
        return self.pad > 0

    def sides(self) -> tuple[int, int, int, int]:
        return sides_of(self.kernel, self.pad)

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        h, w, c = image_input(place.path, self, input_shape)
        ho, wo = check_fit(place.path, self, (h, w, c))
        return Geometry((ho, wo, c), padding=self.sides(), window=(self.kernel, self.stride))

    def explain(self, info: LayerShape, lang: str) -> str:
        words = POOL_WORDS[lang]
        (kh, kw) = self.kernel
        one = self.pad == 1
        pad = words[f"pad_{self.kind}"].format(
            pad=self.pad, cells="cell" if one else "cells", zeros="zero" if one else "zeros",
            are="is" if one else "are") if self.pad else ""
        what = no_weights(lang) + ": " + words["pool"].format(kind=words[self.kind],
                                                              window=f"{kh}x{kw}")
        return pad + explain_window(self, info, lang, what)
