"""Shared test helpers: golden files (regenerate with `pytest --update-golden`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from formats import write_mnist_like

GOLDEN = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/* from the current output")


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """golden(name, text): compare text with tests/golden/name, or rewrite it with the flag."""

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if request.config.getoption("--update-golden"):
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing: run pytest --update-golden once"
        assert text == path.read_text(encoding="utf-8")

    return check


@pytest.fixture(scope="session")
def fashion_dir(tmp_path_factory) -> Path:
    """3,000 training and 1,000 test images of the real Fashion-MNIST, as IDX files."""
    from convnet.data import load_dataset

    data = load_dataset("fashion-mnist", download_ok=False)
    root = tmp_path_factory.mktemp("data")
    write_mnist_like(root / "fashion-mnist",
                     (data.train.images[:3000], data.train.labels[:3000]),
                     (data.test.images[:1000], data.test.labels[:1000]))
    return root
