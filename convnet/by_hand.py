"""A network on numbers small enough to check by hand, and one output worked out as W·x + b.

    convnet inspect "pool(2)" --input 4x4x1 --values "1 1 2 4; 5 6 7 8; 3 2 1 0; 1 2 3 4"
    convnet inspect "conv(1,3) relu" --input 7x7x1 --values random --seed 0 --at 1,2
    convnet show MODEL IMAGE --out inside.png --cell 0,10,12,3

The first runs the described network, with weights drawn from --seed exactly as training starts
them, on the given H×W×C numbers and prints every layer's output. `--at` and `--cell` write out the
lecture's one number for one output cell of a conv layer: the window of the layer's input under
the filter, the filter, the bias, their sum of products, and the ReLU after it. The same
computation answers the web page's /api/cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .shapes import format_shape
from .spec import Activation, Conv, layer_to_string


def parse_values(text: str, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """H×W×C float64 numbers from text ("1 2; 3 4": rows split by ; or new lines, numbers by
    spaces or commas, channels of one pixel next to each other), a .npy or text file, or
    `random` (whole numbers 0–9 drawn from the seed)."""
    h, w, c = shape
    if text == "random":
        return np.random.default_rng(seed).integers(0, 10, size=shape).astype(np.float64)
    path = Path(text)
    if len(text) < 4096 and path.suffix == ".npy" and path.is_file():
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise UserError(f"--values {text}: not a NumPy array file ({e})") from None
        array = np.asarray(array, dtype=np.float64)
        if array.ndim == 2 and c == 1:
            array = array[..., None]
        if array.shape != shape:
            raise UserError(f"--values {text}: shape {format_shape(array.shape)}, "
                            f"but the input is {format_shape(shape)}")
        return array
    if len(text) < 4096 and path.is_file():
        text = path.read_text(encoding="utf-8")
    rows = [row for row in re.split(r"[;\n]", text) if row.strip()]
    numbers: list[float] = []
    for i, row in enumerate(rows):
        try:
            found = [float(v) for v in re.split(r"[\s,]+", row.strip())]
        except ValueError:
            raise UserError(f"--values: row {i + 1} ({row.strip()!r}) holds something that is "
                            "not a number") from None
        if len(rows) > 1 and len(found) != w * c:
            raise UserError(f"--values: row {i + 1} has {len(found)} numbers; a row of a "
                            f"{format_shape(shape)} input has {w * c} (W·C)")
        numbers += found
    if len(numbers) != h * w * c:
        raise UserError(f"--values: {len(numbers)} numbers, but a {format_shape(shape)} input "
                        f"holds {h * w * c}")
    array = np.array(numbers, dtype=np.float64).reshape(shape)
    if not np.isfinite(array).all():
        raise UserError("--values: the numbers must be finite")
    return array


@dataclass(frozen=True)
class OneNumber:
    """One output value of one layer, worked out from the layer's input: for a conv the
    lecture's W·x + b over the window (and the ReLU after it), for max pooling the largest value
    of the window, for average pooling its mean, for fc W·x + b over the whole input vector."""

    layer: str  # the layer's name: "3", or "3.inner.0" inside a block
    text: str  # the layer as written
    kind: str  # conv | maxpool | avgpool | fc | globalavgpool | elementwise | add (a block)
    row: int
    column: int
    channel: int  # the map (or, for fc, the unit)
    source: str  # the layer whose output is the input: its name, or "input"
    origin: tuple[int, int]  # the window's top-left in the input (negative: in the padding)
    window: np.ndarray  # conv kh×kw×C; pooling kh×kw; fc D; global pooling H×W; a block's
    # addition [F(x), shortcut]; an element-wise layer its one input value
    weights: np.ndarray | None  # the filter (kh×kw×C) or the weight row (D); None for pooling
    bias: float
    total: float  # W·x + b, the largest, or the mean
    output: float  # what the layer computed there (equal to total)
    relu: float | None  # ReLU(total) when a ReLU follows the layer
    chosen: tuple[int, int] | None = None  # max pooling: where in the window the largest was
    receptive: tuple[int, int, int, int] | None = None  # the input pixels it sees: top, left,
    # bottom, right (inclusive); None once the network has flattened
    shortcut: str = ""  # a block's addition: "identity" (+ x) or "projection" (+ S(x))

    @property
    def products(self) -> np.ndarray | None:
        """The element-wise products W·x, summed into `total` (with the bias)."""
        return None if self.weights is None else self.weights * self.window


def _locate(rows, name: str, before: tuple = ()):
    """(the layer's LayerShape, the layers after it in its sequence then after its block, the
    chain of LayerShapes from the input to it) for the layer called `name`."""
    for i, row in enumerate(rows):
        chain = before + tuple(rows[:i])
        if row.name == name:
            return row, [r.layer for r in rows[i + 1:]], chain + (row,)
        for _, inner in row.paths:
            found = _locate(list(inner), name, chain)
            if found is not None:
                info, after, path = found
                return info, after + [r.layer for r in rows[i + 1:]], path
    return None


def _field(chain) -> tuple[list[int], list[int], list[int]]:
    """(start, jump, size) per side of what one output value of the chain's last layer sees of
    the input: value i covers input pixels start + i·jump … start + i·jump + size − 1."""
    start, jump, size = [0, 0], [1, 1], [1, 1]
    for row in chain:
        layer = row.layer
        if row.paths:  # a block's output sees what its layers see (the shortcut sees less)
            inner = dict(row.paths)["inner"]
            s, j, z = _field(inner)
            start = [a + b * c for a, b, c in zip(start, s, jump)]
            size = [sz + (z_ - 1) * jp for sz, z_, jp in zip(size, z, jump)]
            jump = [a * b for a, b in zip(jump, j)]
        elif hasattr(layer, "kernel") and hasattr(layer, "stride"):
            top, _, left, _ = row.padding
            for side, (k, st, p) in enumerate(zip(layer.kernel, layer.stride, (top, left))):
                start[side] -= p * jump[side]
                size[side] += (k - 1) * jump[side]
                jump[side] *= st
    return start, jump, size


def cell_kind(info) -> str | None:
    """How one output value of the layer `info` (a LayerShape) is made, or None when it is not
    made one by one (flatten, softmax)."""
    from .layers import FC, Pool

    record = info.layer
    if info.paths:
        return "add"
    if record.ends:
        return None
    if isinstance(record, Conv):
        return "conv"
    if isinstance(record, Pool):
        return "maxpool" if record.kind == "max" else "avgpool"
    if isinstance(record, FC):
        return "fc"
    if record.type == "globalavgpool":
        return "globalavgpool"
    if info.input == info.output:
        return "elementwise"
    return None


def one_number(net, views, image: np.ndarray, layer: str | int, row: int, column: int,
               channel: int) -> OneNumber:
    """Output (row, column) of map `channel` of the layer named `layer` (or unit `channel` of an
    fc layer), worked out. `views`: inside.activations(net, image)."""
    from .inside import find, inputs_of

    name = str(layer)
    located = _locate(net.shapes, name)
    if located is None:
        raise UserError(f"no layer {name!r}; the layers are 0 to {len(net.shapes) - 1}")
    info, after, chain = located
    record = info.layer
    kind = cell_kind(info)
    if kind is None:
        raise UserError(f"layer {name} {layer_to_string(record)} is not a conv, pooling, fc, "
                        "element-wise layer or block; its values are not made one by one")
    vector = len(info.output) == 1
    out_h, out_w = (1, 1) if vector else info.output[:2]
    maps = info.output[0] if vector else info.output[2]
    if not (0 <= row < out_h and 0 <= column < out_w and 0 <= channel < maps):
        raise UserError(f"cell (row {row}, column {column}) of map {channel} is outside layer "
                        f"{name}'s output {format_shape(info.output)} (rows and columns count "
                        f"from 0)")
    given = inputs_of(views, net.prepare_images(image[None])[0])[name].astype(np.float64)
    output = float(find(views, name).values[(channel,) if vector else (row, column, channel)])
    follows_relu = bool(after) and isinstance(after[0], Activation) and after[0].name == "relu"
    state = net.engine.state_dict()  # the engine's own arrays: nothing copied but what is used
    weights, bias, chosen, shortcut = None, 0.0, None, ""
    origin = (0, 0)
    if kind in ("conv", "maxpool", "avgpool"):
        top, bottom, left, right = info.padding
        fill = -np.inf if kind == "maxpool" else 0.0
        padded = np.pad(given, ((top, bottom), (left, right), (0, 0)), constant_values=fill)
        (kh, kw), (sh, sw) = record.kernel, record.stride
        window = padded[row * sh:row * sh + kh, column * sw:column * sw + kw, :]
        origin = (row * sh - top, column * sw - left)
        if kind == "conv":
            weights = state[f"{name}.weight"][channel].transpose(1, 2, 0).astype(np.float64)
            bias = float(state[f"{name}.bias"][channel]) if f"{name}.bias" in state else 0.0
            total = float(np.sum(weights * window)) + bias
        else:
            window = window[:, :, channel]
            if kind == "maxpool":
                chosen = tuple(int(v) for v in np.unravel_index(np.argmax(window), window.shape))
                total = float(window[chosen])
            else:
                total = float(window.mean())
    elif kind == "fc":
        window = given  # the whole input vector
        weights = state[f"{name}.weight"][channel].astype(np.float64)
        bias = float(state[f"{name}.bias"][channel]) if f"{name}.bias" in state else 0.0
        total = float(np.dot(weights, window)) + bias
    elif kind == "globalavgpool":
        window = given[:, :, channel]
        total = float(window.mean())
    elif kind == "add":  # a residual block: what its layers made plus what the shortcut gives
        paths = dict(info.paths)
        at = (channel,) if vector else (row, column, channel)
        ends = [find(views, paths[p][-1].name).values[at] if paths.get(p) else given[at]
                for p in ("inner", "shortcut")]
        window = np.array(ends, dtype=np.float64)
        total = float(window.sum())
        shortcut = "projection" if paths.get("shortcut") else "identity"
        origin = (row, column)
    else:  # an element-wise layer: one input value, one output value
        at = (channel,) if vector else (row, column, channel)
        window = np.array(given[at])
        total = output
        origin = (row, column)
    start, jump, size = _field(chain)
    receptive = None
    if not vector:
        h, w = image.shape[:2]
        top_edge, left_edge = start[0] + row * jump[0], start[1] + column * jump[1]
        receptive = (max(0, top_edge), max(0, left_edge),
                     min(h - 1, top_edge + size[0] - 1), min(w - 1, left_edge + size[1] - 1))
    source = chain[-2].name if len(chain) > 1 else "input"  # whose output this one reads
    relu = max(total, 0.0) if follows_relu and kind in ("conv", "fc") else None
    return OneNumber(layer=name, text=layer_to_string(record), kind=kind, row=row, column=column,
                     channel=channel, source=source, origin=origin, window=window,
                     weights=weights, bias=bias, total=total, output=output, relu=relu,
                     chosen=chosen, receptive=receptive, shortcut=shortcut)


# ── text, in English or Korean (the lecture's own terms) ───────────────────────────────────────

WORDS = {
    "en": {"input": "input {shape}", "channel": "channel {k}:",
           "filter": "filter {k} ({shape}), bias {bias}:", "output": "output:",
           "at": "{layer} {text} at row {row}, column {column} of map {map}:",
           "window": "x, the input under the filter ({shape}):",
           "weights": "W, filter {k} ({shape}), b = {bias}:",
           "sum": "(the sum of {n} products)",
           "unit": "{layer} {text}, unit {map}:",
           "vector": "x, its input ({n} values):", "row": "W, row {k} of the weights, b = {bias}:",
           "pool_window": "the {shape} window of map {map} (−inf: padding):",
           "largest": "the largest: {value}, at row {i}, column {j} of the window",
           "mean": "the mean: {total} / {n} = {value}",
           "map_mean": "the mean of map {map}'s {n} values = {value}",
           "elementwise": "x = {x} → {value}",
           "add": "F(x) + {shortcut} = {a} + {b} = {value}",
           "identity": "x", "projection": "S(x)"},
    "ko": {"input": "입력 {shape}", "channel": "채널 {k}:",
           "filter": "필터 {k} ({shape}), 편향 {bias}:", "output": "출력:",
           "at": "{layer} {text}의 맵 {map}, {row}행 {column}열:",
           "window": "x, 필터 아래의 입력 ({shape}):",
           "weights": "W, 필터 {k} ({shape}), b = {bias}:",
           "sum": "(곱 {n}개의 합)",
           "unit": "{layer} {text}의 유닛 {map}:",
           "vector": "x, 입력 (값 {n}개):", "row": "W, 가중치의 {k}행, b = {bias}:",
           "pool_window": "맵 {map}의 {shape} 창 (−inf: 패딩):",
           "largest": "최댓값: {value}, 창의 {i}행 {j}열",
           "mean": "평균: {total} / {n} = {value}",
           "map_mean": "맵 {map}의 값 {n}개의 평균 = {value}",
           "elementwise": "x = {x} → {value}",
           "add": "F(x) + {shortcut} = {a} + {b} = {value}",
           "identity": "x", "projection": "S(x)"},
}


def _number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0000"


def _term(value: float, decimals: int) -> str:
    text = _number(value, decimals)
    return f"({text})" if text.startswith("-") else text


def _decimals(array: np.ndarray) -> int:
    """Whole numbers as they are; anything else to 4 decimals."""
    return 0 if np.all(array == np.round(array)) and np.abs(array).max(initial=0) < 1e9 else 4


def grid(array: np.ndarray, indent: str = "  ", lang: str = "en") -> list[str]:
    """Rows of numbers, right-aligned; an H×W×C volume channel by channel; a long vector
    ten numbers to a line."""
    d = _decimals(array)
    if array.ndim == 1:
        cells = [_number(v, d) for v in array]
        width = max(len(c) for c in cells)
        return [indent + " ".join(c.rjust(width) for c in cells[i:i + 10])
                for i in range(0, len(cells), 10)]
    if array.ndim == 2:
        cells2 = [[_number(v, d) for v in row] for row in array]
        width = max(len(c) for row in cells2 for c in row)
        return [indent + " ".join(c.rjust(width) for c in row) for row in cells2]
    lines: list[str] = []
    for k in range(array.shape[2]):
        if array.shape[2] > 1:
            lines.append(indent + WORDS[lang]["channel"].format(k=k))
        lines += grid(array[:, :, k], indent + ("  " if array.shape[2] > 1 else ""), lang)
    return lines


def values_text(net, values: np.ndarray, at: tuple[int, int] | None = None,
                lang: str = "en") -> str:
    """The input and every layer's output, with the one number worked out at `at` (row,
    column) for every filter of every conv layer whose output has that cell."""
    from .inside import activations

    views = activations(net, values)
    outputs = [view.values for view in views]
    words = WORDS[lang]
    lines = [words["input"].format(shape=format_shape(values.shape)), *grid(values, "  ", lang)]
    for info, result in zip(net.shapes, outputs):
        lines.append(f"{info.index} {layer_to_string(info.layer)} → {format_shape(info.output)}")
        if isinstance(info.layer, Conv):
            state = net.state_dict()
            for k in range(info.output[2]):
                weight = state[f"{info.index}.weight"][k].transpose(1, 2, 0)
                bias = float(state[f"{info.index}.bias"][k]) if info.layer.bias else 0.0
                lines.append("  " + words["filter"].format(k=k, shape=format_shape(weight.shape),
                                                           bias=_number(bias, 4)))
                lines += grid(weight, "    ", lang)
            lines.append("  " + words["output"])
            lines += grid(result, "    ", lang)
            if at is not None and at[0] < info.output[0] and at[1] < info.output[1]:
                for k in range(info.output[2]):  # the filters were printed just above
                    lines += one_number_text(one_number(net, views, values, info.index, *at, k),
                                             window=k == 0, weights=False, indent="  ",
                                             lang=lang)
            continue
        lines += grid(result, "  ", lang)
    return "\n".join(lines)


def one_number_text(cell: OneNumber, window: bool = True, weights: bool = True,
                    indent: str = "", lang: str = "en") -> list[str]:
    """The one number, written out: for a conv x, W, and W·x + b term by term when short (the
    lecture's); for pooling the window and its largest value or mean; for fc the input vector,
    the weight row and W·x + b."""
    words = WORDS[lang]
    if cell.kind == "fc":
        lines = [indent + words["unit"].format(layer=cell.layer, text=cell.text, map=cell.channel)]
        if window:
            lines.append(f"{indent}  " + words["vector"].format(n=f"{cell.window.size:,}"))
            lines += grid(cell.window, indent + "    ", lang)
        if weights:
            lines.append(f"{indent}  " + words["row"].format(k=cell.channel,
                                                            bias=_number(cell.bias, 4)))
            lines += grid(cell.weights, indent + "    ", lang)
        return lines + _sum_lines(cell, indent, words)
    lines = [indent + words["at"].format(layer=cell.layer, text=cell.text, row=cell.row,
                                         column=cell.column, map=cell.channel)]
    if cell.kind in ("maxpool", "avgpool"):
        lines.append(f"{indent}  " + words["pool_window"].format(
            shape=format_shape(cell.window.shape), map=cell.channel))
        lines += grid(cell.window, indent + "    ", lang)
        if cell.kind == "maxpool":
            i, j = cell.chosen or (0, 0)
            lines.append(f"{indent}  " + words["largest"].format(
                value=_number(cell.total, _decimals(cell.window)), i=i, j=j))
        else:
            lines.append(f"{indent}  " + words["mean"].format(
                total=_number(float(cell.window.sum()), 4), n=cell.window.size,
                value=_number(cell.total, 4)))
        return lines
    if cell.kind == "globalavgpool":
        return lines + [f"{indent}  " + words["map_mean"].format(
            map=cell.channel, n=f"{cell.window.size:,}", value=_number(cell.total, 4))]
    if cell.kind == "add":
        a, b = (float(v) for v in cell.window)
        return lines + [f"{indent}  " + words["add"].format(
            shortcut=words[cell.shortcut],
            a=_number(a, 4), b=_number(b, 4), value=_number(cell.total, 4))]
    if cell.kind == "elementwise":
        return lines + [f"{indent}  " + words["elementwise"].format(
            x=_number(float(cell.window), 4), value=_number(cell.output, 4))]
    if window:
        lines.append(f"{indent}  " + words["window"].format(shape=format_shape(cell.window.shape)))
        lines += grid(cell.window, indent + "    ", lang)
    if weights:
        lines.append(f"{indent}  " + words["weights"].format(
            k=cell.channel, shape=format_shape(cell.weights.shape), bias=_number(cell.bias, 4)))
        lines += grid(cell.weights, indent + "    ", lang)
    return lines + _sum_lines(cell, indent, words)


def _sum_lines(cell: OneNumber, indent: str, words: dict) -> list[str]:
    wd, xd = _decimals(cell.weights), _decimals(cell.window)
    terms = [f"{_term(w, wd)}×{_term(x, xd)}" for w, x in
             zip(cell.weights.ravel(), cell.window.ravel())]
    if len(terms) <= 12:
        sum_text = " + ".join(terms) + f" + {_term(cell.bias, 4)}"
    else:
        sum_text = words["sum"].format(n=cell.weights.size) + f" + {_term(cell.bias, 4)}"
    lines = [f"{indent}  W·x + b = {sum_text} = {_number(cell.total, 4)}"]
    if cell.relu is not None:
        lines.append(f"{indent}  ReLU(W·x + b) = max(0, {_number(cell.total, 4)}) = "
                     f"{_number(cell.relu, 4)}")
    return lines
