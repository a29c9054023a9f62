"""The description language: `conv(6,5) relu pool(2) fc(10)` parsed once into plain records.

Grammar (layers are separated by whitespace, `-` or `->` outside parentheses; `#` starts a
comment that runs to the end of the line, so a description can live in a file):

    description := [HxWxC] sequence
    sequence    := item (separator item)*
    item        := layer | N "*" layer | N "*" "(" sequence ")"       (a layer or group, N times)
    layer       := name [ "(" [argument ("," argument)*] ")" ]
    argument    := value | keyword "=" value
    value       := number | HxW | word | sequence                    (a sequence: residual's)

The layer kinds — their names, arguments and defaults — are declared in convnet/layers/, one
module each; `convnet inspect --help` and the README list them. For example:

    conv(6,5) relu pool(2) fc(10)                         the lecture's CONV–RELU–POOL–FC
    2*(conv(64,3,pad=1) relu) pool(2)                     a VGG stage: the group twice
    residual(conv(16,3,pad=1) batchnorm relu conv(16,3,pad=1) batchnorm) relu
    residual(conv(32,3,stride=2,pad=1,floor=true) batchnorm relu conv(32,3,pad=1) batchnorm,
             shortcut=conv(32,1,stride=2,floor=true) batchnorm)

`flatten` is implied before the first `fc` that follows a spatial layer, and `softmax` at the end;
repeats are written out; the parsed form holds all of it explicitly, so every consumer sees the
same, complete list. Every engine, checkpoint and page reads the records, never the string.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .errors import ParseError, UserError
from .layers import (  # noqa: F401 - the lecture's records, importable from here as before
    FC, REGISTRY, WORDS, Activation, BatchNorm, Conv, Dropout, FieldError, Flatten, LayerRecord,
    Pool, Softmax, usage,
)
from .layers.base import REQUIRED
from .shapes import Shape, Size2  # noqa: F401

Layer = LayerRecord

# Bounds on everything a description can ask for, checked before any arithmetic is done with it,
# so that no description (typed, in a file, or sent to the web page) can make convnet work for
# long or allocate much just to refuse it. Far beyond any network that trains on one machine.
MAX_NUMBER = 65_536  # every whole number: filters K, sizes F, strides S, padding P, units N, H, W, C
MAX_DIGITS = 12  # digits read from one number (Python refuses to convert past 4,300)
MAX_TEXT = 100_000  # characters in a description (a file with comments included)
MAX_LAYERS = 2_000  # layers in a network, repeats written out (ResNet-152 is about 500)
MAX_REPEAT = 1_000  # N in N*(...)
MAX_NESTING = 8  # groups and blocks inside one another

LAYER_NAMES = tuple(WORDS)  # every word a layer is written with, in the registry's order


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
            if layer.makes == "image":
                return None
        return None


# ---------------------------------------------------------------------------------------------
# Back to text and to JSON.


def layer_to_string(layer: Layer) -> str:
    """The canonical text of one layer; parsing it gives the same record back."""
    return layer.to_text()


def layer_name(layer: Layer) -> str:
    """The word a layer is written with: conv, pool, avgpool, relu, ..., softmax."""
    return layer.word()


def to_string(spec: Spec) -> str:
    """One canonical string: `32x32x3 conv(6,5) relu ...`; `parse(to_string(s)) == s`."""
    body = " ".join(layer.to_text() for layer in spec.layers)
    if spec.input is None:
        return body
    return f"{'x'.join(map(str, spec.input))} {body}"


def layer_to_json(layer: Layer) -> dict[str, Any]:
    return layer.to_json()


def to_json(spec: Spec) -> dict[str, Any]:
    return {
        "input": list(spec.input) if spec.input is not None else None,
        "layers": [layer.to_json() for layer in spec.layers],
    }


def _is_layers(hint: Any) -> bool:
    """Whether a record field holds a sequence of layers (tuple[LayerRecord, ...])."""
    args = typing.get_args(hint)
    return typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis


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


def _record_from_json(item: Any, depth: int = 0) -> Layer:
    if depth > MAX_NESTING:
        raise ValueError(f"blocks nest more than {MAX_NESTING} deep")
    item = dict(item)
    cls = REGISTRY[item.pop("type")]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in item.items():
        hint = hints.get(key)
        if hint is not None and _is_layers(hint) and isinstance(value, list):
            values[key] = tuple(_record_from_json(v, depth + 1) for v in value)
        elif hint is None or not _json_fits(value, hint):
            raise ValueError(f"{cls.type} {key} = {str(value)[:40]!r}")
        else:
            values[key] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def from_json(data: dict[str, Any]) -> Spec:
    """Rebuild a Spec from `to_json`'s output (as stored in checkpoints); validates like parse.

    The records are written back to text and parsed again: the parser is the one place where
    a record's values are checked, so a stored record of the wrong type or size (a kernel of
    one number, a 10⁹-unit layer) is refused exactly as the same text would be."""
    try:
        layers = [_record_from_json(item) for item in data["layers"]]
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
  | (?P<punct>[(),=*])
  | (?P<dims>\d+(?:[xX×]\d+)+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
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
    layers: tuple[Layer, ...] | None = None  # a sequence of layers (a residual's)


@dataclass
class _Parser:
    text: str
    tokens: list[_Token] = field(default_factory=list)
    i: int = 0
    count: int = 0  # layers so far, repeats written out (bounded by MAX_LAYERS)

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

    def counted(self, n: int, token: _Token) -> None:
        self.count += n
        if self.count > MAX_LAYERS:
            raise ParseError(f"the description has more than {MAX_LAYERS:,} layers (repeats "
                             "written out); at most that many are allowed", self.text, token.pos,
                             len(token.text))

    # -- grammar --------------------------------------------------------------------------
    def description(self) -> tuple[list[tuple[Layer, _Token]], tuple[int, int, int] | None]:
        input_shape: tuple[int, int, int] | None = None
        first = self.peek(skip_space=True)
        if first is not None and first.kind == "dims":
            self.next()
            input_shape = parse_input_shape(first.text, self.text, first.pos)
        layers = self.sequence(depth=0)
        return layers, input_shape

    def sequence(self, depth: int) -> list[tuple[Layer, _Token]]:
        """Layers up to the end (depth 0) or up to a ',' or ')' that closes a group or an
        argument (not taken)."""
        layers: list[tuple[Layer, _Token]] = []
        separated = True  # a separator has been seen since the last layer
        while (token := self.peek()) is not None:
            if depth and token.text in (",", ")"):
                break
            self.next(skip_space=False)
            if token.kind in ("space", "arrow", "dash"):
                separated = True
                continue
            if not separated:
                raise self.error(
                    f"expected a separator (a space, - or ->) before {_shown(token.text)}", token
                )
            after = self.peek(skip_space=True)
            if token.kind == "number" and after is not None and after.text == "*":
                layers += self.repeat(token, depth)
            elif token.kind == "name":
                self.counted(1, token)
                layers.append((self.layer(token, depth), token))
            elif token.kind == "dims":
                raise self.error(
                    f"an input shape such as {token.text} can only open the description", token
                )
            else:
                raise self.error(f"expected a layer name (conv, pool, relu, fc, ...), "
                                 f"found {_shown(token.text)}", token)
            separated = False
        return layers

    def repeat(self, count_token: _Token, depth: int) -> list[tuple[Layer, _Token]]:
        """N*layer or N*(layers): the layer or group written out N times."""
        if not re.fullmatch(r"\d+", count_token.text):
            raise self.error(f"a repeat count is a whole number, got {count_token.text!r}",
                             count_token)
        count = int(count_token.text) if len(count_token.text) <= MAX_DIGITS else MAX_REPEAT + 1
        if not 1 <= count <= MAX_REPEAT:
            raise self.error(f"a repeat count is 1 to {MAX_REPEAT:,}, got "
                             f"{_shown(count_token.text)}; write 3*(conv(16,3,pad=1) relu) for "
                             "three of them", count_token)
        self.next()  # '*'
        if depth + 1 > MAX_NESTING:
            raise self.error(f"groups and blocks nest at most {MAX_NESTING} deep", count_token)
        start = self.next()
        if start is not None and start.text == "(":
            group = self.sequence(depth + 1)
            close = self.next()
            if close is None or close.text != ")":
                raise self.error("expected ')' to close the repeated group", close)
            if not group:
                raise self.error("the repeated group is empty", start)
        elif start is not None and start.kind == "name":
            self.counted(1, start)
            group = [(self.layer(start, depth), start)]
        else:
            found = f", found {_shown(start.text)}" if start is not None else ""
            raise self.error(f"expected a layer or a (group) after {count_token.text}*{found}",
                             start)
        self.counted(len(group) * (count - 1), count_token)
        return group * count

    def arguments(self, name: _Token, cls: type[Layer], depth: int) -> list[_Arg]:
        token = self.peek()
        if token is None or token.text != "(":
            return []
        self.next()
        args: list[_Arg] = []
        closing = self.peek(skip_space=True)
        if closing is not None and closing.text == ")":
            self.next()
            return args
        positional = [a for a in cls.arguments if a.positional]
        by_word = {w: a for a in cls.arguments for w in (a.word, *a.aliases)}
        while True:
            start = self.next()
            if start is None or start.text in (",", ")", "("):
                raise self.error(f"expected an argument of {name.text}", start)
            keyword = None
            after = self.peek(skip_space=True)
            if start.kind == "name" and after is not None and after.text == "=":
                keyword = start.text
                self.next()  # '='
                schema = by_word.get(keyword)
            else:
                n = sum(1 for a in args if a.keyword is None)
                schema = positional[n] if n < len(positional) else None
                self.i -= 1  # the value starts at `start`
            if schema is not None and schema.read == "layers":
                if depth + 1 > MAX_NESTING:
                    raise self.error(f"groups and blocks nest at most {MAX_NESTING} deep", start)
                first = self.peek(skip_space=True)
                found = self.sequence(depth + 1)
                if not found:
                    shown = f", found {_shown(first.text)}" if first is not None else ""
                    raise self.error(f"expected layers for {keyword or schema.word} of "
                                     f"{name.text}{shown}", first)
                args.append(_Arg(keyword, first or start, start.pos,
                                 tuple(layer for layer, _ in found)))
            else:
                value = self.next()
                if value is not None and value.kind == "dash":  # a negative number
                    number = self.peek()
                    if number is not None and number.kind == "number":
                        self.next()
                        value = _Token("number", "-" + number.text, value.pos)
                if value is None or value.kind not in ("number", "dims", "name"):
                    raise self.error(f"expected a value for {keyword or 'an argument'} of "
                                     f"{name.text}", value)
                args.append(_Arg(keyword, value, start.pos))
            sep = self.next()
            if sep is not None and sep.text == ")":
                return args
            if sep is not None and sep.kind in ("number", "dims", "name"):
                raise self.error(f"separate the arguments of {name.text} with a comma: "
                                 f"{args[-1].value.text}, {sep.text}", sep)
            if sep is None or sep.text != ",":
                raise self.error(f"expected ',' or ')' in the arguments of {name.text}", sep)

    def layer(self, name: _Token, depth: int) -> Layer:
        word = name.text.lower()
        cls = WORDS.get(word)
        if cls is None:
            close = difflib.get_close_matches(word, LAYER_NAMES, n=1) if len(word) < 40 else []
            hint = f"; did you mean {close[0]}?" if close else ""
            raise self.error(f"unknown layer {_shown(name.text)}{hint} Known layers: "
                             f"{', '.join(LAYER_NAMES)}", name)
        args = self.arguments(name, cls, depth)
        return _Builder(self, name, word, cls, args).build()


@dataclass
class _Builder:
    """Turns one layer's word and raw arguments into its record, checking every value."""

    parser: _Parser
    name: _Token
    word: str
    cls: type[Layer]
    args: list[_Arg]

    def fail(self, message: str, token: _Token | None = None) -> ParseError:
        return self.parser.error(f"{self.word}: {message}", token or self.name)

    def take(self) -> dict[str, _Arg]:
        """Match arguments to the kind's schema; refuse missing, extra, repeated and unknown
        ones. Keys: each argument's word."""
        positional = [a.word for a in self.cls.arguments if a.positional]
        options = [a.word for a in self.cls.arguments if not a.positional or
                   a.default is not REQUIRED]
        aliases = {alias: a.word for a in self.cls.arguments for alias in a.aliases}
        got: dict[str, _Arg] = {}
        n_positional = 0
        seen_keyword = False
        for arg in self.args:
            if arg.keyword is None:
                if seen_keyword:
                    raise self.fail("positional argument after a keyword argument", arg.value)
                if n_positional >= len(positional):
                    want = f"{len(positional)} argument{'s' if len(positional) != 1 else ''}"
                    raise self.fail(f"extra argument {_shown(arg.value.text)}: takes {want}"
                                    f" ({usage(self.word)})", arg.value)
                got[positional[n_positional]] = arg
                n_positional += 1
                continue
            seen_keyword = True
            key = aliases.get(arg.keyword, arg.keyword)
            if key not in options and key not in positional:
                allowed = ", ".join(dict.fromkeys(positional + options)) or "none"
                raise self.fail(f"unknown option {arg.keyword!r} (allowed: {allowed})", arg.value)
            if key in got:
                raise self.fail(f"{key} is given twice", arg.value)
            got[key] = arg
        missing = [a.word for a in self.cls.arguments if a.default is REQUIRED and
                   a.word not in got]
        if missing:
            raise self.fail(f"missing {', '.join(missing)} ({usage(self.word)})")
        return got

    def read(self, arg: Any, given: _Arg) -> Any:
        token = given.value
        if arg.read == "layers":
            return given.layers
        if arg.read == "whole":
            return self.whole(token, arg.what)
        if arg.read == "whole0":
            return self.whole(token, arg.what, minimum=0)
        if arg.read == "size":
            return self.size2(token, arg.what)
        if arg.read == "pad":
            return "same" if token.text.lower() == "same" else \
                self.whole(token, arg.what, minimum=0)
        if arg.read == "flag":
            return self.flag(token, arg.what)
        if arg.read == "real":
            return self.real(token, arg.what)
        raise ValueError(f"no reader {arg.read!r}")

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
        got = self.take()
        values: dict[str, Any] = {}
        for arg in self.cls.arguments:  # in schema order, so a default may use earlier ones
            if arg.word in got:
                values[arg.name] = self.read(arg, got[arg.word])
            else:
                values[arg.name] = arg.default_for(values)
        build = getattr(self.cls, "build", None)
        try:
            return build(self.word, values) if build else self.cls(**values)
        except FieldError as e:
            token = next((given.value for arg in self.cls.arguments if arg.name == e.field
                          for key, given in got.items() if key == arg.word), None)
            raise self.fail(e.message, token) from None


