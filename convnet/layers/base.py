"""What every layer kind declares, in one place: its record, its arguments, its words.

A kind is a frozen dataclass (the record the description is parsed into) that subclasses
`LayerRecord` and is registered with `@kind`. Everything about the kind lives on the class:

    names       the words it is written with ("pool", "maxpool")
    order       where it is listed among the kinds
    arguments   its argument schema: how each is written, read, defaulted (parse and text)
    usage       the usage line shown in errors and --help ("{name}(F) or {name}(F, stride=S)")
    summary     one line for the README's layer table and --help
    example     a short description that uses it, on `example_input`
    needs       what its input must be: "image" (H×W×C), "vector" or "any"
    makes       what its output is: "image", "vector" or "same" (as its input)
    __post_init__   the checks that involve several arguments (pad=same needs stride 1)
    geometry()  its shape rule, through the pure functions of convnet/shapes.py
    explain()   its arithmetic in words, English and Korean (inspect --explain)

The parser, the canonical text, the JSON form, the README's layer table and the help text are
all derived from these declarations; each engine maps kinds to its implementation in one table
beside its layer classes (engines/numpy/model.py, engines/torch/build.py), and a test lists
whatever a kind lacks (tests/test_layers.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from ..errors import UserError
from ..shapes import Shape, Size2

if TYPE_CHECKING:
    from ..shapes import Geometry, LayerShape, Place

REQUIRED = object()  # an argument without a default


class FieldError(UserError):
    """A record's check failed on one argument: the parser points its caret at that one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Arg:
    """One argument as written: `word` (keyword and name in messages), the record `field` it
    fills, how its text is `read` (a reader of spec.py's: whole, whole0, size, pad, flag, real,
    layers), `what` it is in messages, and its default (a value, REQUIRED, or a function of the
    values read so far, as pool's stride defaults to its size)."""

    word: str
    read: str
    what: str = ""
    default: Any = REQUIRED
    positional: bool = False
    field: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.field or self.word

    def default_for(self, values: dict[str, Any]) -> Any:
        return self.default(values) if callable(self.default) else self.default


class LayerRecord:
    """The base of every layer record (a frozen dataclass registered with `@kind`)."""

    type: ClassVar[str]
    order: ClassVar[float]  # where it is listed (README, --help, "known layers")
    names: ClassVar[tuple[str, ...]]
    arguments: ClassVar[tuple[Arg, ...]] = ()
    usage: ClassVar[str]
    summary: ClassVar[str]
    example: ClassVar[str]
    example_input: ClassVar[Shape] = (8, 8, 3)
    needs: ClassVar[str] = "any"  # image | vector | any
    makes: ClassVar[str] = "same"  # image | vector | same
    flatten_before: ClassVar[bool] = False  # a flatten is implied before it on an image
    ends: ClassVar[bool] = False  # nothing may follow it (softmax)
    init_looks_through: ClassVar[bool] = False  # weight init sees past it to the activation
    floors: ClassVar[bool] = False  # has a floor=true option (the --floor flag sets it)

    # -- text ----------------------------------------------------------------------------------
    def word(self) -> str:
        """The word it is written with in canonical text."""
        return self.names[0]

    def to_text(self) -> str:
        """The canonical text; parsing it gives the same record back."""
        values = {arg.name: getattr(self, arg.name) for arg in self.arguments}
        written = []
        for arg in self.arguments:
            value = values[arg.name]
            if arg.positional:
                written.append(format_value(value))
            elif value != arg.default_for(values):
                written.append(f"{arg.word}={format_value(value)}")
        return f"{self.word()}({','.join(written)})" if written else self.word()

    def short_text(self) -> str:
        """Its text for a title: a block's says how many layers it holds, not all of them."""
        if not self.children():
            return self.to_text()
        sizes = [f"{len(layers)} layers" if name == "inner" else f"{name} {len(layers)}"
                 for name, layers in self.children() if layers]
        return f"{self.word()}({', '.join(sizes)})"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):  # type: ignore[arg-type]
            out[f.name] = json_value(getattr(self, f.name))
        return out

    # -- arithmetic (overridden by each kind) ----------------------------------------------------
    def geometry(self, index: int, input_shape: Shape, place: "Place") -> "Geometry":
        raise NotImplementedError

    def explain(self, info: "LayerShape", lang: str) -> str:
        """What the layer does to its input, in words, before '→ output; weights'."""
        raise NotImplementedError

    def children(self) -> tuple[tuple[str, tuple["LayerRecord", ...]], ...]:
        """Named sequences of layers inside this one (a residual block's paths), or ()."""
        return ()


def format_value(value: Any) -> str:
    """An argument's value as the language writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"
    if isinstance(value, tuple):  # a sequence of layers
        return " ".join(layer.to_text() for layer in value)
    return str(value)


def json_value(value: Any) -> Any:
    if isinstance(value, tuple) and value and isinstance(value[0], LayerRecord):
        return [layer.to_json() for layer in value]
    return list(value) if isinstance(value, tuple) else value


REGISTRY: dict[str, type[LayerRecord]] = {}  # record type name → record class
WORDS: dict[str, type[LayerRecord]] = {}  # every word a layer is written with → record class


def kind(cls: type[LayerRecord]) -> type[LayerRecord]:
    """Register a layer kind: its type name and every word it is written with."""
    if cls.type in REGISTRY:
        raise ValueError(f"two kinds named {cls.type!r}")
    REGISTRY[cls.type] = cls
    for word in cls.names:
        if word in WORDS:
            raise ValueError(f"the word {word!r} names two kinds")
        WORDS[word] = cls
    return cls


def usage(word: str) -> str:
    return WORDS[word].usage.format(name=word)


def number(value: float) -> str:
    """A float argument as a message quotes it: 1 for 1.0, -0.1, 0.3."""
    return f"{value:g}"


Builder = Callable[..., LayerRecord]
