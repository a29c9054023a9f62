"""The library's way in (convnet.fit, convnet.load, convnet.read_images): the same runs, models
and answers as the command line, and the same one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import convnet
from convnet import UserError
from convnet.api import settings
from convnet.cli import main
from convnet.recipes import recipe
from crashing import make_folder

QUICK = dict(epochs=1, engine="numpy", val_size=0, test_fraction=0.2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("api") / "shapes", per_class=20, size=12)


def test_fit_load_and_predict_give_what_the_commands_give(folder, tmp_path, capsys):
    result = convnet.fit(data=str(folder), out=tmp_path / "run", cache_dir=str(tmp_path / "c"),
                         **QUICK)
    out = capsys.readouterr().out
    assert "training " in out and "epoch 1/1" in out  # the plan line and the epochs, printed
    assert result.directory == tmp_path / "run" and 0 <= result.test_accuracy <= 1
    assert set(result.recall) == {"left", "middle", "right"}

    net = convnet.load(result.directory)  # a run's directory means its best checkpoint
    assert isinstance(net, convnet.Network) and net.classes == ("left", "middle", "right")
    assert net.input_shape == (12, 12, 1) and net.meta["training"]["epochs"] == 1

    files = sorted((folder / "middle").glob("*.png"))[:3]
    (folder / "middle" / "notes.txt").write_text("not an image")  # a folder's other files
    images = convnet.read_images(folder / "middle", net.input_shape)
    assert images.shape == (20, 12, 12, 1) and images.dtype == np.uint8
    probs = net.predict(convnet.read_images(files, net.input_shape))
    assert main(["predict", str(result.directory), *map(str, files), "--json", "--top", "3"]) == 0
    answers = json.loads(capsys.readouterr().out)
    for p, answer in zip(probs, answers):
        for top in answer["top"]:
            assert p[net.classes.index(top["class"])] == pytest.approx(top["probability"],
                                                                       abs=1e-6)


def test_fit_with_the_same_settings_trains_the_same_model_as_the_command(folder, tmp_path,
                                                                         capsys):
    argv = ["train", "--data", str(folder), "--epochs", "1", "--engine", "numpy", "--val-size",
            "0", "--seed", "3", "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--out", str(tmp_path / "cli")]) == 0
    convnet.fit(data=str(folder), seed=3, out=tmp_path / "api", cache_dir=str(tmp_path / "c"),
                **QUICK)
    capsys.readouterr()
    by_cli, by_api = convnet.load(tmp_path / "cli"), convnet.load(tmp_path / "api")
    for name, value in by_cli.state_dict().items():
        np.testing.assert_array_equal(value, by_api.state_dict()[name], err_msg=name)


def test_an_ensemble_recipe_returns_the_ensemble_and_loads_as_one(folder, tmp_path, capsys):
    trained = convnet.fit("conv(4,3) relu pool(2) fc(3)", data=str(folder), ensemble=2,
                          out=tmp_path / "ens", cache_dir=str(tmp_path / "c"), **QUICK)
    capsys.readouterr()
    assert trained.directory == tmp_path / "ens" / "ensemble" and len(trained.members) == 2
    ensemble = convnet.load(trained.directory)
    assert ensemble.classes == ["left", "middle", "right"] and ensemble.meta["kind"] == "ensemble"
    images = convnet.read_images(folder / "left", ensemble.input_shape)
    assert ensemble.predict(images).shape == (20, 3)


def test_settings_start_from_the_recipe_and_the_keywords_change_it():
    chosen = settings(recipe="fast94", engine="numpy", epochs=2)
    own = recipe("fast94", "fp32")  # the NumPy engine takes the float32 path
    assert chosen.config.epochs == 2 and chosen.config.network == own["network"]
    assert chosen.config.optimizer == own["optimizer"] == "muon"
    assert chosen.recipe_line.startswith("recipe fast94 (float32 path: the NumPy engine")
    assert "epochs=2 (the recipe's: 11)" in chosen.recipe_line
    assert settings(recipe="fast94", engine="numpy", optimizer="sgd").config.muon_lr is None
    # the float32 path's count: 3, or as many as the cores (2 at least) below 3 cores
    assert settings(recipe="ensemble", engine="numpy").ensemble == \
        recipe("ensemble", "fp32")["ensemble"] in (2, 3)
    assert settings(recipe="ensemble", engine="numpy", ensemble=1).ensemble == 1
    assert settings("conv(6,5) relu pool(2) fc(10)").config.network == \
        "conv(6,5) relu pool(2) fc(10)"


@pytest.mark.parametrize("call, message", [
    (lambda: settings(epoch=3), "unknown training option epoch; the options are "),
    (lambda: settings(recipe="fast95"), "unknown recipe 'fast95'"),
    (lambda: settings(epochs=0), "--epochs must be at least 1, got 0"),
    (lambda: settings(ensemble=0), "--ensemble takes the number of models, at least 1"),
    (lambda: convnet.load("/nowhere/at/all"), "no model directory /nowhere/at/all"),
    (lambda: convnet.read_images(["/nowhere/x.png"], (8, 8, 1)), "no image file /nowhere/x.png"),
    (lambda: convnet.read_images([], (8, 8, 1)), "no images given"),
    (lambda: convnet.read_images(["x.png"], (8, 8)), "shape is (height, width, channels)"),
])
def test_mistakes_are_one_user_error(call, message):
    with pytest.raises(UserError) as caught:
        call()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    Image.new("L", (8, 8)).save(tmp_path / "fine.png")
    with pytest.raises(UserError, match="notes.png is not a readable image"):
        convnet.read_images([tmp_path / "fine.png", text], (8, 8, 1))


def test_predict_files_answers_as_the_command_does(folder, tmp_path, capsys):
    convnet.fit("conv(4,3) relu pool(2) fc(3)", data=str(folder), out=tmp_path / "run",
                cache_dir=str(tmp_path / "c"), **QUICK)
    capsys.readouterr()
    net = convnet.load(tmp_path / "run")
    (folder / "right" / "notes.txt").write_text("not an image")
    results, skipped = convnet.predict_files(net, [str(folder / "right")], top=2)
    assert skipped == [str(folder / "right" / "notes.txt")] and len(results) == 20
    assert {t["class"] for r in results for t in r["top"]} <= set(net.classes)
    assert main(["predict", str(tmp_path / "run"), str(folder / "right"), "--json", "--top",
                 "2"]) == 0
    assert json.loads(capsys.readouterr().out) == results
    bare = convnet.Network("conv(4,3) relu pool(2) fc(3)", input=(12, 12, 1))  # no class names
    numbered, _ = convnet.predict_files(bare, [str(folder / "left" / "0.png")])
    assert {t["class"] for t in numbered[0]["top"]} == {"0", "1", "2"}
    with pytest.raises(UserError, match="no readable image in"):
        convnet.predict_files(net, [str(_only_text(tmp_path))])


def _only_text(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("a")
    return texts
