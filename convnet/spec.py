"""The description language: `conv(6,5) relu pool(2) fc(10)` parsed once into plain records.

Grammar (layers are separated by whitespace, `-` or `->` outside parentheses; `#` starts a
comment that runs to the end of the line, so a description can live in a file):

    description := [HxWxC] layer (separator layer)*
    layer       := name [ "(" [argument ("," argument)*] ")" ]
    argument    := value | keyword "=" value
    value       := number | HxW | word

Layers (K filters, F×F or H×W kernel, stride S, zero padding P, as in the lecture):

    conv(K, F)  conv(K, HxW, stride=S, pad=P|same, bias=true, floor=false)
    pool(F)  pool(F, stride=S)  avgpool(F, stride=S)      (stride defaults to F)
    relu  sigmoid  tanh  dropout(p)  batchnorm  flatten  fc(N, bias=true)  softmax

`flatten` is implied before the first `fc` that follows a spatial layer, and `softmax` at the end;
the parsed form holds them explicitly, so every consumer sees the same, complete list. Every
engine, checkpoint and page reads the records below, never the string.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, Union

from .errors import ParseError, UserError

Size2 = tuple[int, int]  # (height, width)
Shape = tuple[int, ...]  # (H, W, C) for images and activation volumes, (N,) for vectors

# Bounds on everything a description can ask for, checked before any arithmetic is done with it,
# so that no description (typed, in a file, or sent to the web page) can make convnet work for
# long or allocate much just to refuse it. Far beyond any network that trains on one machine.
MAX_NUMBER = 65_536  # every whole number: filters K, sizes F, strides S, padding P, units N, H, W, C
MAX_DIGITS = 12  # digits read from one number (Python refuses to convert past 4,300)
MAX_TEXT = 100_000  # characters in a description (a file with comments included)
MAX_LAYERS = 2_000  # layers in a network (ResNet-152 written out is about 500)


# ---------------------------------------------------------------------------------------------
# The records: one frozen dataclass per layer type.


@dataclass(frozen=True)
class Conv:
    """K filters of size kh×kw×(input depth); at each position one number W·x + b."""

    filters: int  # K
    kernel: Size2  # (kh, kw)
    stride: Size2 = (1, 1)  # (sh, sw)
    pad: int | Literal["same"] = 0  # zero padding on every side, or "same" (output = input size)
    bias: bool = True
    floor: bool = False  # accept a stride that doesn't fit by flooring, as PyTorch does
    type: ClassVar[str] = "conv"


@dataclass(frozen=True)
class Pool:
    """Max or average pooling of each activation map on its own (the lecture's "sampling")."""

    kind: Literal["max", "avg"]
    kernel: Size2
    stride: Size2  # defaults to the kernel: non-overlapping windows
    floor: bool = False
    type: ClassVar[str] = "pool"


@dataclass(frozen=True)
class Activation:
    name: Literal["relu", "sigmoid", "tanh"]
    type: ClassVar[str] = "activation"


@dataclass(frozen=True)
class Dropout:
    p: float  # probability of zeroing a value during training (inverted dropout)
    type: ClassVar[str] = "dropout"


@dataclass(frozen=True)
class BatchNorm:
    eps: float = 1e-5  # PyTorch's and Keras' default
    momentum: float = 0.1  # PyTorch's convention: running = (1 - m)·running + m·batch
    type: ClassVar[str] = "batchnorm"


@dataclass(frozen=True)
class Flatten:
    """H×W×C → H·W·C, in PyTorch's channel-major (C, H, W) order so weights load unchanged."""

    type: ClassVar[str] = "flatten"


@dataclass(frozen=True)
class FC:
    units: int
    bias: bool = True
    type: ClassVar[str] = "fc"


@dataclass(frozen=True)
class Softmax:
    type: ClassVar[str] = "softmax"


Layer = Union[Conv, Pool, Activation, Dropout, BatchNorm, Flatten, FC, Softmax]
SPATIAL_ONLY = (Conv, Pool)  # layers that need an H×W×C input


@dataclass(frozen=True)
class Spec:
    """A parsed network: its layers, and the input shape when the description gives one."""

    layers: tuple[Layer, ...]
    input: tuple[int, int, int] | None = None

    def __str__(self) -> str:
        return to_string(self)

    def with_input(self, input_shape: tuple[int, int, int] | None) -> "Spec":
        """This network on `input_shape` (None keeps the current one)."""
        return Spec(self.layers, input_shape if input_shape is not None else self.input)

    def without_input(self) -> "Spec":
        return Spec(self.layers, None)

    @property
    def num_classes(self) -> int | None:
        """Units of the last fc layer (the classes the softmax chooses between), if there is one."""
        for layer in reversed(self.layers):
            if isinstance(layer, FC):
                return layer.units
            if isinstance(layer, (Conv, Pool)):
                return None
        return None


# ---------------------------------------------------------------------------------------------
# Back to text and to JSON.


def _size(size: Size2) -> str:
    return str(size[0]) if size[0] == size[1] else f"{size[0]}x{size[1]}"


def _number(value: float) -> str:
    return repr(float(value))


def layer_to_string(layer: Layer) -> str:
    """The canonical text of one layer; parsing it gives the same record back."""
    if isinstance(layer, Conv):
        args = [str(layer.filters), _size(layer.kernel)]
        if layer.stride != (1, 1):
            args.append(f"stride={_size(layer.stride)}")
        if layer.pad != 0:
            args.append(f"pad={layer.pad}")
        if not layer.bias:
            args.append("bias=false")
        if layer.floor:
            args.append("floor=true")
        return f"conv({','.join(args)})"
    if isinstance(layer, Pool):
        args = [_size(layer.kernel)]
        if layer.stride != layer.kernel:
            args.append(f"stride={_size(layer.stride)}")
        if layer.floor:
            args.append("floor=true")
        return f"{'pool' if layer.kind == 'max' else 'avgpool'}({','.join(args)})"
    if isinstance(layer, Activation):
        return layer.name
    if isinstance(layer, Dropout):
        return f"dropout({_number(layer.p)})"
    if isinstance(layer, BatchNorm):
        args = []
        if layer.eps != 1e-5:
            args.append(f"eps={_number(layer.eps)}")
        if layer.momentum != 0.1:
            args.append(f"momentum={_number(layer.momentum)}")
        return f"batchnorm({','.join(args)})" if args else "batchnorm"
    if isinstance(layer, FC):
        return f"fc({layer.units})" if layer.bias else f"fc({layer.units},bias=false)"
    if isinstance(layer, Flatten):
        return "flatten"
    if isinstance(layer, Softmax):
        return "softmax"
    raise TypeError(f"not a layer record: {layer!r}")


def layer_name(layer: Layer) -> str:
    """The word a layer is written with: conv, pool, avgpool, relu, ..., softmax."""
    if isinstance(layer, Pool):
        return "pool" if layer.kind == "max" else "avgpool"
    if isinstance(layer, Activation):
        return layer.name
    return layer.type


def to_string(spec: Spec) -> str:
    """One canonical string: `32x32x3 conv(6,5) relu ...`; `parse(to_string(s)) == s`."""
    body = " ".join(layer_to_string(layer) for layer in spec.layers)
    if spec.input is None:
        return body
    return f"{'x'.join(map(str, spec.input))} {body}"


def layer_to_json(layer: Layer) -> dict[str, Any]:
    out: dict[str, Any] = {"type": layer.type}
    for f in fields(layer):
        value = getattr(layer, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def to_json(spec: Spec) -> dict[str, Any]:
    return {
        "input": list(spec.input) if spec.input is not None else None,
        "layers": [layer_to_json(layer) for layer in spec.layers],
    }


_RECORDS: dict[str, type] = {
    "conv": Conv, "pool": Pool, "activation": Activation, "dropout": Dropout,
    "batchnorm": BatchNorm, "flatten": Flatten, "fc": FC, "softmax": Softmax,
}


def _json_fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has a record field's declared type (int is not bool; a tuple is a
    list of the same length; a Literal one of its values)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (Union, types.UnionType):
        return any(_json_fits(value, a) for a in args)
    if origin is tuple:
        return isinstance(value, list) and len(value) == len(args) and \
            all(_json_fits(v, a) for v, a in zip(value, args))
    return False


def from_json(data: dict[str, Any]) -> Spec:
    """Rebuild a Spec from `to_json`'s output (as stored in checkpoints); validates like parse.

    The records are written back to text and parsed again: the parser is the one place where
    a record's values are checked, so a stored record of the wrong type or size (a kernel of
    one number, a 10⁹-unit layer) is refused exactly as the same text would be."""
    try:
        layers = []
        for item in data["layers"]:
            item = dict(item)
            cls = _RECORDS[item.pop("type")]
            hints = typing.get_type_hints(cls)
            for key, value in item.items():
                if key not in hints or not _json_fits(value, hints[key]):
                    raise ValueError(f"{cls.type} {key} = {str(value)[:40]!r}")
            kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in item.items()}
            layers.append(cls(**kwargs))
        input_shape = tuple(data["input"]) if data.get("input") is not None else None
        spec = Spec(tuple(layers), input_shape)  # type: ignore[arg-type]
        text = to_string(spec)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise UserError(f"not a valid network description in JSON: {type(e).__name__} "
                        f"{str(e)[:120]}") from None
    try:
        return parse(text)
    except UserError as e:
        raise UserError(f"not a valid network description in JSON: {e.message}") from None


