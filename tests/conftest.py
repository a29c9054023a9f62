"""Shared test helpers: golden files (regenerate with `pytest --update-golden`)."""

from __future__ import annotations

from pathlib import Path

import pytest

# before NumPy loads: convnet picks OpenBLAS's kernels for this CPU (cpu.prefer_blas_kernels), as
# in the command line and the server the tests start — the same kernels, the same bits, here
import convnet  # noqa: F401,I001
from formats import write_mnist_like

GOLDEN = Path(__file__).parent / "golden"


_OWN_CACHE: list[str] = []  # the cache folder this process made, removed when the run ends


def pytest_configure(config: pytest.Config) -> None:
    """Decoded folders are cached in a folder of the test run's own, never the user's cache
    (subprocesses, test workers among them, inherit it)."""
    import os
    import tempfile

    if "CONVNET_CACHE" not in os.environ:
        _OWN_CACHE.append(tempfile.mkdtemp(prefix="convnet-test-cache-"))
        os.environ["CONVNET_CACHE"] = _OWN_CACHE[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's cache folder goes with the run (the process that made it removes it, after its
    workers have ended)."""
    import os
    import shutil

    for folder in _OWN_CACHE:
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get("CONVNET_CACHE") == folder:
            del os.environ["CONVNET_CACHE"]
    _OWN_CACHE.clear()


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


@pytest.fixture(scope="session")
def served_model(tmp_path_factory, fashion_dir) -> Path:
    """A small trained model for `serve` and the browser: 2 epochs on the Fashion-MNIST subset."""
    from convnet.cli import main

    out = tmp_path_factory.mktemp("served") / "run"
    network = "conv(6,5) relu pool(2) conv(8,3,pad=same) relu pool(2) fc(10)"
    assert main(["train", network, "--data-dir", str(fashion_dir), "--epochs", "2",
                 "--val-size", "300", "--out", str(out), "--engine", "numpy"]) == 0
    return out
