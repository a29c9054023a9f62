"""Shape arithmetic, in one place: every size in convnet is computed here.

The lecture's formula for one side of an N×N input, F×F filter, stride S and zero padding P:

    output = (N − F + 2P)/S + 1

The inspector, both engines and every error message call these pure functions, so a size is
computed once. A stride that doesn't fit is an error that offers fixes, never a silent floor,
unless the layer says `floor=true` (PyTorch's behaviour).

Dimension letters: N input side, F filter side, S stride, P padding, C input depth, K filters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from typing import TYPE_CHECKING, Any

from .errors import GeometryError, UserError

Size2 = tuple[int, int]  # (height, width)
Shape = tuple[int, ...]  # (H, W, C) for images and activation volumes, (N,) for vectors

if TYPE_CHECKING:
    from .layers.base import LayerRecord as Layer
    from .spec import Spec

INT64_MAX = 2**63 - 1
BYTES_PER_VALUE = 4  # float32 activations


@dataclass(frozen=True)
class LayerShape:
    """Everything the arithmetic says about one layer of a network on a given input."""

    index: int  # position in its sequence (0 = first layer)
    layer: "Layer"
    input: Shape  # (H, W, C) or (N,)
    output: Shape
    padding: tuple[int, int, int, int]  # zeros added (top, bottom, left, right); 0s if none
    params: int  # learned weights and biases (a block's: all of its layers')
    macs: int  # multiply-adds for one image
    receptive: Size2 | None  # input pixels one output value sees; None once flattened
    jump: Size2  # input pixels between neighbouring output values
    path: str = ""  # its state names' prefix: "3", or "3.inner.0" inside a block
    paths: tuple[tuple[str, tuple["LayerShape", ...]], ...] = ()  # a block's inner layers

    @property
    def name(self) -> str:
        return self.path or str(self.index)

    @property
    def activation_bytes(self) -> int:
        return math.prod(self.output) * BYTES_PER_VALUE

    def walk(self):
        """This layer, then every layer inside it, depth first."""
        yield self
        for _, rows in self.paths:
            for row in rows:
                yield from row.walk()


@dataclass(frozen=True)
class Geometry:
    """What a layer kind's shape rule says for one input (see LayerRecord.geometry)."""

    output: Shape
    params: int = 0
    macs: int = 0
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    window: tuple[Size2, Size2] | None = None  # (kernel, stride), for receptive fields
    paths: tuple[tuple[str, tuple[LayerShape, ...]], ...] = ()


@dataclass(frozen=True)
class Place:
    """Where a layer sits: its state-name path, and the receptive field and jump of its input."""

    path: str
    receptive: Size2 | None = (1, 1)
    jump: Size2 = (1, 1)


