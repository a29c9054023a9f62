"""What `convnet train` and `convnet predict` do, for a Python caller (a notebook, a script).

    import convnet

    result = convnet.fit(data="photos/", recipe="fast91", out="runs/photos")  # prints epochs
    result.test_accuracy, result.directory                     # 0.93, runs/photos
    net = convnet.load(result.directory)                       # its best checkpoint, a Network
    net.classes                                                # ("cat", "dog", ...)
    probs = net.predict(convnet.read_images(["a.jpg", "b.png"], net.input_shape))

`fit` (named as Keras and scikit-learn name it: `convnet.train` is the module of the training
loop) takes the command's options as keywords, named as in `TrainConfig` (`epochs=3`,
`batch_size=256`, `augment="crop,flip"`); a recipe's settings are its starting point and the
keywords change them, as on the command line. The command line is a thin layer over `settings`
below, so the two cannot drift apart.
"""

from __future__ import annotations

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
    from .recipes import PATH_WORDS, TUNED_ON_IMAGES, changed, describe, path_for
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
        chosen = recipe_settings(recipe, path)
        members = chosen.pop("ensemble", None)  # a recipe of several models
        if members and ensemble is None:
            ensemble = members
        values.update(chosen)
    if recipe is not None and options.get("epochs") is None:
        values["epochs_of"] = TUNED_ON_IMAGES  # its epochs: passes over Fashion-MNIST's images
    values = changed(values, options)
    if description is not None:
        values["network"] = description
    if recipe is not None:
        shown = describe(recipe, path, changed={**values, "ensemble": ensemble})
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
          **options: Any) -> Result | Trained:
    """Train as `convnet train` does and return its result: a `train.Result` (directory,
    test_accuracy, best_epoch, seconds, recall per class), or for several models an
    `ensemble.Trained` (directory, members, accuracy). Epochs are printed as they end."""
    chosen = settings(description, recipe, ensemble, **options)
    if chosen.recipe_line is not None:
        print(chosen.recipe_line, flush=True)
    directory = Path(out) if out is not None else default_directory(chosen.config)
    if chosen.ensemble > 1:
        from .ensemble import train_ensemble

        return train_ensemble(chosen.config, directory, chosen.ensemble, force)
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


def read_images(paths: list[str | Path] | str | Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Image files (or a folder's image files, by their names' endings, in its subfolders too,
    sorted) as N×H×W×C uint8, each converted and
    resized to `shape` as training and `convnet predict` do. A file that is not a readable
    image is an error naming it."""
    from .data.folder import EXTENSIONS, list_files, read_image

    if isinstance(paths, (str, Path)):
        try:
            folder = Path(paths).is_dir()
        except OSError:  # a name too long for the file system: read_image says so below
            folder = False
        paths = [path for path in list_files(Path(paths)) if path.suffix.lower() in EXTENSIONS] \
            if folder else [paths]
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3:
        raise UserError(f"shape is (height, width, channels), got {shape}")
    images = []
    for path in paths:
        try:
            images.append(read_image(Path(path), shape))  # type: ignore[arg-type]
        except FileNotFoundError:
            raise UserError(f"no image file {path}") from None
        except Exception as e:  # noqa: BLE001 - whatever Pillow says, it's the file
            raise UserError(f"{path} is not a readable image ({e})") from None
    if not images:
        raise UserError("no images given")
    return np.stack(images)
