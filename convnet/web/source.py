"""What `convnet serve` looks at, read again whenever it changes on disk.

A model is one of: a network by name or description (random weights, never changes), a
checkpoint directory, an ensemble, or a training run's directory. A run is watched: its newest
checkpoint (last/ after every epoch, best/ when it improves and when training ends) is the one
shown, and before the first epoch has ended there is none yet — the page says it is waiting. A
checkpoint replaced while the page is open is loaded on the next request; one that cannot be read
leaves the model before it in place, with the reason, until a good one arrives.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import checkpoint
from ..errors import UserError
from ..network import Network


@dataclass(frozen=True)
class Loaded:
    """A model as the page sees it: the network whose layers are drawn, its metadata, the
    ensemble whose probabilities answer (None for one network), and where it came from."""

    net: Network
    meta: dict[str, Any]
    voter: Any
    version: str  # changes whenever another checkpoint is loaded
    notes: tuple[str, ...] = ()  # what a person should know (untrained, ensemble, ...)
    examples: Any = None  # (images, labels) of the data set's test images, or None


class Note(str):
    """A note for the person looking, in English (the string itself) and Korean."""

    korean: str

    def __new__(cls, english: str, korean: str) -> "Note":
        note = super().__new__(cls, english)
        note.korean = korean
        return note

    def words(self, lang: str) -> str:
        return self.korean if lang == "ko" else str(self)


class Waiting(Exception):
    """No checkpoint yet (a run before its first epoch)."""


def network_and_voter(model: str | Path) -> tuple[Network, dict[str, Any], Any, list[str]]:
    """The network whose layers are drawn, its metadata, the ensemble whose probabilities
    answer (None for a single model), and notes for the person looking. An ensemble's first
    member is drawn."""
    net, meta = checkpoint.open_model(model, engine="numpy")
    notes = []
    if meta.get("untrained"):
        notes.append(Note(f"{meta['untrained']}: untrained, so its maps show what random "
                          "filters make of the image",
                          f"{meta['untrained']}: 학습하지 않은 모델이라, 맵은 무작위 필터가 이미지에서 "
                          "만들어 낸 것입니다"))
    if meta.get("kind") != "ensemble":
        return net, meta, None, notes
    first, first_meta = checkpoint.load(Path(meta["directory"]) / meta["members"][0],
                                        engine="numpy")
    count = len(meta["members"])
    notes.append(Note(f"{model} is an ensemble of {count}; the maps are its first member's, "
                      "the probabilities the ensemble's",
                      f"{model}은(는) 모델 {count}개의 앙상블입니다; 맵은 첫 번째 모델의 것이고, "
                      "확률은 앙상블의 것입니다"))
    return first, {**first_meta, "classes": meta["classes"]}, net, notes


def is_run(path: Path) -> bool:
    """A training run's directory (train.json beside best/ and last/)."""
    return (path / "train.json").is_file() and not (path / "model.json").is_file()


def _stamp(directory: Path) -> str | None:
    """What changes when a checkpoint directory is replaced (atomically, so its inode), or
    None while there is none."""
    try:
        info = os.stat(directory / "model.json")
        weights = os.stat(directory / "model.safetensors")
    except OSError:
        return None
    return f"{info.st_ino}-{info.st_mtime_ns}-{weights.st_ino}-{weights.st_mtime_ns}"


@dataclass
class ModelSource:
    """The model behind the page; `current()` is cheap when nothing changed (a few stat calls)."""

    target: str
    examples_for: Callable[[dict[str, Any], tuple[int, int, int]], Any] | None = None
    _loaded: Loaded | None = None
    _stamp: str | None = None
    _problem: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    @property
    def path(self) -> Path:
        return Path(self.target)

    @property
    def run(self) -> bool:
        try:
            return is_run(self.path)
        except OSError:
            return False

    def _candidate(self) -> tuple[Path | None, str | None]:
        """The checkpoint to show and its stamp; for a run the newest of last/ and best/."""
        path = self.path
        if not self.run:
            try:
                directory = checkpoint.resolve(path)
            except UserError:
                return None, None
            return directory, _stamp(directory)
        found = []
        for name in ("last", "best"):
            stamp = _stamp(path / name)
            if stamp is not None:
                found.append(((path / name / "model.json").stat().st_mtime_ns, name, stamp))
        if not found:
            return None, None
        _, name, stamp = max(found)
        return path / name, stamp

    def current(self) -> Loaded:
        """The model to answer with now; raises Waiting before a run's first checkpoint, and
        UserError when there is nothing readable at all."""
        with self._lock:
            if self._loaded is not None and self._stamp is None:  # fixed: a name, a description
                return self._loaded
            fixed = self._loaded is None and not self._exists_as_path()
            if fixed:
                net, meta, voter, notes = network_and_voter(self.target)
                self._loaded = self._make(net, meta, voter, notes)
                return self._loaded
            directory, stamp = self._candidate()
            if directory is None:
                if self._loaded is not None:  # between a replace's two renames, or removed
                    return self._loaded
                if self.run:
                    raise Waiting(f"{self.target} has no checkpoint yet: waiting for the first "
                                  "epoch to end")
                checkpoint.resolve(self.path)  # says what is wrong
                raise UserError(f"{self.target}: no checkpoint")
            if stamp == self._stamp and self._loaded is not None:
                return self._loaded
            try:
                net, meta, voter, notes = network_and_voter(directory)
            except (UserError, OSError, ValueError) as e:
                self._problem = f"{directory} cannot be read now ({_short(e)})"
                if self._loaded is None:
                    raise UserError(self._problem) from None
                return self._loaded  # the model before stays until a good one arrives
            self._problem = None
            self._stamp = stamp
            self._loaded = self._make(net, meta, voter, notes)
            return self._loaded

    @property
    def problem(self) -> str | None:
        """Why the newest checkpoint on disk is not the one shown, if it isn't."""
        return self._problem

    def _exists_as_path(self) -> bool:
        try:
            return self.path.exists()
        except OSError:
            return False

    def _make(self, net, meta, voter, notes) -> Loaded:
        self._count += 1
        examples = None
        if self.examples_for is not None:
            previous = self._loaded
            same = previous is not None and previous.examples is not None and \
                previous.meta.get("training", {}).get("data") == \
                meta.get("training", {}).get("data") and \
                previous.net.input_shape == net.input_shape
            examples = previous.examples if same else self.examples_for(meta, net.input_shape)
        return Loaded(net, meta, voter, f"{self._count}", tuple(notes), examples)

    def training(self) -> dict[str, Any]:
        """A run's progress: the metrics of every epoch so far, how many epochs it will run,
        and whether it has finished (best/ holds the test accuracy)."""
        if not self.run:
            return {"run": False}
        path = self.path
        rows = []
        try:
            text = (path / "metrics.jsonl").read_text(encoding="utf-8")
            for line in text.splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if isinstance(row, dict):
                    rows.append({k: v for k, v in row.items()
                                 if isinstance(v, (int, float)) and not isinstance(v, bool)})
        except OSError:
            pass
        try:
            config = json.loads((path / "train.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        epochs = config.get("epochs") if isinstance(config, dict) else None
        finished = False
        try:
            best = json.loads((path / "best" / "model.json").read_text(encoding="utf-8"))
            finished = "test_accuracy" in best.get("metrics", {})
        except (OSError, ValueError, AttributeError):
            pass
        return {"run": True, "rows": [_finite(row) for row in rows],
                "epochs": epochs if isinstance(epochs, int) else None, "finished": finished}


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: a value that is not a number becomes null."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
