"""Training: a data set, a description and a TrainConfig → a run directory.

    run/
      best/         the checkpoint with the best validation accuracy (its test metrics inside)
      last/         the checkpoint after the last epoch, with the optimiser state (--resume)
      train.json    the TrainConfig, as given
      metrics.jsonl one JSON line per epoch
      curve.png     loss and accuracy per epoch

Validation uses a seeded, stratified hold-out of the training images; the test split is used
once, at the end, on the best checkpoint. Each epoch's order comes from (seed, epoch), so a run
resumed from last/ continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import augment as augmentation
from . import checkpoint, distributed
from .config import OptimizerConfig, SpeedOptions
from .data import Dataset, load_dataset
from .data.dataset import stratified_split
from .data.sources import known_shape
from .errors import UserError
from .network import Network, check_training_fits
from .schedules import make_schedule
from .shapes import format_shape, infer
from .spec import load as load_spec
from .spec import parse_input_shape

# CONV–RELU–POOL twice, then FC, as in the lecture; 91–92% on Fashion-MNIST in 8 epochs.
DEFAULT_NETWORK = ("conv(32,3,pad=same) relu pool(2) conv(64,3,pad=same) relu pool(2) "
                   "fc(128) relu fc(10)")


@dataclass
class TrainConfig:
    network: str = DEFAULT_NETWORK  # the description (the input shape comes from the data)
    data: str = "fashion-mnist"  # fashion-mnist | mnist | cifar10 | a folder of class folders
    input: str | None = None  # HxWxC for a folder of images (named data sets know theirs)
    data_dir: str | None = None  # where to look for (and download) data sets first
    engine: str = "auto"  # numpy | torch | auto (torch when installed)
    device: str | None = None  # torch engine: cpu (default), cuda, cuda:N, auto
    epochs: int = 8
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.05  # peak learning rate
    momentum: float = 0.9  # SGD
    nesterov: bool = True  # SGD
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # constant | cosine | onecycle | step
    warmup_epochs: float = 0.5  # linear warm-up before the cosine decay
    label_smoothing: float = 0.0
    augment: str = ""  # e.g. "crop,flip" (see convnet/augment.py)
    val_size: float | None = None  # validation images held out of train (a fraction if < 1);
    # None: a tenth, at least one per class, at most 5,000 (validation_size below)
    test_fraction: float = 0.2  # folders without train/ and test/: share held out for test
    seed: int = 0
    init: str = "auto"  # auto | he | xavier | normal
    dtype: str = "float32"
    channels_last: bool = False  # torch engine: N×H×W×C memory for the convolutions
    bf16: bool = False  # torch engine: bfloat16 matrix work where the hardware has it
    compile: bool = False  # torch engine: torch.compile the model
    tta: bool = False  # evaluate on each image and its mirror (validation, test, predict)
    recipe: str | None = None  # the named recipe these settings came from, if any
    tensorboard: str | None = None  # write TensorBoard logs to this folder

    def check(self) -> "TrainConfig":
        problems = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.warmup_epochs >= 0, "--warmup-epochs must be ≥ 0"),
            (self.val_size is None or self.val_size >= 0, "--val-size must be ≥ 0"),
            (0 < self.test_fraction < 1, "--test-fraction must be between 0 and 1"),
        ]
        for ok, message in problems:
            if not ok:
                raise UserError(message)
        augmentation.parse(self.augment)
        return self

    @classmethod
    def from_json(cls, data: Any, where: str = "training settings") -> "TrainConfig":
        """The settings saved in a run's train.json, each of its declared type."""
        from .schema import check_dataclass

        return cls(**check_dataclass(cls, data, where)).check()

    def speed(self) -> SpeedOptions:
        return SpeedOptions(self.channels_last, self.bf16, self.compile)

    def optimizer_config(self) -> OptimizerConfig:
        return OptimizerConfig(name=self.optimizer, lr=self.lr, momentum=self.momentum,
                               nesterov=self.nesterov and self.optimizer == "sgd"
                               and self.momentum > 0, weight_decay=self.weight_decay)


