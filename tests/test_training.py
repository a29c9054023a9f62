"""Train → eval → predict end to end on a real Fashion-MNIST subset, for both engines; portable
checkpoints; bit-exact resume; and every mistake ending in one line with exit status 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convnet import checkpoint
from convnet.cli import main
from convnet.data import load_dataset
from convnet.train import TrainConfig, Trainer
from crashing import stopped_and_resumed

SMALL = "conv(8,3,pad=same) relu pool(2) conv(16,3,pad=same) relu pool(2) fc(10)"
WITH_DROPOUT = "conv(8,3,pad=same) relu pool(2) dropout(0.3) fc(10)"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def train(capsys, fashion_dir, out, *extra, network=SMALL, engine="numpy", epochs=2):
    return run(capsys, "train", network, "--data", "fashion-mnist", "--data-dir", fashion_dir,
               "--epochs", epochs, "--val-size", 500, "--out", out, "--engine", engine, *extra)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_train_eval_predict(capsys, tmp_path, fashion_dir, engine):
    out = tmp_path / "run"
    code, stdout, err = train(capsys, fashion_dir, out, engine=engine)
    assert code == 0, err
    assert "test accuracy" in stdout and f"model: {out / 'best'}" in stdout
    for name in ("best/model.json", "best/model.safetensors", "last/optimizer.safetensors",
                 "last/training.json", "metrics.jsonl", "curve.png", "train.json"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
            "images_per_second"} <= set(rows[0])
    meta = json.loads((out / "best" / "model.json").read_text())
    assert meta["engine"] == engine and meta["input"] == [28, 28, 1]
    assert meta["classes"][0] == "T-shirt/top" and meta["training"]["epochs"] == 2
    assert meta["metrics"]["test_accuracy"] > 0.6  # 2,500 images, 2 epochs, a tiny network

    code, stdout, _ = run(capsys, "eval", out, "--data-dir", fashion_dir, "--json")
    report = json.loads(stdout)
    assert code == 0 and report["images"] == 1000
    assert report["accuracy"] == pytest.approx(meta["metrics"]["test_accuracy"], abs=1e-9)
    assert len(report["classes"]) == 10 and Path(report["confusion_png"]).is_file()
    assert sum(map(sum, report["confusion"])) == 1000
    code, stdout, _ = run(capsys, "eval", out, "--data-dir", fashion_dir)
    assert "precision" in stdout and "Ankle boot" in stdout

    from PIL import Image
    images = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test.images
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"item{i}.png")
        Image.fromarray(images[i, :, :, 0]).save(paths[-1])
    code, stdout, _ = run(capsys, "predict", out, *paths, "--json", "--top", 2)
    predictions = json.loads(stdout)
    assert code == 0 and len(predictions) == 3 and len(predictions[0]["top"]) == 2
    assert predictions[0]["top"][0]["probability"] >= predictions[0]["top"][1]["probability"]
    code, stdout, _ = run(capsys, "predict", out, paths[0])
    assert stdout.startswith(f"{paths[0]}: ") and "%" in stdout


WITH_BATCHNORM = "conv(8,3,pad=same,bias=false) batchnorm relu pool(2) fc(16) batchnorm relu fc(10)"


@pytest.mark.parametrize("network", [SMALL, WITH_BATCHNORM])
@pytest.mark.parametrize("trained_with, loaded_with", [("numpy", "torch"), ("torch", "numpy")])
def test_a_checkpoint_predicts_the_same_on_the_other_engine(capsys, tmp_path, fashion_dir,
                                                            trained_with, loaded_with, network):
    out = tmp_path / "run"
    assert train(capsys, fashion_dir, out, engine=trained_with, epochs=1, network=network)[0] == 0
    images = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test.images[:300]
    own, _ = checkpoint.load(out, engine=trained_with)
    other, _ = checkpoint.load(out, engine=loaded_with)
    p, q = own.predict(images), other.predict(images)
    assert np.array_equal(p.argmax(1), q.argmax(1))
    assert np.abs(p - q).max() < 1e-4


def test_resume_after_a_stop_is_bit_exact_on_the_numpy_engine(tmp_path, fashion_dir):
    config = TrainConfig(network=WITH_DROPOUT, data="fashion-mnist", data_dir=str(fashion_dir),
                         engine="numpy", epochs=3, val_size=300, augment="crop,flip")
    stopped_and_resumed(config, tmp_path / "straight", tmp_path / "stopped")

    from safetensors.numpy import load_file
    a = load_file(str(tmp_path / "straight/last/model.safetensors"))
    b = load_file(str(tmp_path / "stopped/last/model.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    rows = [(tmp_path / d / "metrics.jsonl").read_text().splitlines() for d in
            ("straight", "stopped")]
    strip = [[{k: v for k, v in json.loads(r).items() if k not in ("seconds", "images_per_second")}
              for r in lines] for lines in rows]
    assert strip[0] == strip[1]


def test_resume_from_the_command_line(capsys, tmp_path, fashion_dir):
    out = tmp_path / "run"
    assert train(capsys, fashion_dir, out, epochs=1)[0] == 0
    code, stdout, err = run(capsys, "train", "--resume", out, "--epochs", 2)
    assert code == 0, err
    assert [json.loads(r)["epoch"] for r in (out / "metrics.jsonl").read_text().splitlines()] \
        == [1, 2]


def test_an_existing_run_directory_is_refused_unless_forced(capsys, tmp_path, fashion_dir):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = train(capsys, fashion_dir, out, epochs=1)
    assert code == 2 and "already exists; use --force" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert train(capsys, fashion_dir, out, "--force", epochs=1)[0] == 0


def test_a_folder_of_images_trains(capsys, tmp_path):
    from formats import write_image_folder
    root = write_image_folder(tmp_path / "photos", per_class=24, classes=("across", "down",
                                                                           "centre"))
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "conv(6,3,pad=same) relu pool(2) fc(3)", "--data",
                            root, "--input", "16x16x1", "--epochs", 6, "--val-size", 0.1,
                            "--out", out, "--lr", 0.05, "--batch-size", 16)
    assert code == 0, err
    meta = json.loads((out / "best" / "model.json").read_text())
    assert meta["classes"] == ["across", "centre", "down"]
    assert meta["metrics"]["test_accuracy"] >= 0.8  # stripes one way or the other: easy


@pytest.mark.parametrize("argv, message", [
    (["train", "32x32x3 conv(6,5) relu pool(2) fc(10)"],
     "the network's input is 32x32x3 but the fashion-mnist images are 28x28x1"),
    (["train", "conv(6,5,stride=2) relu fc(10)"], "(28 − 5 + 2·0)/2 + 1 = 12.50 is not a whole"),
    (["train", "conv(6,5) relu pool(2) fc(7)"], "ends in fc(7) but fashion-mnist has 10 classes"),
    (["train", "conv(6,5) pool(2) fc(10)", "--epochs", "0"], "--epochs: must be at least 1"),
    (["train", "--lr", "fast"], "'fast' is not a number"),
    (["train", "--augment", "twist"], "unknown augmentation 'twist'"),
    (["train", "--data", "imagenet"], "no data set 'imagenet'"),
    (["train", "--engine", "jax"], "invalid choice: 'jax'"),
    (["train", "--device", "cuda", "--engine", "torch"], "sees no CUDA GPU"),
    (["train", "--device", "cuda", "--engine", "numpy"], "the numpy engine runs on the CPU only"),
    (["train", "--resume", "nowhere"], "cannot resume: nowhere is not a training run"),
    (["eval", "nowhere"], "no model directory nowhere"),
    (["predict", "nowhere", "x.png"], "no model directory nowhere"),
])
def test_training_mistakes_are_one_line(capsys, tmp_path, fashion_dir, argv, message):
    argv = argv + ["--out", str(tmp_path / "run")] if argv[0] == "train" and "--resume" not in \
        argv else argv
    argv = argv + ["--data-dir", str(fashion_dir)] if argv[0] == "train" and "--resume" not in \
        argv else argv
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err, err
    assert err.startswith("convnet: error:") and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing half-written


@pytest.fixture
def trained(capsys, tmp_path, fashion_dir) -> Path:
    out = tmp_path / "model"
    assert train(capsys, fashion_dir, out, epochs=1)[0] == 0
    return out


def test_damaged_checkpoints_are_refused(capsys, tmp_path, trained, fashion_dir):
    best = trained / "best"
    broken = tmp_path / "broken"
    shutil.copytree(best, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "eval", broken, "--data-dir", fashion_dir)
    assert code == 2 and "damaged checkpoint" in err

    newer = tmp_path / "newer"
    shutil.copytree(best, newer)
    meta = json.loads((newer / "model.json").read_text())
    (newer / "model.json").write_text(json.dumps({**meta, "version": 99}))
    code, _, err = run(capsys, "predict", newer, "x.png")
    assert code == 2 and "written by a newer convnet" in err

    garbled = tmp_path / "garbled"
    shutil.copytree(best, garbled)
    (garbled / "model.json").write_text("{not json")
    code, _, err = run(capsys, "eval", garbled)
    assert code == 2 and "damaged checkpoint" in err

    other = tmp_path / "other"
    shutil.copytree(best, other)
    meta["spec"]["layers"][0]["filters"] = 4
    from convnet.spec import from_json
    meta["description"] = str(from_json(meta["spec"]).without_input())
    (other / "model.json").write_text(json.dumps(meta))
    code, _, err = run(capsys, "eval", other, "--data-dir", fashion_dir)
    assert code == 2 and "damaged checkpoint" in err and "0.weight" in err


def test_predict_refuses_files_that_are_not_images(capsys, tmp_path, trained):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    code, out, err = run(capsys, "predict", trained, text)
    assert code == 2 and out == "" and "is not a readable image" in err
    code, _, err = run(capsys, "predict", trained, tmp_path / "missing.png")
    assert code == 2 and "no image file" in err


def test_predict_opens_folders_and_skips_their_other_files(capsys, tmp_path, trained,
                                                           monkeypatch):
    from PIL import Image
    monkeypatch.setattr("convnet.api.PREDICT_CHUNK", 2)  # images read two at a time
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    Image.new("L", (28, 28), 30).save(folder / "b.png")
    Image.new("RGB", (40, 31), (200, 10, 10)).save(folder / "more" / "a.jpg")
    (folder / "notes.txt").write_text("hello")
    (folder / ".hidden.png").write_text("not looked at")
    single = tmp_path / "one.png"
    Image.new("L", (28, 28), 200).save(single)
    code, out, err = run(capsys, "predict", trained, folder, single, "--json", "--top", 1)
    assert code == 0, err
    assert [r["image"] for r in json.loads(out)] == \
        [str(folder / "b.png"), str(folder / "more" / "a.jpg"), str(single)]
    assert "skipped 1 file in the folders that is not a readable image" in err
    assert str(folder / "notes.txt") in err

    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "predict", trained, tmp_path / "empty")
    assert code == 2 and out == "" and "no files in the folder" in err
    code, out, err = run(capsys, "predict", trained, folder / "notes.txt")  # named: must be one
    assert code == 2 and out == "" and "is not a readable image" in err
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("a")
    code, out, err = run(capsys, "predict", trained, texts, single)
    assert code == 0 and out.count("\n") == 1
    code, out, err = run(capsys, "predict", trained, texts)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "no readable image in" in err and "1 file skipped" in err


def test_eval_refuses_data_with_other_classes_or_shapes(capsys, trained, tmp_path):
    from formats import write_cifar
    write_cifar(tmp_path / "d" / "cifar10" / "cifar-10-python.tar.gz", per_batch=3)
    code, _, err = run(capsys, "eval", trained, "--data", "cifar10", "--data-dir", tmp_path / "d")
    assert code == 2 and "the model takes 28x28x1 images but cifar10's are 32x32x3" in err


def test_missing_data_ends_in_one_line_with_how_to_get_it(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "CONVNET_DATA_URL": "http://127.0.0.1:9/", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "convnet", "train", "--data", "mnist",
                           "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "MNIST is not in" in done.stderr
    assert not (tmp_path / "r").exists()


def test_written_files_get_ordinary_permissions(tmp_path, trained):
    import os
    import stat
    mask = os.umask(0)
    os.umask(mask)
    for path in [trained / "best", trained / "best" / "model.json",
                 trained / "best" / "model.safetensors", trained / "curve.png"]:
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (12.4, "12 s"), (59.6, "1 min 0 s"),
                                           (103.2, "1 min 43 s"), (3600, "60 min 0 s")])
def test_durations_read_as_a_person_writes_them(seconds, text):
    from convnet.cli import format_duration

    assert format_duration(seconds) == text


def test_the_curve_is_drawn_now_and_then_and_always_with_the_last_epoch(tmp_path, monkeypatch,
                                                                        capsys):
    """Drawing holds the GIL the training loop needs: while training curve.png is drawn at
    most every CURVE_SECONDS (here: never), and at the end with every epoch."""
    import convnet.figures
    import convnet.train
    from crashing import make_folder

    drawn = []
    real = convnet.figures.training_curve
    monkeypatch.setattr(convnet.figures, "training_curve",
                        lambda rows, path: (drawn.append(len(rows)), real(rows, path))[1])
    monkeypatch.setattr(convnet.train, "CURVE_SECONDS", 1e9)
    folder = make_folder(tmp_path / "shapes", per_class=10, size=8)
    assert main(["train", "conv(4,3) relu fc(3)", "--data", str(folder), "--epochs", "4",
                 "--engine", "numpy", "--out", str(tmp_path / "run"), "--cache-dir",
                 str(tmp_path / "c")]) == 0
    assert drawn == [4] and (tmp_path / "run" / "curve.png").stat().st_size > 0
    capsys.readouterr()


def test_predict_decodes_a_large_folder_on_every_core_with_the_same_answers(capsys, tmp_path,
                                                                            trained):
    """Past data/cache.py's IN_PROCESS_BELOW files a folder is decoded by worker processes:
    the answers are those of the same files named one by one (decoded here, in turn)."""
    from PIL import Image

    from convnet.data.cache import IN_PROCESS_BELOW
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(IN_PROCESS_BELOW + 4):
        Image.fromarray(rng.integers(0, 256, (20 + i % 9, 30, 3), dtype=np.uint8)).save(
            folder / f"{i:03}.png")
    (folder / "readme.txt").write_text("not an image")
    assert main(["predict", str(trained), str(folder), "--json"]) == 0
    by_folder = json.loads(capsys.readouterr().out)
    files = sorted(str(p) for p in folder.glob("*.png"))
    assert main(["predict", str(trained), *files, "--json"]) == 0
    assert by_folder == json.loads(capsys.readouterr().out)
