"""Checkpoints: a directory with the weights as safetensors and everything else as JSON.

    model.safetensors   every parameter and buffer, by PyTorch's names and layouts
    model.json          description, input shape, classes, normalisation, training settings,
                        metrics, versions (FORMAT and VERSION identify the layout)
    optimizer.safetensors, training.json   (only in a run's last/ checkpoint, for --resume)

Either engine loads any checkpoint. A directory is written whole into a temporary sibling and
renamed into place (convnet/files.py), so a reader never sees half a checkpoint. Nothing is
pickled.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, spec as spec_module
from .errors import UserError
from .files import atomic_directory, atomic_file
from .network import Network

FORMAT = "convnet-checkpoint"
VERSION = 1


def versions() -> dict[str, str]:
    found = {"convnet": __version__, "numpy": np.__version__, "python": platform.python_version()}
    try:
        import torch
        found["torch"] = torch.__version__
    except ImportError:
        pass
    return found


def write_json(path: Path, data: Any) -> None:
    """Write a JSON file atomically."""
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _save_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    # np.require keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d)
    save_file({k: np.require(v, requirements="C") for k, v in arrays.items()}, str(path))


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"damaged checkpoint: {path} cannot be read ({e})") from None


def save(net: Network, directory: Path, *, classes: tuple[str, ...], metrics: dict | None = None,
         training: dict | None = None, resume: dict | None = None, replace: bool = True) -> Path:
    """Write a checkpoint directory atomically; `resume` adds the optimiser and loop state."""
    directory = Path(directory)
    if directory.exists() and not replace:
        raise UserError(f"{directory} already exists; use --force to replace it")
    with atomic_directory(directory) as staging:
        _save_arrays(net.state_dict(), staging / "model.safetensors")
        meta = {
            "format": FORMAT, "version": VERSION,
            "description": str(net.spec.without_input()),
            "spec": spec_module.to_json(net.spec),
            "input": list(net.input_shape),
            "classes": list(classes),
            "normalization": ({"mean": list(net.normalization[0]),
                               "std": list(net.normalization[1])}
                              if net.normalization else None),
            "engine": net.engine.name, "dtype": net.dtype, "tta": net.tta,
            "training": training or {}, "metrics": metrics or {}, "versions": versions(),
        }
        write_json(staging / "model.json", meta)
        if resume is not None:
            _save_arrays(net.engine.optimizer_state(), staging / "optimizer.safetensors")
            write_json(staging / "training.json", resume)
    return directory


def resolve(path: str | Path) -> Path:
    """A checkpoint directory, or a training run's directory (its best/ checkpoint)."""
    path = Path(path)
    if (path / "model.json").is_file():
        return path
    if (path / "best" / "model.json").is_file():
        return path / "best"
    if not path.exists():
        raise UserError(f"no model directory {path}")
    raise UserError(f"{path} is not a convnet model directory (no model.json; train one with "
                    "convnet train --out DIR)")


def read_meta(directory: Path) -> dict[str, Any]:
    try:
        meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"damaged checkpoint: {directory / 'model.json'} ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{directory / 'model.json'} is not a convnet checkpoint")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise UserError(f"{directory} was written by a newer convnet (checkpoint version "
                        f"{meta.get('version')}, this one reads up to {VERSION}); upgrade convnet")
    for key in ("members",) if meta.get("kind") == "ensemble" else ("spec", "input", "classes"):
        if key not in meta:
            raise UserError(f"damaged checkpoint: {directory / 'model.json'} lacks {key!r}")
    return meta


def load(path: str | Path, engine: str = "auto", device: str | None = None
         ) -> tuple[Network, dict[str, Any]]:
    """The Network stored in a checkpoint (or a run's best/), and its metadata."""
    directory = resolve(path)
    meta = read_meta(directory)
    if meta.get("kind") == "ensemble":
        return _load_ensemble(directory, meta, engine, device)
    network_spec = spec_module.from_json(meta["spec"])
    try:
        input_shape = tuple(int(v) for v in meta["input"])
        classes = [str(c) for c in meta["classes"]]
        norm = meta.get("normalization")
        normalization = (tuple(norm["mean"]), tuple(norm["std"])) if norm else None
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"damaged checkpoint: {directory / 'model.json'} ({e!r})") from None
    net = Network(network_spec, input=input_shape, engine=engine, device=device,
                  normalization=normalization, seed=0,
                  tta=bool(meta.get("tta", False)))  # type: ignore[arg-type]
    if net.num_classes != len(classes):
        raise UserError(f"damaged checkpoint: {len(classes)} class names for a network with "
                        f"{net.num_classes} outputs")
    state = _load_arrays(directory / "model.safetensors")
    try:
        net.load_state_dict(state)
    except UserError as e:
        raise UserError(f"damaged checkpoint {directory}: {e}") from None
    meta["directory"] = str(directory)
    return net, meta


def _load_ensemble(directory: Path, meta: dict[str, Any], engine: str, device: str | None):
    from .ensemble import Ensemble, check_classes

    loaded = [load(directory / member, engine, device) for member in meta["members"]]
    classes = check_classes([m for _, m in loaded])
    ensemble = Ensemble([net for net, _ in loaded], classes, meta.get("combine", "softmax"))
    meta["directory"] = str(directory)
    meta["training"] = loaded[0][1].get("training", {})  # the data its members learned from
    return ensemble, meta


def load_resume_state(directory: Path, net: Network) -> dict[str, Any]:
    try:
        state = json.loads((directory / "training.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cannot resume from {directory}: {e}") from None
    net.engine.load_optimizer_state(_load_arrays(directory / "optimizer.safetensors"))
    return state
