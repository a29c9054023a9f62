"""Every layer kind of the description language, one home each (see base.py for what a kind
declares). Importing this package imports every module in it, which registers its kinds: adding
a kind is adding a module here, plus one entry per engine (engines/numpy/model.py's BUILDERS,
engines/torch/build.py's MODULES). They are listed in their `order`."""

import importlib
import pkgutil

from .base import REGISTRY, WORDS, Arg, FieldError, LayerRecord, Shape, Size2, kind, usage

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
for _table in (REGISTRY, WORDS):  # in the order the kinds ask for (the README's, --help's)
    _ordered = sorted(_table.items(), key=lambda item: item[1].order)
    _table.clear()
    _table.update(_ordered)

# the lecture's kinds, by name, for the rest of convnet (any other: from its own module)
from .activation import Activation  # noqa: E402
from .batchnorm import BatchNorm  # noqa: E402
from .conv import Conv  # noqa: E402
from .dropout import Dropout  # noqa: E402
from .fc import FC, Flatten, Softmax  # noqa: E402
from .pool import Pool  # noqa: E402

Layer = LayerRecord

__all__ = ["REGISTRY", "WORDS", "Activation", "Arg", "BatchNorm", "Conv", "Dropout", "FC",
           "FieldError", "Flatten", "Layer", "LayerRecord", "Pool", "Shape", "Size2", "Softmax",
           "kind", "usage"]


def reference() -> list[tuple[str, str, str]]:
    """(how each kind is written, what it does, an example) in registry order: the README's
    layer table and the help text are made of these."""
    rows = []
    for cls in REGISTRY.values():
        written = usage(cls.names[0])
        if len(cls.names) > 1:
            written += f"; also {', '.join(cls.names[1:])}"
        rows.append((written, cls.summary, cls.example))
    return rows


def markdown_table() -> str:
    """The README's layer table, generated from the registry (tests/test_layers.py checks that
    the README holds exactly this)."""
    lines = ["| layer | what it does | example |", "| --- | --- | --- |"]
    for written, summary, example in reference():
        lines.append(f"| `{written}` | {summary} | `{example}` |")
    return "\n".join(lines)


def help_text(width: int = 79) -> str:
    """The layers, one paragraph each, for --help."""
    import textwrap

    return "\n".join(textwrap.fill(f"{written}: {summary}", width, initial_indent="  ",
                                    subsequent_indent="      ")
                     for written, summary, _ in reference())
