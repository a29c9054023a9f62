"""The lecture's case studies by name: LeNet-5, AlexNet, VGG-16, ResNet-18 and ResNet-20, with
the famous weight counts exactly, multiply-adds as PyTorch counts them, and their floors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from convnet import inspector, spec
from convnet.cli import main
from convnet.engines.torch.build import build_sequential
from convnet.networks import NAMES, named
from convnet.shapes import infer
from convnet.spec import parse

FAMOUS = {  # weights, as the papers and torchvision give them; the input; the floors
    "lenet5": (61_706, (32, 32, 1), 0),
    "alexnet": (61_100_840, (224, 224, 3), 1),
    "vgg16": (138_357_544, (224, 224, 3), 0),
    "resnet18": (11_689_512, (224, 224, 3), 8),  # conv1, the max pool, 3 stages × (conv, 1×1)
    "resnet20": (272_474, (32, 32, 3), 4),
}


def test_every_network_has_its_figures():
    assert set(NAMES) == set(FAMOUS)


@pytest.mark.parametrize("name", NAMES)
def test_weights_are_the_famous_figures(name):
    network = spec.load(name)
    weights, shape, _ = FAMOUS[name]
    assert network.input == shape
    assert sum(r.params for r in infer(network)) == weights


def pytorch_macs(network: spec.Spec) -> int:
    """Multiply-adds as PyTorch's own modules count them, from the output shapes PyTorch
    computes (on the meta device: shapes only, no arithmetic, no memory)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features

    with torch.device("meta"):
        model = build_sequential(network, network.input)
        for module in model.modules():
            module.register_forward_hook(count)
        h, w, c = network.input
        model.eval()(torch.zeros(1, c, h, w))
    return total


@pytest.mark.parametrize("name", NAMES)
def test_multiply_adds_match_pytorch(name):
    network = spec.load(name)
    ours = sum(r.macs for r in infer(network))
    theirs = pytorch_macs(network)
    assert abs(ours - theirs) <= 0.01 * theirs, (ours, theirs)


@pytest.mark.parametrize("name", NAMES)
def test_where_a_network_floors_it_says_so_and_what_is_dropped(name):
    network = spec.load(name)
    text = inspector.explain(network, network.input)
    floored = [line for line in text.splitlines() if "(floored, as PyTorch does: the last" in line]
    assert len(floored) == FAMOUS[name][2]
    lines = [line for line in named(name).splitlines() if not line.startswith("#")]
    written = re.findall(r"floor=true", "\n".join(lines))
    assert len(written) == FAMOUS[name][2]  # and the description says so at each of them


def test_alexnet_first_layer_does_not_fit_224_without_its_floor(capsys):
    assert main(["inspect", "224x224x3 conv(64,11,stride=4,pad=2)"]) == 2
    err = capsys.readouterr().err
    assert "(224 − 11 + 2·2)/4 + 1 = 55.25 is not a whole number" in err
    assert "an input of 227x227 (→ 56x56)" in err and "floor=true" in err


def test_resnet18_floors_twice_before_its_first_block():
    rows = infer(spec.load("resnet18"))
    first_block = next(i for i, r in enumerate(rows) if r.paths)
    floors = [r for r in rows[:first_block] if getattr(r.layer, "floor", False)]
    assert [r.output for r in floors] == [(112, 112, 64), (56, 56, 64)]
    assert rows[first_block].output == (56, 56, 64)


