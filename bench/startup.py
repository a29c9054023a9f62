"""What a command pays before and around training: the first optimiser step of torch.optim
against the torch engine's own optimiser, each in a fresh process, and the whole
`convnet train --recipe fast91` split into its training (the epochs' seconds in metrics.jsonl)
and everything else (start-up, loading, the test, checkpoints, the curve).

torch.optim's first step imports TorchDynamo (torch.compile's front end), which a training loop
that compiles nothing never uses; convnet's torch engine writes SGD, Adam and AdamW out
(convnet/engines/torch/optim.py, bit for bit the same weights, tests/test_network.py).

    .venv/bin/python bench/startup.py                 # 5 rounds, interleaved
    .venv/bin/python bench/startup.py --rounds 3 --no-command
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from convnet import cpu  # noqa: E402

FIRST_STEP = {
    "import torch": "import torch",
    "import torch + torch.optim.SGD's first step":
        "import torch\np = torch.zeros(4, requires_grad=True); p.grad = torch.ones(4)\n"
        "torch.optim.SGD([p], lr=0.1, momentum=0.9).step()",
    "import torch + convnet's SGD's first step":
        "import torch\nfrom convnet.config import OptimizerConfig\n"
        "from convnet.engines.torch.optim import SGD\n"
        "p = torch.zeros(4, requires_grad=True); p.grad = torch.ones(4)\n"
        "SGD([{'params': [p], 'names': ['p'], 'lr': 0.1}], "
        "OptimizerConfig('sgd', lr=0.1, momentum=0.9)).step()",
}


def timed(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def command(recipe: str) -> tuple[float, float]:
    """(wall seconds, training seconds) of `convnet train --recipe RECIPE --seed 0`."""
    out = tempfile.mkdtemp(prefix="convnet-startup-")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convnet", "train", "--recipe", recipe, "--seed", "0",
                    "--out", out, "--force"], check=True, capture_output=True)
    wall = time.perf_counter() - start
    epochs = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return wall, sum(e["seconds"] for e in epochs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--recipe", default="fast91")
    p.add_argument("--no-command", action="store_true")
    args = p.parse_args()
    print(f"# {cpu.describe()}; {args.rounds} rounds, each item in a fresh process, interleaved")
    firsts: dict[str, list[float]] = {k: [] for k in FIRST_STEP}
    walls, trainings = [], []
    for _ in range(args.rounds):
        for label, code in FIRST_STEP.items():
            firsts[label].append(timed(code))
        if not args.no_command:
            wall, training = command(args.recipe)
            walls.append(wall)
            trainings.append(training)
    median = {k: statistics.median(v) for k, v in firsts.items()}
    for label, values in firsts.items():
        print(f"{label:46} {median[label]:6.2f} s  ({min(values):.2f}–{max(values):.2f})")
    base = median["import torch"]
    ours, theirs = (median[k] - base for k in list(FIRST_STEP)[2:0:-1])
    print(f"first optimiser step beyond the import: torch.optim {theirs:.2f} s, "
          f"convnet's {ours:.2f} s — {theirs - ours:.2f} s saved")
    if walls:
        outside = [w - t for w, t in zip(walls, trainings)]
        print(f"convnet train --recipe {args.recipe}: wall {statistics.median(walls):.2f} s, "
              f"training {statistics.median(trainings):.2f} s, everything else "
              f"{statistics.median(outside):.2f} s ({min(outside):.2f}–{max(outside):.2f}; "
              "medians)")


if __name__ == "__main__":
    main()