@dataclass
class Result:
    directory: Path
    test_accuracy: float
    best_epoch: int
    seconds: float


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, on the 0–1 scale."""
    flat = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255
    std = flat.std(axis=0)
    return tuple(flat.mean(axis=0).tolist()), tuple(np.where(std > 0, std, 1.0).tolist())


def prepare(config: TrainConfig) -> tuple[Dataset, Any]:
    """The data set and the parsed network, checked against each other."""
    network = load_spec(config.network)
    shape = parse_input_shape(config.input) if config.input else network.input
    expected = shape or known_shape(config.data)
    if expected is not None:  # a network that cannot fit is refused before any data is read
        check_training_fits(infer(network.with_input(expected)), config.dtype,
                            config.batch_size, _short(config.network))
    data = load_dataset(config.data, config.data_dir, shape=shape,
                        test_fraction=config.test_fraction, seed=config.seed)
    if network.input is not None and network.input != data.shape:
        raise UserError(f"the network's input is {format_shape(network.input)} but the "
                        f"{data.name} images are {format_shape(data.shape)}")
    network = network.with_input(data.shape)
    return data, network


AUTO_VALIDATION = (0.1, 5000)  # share of the training images, and at most this many


def validation_fraction(val_size: float | None, images: int, classes: int) -> float:
    """The share of the training images held out for validation: --val-size as a count (≥ 1)
    or a fraction (< 1); by default a tenth, at least one image per class, at most 5,000.
    More than half is refused: the rest would be too few to learn from."""
    if images == 0:
        return 0.0
    if val_size is None:
        count = min(AUTO_VALIDATION[1], max(classes, round(AUTO_VALIDATION[0] * images)))
        return min(count / images, 0.5)
    count = val_size if val_size >= 1 else val_size * images
    if count > images / 2:
        raise UserError(f"--val-size {val_size:g} would hold out {round(count):,} of the "
                        f"{images:,} training images; at most half ({images // 2:,}) can be "
                        "held out for validation")
    return count / images


def _short(description: str) -> str:
    """A description as a message quotes it: a name, or its first 60 characters."""
    text = " ".join(description.split())
    return text if len(text) <= 60 else text[:59] + "…"


def steps_per_epoch(images: int, batch_size: int) -> int:
    return max(1, images // batch_size)  # the last partial batch is dropped


def build_network(config: TrainConfig, network: Any, train_images: np.ndarray) -> Network:
    """The Network a config describes, normalised by the training images' statistics, with its
    learning-rate schedule over the whole run."""
    check_training_fits(infer(network), config.dtype, config.batch_size, _short(config.network))
    net = Network(network, engine=config.engine, device=config.device, seed=config.seed,
                  dtype=config.dtype, init=config.init, optimizer=config.optimizer_config(),
                  label_smoothing=config.label_smoothing,
                  normalization=channel_stats(train_images), speed=config.speed(),
                  tta=config.tta)
    steps = steps_per_epoch(len(train_images), config.batch_size)
    net.schedule = make_schedule(config.schedule, config.lr, steps * config.epochs,
                                 int(config.warmup_epochs * steps))
    return net


class Trainer:
    def __init__(self, config: TrainConfig, directory: Path, *, force: bool = False,
                 resume: bool = False, progress: bool | None = None) -> None:
        self.config = config.check()
        self.directory = Path(directory)
        self.world = distributed.join(config.engine, config.device, config.batch_size)
        self.progress = (sys.stderr.isatty() if progress is None else progress) and \
            self.world.main
        self.data, network = prepare(config)
        classes = len(self.data.classes)
        if network.num_classes is not None and network.num_classes != classes:
            raise UserError(f"the network ends in fc({network.num_classes}) but {self.data.name} "
                            f"has {classes} classes; end it with fc({classes})")
        fraction = validation_fraction(config.val_size, len(self.data.train), classes)
        kept, held = stratified_split(self.data.train.labels, fraction, config.seed)
        self.train, self.val = self.data.train.take(kept), self.data.train.take(held)
        if len(self.train) < 1:
            raise UserError(f"{self.data.name}: no training images left after the validation "
                            "hold-out")
        self.net = build_network(config, network, self.train.images)
        if self.world.size > 1:
            self.net.engine.distribute()
        self.steps_per_epoch = steps_per_epoch(len(self.train), config.batch_size)
        self.augment = augmentation.parse(config.augment)
        augmentation.check_fits(self.augment, *self.data.shape[:2])
        if config.tta and "flip" not in self.augment and self.world.main:
            # Measured on Fashion-MNIST (all shoes face one way): 90.7% → 76.3% test accuracy.
            print("convnet: note: --tta also looks at each image's mirror, which the network never "
                  "sees in training without --augment flip; that usually costs accuracy",
                  file=sys.stderr)
        self.start_epoch, self.best = 0, {"epoch": 0, "val_accuracy": -1.0}
        self.rows: list[dict[str, Any]] = []  # the metrics of every epoch so far
        self.best_state: dict[str, np.ndarray] | None = None  # the weights at the best epoch
        self.best_row: dict[str, Any] = {}
        self.board = None
        if config.tensorboard and self.world.main:
            from .board import Board
            sample = (self.val if len(self.val) else self.data.test).images[0]
            self.board = Board(Path(config.tensorboard), self.net, sample)
        if resume:
            self._resume()
        elif self.world.main:  # rank 0 alone writes the run directory
            self._claim_directory(force)

    # -- the run directory -------------------------------------------------------------------
    def _claim_directory(self, force: bool) -> None:
        d = self.directory
        if d.exists() and any(d.iterdir()):
            if not force:
                raise UserError(f"{d} already exists; use --force to replace it, or "
                                f"--resume {d} to continue it")
            for name in ("best", "last", "metrics.jsonl", "curve.png", "train.json"):
                target = d / name
                if target.is_dir():
                    import shutil
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        d.mkdir(parents=True, exist_ok=True)
        checkpoint.write_json(d / "train.json", asdict(self.config))

    def _resume(self) -> None:
        """Where the run stopped, read once: last/'s weights, optimiser and loop state, best/'s
        weights and metrics, and the metrics of the epochs before."""
        last, best = self.directory / "last", self.directory / "best"
        self.net.load_state_dict(checkpoint.load_state(last, self.net))
        state = checkpoint.load_resume_state(last, self.net)
        self.start_epoch = int(state["epoch"])
        self.net.steps = int(state["steps"])
        self.best = state["best"]
        if state.get("rng") is not None:
            try:
                self.net.engine.set_rng_state(state["rng"])
            except (KeyError, TypeError, ValueError, RuntimeError):
                raise UserError(f"cannot resume: {last / 'training.json'} holds a random "
                                "generator state this engine cannot take") from None
        if (best / "model.json").is_file():
            self.best_state = checkpoint.load_state(best, self.net)
            self.best_row = checkpoint.read_meta(best).get("metrics", {})
        history = self.directory / "metrics.jsonl"
        if history.is_file():  # an epoch written after last/ was saved is run again
            rows = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
            self.rows = [row for row in rows if row.get("epoch", 0) <= self.start_epoch]

    # -- the loop ----------------------------------------------------------------------------
    def run(self, on_epoch_end: Callable[[int], None] | None = None) -> Result:
        config, started = self.config, time.perf_counter()
        for epoch in range(self.start_epoch, config.epochs):
            row = self._epoch(epoch)
            if not self.world.main:
                continue
            self.rows.append(row)
            checkpoint.write_lines(self.directory / "metrics.jsonl",
                                   [json.dumps(r) for r in self.rows])
            self._save(epoch + 1, row)
            from .figures import training_curve
            training_curve(self.rows, self.directory / "curve.png")
            if self.board is not None:
                self.board.epoch(epoch + 1, row, self.net)
            val = "no validation images" if math.isnan(row["val_accuracy"]) else \
                f"val accuracy {row['val_accuracy']:.2%}"
            print(f"epoch {epoch + 1}/{config.epochs}: loss {row['train_loss']:.4f}, {val}, "
                  f"{row['images_per_second']:.0f} img/s, {row['seconds']:.1f} s", flush=True)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)
        if self.board is not None:
            self.board.close()
        if not self.world.main:
            return Result(self.directory, math.nan, 0, time.perf_counter() - started)
        return self._finish(time.perf_counter() - started)

    def _epoch(self, epoch: int) -> dict[str, Any]:
        config, net = self.config, self.net
        bar = _progress(self.progress, self.steps_per_epoch * config.batch_size,
                        f"epoch {epoch + 1}/{config.epochs}")
        stats = train_epoch(net, self.train.images, self.train.labels, config, epoch,
                            self.augment, bar, self.world)
        val = net.evaluate(self.val.images, self.val.labels) if len(self.val) else \
            {"loss": math.nan, "accuracy": math.nan}
        return {"epoch": epoch + 1, "step": net.steps, "lr": net.lr, **stats,
                "val_loss": val["loss"], "val_accuracy": val["accuracy"]}

    def _save(self, epoch: int, row: dict[str, Any]) -> None:
        better = not (row["val_accuracy"] <= self.best["val_accuracy"])  # NaN (no val) counts
        if better:
            self.best = {"epoch": epoch, "val_accuracy": row["val_accuracy"]}
        common = {"classes": self.data.classes, "training": asdict(self.config)}
        resume = {"epoch": epoch, "steps": self.net.steps, "best": self.best,
                  "rng": self.net.engine.rng_state()}
        checkpoint.save(self.net, self.directory / "last", metrics=row, resume=resume, **common)
        if better:
            self.best_state, self.best_row = self.net.state_dict(), row
            checkpoint.save(self.net, self.directory / "best", metrics=row, **common)

    def _finish(self, seconds: float) -> Result:
        """The test set, once, on the best epoch's weights (kept since); best/ gets the result."""
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        test = self.net.evaluate(self.data.test.images, self.data.test.labels)
        metrics = {**self.best_row, "test_loss": test["loss"], "test_accuracy": test["accuracy"],
                   "test_images": len(self.data.test)}
        checkpoint.save(self.net, self.directory / "best", classes=self.data.classes,
                        metrics=metrics, training=asdict(self.config))
        return Result(self.directory, test["accuracy"], self.best["epoch"], seconds)