def test_list_shows_them_one_line_each(capsys):
    assert main(["inspect", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == list(NAMES)
    assert "11,689,512 weights" in lines[NAMES.index("resnet18")]
    assert lines[-1] == ("and the recipes' networks, on 28x28x1: fast91, fast93, fast94, best, "
                         "ensemble (convnet inspect fast91)")


@pytest.mark.parametrize("path", ["bf16", "fp32"])
def test_a_recipe_names_its_network_on_the_path_this_machine_takes(capsys, monkeypatch, path):
    import convnet.recipes
    from convnet.recipes import RECIPES, recipe

    monkeypatch.setattr(convnet.recipes, "path_for", lambda *a: (path, "as the test says"))
    for name in RECIPES:
        assert main(["inspect", name.upper(), "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["input"] == [28, 28, 1]
        assert parse(recipe(name, path)["network"]) == parse(shown["description"])
    assert main(["inspect", "fast94"]) == 0
    assert capsys.readouterr().out.startswith(
        f"network: fast94 (recipe fast94 in convnet/recipes.py, {path} path)")


def test_inspect_by_name_shows_a_residual_block_with_its_paths(capsys):
    assert main(["inspect", "resnet18"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("network: resnet18 (convnet/networks/resnet18.net)")
    assert re.search(r"^\s+8\.inner\.0\s+conv\(128,3,stride=2,pad=1,bias=false,floor=true\)\s+"
                     r"28x28x128", out, flags=re.M)
    assert re.search(r"^\s+8\.shortcut\.0\s+conv\(128,1,stride=2,bias=false,floor=true\)", out,
                     flags=re.M)
    assert re.search(r"^\s+\+ S\(x\) \(the shortcut\)\s+28x28x128", out, flags=re.M)
    assert re.search(r"^\s+\+ x \(the block's input\)\s+56x56x64", out, flags=re.M)
    assert "weights:       11,689,512" in out
    assert main(["inspect", "resnet20", "--explain"]) == 0
    explained = capsys.readouterr().out
    assert ("3 residual: output = F(x) + x: F, the 5 layers below, takes 32x32x16 to 32x32x16, "
            "and x, the block's input, is added as it is → 32x32x16; weights 4,672, all in F"
            ) in explained
    assert "  3.inner.0 conv(16,3,pad=1,bias=false): (32 − 3 + 2·1)/1 + 1 = 32" in explained


def test_a_residual_block_whose_paths_disagree_says_which_projection_fits():
    from convnet.errors import UserError

    with pytest.raises(UserError) as info:
        infer(spec.parse("residual(conv(32,3,stride=2,pad=1,floor=true) batchnorm)"),
              (16, 16, 16))
    assert str(info.value) == (
        "layer 0 residual: its layers give 8x8x32 but the identity shortcut gives its input, "
        "16x16x16; the two are added, so they must agree. Fix: add "
        "shortcut=conv(32,1,stride=2,floor=true) batchnorm, or make the layers keep 16x16x16")
    fixed = spec.parse("residual(conv(32,3,stride=2,pad=1,floor=true) batchnorm, "
                       "shortcut=conv(32,1,stride=2,floor=true) batchnorm)")
    assert infer(fixed, (16, 16, 16))[0].output == (8, 8, 32)
    with pytest.raises(UserError, match="its shortcut gives 8x8x16"):
        infer(spec.parse("residual(conv(32,3,stride=2,pad=1,floor=true), shortcut=pool(2))"),
              (16, 16, 16))


@pytest.mark.parametrize("name", ["lenet5", "resnet20"])
def test_show_and_export_take_a_name(capsys, tmp_path, name):
    import onnxruntime
    from PIL import Image

    from convnet.network import Network

    network = spec.load(name)
    h, w, c = network.input
    pixels = np.random.default_rng(0).integers(0, 256, (h, w, c), dtype=np.uint8)
    image = tmp_path / "x.png"
    Image.fromarray(pixels[:, :, 0] if c == 1 else pixels).save(image)
    assert main(["show", name, str(image), "--out", str(tmp_path / "inside.png")]) == 0
    captured = capsys.readouterr()
    assert f"{name}, weights drawn from seed 0: untrained" in captured.err
    assert main(["export", name, "--onnx", str(tmp_path / "m.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {"images": pixels[None].astype(np.float32) / 255})[0]
    expected = Network(network, seed=0).predict(pixels[None])
    assert np.abs(got - expected).max() < 1e-4


def test_training_that_cannot_fit_is_refused_before_anything_is_allocated(capsys, monkeypatch,
                                                                           tmp_path):
    monkeypatch.setenv("CONVNET_MEMORY", str(2 << 30))
    assert main(["train", "vgg16", "--data-dir", str(tmp_path / "none"), "--out",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "training vgg16 with batches of 128 needs about" in err and \
        "weights 527.8 MiB" in err and "a smaller network" in err
    assert main(["train", "conv(8,3) fc(10)", "--batch-size", "100000", "--data-dir",
                 str(tmp_path / "none"), "--out", str(tmp_path / "run")]) == 2
    assert "--batch-size" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_train_takes_a_name(capsys, tmp_path):
    from formats import write_cifar

    write_cifar(tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz", per_batch=4)
    assert main(["train", "resnet20", "--data", "cifar10", "--data-dir", str(tmp_path / "data"),
                 "--epochs", "1", "--batch-size", "8", "--engine", "numpy", "--out",
                 str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "\ntraining resnet20 on cifar10 (" in out
    assert "test accuracy" in out


def test_a_model_directory_comes_before_a_network_of_the_same_name(capsys, tmp_path,
                                                                   monkeypatch, served_model):
    """Inside a run, `best` is its checkpoint (not recipe best's untrained network); a run
    directory named like a recipe is that run. Elsewhere the names mean the networks."""
    import shutil

    from PIL import Image

    shutil.copytree(served_model / "best", tmp_path / "best")
    shutil.copytree(served_model, tmp_path / "fast94")
    Image.new("L", (28, 28), 90).save(tmp_path / "x.png")
    monkeypatch.chdir(tmp_path)
    for model in ("best", "fast94"):
        assert main(["show", model, "x.png", "--out", f"{model}.png"]) == 0
        assert "untrained" not in capsys.readouterr().err
    monkeypatch.chdir(tmp_path / "fast94" / "best")  # no model called best here
    assert main(["show", "best", str(tmp_path / "x.png"), "--out", str(tmp_path / "n.png")]) == 0
    assert "best, weights drawn from seed 0: untrained" in capsys.readouterr().err
