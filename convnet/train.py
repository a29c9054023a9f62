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
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import augment as augmentation
from . import checkpoint, distributed, faults
from .averaging import Averages
from .config import MUON_LR, OptimizerConfig, SpeedOptions
from .data import Dataset, load_dataset
from .data.dataset import stratified_split
from .data.sources import known_shape, source_of
from .errors import UserError
from .files import recover_directory, remove_leftovers
from .network import Network, check_training_fits
from .schedules import make_schedule, rising_steps
from .shapes import format_shape, infer
from .spec import load as load_spec
from .spec import Conv, parse_input_shape

BALANCE = ("none", "weights", "sampler")


def default_network(shape: tuple[int, int, int], classes: int) -> str:
    """The network a bare `convnet train` uses: the lecture's CONV–RELU–POOL stages (32, 64,
    128, 256 filters) until the maps are at most 8×8, then FC — through a 128-unit hidden
    layer when the last volume is small (≤ 4,096 values), else after global average pooling —
    ending in one output per class. On 28×28×1 with 10 classes, 91–92% on Fashion-MNIST in 8
    epochs and 99% on MNIST."""
    h, w, _ = shape
    stages, filters = [], 32
    while min(h, w) > 8 and len(stages) < 4:
        floor = ",floor=true" if h % 2 or w % 2 else ""
        stages.append(f"conv({filters},3,pad=same) relu pool(2{floor})")
        h, w, filters = h // 2, w // 2, min(filters * 2, 256)
    if not stages:  # an input already small: one stage, no pooling
        stages.append("conv(32,3,pad=same) relu")
        filters = 64
    depth = filters // 2
    head = f"fc(128) relu fc({classes})" if h * w * depth <= 4096 else \
        f"globalavgpool fc({classes})"
    return " ".join(stages + [head])


def default_augmentation(shape: tuple[int, int, int]) -> tuple[str, ...]:
    """What a small training set is augmented with unless --augment says: nothing below 16×16;
    crop; and for colour images also rotate, zoom and light — photos vary in pose, scale and
    exposure, where grey sets are usually scans of centred, upright things (four small folders,
    3 seeds: colour shapes 93.1% → 96.8% and colour letters 46.8% → 52.7% with them, grey
    clothes 86.9% → 84.7% and digits 98.7% → 98.5%; docs/BENCHMARKS.md)."""
    if min(shape[:2]) < 16:
        return ()
    return ("crop", "rotate", "zoom", "light") if shape[2] == 3 else ("crop",)


def conv_share(network: Any, shape: tuple[int, int, int]) -> float:
    """The share of the network's learned weights (biases and batch norm's included) that are its
    convs' — a residual block's convs too — on images of `shape`: what Muon moves."""
    rows = infer(network, shape)
    total = sum(row.params for row in rows)
    convs = sum(row.params for top in rows for row in top.walk() if isinstance(row.layer, Conv))
    return convs / total if total else 0.0


def muon_rate(network: Any, shape: tuple[int, int, int], small: bool) -> float:
    """Muon's rate where --muon-lr is not given: SMALL_MUON_LR for a small training set of colour
    images where the convs hold most of the network's weights (CONV_SHARE: a network ending in
    global average pooling and one fc, as the default network does on images of 48×48 and
    more), else config.MUON_LR — where an fc layer over the last maps holds most of them (the
    default network on 28×28 images: 95%), SGD moves those and the convs learn best slowly.
    Measured with the default network, 3 seeds (docs/BENCHMARKS.md, "Muon's rate follows the
    network"): at 0.15 instead of 0.02, 64×64 colour letters 57.2% → 77.4%, blurred photos
    92.6% → 96.3%, shapes 97.2% → 99.1%; the same letters at 28×28, where the network ends in
    fc(128), 57.7% at 0.02 against 45.8% at 0.1, and 28×28 clothes in colour 78.4% against
    77.4%. Grey clothes at 56×56, whose network ends in global average pooling, did better at
    0.02 (86.4% against 85.2% at 0.15, two seeds), so grey images keep it."""
    return SMALL_MUON_LR if small and shape[2] == 3 and \
        conv_share(network, shape) >= CONV_SHARE else MUON_LR


