"""The lecture's case studies as descriptions convnet ships, by name: each a readable .net file
beside this one, whose first comment line says what it is.

    convnet inspect resnet18 --explain     convnet inspect --list
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
NAMES = ("lenet5", "alexnet", "vgg16", "resnet18", "resnet20")


def path(name: str) -> Path:
    return HERE / f"{name}.net"


def named(text: str) -> str | None:
    """The description of the network called `text` (lenet5, resnet18, ...), or None."""
    key = text.strip().lower().replace("-", "")
    return path(key).read_text(encoding="utf-8") if key in NAMES else None


def summary(name: str) -> str:
    """The first comment line of its file: what it is, its weights, its input."""
    first = path(name).read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").strip()


def listing() -> str:
    """One line per network: its name, its input, its weights, and what it is."""
    from ..shapes import format_shape, infer
    from ..spec import parse

    lines = []
    for name in NAMES:
        network = parse(named(name))  # type: ignore[arg-type]
        rows = infer(network)
        weights = sum(r.params for r in rows)
        lines.append(f"{name:9} {format_shape(network.input):>10}  {weights:>12,} weights  "
                     f"{summary(name).split(':')[0]}")
    return "\n".join(lines)
