"""What `convnet train` and `convnet predict` do, for a Python caller (a notebook, a script);
the command line parses and prints around these.

    import convnet

    result = convnet.fit(data="photos/", recipe="fast91", out="runs/photos")  # prints epochs
    result.test_accuracy, result.directory                     # 0.93, runs/photos
    net = convnet.load(result.directory)                       # its best checkpoint, a Network
    net.classes                                                # ("cat", "dog", ...)
    probs = net.predict(convnet.read_images(["a.jpg", "b.png"], net.input_shape))
    answers, skipped = convnet.predict_files(net, ["photos/", "a.jpg"])   # as convnet predict

`fit` (named as Keras and scikit-learn name it: `convnet.train` is the module of the training
loop) takes the command's options as keywords, named as in `TrainConfig` (`epochs=3`,
`batch_size=256`, `augment="crop,flip"`); a recipe's settings are its starting point and the
keywords change them, as on the command line. The command line is a thin layer over `settings`
below, so the two cannot drift apart.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UserError

if TYPE_CHECKING:  # (imported when called: `import convnet` stays light)
    from .ensemble import Ensemble, Trained
    from .network import Network
    from .train import Result, TrainConfig


@dataclass(frozen=True)
class Settings:
    """A run's settings resolved: the TrainConfig, how many models (an ensemble recipe asks for
    several), and the line that says which recipe path was taken (None without a recipe)."""

    config: TrainConfig
    ensemble: int
    recipe_line: str | None


def settings(description: str | None = None, recipe: str | None = None,
             ensemble: int | None = None, **options: Any) -> Settings:
    """A recipe's settings for this machine (its bf16 or float32 path), changed by `options`
    (TrainConfig's fields), with `description` as the network when given."""
    from .recipes import (PATH_WORDS, RECIPES, TUNED_ON_IMAGES, changed, describe,
                          members_here, path_for)
    from .recipes import recipe as recipe_settings
    from .train import TrainConfig

    known = {f.name for f in fields(TrainConfig)} - {"network", "recipe"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"unknown training option{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(unknown)}; the options are {', '.join(sorted(known))}")
    values = asdict(TrainConfig())
    line = None
    if recipe is not None:
        path, why = path_for(options.get("engine"), options.get("device"))
        chosen = recipe_settings(recipe, path, options.get("device"))
        members = chosen.pop("ensemble", None)  # a recipe of several models
        if members and ensemble is None:
            ensemble = members
            # fewer than the recipe's where they would share the cores
            fewer = members_here(RECIPES[recipe]["ensemble"], options.get("device"), path)[1]
            why = why if fewer is None else f"{why}; {fewer}"
        values.update(chosen)
    if recipe is not None and options.get("epochs") is None:
        values["epochs_of"] = TUNED_ON_IMAGES  # its epochs: passes over Fashion-MNIST's images
    if recipe is not None and options.get("augment") is None:
        values["augment_more"] = True  # a small training set adds the default's kinds
    values = changed(values, options)
    if description is not None:
        values["network"] = description
    if recipe is not None:
        shown = describe(recipe, path, changed={**values, "ensemble": ensemble},
                         device=options.get("device"))
        line = f"recipe {recipe} ({PATH_WORDS[path]} path: {why}): {shown.split(': ', 1)[1]}"
    count = 1 if ensemble is None else ensemble
    if count < 1:
        raise UserError(f"--ensemble takes the number of models, at least 1, got {count}")
    return Settings(TrainConfig(**values).check(), count, line)


def default_directory(config: TrainConfig) -> Path:
    """runs/DATA-DATE-TIME, where a run goes when no directory is given."""
    name = Path(config.data).name or "data"
    return Path(f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def fit(description: str | None = None, *, recipe: str | None = None,
        out: str | Path | None = None, force: bool = False, ensemble: int | None = None,
        at_once: int | None = None, **options: Any) -> Result | Trained:
    """Train as `convnet train` does and return its result: a `train.Result` (directory,
    test_accuracy, best_epoch, seconds, recall per class), or for several models an
    `ensemble.Trained` (directory, members, accuracy; `at_once` is --at-once). Epochs are
    printed as they end."""
    chosen = settings(description, recipe, ensemble, **options)
    if chosen.recipe_line is not None:
        print(chosen.recipe_line, flush=True)
    directory = Path(out) if out is not None else default_directory(chosen.config)
    if chosen.ensemble > 1:
        from .ensemble import train_ensemble

        return train_ensemble(chosen.config, directory, chosen.ensemble, force,
                              tell=lambda line: print(line, flush=True), at_once=at_once)
    if at_once is not None:
        raise UserError("at_once is for an ensemble (ensemble=K or recipe='ensemble'): it "
                        "trains several of its models at the same time")
    from .train import Trainer

    trainer = Trainer(chosen.config, directory, force=force)
    for note in (*trainer.data.notes, *trainer.notes):
        say(note)
    print(trainer.plan(chosen.config.epochs is not None), flush=True)
    return trainer.run()


def say(note: str) -> None:
    """A note of what loading or setting up did: warnings to stderr, the rest with the output."""
    if note.startswith(("warning:", "cannot ")):
        print(f"convnet: {note}", file=sys.stderr, flush=True)
    else:
        print(note, flush=True)


def load(path: str | Path, engine: str = "auto", device: str | None = None
         ) -> Network | Ensemble:
    """A trained model (a checkpoint directory, a run's directory for its best/, or a saved
    ensemble) as a Network, or an Ensemble, with `.classes` (the class names in the order of
    its outputs) and `.meta` (everything model.json says)."""
    from .checkpoint import load as load_checkpoint
    from .network import Network

    net, meta = load_checkpoint(path, engine=engine, device=device)
    if isinstance(net, Network):  # (an Ensemble has its classes already)
        net.classes = tuple(meta["classes"])
    net.meta = meta
    return net


TEST_IMAGE = re.compile(r"test:(.*)")
PREDICT_CHUNK = 4096  # images read and classified at a time by predict_files


def image_from(text: str, shape: tuple[int, int, int], meta: dict[str, Any] | None = None
               ) -> np.ndarray:
    """An image file at `shape` (H×W×C uint8, converted and resized as training does), or with
    a model's `meta`, `test:N`: test image N of the data set the model learned from."""
    from .data.folder import read_image

    path = Path(text)
    found = TEST_IMAGE.fullmatch(text)
    if found and meta is not None and not _exists(path):
        number = found.group(1).strip()
        if not re.fullmatch(r"-?\d{1,12}", number):
            raise UserError(f"{text}: give test:N, with N the number of a test image "
                            "(0, 1, 2, ...)")
        return _test_image(int(number), shape, meta)
    if not _exists(path) or _is_folder(path):
        raise UserError(f"no image file {text}")
    try:
        return read_image(path, shape)
    except Exception as e:  # noqa: BLE001 - whatever Pillow says, it's the file
        raise UserError(f"{text} is not a readable image ({e})") from None


def read_images(paths: list[str | Path] | str | Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Image files (or a folder's image files, by their names' endings, in its subfolders too,
    sorted) as N×H×W×C uint8, each converted and resized to `shape` as training and `convnet
    predict` do. A file that is not a readable image is an error naming it."""
    from .data.folder import EXTENSIONS, list_files

    if isinstance(paths, (str, Path)):
        paths = [path for path in list_files(Path(paths)) if path.suffix.lower() in EXTENSIONS] \
            if _is_folder(Path(paths)) else [paths]
    shape = tuple(int(v) for v in shape)  # type: ignore[assignment]
    if len(shape) != 3:
        raise UserError(f"shape is (height, width, channels), got {shape}")
    if not paths:
        raise UserError("no images given")
    return np.stack([image_from(str(path), shape) for path in paths])


def predict_files(model: Any, given: list[str], top: int = 3, meta: dict[str, Any] | None = None
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    """What `convnet predict` prints: for each image file, folder (every file in it and its
    subfolders, sorted; those that are not readable images skipped) or `test:N` (with `meta`),
    its `top` classes with their probabilities, most likely first; and the folders' skipped
    files. A file named in `given` must be an image. Images are read a chunk at a time, a
    folder's decoded on every core, and nothing is returned until all are classified."""
    names, from_folders = _opened(given)
    classes = list(meta["classes"] if meta is not None else
                   getattr(model, "classes", None) or range(model.num_classes))
    classes = [str(name) for name in classes]  # (a Network without names: its output numbers)
    top = min(top, len(classes))
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    for start in range(0, len(names), PREDICT_CHUNK):
        chunk = names[start:start + PREDICT_CHUNK]
        decoded = _decode_all([name for name in chunk if name in from_folders],
                              model.input_shape)
        kept, batch = [], []
        for name in chunk:
            if name in decoded:
                if decoded[name] is None:
                    skipped.append(name)  # a folder's other files: skipped and counted
                    continue
                batch.append(decoded[name])
            else:  # a file named in `given` (or test:N) must be an image
                batch.append(image_from(name, model.input_shape, meta))
            kept.append(name)
        if not batch:
            continue
        for name, p in zip(kept, model.predict(np.stack(batch))):
            order = np.argsort(-p, kind="stable")[:top]
            results.append({"image": name, "top": [{"class": classes[i],
                                                    "probability": float(p[i])}
                                                   for i in order]})
    if not results:
        raise UserError(f"no readable image in {', '.join(given)} "
                        f"({len(skipped):,} file{'s' if len(skipped) != 1 else ''} skipped, e.g. "
                        f"{skipped[0]})")
    return results, skipped


def _opened(given: list[str]) -> tuple[list[str], set[str]]:
    """The names given, folders opened: every file in a folder and its subfolders (hidden ones
    left out), sorted; and which of them came from folders."""
    from .data.folder import list_files

    names: list[str] = []
    from_folders: set[str] = set()
    for text in given:
        if _is_folder(Path(text)):
            found = [str(path) for path in list_files(Path(text))]
            if not found:
                raise UserError(f"no files in the folder {text}")
            names += found
            from_folders.update(found)
        else:
            names.append(text)
    return names, from_folders


def _decode_all(names: list[str], shape: tuple[int, int, int]) -> dict[str, Any]:
    """{name: H×W×C image, or None where the file is not a readable image}: decoded on every
    core as training decodes a folder (data/cache.py), with a progress bar on a terminal."""
    import os

    from .data.cache import load as decode

    if not names:
        return {}
    root = Path(os.path.commonpath(names))
    decoded = decode(root if root.is_dir() else root.parent, [Path(n) for n in names], shape,
                     None, progress=sys.stderr.isatty())
    return {name: (decoded.images[i] if decoded.readable[i] else None)
            for i, name in enumerate(names)}


def _test_image(index: int, shape: tuple[int, int, int], meta: dict[str, Any]) -> np.ndarray:
    from .data import load_dataset

    training = meta.get("training", {})
    if not training.get("data"):
        raise UserError(f"test:{index}: this model does not say which data set it learned from")
    data = load_dataset(training["data"], training.get("data_dir"), shape=shape,
                        download_ok=False)
    if not 0 <= index < len(data.test.images):
        raise UserError(f"test:{index}: {training['data']} has test images 0 to "
                        f"{len(data.test.images) - 1}")
    return data.test.images[index]


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for the file system names no folder
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system names no file
        return False
