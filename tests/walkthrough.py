"""Reading and running the console blocks of a walkthrough document (docs/lecture11*.md).

A block is fenced as ```console; in it, a line starting "$ " is a command (a trailing "\\" joins
the next line) and the lines up to the next command are its output, stdout and stderr together.
An HTML comment <!-- varies --> just before the fence marks a block whose numbers differ from
run to run (training): there a number matches any number, a percentage must be within
PERCENT_POINTS of the one shown, and a duration may take any length.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PERCENT_POINTS = 3.0
NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?"


@dataclass
class Command:
    text: str  # the command as written, continuation lines joined
    expected: list[str]  # the output lines shown
    varies: bool
    line: int  # 1-based line of the "$ " in the document
    span: tuple[int, int] = (0, 0)  # document lines [start, end) of the output, for rewriting


@dataclass
class Document:
    path: Path
    lines: list[str]
    commands: list[Command] = field(default_factory=list)


def read(path: Path) -> Document:
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = Document(path, lines)
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        varies = before == "<!-- varies -->"
        i += 1
        current: Command | None = None
        while i < len(lines) and lines[i].strip() != "```":
            if lines[i].startswith("$ "):
                if current:
                    current.span = (current.span[0], i)
                    doc.commands.append(current)
                start, text = i, lines[i][2:]
                while text.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text[:-1] + " " + lines[i].strip()
                current = Command(text.strip(), [], varies, start + 1, (i + 1, i + 1))
            elif current is not None:
                current.expected.append(lines[i])
            i += 1
        if current:
            current.span = (current.span[0], i)
            doc.commands.append(current)
        i += 1
    return doc


def run(command: str, workdir: Path, venv_bin: Path, timeout: float = 900) -> list[str]:
    """Runs one command as a learner's shell would, stdout and stderr together."""
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
           "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0", "COLUMNS": "100"}
    done = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return [line.rstrip() for line in done.stdout.rstrip("\n").splitlines()]


def _pattern(expected: str) -> tuple[re.Pattern[str], list[float | None]]:
    """A regex for a varying line: numbers are wildcards; percentages are kept to compare."""
    parts, percents = [], []
    position = 0
    duration = re.compile(rf"(?:{NUMBER} min )?{NUMBER} s\b")
    # a negative term is written (-0.12): its sign, and so its brackets, may change
    token = re.compile(rf"{duration.pattern}|\({NUMBER}\)|{NUMBER}%?")
    for found in token.finditer(expected):
        parts.append(re.escape(expected[position:found.start()]))
        text = found.group(0)
        if text.endswith(" s") or " min " in text:
            parts.append(rf"(?:{NUMBER} min )?{NUMBER} s")
        elif text.endswith("%"):
            parts.append(f"({NUMBER})%")
            percents.append(float(text[:-1].replace(",", "")))
        else:
            parts.append(rf"(?:\({NUMBER}\)|{NUMBER})")
        position = found.end()
    parts.append(re.escape(expected[position:]))
    return re.compile("".join(parts)), percents


def matches(command: Command, actual: list[str]) -> str | None:
    """None when the output is as shown; else what differs."""
    expected = [line.rstrip() for line in command.expected]
    if not command.varies:
        if actual == expected:
            return None
        for n, (a, e) in enumerate(zip(actual, expected)):
            if a != e:
                return f"output line {n + 1}: shown {e!r}, got {a!r}"
        extra = actual[len(expected):] or expected[len(actual):]
        return f"shown {len(expected)} lines, got {len(actual)}: {extra}"
    if len(actual) != len(expected):
        return f"shown {len(expected)} lines, got {len(actual)}:\n" + "\n".join(actual)
    for n, (a, e) in enumerate(zip(actual, expected)):
        pattern, percents = _pattern(e)
        found = pattern.fullmatch(a)
        if not found:
            return f"output line {n + 1}: shown {e!r}, got {a!r}"
        for shown, got in zip(percents, found.groups()):
            if abs(float(got.replace(",", "")) - shown) > PERCENT_POINTS:
                return f"output line {n + 1}: {got}% is more than {PERCENT_POINTS} points " \
                       f"from the {shown}% shown"
    return None


def rewrite(doc: Document, outputs: dict[int, list[str]]) -> None:
    """Puts each command's actual output in place of the one shown (for --update-golden)."""
    lines = list(doc.lines)
    for command in sorted(doc.commands, key=lambda c: -c.span[0]):
        start, end = command.span
        lines[start:end] = outputs[command.line]
    doc.path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def figures(command: str) -> list[str]:
    """The PNG files a command says it writes (--out X.png)."""
    return re.findall(r"--out\s+(\S+\.png)\b", command)