def said(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def fit_network(network: Any, shape: tuple[int, int, int], classes: int | None
                ) -> tuple[Any, list[str]]:
    """A recipe's network (written for Fashion-MNIST's 28×28 images and 10 classes) fitted to
    other data: each pooling whose window does not fit the maps floors (drops the odd row or
    column, as PyTorch does); where the maps reaching the flatten are more than twice the area
    they are on 28×28 images, global average pooling takes the flatten's place (the fc would
    have as many times more weights to learn, most from a small folder: fast93 on 64×64
    letters 29.8% → 51.4%, docs/BENCHMARKS.md, "A recipe on a small colour folder"); and the
    last fc has one output per class. Returns the network (without input) and what changed,
    in words."""
    from .layers.globalavgpool import GlobalAvgPool
    from .recipes import TUNED_ON_SHAPE
    from .spec import FC, Flatten, Pool, Spec

    layers, changes = list(network.layers), []

    def maps(end: int, on: tuple[int, int, int]) -> tuple[int, ...]:
        """The output of layers[:end] on images of shape `on`."""
        return infer(Spec(tuple(layers[:end]), on))[-1].output if end else on

    for i, layer in enumerate(layers):
        if not isinstance(layer, Pool) or layer.floor:
            continue
        try:
            infer(Spec(tuple(layers[:i + 1]), shape))
        except UserError:
            layers[i] = replace(layer, floor=True)
            size = maps(i, shape)  # H×W×C
            changes.append(f"layer {i} {layer.to_text()} floors on {size[0]}x{size[1]} maps "
                           f"({layers[i].to_text()})")
    flatten = next((i for i, layer in enumerate(layers) if isinstance(layer, Flatten)), None)
    if flatten is not None:
        here, tuned = maps(flatten, shape), maps(flatten, TUNED_ON_SHAPE)
        if here[0] * here[1] > 2 * tuned[0] * tuned[1]:
            layers[flatten] = GlobalAvgPool()
            changes.append(f"layer {flatten} globalavgpool in place of flatten: "
                           f"{format_shape(here)} maps reach it, not {format_shape(tuned)} as "
                           "on 28x28 images")
    last = max((i for i, layer in enumerate(layers) if isinstance(layer, FC)), default=None)
    if classes is not None and last is not None and layers[last].units != classes:
        changes.append(f"the last layer is fc({classes}) for the {classes} classes, not "
                       f"{layers[last].to_text()}")
        layers[last] = replace(layers[last], units=classes)
    return Spec(tuple(layers)), changes


DEFAULT_NETWORK = default_network((28, 28, 1), 10)  # what the README quotes
SMALL_DATA = 20_000  # fewer training images than this: augmentation and label smoothing
# by default (a folder of 3,600 digits: 97.3% plain, 98.7% with both; docs/BENCHMARKS.md), and
# a whitened first conv (360 colour shapes: 37.5% → 93.1% with the 50-step warm-up; ibid.)
SMALL_MUON_LR = 0.15  # Muon's rate on a small set of colour images where none is given and
CONV_SHARE = 0.5  # the convs hold at least this share of the network's weights (see muon_rate)
WARMUP_STEPS = 50  # the default warm-up's least length in steps (see warmup_steps)
STEP_BUDGET = 3_500  # optimiser steps when --epochs is not given (8 epochs of Fashion-MNIST)
EPOCH_RANGE = (8, 200)  # ... but at least 8 epochs and at most 200
RUN_FILES = ("best", "last", "metrics.jsonl", "curve.png", "train.json")  # what a run writes
CURVE_SECONDS = 10.0  # curve.png is drawn again after this long at the soonest (and at the end)


@dataclass
class TrainConfig:
    network: str | None = None  # the description; None: default_network for the data
    data: str = "fashion-mnist"  # fashion-mnist | mnist | cifar10 | a folder of class folders
    input: str | None = None  # HxWxC for a folder of images (named data sets know theirs)
    data_dir: str | None = None  # where to look for (and download) data sets first
    engine: str = "auto"  # numpy | torch | auto (torch when installed)
    device: str | None = None  # torch engine: cpu (default), cuda, cuda:N, auto
    epochs: int | None = None  # None: enough for STEP_BUDGET steps, within EPOCH_RANGE
    patience: int | None = None  # stop after this many epochs without a better validation
    # accuracy (epochs_waited: not counting the warm-up); None: a fifth of the epochs (at least
    # 8) when --epochs was not given, else never
    balance: str = "none"  # none | weights (class-weighted loss) | sampler (balanced batches)
    batch_size: int = 128
    optimizer: str | None = None  # sgd | adam | adamw | muon (conv kernels by Muon, the rest by
    # SGD); None: muon for a small training set or where muon_lr is given, else sgd
    muon_lr: float | None = None  # muon: the conv kernels' peak learning rate (None: muon_rate)
    lr: float = 0.05  # peak learning rate
    momentum: float = 0.9  # SGD
    nesterov: bool = True  # SGD
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # constant | cosine | onecycle | step
    warmup_epochs: float | None = None  # linear warm-up before the cosine decay; None: half an
    # epoch, and at least WARMUP_STEPS steps (at most a fifth of the run) — see warmup_steps
    label_smoothing: float | None = None  # None: 0.1 for a small training set, else 0
    augment: str | None = None  # e.g. "crop,flip" (see convnet/augment.py); None: for a small
    # training set (fewer than SMALL_DATA images), default_augmentation's, else nothing
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
    tta_shift: int = 0  # also on the image moved this many pixels up, down, left and right
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: none)
    lookahead: int = 0  # steps between lookahead's pulls back to the slow weights (0: none)
    whiten: bool | None = None  # first conv layer initialised by whitening the images'
    # patches; None: for a small training set where the network starts with a conv that fits
    identity_init: bool = False  # convs from C to C channels start as the identity plus noise
    bn_lr_scale: float = 1.0  # torch engine: batch norm's scale and shift learn this much faster
    recipe: str | None = None  # the named recipe these settings came from, if any
    # a recipe's epochs are passes over this many images (those it was tuned on): a smaller
    # training set gets as many steps, in more epochs (None: the epochs are as given)
    epochs_of: int | None = None
    # a recipe's augmentation (--augment not given): a small training set adds
    # default_augmentation's kinds to it, as it gives them to a bare run (resolved by the Trainer)
    augment_more: bool = False
    tensorboard: str | None = None  # write TensorBoard logs to this folder
    cache_dir: str | None = None  # where a folder's decoded images are kept (see data/cache.py)
    cache: bool = True  # keep them (False: decode into memory every run)

    def check(self) -> "TrainConfig":
        problems = [
            (self.epochs is None or self.epochs >= 1,
             f"--epochs must be at least 1, got {self.epochs}"),
            (self.patience is None or self.patience >= 1,
             f"--patience must be at least 1, got {self.patience}"),
            (self.balance in BALANCE, f"--balance is one of {', '.join(BALANCE)}, got "
                                      f"{self.balance!r}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.warmup_epochs is None or self.warmup_epochs >= 0,
             "--warmup-epochs must be ≥ 0"),
            (self.val_size is None or self.val_size >= 0, "--val-size must be ≥ 0"),
            (0 < self.test_fraction < 1, "--test-fraction must be between 0 and 1"),
            (0 <= self.tta_shift <= 4, f"--tta-shift is 0 to 4 pixels, got {self.tta_shift}"),
            (self.ema == 0 or 0 < self.ema < 1,
             f"--ema takes a decay between 0 and 1 (e.g. 0.99; 0 turns it off), got "
             f"{self.ema:g}: 1 would never move"),
            (not 0 < self.ema < 0.5,
             f"--ema {self.ema:g} averages next to nothing (a horizon of about "
             f"{1 / max(1e-9, 1 - self.ema):.1f} steps); use 0.9 to 0.999, or 0 for none"),
            (self.lookahead == 0 or self.lookahead >= 2,
             f"--lookahead takes the steps between pulls (at least 2, e.g. 5; 0 turns it off), "
             f"got {self.lookahead}"),
            (self.bn_lr_scale > 0, f"--bn-lr-scale must be above 0, got {self.bn_lr_scale:g}"),
            (self.muon_lr is None or self.optimizer in (None, "muon"),
             f"--muon-lr is the conv kernels' rate under --optimizer muon, and the optimizer "
             f"is {self.optimizer}: add --optimizer muon or drop --muon-lr"),
            (self.muon_lr is None or self.muon_lr > 0,
             f"--muon-lr must be above 0, got {self.muon_lr}"),
        ]
        for ok, message in problems:
            if not ok:
                raise UserError(message)
        augmentation.parse(self.augment or "")
        return self

    @classmethod
    def from_json(cls, data: Any, where: str = "training settings") -> "TrainConfig":
        """The settings saved in a run's train.json, each of its declared type."""
        from .schema import check_dataclass

        return cls(**check_dataclass(cls, data, where)).check()

    def speed(self) -> SpeedOptions:
        return SpeedOptions(self.channels_last, self.bf16, self.compile)

    def optimizer_config(self) -> OptimizerConfig:
        muon = {} if self.muon_lr is None else {"muon_lr": self.muon_lr}
        name = self.optimizer or ("muon" if self.muon_lr is not None else "sgd")  # (unresolved)
        return OptimizerConfig(name=name, lr=self.lr, momentum=self.momentum,
                               nesterov=self.nesterov and name in ("sgd", "muon")
                               and self.momentum > 0, weight_decay=self.weight_decay,
                               bn_lr_scale=self.bn_lr_scale, **muon)


