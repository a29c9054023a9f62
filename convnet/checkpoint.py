"""Checkpoints: a directory with the weights as safetensors and everything else as JSON.

    model.safetensors   every parameter and buffer, by PyTorch's names and layouts
    model.json          description, input shape, classes, normalisation, training settings,
                        metrics, versions (FORMAT and VERSION identify the layout)
    optimizer.safetensors, training.json   (only in a run's last/ checkpoint, for --resume)
    averages.safetensors                  (... and the weight averages of --ema, --lookahead)

Either engine loads any checkpoint. A directory is written whole into a temporary sibling and
renamed into place (convnet/files.py), so a reader never sees half a checkpoint. Nothing is
pickled.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, schema, spec as spec_module
from .errors import UserError, first_line
from . import faults
from .files import atomic_directory, atomic_file
from .network import Network

FORMAT = "convnet-checkpoint"
VERSION = 1
OPTIMIZER_SLOTS = ("momentum", "exp_avg", "exp_avg_sq", "muon_momentum")  # what
# optimizer.safetensors may hold (SGD's, Adam's and Muon's buffers, per weight)


def versions() -> dict[str, str]:
    """The versions a checkpoint was written with. PyTorch's from its installed metadata where
    it isn't imported already: importing it for the string took 1.7 s of a NumPy-engine run."""
    found = {"convnet": __version__, "numpy": np.__version__, "python": platform.python_version()}
    torch = sys.modules.get("torch")
    if torch is not None:
        found["torch"] = str(torch.__version__)
        return found
    try:
        found["torch"] = metadata.version("torch")
    except metadata.PackageNotFoundError:
        pass
    return found


def write_json(path: Path, data: Any) -> None:
    """Write a JSON file atomically."""
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_lines(path: Path, lines: list[str]) -> None:
    """Write a text file of lines (metrics.jsonl) atomically: whole, never half a line."""
    with atomic_file(path) as temporary:
        temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def load_state(directory: Path, net: Network) -> dict[str, np.ndarray]:
    """A checkpoint's weights for `net`, checked against it (names, shapes, dtypes) from the
    file's header before anything is read."""
    return _load_arrays(Path(directory) / "model.safetensors", net.engine.state_dict())


def _save_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    # np.require keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d)
    save_file({k: np.require(v, requirements="C") for k, v in arrays.items()}, str(path))


def _load_arrays(path: Path, expected: dict[str, np.ndarray] | None = None
                 ) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file. With `expected` (name → an array of the right shape
    and dtype), the file's header is checked first — the same names, shapes, and floating
    point where floating point belongs — so nothing is read for a file that lies or misleads."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    try:
        if expected is not None:
            with safe_open(str(path), framework="numpy") as f:
                header = {name: f.get_slice(name) for name in f.keys()}
                found = {name: (tuple(s.get_shape()), s.get_dtype()) for name, s in header.items()}
            _check_header(found, expected)
        return load_file(str(path))
    except UserError as e:
        raise UserError(f"damaged checkpoint: {path}: {e}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"damaged checkpoint: {path} cannot be read ({first_line(e)})") from None


# safetensors' dtype names by the kind NumPy gives them: floating point, or whole numbers
_FLOAT_TYPES = {"F16", "BF16", "F32", "F64"}
_WHOLE_TYPES = {"I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64"}


def _check_header(found: dict[str, tuple[tuple[int, ...], str]],
                  expected: dict[str, np.ndarray]) -> None:
    missing = [name for name in expected if name not in found]
    extra = [name for name in found if name not in expected]
    if missing or extra:
        raise UserError(f"the weights do not fit the network: missing "
                        f"{', '.join(missing)[:200] or 'nothing'}; unexpected "
                        f"{', '.join(extra)[:200] or 'nothing'}")
    for name, target in expected.items():
        shape, dtype = found[name]
        if shape != target.shape:
            raise UserError(f"weight {name} has shape {shape}, but the network needs "
                            f"{target.shape}")
        wanted = _FLOAT_TYPES if target.dtype.kind == "f" else _WHOLE_TYPES
        if dtype not in wanted:
            kind = "floating point" if target.dtype.kind == "f" else "whole numbers"
            raise UserError(f"weight {name} is stored as {dtype}; it must be {kind}")


def save(net: Network, directory: Path, *, classes: tuple[str, ...], metrics: dict | None = None,
         training: dict | None = None, resume: dict | None = None, replace: bool = True,
         averages: dict[str, np.ndarray] | None = None) -> Path:
    """Write a checkpoint directory atomically; `resume` adds the optimiser and loop state,
    `averages` the weight averages of --ema and --lookahead (averages.safetensors)."""
    directory = Path(directory)
    if directory.exists() and not replace:
        raise UserError(f"{directory} already exists; use --force to replace it")
    with atomic_directory(directory) as staging:
        _save_arrays(net.state_dict(), staging / "model.safetensors")
        faults.point("checkpoint:weights")
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
            "tta_shift": net.tta_shift,
            "training": training or {}, "metrics": metrics or {}, "versions": versions(),
        }
        write_json(staging / "model.json", meta)
        if resume is not None:
            _save_arrays(net.engine.optimizer_state(), staging / "optimizer.safetensors")
            write_json(staging / "training.json", resume)
        if averages:
            _save_arrays(averages, staging / "averages.safetensors")
    return directory