def image_input(label: str, layer: "Layer", shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise UserError(f"layer {label} {layer.to_text()} needs an HxWxC input, got "
                        f"{format_shape(shape)}")
    return shape  # type: ignore[return-value]


def vector_input(label: str, layer: "Layer", shape: Shape) -> int:
    if len(shape) != 1:
        raise UserError(f"layer {label} {layer.to_text()} needs a vector input, got "
                        f"{format_shape(shape)}; put flatten before it")
    return shape[0]


def output_size(n: int, f: int, s: int, pad_total: int, floor: bool = False) -> float:
    """(N − F + 2P)/S + 1 for one side, with pad_total = 2P; a float when it doesn't fit."""
    span = n - f + pad_total
    if span < 0:
        return span / s + 1  # negative span: the filter is larger than the padded input
    if span % s == 0 or floor:
        return span // s + 1
    return span / s + 1


def _fits(n: int, f: int, s: int, pad_total: int) -> bool:
    span = n - f + pad_total
    return span >= 0 and span % s == 0


def pad_term(pad_total: int) -> str:
    """2P as the lecture writes it (2·1); an odd total comes from `same` with an even filter."""
    return f"2·{pad_total // 2}" if pad_total % 2 == 0 else str(pad_total)


def span(n: int, f: int, pad_total: int | None) -> str:
    """"N − F + 2P" with numbers; pad_total None for pooling, which has no padding term."""
    return f"{n} − {f}" if pad_total is None else f"{n} − {f} + {pad_term(pad_total)}"


def formula(n: int, f: int, s: int, pad_total: int | None) -> str:
    """The lecture's "(N − F + 2P)/S + 1" with numbers."""
    return f"({span(n, f, pad_total)})/{s} + 1"


def _fmt(x: float) -> str:
    """A result of the formula: whole, or with enough decimals not to look whole (1.000122)."""
    if float(x).is_integer():
        return str(int(x))
    short = f"{x:.2f}"
    return short if not float(short).is_integer() else f"{x:.9f}".rstrip("0")


def _divisors_up_to(n: int, limit: int) -> list[int]:
    """The divisors of n > 0 that are at most `limit`, in O(√n) steps."""
    found = set()
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            found.update(c for c in (d, n // d) if c <= limit)
    return sorted(found)


def _nearest_in_class(target: int, residue: int, modulus: int, lowest: int) -> int:
    """The whole number q ≥ lowest with q ≡ residue (mod modulus) nearest to `target`, q ≠
    target (ties: the smaller one). O(1)."""
    first = lowest + (residue - lowest) % modulus  # the smallest member of the class ≥ lowest
    step = first + (target - first) // modulus * modulus  # the member at or below target
    candidates = {first, step - modulus, step, step + modulus, step + 2 * modulus}
    return min((q for q in candidates if q >= first and q != target),
               key=lambda q: (abs(q - target), q))


def _input_fix(layer: Any, hw: Size2) -> tuple[str, str] | None:
    """For the first layer: the nearest larger input size that it fits, and what it gives
    (AlexNet's 224 → the paper's 227)."""
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    top, bottom, left, right = layer.sides()
    h, w = (n + (-(n - f + p2)) % s for n, f, s, p2 in ((hw[0], kh, sh, top + bottom),
                                                         (hw[1], kw, sw, left + right)))
    if (h, w) == tuple(hw):
        return None
    return f"{h}x{w}", f"{(h - kh + top + bottom) // sh + 1}x{(w - kw + left + right) // sw + 1}"


def _geometry_fixes(layer: Any, hw: Size2) -> list[str]:
    """Nearby stride and padding values that make both sides fit, with what they give.

    Solved, not searched, so any size answers at once: stride c fits iff it divides both spans
    N − F + 2P (so it divides their greatest common divisor), and padding q fits iff
    2q ≡ F − N (mod S) on both sides, a residue class of q found in O(1)."""
    (kh, kw), (s, _) = layer.kernel, layer.stride
    p = layer.pad if isinstance(layer.pad, int) else 0
    fixes: list[str] = []

    def size_with(stride: int, pad_one_side: int) -> str:
        h = (hw[0] - kh + 2 * pad_one_side) // stride + 1
        w = (hw[1] - kw + 2 * pad_one_side) // stride + 1
        return f"{h}x{w}"

    # A stride larger than the filter would skip input pixels: offer only 1..F.
    largest = min(kh, kw)
    g = math.gcd(hw[0] - kh + 2 * p, hw[1] - kw + 2 * p)  # both spans are ≥ 0 here
    if g:
        strides = _divisors_up_to(g, largest)
    else:  # both spans are 0: every stride fits; the nearest ones are enough
        strides = sorted({largest, largest - 1, *range(s - 2, s + 3)} & set(range(1, largest + 1)))
    strides = [c for c in strides if c != s]
    strides.sort(key=lambda c: (abs(c - s), -c))
    fixes += [f"stride={c} (→ {size_with(c, p)})" for c in sorted(strides[:2])]
    if layer.pad_fixes:
        # 2q ≡ r (mod s) for r = F − N on each side; with d = gcd(2, s) it has solutions iff d
        # divides r, and they are q ≡ (r/d)·(2/d)⁻¹ (mod s/d).
        d = math.gcd(2, s)
        residues = [(f - n) % s for n, f in ((hw[0], kh), (hw[1], kw))]
        if all(r % d == 0 for r in residues):
            modulus = s // d
            inverse = pow(2 // d, -1, modulus) if modulus > 1 else 0
            classes = {(r // d) * inverse % modulus if modulus > 1 else 0 for r in residues}
            if len(classes) == 1:  # one class of pads fits both sides
                lowest = max(0, -((hw[0] - kh) // 2), -((hw[1] - kw) // 2))  # spans ≥ 0
                q = _nearest_in_class(p, classes.pop(), modulus, lowest)
                fixes.append(f"pad={q} (→ {size_with(s, q)})")
    return fixes


def check_fit(label: str, layer: Any, in_shape: Shape) -> tuple[int, int]:
    """Output height and width of a layer that slides a window (conv, pooling) over its input,
    or a GeometryError that offers fixes. `layer` has kernel, stride, floor, pad, sides(),
    noun ("filter" or "window"), pad_fixes (whether other paddings may be offered) and
    shows_pad (whether its formula has the 2P term)."""
    (h, w, _c) = in_shape
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    top, bottom, left, right = layer.sides()
    name = f"layer {label} {layer.to_text()} on {h}x{w}x{_c}"
    what = layer.noun
    # the Korean message (inspect --lang ko): the noun, and it with its subject particle
    korean_name = f"{label}번 레이어 {layer.to_text()} ({h}x{w}x{_c} 입력)"
    korean_what, korean_subject = ("필터", "필터가") if what == "filter" else ("창", "창이")

    if h + top + bottom < kh or w + left + right < kw:
        padded = f"{h + top + bottom}x{w + left + right}"
        hint = "a smaller " + what + f" (at most {h + top + bottom}x{w + left + right})"
        korean_hint = f"더 작은 {korean_what} (최대 {padded})"
        if layer.pad_fixes:
            need = max(math.ceil((kh - h) / 2), math.ceil((kw - w) / 2), 0)
            hint = f"pad={need} or more, or " + hint
            korean_hint = f"pad={need} 이상, 또는 " + korean_hint
        hint += ", or fewer pooling layers before it"
        korean_hint += ", 또는 앞쪽 풀링 레이어 줄이기"
        raise GeometryError(f"{name}: the {kh}x{kw} {what} is larger than its padded input "
                            f"{padded}. Fix: {hint}",
                            f"{korean_name}: {kh}x{kw} {korean_subject} 패딩한 입력 {padded}보다 "
                            f"큼. 고치는 법: {korean_hint}")

    sides = [("height", h, kh, sh, top + bottom), ("width", w, kw, sw, left + right)]
    bad = [side for side in sides if not _fits(*side[1:])]
    if bad and not layer.floor:
        side, n, f, s, p2 = bad[0]
        shown_pad = p2 if layer.shows_pad else None
        exact = (n - f + p2) / s + 1
        floored = f"{(h - kh + top + bottom) // sh + 1}x{(w - kw + left + right) // sw + 1}"
        fixes = _geometry_fixes(layer, (h, w))
        bigger = _input_fix(layer, (h, w)) if label == "0" else None  # the first layer only
        english = fixes + ([f"an input of {bigger[0]} (→ {bigger[1]})"] if bigger else [])
        korean = fixes + ([f"입력 {bigger[0]} (→ {bigger[1]})"] if bigger else [])
        options = " or ".join(english) if english else "a different filter size"
        korean_options = " 또는 ".join(korean) if korean else f"다른 {korean_what} 크기"
        raise GeometryError(
            f"{name}: {side} {formula(n, f, s, shown_pad)} = {_fmt(exact)} is not a whole number "
            f"({span(n, f, shown_pad)} = {n - f + p2} is not a multiple of the stride {s}), so the "
            f"{what} does not fit. Fix: {options}; or floor=true to drop the leftover as "
            f"PyTorch does (→ {floored})",
            f"{korean_name}: {'높이' if side == 'height' else '너비'} "
            f"{formula(n, f, s, shown_pad)} = {_fmt(exact)}, 정수가 아님 "
            f"({span(n, f, shown_pad)} = {n - f + p2}, 스트라이드 {s}의 배수가 아님) → "
            f"{korean_subject} 딱 맞게 들어가지 않음. 고치는 법: {korean_options}; "
            f"또는 floor=true로 PyTorch처럼 남는 부분을 버림 (→ {floored})"
        )
    return (h - kh + top + bottom) // sh + 1, (w - kw + left + right) // sw + 1


def _checked(shape: LayerShape) -> LayerShape:
    for what, value in (("values", math.prod(shape.output)), ("weights", shape.params),
                        ("multiply-adds", shape.macs), ("activation bytes",
                                                        shape.activation_bytes)):
        if value > INT64_MAX:
            raise UserError(f"layer {shape.name} {shape.layer.to_text()}: its "
                            f"{_scientific(value)} {what} overflow 64-bit counts; use smaller "
                            "sizes")
    return shape


def infer_sequence(layers: tuple["Layer", ...], input_shape: Shape, prefix: str = "",
                   receptive: Size2 | None = (1, 1), jump: Size2 = (1, 1)) -> list[LayerShape]:
    """Every layer's LayerShape for a sequence of layers on `input_shape`. Layers inside a
    block are named `prefix` + their index ("3.inner.0")."""
    result: list[LayerShape] = []
    current: Shape = tuple(input_shape)
    for index, layer in enumerate(layers):
        path = f"{prefix}{index}"
        g = layer.geometry(index, current, Place(path, receptive, jump))
        if g.paths:  # a block: its output sees what the widest of its paths sees
            ends = [rows[-1] for _, rows in g.paths if rows]
            fields = [r.receptive for r in ends] + [receptive]
            if any(f is None for f in fields):
                receptive = None
            else:
                receptive = (max(f[0] for f in fields), max(f[1] for f in fields))  # type: ignore
            jump = ends[0].jump if ends else jump
        elif g.window is not None and receptive is not None:
            (kh, kw), (sh, sw) = g.window
            receptive = (receptive[0] + (kh - 1) * jump[0], receptive[1] + (kw - 1) * jump[1])
            jump = (jump[0] * sh, jump[1] * sw)
        if len(g.output) != 3:
            receptive = None
        row = _checked(LayerShape(index, layer, current, g.output, g.padding, g.params, g.macs,
                                  receptive, jump, path, g.paths))
        result.append(row)
        current = g.output
    return result


def infer(spec: "Spec", input_shape: tuple[int, int, int] | None = None) -> list[LayerShape]:
    """Every layer's LayerShape for the network on `input_shape` (or the description's own)."""
    shape = input_shape if input_shape is not None else spec.input
    if shape is None:
        raise UserError("the input shape is unknown: give --input HxWxC (e.g. 32x32x3) or "
                        "start the description with it")
    from .spec import check_input_shape

    result = infer_sequence(spec.layers, check_input_shape(tuple(shape)))
    totals = (sum(r.params for r in result), sum(r.macs for r in result))
    if max(totals) > INT64_MAX:
        raise UserError("the network's total weights or multiply-adds overflow 64-bit counts; "
                        "use smaller sizes")
    return result


def _scientific(value: int) -> str:
    """A count of any size as 1.845e+19 (a float cannot hold every int Python can)."""
    if value >= 10**300:
        return "more than 1e+300"
    return f"{float(value):.3e}"


def format_shape(shape: Shape) -> str:
    """(28, 28, 6) → "28x28x6", the way the lecture writes shapes."""
    return "x".join(str(d) for d in shape)


