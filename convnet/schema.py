"""The JSON files of a checkpoint and a run, checked before anything is built from them.

model.json, train.json and training.json come from disk, and a model directory may come from a
stranger. Each is read with a size and nesting limit, then checked field by field — type, range,
length — so that a wrong value is one clear line naming the file and the field, never a
traceback, a silently different model (`"tta": "false"` is a string, not false) or a huge
allocation before the weights are read.

    read_json(path, what)         the parsed JSON, bounded in size and depth
    check_model(meta, where)      a single network's model.json
    check_ensemble(meta, where)   an ensemble's model.json (its members' paths stay inside it)
    check_dataclass(cls, data)    train.json against TrainConfig's field types
    check_resume(state, where)    a last/ checkpoint's training.json
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import fields
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import UserError
from .spec import MAX_LAYERS, MAX_NUMBER, MAX_TEXT, check_input_shape

MAX_JSON_BYTES = 16 << 20  # a model.json is a few KB; class names of a large data set fit easily
MAX_DEPTH = 32  # nesting of objects and lists (convnet writes at most 4)
MAX_NAME = 1_000  # characters in one class name
MAX_MEMBERS = 256  # models in one ensemble
ENGINE_NAMES = ("numpy", "torch")
DTYPE_NAMES = ("float32", "float64")
COMBINE = ("softmax", "logits")


def _damaged(where: str, message: str) -> UserError:
    return UserError(f"damaged checkpoint: {where}: {message}")


def _depth(value: Any) -> int:
    """How deeply lists and objects nest (iteratively: no recursion for a hostile file)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in
                         (item.values() if isinstance(item, dict) else item))
    return deepest


def read_json(path: Path, what: str = "damaged checkpoint") -> Any:
    """A JSON file, refused when larger than MAX_JSON_BYTES or nested deeper than MAX_DEPTH."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise UserError(f"{what}: {path} is {size:,} bytes; a convnet JSON file is at most "
                            f"{MAX_JSON_BYTES:,}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise UserError(f"{what}: {path} ({reason})") from None
    if _depth(data) > MAX_DEPTH:
        raise UserError(f"{what}: {path} nests lists and objects more than {MAX_DEPTH} deep")
    return data


# -- the pieces ----------------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """What a JSON value is, in JSON's words, for messages."""
    return {dict: "an object", list: "a list", str: "text", bool: "true/false",
            type(None): "null"}.get(type(value), "a number")


def _classes(meta: dict, where: str) -> list[str]:
    classes = meta.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise _damaged(where, f"'classes' must be a list of names, got {_kind(classes)}")
    if not 2 <= len(classes) <= MAX_NUMBER:
        raise _damaged(where, f"'classes' must name 2 to {MAX_NUMBER:,} classes, got "
                              f"{len(classes):,}")
    if any(not c or len(c) > MAX_NAME for c in classes):
        raise _damaged(where, f"each class name must have 1 to {MAX_NAME:,} characters")
    if len(set(classes)) != len(classes):
        twice = sorted({c for c in classes if classes.count(c) > 1})
        raise _damaged(where, f"class names repeat: {', '.join(twice)[:200]}")
    return classes


def _input(meta: dict, where: str) -> tuple[int, int, int]:
    shape = meta.get("input")
    if not isinstance(shape, list) or len(shape) != 3 or not all(_is_whole(v) for v in shape):
        raise _damaged(where, "'input' must be [height, width, channels], three whole numbers")
    try:
        return check_input_shape(tuple(shape))
    except UserError as e:
        raise _damaged(where, e.message) from None


def _header(meta: Any, where: str, kind: str | None) -> dict:
    from .checkpoint import FORMAT, VERSION

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{where} is not a convnet checkpoint")
    version = meta.get("version")
    if not _is_whole(version) or version < 1:
        raise _damaged(where, f"'version' must be a whole number, got {_kind(version)}")
    if version > VERSION:
        raise UserError(f"{where} was written by a newer convnet (checkpoint version {version}, "
                        f"this one reads up to {VERSION}); upgrade convnet")
    if meta.get("kind") != kind:
        raise _damaged(where, f"unknown kind {str(meta.get('kind'))[:40]!r}")
    return meta


def _optional(meta: dict, key: str, allowed: tuple, where: str, choices: tuple = ()) -> None:
    if key not in meta:
        return
    value = meta[key]
    if not isinstance(value, allowed) or (choices and value not in choices):
        want = " or ".join(map(repr, choices)) if choices else \
            " or ".join(_kind(t()) if t is not type(None) else "null" for t in allowed)
        raise _damaged(where, f"'{key}' must be {want}, got {str(value)[:40]!r}")


# -- the files ---------------------------------------------------------------------------------

