"""`convnet inspect`: the shape arithmetic of a network as a table, as JSON, or explained.

Rendering only; every number comes from `shapes.infer`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .shapes import LayerShape, format_shape, formula, infer
from .spec import FC, Activation, BatchNorm, Conv, Dropout, Flatten, Pool, Softmax, Spec, layer_name
from .spec import layer_to_string as text_of


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


def table(spec: Spec, input_shape: tuple[int, int, int], lang: str = "en") -> str:
    words = TABLE_WORDS[lang]
    rows = infer(spec, input_shape)
    header = words["header"]
    body = [("", words["input"], format_shape(input_shape), "0", "0", "1x1",
             _bytes(4 * input_shape[0] * input_shape[1] * input_shape[2]))]
    for r in rows:
        body.append((
            str(r.index), text_of(r.layer), format_shape(r.output), _n(r.params), _n(r.macs),
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
    memory = sum(r.activation_bytes for r in rows)
    out = [words["network_line"].format(spec.without_input()),
           words["input_line"].format(format_shape(input_shape)), rule,
           line(header), rule, *(line(row) for row in body), rule,
           words["weights"].format(_n(params), _bytes(4 * params)),
           words["macs"].format(_n(macs), _metric(macs)),
           words["memory"].format(_bytes(memory))]
    return "\n".join(out)


def as_json(spec: Spec, input_shape: tuple[int, int, int]) -> dict[str, Any]:
    rows = infer(spec, input_shape)
    return {
        "input": list(input_shape),
        "description": str(spec.without_input()),
        "layers": [
            {
                "index": r.index,
                "type": layer_name(r.layer),
                "layer": text_of(r.layer),
                "output": list(r.output),
                "params": r.params,
                "macs": r.macs,
                "receptive_field": list(r.receptive) if r.receptive else None,
                "activation_bytes": r.activation_bytes,
            }
            for r in rows
        ],
        "params": sum(r.params for r in rows),
        "macs": sum(r.macs for r in rows),
        "activation_bytes": sum(r.activation_bytes for r in rows),
    }


# ---------------------------------------------------------------------------------------------
# --explain: each layer's arithmetic, the way the lecture writes it.

WORDS = {
    "en": {
        "input": "input {shape}",
        "weights": "weights {formula} = {n}",
        "no_weights": "no weights",
        "floored": " (floored, as PyTorch does)",
        "same": "pad=same adds {pad} zeros on each side",
        "same_uneven": "pad=same adds {a} zeros before and {b} after",
        "pool": "{kind} of each {window} window, each activation map on its own",
        "max": "the largest value", "avg": "the average",
        "relu": "max(0, x) on each value", "sigmoid": "1/(1 + e^−x) on each value",
        "tanh": "tanh(x) on each value",
        "dropout": "while training, each value is zeroed with probability {p} and the rest "
                   "scaled by 1/(1 − p); untouched at test time",
        "batchnorm": "each of the {c} channels normalised over the batch, then scaled by γ and "
                     "shifted by β",
        "flatten": "{formula} = {n} values in one vector (channel-major, as PyTorch)",
        "fc": "each of the {units} units sees all {inputs} inputs",
        "softmax": "turns the {n} scores into probabilities that sum to 1",
        "total": "total: {params} weights, {macs} multiply-adds per image",
    },
    "ko": {
        "input": "입력 {shape}",
        "weights": "가중치 {formula} = {n}",
        "no_weights": "가중치 없음",
        "floored": " (PyTorch처럼 버림)",
        "same": "pad=same: 가장자리마다 0을 {pad}칸씩 덧댐",
        "same_uneven": "pad=same: 앞쪽에 0을 {a}칸, 뒤쪽에 {b}칸 덧댐",
        "pool": "각 활성화 맵에서 {window} 창마다 {kind}을 뽑음",
        "max": "최댓값", "avg": "평균값",
        "relu": "각 값에 max(0, x)", "sigmoid": "각 값에 1/(1 + e^−x)", "tanh": "각 값에 tanh(x)",
        "dropout": "학습할 때 각 값을 확률 {p}로 0으로 만들고 나머지는 1/(1 − p)배; "
                   "테스트할 때는 그대로",
        "batchnorm": "{c}개 채널을 각각 배치에서 정규화한 뒤 γ를 곱하고 β를 더함",
        "flatten": "{formula} = {n}개 값을 한 벡터로 펼침 (PyTorch처럼 채널 우선)",
        "fc": "{units}개 유닛이 각각 입력 {inputs}개를 모두 봄",
        "softmax": "점수 {n}개를 합이 1인 확률로 바꿈",
        "total": "합계: 가중치 {params}개, 이미지 한 장당 곱셈-덧셈 {macs}번",
    },
}


def _side(n: int, f: int, s: int, pad_total: int, conv: bool) -> str:
    """One side's arithmetic: (N − F + 2P)/S + 1 = out, floored with ⌊ ⌋ when it doesn't fit."""
    text = formula(n, f, s, pad_total if conv else None)
    span = n - f + pad_total
    out = span // s + 1
    if span % s:
        text = "⌊" + text.replace(" + 1", "⌋ + 1")
    return f"{text} = {out}"


def explain_layer(r: LayerShape, lang: str = "en") -> str:
    w = WORDS[lang]
    layer = r.layer
    shape = format_shape(r.output)
    head = f"{r.index} {text_of(layer)}: "
    if isinstance(layer, (Conv, Pool)):
        (h, wd, c) = r.input
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        top, bottom, left, right = r.padding
        height = _side(h, kh, sh, top + bottom, isinstance(layer, Conv))
        width = _side(wd, kw, sw, left + right, isinstance(layer, Conv))
        sizes = height if (h, kh, top + bottom) == (wd, kw, left + right) else \
            f"H {height}, W {width}"
        floored = w["floored"] if (h - kh + top + bottom) % sh or (wd - kw + left + right) % sw \
            else ""
        same = ""
        if isinstance(layer, Conv) and layer.pad == "same":
            if (top, left) == (bottom, right):
                same = w["same"].format(pad=f"{top}x{left}" if top != left else top) + "; "
            else:
                same = w["same_uneven"].format(a=f"{top}x{left}" if top != left else top,
                                               b=f"{bottom}x{right}" if bottom != right else bottom
                                               ) + "; "
        if isinstance(layer, Conv):
            bias = f" + {layer.filters}" if layer.bias else ""
            formula = f"{layer.filters}·({kh}·{kw}·{c}){bias}"
            weights = w["weights"].format(formula=formula, n=_n(r.params))
        else:
            window = f"{kh}x{kw}"
            weights = w["no_weights"] + ": " + w["pool"].format(kind=w[layer.kind], window=window)
        return f"{head}{same}{sizes}{floored} → {shape}; {weights}"
    if isinstance(layer, Activation):
        return f"{head}{w[layer.name]} → {shape}; {w['no_weights']}"
    if isinstance(layer, Dropout):
        return f"{head}{w['dropout'].format(p=layer.p)} → {shape}; {w['no_weights']}"
    if isinstance(layer, BatchNorm):
        c = r.input[-1]
        weights = w["weights"].format(formula=f"2·{c}", n=_n(r.params))
        return f"{head}{w['batchnorm'].format(c=c)} → {shape}; {weights}"
    if isinstance(layer, Flatten):
        formula = "·".join(str(d) for d in r.input)
        return f"{head}{w['flatten'].format(formula=formula, n=_n(r.output[0]))} → {shape}"
    if isinstance(layer, FC):
        inputs = r.input[0]
        bias = f" + {layer.units}" if layer.bias else ""
        weights = w["weights"].format(formula=f"{layer.units}·{inputs}{bias}", n=_n(r.params))
        what = w["fc"].format(units=_n(layer.units), inputs=_n(inputs))
        return f"{head}{what} → {shape}; {weights}"
    if isinstance(layer, Softmax):
        return f"{head}{w['softmax'].format(n=_n(r.input[0]))} → {shape}; {w['no_weights']}"
    raise TypeError(f"not a layer record: {layer!r}")


def explain(spec: Spec, input_shape: tuple[int, int, int], lang: str = "en") -> str:
    if lang not in WORDS:
        raise ValueError(f"unknown language {lang!r}")
    rows = infer(spec, input_shape)
    w = WORDS[lang]
    lines = [w["input"].format(shape=format_shape(input_shape))]
    lines += [explain_layer(r, lang) for r in rows]
    lines.append(w["total"].format(params=_n(sum(r.params for r in rows)),
                                   macs=_n(sum(r.macs for r in rows))))
    return "\n".join(lines)
