"""ONNX export: the exported graph, run by onnxruntime, gives predict's probabilities."""

from __future__ import annotations

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
    assert capsys.readouterr().out.endswith(
        f"{target}: input images float32 N×28×28×1 (0–1), output probabilities of 10 classes\n")
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
])
def test_export_mistakes(capsys, tmp_path, argv, message):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
