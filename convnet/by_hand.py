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
    """Output cell (row, column) of map `channel` of conv layer `layer`, worked out."""
    layer: int
    text: str
    row: int
    column: int
    channel: int
    window: np.ndarray  # kh×kw×C: the layer's input under the filter (padding zeros included)
    weights: np.ndarray  # kh×kw×C: filter `channel`
    bias: float
    total: float  # W·x + b
    output: float  # what the layer computed there (equal to total)
    relu: float | None  # ReLU(W·x + b) when a ReLU follows the layer


def one_number(net, inputs: list[np.ndarray], layer: int, row: int, column: int,
               channel: int) -> OneNumber:
    """`inputs[i]` is layer i's input (the prepared image for layer 0)."""
    spec_layers = net.spec.layers
    if not 0 <= layer < len(spec_layers) or not isinstance(spec_layers[layer], Conv):
        convs = [str(i) for i, record in enumerate(spec_layers) if isinstance(record, Conv)]
        raise UserError(f"layer {layer} is not a conv layer; the conv layers are "
                        f"{', '.join(convs) or 'none'}")
    info = net.shapes[layer]
    out_h, out_w, filters = info.output
    if not (0 <= row < out_h and 0 <= column < out_w and 0 <= channel < filters):
        raise UserError(f"cell (row {row}, column {column}) of map {channel} is outside layer "
                        f"{layer}'s output {format_shape(info.output)} (rows and columns count "
                        f"from 0)")
    conv = spec_layers[layer]
    top, bottom, left, right = conv.sides()
    padded = np.pad(inputs[layer], ((top, bottom), (left, right), (0, 0)))
    (kh, kw), (sh, sw) = conv.kernel, conv.stride
    window = padded[row * sh:row * sh + kh, column * sw:column * sw + kw, :]
    state = net.state_dict()
    weights = state[f"{layer}.weight"][channel].transpose(1, 2, 0).astype(np.float64)
    bias = float(state[f"{layer}.bias"][channel]) if f"{layer}.bias" in state else 0.0
    total = float(np.sum(weights * window.astype(np.float64))) + bias
    after = spec_layers[layer + 1] if layer + 1 < len(spec_layers) else None
    relu = max(total, 0.0) if isinstance(after, Activation) and after.name == "relu" else None
    output = float(inputs[layer + 1][row, column, channel]) if layer + 1 < len(inputs) else total
    return OneNumber(layer, layer_to_string(conv), row, column, channel, window, weights, bias,
                     total, output, relu)


def layer_inputs(net, image: np.ndarray, views: list | None = None) -> list[np.ndarray]:
    """Each layer's input for one image: the prepared image, then every layer's output (the
    last one the final softmax's). `views`: `inside.activations` already computed for it."""
    from .inside import activations

    prepared = net.prepare_images(image[None])[0]
    return [prepared] + [view.values for view in (views or activations(net, image))]


# ── text, in English or Korean (the lecture's own terms) ───────────────────────────────────────

WORDS = {
    "en": {"input": "input {shape}", "channel": "channel {k}:",
           "filter": "filter {k} ({shape}), bias {bias}:", "output": "output:",
           "at": "{layer} {text} at row {row}, column {column} of map {map}:",
           "window": "x, the input under the filter ({shape}):",
           "weights": "W, filter {k} ({shape}), b = {bias}:",
           "sum": "(the sum of {n} products)"},
    "ko": {"input": "입력 {shape}", "channel": "채널 {k}:",
           "filter": "필터 {k} ({shape}), 편향 {bias}:", "output": "출력:",
           "at": "{layer} {text}의 맵 {map}, {row}행 {column}열:",
           "window": "x, 필터 아래의 입력 ({shape}):",
           "weights": "W, 필터 {k} ({shape}), b = {bias}:",
           "sum": "(곱 {n}개의 합)"},
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
    inputs = layer_inputs(net, values)
    words = WORDS[lang]
    lines = [words["input"].format(shape=format_shape(values.shape)), *grid(values, "  ", lang)]
    for info, result in zip(net.shapes, inputs[1:]):
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
                    lines += one_number_text(one_number(net, inputs, info.index, *at, k),
                                             window=k == 0, weights=False, indent="  ",
                                             lang=lang)
            continue
        lines += grid(result, "  ", lang)
    return "\n".join(lines)


def one_number_text(cell: OneNumber, window: bool = True, weights: bool = True,
                    indent: str = "", lang: str = "en") -> list[str]:
    """The lecture's one number, written out: x, W, and W·x + b term by term when short."""
    words = WORDS[lang]
    lines = [indent + words["at"].format(layer=cell.layer, text=cell.text, row=cell.row,
                                         column=cell.column, map=cell.channel)]
    if window:
        lines.append(f"{indent}  " + words["window"].format(shape=format_shape(cell.window.shape)))
        lines += grid(cell.window, indent + "    ", lang)
    if weights:
        lines.append(f"{indent}  " + words["weights"].format(
            k=cell.channel, shape=format_shape(cell.weights.shape), bias=_number(cell.bias, 4)))
        lines += grid(cell.weights, indent + "    ", lang)
    wd, xd = _decimals(cell.weights), _decimals(cell.window)
    terms = [f"{_term(w, wd)}×{_term(x, xd)}" for w, x in
             zip(cell.weights.ravel(), cell.window.ravel())]
    if len(terms) <= 12:
        sum_text = " + ".join(terms) + f" + {_term(cell.bias, 4)}"
    else:
        sum_text = words["sum"].format(n=cell.weights.size) + f" + {_term(cell.bias, 4)}"
    lines.append(f"{indent}  W·x + b = {sum_text} = {_number(cell.total, 4)}")
    if cell.relu is not None:
        lines.append(f"{indent}  ReLU(W·x + b) = max(0, {_number(cell.total, 4)}) = "
                     f"{_number(cell.relu, 4)}")
    return lines
