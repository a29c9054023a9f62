"""A folder of one's own images: its input shape inferred, decoded once into a cache that a
changed file updates and a killed run cannot spoil, every awkward file skipped and counted, and
training on it with no options, balanced or not, even when it does not fit in memory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convnet.cli import main
from convnet.data import cache, load_dataset
from convnet.data.sizing import infer_input
from convnet.data.sources import FolderOptions
from convnet.errors import UserError
from formats import pattern, write_image_folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def grey_folder(root: Path, per_class: int = 6, size: int = 28, classes=("a", "b")) -> Path:
    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(pattern(label % 3, size, rng)).save(root / name / f"{i}.png")
    return root


# -- the input shape -------------------------------------------------------------------------------

def files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_images_of_one_size_give_that_shape(tmp_path):
    root = grey_folder(tmp_path / "digits")
    inferred = infer_input(files_of(root))
    assert inferred.shape == (28, 28, 1)
    assert inferred.reason == "all 12 images are 28×28 grey"


def test_the_reason_counts_the_images_it_measured_not_the_files(tmp_path):
    root = grey_folder(tmp_path / "digits")  # 12 images
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nxxxx")
    inferred = infer_input(files_of(root))
    assert inferred.shape == (28, 28, 1)
    assert inferred.reason == "the 12 readable images of 14 files are 28×28 grey"
    single = tmp_path / "one"
    single.mkdir()
    Image.new("L", (20, 24)).save(single / "x.png")
    (single / "readme.txt").write_text("x")
    assert infer_input(files_of(single)).reason == \
        "the one readable image of 2 files is 24×20 grey"


def test_photos_are_scaled_so_the_short_side_is_64(tmp_path):
    for i, (w, h) in enumerate([(400, 300), (400, 300), (420, 310), (380, 300), (400, 298)]):
        Image.new("RGB", (w, h), (i, 2 * i, 3 * i)).save(tmp_path / f"{i}.jpg")
    inferred = infer_input(files_of(tmp_path))
    assert inferred.shape == (64, 85, 3)
    assert "differ in size; their median 300×400, scaled so the short side is 64, colour" in \
        inferred.reason


def test_one_colour_image_makes_the_input_colour(tmp_path):
    grey_folder(tmp_path, per_class=2)
    Image.new("RGB", (28, 28), (200, 10, 10)).save(tmp_path / "a" / "red.png")
    assert infer_input(files_of(tmp_path)).shape == (28, 28, 3)


def test_a_bare_train_on_a_two_class_folder_fits_its_network_to_it(capsys, tmp_path):
    root = grey_folder(tmp_path / "digits", per_class=12, size=20)
    code, out, err = run(capsys, "train", "--data", root, "--epochs", "1", "--engine", "numpy",
                         "--out", tmp_path / "run")
    assert code == 0, err
    assert "input 20x20x1: all 24 images are 20×20 grey" in out
    assert re.search(r"training conv\(32,3,pad=same\) relu pool\(2\) conv\(64,3,pad=same\) relu "
                     r"pool\(2\) flatten fc\(128\) relu fc\(2\) softmax on digits \(20 train, 0 "
                     r"validation, 4 test images of 20x20x1\)", out)
    assert "training images per class: 10 each (2 classes)" in out
    assert "test images (last epoch 1 of 1; " in out  # nothing held out: the last is kept
    assert "recall per class: a " in out



def test_a_small_training_set_starts_from_a_whitened_first_conv(capsys, tmp_path):
    from convnet.initial import whitening_filters
    from convnet.train import TrainConfig, Trainer

    root = grey_folder(tmp_path / "digits", per_class=12, size=20)
    code, out, err = run(capsys, "train", "--data", root, "--epochs", "1", "--engine", "numpy",
                         "--out", tmp_path / "run")
    assert code == 0, err
    assert ("a small training set (20 images): crop augmentation, label smoothing 0.1, the "
            "first conv initialised by whitening, Muon for the conv kernels at 0.02 and every "
            "image to train on (too few for a validation hold-out; the last epoch is kept) "
            "(--augment, --label-smoothing, --no-whiten, --optimizer, --val-size choose "
            "otherwise)") in out
    saved = json.loads((tmp_path / "run" / "train.json").read_text())
    assert saved["whiten"] is True and saved["augment"] == "crop"
    assert saved["optimizer"] == "muon" and saved["muon_lr"] == 0.02 and saved["val_size"] is None
    # the run starts from whitening's filters: 9 directions of the 3×3 patches and their negatives
    trainer = Trainer(TrainConfig(data=str(root), epochs=1, engine="numpy"), tmp_path / "again")
    start = trainer.net.state_dict()["0.weight"]
    made = whitening_filters(trainer.net, trainer.train.images, 0)
    assert np.array_equal(start, made.astype(start.dtype))
    fresh = Trainer(TrainConfig(data=str(root), epochs=1, engine="numpy", whiten=False),
                    tmp_path / "plain").net.state_dict()["0.weight"]
    assert not np.allclose(start[:18], fresh[:18]) and np.array_equal(start[18:], fresh[18:])


def colour_folder(root: Path, per_class: int = 12, size: int = 20) -> Path:
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                root / name / f"{i}.png")
    return root


@pytest.mark.parametrize("colour, size, argv, said, kept", [
    (True, 20, [], "crop, rotate, zoom and light augmentation, ", "crop,rotate,zoom,light"),
    (False, 20, [], "crop augmentation, ", "crop"),
    (True, 12, [], "", ""),  # smaller than 16×16: nothing to spare for a crop or a turn
    (True, 20, ["--augment", "crop"], "", "crop"),  # given: as given, and not said
])
def test_a_small_colour_set_is_also_turned_zoomed_and_lit(capsys, tmp_path, colour, size, argv,
                                                           said, kept):
    make = colour_folder if colour else grey_folder
    root = make(tmp_path / "images", per_class=12, size=size)
    code, out, err = run(capsys, "train", "--data", root, "--epochs", "1", "--engine", "numpy",
                         "--out", tmp_path / "run", *argv)
    assert code == 0, err
    assert f"a small training set (20 images): {said}label smoothing 0.1, " in out
    assert json.loads((tmp_path / "run" / "train.json").read_text())["augment"] == kept


@pytest.mark.parametrize("colour, argv, said, kept", [
    (True, [], "rotate, zoom and light augmentation besides the recipe's crop (--augment "
               "chooses otherwise)", "crop,rotate,zoom,light"),
    (False, [], None, "crop"),  # grey: the crop it has already
    (True, ["--augment", "flip"], None, "flip"),  # given: as given
])
def test_a_recipe_on_a_small_set_adds_the_default_augmentation_to_its_own(
        capsys, tmp_path, colour, argv, said, kept):
    from convnet.api import settings
    from convnet.train import Trainer

    root = (colour_folder if colour else grey_folder)(tmp_path / "images", per_class=12)
    given = dict(zip(["augment"], argv[1:]))
    config = settings(recipe="fast93", data=str(root), epochs=1, engine="numpy", **given).config
    trainer = Trainer(config, tmp_path / "run", progress=False)
    assert trainer.config.augment == kept and not trainer.config.augment_more
    notes = [n for n in trainer.notes if n.startswith("a small training set")]
    assert notes == ([f"a small training set (20 images): {said}"] if said else [])  # no val


def test_a_recipe_averages_the_maps_of_images_larger_than_it_was_tuned_on(capsys, tmp_path):
    """fast93 on 40×40 colour images: its flatten would hand the fc 10×10×48 maps, more than
    twice the 7×7 of 28×28 images, so each map's mean takes its place; the run trains,
    saves that network, and predicts from its checkpoint."""
    root = colour_folder(tmp_path / "images", per_class=12, size=40)
    code, out, err = run(capsys, "train", "--recipe", "fast93", "--data", root, "--epochs", "1",
                         "--engine", "numpy", "--out", tmp_path / "run")
    assert code == 0, err
    assert ("layer 11 globalavgpool in place of flatten: 10x10x48 maps reach it, not 7x7x48 "
            "as on 28x28 images") in out
    saved = json.loads((tmp_path / "run" / "train.json").read_text())["network"]
    assert "globalavgpool fc(128" in saved and "flatten" not in saved
    code, out, err = run(capsys, "predict", tmp_path / "run" / "best",
                         next((root / "a").iterdir()))
    assert code == 0, err


@pytest.mark.parametrize("network, size, argv", [
    (None, 20, ["--no-whiten"]),  # said otherwise
    ("pool(2) conv(4,3) relu fc(2)", 20, []),  # no conv first: trains without it, no error
    ("conv(4,5,pad=same) relu fc(2)", 4, []),  # a kernel larger than the images
    (None, 20, ["LARGE"]),  # a training set of SMALL_DATA images or more
])
def test_whitening_is_left_out_where_it_does_not_belong(capsys, tmp_path, monkeypatch, network,
                                                        size, argv):
    from convnet import train

    if argv == ["LARGE"]:
        monkeypatch.setattr(train, "SMALL_DATA", 10)
        argv = []
    root = grey_folder(tmp_path / "digits", per_class=12, size=size)
    code, out, err = run(capsys, "train", *([network] if network else []), "--data", root,
                         "--epochs", "1", "--engine", "numpy", "--out", tmp_path / "run", *argv)
    assert code == 0, err
    assert "by whitening" not in out + err
    assert json.loads((tmp_path / "run" / "train.json").read_text())["whiten"] is False


def test_the_default_warm_up_lasts_fifty_steps_where_half_an_epoch_is_a_step_or_two(tmp_path):
    from convnet.train import TrainConfig, Trainer, warmup_steps

    assert warmup_steps(None, 429, 3_500) == 214  # Fashion-MNIST: half an epoch, as always
    assert warmup_steps(None, 2, 400) == 50  # 258 images in batches of 128
    assert warmup_steps(None, 1, 30) == 6  # a short run: a fifth of it
    assert warmup_steps(0.5, 2, 400) == 1 and warmup_steps(0, 2, 400) == 0  # as given
    root = grey_folder(tmp_path / "digits", per_class=12, size=20)  # 18 images: a step an epoch
    lr = 0.05
    default = Trainer(TrainConfig(data=str(root), epochs=200, engine="numpy", lr=lr),
                      tmp_path / "a").net.schedule
    assert [default(s) for s in (0, 19, 39)] == pytest.approx([lr / 40, lr / 2, lr])
    given = Trainer(TrainConfig(data=str(root), epochs=200, engine="numpy", lr=lr,
                                warmup_epochs=0), tmp_path / "b").net.schedule
    assert given(0) == pytest.approx(lr)

def test_the_patience_counts_from_the_end_of_the_warm_up(tmp_path):
    from convnet.train import TrainConfig, Trainer, epochs_waited

    assert epochs_waited(52, 12, 25) == 27  # a lucky best while warming up: 40 epochs not yet
    assert epochs_waited(52, 30, 25) == 22 and epochs_waited(9, 1, 1) == 8
    root = grey_folder(tmp_path / "digits", per_class=12, size=20)  # 18 images: a step an epoch
    # a learning rate too small to change anything: the first epoch stays the best (SGD:
    # Muon's rate is its own; two images held out, which so few would not be by default)
    trainer = Trainer(TrainConfig(data=str(root), epochs=30, patience=2, lr=1e-12,
                                  optimizer="sgd", val_size=2, engine="numpy"),
                      tmp_path / "run", progress=False)
    assert trainer.warm_epochs == 6  # a fifth of the 30 steps
    trainer.run()
    assert trainer.best["epoch"] == 1
    assert trainer.stopped_early == ("no better validation accuracy for 2 epochs after the "
                                     f"warm-up (best {trainer.best['val_accuracy']:.2%} at "
                                     "epoch 1)")
    epochs = [json.loads(line)["epoch"]
              for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs[-1] == 8  # 6 epochs of warm-up, then 2 of patience (it was 3)


@pytest.mark.parametrize("schedule, warm", [("constant", 0), ("step", 0), ("onecycle", 9),
                                            ("cosine", 6)])
def test_the_patience_waits_only_while_the_learning_rate_rises(tmp_path, schedule, warm):
    from convnet.schedules import make_schedule, rising_steps
    from convnet.train import TrainConfig, Trainer

    root = grey_folder(tmp_path / "digits", per_class=12, size=20)  # a step an epoch
    trainer = Trainer(TrainConfig(data=str(root), epochs=30, patience=2, lr=1e-12,
                                  engine="numpy", schedule=schedule), tmp_path / "run",
                      progress=False)
    assert trainer.warm_epochs == warm  # constant and step do not warm up; onecycle 30%
    rates = [make_schedule(schedule, 1.0, 30, 6)(step) for step in range(30)]
    rising = rising_steps(schedule, 30, 6)
    assert all(a < b for a, b in zip(rates[:rising - 1], rates[1:rising]))  # rises, then not
    assert all(a >= b for a, b in zip(rates[rising:], rates[rising + 1:]))


# -- the cache -------------------------------------------------------------------------------------

def test_a_second_load_decodes_nothing_and_a_changed_file_only_itself(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=10)
    where = tmp_path / "cache"
    first = cache.load(root, files_of(root), (16, 16, 3), where)
    assert first.decoded == 20 and first.readable.all()
    second = cache.load(root, files_of(root), (16, 16, 3), where)
    assert second.decoded == 0 and np.array_equal(first.images, second.images)
    assert isinstance(second.images, np.memmap)

    changed = root / "across" / "3.bmp"
    Image.fromarray(np.full((20, 20), 255, np.uint8)).convert("RGB").save(changed, format="BMP")
    os.utime(changed, ns=(1, 1))  # a new modification time, whatever the clock says
    (root / "down" / "extra.png").write_bytes((root / "down" / "0.png").read_bytes())
    (root / "down" / "1.jpg").unlink()
    third = cache.load(root, files_of(root), (16, 16, 3), where)
    assert third.decoded == 2  # the changed file and the added one; the removed one costs none
    index = files_of(root).index(changed)
    assert third.images[index].min() == 255
    assert len(list(where.iterdir())) == 2  # the cache folder and its lock, nothing else


def test_a_cache_a_killed_run_left_is_never_trusted(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=4)
    where = tmp_path / "cache"
    files = files_of(root)
    good = cache.load(root, files, (16, 16, 3), where)
    target = cache.key_dir(root, (16, 16, 3), where)
    # a run killed after writing its staging folder, before renaming it into place
    stale = target.parent / f"{target.name}.part-99999"
    stale.mkdir()
    (stale / "index.json").write_text("{}")
    # and a cache whose index was never completed
    index = json.loads((target / "index.json").read_text())
    index["complete"] = False
    (target / "index.json").write_text(json.dumps(index))
    again = cache.load(root, files, (16, 16, 3), where)
    assert again.decoded == len(files)  # decoded again, not trusted
    assert np.array_equal(again.images, good.images)
    assert not stale.exists()


def test_a_cache_that_cannot_be_written_falls_back_to_memory(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=3)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    decoded = cache.load(root, files_of(root), (8, 8, 3), blocker / "cache")
    assert decoded.readable.all() and not isinstance(decoded.images, np.memmap)
    assert decoded.notes and decoded.notes[0].startswith("cannot cache decoded images in")


def test_no_cache_decodes_into_memory(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=3)
    data = load_dataset(str(root), shape=(8, 8, 1), options=FolderOptions(cache=False))
    assert isinstance(data.train.images, np.ndarray) and len(data.train) + len(data.test) == 6


def test_worker_processes_decode_as_one_process_does(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "photos", per_class=60)  # 120 files: workers
    files = files_of(root)
    parallel = cache.load(root, files, (12, 12, 3), tmp_path / "a")
    monkeypatch.setattr(cache, "IN_PROCESS_BELOW", 10**9)
    serial = cache.load(root, files, (12, 12, 3), tmp_path / "b")
    assert np.array_equal(parallel.images, serial.images)


def _load_in_another_process(root: str, where: str, queue) -> None:
    decoded = cache.load(Path(root), files_of(Path(root)), (12, 12, 3), Path(where))
    queue.put(decoded.decoded)


def test_processes_that_load_at_once_decode_the_folder_once(tmp_path):
    import multiprocessing

    root = write_image_folder(tmp_path / "photos", per_class=30)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_load_in_another_process,
                               args=(str(root), str(tmp_path / "cache"), queue))
               for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert sorted(queue.get(timeout=5) for _ in workers) == [0, 60]  # one decoded, one read


# -- awkward files ---------------------------------------------------------------------------------

def awkward_folder(root: Path) -> Path:
    """Every kind of file a real folder holds, in two classes."""
    grey_folder(root, per_class=4, size=24)
    a, b = root / "a", root / "b"
    base = np.asarray(Image.open(a / "0.png"))
    Image.fromarray(base).convert("RGB").save(a / "rgb.png")
    Image.fromarray(base).convert("RGBA").save(a / "rgba.png")
    Image.fromarray(base).convert("P").save(b / "palette.png")
    Image.fromarray(base.astype(np.uint16) * 257).save(b / "sixteen.png")
    Image.fromarray(base).save(a / "png-named.jpg", format="PNG")  # a PNG called .jpg
    (b / "notes.png").write_text("a text file called .png")
    (b / "empty.png").write_bytes(b"")
    bomb = root / "a" / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(bomb)  # 144 megapixels in a small file
    (root / "a" / "loop").symlink_to(root / "a")  # a folder link to itself
    (root / "b" / "dangling.png").symlink_to(root / "nowhere.png")
    hidden = root / "a" / ".ipynb_checkpoints"
    hidden.mkdir()
    Image.fromarray(base).save(hidden / "0-checkpoint.png")
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "b" / ".DS_Store").write_bytes(b"\x00\x01")
    weird = os.fsencode(str(b)) + b"/caf\xe9.png"  # a name that is not UTF-8
    with open(weird, "wb") as out:
        out.write((a / "1.png").read_bytes())
    (root / "c").mkdir()  # a class with nothing readable in it
    (root / "c" / "readme.txt").write_text("nothing here")
    return root


def test_awkward_files_are_read_or_skipped_and_counted(tmp_path):
    root = awkward_folder(tmp_path / "mixed")
    data = load_dataset(str(root), shape=(16, 16, 1), test_fraction=0.2, seed=0)
    assert data.classes == ("a", "b")  # c had nothing readable
    # a: 4 + rgb, rgba, png-named.jpg = 7; b: 4 + palette, sixteen, café = 7
    assert len(data.train) + len(data.test) == 14
    notes = "\n".join(data.notes)
    assert "skipped 5 file(s) that are not readable images" in notes  # text, empty, bomb,
    assert "class 'c' left out: no readable images in" in notes  # dangling, readme.txt
    assert "0-checkpoint" not in notes


def test_an_awkward_folder_trains_and_says_what_it_skipped(capsys, tmp_path):
    root = awkward_folder(tmp_path / "mixed")
    code, out, err = run(capsys, "train", "--data", root, "--epochs", "1", "--engine", "numpy",
                         "--out", tmp_path / "run")
    assert code == 0, err
    assert "skipped 5 file(s)" in out and "class 'c' left out" in out
    assert "input 24x24x1" in out or "input " in out
    assert "Traceback" not in err


def test_a_folder_with_nothing_readable_is_one_line(capsys, tmp_path):
    for name in ("a", "b"):
        (tmp_path / "junk" / name).mkdir(parents=True)
        (tmp_path / "junk" / name / "x.jpg").write_text("not a jpeg")
    code, out, err = run(capsys, "train", "--data", tmp_path / "junk", "--out", tmp_path / "run")
    assert code == 2 and "no readable images (2 files skipped" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


# -- imbalance -------------------------------------------------------------------------------------

def test_a_rare_class_is_warned_about(capsys, tmp_path):
    root = tmp_path / "uneven"
    grey_folder(root, per_class=40, size=12, classes=("common", "rare"))
    for path in sorted((root / "rare").iterdir())[3:]:
        path.unlink()
    code, out, err = run(capsys, "train", "--data", root, "--epochs", "1", "--engine", "numpy",
                         "--balance", "weights", "--out", tmp_path / "run")
    assert code == 0, err
    assert "warning: few training images for rare (" in err
    assert "--balance weights or --balance sampler" in err


def test_weighted_loss_is_pytorchs(tmp_path):
    import torch
    import torch.nn.functional as F

    from convnet.engines.numpy.loss import cross_entropy

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((9, 4))
    labels = rng.integers(0, 4, 9)
    weights = np.array([0.5, 2.0, 1.0, 3.0])
    for smoothing in (0.0, 0.1):
        loss, grad = cross_entropy(logits, labels, smoothing, weights)
        z = torch.tensor(logits, requires_grad=True)
        expected = F.cross_entropy(z, torch.tensor(labels), weight=torch.tensor(weights),
                                   label_smoothing=smoothing)
        expected.backward()
        assert abs(loss - expected.item()) <= 1e-12 * abs(expected.item())
        assert np.abs(grad - z.grad.numpy()).max() <= 1e-12


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_both_engines_weigh_classes_as_pytorch_does(engine):
    import torch
    import torch.nn.functional as F

    from convnet import Network
    from convnet.engines.torch.build import build_sequential

    weights = np.array([1.0, 4.0, 0.5])
    net = Network("conv(4,3) relu fc(3)", input="6x6x2", dtype="float64", engine=engine,
                  class_weights=weights, label_smoothing=0.1)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 6, 6, 2)), rng.integers(0, 3, 8)
    loss, grads = net.loss_and_grads(x, y)
    model = build_sequential(net.spec, net.input_shape).double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    out = F.cross_entropy(model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())),
                          torch.from_numpy(y), weight=torch.from_numpy(weights),
                          label_smoothing=0.1)
    out.backward()
    assert abs(loss - out.item()) <= 1e-10 * abs(out.item())
    for name, p in model.named_parameters():
        assert np.abs(grads[name] - p.grad.numpy()).max() <= 1e-10 * np.abs(p.grad.numpy()).max()


def test_the_balanced_sampler_draws_every_class_alike():
    from convnet.train import TrainConfig, class_weights

    labels = np.array([0] * 90 + [1] * 10)
    per_class = class_weights(labels, 2)
    chances = per_class[labels] / per_class[labels].sum()
    rng = np.random.default_rng([0, 0])
    drawn = labels[rng.choice(len(labels), size=20_000, p=chances)]
    assert abs(np.mean(drawn == 1) - 0.5) < 0.02
    assert TrainConfig(balance="sampler").check().balance == "sampler"
    with pytest.raises(UserError, match="--balance is one of none, weights, sampler"):
        TrainConfig(balance="oversample").check()


# -- larger than memory ----------------------------------------------------------------------------

MEMORY_LIMIT = 400 << 20  # bytes of private memory (RLIMIT_DATA) the training process may use

LIMITED = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
from convnet.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA is Linux's")
def test_a_folder_larger_than_memory_trains_from_its_cache(tmp_path):
    """The decoded folder (482 MB at 224×224×3) is larger than the memory the training
    process may allocate (400 MB): batches are read from the memory-mapped cache."""
    root = tmp_path / "big"
    rng = np.random.default_rng(0)
    for label, name in enumerate(("x", "y")):
        (root / name).mkdir(parents=True)
        for i in range(1_600):
            Image.fromarray(pattern(label, 8, rng)).save(root / name / f"{i}.png")
    shape = (224, 224, 3)
    env = {**os.environ, "CONVNET_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    argv = ["train", "conv(4,8,stride=8) relu globalavgpool fc(2)", "--data", str(root), "--input",
            "x".join(map(str, shape)), "--epochs", "1", "--batch-size", "32", "--engine",
            "numpy", "--val-size", "64", "--lr", "0.01", "--out", str(tmp_path / "run")]
    # the cache is made first (decoding needs no limit), then training runs under the limit
    decoded = cache.load(root, files_of(root), shape, tmp_path / "cache")
    assert decoded.images.nbytes > MEMORY_LIMIT
    done = subprocess.run([sys.executable, "-c", LIMITED, str(MEMORY_LIMIT), *argv], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3,200 files from the cache" in done.stdout and "test accuracy" in done.stdout
    # and the same run without the cache cannot fit: the limit is real
    failed = subprocess.run([sys.executable, "-c", LIMITED, str(MEMORY_LIMIT), *argv,
                             "--no-cache", "--force"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert failed.returncode != 0


def test_a_full_disk_while_caching_falls_back_to_memory(tmp_path, monkeypatch):
    import errno

    root = write_image_folder(tmp_path / "photos", per_class=3)
    real = np.lib.format.open_memmap

    def full(path, *args, **kwargs):
        if ".part-" in str(path):  # the cache's own file, not the in-memory fallback's
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "open_memmap", full)
    decoded = cache.load(root, files_of(root), (8, 8, 3), tmp_path / "cache")
    assert decoded.readable.all() and "No space left on device" in decoded.notes[0]
    assert [p.name for p in (tmp_path / "cache").iterdir() if ".part-" in p.name] == []


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 400), st.integers(1, 400), st.sampled_from([1, 3]), st.integers(2, 200))
def test_the_default_network_fits_any_input_and_ends_in_the_classes(h, w, c, classes):
    from convnet import spec
    from convnet.shapes import infer
    from convnet.train import default_network

    network = spec.parse(default_network((h, w, c), classes))
    rows = infer(network, (h, w, c))
    assert rows[-1].output == (classes,)
    last_maps = [r.output for r in rows if len(r.output) == 3][-1]
    assert min(last_maps[:2]) <= 8 or len([r for r in rows if r.layer.word() == "pool"]) == 4


def test_a_small_set_moves_its_conv_kernels_by_muon_unless_told(tmp_path, monkeypatch):
    """A training set under SMALL_DATA images: Muon for the conv kernels, said; --optimizer
    chooses otherwise, --muon-lr alone chooses Muon, a network without a conv keeps SGD, and a
    set that is not small keeps SGD (docs/BENCHMARKS.md, "A bare run on a small folder")."""
    from convnet import train
    from convnet.train import TrainConfig, Trainer

    root = grey_folder(tmp_path / "digits", per_class=12, size=20)

    def chosen(name: str, **given) -> tuple[str, bool]:
        trainer = Trainer(TrainConfig(data=str(root), epochs=1, engine="numpy", **given),
                          tmp_path / name, progress=False)
        said = any("Muon for the conv kernels" in note for note in trainer.notes)
        optimizer = trainer.net.engine.optimizer
        assert type(optimizer).__name__.lower() == trainer.config.optimizer
        if trainer.config.optimizer == "muon":  # at its rate: the one given, else 0.02 where
            # an fc holds most of the weights, as in all these networks (0.15 where convs do,
            # below), saved
            rate = given.get("muon_lr", 0.02)
            assert trainer.config.muon_lr == optimizer.config.muon_lr == rate
        else:
            assert trainer.config.muon_lr is None
        return trainer.config.optimizer, said

    assert chosen("bare") == ("muon", True)
    assert chosen("sgd", optimizer="sgd") == ("sgd", False)
    assert chosen("adam", optimizer="adam") == ("adam", False)
    assert chosen("rate", muon_lr=0.05) == ("muon", False)  # asked for by its rate
    assert chosen("asked", optimizer="muon") == ("muon", False)  # at the default rate
    assert chosen("dense", network="fc(8) relu fc(2)") == ("sgd", False)  # no conv to move
    assert chosen("inside", network="conv(4,3,pad=1) residual(conv(4,3,pad=1) relu) "
                                    "fc(2)") == ("muon", True)
    monkeypatch.setattr(train, "SMALL_DATA", 10)
    assert chosen("large") == ("sgd", False)
    assert chosen("large-muon", optimizer="muon") == ("muon", False)


# a network whose convs hold 98% of its weights
GAP = "conv(8,3,pad=same) relu pool(2,floor=true) conv(16,3,pad=same) relu globalavgpool fc(2)"


def test_muon_rate_follows_the_network_and_the_colour(tmp_path, monkeypatch):
    """Muon's rate where none is given: 0.15 on a small set of colour images where the convs
    hold most of the network's weights (global average pooling before one fc); 0.02 where an
    fc over the last maps holds most (the default network on small images), for grey images
    and on a set that is not small; a rate given is kept; the rate chosen is saved for
    --resume."""
    from convnet import train
    from convnet.train import TrainConfig, Trainer

    colour = write_image_folder(tmp_path / "colour", per_class=10, size=20)
    grey = grey_folder(tmp_path / "grey", per_class=12, size=20)

    def rate(name: str, root: Path = colour, **given) -> float:
        trainer = Trainer(TrainConfig(data=str(root), epochs=1, engine="numpy", **given),
                          tmp_path / name, progress=False)
        assert trainer.config.optimizer == "muon"
        saved = json.loads((tmp_path / name / "train.json").read_text())["muon_lr"]
        assert saved == trainer.config.muon_lr == trainer.net.engine.optimizer.config.muon_lr
        return saved

    assert rate("bare") == 0.02  # the default network on 20×20 images ends in fc(128): 4% convs
    assert rate("gap", network=GAP) == 0.15
    assert rate("gap-grey", grey, network=GAP) == 0.02
    assert rate("asked", network=GAP, optimizer="muon") == 0.15
    assert rate("given", network=GAP, muon_lr=0.05) == 0.05
    assert rate("residual", network="conv(8,3,pad=same) residual(conv(8,3,pad=same) relu) "
                                    "globalavgpool fc(2)") == 0.15
    monkeypatch.setattr(train, "SMALL_DATA", 10)
    assert rate("large", network=GAP, optimizer="muon") == 0.02


@pytest.mark.parametrize("text, convs, others", [
    # conv(8,3) on 3 channels: 8·27 + 8; conv(16,3): 16·72 + 16; fc(2) on 16: 32 + 2
    ("12x12x3 " + GAP, 8 * 27 + 8 + 16 * 72 + 16, 16 * 2 + 2),
    # no bias; batch norm's 2 per channel; fc(10) over 6·6·4 = 144 values
    ("12x12x1 conv(4,3,pad=same,bias=false) batchnorm relu pool(2) fc(10)", 4 * 9, 8 + 1450),
    # a residual block's convs count, its batch norm does not
    ("8x8x2 conv(4,1) residual(conv(4,3,pad=same) batchnorm relu) globalavgpool fc(3)",
     4 * 2 + 4 + 4 * 36 + 4, 8 + 4 * 3 + 3),
    ("12x12x1 fc(4) relu fc(2)", 0, 12 * 12 * 4 + 4 + 10),
])
def test_conv_share_counts_every_convs_weights(text, convs, others):
    from convnet.spec import load
    from convnet.train import conv_share

    spec = load(text)
    assert conv_share(spec, spec.input) == pytest.approx(convs / (convs + others))
