"""Kill `convnet train` at every named point and at many random moments; print what survived.

    .venv/bin/python scripts/crash_soak.py                      # numpy: every point, 40 random
    .venv/bin/python scripts/crash_soak.py --engine torch --random 20
    .venv/bin/python scripts/crash_soak.py --no-exchange        # the two-rename path too

A kill survived when every checkpoint left loads whole, the run continues with --resume (or
starts again, when killed before its first epoch) and ends with the same weights and test
accuracy as an uninterrupted run, bit for bit (tests/crashing.py; both engines on the CPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from crashing import Setup, campaign, make_folder, named_points  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", choices=("numpy", "torch"), default="numpy")
    p.add_argument("--random", type=int, default=40, help="kills after random delays")
    p.add_argument("--no-points", action="store_true", help="random kills only")
    p.add_argument("--no-exchange", action="store_true",
                   help="swap directories in by two renames (as where renameat2 is missing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--not-exact", action="store_true",
                   help="check that runs continue and load, not that they end bit for bit")
    args = p.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        folder = make_folder(Path(work) / "images")
        setup = Setup(folder, Path(work) / "runs", engine=args.engine,
                      no_exchange=args.no_exchange)
        points = [] if args.no_points else named_points(no_exchange=args.no_exchange)
        report = campaign(setup, points, exact=not args.not_exact, random_kills=args.random,
                          seed=args.seed, say=print)
    print(f"\n{report.line()}; named points not reached: {len(report.unreached)}; "
          f"{time.perf_counter() - started:.0f} s")
    for failure in report.failures:
        print("FAILED", failure)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
