"""Ensembles: each model's and the ensemble's accuracy, saving, and what is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convnet import checkpoint
from convnet.cli import main
from convnet.data import load_dataset

NET = "conv(6,3,pad=same) relu pool(2) fc(10)"


@pytest.fixture(scope="module")
def models(tmp_path_factory, fashion_dir):
    root = tmp_path_factory.mktemp("ensemble")
    for seed in (0, 1, 2):
        assert main(["train", NET, "--data-dir", str(fashion_dir), "--epochs", "1",
                     "--val-size", "300", "--seed", str(seed), "--engine", "numpy",
                     "--out", str(root / f"m{seed}")]) == 0
    return [root / f"m{seed}" for seed in (0, 1, 2)]


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_each_model_and_the_ensembles(capsys, models, fashion_dir, tmp_path):
    capsys.readouterr()
    out = tmp_path / "together"
    code = main(["ensemble", *map(str, models), "--data-dir", str(fashion_dir), "--json",
                 "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["images"] == 1000
    test = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test
    nets = [checkpoint.load(m, engine="numpy")[0] for m in models]
    logits = [n.logits(test.images).astype(np.float64) for n in nets]
    mean_softmax = np.mean([softmax(z) for z in logits], axis=0).argmax(1)
    summed = np.sum(logits, axis=0).argmax(1)
    accuracy = report["accuracy"]
    assert accuracy["ensemble, mean of softmax"] == pytest.approx((mean_softmax ==
                                                                  test.labels).mean())
    assert accuracy["ensemble, sum of logits"] == pytest.approx((summed == test.labels).mean())
    assert len(accuracy) == 5

    # the saved ensemble is a model directory for eval and predict
    assert main(["eval", str(out), "--data-dir", str(fashion_dir), "--json"]) == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["accuracy"] == pytest.approx(accuracy["ensemble, mean of softmax"])
    from PIL import Image
    Image.fromarray(test.images[0, :, :, 0]).save(tmp_path / "x.png")
    assert main(["predict", str(out), str(tmp_path / "x.png"), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"][0]
    expected = np.mean([softmax(z[:1]) for z in logits], axis=0)[0]
    assert top["probability"] == pytest.approx(float(expected.max()), abs=1e-5)


def test_each_members_images_pass_through_it_once(capsys, models, fashion_dir, monkeypatch):
    """The members' accuracies and both ways of voting come from one forward pass per member:
    on 10,000 test images with shifts voting, each pass is the slow part."""
    from convnet.network import Network

    passes: list[int] = []
    forward = Network.logits

    def counted(self, x, batch_size=None):
        passes.append(len(x))
        return forward(self, x, batch_size)

    monkeypatch.setattr(Network, "logits", counted)
    capsys.readouterr()
    assert main(["ensemble", *map(str, models), "--data-dir", str(fashion_dir), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["accuracy"]) == 5
    assert passes == [1000, 1000, 1000]


def test_what_ensembles_refuse(capsys, models, fashion_dir, tmp_path):
    from formats import write_image_folder
    root = write_image_folder(tmp_path / "photos", per_class=8, classes=("a", "b"))
    assert main(["train", "conv(4,3,pad=same) relu pool(2) fc(2)", "--data", str(root),
                 "--input", "28x28x1", "--epochs", "1", "--out", str(tmp_path / "other"),
                 "--engine", "numpy", "--val-size", "0.2"]) == 0
    capsys.readouterr()
    cases = [
        (["ensemble", str(models[0])], "needs at least two models"),
        (["ensemble", str(models[0]), str(tmp_path / "other")], "has other classes"),
        (["ensemble", str(models[0]), str(models[1]), "--out", str(tmp_path)],
         "already exists; use --force"),
    ]
    for argv, message in cases:
        assert main(argv + ["--data-dir", str(fashion_dir)]) == 2
        assert message in capsys.readouterr().err
    saved = tmp_path / "pair"
    assert main(["ensemble", str(models[0]), str(models[1]), "--data-dir", str(fashion_dir),
                 "--out", str(saved)]) == 0
    capsys.readouterr()
    # filters draws one network's weights; export takes the whole ensemble (tests/test_export.py)
    assert main(["filters", str(saved), "--out", str(tmp_path / "f.png")]) == 2
    assert "is an ensemble of 2 models; this looks at one network" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()


def test_show_and_serve_take_an_ensemble(capsys, models, fashion_dir, tmp_path):
    from fastapi.testclient import TestClient
    from PIL import Image

    from convnet.cli import _network_and_voter
    from convnet.web.app import create_app

    saved = tmp_path / "pair"
    assert main(["ensemble", str(models[0]), str(models[1]), "--data-dir", str(fashion_dir),
                 "--out", str(saved)]) == 0
    test = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test
    Image.fromarray(test.images[0, :, :, 0]).save(tmp_path / "x.png")
    capsys.readouterr()
    assert main(["show", str(saved), str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr()
    assert "the maps are its first member's, the probabilities the ensemble's" in out.err
    assert (tmp_path / "s.png").is_file()

    ensemble, _ = checkpoint.load(saved, engine="numpy")
    net, meta, voter = _network_and_voter(str(saved))
    client = TestClient(create_app(net, meta, None, voter), base_url="http://127.0.0.1")
    with open(tmp_path / "x.png", "rb") as f:
        content = f.read()
    result = client.post("/api/predict", files={"file": ("x.png", content, "image/png")}).json()
    assert np.allclose(result["probabilities"], ensemble.predict(test.images[:1])[0], atol=1e-6)


def test_train_an_ensemble(capsys, tmp_path, fashion_dir):
    out = tmp_path / "three"
    assert main(["train", NET, "--data-dir", str(fashion_dir), "--epochs", "1", "--val-size",
                 "300", "--engine", "numpy", "--ensemble", "3", "--seed", "5",
                 "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "model 3 of 3 (seed 7)" in stdout and "ensemble of 3: test accuracy" in stdout
    assert json.loads((out / "model-2" / "train.json").read_text())["seed"] == 6
    meta = json.loads((out / "ensemble" / "model.json").read_text())
    assert meta["kind"] == "ensemble" and len(meta["members"]) == 3
    assert main(["eval", str(out / "ensemble"), "--data-dir", str(fashion_dir)]) == 0


@pytest.mark.parametrize("engine, device, loaded_on", [
    ("torch", "cpu", ("torch", "cpu")),
    ("numpy", None, ("numpy", None)),
])
def test_an_ensembles_vote_is_scored_on_the_engine_and_device_its_models_trained_on(
        capsys, monkeypatch, tmp_path, fashion_dir, engine, device, loaded_on):
    """The members' test scores are computed where they trained (a GPU run's on its GPU: on
    the CPU they took minutes there), not on the CPU's default engine."""
    asked = []
    real = checkpoint.load

    def load(path, engine="auto", device=None):
        asked.append((engine, device))
        return real(path, engine, device)

    monkeypatch.setattr(checkpoint, "load", load)
    args = ["train", NET, "--data-dir", str(fashion_dir), "--epochs", "1", "--val-size", "300",
            "--engine", engine, "--ensemble", "2", "--at-once", "1", "--out", str(tmp_path / "e")]
    assert main(args + (["--device", device] if device else [])) == 0
    assert "ensemble of 2: test accuracy" in capsys.readouterr().out
    assert asked[:2] == [loaded_on, loaded_on]
