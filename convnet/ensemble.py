"""Ensembles: several trained models voting, as the lecture series' next step does.

Two ways to combine: the mean of the members' softmax probabilities ("softmax", the default) or
the sum of their logits ("logits", as the course's lab code does). An ensemble offers what
evaluation and prediction need (logits, predict, input_shape), so `eval` and `predict` take a
saved ensemble directory like any model:

    DIR/model.json      {"kind": "ensemble", "combine": ..., "classes", "input", "members": [...]}
    DIR/members/0/ ...  each member's own checkpoint, copied whole
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import UserError
from .files import atomic_directory
from .network import Network, softmax

COMBINE = ("softmax", "logits")


class Ensemble:
    def __init__(self, members: list[Network], classes: list[str], combine: str = "softmax"):
        if combine not in COMBINE:
            raise UserError(f"unknown way to combine {combine!r}; choose {' or '.join(COMBINE)}")
        if len(members) < 2:
            raise UserError("an ensemble needs at least two models")
        shapes = {m.input_shape for m in members}
        if len(shapes) > 1:
            raise UserError("the models take different inputs ("
                            + ", ".join("x".join(map(str, s)) for s in sorted(shapes))
                            + "); an ensemble's members must see the same images")
        self.members, self.classes, self.combine = members, list(classes), combine
        self.input_shape = members[0].input_shape
        self.num_classes = len(classes)
        self.dtype = "float32"
        self.meta: dict[str, Any] | None = None  # its model.json, when loaded (convnet.load)

    def logits(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        return self.vote([m.logits(x, batch_size) for m in self.members])

    def vote(self, scores: list[np.ndarray]) -> np.ndarray:
        """The members' logits (one array each, in member order) combined: the ensemble's."""
        scores = [s.astype(np.float64) for s in scores]
        if self.combine == "logits":
            return np.sum(scores, axis=0)
        probabilities = np.mean([softmax(s) for s in scores], axis=0)
        return np.log(np.maximum(probabilities, 1e-300))  # whose softmax is the mean

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        return softmax(self.logits(x, batch_size)).astype(np.float32)

    def views(self) -> str:
        """How a prediction is made, in words (as Network.views, which eval prints)."""
        how = "the mean of their softmax" if self.combine == "softmax" else "their logits summed"
        text = f"each prediction is the vote of {len(self.members)} models, {how}"
        each = {member.vote_of_views() for member in self.members}
        if each == {""}:
            return text
        if len(each) == 1:
            return f"{text}; each model's is {each.pop()}"
        return text + "; some models vote over several views of the image themselves"


def check_classes(metas: list[dict[str, Any]]) -> list[str]:
    classes = [list(m["classes"]) for m in metas]
    for meta, these in zip(metas[1:], classes[1:]):
        if these != classes[0]:
            raise UserError(f"{meta['directory']} has other classes ({', '.join(these)}) than "
                            f"{metas[0]['directory']} ({', '.join(classes[0])})")
    return classes[0]


def save(ensemble: Ensemble, metas: list[dict[str, Any]], directory: Path) -> Path:
    from .checkpoint import FORMAT, VERSION, versions, write_json

    with atomic_directory(directory) as staging:
        for i, meta in enumerate(metas):
            shutil.copytree(meta["directory"], staging / "members" / str(i))
        write_json(staging / "model.json", {
            "format": FORMAT, "version": VERSION, "kind": "ensemble",
            "combine": ensemble.combine, "classes": ensemble.classes,
            "input": list(ensemble.input_shape),
            "members": [f"members/{i}" for i in range(len(metas))],
            "descriptions": [m["description"] for m in metas], "versions": versions()})
    return directory



@dataclass
class Trained:
    directory: Path  # the saved ensemble
    members: list[tuple[Path, float]]  # each member's run and its test accuracy
    accuracy: float  # the ensemble's


def train_ensemble(config, directory: Path, count: int, force: bool = False,
                   tell: Callable[[str], None] | None = None, at_once: int | None = None
                   ) -> Trained:
    """K models with consecutive seeds (config.seed … + K − 1) under DIR/model-1 …, then their
    ensemble in DIR/ensemble, evaluated on the test set. On a CPU or a GPU the models train
    at once, each in a process of its own (`members.plan` decides how many; `at_once` is
    --at-once); `tell` gets the lines that say so and which model starts when."""
    from dataclasses import replace

    from .checkpoint import load
    from .distributed import world
    from .evaluate import report
    from .members import Member, train_at_once

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not force:
        raise UserError(f"{directory} already exists; use --force to replace it")
    say = tell or (lambda line: None)
    members = [Member(k + 1, replace(config, seed=config.seed + k), directory / f"model-{k + 1}")
               for k in range(count)]
    data, chosen = _plan(config, count, at_once, world().size)
    if chosen.at_once > 1:
        which = f"the {count} models at once" if chosen.at_once == count else \
            f"{chosen.at_once} of the {count} models at a time"
        say(f"{which}, each in a process of its own ({chosen.reason}); their lines begin with "
            "the model's number")
        train_at_once(members, chosen.at_once, chosen.cores, force=force,
                      on_start=lambda m, threads: say(
                          f"model {m.number} of {count} (seed {m.config.seed}), "
                          f"{threads} thread{'s' if threads > 1 else ''}"))
        test = data.test
    else:
        from .train import Trainer

        for member in members:
            say(f"model {member.number} of {count} (seed {member.config.seed})")
            trainer = Trainer(member.config, member.directory, force=force)
            trainer.run()
        test = trainer.data.test
    runs = [member.directory for member in members]
    # each member's test scores where it trained: on the GPU of a GPU run (on the CPU they took
    # 20 s and more, minutes where two such runs shared the cores; bench/gpu.sh, 12-04)
    device = config.device if config.engine != "numpy" else None
    loaded = [load(run, engine=config.engine, device=device) for run in runs]
    classes = check_classes([meta for _, meta in loaded])
    ensemble = Ensemble([net for net, _ in loaded], classes)
    scores = [net.logits(test.images) for net, _ in loaded]  # each member's once
    results = [(run, report(s, test.labels, classes).accuracy) for run, s in zip(runs, scores)]
    accuracy = report(ensemble.vote(scores), test.labels, classes).accuracy
    save(ensemble, [meta for _, meta in loaded], directory / "ensemble")
    return Trained(directory / "ensemble", results, accuracy)


def _plan(config, count: int, at_once: int | None, processes: int):
    """The data (read once here, when the models train elsewhere) and how many train at once.
    A model's memory: its process, its copy of the data (the bytes and a float32 copy), and the
    inspector's estimate of its training."""
    from .cpu import this_cpu
    from .members import GPU_PROCESS_BYTES, PROCESS_BYTES, plan
    from .network import training_need
    from .resources import available_memory
    from .shapes import infer
    from .train import prepare

    cores, device = this_cpu().cores, "cpu"
    if config.engine != "numpy":
        try:
            from .engines.torch.engine import pick_device

            device = pick_device(config.device).type  # "auto" resolved as the engine will
        except ImportError:  # no PyTorch: the NumPy engine, on a CPU
            pass
    first = plan(count, cores, at_once, device=device, processes=processes,
                 member_bytes=None, available=None)
    if first.at_once < 2:
        return None, first
    data, network, _ = prepare(config)  # a mistake is one line here, not one per model
    need = training_need(infer(network), config.dtype, config.batch_size)[0]
    held = sum(5 * math.prod(part.images.shape) + part.labels.nbytes
               for part in (data.train, data.test))
    return data, plan(count, cores, at_once, device=device, processes=processes,
                      member_bytes=PROCESS_BYTES + held + need, available=available_memory(),
                      gpu_member_bytes=GPU_PROCESS_BYTES + need,
                      gpu_available=_gpu_free(config.device) if device == "cuda" else None)


def _gpu_free(device: str | None) -> int | None:
    """Free bytes on the CUDA device `device` names (cuda, cuda:N, auto), or None where
    PyTorch cannot say."""
    try:
        import torch

        from .engines.torch.engine import pick_device

        return int(torch.cuda.mem_get_info(pick_device(device))[0])
    except Exception:  # no answer: the plan goes by the cores and the host's memory
        return None