# ---------------------------------------------------------------------------------------------
# The parser.

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<arrow>->|→)
  | (?P<dash>-)
  | (?P<punct>[(),=])
  | (?P<dims>\d+(?:[xX×]\d+)+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)

LAYER_NAMES = (
    "conv", "pool", "maxpool", "avgpool", "relu", "sigmoid", "tanh",
    "dropout", "batchnorm", "flatten", "fc", "softmax",
)


@dataclass
class _Token:
    kind: str
    text: str
    pos: int


@dataclass
class _Arg:
    keyword: str | None
    value: _Token  # a number, dims or name token (a negative number keeps its '-')
    pos: int


@dataclass
class _Parser:
    text: str
    tokens: list[_Token] = field(default_factory=list)
    i: int = 0

    def __post_init__(self) -> None:
        pos = 0
        while pos < len(self.text):
            m = _TOKEN.match(self.text, pos)
            if m is None:
                raise ParseError(
                    f"unexpected character {self.text[pos]!r} at column {pos + 1}; "
                    "a description is layers such as conv(6,5) relu pool(2) fc(10)",
                    self.text, pos,
                )
            kind = m.lastgroup or ""
            if kind == "dims":
                text = re.sub("[X×]", "x", m.group())
            else:
                text = m.group()
            self.tokens.append(_Token(kind, text, pos))
            pos = m.end()

    # -- token helpers --------------------------------------------------------------------
    def peek(self, skip_space: bool = False) -> _Token | None:
        j = self.i
        while skip_space and j < len(self.tokens) and self.tokens[j].kind == "space":
            j += 1
        return self.tokens[j] if j < len(self.tokens) else None

    def next(self, skip_space: bool = True) -> _Token | None:
        while skip_space and self.i < len(self.tokens) and self.tokens[self.i].kind == "space":
            self.i += 1
        if self.i >= len(self.tokens):
            return None
        self.i += 1
        return self.tokens[self.i - 1]

    def error(self, message: str, token: _Token | None) -> ParseError:
        if token is None:
            return ParseError(message + " but the description ends", self.text, len(self.text))
        return ParseError(message, self.text, token.pos, len(token.text))

    # -- grammar --------------------------------------------------------------------------
    def parse(self) -> tuple[list[tuple[Layer, _Token]], tuple[int, int, int] | None]:
        layers: list[tuple[Layer, _Token]] = []
        input_shape: tuple[int, int, int] | None = None
        separated = True  # a separator has been seen since the last layer
        while (token := self.next(skip_space=False)) is not None:
            if token.kind in ("space", "arrow", "dash"):
                separated = True
                continue
            if not separated:
                raise self.error(
                    f"expected a separator (a space, - or ->) before {_shown(token.text)}", token
                )
            if token.kind == "dims" and not layers and input_shape is None:
                input_shape = parse_input_shape(token.text, self.text, token.pos)
            elif token.kind == "name":
                layers.append((self.layer(token), token))
            elif token.kind == "dims":
                raise self.error(
                    f"an input shape such as {token.text} can only open the description", token
                )
            else:
                raise self.error(f"expected a layer name (conv, pool, relu, fc, ...), "
                                 f"found {_shown(token.text)}", token)
            separated = False
        return layers, input_shape

    def arguments(self, name: _Token) -> list[_Arg]:
        token = self.peek()
        if token is None or token.text != "(":
            return []
        self.next()
        args: list[_Arg] = []
        closing = self.peek(skip_space=True)
        if closing is not None and closing.text == ")":
            self.next()
            return args
        while True:
            start = self.next()
            if start is None or start.text in (",", ")", "("):
                raise self.error(f"expected an argument of {name.text}", start)
            keyword = None
            after = self.peek(skip_space=True)
            if start.kind == "name" and after is not None and after.text == "=":
                keyword = start.text
                self.next()  # '='
                value = self.next()
            else:
                value = start
            if value is not None and value.kind == "dash":  # a negative number
                number = self.peek()
                if number is not None and number.kind == "number":
                    self.next()
                    value = _Token("number", "-" + number.text, value.pos)
            if value is None or value.kind not in ("number", "dims", "name"):
                raise self.error(f"expected a value for {keyword or 'an argument'} of {name.text}",
                                 value)
            args.append(_Arg(keyword, value, start.pos))
            sep = self.next()
            if sep is not None and sep.text == ")":
                return args
            if sep is not None and sep.kind in ("number", "dims", "name"):
                raise self.error(f"separate the arguments of {name.text} with a comma: "
                                 f"{value.text}, {sep.text}", sep)
            if sep is None or sep.text != ",":
                raise self.error(f"expected ',' or ')' in the arguments of {name.text}", sep)

    def layer(self, name: _Token) -> Layer:
        args = self.arguments(name)
        kind = name.text.lower()
        if kind not in LAYER_NAMES:
            close = difflib.get_close_matches(kind, LAYER_NAMES, n=1) if len(kind) < 40 else []
            hint = f"; did you mean {close[0]}?" if close else ""
            raise self.error(f"unknown layer {_shown(name.text)}{hint} Known layers: "
                             f"{', '.join(LAYER_NAMES)}", name)
        return _Builder(self, name, kind, args).build()


