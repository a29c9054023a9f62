"""The README's examples as written: every `convnet` command in its sh blocks (torchrun's
included) is one the command line accepts, the `inspect` ones run, and the Python block runs.
The commands that train or need a trained model are run for real by the tests of their features
(and docs/lecture11*.md runs a whole train → predict → show session); here nothing may drift."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from convnet.cli import build_parser, main

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def convnet_commands() -> list[list[str]]:
    """Each convnet command of the sh blocks as argv (after `convnet` or `-m convnet`)."""
    found = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["convnet"]:
                    found.append(words[1:])
                elif "-m" in words and words[words.index("-m") + 1:][:1] == ["convnet"]:
                    found.append(words[words.index("-m") + 2:])
    return found


def test_the_readme_has_its_examples():
    commands = convnet_commands()
    assert len(commands) >= 25
    shown = {argv[0] for argv in commands}
    assert {"train", "eval", "predict", "inspect", "show", "filters", "serve", "export",
            "ensemble"} <= shown


@pytest.mark.parametrize("argv", convnet_commands(), ids=" ".join)
def test_every_readme_command_is_accepted(argv, capsys, tmp_path, monkeypatch):
    args = build_parser().parse_args(argv)  # a mistake here exits with argparse's message
    assert callable(args.run)
    if argv[0] == "inspect":
        monkeypatch.chdir(tmp_path)
        if "lenet.net" in argv:
            (tmp_path / "lenet.net").write_text(
                "32x32x3 conv(6,5) relu pool(2) conv(16,5) relu pool(2) fc(120) relu fc(84) "
                "relu fc(10)\n", encoding="utf-8")
        assert main(argv) == 0, capsys.readouterr().err


def test_the_python_examples_run(tmp_path, monkeypatch, capsys):
    """The library's block on a small folder of photos (three classes of 28×28 grey shapes;
    the recipe's steps in at most 20 epochs here), then the Network block."""
    from PIL import Image

    import convnet.train
    from crashing import make_folder

    monkeypatch.setattr(convnet.train, "EPOCH_RANGE", (8, 20))

    library, network = blocks("python")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))
    make_folder(tmp_path / "photos", per_class=20, size=28)
    Image.new("L", (30, 20), 90).save("a.jpg")
    Image.new("RGB", (28, 28), (20, 200, 20)).save("b.png")
    namespace: dict = {}
    exec(compile(library, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["net"].classes == ("left", "middle", "right")
    assert namespace["probs"].shape == (2, 3) and "epoch 20/20" in capsys.readouterr().out
    assert len(namespace["answers"]) == 61 and namespace["skipped"] == []
    namespace = {}
    exec(compile(network, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["probs"].shape == (8, 10)
    assert set(namespace["grads"]) == set(namespace["state"])


def test_every_link_stays_inside_the_repository():
    """A user's clone has only the repository: no link may point above it or to an absolute
    path on the machine the README was written on."""
    root = README.parent
    for document in [README, *sorted((root / "docs").glob("*.md"))]:
        text = document.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://|#|mailto:", target):
                continue
            resolved = (document.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(root), f"{document.name} links outside: {target}"
            assert resolved.exists(), f"{document.name} links to a missing file: {target}"
