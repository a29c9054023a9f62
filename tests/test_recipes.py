"""Recipes and the torch engine's fast path: what they set, and how they fail or fall back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convnet import Network
from convnet.cli import main
from convnet.config import SpeedOptions
from convnet.engines.torch import engine as torch_engine
from convnet.errors import UserError
from convnet.recipes import RECIPES, recipe
from convnet.spec import parse

NET = "conv(8,3,pad=same,bias=false) batchnorm relu pool(2) fc(10)"


def batch(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.mark.parametrize("path", ["bf16", "fp32"])
@pytest.mark.parametrize("name", list(RECIPES))
def test_recipes_are_written_in_the_description_language(name, path):
    settings = recipe(name, path)  # the float32 path may have a network of its own (fast93)
    network = parse(settings["network"]).with_input((28, 28, 1))
    Network(network, engine="torch")  # builds: the geometry fits Fashion-MNIST
    assert settings["network"].startswith("conv(") and "pool(2)" in settings["network"]


def test_recipe_settings_and_command_line_precedence(capsys, tmp_path, fashion_dir):
    code = main(["train", "--recipe", "fast91", "--data-dir", str(fashion_dir), "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--val-size", "300"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("recipe fast91 (")
    assert "path: " in out.splitlines()[0] and RECIPES["fast91"]["network"] in out
    saved = json.loads((tmp_path / "run" / "train.json").read_text())
    assert saved["recipe"] == "fast91" and saved["epochs"] == 1 and saved["val_size"] == 300
    expected = recipe("fast91")  # the path this machine gets
    assert saved["bf16"] == expected["bf16"] and saved["schedule"] == "onecycle"
    assert saved["channels_last"] == expected["channels_last"]


def test_a_recipes_switches_can_be_turned_off_on_the_command_line(capsys, tmp_path, fashion_dir):
    assert recipe("fast91", "bf16")["whiten"] and recipe("fast91", "bf16")["bf16"]
    code = main(["train", "--recipe", "fast91", "--data-dir", str(fashion_dir), "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--val-size", "300", "--no-whiten", "--no-bf16",
                 "--no-channels-last"])
    assert code == 0
    saved = json.loads((tmp_path / "run" / "train.json").read_text())
    assert saved["recipe"] == "fast91" and saved["lr"] == RECIPES["fast91"]["lr"]
    assert not saved["whiten"] and not saved["bf16"] and not saved["channels_last"]


def test_bf16_and_channels_last_agree_with_float32():
    x, y = batch()
    plain = Network(NET, input="28x28x1", engine="torch", seed=3)
    fast = Network(NET, input="28x28x1", engine="torch", seed=3,
                   speed=SpeedOptions(channels_last=True, bf16=True))
    p, q = plain.predict(x), fast.predict(x)
    assert np.abs(p - q).max() < 0.05  # bf16 keeps ~3 significant digits
    losses = [fast.train_step(x, y) for _ in range(20)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_bf16_falls_back_with_a_notice_where_the_cpu_lacks_it(monkeypatch, capsys):
    monkeypatch.setattr(torch_engine, "cpu_has_bf16", lambda: False)
    net = Network(NET, input="28x28x1", engine="torch", speed=SpeedOptions(bf16=True))
    err = capsys.readouterr().err
    assert err == "convnet: note: this CPU has no bf16 matrix units; training in float32 " \
                  "instead\n"
    assert not net.engine.autocast and np.isfinite(net.train_step(*batch()))


def test_compile_failure_falls_back_with_a_notice(monkeypatch, capsys):
    import torch

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler")
    monkeypatch.setattr(torch, "compile", broken)
    net = Network(NET, input="28x28x1", engine="torch", speed=SpeedOptions(compile=True))
    assert "torch.compile is not available here (no compiler); running uncompiled" in \
        capsys.readouterr().err
    assert np.isfinite(net.train_step(*batch()))


def test_test_time_flips_average_an_image_and_its_mirror():
    x, _ = batch(8)
    net = Network(NET, input="28x28x1", engine="numpy", seed=1)
    with_tta = Network(NET, input="28x28x1", engine="numpy", seed=1, tta=True)
    expected = (net.logits(x) + net.logits(x[:, :, ::-1].copy())) / 2
    assert np.allclose(with_tta.logits(x), expected, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"engine": "numpy", "speed": SpeedOptions(bf16=True)},
     "bf16: the torch engine's fast path; use --engine torch"),
    ({"engine": "numpy", "speed": SpeedOptions(channels_last=True, compile=True)},
     "channels-last, compile: the torch engine's fast path"),
    ({"engine": "torch", "dtype": "float64", "speed": SpeedOptions(bf16=True)},
     "bf16 works on float32 networks"),
])
def test_options_that_do_not_go_together(kwargs, message):
    with pytest.raises(UserError, match=message):
        Network(NET, input="28x28x1", **kwargs)


def test_a_crop_larger_than_the_image_is_refused():
    from convnet.augment import augment
    with pytest.raises(UserError, match="a crop with padding 4 does not fit 3x3 images"):
        augment(np.zeros((2, 3, 3, 1), np.uint8), ("crop",), np.random.default_rng(0), pad=4)


def test_augmentation_keeps_shapes_and_moves_pixels():
    from convnet.augment import augment
    images = np.arange(4 * 6 * 6, dtype=np.uint8).reshape(4, 6, 6, 1)
    out = augment(images, ("crop", "flip"), np.random.default_rng(0))
    assert out.shape == images.shape and out.dtype == np.uint8
    assert not np.array_equal(out, images)
    flipped = augment(images, ("flip",), np.random.default_rng(1))
    for a, b in zip(flipped, images):
        assert np.array_equal(a, b) or np.array_equal(a, b[:, ::-1])


def test_unknown_recipe_is_refused(capsys):
    assert main(["train", "--recipe", "fast99"]) == 2
    assert "invalid choice: 'fast99'" in capsys.readouterr().err


def test_tta_without_flip_augmentation_gets_a_notice(capsys, tmp_path, fashion_dir):
    code = main(["train", NET, "--data-dir", str(fashion_dir), "--epochs", "1", "--tta",
                 "--engine", "numpy", "--out", str(tmp_path / "run"), "--val-size", "300"])
    assert code == 0
    assert "convnet: note: --tta also looks at each image's mirror" in capsys.readouterr().err


@pytest.mark.parametrize("mirroring", [["--augment", "flip"], ["--tta"],
                                       ["--augment", "crop,flip", "--tta"]])
def test_mirroring_digits_gets_a_notice_with_the_reason(capsys, tmp_path, mirroring):
    # digits have a direction: a mirrored 7 is no 7, whatever the training saw
    from convnet.data import load_dataset
    from formats import write_mnist_like

    data = load_dataset("fashion-mnist", download_ok=False)  # (any 28×28 images will do)
    write_mnist_like(tmp_path / "data" / "mnist", (data.train.images[:600],
                                                   data.train.labels[:600]),
                     (data.test.images[:200], data.test.labels[:200]))
    code = main(["train", NET, "--data", "MNIST", "--data-dir", str(tmp_path / "data"),
                 "--epochs", "1", *mirroring, "--engine", "numpy", "--out",
                 str(tmp_path / "run"), "--val-size", "100"])
    assert code == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "mirror" in line]
    used = " and ".join(word for word in ("--augment flip", "--tta")
                        if word.split()[-1] in " ".join(mirroring))
    assert notes == [f"convnet: note: {used} mirror{'s' * (' and ' not in used)} MNIST's "
                     "images, but a mirrored 2, 3, 4, 5, 6, 7 or 9 is no longer that digit: "
                     "that usually costs accuracy"]


def test_mirroring_garments_trained_mirrored_gets_no_notice(capsys, tmp_path, fashion_dir):
    code = main(["train", NET, "--data-dir", str(fashion_dir), "--epochs", "1", "--tta",
                 "--augment", "flip", "--engine", "numpy", "--out", str(tmp_path / "run"),
                 "--val-size", "300"])
    assert code == 0
    assert "mirror" not in capsys.readouterr().err


def test_the_ensemble_recipe_trains_its_members_and_their_vote(capsys, tmp_path, fashion_dir):
    # the recipe's settings with a small network in place of its own (a description given on
    # the command line wins): the wiring is under test, not the accuracy
    code = main(["train", "conv(4,3,pad=same) relu pool(4) fc(10)", "--recipe", "ensemble",
                 "--data-dir", str(fashion_dir), "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--val-size", "300"])
    out = capsys.readouterr().out
    count = recipe("ensemble")["ensemble"]  # 3, or 2 on 2 cores (float32, AVX-512's bf16)
    assert code == 0 and f"ensemble of {count}: test accuracy" in out
    members = json.loads((tmp_path / "run/ensemble/model.json").read_text())["members"]
    assert len(members) == count
    saved = json.loads((tmp_path / "run/model-1/train.json").read_text())
    assert saved["augment"] == "crop,erase" and saved["tta_shift"] == 1


@pytest.mark.parametrize("path", ["bf16", "fp32"])
@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_fits_images_of_any_size_and_any_number_of_classes(name, path):
    from convnet.shapes import infer
    from convnet.train import fit_network

    network = parse(recipe(name, path)["network"])
    for shape, classes in [((45, 63, 3), 7), ((28, 28, 1), 10), ((97, 31, 1), 2)]:
        fitted, changes = fit_network(network, shape, classes)
        infer(fitted.with_input(shape))  # fits: no error
        assert fitted.num_classes == classes
        assert bool(changes) == (shape != (28, 28, 1))
        # only the pools that do not fit floor
        for before, after in zip(network.layers, fitted.layers):
            if before != after and after.type == "pool":
                assert after.floor and not before.floor


def test_fit_network_changes_only_what_does_not_fit():
    from convnet.train import fit_network

    network = parse("conv(8,3,pad=same) pool(2) conv(8,3,pad=same) pool(2) fc(10)")
    fitted, changes = fit_network(network, (30, 30, 1), 3)  # 30 → 15 → 7 (floored)
    assert str(fitted) == ("conv(8,3,pad=same) pool(2) conv(8,3,pad=same) pool(2,floor=true) "
                           "flatten fc(3) softmax")
    assert changes == ["layer 3 pool(2) floors on 15x15 maps (pool(2,floor=true))",
                       "the last layer is fc(3) for the 3 classes, not fc(10)"]
    assert fit_network(network, (28, 28, 1), None) == (network, [])  # classes left alone


@pytest.mark.parametrize("shape, averaged", [((28, 28, 1), False), ((32, 32, 3), False),
                                             ((39, 39, 3), False), ((40, 40, 3), True),
                                             ((64, 86, 3), True), ((97, 31, 1), True)])
def test_a_recipe_averages_its_maps_where_they_are_more_than_twice_the_area(shape, averaged):
    from convnet.shapes import infer
    from convnet.train import fit_network

    for name in RECIPES:
        network = parse(recipe(name)["network"])
        fitted, changes = fit_network(network, shape, 5)
        types = [layer.type for layer in fitted.layers]
        assert ("globalavgpool" in types) == averaged and ("flatten" in types) != averaged
        assert any("globalavgpool in place of flatten" in c for c in changes) == averaged
        assert infer(fitted.with_input(shape))[-1].output == (5,)  # fits, one output a class


def test_a_recipe_trains_on_a_folder_of_other_images_and_classes(capsys, tmp_path):
    """A user's folder: 30×30 colour-less images in 3 classes. The recipe's network gets fc(3)
    and a flooring pool, says so, saves that network, and --resume continues with it."""
    from crashing import make_folder

    folder = make_folder(tmp_path / "shapes", per_class=20, size=30)
    out = tmp_path / "run"
    code = main(["train", "--recipe", "fast91", "--data", str(folder), "--epochs", "1",
                 "--engine", "numpy", "--out", str(out), "--cache-dir", str(tmp_path / "c")])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "recipe fast91 fitted to shapes's 30x30x1 images: layer 5 pool(2) floors on 15x15 " \
           "maps (pool(2,floor=true)); the last layer is fc(3) for the 3 classes, not fc(10)" \
           in stdout
    saved = json.loads((out / "train.json").read_text())
    assert "pool(2,floor=true)" in saved["network"] and "fc(3)" in saved["network"]
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    assert "epoch 2/2" in capsys.readouterr().out
    # a network the user wrote is theirs: a mismatch is an error with the fix, not fitted
    code = main(["train", "--recipe", "fast91", "conv(8,3,pad=same) pool(2) fc(10)", "--data",
                 str(folder), "--epochs", "1", "--engine", "numpy", "--out", str(tmp_path / "x"),
                 "--cache-dir", str(tmp_path / "c")])
    assert code == 2 and "end it with fc(3)" in capsys.readouterr().err


def test_a_recipe_keeps_its_steps_on_a_smaller_training_set(tmp_path):
    """fast91's 2 epochs of Fashion-MNIST are 2 × 234 steps at batch 256; on 960 training
    images (3 steps an epoch) they become 156 epochs, said in a note — unless --epochs is
    given. A tiny set stops at EPOCH_RANGE's 200 epochs."""
    from convnet.api import settings
    from convnet.train import EPOCH_RANGE, Trainer
    from crashing import make_folder

    folder = make_folder(tmp_path / "shapes", per_class=400, size=8)  # 960 train, 240 test
    common = dict(data=str(folder), engine="numpy", cache_dir=str(tmp_path / "c"))
    trainer = Trainer(settings(recipe="fast91", **common).config, tmp_path / "a")
    assert trainer.config.epochs == 156 and trainer.config.epochs_of is None
    assert "recipe fast91 on 960 training images: 156 epochs, for the 468 steps of its 2 " \
           "epochs of 60,000 images (--epochs sets them)" in trainer.notes
    given = Trainer(settings(recipe="fast91", epochs=3, **common).config, tmp_path / "b")
    assert given.config.epochs == 3 and not any("steps of its" in n for n in given.notes)
    tiny = make_folder(tmp_path / "tiny", per_class=10, size=8)
    trainer = Trainer(settings(recipe="fast94", **{**common, "data": str(tiny)}).config,
                      tmp_path / "d")
    assert trainer.config.epochs == EPOCH_RANGE[1]
    # Fashion-MNIST itself (60,000 training images) keeps the recipe's epochs
    assert settings(recipe="fast91").config.epochs_of == 60_000
