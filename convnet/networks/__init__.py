"""The lecture's case studies as descriptions convnet ships, by name: each a readable .net file
beside this one, whose first comment line says what it is.

    convnet inspect resnet18 --explain     convnet inspect --list     convnet inspect fast94

The recipes' networks (convnet/recipes.py) go by their recipes' names too, on Fashion-MNIST's
28x28x1 and on the path (bf16 or float32) this machine's `--recipe` takes.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
NAMES = ("lenet5", "alexnet", "vgg16", "resnet18", "resnet20")


def path(name: str) -> Path:
    return HERE / f"{name}.net"


def _key(text: str) -> str:
    return text.strip().lower().replace("-", "")  # LeNet-5 → lenet5


def named(text: str) -> str | None:
    """The description of the network called `text` (lenet5, resnet18, ...; or a recipe's,
    fast91 … ensemble, on Fashion-MNIST's 28x28x1 and the path this machine takes), or None."""
    key = _key(text)
    if key in NAMES:
        return path(key).read_text(encoding="utf-8")
    from ..recipes import RECIPES, recipe

    return f"28x28x1 {recipe(key)['network']}" if key in RECIPES else None


def source(name: str) -> str | None:
    """Where the network called `name` is written: its .net file, or its recipe's entry."""
    key = _key(name)
    if key in NAMES:
        return f"convnet/networks/{path(key).name}"
    from ..recipes import RECIPES, path_for

    return f"recipe {key} in convnet/recipes.py, {path_for()[0]} path" if key in RECIPES \
        else None


def summary(name: str) -> str:
    """The first comment line of its file: what it is, its weights, its input."""
    first = path(name).read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").strip()


def listing() -> str:
    """One line per network: its name, its input, its weights, and what it is."""
    from ..recipes import RECIPES
    from ..shapes import format_shape, infer
    from ..spec import parse

    lines = []
    for name in NAMES:
        network = parse(named(name))  # type: ignore[arg-type]
        rows = infer(network)
        weights = sum(r.params for r in rows)
        lines.append(f"{name:9} {format_shape(network.input):>10}  {weights:>12,} weights  "
                     f"{summary(name).split(':')[0]}")
    # (their networks depend on the path this CPU takes, so they are named, not listed)
    lines.append(f"and the recipes' networks, on 28x28x1: {', '.join(RECIPES)} "
                 f"(convnet inspect {next(iter(RECIPES))})")
    return "\n".join(lines)
