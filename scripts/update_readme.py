"""Rewrite the README's layer table from the registry of layer kinds (convnet/layers/).

    .venv/bin/python scripts/update_readme.py

tests/test_layers.py fails when the README's table is not what this writes.
"""

from __future__ import annotations

import re
from pathlib import Path

from convnet.layers import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- the layer table: generated from convnet/layers/ by scripts/update_readme.py -->\n"
END = "\n<!-- end of the layer table -->"


def table_in(text: str) -> str:
    found = re.search(re.escape(START) + "(.*?)" + re.escape(END), text, flags=re.S)
    if found is None:
        raise SystemExit("the README has no layer table markers")
    return found.group(1)


def main() -> None:
    text = README.read_text(encoding="utf-8")
    old = table_in(text)
    README.write_text(text.replace(START + old + END, START + markdown_table() + END),
                      encoding="utf-8")
    print("README.md: layer table " + ("unchanged" if old == markdown_table() else "rewritten"))


if __name__ == "__main__":
    main()