@dataclass
class _Builder:
    """Turns one layer's name and raw arguments into its record, checking every value."""

    parser: _Parser
    name: _Token
    kind: str
    args: list[_Arg]

    def fail(self, message: str, token: _Token | None = None) -> ParseError:
        return self.parser.error(f"{self.kind}: {message}", token or self.name)

    def take(self, positional: list[str], options: tuple[str, ...]) -> dict[str, _Token]:
        """Match arguments to names; refuse missing, extra, repeated and unknown ones.

        `options` are the names that may be given as keyword=value and have defaults."""
        got: dict[str, _Token] = {}
        n_positional = 0
        seen_keyword = False
        for arg in self.args:
            if arg.keyword is None:
                if seen_keyword:
                    raise self.fail("positional argument after a keyword argument", arg.value)
                if n_positional >= len(positional):
                    want = f"{len(positional)} argument{'s' if len(positional) != 1 else ''}"
                    raise self.fail(f"extra argument {_shown(arg.value.text)}: takes {want}"
                                    f" ({USAGE[self.kind]})", arg.value)
                got[positional[n_positional]] = arg.value
                n_positional += 1
                continue
            seen_keyword = True
            key = "pad" if arg.keyword == "padding" else arg.keyword
            if key not in options and key not in positional:
                allowed = ", ".join(dict.fromkeys(positional + list(options))) or "none"
                raise self.fail(f"unknown option {arg.keyword!r} (allowed: {allowed})", arg.value)
            if key in got:
                raise self.fail(f"{key} is given twice", arg.value)
            got[key] = arg.value
        missing = [p for p in positional if p not in got and p not in options]
        if missing:
            raise self.fail(f"missing {', '.join(missing)} ({USAGE[self.kind]})")
        return got

    def whole(self, token: _Token, what: str, minimum: int = 1) -> int:
        if token.kind != "number" or not re.fullmatch(r"-?\d+", token.text):
            raise self.fail(f"{what} must be a whole number, got {_shown(token.text)}", token)
        try:
            value = bounded_whole(token.text, what, minimum)
        except UserError as e:
            raise self.fail(e.message, token) from None
        return value

    def size2(self, token: _Token, what: str) -> Size2:
        if token.kind == "dims":
            texts = token.text.split("x")
            if len(texts) != 2:
                raise self.fail(f"{what} is F or HxW (the depth comes from the input), "
                                f"got {_shown(token.text)}", token)
            if any(len(t.lstrip("0")) <= MAX_DIGITS and int(t) < 1 for t in texts):
                raise self.fail(f"{what} must be positive, got {_shown(token.text)}", token)
            try:
                height, width = (bounded_whole(t, what, 1) for t in texts)
            except UserError as e:
                raise self.fail(e.message, token) from None
            return height, width
        value = self.whole(token, what)
        return value, value

    def flag(self, token: _Token, what: str) -> bool:
        text = token.text.lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise self.fail(f"{what} is true or false, got {_shown(token.text)}", token)

    def real(self, token: _Token, what: str) -> float:
        if token.kind != "number":
            raise self.fail(f"{what} must be a number, got {_shown(token.text)}", token)
        value = float(token.text)  # floats have no digit limit; 1e999 reads as inf
        if not math.isfinite(value):
            raise self.fail(f"{what} must be a finite number, got {_shown(token.text)}", token)
        return value

    def build(self) -> Layer:
        kind = self.kind
        if kind == "conv":
            got = self.take(["filters", "size"], ("stride", "pad", "bias", "floor"))
            pad: int | Literal["same"] = 0
            if "pad" in got:
                token = got["pad"]
                if token.text.lower() == "same":
                    pad = "same"
                else:
                    pad = self.whole(token, "pad", minimum=0)
            stride = self.size2(got["stride"], "stride") if "stride" in got else (1, 1)
            if pad == "same" and stride != (1, 1):
                raise self.fail("pad=same needs stride=1 (as in PyTorch); write pad=P with a "
                                "number instead", got["pad"])
            return Conv(
                filters=self.whole(got["filters"], "the number of filters K"),
                kernel=self.size2(got["size"], "the filter size F"),
                stride=stride,
                pad=pad,
                bias=self.flag(got["bias"], "bias") if "bias" in got else True,
                floor=self.flag(got["floor"], "floor") if "floor" in got else False,
            )
        if kind in ("pool", "maxpool", "avgpool"):
            got = self.take(["size"], ("stride", "floor"))
            kernel = self.size2(got["size"], "the window size F")
            stride = self.size2(got["stride"], "stride") if "stride" in got else kernel
            return Pool(
                kind="avg" if kind == "avgpool" else "max",
                kernel=kernel,
                stride=stride,
                floor=self.flag(got["floor"], "floor") if "floor" in got else False,
            )
        if kind in ("relu", "sigmoid", "tanh"):
            self.take([], ())
            return Activation(kind)  # type: ignore[arg-type]
        if kind == "dropout":
            got = self.take(["p"], ("p",))
            p = self.real(got["p"], "p") if "p" in got else 0.5
            if not 0.0 <= p < 1.0:
                raise self.fail(f"p is a probability in [0, 1), got {got['p'].text}", got["p"])
            return Dropout(p)
        if kind == "batchnorm":
            got = self.take([], ("eps", "momentum"))
            eps = self.real(got["eps"], "eps") if "eps" in got else 1e-5
            momentum = self.real(got["momentum"], "momentum") if "momentum" in got else 0.1
            if eps <= 0:
                raise self.fail(f"eps must be positive, got {got['eps'].text}", got["eps"])
            if not 0.0 <= momentum <= 1.0:
                raise self.fail(f"momentum is in [0, 1], got {got['momentum'].text}",
                                got["momentum"])
            return BatchNorm(eps, momentum)
        if kind == "fc":
            got = self.take(["units"], ("bias",))
            return FC(
                units=self.whole(got["units"], "the number of units N"),
                bias=self.flag(got["bias"], "bias") if "bias" in got else True,
            )
        if kind == "flatten":
            self.take([], ())
            return Flatten()
        self.take([], ())
        return Softmax()


