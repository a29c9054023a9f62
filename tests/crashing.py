"""Kill `convnet train` at named points and at random moments, then check that nothing is lost.

A campaign trains a small network on a folder of images (so the decode cache is written too),
once without interruption for reference, then once per kill: the run is killed with SIGKILL
(at a point named in convnet/faults.py, or after a random delay), every checkpoint directory
that exists must load whole, and the run is continued with `--resume` (or started again when
it was killed before its first epoch) until it finishes. The finished run's weights — best/ and
last/ — and its test accuracy must equal the uninterrupted run's, bit for bit.

Used by tests/test_crash.py (a few kills) and scripts/crash_soak.py (many).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 3
# points met once per run, and points met once per epoch (killed at epoch 1, 2 or 3)
ONCE = ["file:train.json:written", "cache:decoded", "cache:swapped", "file:curve.png:written"]
MOVED_ASIDE = ["directory:best:moved-aside", "directory:last:moved-aside"]  # no_exchange only
PER_EPOCH = ["file:metrics.jsonl:written", "file:metrics.jsonl:replaced", "epoch:metrics",
             "checkpoint:weights", "directory:best:filled", "directory:best:swapped",
             "epoch:best", "directory:last:filled", "directory:last:swapped"]


def named_points(epochs: int = EPOCHS, no_exchange: bool = False) -> list[str]:
    """Every kill point of a run: each once-per-run point, each per-epoch point at each epoch;
    best/ is written once more at the end (its test figures), so its points one time more."""
    points = list(ONCE)
    for name in PER_EPOCH + (MOVED_ASIDE if no_exchange else []):
        times = epochs + (1 if name.startswith(("directory:best", "checkpoint")) else 0)
        if name == "checkpoint:weights":
            times = 2 * epochs + 1  # best/ and last/ each epoch, best/ at the end
        points += [f"{name}@{k}" for k in range(1, times + 1)]
    return points


def make_folder(root: Path, per_class: int = 30, size: int = 8, seed: int = 0) -> Path:
    """Three classes of small grey images, hard enough that validation accuracy still rises
    each epoch (so best/ is rewritten, and a kill between best/ and last/ matters)."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(("left", "middle", "right")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size), dtype=np.uint8)
            image[:, label * size // 3:(label + 1) * size // 3] += 14
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


@dataclass
class Setup:
    folder: Path
    work: Path
    engine: str = "numpy"
    epochs: int = EPOCHS

    def argv(self, out: Path) -> list[str]:
        return ["train", "conv(4,3,pad=same) relu pool(2) fc(3)", "--data", str(self.folder),
                "--input", "8x8x1", "--epochs", str(self.epochs), "--batch-size", "16",
                "--engine", self.engine, "--val-size", "15", "--test-fraction", "0.2",
                "--seed", "1", "--lr", "0.02", "--out", str(out)]

    no_exchange: bool = False  # directories swapped in by two renames, not one exchange

    def env(self, cache: Path, kill_at: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("CONVNET_KILL_AT", "CONVNET_NO_EXCHANGE")}
        if self.no_exchange:
            env["CONVNET_NO_EXCHANGE"] = "1"
        env.update({"CONVNET_CACHE": str(cache), "OMP_NUM_THREADS": "1",
                    "CONVNET_NUMPY_THREADS": "1", "PYTHONPATH": str(ROOT)})
        if kill_at:
            env["CONVNET_KILL_AT"] = kill_at
        return env


def convnet(argv: list[str], env: dict[str, str], timeout: float = 300
            ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convnet", *argv], env=env,
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class Finished:
    weights: dict[str, dict[str, np.ndarray]]  # best/ and last/
    test_accuracy: float


def read_finished(run: Path) -> Finished:
    from safetensors.numpy import load_file

    weights = {name: load_file(str(run / name / "model.safetensors")) for name in ("best", "last")}
    meta = json.loads((run / "best" / "model.json").read_text())
    return Finished(weights, meta["metrics"]["test_accuracy"])


def check_loadable(run: Path) -> list[str]:
    """What is wrong with the checkpoints a killed run left: each best/ or last/ that exists
    must load whole (model.json checked, weights against it), last/ with its resume state."""
    from convnet import checkpoint
    from convnet.errors import UserError

    problems = []
    for name in ("best", "last"):
        directory = run / name
        if not directory.exists():
            continue
        try:
            net, _ = checkpoint.load(directory, engine="numpy")
            if name == "last":
                checkpoint.load_resume_state(directory, net)
        except (UserError, OSError, ValueError) as e:
            problems.append(f"{name}/ does not load: {e}")
    return problems


def finish(setup: Setup, run: Path, cache: Path) -> tuple[subprocess.CompletedProcess, str]:
    """Continue a killed run to its end: --resume where it has a finished epoch, else again."""
    if (run / "train.json").is_file() and (run / "last").exists() or \
            any(run.glob("last.*.old")):
        done = convnet(["train", "--resume", str(run)], setup.env(cache))
        return done, "resumed"
    done = convnet(setup.argv(run) + ["--force"], setup.env(cache))
    return done, "started again"


@dataclass
class Report:
    tried: int = 0
    survived: int = 0
    how: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    unreached: list[str] = field(default_factory=list)

    def line(self) -> str:
        ways = ", ".join(f"{n} {k}" for k, n in sorted(self.how.items()))
        return (f"{self.engine_note}kill points tried {self.tried}, survived {self.survived} "
                f"({ways})")

    engine_note: str = ""


def differences(a: Finished, b: Finished) -> list[str]:
    out = []
    for name in ("best", "last"):
        for key, value in a.weights[name].items():
            other = b.weights[name].get(key)
            if other is None or other.shape != value.shape or not np.array_equal(other, value):
                out.append(f"{name}/{key}")
    if a.test_accuracy != b.test_accuracy:
        out.append(f"test accuracy {b.test_accuracy} ≠ {a.test_accuracy}")
    return out


def campaign(setup: Setup, kills: list[str | float], exact: bool = True, random_kills: int = 0,
             seed: int = 0, say=lambda line: None, workers: int = 2) -> Report:
    """Each kill is a point pattern (`epoch:best@2`) or a delay in seconds after the start;
    `random_kills` more come after delays drawn between 0 and the uninterrupted run's time."""
    report = Report(engine_note=f"{setup.engine}: ")
    reference, seconds = None, 0.0
    if exact or random_kills:  # the uninterrupted run: what to compare with, how long it takes
        reference_run = setup.work / "reference"
        started = time.perf_counter()
        done = convnet(setup.argv(reference_run), setup.env(setup.work / "reference-cache"))
        if done.returncode != 0:
            raise RuntimeError(f"the uninterrupted run failed: {done.stderr[-2000:]}")
        reference = read_finished(reference_run)
        seconds = time.perf_counter() - started
        say(f"reference run: {seconds:.1f} s, test accuracy {reference.test_accuracy:.2%}")
    rng = random.Random(seed)
    kills = [*kills, *(rng.uniform(0.02, 1.0) * seconds for _ in range(random_kills))]
    lock = threading.Lock()

    def one(i: int, kill: str | float) -> None:
        run, cache = setup.work / f"run-{i}", setup.work / f"cache-{i}"
        what = kill if isinstance(kill, str) else f"after {kill:.2f} s"
        if isinstance(kill, str):
            killed = convnet(setup.argv(run), setup.env(cache, kill))
            code = killed.returncode
        else:
            process = subprocess.Popen([sys.executable, "-m", "convnet", *setup.argv(run)],
                                       env=setup.env(cache), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            try:
                code = process.wait(timeout=kill)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                code = process.wait()
        if code not in (-signal.SIGKILL, 0):
            with lock:
                report.tried += 1
                report.failures.append(f"{what}: exit {code} before the kill")
            return
        if code == 0 and isinstance(kill, str):  # the run never came to that point
            with lock:
                report.unreached.append(kill)
            say(f"{what}: not reached")
            return
        problems = check_loadable(run) if run.exists() else []
        done, how = finish(setup, run, cache) if code != 0 else (None, "finished first")
        if done is not None and done.returncode != 0:
            problems.append(f"{how}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
        leftovers = [p.name for folder in (run, cache) if folder.is_dir()
                     for p in (*folder.glob("*.part*"), *folder.glob("*.old"))]
        if leftovers:
            problems.append(f"left behind: {', '.join(leftovers)}")
        if not problems and reference is not None:
            diff = differences(reference, read_finished(run))
            if diff and exact:
                problems.append(f"differs from the uninterrupted run: {', '.join(diff[:4])}")
        with lock:
            report.tried += 1
            if problems:
                report.failures.append(f"{what}: " + "; ".join(problems))
            else:
                report.survived += 1
                report.how[how] = report.how.get(how, 0) + 1
        say(f"{what}: {'survived, ' + how if not problems else '; '.join(problems)}")

    with ThreadPoolExecutor(max_workers=workers) as pool:  # each kill in its own folders
        for future in [pool.submit(one, i, kill) for i, kill in enumerate(kills)]:
            future.result()
    return report


def stopped_and_resumed(config: Any, straight: Path, stopped: Path) -> None:
    """Train `config` (a TrainConfig) into `straight` without a stop, and into `stopped`
    interrupted after its first epoch and continued with --resume from its train.json, in this
    process: the two runs' files are then for the caller to compare."""
    from convnet.train import TrainConfig, Trainer

    Trainer(config, straight, progress=False).run()

    def stop_after_first(epoch: int) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    try:
        Trainer(config, stopped, progress=False).run(on_epoch_end=stop_after_first)
        raise AssertionError("the run was not stopped after its first epoch")
    except KeyboardInterrupt:
        pass
    assert json.loads((stopped / "last/training.json").read_text())["epoch"] == 1
    saved = TrainConfig.from_json(json.loads((stopped / "train.json").read_text()))
    Trainer(saved, stopped, resume=True, progress=False).run()
