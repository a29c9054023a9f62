"""Looking inside: activation maps, filters and figures of a trained model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from convnet import checkpoint
from convnet.cli import main
from convnet.data import load_dataset
from convnet.inside import activations, pick_layers

NET = "conv(6,5) relu pool(2) conv(8,3,pad=same,bias=false) batchnorm relu pool(2) fc(10)"


@pytest.fixture(scope="module")
def model(tmp_path_factory, fashion_dir):
    out = tmp_path_factory.mktemp("inside") / "run"
    code = main(["train", NET, "--data-dir", str(fashion_dir), "--epochs", "1", "--val-size",
                 "300", "--out", str(out), "--engine", "torch"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def image(fashion_dir, tmp_path_factory):
    test = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test
    path = tmp_path_factory.mktemp("images") / "boot.png"
    Image.fromarray(test.images[0, :, :, 0]).save(path)
    return path, test.images[0]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_activations_end_in_the_predicted_probabilities(model, image):
    net, _ = checkpoint.load(model, engine="torch")
    views = activations(net, image[1])
    assert [v.shape for v in views[:3]] == [(24, 24, 6), (24, 24, 6), (12, 12, 6)]
    assert all(v.values.shape == v.shape for v in views)
    assert np.abs(views[-1].values - net.predict(image[1][None])[0]).max() < 1e-5
    assert views[1].values.min() >= 0  # after ReLU


def test_a_conv_activation_is_relu_of_w_dot_x_plus_b(model, image):
    # The lecture's "one number": at output cell (i, j) of filter k, ReLU(W·x + b) over the
    # 5×5×1 window of the (normalised) input.
    net, _ = checkpoint.load(model, engine="numpy")
    views = activations(net, image[1])
    state = net.state_dict()
    mean, std = net.normalization
    x = (image[1].astype(np.float64) / 255 - mean[0]) / std[0]
    i, j, k = 7, 11, 3
    window = x[i:i + 5, j:j + 5, 0]
    one_number = max(0.0, float(np.sum(state["0.weight"][k, 0] * window) + state["0.bias"][k]))
    assert views[1].values[i, j, k] == pytest.approx(one_number, abs=1e-4)


def test_show_draws_every_layer(capsys, tmp_path, model, image):
    out = tmp_path / "inside.png"
    code, stdout, err = run(capsys, "show", model, image[0], "--out", out)
    assert code == 0, err
    assert f"→ {out}" in stdout and "9 layers drawn" in stdout
    with Image.open(out) as png:
        assert png.format == "PNG" and png.height > 1000
    code, stdout, _ = run(capsys, "show", model, image[0], "--out", tmp_path / "relu.png",
                          "--layer", "relu", "--layer", "0")
    assert code == 0 and "3 layers drawn" in stdout


def test_filters_and_the_gallery_of_mistakes(capsys, tmp_path, model, fashion_dir):
    code, stdout, _ = run(capsys, "filters", model, "--out", tmp_path / "filters.png")
    assert code == 0 and "2 conv layer(s) drawn" in stdout
    with Image.open(tmp_path / "filters.png") as png:
        assert png.format == "PNG"
    code, stdout, _ = run(capsys, "eval", model, "--data-dir", fashion_dir, "--json",
                          "--mistakes", tmp_path / "mistakes.png")
    report = json.loads(stdout)
    assert code == 0 and report["misclassified_png"] == str(tmp_path / "mistakes.png")
    with Image.open(tmp_path / "mistakes.png") as png:
        assert png.format == "PNG"


def test_pick_layers_by_number_and_name(model):
    net, _ = checkpoint.load(model, engine="numpy")
    assert pick_layers(net.shapes, ["conv"]) == {0, 3}
    assert pick_layers(net.shapes, ["1,5", "pool"]) == {1, 2, 5, 6}


@pytest.mark.parametrize("argv, message", [
    (["show", "{model}", "{text}", "--out", "{tmp}/x.png"], "is not a readable image"),
    (["show", "{model}", "{image}", "--out", "{tmp}/x.png", "--layer", "lstm"],
     "--layer 'lstm' matches no layer"),
    (["show", "{model}", "{image}", "--out", "{tmp}/x.png", "--layer", "99"],
     "--layer 99: the network has layers 0 to 9"),
    (["show", "{model}", "{image}"], "the following arguments are required: --out"),
    (["filters", "{tmp}/nowhere", "--out", "{tmp}/x.png"], "no model directory"),
])
def test_show_mistakes_are_one_line(capsys, tmp_path, model, image, argv, message):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    filled = [a.format(model=model, image=image[0], text=text, tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, *filled)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_filters_of_a_network_without_convolutions(capsys, tmp_path, fashion_dir):
    out = tmp_path / "run"
    assert main(["train", "fc(10)", "--data-dir", str(fashion_dir), "--epochs", "1",
                 "--val-size", "300", "--out", str(out), "--engine", "numpy"]) == 0
    code, _, err = run(capsys, "filters", out, "--out", tmp_path / "f.png")
    assert code == 2 and "no conv layer" in err
