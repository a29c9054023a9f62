"""An ensemble's models trained at once (each in a process of its own on a share of the cores,
`convnet/members.py`) against one by one on every core, in the same run, alternately.

    .venv/bin/python bench/at_once.py [--recipe ensemble] [--models 3] [--epochs 2] [--rounds 2]
                                [--engine numpy]

Each round runs `convnet train --recipe R --ensemble K --epochs E` twice: with `--at-once 1`
(the models one after another, each on every core: how an ensemble trained until 12-02) and
with the default (all at once on a CPU). It prints each command's wall time, the models'
epochs (seconds of training per model-epoch: the sum of their epoch times divided by how many
ran side by side), and the ratio of the wall times. Epochs are passes over Fashion-MNIST's
60,000 training images; a short run over-weights start-up and the final test, which the at-once
command pays once per process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from convnet.cpu import this_cpu

HERE = Path(__file__).resolve().parent.parent


def run(recipe: str, models: int, epochs: int, at_once: int | None, out: Path,
        engine: str | None) -> dict:
    command = [sys.executable, "-m", "convnet", "train", "--recipe", recipe, "--ensemble",
               str(models), "--epochs", str(epochs), "--seed", "0", "--out", str(out), "--force"]
    command += ["--engine", engine] if engine else []
    if at_once is not None:
        command += ["--at-once", str(at_once)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=HERE, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    seconds = [json.loads(line)["seconds"] for k in range(1, models + 1)
               for line in (out / f"model-{k}" / "metrics.jsonl").read_text().splitlines()]
    accuracy = next(line for line in done.stdout.splitlines() if line.startswith("ensemble of"))
    return {"wall": wall, "epoch_seconds": sum(seconds),
            "accuracy": accuracy.split(": ")[1].split(" → ")[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="ensemble")
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engine", help="numpy or torch (default: the recipe's)")
    args = parser.parse_args()
    cpu = this_cpu()
    print(f"# {cpu.describe()}; recipe {args.recipe}, {args.models} models, "
          f"{args.epochs} epochs each{f', engine {args.engine}' if args.engine else ''}")
    at_once = min(args.models, 2 * cpu.cores)
    ratios = []
    with tempfile.TemporaryDirectory() as root:
        for r in range(args.rounds):
            timed = {}
            for name, given in (("one by one", 1), ("at once", None)):
                timed[name] = run(args.recipe, args.models, args.epochs, given,
                                  Path(root) / f"{r}-{given}", args.engine)
                together = 1 if given == 1 else at_once
                per_epoch = timed[name]["epoch_seconds"] / together / (args.models * args.epochs)
                print(f"round {r + 1}, {name:10}  {timed[name]['wall']:7.1f} s wall, "
                      f"{per_epoch:5.1f} s a model-epoch, {timed[name]['accuracy']}", flush=True)
            ratios.append(timed["one by one"]["wall"] / timed["at once"]["wall"])
            print(f"round {r + 1}: at once {ratios[-1]:.2f}× faster (wall)", flush=True)
    print(f"ratio, wall: {min(ratios):.2f}–{max(ratios):.2f}×")


if __name__ == "__main__":
    main()