USAGE = {word: usage(word) for word in WORDS}


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


# ---------------------------------------------------------------------------------------------
# The complete form: implied flattens and softmax, and what each layer's input must be.


def _complete(parser: _Parser, raw: list[tuple[Layer, _Token]], spatial: bool, floor: bool,
              top: bool) -> tuple[list[Layer], bool]:
    """The layers with the implied flatten before the first fc on an image (and, at the top,
    the softmax at the end); refuses a layer whose input is of the wrong kind. Returns the
    layers and whether their output is an image."""
    layers: list[Layer] = []
    for layer, token in raw:
        if layers and layers[-1].ends:
            raise parser.error(f"nothing can follow {layers[-1].to_text()}: it is the "
                               "classifier's end", token)
        if layer.ends and not top:
            raise parser.error(f"{token.text} ends a network; it cannot be inside a block",
                               token)
        if layer.needs == "image" and not spatial:
            if isinstance(layer, Flatten):
                raise parser.error("flatten needs an HxWxC input, but its input is already a "
                                   "vector", token)
            before = f"it follows {layers[-1].to_text()}, whose output is a vector" if layers \
                else "its input is a vector"
            raise parser.error(f"{token.text} needs an HxWxC input, but {before}", token)
        if layer.flatten_before and spatial:
            layers.append(Flatten())  # implicit: the lecture's FC after the last pool
            spatial = False
        if layer.children():
            changes = {}
            outputs = []
            for name, sequence in layer.children():
                done, makes_image = _complete(parser, [(child, token) for child in sequence],
                                              spatial, floor, top=False)
                changes[name] = tuple(done)
                if done:
                    outputs.append(makes_image)
            layer = dataclasses.replace(layer, **changes)  # type: ignore[type-var]
            spatial = outputs[0]
        elif layer.makes != "same":
            spatial = layer.makes == "image"
        if floor and layer.floors:
            layer = dataclasses.replace(layer, floor=True)  # type: ignore[type-var]
        layers.append(layer)
    return layers, spatial


def parse(text: str, floor: bool = False) -> Spec:
    """Parse a description into a Spec; `floor=True` lets every conv and pool floor (PyTorch)."""
    if not isinstance(text, str):
        raise UserError(f"a network description is a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise UserError(f"the description is {len(text):,} characters long; at most "
                        f"{MAX_TEXT:,} are read")
    parser = _Parser(text)
    raw, input_shape = parser.description()
    if not raw:
        raise UserError("the description is empty; write layers such as "
                        "conv(6,5) relu pool(2) fc(10)")
    layers, spatial = _complete(parser, raw, True, floor, top=True)
    if not layers[-1].ends:
        if spatial:
            layers.append(Flatten())
        layers.append(Softmax())
    return Spec(tuple(layers), input_shape)


def load(text_or_path: str, floor: bool = False) -> Spec:
    """Parse a description given inline, as the name of a network convnet ships (lenet5,
    resnet18, ...; `convnet inspect --list`), or as the path of a file that holds one."""
    from pathlib import Path

    from .networks import named

    shipped = named(text_or_path)
    if shipped is not None:
        return parse(shipped, floor=floor)
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