def check_model(meta: Any, where: str) -> dict:
    """A single network's model.json; returns it (a dict) when every field is right."""
    meta = _header(meta, where, None)
    for key in ("spec", "input", "classes"):
        if key not in meta:
            raise _damaged(where, f"lacks {key!r}")
    _input(meta, where)
    _classes(meta, where)
    if not isinstance(meta["spec"], dict) or not isinstance(meta["spec"].get("layers"), list):
        raise _damaged(where, "'spec' must be an object with a list of 'layers'")
    if len(meta["spec"]["layers"]) > MAX_LAYERS + 2:  # the flatten and softmax parse adds
        raise _damaged(where, f"'spec' has more than {MAX_LAYERS:,} layers")
    _optional(meta, "description", (str,), where)
    if len(meta.get("description", "")) > MAX_TEXT:
        raise _damaged(where, "'description' is too long")
    norm = meta.get("normalization")
    if norm is not None:
        channels = meta["input"][2]
        if not isinstance(norm, dict) or set(norm) != {"mean", "std"}:
            raise _damaged(where, "'normalization' must be null or {\"mean\": [...], "
                                  "\"std\": [...]}")
        for part in ("mean", "std"):
            values = norm[part]
            if not isinstance(values, list) or len(values) != channels or \
                    not all(_is_number(v) for v in values):
                raise _damaged(where, f"normalization {part!r} must be a list of {channels} "
                                      "finite numbers, one per channel")
        if min(norm["std"]) <= 0:
            raise _damaged(where, "normalization 'std' values must be positive")
    _optional(meta, "tta", (bool,), where)
    _optional(meta, "tta_shift", (int,), where, (0, 1, 2, 3, 4))
    _optional(meta, "dtype", (str,), where, DTYPE_NAMES)
    _optional(meta, "engine", (str,), where, ENGINE_NAMES)
    for key in ("training", "metrics", "versions"):
        _optional(meta, key, (dict,), where)
    training = meta.get("training", {})
    for key in ("data", "data_dir"):
        _optional(training, key, (str, type(None)), f"{where} training")
    return meta


def check_ensemble(meta: Any, where: str, directory: Path) -> dict:
    """An ensemble's model.json: its members are two or more directories inside it."""
    meta = _header(meta, where, "ensemble")
    _optional(meta, "combine", (str,), where, COMBINE)
    _input(meta, where)
    _classes(meta, where)
    members = meta.get("members")
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise _damaged(where, "'members' must be a list of member directories")
    if not 2 <= len(members) <= MAX_MEMBERS:
        raise _damaged(where, f"an ensemble has 2 to {MAX_MEMBERS} members, this one "
                              f"{len(members)}")
    root = directory.resolve()
    for member in members:
        path = PurePosixPath(member)
        inside = (root / member).resolve()
        if path.is_absolute() or ".." in path.parts or inside == root or \
                not inside.is_relative_to(root):
            raise _damaged(where, f"member {member[:80]!r} is not a folder inside the ensemble's "
                                  "directory")
    return meta


def _annotation_types(annotation: Any) -> tuple[type, ...]:
    """`int`, `str | None`, `float` → the Python types a JSON value may have for them."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(t for part in typing.get_args(annotation) for t in _annotation_types(part))
    if annotation is float:
        return (int, float)
    if annotation is None or annotation is type(None):
        return (type(None),)
    return (annotation,)


def check_dataclass(cls: type, data: Any, where: str) -> dict:
    """`data` (from a JSON file) has exactly `cls`'s field names, each of its declared type."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: must be a JSON object, got {_kind(data)}")
    known = typing.get_type_hints(cls)
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise UserError(f"{where}: unknown settings: {', '.join(unknown)[:200]}")
    for name, value in data.items():
        allowed = _annotation_types(known[name])
        wrong_bool = isinstance(value, bool) and bool not in allowed
        if not isinstance(value, allowed) or wrong_bool or \
                (isinstance(value, float) and not math.isfinite(value)):
            want = " or ".join(_kind(t()) if t is not type(None) else "null" for t in allowed)
            raise UserError(f"{where}: {name!r} must be {want}, got {str(value)[:40]!r}")
    return data


def check_resume(state: Any, where: str) -> dict:
    """training.json: where a run stopped (epoch, steps, best so far, the dropout generator)."""
    if not isinstance(state, dict):
        raise UserError(f"cannot resume: {where} must be a JSON object")
    for key in ("epoch", "steps"):
        if not _is_whole(state.get(key)) or state[key] < 0:
            raise UserError(f"cannot resume: {where}: {key!r} must be a whole number ≥ 0")
    best = state.get("best")
    if not isinstance(best, dict) or not _is_whole(best.get("epoch")) or \
            not isinstance(best.get("val_accuracy"), (int, float)) or \
            isinstance(best.get("val_accuracy"), bool):
        raise UserError(f"cannot resume: {where}: 'best' must be {{\"epoch\": N, "
                        "\"val_accuracy\": x}")
    if state.get("rng") is not None and not isinstance(state["rng"], dict):
        raise UserError(f"cannot resume: {where}: 'rng' must be an object or null")
    return state
