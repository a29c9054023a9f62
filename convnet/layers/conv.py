"""conv(K, F): K filters of F×F×C slide over the input; at each position, one number W·x + b.

    conv(6,5)  conv(K, HxW, stride=S, pad=P|same, bias=true, floor=false)

Output side (N − F + 2P)/S + 1; weights K·(F·F·C) + K; multiply-adds Ho·Wo·K·F·F·C.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ..shapes import Geometry, LayerShape, Place, check_fit, image_input
from .base import Arg, FieldError, LayerRecord, Size2, Shape, kind
from .window import explain_window, sides_of
from .words import weights


@kind
@dataclass(frozen=True)
class Conv(LayerRecord):
    """K filters of size kh×kw×(input depth); at each position one number W·x + b."""

    filters: int  # K
    kernel: Size2  # (kh, kw)
    stride: Size2 = (1, 1)  # (sh, sw)
    pad: int | Literal["same"] = 0  # zero padding on every side, or "same" (output = input size)
    bias: bool = True
    floor: bool = False  # accept a stride that doesn't fit by flooring, as PyTorch does

    type: ClassVar[str] = "conv"
    order: ClassVar[float] = 10
    names: ClassVar[tuple[str, ...]] = ("conv",)
    arguments: ClassVar[tuple[Arg, ...]] = (
        Arg("filters", "whole", "the number of filters K", positional=True),
        Arg("size", "size", "the filter size F", positional=True, field="kernel"),
        Arg("stride", "size", "stride", default=(1, 1)),
        Arg("pad", "pad", "pad", default=0, aliases=("padding",)),
        Arg("bias", "flag", "bias", default=True),
        Arg("floor", "flag", "floor", default=False),
    )
    usage: ClassVar[str] = "{name}(K, F) or {name}(K, HxW, stride=S, pad=P)"
    summary: ClassVar[str] = ("K filters of F×F (or H×W) slide over the input with stride S (1) "
                              "over P (0) zeros of padding; each position gives one number "
                              "W·x + b. pad=same keeps the size, bias=false drops b, floor=true "
                              "drops a stride's leftover as PyTorch does")
    example: ClassVar[str] = "conv(6,5)"
    example_input: ClassVar[Shape] = (32, 32, 3)
    needs: ClassVar[str] = "image"
    makes: ClassVar[str] = "image"
    floors: ClassVar[bool] = True
    noun: ClassVar[str] = "filter"  # what slides, in messages
    shows_pad: ClassVar[bool] = True  # its formula always has the 2P term

    def __post_init__(self) -> None:
        if self.pad == "same" and self.stride != (1, 1):
            raise FieldError("pad", "pad=same needs stride=1 (as in PyTorch); write pad=P with "
                                    "a number instead")

    @property
    def pad_fixes(self) -> bool:
        return self.pad != "same"

    def sides(self) -> tuple[int, int, int, int]:
        return sides_of(self.kernel, self.pad)

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        h, w, c = image_input(place.path, self, input_shape)
        ho, wo = check_fit(place.path, self, (h, w, c))
        (kh, kw), k = self.kernel, self.filters
        return Geometry((ho, wo, k), params=k * kh * kw * c + (k if self.bias else 0),
                        macs=ho * wo * k * kh * kw * c, padding=self.sides(),
                        window=(self.kernel, self.stride))

    def explain(self, info: LayerShape, lang: str) -> str:
        (kh, kw), c = self.kernel, info.input[2]
        bias = f" + {self.filters}" if self.bias else ""
        return explain_window(self, info, lang, weights(
            lang, f"{self.filters}·({kh}·{kw}·{c}){bias}", info.params))
