"""`convnet inspect`: the shape arithmetic of a network as a table, as JSON, or explained.

Rendering only; every number comes from `shapes.infer`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .shapes import LayerShape, format_shape, infer
from .spec import Spec


def label(layer: Any) -> str:
    """A layer as a row shows it: its text, or for a block (whose text holds all its layers,
    shown on their own rows) its word."""
    return layer.word() if layer.children() else layer.to_text()


ADDED = {"en": {"identity": "+ x (the block's input)", "projection": "+ S(x) (the shortcut)"},
         "ko": {"identity": "+ x (블록의 입력)", "projection": "+ S(x) (지름길)"}}


def _rows(rows: list[LayerShape], depth: int = 0):
    """(depth, LayerShape or None for an addition row, the block) for every row, a block's
    layers indented below it, its shortcut after them, then the addition."""
    for r in rows:
        yield depth, r, None
        if r.paths:
            paths = dict(r.paths)
            yield from _rows(list(paths["inner"]), depth + 1)
            yield from _rows(list(paths.get("shortcut", ())), depth + 1)
            yield depth + 1, None, r


def _n(x: int) -> str:
    return f"{x:,}"


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _metric(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


# ---------------------------------------------------------------------------------------------
# The table, in the manner of Keras' model.summary() and torchinfo.


TABLE_WORDS = {
    "en": {"header": ("#", "layer", "output", "weights", "MACs", "receptive", "memory"),
           "input": "input", "all": "all", "network_line": "network: {}",
           "input_line": "input:   {}",
           "weights": "weights:       {} ({} as float32)",
           "macs": "multiply-adds: {} per image ({})",
           "memory": "activations:   {} per image, forward pass (float32)"},
    "ko": {"header": ("#", "레이어", "출력", "가중치", "곱셈-덧셈", "수용 영역", "메모리"),
           "input": "입력", "all": "전체", "network_line": "네트워크: {}", "input_line": "입력:     {}",
           "weights": "가중치:        {}개 (float32로 {})",
           "macs": "곱셈-덧셈:     이미지 한 장당 {}번 ({})",
           "memory": "활성화 메모리: 이미지 한 장당 {}, 순전파 (float32)"},
}


def _width(text: str) -> int:
    """Columns a terminal gives the text: Hangul and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(spec: Spec, input_shape: tuple[int, int, int], lang: str = "en",
          title: str | None = None) -> str:
    """The table; `title` names the network in its first line instead of its whole text (a
    network convnet ships, whose text is long)."""
    words = TABLE_WORDS[lang]
    rows = infer(spec, input_shape)
    header = words["header"]
    body = [("", words["input"], format_shape(input_shape), "0", "0", "1x1",
             _bytes(4 * input_shape[0] * input_shape[1] * input_shape[2]))]
    for depth, r, block in _rows(rows):
        indent = "  " * depth
        if r is None:  # a block's addition
            kind = "projection" if block.layer.shortcut else "identity"
            body.append(("", indent + ADDED[lang][kind], format_shape(block.output), "0", "0",
                         format_shape(block.receptive) if block.receptive else words["all"],
                         _bytes(block.activation_bytes)))
            continue
        body.append((
            r.name, indent + label(r.layer), format_shape(r.output), _n(r.params), _n(r.macs),
            format_shape(r.receptive) if r.receptive else words["all"],
            _bytes(r.activation_bytes),
        ))
    widths = [max(_width(row[i]) for row in (header, *body)) for i in range(len(header))]
    right = {0, 3, 4, 6}  # numbers are right-aligned

    def line(row: tuple[str, ...]) -> str:
        cells = []
        for i, (cell, width) in enumerate(zip(row, widths)):
            room = " " * (width - _width(cell))
            cells.append(room + cell if i in right else cell + room)
        return "  ".join(cells).rstrip()

    rule = "─" * _width(line(header))
    params = sum(r.params for r in rows)
    macs = sum(r.macs for r in rows)
    memory = sum(x.activation_bytes for r in rows for x in r.walk())
    out = [words["network_line"].format(title or spec.without_input()),
           words["input_line"].format(format_shape(input_shape)), rule,
           line(header), rule, *(line(row) for row in body), rule,
           words["weights"].format(_n(params), _bytes(4 * params)),
           words["macs"].format(_n(macs), _metric(macs)),
           words["memory"].format(_bytes(memory))]
    return "\n".join(out)


def _json_row(r: LayerShape) -> dict[str, Any]:
    row = {
        "index": r.index,
        "name": r.name,
        "type": r.layer.word(),
        "layer": r.layer.to_text(),
        "output": list(r.output),
        "params": r.params,
        "macs": r.macs,
        "receptive_field": list(r.receptive) if r.receptive else None,
        "activation_bytes": r.activation_bytes,
    }
    if r.paths:
        row["paths"] = {name: [_json_row(x) for x in inner] for name, inner in r.paths}
    return row


def as_json(spec: Spec, input_shape: tuple[int, int, int]) -> dict[str, Any]:
    rows = infer(spec, input_shape)
    return {
        "input": list(input_shape),
        "description": str(spec.without_input()),
        "layers": [_json_row(r) for r in rows],
        "params": sum(r.params for r in rows),
        "macs": sum(r.macs for r in rows),
        "activation_bytes": sum(x.activation_bytes for r in rows for x in r.walk()),
    }


# ---------------------------------------------------------------------------------------------
# --explain: each layer's arithmetic, the way the lecture writes it (each kind says its own part,
# in convnet/layers/).

WORDS = {
    "en": {"input": "input {shape}",
           "total": "total: {params} weights, {macs} multiply-adds per image"},
    "ko": {"input": "입력 {shape}",
           "total": "합계: 가중치 {params}개, 이미지 한 장당 곱셈-덧셈 {macs}번"},
}


def explain_layer(r: LayerShape, lang: str = "en") -> str:
    return f"{r.name} {label(r.layer)}: {r.layer.explain(r, lang)}"


def explain(spec: Spec, input_shape: tuple[int, int, int], lang: str = "en") -> str:
    if lang not in WORDS:
        raise ValueError(f"unknown language {lang!r}")
    rows = infer(spec, input_shape)
    w = WORDS[lang]
    lines = [w["input"].format(shape=format_shape(input_shape))]
    for depth, r, _ in _rows(rows):
        if r is not None:
            lines.append("  " * depth + explain_layer(r, lang))
    lines.append(w["total"].format(params=_n(sum(r.params for r in rows)),
                                   macs=_n(sum(r.macs for r in rows))))
    return "\n".join(lines)
