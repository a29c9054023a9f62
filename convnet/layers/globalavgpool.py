"""globalavgpool: each activation map's mean, H×W×C → C — how ResNet ends its spatial part:
however large the maps, the fc after it sees one number per map, and no flatten is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..shapes import Geometry, LayerShape, Place, format_shape, image_input
from .base import LayerRecord, Shape, kind
from .words import no_weights

WORDS = {
    "en": "the mean of each of the {c} maps ({hw} values each) → {shape}",
    "ko": "{c}개 맵마다 값 {hw}개의 평균 → {shape}",
}


@kind
@dataclass(frozen=True)
class GlobalAvgPool(LayerRecord):
    """Each activation map's mean: H×W×C → C."""

    type: ClassVar[str] = "globalavgpool"
    order: ClassVar[float] = 25
    names: ClassVar[tuple[str, ...]] = ("globalavgpool",)
    usage: ClassVar[str] = "{name}"
    summary: ClassVar[str] = ("each activation map's mean: H×W×C → C, a vector for fc (ResNet's "
                              "end); no flatten needed")
    example: ClassVar[str] = "conv(8,3) globalavgpool fc(10)"
    needs: ClassVar[str] = "image"
    makes: ClassVar[str] = "vector"

    def geometry(self, index: int, input_shape: Shape, place: Place) -> Geometry:
        h, w, c = image_input(place.path, self, input_shape)
        return Geometry((c,))

    def explain(self, info: LayerShape, lang: str) -> str:
        h, w, c = info.input
        text = WORDS[lang].format(c=f"{c:,}", hw=f"{h}·{w} = {h * w:,}",
                                  shape=format_shape(info.output))
        return f"{text}; {no_weights(lang)}"
