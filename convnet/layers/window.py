"""What the layers that slide a window over their input share (conv and pooling): padding
sides, and the explanation of their arithmetic, (N − F + 2P)/S + 1 per side."""

from __future__ import annotations

from typing import Any

from ..shapes import LayerShape, format_shape, formula
from .words import SHARED

PAD_WORDS = {
    "en": {"same": "pad=same adds {pad} zeros on each side",
           "same_uneven": "pad=same adds {a} zeros before and {b} after"},
    "ko": {"same": "pad=same: 가장자리마다 0을 {pad}칸씩 덧댐",
           "same_uneven": "pad=same: 앞쪽에 0을 {a}칸, 뒤쪽에 {b}칸 덧댐"},
}


def sides_of(kernel: tuple[int, int], pad: int | str) -> tuple[int, int, int, int]:
    """Zeros added (top, bottom, left, right). `same` splits F − 1 as PyTorch does (less
    first)."""
    if pad == "same":
        (kh, kw) = kernel
        return ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)
    p = int(pad)
    return (p, p, p, p)


def _side(n: int, f: int, s: int, pad_total: int, shows_pad: bool) -> str:
    """One side's arithmetic: (N − F + 2P)/S + 1 = out, floored with ⌊ ⌋ when it doesn't fit."""
    text = formula(n, f, s, pad_total if shows_pad else None)
    span = n - f + pad_total
    out = span // s + 1
    if span % s:
        text = "⌊" + text.replace(" + 1", "⌋ + 1")
    return f"{text} = {out}"


def _dropped(lang: str, rows: int, columns: int) -> str:
    w = SHARED[lang]
    parts = []
    if rows:
        parts.append(w["rows" if rows == 1 else "rows_many"].format(n=rows))
    if columns:
        parts.append(w["columns" if columns == 1 else "columns_many"].format(n=columns))
    return w["and"].join(parts)


def explain_window(layer: Any, info: LayerShape, lang: str, weights: str) -> str:
    """'(32 − 5 + 2·0)/1 + 1 = 28 → 28x28x6; weights …' for a conv or a pool."""
    w = SHARED[lang]
    (h, wd, _) = info.input
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    top, bottom, left, right = info.padding
    shows_pad = layer.shows_pad
    height = _side(h, kh, sh, top + bottom, shows_pad)
    width = _side(wd, kw, sw, left + right, shows_pad)
    sizes = height if (h, kh, top + bottom) == (wd, kw, left + right) else \
        f"H {height}, W {width}"
    rows, columns = (h - kh + top + bottom) % sh, (wd - kw + left + right) % sw
    floored = ""
    if rows or columns:
        padded = f"{h + top + bottom}x{wd + left + right}"
        if top + bottom + left + right:
            padded = w["padded"].format(shape=padded)
        plural = (rows > 1 or columns > 1 or (rows and columns))
        floored = w["floored"].format(dropped=_dropped(lang, rows, columns), padded=padded,
                                      noun=w[layer.noun], verb=w["are" if plural else "is"])
    same = ""
    if getattr(layer, "pad", 0) == "same":
        words = PAD_WORDS[lang]
        if (top, left) == (bottom, right):
            same = words["same"].format(pad=f"{top}x{left}" if top != left else top) + "; "
        else:
            same = words["same_uneven"].format(
                a=f"{top}x{left}" if top != left else top,
                b=f"{bottom}x{right}" if bottom != right else bottom) + "; "
    return f"{same}{sizes}{floored} → {format_shape(info.output)}; {weights}"