USAGE = {
    "conv": "conv(K, F) or conv(K, HxW, stride=S, pad=P)",
    "pool": "pool(F) or pool(F, stride=S)",
    "maxpool": "maxpool(F) or maxpool(F, stride=S)",
    "avgpool": "avgpool(F) or avgpool(F, stride=S)",
    "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh",
    "dropout": "dropout(p)", "batchnorm": "batchnorm",
    "flatten": "flatten", "fc": "fc(N)", "softmax": "softmax",
}

def _shown(text: str, limit: int = 40) -> str:
    """A token quoted in a message, shortened when it is long (a 5,000-digit number)."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit // 2] + "…") + f" ({len(text):,} characters)"


def bounded_whole(text: str, what: str, minimum: int = 1) -> int:
    """A whole number written in `text`, between `minimum` and MAX_NUMBER; the digits are
    counted before they are converted, so a number of any length is refused at once."""
    digits = text.lstrip("-+")
    if len(digits.lstrip("0")) > MAX_DIGITS:
        raise UserError(f"{what} must be at most {MAX_NUMBER:,}, got a number of "
                        f"{len(digits):,} digits")
    value = int(text)
    if value < minimum:
        bound = "positive" if minimum == 1 else f"at least {minimum}"
        raise UserError(f"{what} must be {bound}, got {value}")
    if value > MAX_NUMBER:
        raise UserError(f"{what} must be at most {MAX_NUMBER:,}, got {value:,}")
    return value


def check_input_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """An input shape given as numbers (a library caller's tuple): HxWxC, each 1 to MAX_NUMBER."""
    if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
        raise UserError(f"input shape {shape!r} is not HxWxC: three whole numbers")
    for value, what in zip(shape, ("height", "width", "channels")):
        if not 1 <= value <= MAX_NUMBER:
            raise UserError(f"input {what} must be between 1 and {MAX_NUMBER:,}, got {value:,}")
    return shape[0], shape[1], shape[2]


_INPUT = re.compile(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*[xX×]\s*(\d+)\s*")


def parse_input_shape(text: str, context: str | None = None, pos: int = 0) -> tuple[int, int, int]:
    """`32x32x3` → (32, 32, 3): height, width, channels, as the lecture writes it."""
    m = _INPUT.fullmatch(text)
    try:
        if m is None:
            numbers = re.findall(r"\d+", text)
            written = "x".join(numbers) if len(numbers) == 3 and len(text) < 100 else None
            hint = (f"; write it with x: {written}" if written else
                    " (e.g. 32x32x3 for colour, 28x28x1 for grey)")
            raise UserError(f"input shape {_shown(text.strip())} is not HxWxC with positive "
                            f"whole numbers{hint}")
        for group, what in zip(m.groups(), ("height", "width", "channels")):
            bounded_whole(group, f"input {what}")
    except UserError as e:
        if context is not None:
            raise ParseError(e.message, context, pos, len(text)) from None
        raise
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def parse(text: str, floor: bool = False) -> Spec:
    """Parse a description into a Spec; `floor=True` lets every conv and pool floor (PyTorch)."""
    if not isinstance(text, str):
        raise UserError(f"a network description is a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise UserError(f"the description is {len(text):,} characters long; at most "
                        f"{MAX_TEXT:,} are read")
    parser = _Parser(text)
    raw, input_shape = parser.parse()
    if not raw:
        raise UserError("the description is empty; write layers such as "
                        "conv(6,5) relu pool(2) fc(10)")
    if len(raw) > MAX_LAYERS:
        raise UserError(f"the description has {len(raw):,} layers; at most {MAX_LAYERS:,} are "
                        "allowed")

    layers: list[Layer] = []
    spatial = True  # the input is an image; flatten and fc turn it into a vector
    for layer, token in raw:
        if layers and isinstance(layers[-1], Softmax):
            raise parser.error("nothing can follow softmax: it is the classifier's end", token)
        if isinstance(layer, SPATIAL_ONLY) and not spatial:
            raise parser.error(f"{token.text} needs an HxWxC input, but it follows "
                               f"{layer_to_string(layers[-1])}, whose output is a vector", token)
        if isinstance(layer, Flatten) and not spatial:
            raise parser.error("flatten needs an HxWxC input, but its input is already a vector",
                               token)
        if isinstance(layer, FC) and spatial:
            layers.append(Flatten())  # implicit: the lecture's FC after the last pool
            spatial = False
        if isinstance(layer, Softmax) and spatial:
            layers.append(Flatten())
            spatial = False
        if isinstance(layer, (FC, Flatten)):
            spatial = False
        if floor and isinstance(layer, (Conv, Pool)):
            layer = _with(layer, floor=True)
        layers.append(layer)
    if not isinstance(layers[-1], Softmax):
        if spatial:
            layers.append(Flatten())
        layers.append(Softmax())
    return Spec(tuple(layers), input_shape)


def _with(record: Any, **changes: Any) -> Any:
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    values.update(changes)
    return type(record)(**values)


def load(text_or_path: str, floor: bool = False) -> Spec:
    """Parse a description given inline or as the path of a file that holds one."""
    from pathlib import Path

    candidate = Path(text_or_path)
    looks_like_file = "(" not in text_or_path and (
        text_or_path.endswith((".txt", ".net", ".convnet")) or "/" in text_or_path
    )
    try:
        is_file = candidate.is_file()
    except OSError:
        is_file = False
    if is_file:
        try:
            text = candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read the description file {text_or_path}: {e}") from None
        return parse(text, floor=floor)
    if looks_like_file:
        raise UserError(f"no description file {text_or_path!r}")
    return parse(text_or_path, floor=floor)