def resume(directory: Path, epochs: int | None = None) -> "Trainer":
    """The Trainer that continues the run in `directory` from its last epoch (`epochs`: a new
    total, the one setting a resume may change)."""
    from .schema import read_json

    directory = Path(directory)
    if not (directory / "train.json").is_file():
        run = directory.parent
        if directory.name in ("best", "last") and (run / "train.json").is_file():
            raise UserError(f"--resume takes the run directory, not one of its checkpoints: "
                            f"--resume {run}")
        raise UserError(f"cannot resume: {directory} is not a training run (no train.json; "
                        "give the directory that convnet train --out wrote)")
    saved = read_json(directory / "train.json", "cannot resume")
    checkpoint.read_meta(directory / "last")
    config = TrainConfig.from_json(saved, str(directory / "train.json"))
    if epochs is not None:
        config.epochs = epochs
    return Trainer(config, directory, resume=True)


def train_epoch(net: Network, images: np.ndarray, labels: np.ndarray, config: TrainConfig,
                epoch: int, augment: tuple[str, ...] = (), bar=None,
                world: distributed.World = distributed.World()) -> dict[str, float]:
    """One pass over the training images in batches; the order comes from (seed, epoch). With
    several processes, each takes its share of every step's batch.

    Returns the mean loss and accuracy of the batches, the seconds it took and images per second
    (training only: nothing else happens inside)."""
    steps = steps_per_epoch(len(images), config.batch_size)
    order = np.random.default_rng([config.seed, epoch]).permutation(len(images))
    augment_rng = np.random.default_rng([config.seed, epoch, 1])
    losses, accuracies = [], []
    start = time.perf_counter()
    for step in range(steps):
        index = np.sort(order[step * config.batch_size:(step + 1) * config.batch_size])
        index = distributed.shard(index, world)
        batch = augmentation.augment(images[index], augment, augment_rng)
        losses.append(net.train_step(batch, labels[index]))
        accuracies.append(net.last_accuracy)
        if bar is not None:
            bar.update(len(index))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}",
                            acc=f"{np.mean(accuracies[-20:]):.1%}", refresh=False)
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    return {"train_loss": float(np.mean(losses)), "train_accuracy": float(np.mean(accuracies)),
            "seconds": seconds,
            "images_per_second": steps * config.batch_size / seconds}  # all ranks together


def _progress(enabled: bool, total: int, description: str):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=description, unit="img", unit_scale=True, leave=False,
                file=sys.stderr, dynamic_ncols=True)