@dataclass
class Result:
    directory: Path
    test_accuracy: float
    best_epoch: int
    seconds: float
    recall: dict[str, float | None] = field(default_factory=dict)  # per class, on the test set
    stopped_early: str | None = None


def channel_stats(images) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, on the 0–1 scale, read a few
    megabytes at a time (a folder's images may not fit in memory)."""
    n, channels = len(images), images.shape[-1]
    chunk = max(1, (4 << 20) // max(1, int(np.prod(images.shape[1:]))))
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, n, chunk):
        block = np.asarray(images[start:start + chunk]).reshape(-1, channels)
        values = block.astype(np.float64) / 255
        total += values.sum(axis=0)
        squares += np.einsum("ij,ij->j", values, values)
        count += len(values)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean * mean, 0.0))
    return tuple(mean.tolist()), tuple(np.where(std > 0, std, 1.0).tolist())


def prepare(config: TrainConfig) -> tuple[Dataset, Any, list[str]]:
    """The data set and the parsed network (given, or the default for the data), checked
    against each other; a network that cannot fit is refused before any data is read. A
    recipe's own network is fitted to the data: the third item says what changed (empty
    otherwise)."""
    from .data.sources import FolderOptions
    from .recipes import own_network

    network = load_spec(config.network) if config.network else None
    shape = parse_input_shape(config.input) if config.input else \
        (network.input if network is not None else None)
    expected = shape or known_shape(config.data)
    fitted = own_network(config.recipe, config.network)  # a recipe's, fitted to the data
    if network is not None and expected is not None:
        probe = fit_network(network, expected, None)[0] if fitted else network
        check_training_fits(infer(probe.with_input(expected)), config.dtype,
                            config.batch_size, _short(config.network))
    importing = _import_torch_meanwhile() if config.engine in ("auto", "torch") else None
    try:
        data = load_dataset(config.data, config.data_dir, shape=shape,
                            test_fraction=config.test_fraction, seed=config.seed,
                            options=FolderOptions(config.cache_dir, config.cache))
    finally:
        if importing is not None:  # torch must be whole before anything else imports it
            importing.join()
    changes: list[str] = []
    if network is None:
        network = load_spec(default_network(data.shape, len(data.classes)))
    elif fitted:
        network, changes = fit_network(network, data.shape, len(data.classes))
    elif network.input is not None and network.input != data.shape:
        raise UserError(f"the network's input is {format_shape(network.input)} but the "
                        f"{data.name} images are {format_shape(data.shape)}")
    return data, network.with_input(data.shape), changes