def open_model(model: str | Path, engine: str = "auto", device: str | None = None,
               seed: int = 0) -> tuple[Network, dict[str, Any]]:
    """A trained model directory (checkpoint or run), or — for `show` and `export` — a network
    convnet ships by name (resnet18) or a description with its input shape, with its weights
    drawn from `seed` as training would start them and its classes numbered."""
    from .networks import named

    text = str(model)
    path = Path(text)
    # a model directory first: inside a run, `best` is its checkpoint, not the recipe's network
    if (named(text) is None and "(" not in text) or _is_model(path) or _is_model(path / "best"):
        return load(model, engine, device)
    network = spec_module.load(text)
    if network.input is None:
        raise UserError(f"{text!r} does not say its input shape: start it with one, e.g. "
                        "32x32x3 conv(6,5) ...")
    net = Network(network, engine=engine, device=device, seed=seed)
    classes = [str(k) for k in range(net.num_classes)]
    return net, {"classes": classes, "directory": None, "description": str(network),
                 "training": {}, "untrained": f"{text.strip()}, weights drawn from seed {seed}"}


def _is_model(path: Path) -> bool:
    try:
        return (path / "model.json").is_file()
    except OSError:  # a description too long to be a file name
        return False


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
    """A checkpoint's model.json, checked field by field (convnet/schema.py)."""
    where = directory / "model.json"
    meta = schema.read_json(where)
    if isinstance(meta, dict) and meta.get("kind") == "ensemble":
        return schema.check_ensemble(meta, str(where), directory)
    return schema.check_model(meta, str(where))


def load(path: str | Path, engine: str = "auto", device: str | None = None
         ) -> tuple[Network, dict[str, Any]]:
    """The Network stored in a checkpoint (or a run's best/), and its metadata."""
    directory = resolve(path)
    meta = read_meta(directory)
    if meta.get("kind") == "ensemble":
        return _load_ensemble(directory, meta, engine, device)
    return _load_network(directory, meta, engine, device)


def _load_network(directory: Path, meta: dict[str, Any], engine: str, device: str | None
                  ) -> tuple[Network, dict[str, Any]]:
    where = directory / "model.json"
    try:
        network_spec = spec_module.from_json(meta["spec"])
    except UserError as e:
        raise UserError(f"damaged checkpoint: {where}: 'spec' is {e.message}") from None
    input_shape = tuple(meta["input"])
    if network_spec.input is not None and network_spec.input != input_shape:
        raise UserError(f"damaged checkpoint: {where}: 'spec' is for input "
                        f"{'x'.join(map(str, network_spec.input))} but 'input' says "
                        f"{'x'.join(map(str, input_shape))}")
    if "description" in meta:
        try:
            agrees = spec_module.parse(meta["description"]) == network_spec.without_input()
        except UserError:
            agrees = False
        if not agrees:
            raise UserError(f"damaged checkpoint: {where}: 'description' and 'spec' describe "
                            "different networks")
    classes = meta["classes"]
    norm = meta.get("normalization")
    normalization = (tuple(norm["mean"]), tuple(norm["std"])) if norm else None
    try:
        # the memory the network needs is checked before anything is allocated (Network)
        net = Network(network_spec, input=input_shape, engine=engine, device=device,  # type: ignore[arg-type]
                      normalization=normalization, seed=0, tta=meta.get("tta", False),
                      tta_shift=meta.get("tta_shift", 0))
    except UserError as e:
        raise UserError(f"cannot load {directory}: {e}") from None
    if net.num_classes != len(classes):
        raise UserError(f"damaged checkpoint: {where}: {len(classes)} class names for a network "
                        f"with {net.num_classes} outputs")
    state = _load_arrays(directory / "model.safetensors", net.engine.state_dict())
    try:
        net.load_state_dict(state)
    except UserError as e:
        raise UserError(f"damaged checkpoint {directory}: {e}") from None
    meta["directory"] = str(directory)
    return net, meta


def _load_ensemble(directory: Path, meta: dict[str, Any], engine: str, device: str | None):
    from .ensemble import Ensemble, check_classes

    loaded = []
    for member in meta["members"]:
        member_dir = directory / member
        member_meta = read_meta(member_dir) if (member_dir / "model.json").is_file() else None
        if member_meta is None:
            raise UserError(f"damaged checkpoint: {directory / 'model.json'}: member {member!r} "
                            "has no model.json")
        if member_meta.get("kind") == "ensemble":
            raise UserError(f"damaged checkpoint: {directory / 'model.json'}: member {member!r} "
                            "is itself an ensemble; give its models as members")
        loaded.append(_load_network(member_dir, member_meta, engine, device))
    classes = check_classes([m for _, m in loaded])
    if classes != meta["classes"]:
        raise UserError(f"damaged checkpoint: {directory / 'model.json'}: its classes are not its "
                        "members' classes")
    ensemble = Ensemble([net for net, _ in loaded], classes, meta.get("combine", "softmax"))
    meta["directory"] = str(directory)
    meta["training"] = loaded[0][1].get("training", {})  # the data its members learned from
    return ensemble, meta


def load_averages(directory: Path) -> dict[str, np.ndarray]:
    """The weight averages a run's last/ checkpoint kept (empty without --ema/--lookahead)."""
    path = Path(directory) / "averages.safetensors"
    return _load_arrays(path) if path.is_file() else {}


def load_resume_state(directory: Path, net: Network) -> dict[str, Any]:
    where = directory / "training.json"
    state = schema.check_resume(schema.read_json(where, "cannot resume"), str(where))
    path = directory / "optimizer.safetensors"
    flat = _load_arrays(path)
    weights = net.state_dict()
    for key, array in flat.items():
        name, _, slot = key.rpartition(".")
        fits = (key == "steps" and array.size == 1 and array.dtype.kind in "iu") or (
            name in weights and slot in OPTIMIZER_SLOTS and array.dtype.kind == "f"
            and array.shape == weights[name].shape)
        if not fits:
            raise UserError(f"cannot resume: {path} holds {key!r}, which does not fit the "
                            "network's weights")
    net.engine.load_optimizer_state(flat)
    return state
