"""The lecture walkthroughs (docs/lecture11.md, docs/lecture11.ko.md) run as written: every
command in them is run in order and its output compared with the one the document shows; every
figure a command says it writes is written. `pytest --update-golden` rewrites the shown outputs
(and the documents' copies of the figures) from a fresh run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import walkthrough

DOCS = Path(__file__).resolve().parent.parent / "docs"
VENV_BIN = Path(sys.executable).parent
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def lecture_workdir(tmp_path_factory):
    """One folder for both documents, and each distinct command's output, run once: the
    Korean walkthrough runs the same training as the English one."""
    return tmp_path_factory.mktemp("lecture11"), {}


@pytest.mark.parametrize("name", ["lecture11.md", "lecture11.ko.md"])
def test_the_walkthrough_runs_as_written(name, lecture_workdir, request):
    workdir, ran = lecture_workdir
    doc = walkthrough.read(DOCS / name)
    assert len(doc.commands) >= 15, "the walkthrough lost its commands"
    update = request.config.getoption("--update-golden")
    outputs, problems = {}, []
    for command in doc.commands:
        if command.text not in ran:
            ran[command.text] = walkthrough.run(command.text, workdir, VENV_BIN)
        actual = outputs[command.line] = ran[command.text]
        for figure in walkthrough.figures(command.text):
            made = workdir / figure
            if not (made.is_file() and made.read_bytes()[:8] == PNG):
                problems.append(f"{name}:{command.line}: {command.text}\n  wrote no {figure}")
            elif update and f"images/lecture11-{made.name}" in "\n".join(doc.lines):
                shutil.copyfile(made, DOCS / "images" / f"lecture11-{made.name}")
        difference = walkthrough.matches(command, actual)
        if difference:
            problems.append(f"{name}:{command.line}: {command.text}\n  {difference}")
    if update:
        walkthrough.rewrite(doc, outputs)
        return
    assert not problems, "the document and the code disagree:\n" + "\n".join(problems)


def test_both_walkthroughs_run_the_same_lecture():
    english, korean = (walkthrough.read(DOCS / n) for n in ("lecture11.md", "lecture11.ko.md"))
    # the Korean one may ask for Korean explanations (--lang ko); otherwise the same commands
    assert [c.text for c in english.commands] == \
           [c.text.replace(" --lang ko", "") for c in korean.commands]


def test_a_changed_output_is_caught(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("```console\n$ echo 6 8\n6 8\n$ echo 3 4\n3 5\n```\n\n<!-- varies -->\n"
                   "```console\n$ echo accuracy 88.0% in 12.5 s\naccuracy 86.1% in 1 min 3 s\n"
                   "$ echo accuracy 80.0%\naccuracy 86.1%\n"
                   "$ echo 'W·x = (-0.5)×2 = -1'\nW·x = 0.25×2 = 0.5\n```\n", encoding="utf-8")
    commands = walkthrough.read(doc).commands
    results = [walkthrough.matches(c, walkthrough.run(c.text, tmp_path, VENV_BIN))
               for c in commands]
    assert results[0] is None and results[2] is None and results[4] is None
    assert results[1] == "output line 1: shown '3 5', got '3 4'"
    assert "80.0% is more than 3.0 points from the 86.1% shown" in results[3]