def _import_torch_meanwhile() -> threading.Thread | None:
    """Start importing PyTorch (a second or more) on a thread while the data loads; the caller
    joins it before going on (two threads importing torch at once break its import)."""
    import importlib
    import importlib.util

    if "torch" in sys.modules or importlib.util.find_spec("torch") is None:
        return None
    thread = threading.Thread(target=_quiet_import, args=("torch",), daemon=True,
                              name="convnet-import-torch")
    thread.start()
    return thread


def _quiet_import(name: str) -> None:
    try:
        __import__(name)
    except Exception:  # noqa: BLE001 - the engine's own import reports it properly
        pass


def epochs_for(steps_per_epoch: int) -> int:
    """Epochs enough for STEP_BUDGET optimiser steps, within EPOCH_RANGE."""
    low, high = EPOCH_RANGE
    return int(min(high, max(low, math.ceil(STEP_BUDGET / max(1, steps_per_epoch)))))


def class_report(labels: np.ndarray, classes: tuple[str, ...]) -> list[str]:
    """Per-class counts of the training images, and a warning for classes with very few."""
    counts = np.bincount(labels, minlength=len(classes))
    shown = ", ".join(f"{name} {count:,}" for name, count in zip(classes, counts))
    if counts.min() == counts.max():
        shown = f"{counts[0]:,} each ({len(classes)} classes)"
    elif len(classes) > 20:
        shown = f"{counts.min():,} to {counts.max():,} ({len(classes)} classes)"
    lines = [f"training images per class: {shown}"]
    median = float(np.median(counts))
    few = [(name, int(count)) for name, count in zip(classes, counts)
           if count < median / RARE]
    if few:
        listed = ", ".join(f"{name} ({count})" for name, count in few[:5])
        lines.append(f"warning: few training images for {listed}" +
                     (f" and {len(few) - 5} more" if len(few) > 5 else "") +
                     f" against {median:,.0f} for the median class; --balance weights or "
                     "--balance sampler gives them more say")
    elif counts.max() < FEW:
        lines.append(f"warning: at most {counts.max()} training images per class: a ConvNet "
                     "learns little from so few")
    return lines


RARE = 5  # a class with fewer than the median class's images / RARE is warned about
FEW = 10  # ... and so is a data set without this many images in any class


AUTO_VALIDATION = (0.1, 5000)  # share of the training images, and at most this many
LEAST_VALIDATION = 500  # ... held out only where it has this many: on fewer, the best epoch is
# chosen by luck and the patience stops runs that have not yet learnt (144 photos of shapes, 15
# held out: a bare run stopped at epoch 80 of 200 and kept epoch 16, 54.6%; all of them
# trained on for 200 epochs, 75.0%), and the images held out are missed (2,000 grey clothes,
# 200 held out: 85.7% against 87.0% with Muon; docs/BENCHMARKS.md, "A bare run on a small
# folder")


def validation_fraction(val_size: float | None, images: int, classes: int) -> float:
    """The share of the training images held out for validation: --val-size as a count (≥ 1)
    or a fraction (< 1); by default a tenth, at least one image per class, at most 5,000 — and
    none where that would be fewer than LEAST_VALIDATION images (the run then trains on all of
    them and keeps its last epoch). More than half is refused: the rest would be too few to
    learn from."""
    if images == 0:
        return 0.0
    if val_size is None:
        count = min(AUTO_VALIDATION[1], max(classes, round(AUTO_VALIDATION[0] * images)))
        return min(count / images, 0.5) if count >= LEAST_VALIDATION else 0.0
    count = val_size if val_size >= 1 else val_size * images
    if count > images / 2:
        raise UserError(f"--val-size {val_size:g} would hold out {round(count):,} of the "
                        f"{images:,} training images; at most half ({images // 2:,}) can be "
                        "held out for validation")
    return count / images


