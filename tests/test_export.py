"""ONNX export: the exported graph, run by onnxruntime, gives predict's probabilities."""

from __future__ import annotations

import re

import numpy as np
import pytest

from convnet import checkpoint
from convnet.cli import main
from convnet.data import load_dataset

NET = "conv(6,3,pad=same,bias=false) batchnorm relu pool(2) conv(8,3,pad=same) relu " \
      "avgpool(2) dropout(0.2) fc(16) tanh fc(10)"


@pytest.mark.parametrize("engine, extra", [("numpy", []), ("torch", []),
                                           ("torch", ["--tta", "--augment", "flip"])])
def test_onnx_runtime_gives_the_same_probabilities(capsys, tmp_path, fashion_dir, engine, extra):
    import onnxruntime

    out = tmp_path / "run"
    assert main(["train", NET, "--data-dir", str(fashion_dir), "--epochs", "1", "--val-size",
                 "300", "--out", str(out), "--engine", engine, *extra]) == 0
    target = tmp_path / "model.onnx"
    assert main(["export", str(out), "--onnx", str(target)]) == 0
    assert re.search(f"{re.escape(str(target))}: input images float32 N×28×28×1 \\(0–1\\), "
                     "output probabilities of 10 classes, ONNX opset [0-9]+\n$",
                     capsys.readouterr().out)
    images = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test.images[:50]
    session = onnxruntime.InferenceSession(str(target))
    probabilities = session.run(None, {"images": images.astype(np.float32) / 255})[0]
    net, _ = checkpoint.load(out, engine=engine)
    expected = net.predict(images)
    assert probabilities.shape == (50, 10)
    assert np.abs(probabilities - expected).max() < 1e-4
    one = session.run(None, {"images": images[:1].astype(np.float32) / 255})[0]  # any batch size
    assert np.abs(one - expected[:1]).max() < 1e-4


@pytest.mark.parametrize("argv, message", [
    (["export", "{tmp}/nowhere", "--onnx", "{tmp}/m.onnx"], "no model directory"),
    (["export", "{tmp}/nowhere"], "the following arguments are required: --onnx"),
    (["export", "{model}", "--onnx", "{tmp}/m.onnx", "--opset", "99"], "--opset 99: this ONNX "
     "writes opsets 7 to"),
    (["export", "{model}", "--onnx", "{tmp}/m.onnx", "--opset", "six"], "invalid int value"),
])
def test_export_mistakes(capsys, tmp_path, argv, message):
    model = _saved(tmp_path, "fc(10)")
    assert main([a.format(tmp=tmp_path, model=model) for a in argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("combine", ["softmax", "logits"])
def test_a_saved_ensemble_exports_as_one_graph(capsys, tmp_path, fashion_dir, combine):
    import onnxruntime

    runs = []
    for seed, engine in enumerate(["numpy", "torch"]):
        runs.append(str(tmp_path / f"m{seed}"))
        assert main(["train", "conv(4,3) relu pool(2) fc(10)", "--data-dir", str(fashion_dir),
                     "--epochs", "1", "--val-size", "300", "--seed", str(seed), "--engine",
                     engine, "--out", runs[-1]]) == 0
    assert main(["ensemble", *runs, "--combine", combine, "--out", str(tmp_path / "both")]) == 0
    target = tmp_path / "both.onnx"
    assert main(["export", str(tmp_path / "both"), "--onnx", str(target)]) == 0
    images = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test.images[:40]
    session = onnxruntime.InferenceSession(str(target))
    probabilities = session.run(None, {"images": images.astype(np.float32) / 255})[0]
    ensemble, _ = checkpoint.load(tmp_path / "both")
    assert np.abs(probabilities - ensemble.predict(images)).max() < 1e-4


def _saved(tmp_path, description):
    from convnet.network import Network

    net = Network(description, input=(28, 28, 1), engine="torch", seed=0)
    checkpoint.save(net, tmp_path / "model", classes=tuple("abcdefghij"))
    return str(tmp_path / "model")


def test_an_older_opset_is_written_when_it_can_express_every_layer(capsys, tmp_path):
    import onnx

    model = _saved(tmp_path, "conv(4,3) relu maxpool(2) fc(10)")
    assert main(["export", model, "--onnx", str(tmp_path / "m.onnx"), "--opset", "17"]) == 0
    assert capsys.readouterr().out.endswith("ONNX opset 17\n")
    assert [o.version for o in onnx.load(str(tmp_path / "m.onnx")).opset_import
            if o.domain in ("", "ai.onnx")] == [17]


def test_a_layer_the_opset_cannot_express_is_named(capsys, tmp_path):
    # PyTorch's exporter writes a dropout as an opset-16 Identity, which ONNX's converter can't
    # take down to opset 15; asked for 15, the exporter would quietly write 18.
    model = _saved(tmp_path, "conv(4,3) relu pool(2) dropout(0.2) fc(10)")
    assert main(["export", model, "--onnx", str(tmp_path / "m.onnx"), "--opset", "15"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convnet: error: ONNX opset 15 cannot express layer 3 dropout(0.2)"), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
