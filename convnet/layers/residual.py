"""A residual block: output = F(x) + x, where F is the block's own layers and x its input
(ResNet, He et al. 2015). When F changes the shape, the input goes through a shortcut S of its
own — a projection, usually a 1×1 conv with stride and batch norm — and output = F(x) + S(x).

    residual(conv(64,3,pad=1) batchnorm relu conv(64,3,pad=1) batchnorm)
    residual(conv(128,3,stride=2,pad=1,floor=true) batchnorm relu conv(128,3,pad=1) batchnorm,
             shortcut=conv(128,1,stride=2,floor=true) batchnorm)

The gradient reaches x through both paths, so even a deep stack of blocks learns: that is what
the addition is for. Weights: F's and S's; the addition has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import UserError
from ..shapes import Geometry, LayerShape, Place, format_shape, infer_sequence
from .base import Arg, FieldError, LayerRecord, Shape, kind

WORDS = {
    "en": {"identity": "output = F(x) + x: F, the {n} layers below, takes {shape_in} to "
                       "{shape_out}, and x, the block's input, is added as it is",
           "projection": "output = F(x) + S(x): F, the {n} layers below, and S, the shortcut's "
                         "{m}, both take {shape_in} to {shape_out}, and are added",
           "weights_f": "weights {n}, all in F",
           "weights_both": "weights {f} (F) + {s} (S) = {n}"},
    "ko": {"identity": "출력 = F(x) + x: F(아래 레이어 {n}개)는 {shape_in} → {shape_out}, "
                       "여기에 블록의 입력 x를 그대로 더함",
           "projection": "출력 = F(x) + S(x): F(아래 레이어 {n}개)와 S(지름길 레이어 {m}개) 모두 "
                         "{shape_in} → {shape_out}, 둘을 더함",
           "weights_f": "가중치 {n}개, 모두 F에",
           "weights_both": "가중치 {f}개 (F) + {s}개 (S) = {n}개"},
}


def _projection(input_shape: Shape, output: Shape) -> str | None:
    """The shortcut that takes `input_shape` to `output`: a 1×1 conv with stride (flooring if
    it must) and batch norm for images, an fc for vectors; None if none can."""
    if len(input_shape) == 1 and len(output) == 1:
        return f"fc({output[0]})"
    if len(input_shape) != 3 or len(output) != 3:
        return None
    strides, floor = [], False
    for n, target in zip(input_shape[:2], output[:2]):
        if target == 1:
            found = n  # one window: any stride ≥ n
        else:
            found = next((s for s in range(max(1, (n - 1) // target), (n - 1) // (target - 1) + 1)
                          if (n - 1) // s + 1 == target), None) if n >= target else None
        if found is None:
            return None
        strides.append(found)
        floor = floor or (n - 1) % found != 0
    stride = str(strides[0]) if strides[0] == strides[1] else f"{strides[0]}x{strides[1]}"
    options = (f",stride={stride}" if stride != "1" else "") + (",floor=true" if floor else "")
    return f"conv({output[2]},1{options}) batchnorm"


@kind
@dataclass(frozen=True)
class Residual(LayerRecord):
    inner: tuple[LayerRecord, ...]  # F
    shortcut: tuple[LayerRecord, ...] = ()  # S; empty: the identity

    type: ClassVar[str] = "residual"
    order: ClassVar[float] = 80
    names: ClassVar[tuple[str, ...]] = ("residual",)
    arguments: ClassVar[tuple[Arg, ...]] = (
        Arg("layers", "layers", "the block's layers", positional=True, field="inner"),
        Arg("shortcut", "layers", "the shortcut's layers", default=()),
    )
    usage: ClassVar[str] = "{name}(LAYERS) or {name}(LAYERS, shortcut=LAYERS)"
    summary: ClassVar[str] = ("output = F(x) + x: its layers F, plus its input x (or x through "
                              "a shortcut=… projection when F changes the shape)")
    example: ClassVar[str] = ("conv(8,3,pad=1) residual(conv(8,3,pad=1) batchnorm relu "
                              "conv(8,3,pad=1) batchnorm) relu")

    def __post_init__(self) -> None:
        if not self.inner:
            raise FieldError("inner", "a residual block needs layers inside: "
                                      "residual(conv(64,3,pad=1) batchnorm relu ...)")
        for layer in self.inner + self.shortcut:
            if layer.ends:
                raise FieldError("inner", f"{layer.to_text()} ends a network; it cannot be "
                                          "inside a residual block")

    def children(self) -> tuple[tuple[str, tuple[LayerRecord, ...]], ...]:
        return (("inner", self.inner), ("shortcut", self.shortcut))

    def to_text(self) -> str:
        inner = " ".join(layer.to_text() for layer in self.inner)
        if not self.shortcut:
            return f"residual({inner})"
        return f"residual({inner},shortcut={' '.join(l.to_text() for l in self.shortcut)})"

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        rows = {name: infer_sequence(layers, input_shape, f"{place.path}.{name}.",
                                     place.receptive, place.jump)
                for name, layers in self.children()}
        made = rows["inner"][-1].output
        added = rows["shortcut"][-1].output if rows["shortcut"] else tuple(input_shape)
        if made != added:
            which = "its shortcut gives" if self.shortcut else \
                "the identity shortcut gives its input,"
            fix = _projection(input_shape, made)
            hint = (f"Fix: add shortcut={fix}, or make the layers keep {format_shape(added)}"
                    if fix and not self.shortcut else
                    f"Fix: shortcut={fix}" if fix else
                    f"Fix: make both paths give the same shape")
            raise UserError(f"layer {place.path} residual: its layers give {format_shape(made)} "
                            f"but {which} {format_shape(added)}; the two are added, so they must "
                            f"agree. {hint}")
        everything = rows["inner"] + rows["shortcut"]
        return Geometry(made, params=sum(r.params for r in everything),
                        macs=sum(r.macs for r in everything),
                        paths=tuple((name, tuple(found)) for name, found in rows.items()))

    def explain(self, info: LayerShape, lang: str) -> str:
        paths = dict(info.paths)
        words = WORDS[lang]
        shapes = {"shape_in": format_shape(info.input), "shape_out": format_shape(info.output)}
        if self.shortcut:
            text = words["projection"].format(n=len(self.inner), m=len(self.shortcut), **shapes)
            f, s = (sum(r.params for r in paths[name]) for name in ("inner", "shortcut"))
            weights = words["weights_both"].format(f=f"{f:,}", s=f"{s:,}", n=f"{info.params:,}")
        else:
            text = words["identity"].format(n=len(self.inner), **shapes)
            weights = words["weights_f"].format(n=f"{info.params:,}")
        return f"{text} → {format_shape(info.output)}; {weights}"
