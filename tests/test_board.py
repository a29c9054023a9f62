"""TensorBoard logs written while training, read back from the event files."""

from __future__ import annotations

import pytest

from convnet.cli import main

NET = "conv(6,3,pad=same) relu pool(2) dropout(0.1) fc(10)"


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_tensorboard_event_files(tmp_path, fashion_dir, engine):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = tmp_path / "logs"
    assert main(["train", NET, "--data-dir", str(fashion_dir), "--epochs", "2", "--val-size",
                 "300", "--out", str(tmp_path / "run"), "--engine", engine,
                 "--tensorboard", str(logs)]) == 0
    events = EventAccumulator(str(logs), size_guidance={"histograms": 0, "images": 0,
                                                        "scalars": 0}).Reload()
    tags = events.Tags()
    assert {"train/train_loss", "train/train_accuracy", "val/val_loss", "val/val_accuracy",
            "training/lr", "training/images_per_second"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("val/val_accuracy")] == [1, 2]
    assert 0.3 < events.Scalars("val/val_accuracy")[-1].value <= 1.0
    assert {"weights/0.weight", "weights/5.bias", "gradients/0.weight",  # 4 is the flatten
            "gradients/5.weight"} <= set(tags["histograms"])
    assert {"filters/0", "activations/0"} <= set(tags["images"])
    image = events.Images("activations/0")[-1]
    assert image.width > 28 and image.height >= 28  # 6 maps of 28x28 side by side
    assert tags["graph"] is (engine == "torch")
