"""Fuzz every reader of outside input for longer than CI does (tests/fuzzing.py).

    .venv/bin/python scripts/fuzz_soak.py                    # 5,000 cases per target
    .venv/bin/python scripts/fuzz_soak.py --cases 50000 --targets image idx --seed 3

Each target runs in its own process under a memory limit (--memory-gib, RLIMIT_AS) and each case
under a time limit (--case-seconds, SIGALRM): an unbounded allocation or a hang is a failure, as
is any exception other than convnet's one-line UserError. Prints one line per target and the
first failures; exit status 1 if any.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import signal
import sys
import time
import warnings
from queue import Empty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fuzzing  # noqa: E402


class Hang(Exception):
    pass


def _one_target(target: str, cases: int, seed: int, memory_gib: float, case_seconds: int,
                queue) -> None:
    limit = int(memory_gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def alarm(signum, frame):
        raise Hang(f"a case ran longer than {case_seconds} s")

    signal.signal(signal.SIGALRM, alarm)
    warnings.simplefilter("ignore")  # Pillow warns on every broken TIFF tag
    result = fuzzing.run(target, cases, seed, on_case=lambda: signal.alarm(case_seconds))
    signal.alarm(0)
    queue.put(result)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=5000)
    p.add_argument("--targets", nargs="+", choices=list(fuzzing.TARGETS),
                   default=list(fuzzing.TARGETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory-gib", type=float, default=3.0)
    p.add_argument("--case-seconds", type=int, default=20)
    args = p.parse_args()
    context = multiprocessing.get_context("fork")
    failed = 0
    for target in args.targets:
        queue = context.Queue()
        started = time.perf_counter()
        worker = context.Process(target=_one_target, args=(target, args.cases, args.seed,
                                                            args.memory_gib, args.case_seconds,
                                                            queue))
        worker.start()
        while True:
            try:
                result = queue.get(timeout=5)
                break
            except Empty:
                if not worker.is_alive():  # a crash no exception reports (a signal)
                    result = fuzzing.Result(target, failures=[
                        f"the process died with exit code {worker.exitcode}"])
                    break
        worker.join()
        print(f"{result.line()}  ({time.perf_counter() - started:.0f} s)", flush=True)
        for failure in result.failures[:3]:
            print("  FAILED", failure)
        failed += len(result.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
