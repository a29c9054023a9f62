"""The smaller mistakes of the security review: figure names and folders, test:N, a validation
hold-out too large, a network refused before its data is read, plurals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convnet import checkpoint
from convnet.cli import main, plural


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("images") / "grey.png"
    Image.fromarray(np.full((28, 28), 128, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("name, magic", [
    ("maps.png", b"\x89PNG"), ("maps.jpg", b"\xff\xd8\xff"), ("maps.JPEG", b"\xff\xd8\xff"),
    ("maps.svg", b"<?xml"), ("maps.pdf", b"%PDF"),
])
def test_show_writes_the_format_its_name_asks_for(capsys, tmp_path, served_model, image, name,
                                                  magic):
    code, out, err = run(capsys, "show", served_model, image, "--out", tmp_path / name)
    assert code == 0, err
    assert (tmp_path / name).read_bytes().startswith(magic)
    code, out, err = run(capsys, "filters", served_model, "--out", tmp_path / f"f-{name}")
    assert code == 0 and (tmp_path / f"f-{name}").read_bytes().startswith(magic)


@pytest.mark.parametrize("command", ["show", "filters"])
@pytest.mark.parametrize("name, message", [
    ("maps.txt", "give a name ending in .png, .jpg, .jpeg, .svg, .pdf"),
    ("maps", "give a name ending in .png"),
    ("missing/deeper/maps.png", "missing/deeper is no such folder (create it first)"),
])
def test_figure_names_and_folders_are_checked_first(capsys, tmp_path, served_model, image,
                                                    command, name, message):
    argv = [command, served_model] + ([image] if command == "show" else [])
    code, out, err = run(capsys, *argv, "--out", tmp_path / name)
    assert code == 2 and out == "" and message in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, no folder made


def test_eval_and_export_refuse_a_missing_folder(capsys, tmp_path, served_model, fashion_dir):
    code, _, err = run(capsys, "eval", served_model, "--data-dir", fashion_dir, "--confusion",
                       tmp_path / "nowhere" / "c.png")
    assert code == 2 and "is no such folder" in err
    code, _, err = run(capsys, "export", served_model, "--onnx", tmp_path / "nowhere" / "m.onnx")
    assert code == 2 and "is no such folder" in err
    code, _, err = run(capsys, "ensemble", served_model, served_model, "--out",
                       tmp_path / "nowhere" / "ensemble", "--data-dir", fashion_dir)
    assert code == 2 and "is no such folder" in err
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("name, message", [
    ("test:-1", "test:-1: fashion-mnist has test images 0 to 999"),
    ("test:1000", "test:1000: fashion-mnist has test images 0 to 999"),
    ("test:abc", "test:abc: give test:N, with N the number of a test image"),
    ("test:" + "9" * 5000, "give test:N"),
])
def test_test_images_by_number(capsys, served_model, fashion_dir, monkeypatch, name, message):
    monkeypatch.setenv("CONVNET_DATA", str(fashion_dir))
    code, out, err = run(capsys, "predict", served_model, name)
    assert code == 2 and message in err and len(err.splitlines()) == 1
    code, out, _ = run(capsys, "predict", served_model, "test:3")
    assert code == 0 and out.startswith("test:3: ")


def test_a_network_that_does_not_fit_is_refused_before_the_data_is_read(capsys, tmp_path):
    code, _, err = run(capsys, "train", "conv(6,3,stride=2) relu fc(10)", "--data-dir",
                       tmp_path / "no-data-here", "--out", tmp_path / "run")
    assert code == 2 and "the filter does not fit" in err
    assert not (tmp_path / "no-data-here").exists() and not (tmp_path / "run").exists()


def test_too_large_a_validation_hold_out_is_refused(capsys, tmp_path, fashion_dir):
    code, _, err = run(capsys, "train", "--data-dir", fashion_dir, "--val-size", "60000",
                       "--out", tmp_path / "run", "--epochs", "1")
    assert code == 2 and ("--val-size 60000 would hold out 60,000 of the 3,000 training "
                          "images; at most half (1,500)") in err
    code, _, err = run(capsys, "train", "--data-dir", fashion_dir, "--val-size", "0.6",
                       "--out", tmp_path / "run", "--epochs", "1")
    assert code == 2 and "--val-size 0.6 would hold out 1,800" in err


@pytest.mark.parametrize("images, classes, expected", [
    (60_000, 10, 5000 / 60_000), (5000, 10, 0.1), (3000, 500, 500 / 3000), (4990, 10, 0.0),
    (3000, 10, 0.0), (40, 10, 0.0), (10, 4, 0.0), (4, 10, 0.0), (800, 600, 0.5),
])
def test_the_default_validation_hold_out_fits_the_data(images, classes, expected):
    from convnet.train import validation_fraction

    assert validation_fraction(None, images, classes) == pytest.approx(expected)


def test_one_epoch_is_written_so(capsys, tmp_path, fashion_dir):
    code, out, _ = run(capsys, "train", "conv(4,5) relu pool(2) fc(10)", "--data-dir", fashion_dir,
                       "--epochs", "1", "--out", tmp_path / "run", "--engine", "numpy")
    assert code == 0 and " 1 epoch → " in out and "1 epochs" not in out
    assert (plural(1, "epoch"), plural(2, "epoch"), plural(1000, "image")) == \
        ("1 epoch", "2 epochs", "1,000 images")
    assert checkpoint.load(tmp_path / "run")[1]["training"]["val_size"] is None