def _short(description: str | None) -> str:
    """A description as a message quotes it: a name, or its first 60 characters."""
    text = " ".join((description or "the default network").split())
    return text if len(text) <= 60 else text[:59] + "…"


def steps_per_epoch(images: int, batch_size: int) -> int:
    return max(1, images // batch_size)  # the last partial batch is dropped


def warmup_steps(epochs: float | None, per_epoch: int, total: int) -> int:
    """The cosine schedule's warm-up in steps: `epochs` of them when given; by default half an
    epoch, but at least WARMUP_STEPS where the run is five times as long (else a fifth of it) —
    on a small set half an epoch is a step or two, too few to keep the first steps from
    blowing up (docs/BENCHMARKS.md, "A small folder's first conv starts from whitening")."""
    if epochs is not None:
        return int(epochs * per_epoch)
    return max(int(0.5 * per_epoch), min(WARMUP_STEPS, total // 5))


def epochs_waited(done: int, best: int, warm: int) -> int:
    """Epochs without a better validation accuracy, for the patience: counted from the best
    epoch, but not before the warm-up's end — a best epoch while the learning rate still rises
    is often luck on a small validation set, and the run has not yet learnt at full speed (as
    Keras's EarlyStopping(start_from_epoch=…); docs/BENCHMARKS.md, "A small colour folder")."""
    return done - max(best, warm)


def has_conv(layers: Any) -> bool:
    """Whether any of `layers` (a residual block's inside too) is a conv."""
    return any(isinstance(layer, Conv) or any(has_conv(inner) for _, inner in layer.children())
               for layer in layers)


def class_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """--balance weights: each class weighs N / (K · its count), so every class adds up to the
    same share of the loss (a class without images weighs 0)."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    return np.divide(len(labels), classes * counts, out=np.zeros(classes), where=counts > 0)


def build_network(config: TrainConfig, network: Any, train_images: np.ndarray,
                  train_labels: np.ndarray | None = None, warmup: int | None = None
                  ) -> Network:
    """The Network a config describes (its epochs resolved), normalised by the training images'
    statistics, with its learning-rate schedule over the whole run (`warmup` steps of it; by
    default warmup_steps' — the Trainer passes the one its patience counts)."""
    # a batch is never larger than the training set (88 photos in batches of 128: one of 88)
    check_training_fits(infer(network), config.dtype, min(config.batch_size, len(train_images)),
                        _short(config.network or str(network.without_input())))
    weights = None
    if config.balance == "weights" and train_labels is not None:
        weights = class_weights(train_labels, network.num_classes or int(train_labels.max()) + 1)
    net = Network(network, engine=config.engine, device=config.device, seed=config.seed,
                  dtype=config.dtype, init=config.init, optimizer=config.optimizer_config(),
                  label_smoothing=config.label_smoothing or 0.0,
                  normalization=channel_stats(train_images), speed=config.speed(),
                  tta=config.tta, class_weights=weights, tta_shift=config.tta_shift)
    if config.bn_lr_scale != 1 and net.engine.name != "torch":
        raise UserError("--bn-lr-scale is the torch engine's (its optimiser has parameter "
                        "groups); drop it or use --engine torch")
    if config.whiten:
        from .initial import whiten
        whiten(net, train_images, config.seed)
    if config.identity_init:
        from .initial import identity_init
        if not identity_init(net):
            raise UserError("--identity-init changes convs from C to C channels with an odd "
                            "kernel, and this network has none")
    steps = steps_per_epoch(len(train_images), config.batch_size)
    epochs = config.epochs or epochs_for(steps)
    if warmup is None:
        warmup = warmup_steps(config.warmup_epochs, steps, steps * epochs)
    net.schedule = make_schedule(config.schedule, config.lr, steps * epochs, warmup)
    return net


class Trainer:
    def __init__(self, config: TrainConfig, directory: Path, *, force: bool = False,
                 resume: bool = False, progress: bool | None = None) -> None:
        config = config.check()
        self.directory = Path(directory)
        self.world = distributed.join(config.engine, config.device, config.batch_size)
        self.progress = (sys.stderr.isatty() if progress is None else progress) and \
            self.world.main
        self.data, network, fitted = prepare(config)
        classes = len(self.data.classes)
        if fitted:  # a recipe's network fitted to these images: saved so, for --resume
            config = replace(config, network=str(network.without_input()))
        if network.num_classes is not None and network.num_classes != classes:
            raise UserError(f"the network ends in fc({network.num_classes}) but {self.data.name} "
                            f"has {classes} classes; end it with fc({classes})")
        fraction = validation_fraction(config.val_size, len(self.data.train), classes)
        kept, held = stratified_split(self.data.train.labels, fraction, config.seed)
        self.train, self.val = self.data.train.take(kept), self.data.train.take(held)
        if len(self.train) < 1:
            raise UserError(f"{self.data.name}: no training images left after the validation "
                            "hold-out")
        self.steps_per_epoch = steps_per_epoch(len(self.train), config.batch_size)
        small = len(self.train) < SMALL_DATA
        regularised: dict[str, str] = {}  # what a small set gets, and the option that changes it
        if config.augment is None or config.augment_more:
            own = augmentation.parse(config.augment)
            kinds = [kind for kind in (default_augmentation(self.data.shape) if small else ())
                     if kind not in own]
            config = replace(config, augment=",".join([*own, *kinds]), augment_more=False)
            besides = f" besides the recipe's {said(list(own))}" if own else ""
            if kinds:
                regularised[f"{said(kinds)} augmentation{besides}"] = "--augment"
        if config.label_smoothing is None:
            config = replace(config, label_smoothing=0.1 if small else 0.0)
            if small:
                regularised["label smoothing 0.1"] = "--label-smoothing"
        if config.whiten is None:
            from .initial import can_whiten
            whitened = small and can_whiten(network, self.data.shape)
            config = replace(config, whiten=whitened)
            if whitened:
                regularised["the first conv initialised by whitening"] = "--no-whiten"
        unasked = config.optimizer is None and config.muon_lr is None
        if config.optimizer is None:
            muon = (small and has_conv(network.layers)) or config.muon_lr is not None
            config = replace(config, optimizer="muon" if muon else "sgd")
        if config.optimizer == "muon" and config.muon_lr is None:  # saved, for --resume
            config = replace(config, muon_lr=muon_rate(network, self.data.shape, small))
            if unasked:  # Muon is the small set's default, not the user's choice
                regularised[f"Muon for the conv kernels at {config.muon_lr:g}"] = "--optimizer"
        if config.val_size is None and not len(self.val):
            regularised["every image to train on (too few for a validation hold-out; the last "
                        "epoch is kept)"] = "--val-size"
        recipe_steps = None
        if config.epochs_of is not None and config.epochs is not None:
            steps = config.epochs * steps_per_epoch(config.epochs_of, config.batch_size)
            epochs = min(EPOCH_RANGE[1], max(config.epochs, round(steps / self.steps_per_epoch)))
            if epochs != config.epochs:
                recipe_steps = (config.epochs, steps, config.epochs_of)
            config = replace(config, epochs=epochs, epochs_of=None)  # resolved, for --resume
        if config.epochs is None:  # as many as the data needs: a budget of steps, and patience
            epochs = epochs_for(self.steps_per_epoch)
            config = replace(config, epochs=epochs,
                             patience=config.patience or max(EPOCH_RANGE[0], epochs // 5))
        self.config = config
        self.sample_weights = None  # --balance sampler: each image's chance to be drawn
        if config.balance == "sampler":
            per_class = class_weights(self.train.labels, classes)
            self.sample_weights = per_class[self.train.labels] / per_class[self.train.labels].sum()
        self.notes = class_report(self.train.labels, self.data.classes)
        if fitted:
            self.notes.append(f"recipe {config.recipe} fitted to {self.data.name}'s "
                              f"{format_shape(self.data.shape)} images: " + "; ".join(fitted))
        total_steps = self.steps_per_epoch * config.epochs
        self.warmup = warmup_steps(config.warmup_epochs, self.steps_per_epoch, total_steps)
        # the epoch the learning rate has stopped rising by (the cosine schedule's warm-up, the
        # one-cycle's first 30%): the patience counts from there at the earliest
        rising = rising_steps(config.schedule, total_steps, self.warmup)
        self.warm_epochs = -(-rising // self.steps_per_epoch)
        if config.ema and 1 / (1 - config.ema) > total_steps / 2:
            self.notes.append(f"warning: --ema {config.ema:g} averages over about "
                              f"{1 / (1 - config.ema):,.0f} steps, but the run has "
                              f"{total_steps:,}: the average would be mostly the first "
                              "weights (try a decay with a shorter horizon, e.g. 0.99)")
        if recipe_steps is not None:
            own, steps, images = recipe_steps
            self.notes.append(f"recipe {config.recipe} on {len(self.train):,} training images: "
                              f"{config.epochs} epochs, for the {steps:,} steps of its {own} "
                              f"epochs of {images:,} images (--epochs sets them)")
        if regularised:
            flags = list(regularised.values())
            self.notes.append(f"a small training set ({len(self.train):,} images): "
                              f"{said(list(regularised))} ({', '.join(flags)} "
                              f"choose{'s' if len(flags) == 1 else ''} otherwise)")
        if config.whiten and config.recipe and not isinstance(network.layers[0], Conv):
            # a recipe whitens its own first conv; a network of the user's that starts
            # otherwise trains without it (asked for by hand, --whiten there is an error)
            config = self.config = replace(config, whiten=False)
            self.notes.append(f"recipe {config.recipe}: the first layer is "
                              f"{network.layers[0].to_text()}, not a conv, so it is not "
                              "initialised by whitening")
        self.net = build_network(config, network, self.train.images, self.train.labels,
                                 self.warmup)
        self.averages = Averages(self.net, config.ema, config.lookahead)
        if self.world.size > 1:
            self.net.engine.distribute()
        self.augment = augmentation.parse(config.augment)
        augmentation.check_fits(self.augment, *self.data.shape[:2])
        source = source_of(config.data)
        mirroring = [what for what, used in (("--augment flip", "flip" in self.augment),
                                              ("--tta", config.tta)) if used]
        if source is not None and source.mirrored and mirroring and self.world.main:
            print(f"convnet: note: {' and '.join(mirroring)} mirror{'s' * (len(mirroring) == 1)} "
                  f"{source.title}'s images, but {source.mirrored}: that usually costs accuracy",
                  file=sys.stderr)
        elif config.tta and "flip" not in self.augment and self.world.main:
            # Measured on Fashion-MNIST (all shoes face one way): 90.7% → 76.3% test accuracy.
            print("convnet: note: --tta also looks at each image's mirror, which the network never "
                  "sees in training without --augment flip; that usually costs accuracy",
                  file=sys.stderr)
        self.start_epoch, self.best = 0, {"epoch": 0, "val_accuracy": -1.0}
        self.stopped_early: str | None = None  # why, when the patience ran out
        self._plots = None  # the thread that draws curve.png
        self._curve = None
        self._curve_rows, self._curve_at = 0, 0.0  # the rows drawn last, and when
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
            remove_leftovers(d, RUN_FILES)
            for name in RUN_FILES:
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
        remove_leftovers(self.directory, RUN_FILES)  # a killed run's staging copies
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
        self.averages.load(checkpoint.load_averages(last))
        if (best / "model.json").is_file():
            self.best_state = checkpoint.load_state(best, self.net)
            self.best_row = checkpoint.read_meta(best).get("metrics", {})
        history = self.directory / "metrics.jsonl"
        if history.is_file():  # an epoch written after last/ was saved is run again
            rows = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
            self.rows = [row for row in rows if row.get("epoch", 0) <= self.start_epoch]

    # -- the loop ----------------------------------------------------------------------------
    def plan(self, epochs_chosen: bool = True) -> str:
        """What will be trained on what, for how long and where it goes: the line before the
        first epoch. `epochs_chosen`: the epochs were given (by the caller or a recipe), so
        the run is not said to stop early."""
        from .networks import named

        config, net = self.config, self.net
        shown = config.network.strip().lower() if config.network and named(config.network) \
            else net.spec.without_input()
        length = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
        if not epochs_chosen and config.patience and len(self.val):
            length += f" at most (stopping after {config.patience} without a better validation)"
        return (f"training {shown} on {self.data.name} ({len(self.train):,} train, "
                f"{len(self.val):,} validation, {len(self.data.test):,} test images of "
                f"{'x'.join(map(str, net.input_shape))}), engine {net.engine.name}, "
                f"{length} → {self.directory}")

    def run(self, on_epoch_end: Callable[[int], None] | None = None) -> Result:
        config, started = self.config, time.perf_counter()
        self._curve_at = started  # the first drawing after CURVE_SECONDS (a short run: the end)
        for epoch in range(self.start_epoch, config.epochs):
            row = self._epoch(epoch)
            if not self.world.main:
                continue
            self.rows.append(row)
            checkpoint.write_lines(self.directory / "metrics.jsonl",
                                   [json.dumps(r) for r in self.rows])
            faults.point("epoch:metrics")
            self._save(epoch + 1, row)
            self._draw_curve()
            if self.board is not None:
                self.board.epoch(epoch + 1, row, self.net)
            val = "no validation images" if math.isnan(row["val_accuracy"]) else \
                f"val accuracy {row['val_accuracy']:.2%}"
            print(f"epoch {epoch + 1}/{config.epochs}: loss {row['train_loss']:.4f}, {val}, "
                  f"{row['images_per_second']:.0f} img/s, {row['seconds']:.1f} s", flush=True)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)
            waited = epochs_waited(epoch + 1, self.best["epoch"], self.warm_epochs)
            if config.patience and len(self.val) and waited >= config.patience and \
                    epoch + 1 < config.epochs:
                after = " after the warm-up" if self.best["epoch"] < self.warm_epochs else ""
                self.stopped_early = (f"no better validation accuracy for {waited} epochs"
                                      f"{after} (best {self.best['val_accuracy']:.2%} at epoch "
                                      f"{self.best['epoch']})")
                print(f"stopping early: {self.stopped_early}", flush=True)
                break
        if self.board is not None:
            self.board.close()
        if not self.world.main:
            return Result(self.directory, math.nan, 0, time.perf_counter() - started)
        if self._curve_rows < len(self.rows):  # the last epochs, where they were skipped
            self._draw_curve(final=True)
        result = self._finish(time.perf_counter() - started)
        self._curve_drawn()  # drawn meanwhile, on its thread
        return result

    def _draw_curve(self, final: bool = False) -> None:
        """curve.png, drawn on a thread of its own while the next epoch trains (matplotlib's
        import and drawing take about a second, which a short run would otherwise wait for).
        While training, at most once every CURVE_SECONDS and never while the last drawing is
        still going: drawing holds the GIL that the training loop needs too, and on a small
        folder (an epoch of 4,000 digits takes 0.8 s) drawing every epoch slowed fast91's
        31 epochs from 22 to 31 s. `final`: the last rows, drawn whatever the time."""
        from concurrent.futures import ThreadPoolExecutor

        from .figures import training_curve

        if not final and (time.perf_counter() - self._curve_at < CURVE_SECONDS or
                          (self._curve is not None and not self._curve.done())):
            return  # drawn later, with these rows too
        self._curve_drawn()  # one drawing at a time: pyplot is not for two threads at once
        if self._plots is None:
            self._plots = ThreadPoolExecutor(max_workers=1, thread_name_prefix="convnet-curve")
        self._curve_rows, self._curve_at = len(self.rows), time.perf_counter()
        self._curve = self._plots.submit(training_curve, list(self.rows),
                                         self.directory / "curve.png")

    def _curve_drawn(self) -> None:
        """Wait for the last curve.png (and raise what drawing it raised)."""
        if getattr(self, "_curve", None) is not None:
            curve, self._curve = self._curve, None
            curve.result()

    def _epoch(self, epoch: int) -> dict[str, Any]:
        config, net = self.config, self.net
        bar = _progress(self.progress, self.steps_per_epoch * config.batch_size,
                        f"epoch {epoch + 1}/{config.epochs}")
        stats = train_epoch(net, self.train.images, self.train.labels, config, epoch,
                            self.augment, bar, self.world, self.sample_weights,
                            self.averages.after_step)
        with self.averages.evaluated():
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
        if better:  # best/ first: a run killed between the two runs this epoch again
            with self.averages.evaluated():
                self.best_state, self.best_row = self.net.state_dict(), row
                checkpoint.save(self.net, self.directory / "best", metrics=row, **common)
            faults.point("epoch:best")
        checkpoint.save(self.net, self.directory / "last", metrics=row, resume=resume,
                        averages=self.averages.state(), **common)

    def _finish(self, seconds: float) -> Result:
        """The test set, once, on the best epoch's weights (kept since); best/ gets the result."""
        from .evaluate import evaluate

        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        test = self.data.test
        report = evaluate(self.net, test.images, test.labels, list(self.data.classes))
        recall = {name: (None if math.isnan(r) else float(r))
                  for name, r in zip(self.data.classes, report.recall)}
        metrics = {**self.best_row, "test_loss": report.loss, "test_accuracy": report.accuracy,
                   "test_images": len(test), "test_recall": recall}
        checkpoint.save(self.net, self.directory / "best", classes=self.data.classes,
                        metrics=metrics, training=asdict(self.config))
        return Result(self.directory, report.accuracy, self.best["epoch"], seconds, recall,
                      self.stopped_early)


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
    for name in ("last", "best"):  # a run killed between two renames left it as NAME.*.old
        recover_directory(directory / name)
    if not (directory / "last" / "model.json").is_file():
        raise UserError(f"cannot resume: {directory} has no finished epoch yet (no last/); "
                        f"start it again with --force")
    checkpoint.read_meta(directory / "last")
    config = TrainConfig.from_json(saved, str(directory / "train.json"))
    if epochs is not None:
        config.epochs = epochs
    return Trainer(config, directory, resume=True)


def train_epoch(net: Network, images: np.ndarray, labels: np.ndarray, config: TrainConfig,
                epoch: int, augment: tuple[str, ...] = (), bar=None,
                world: distributed.World = distributed.World(),
                sample_weights: np.ndarray | None = None,
                after_step: Callable[[], None] | None = None) -> dict[str, float]:
    """One pass over the training images in batches; the order comes from (seed, epoch). With
    several processes, each takes its share of every step's batch. With `sample_weights`
    (--balance sampler) the epoch's images are drawn with those chances, with replacement.

    Returns the mean loss and accuracy of the batches, the seconds it took and images per second
    (training only: nothing else happens inside)."""
    steps = steps_per_epoch(len(images), config.batch_size)
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(len(images)) if sample_weights is None else \
        rng.choice(len(images), size=len(images), p=sample_weights)
    augment_rng = np.random.default_rng([config.seed, epoch, 1])
    losses, accuracies = [], []
    start = time.perf_counter()
    for step in range(steps):
        whole = np.sort(order[step * config.batch_size:(step + 1) * config.batch_size])
        index = distributed.shard(whole, world)
        positions = distributed.shard(np.arange(len(whole)), world)
        batch = augmentation.augment(images[index], augment, augment_rng, positions=positions,
                                     total=len(whole))
        losses.append(net.train_step(batch, labels[index]))
        accuracies.append(net.last_accuracy)
        if after_step is not None:
            after_step()
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
