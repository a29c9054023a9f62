"""Several models trained at once, each in a process of its own on a share of the cores.

The recipes' networks are small: one of them need not keep two cores busy (PyTorch shares each
operation out between its threads and waits for them, thousands of times a second). Trained side
by side, one thread each, the members of an ensemble go through 1.3–1.5× the images a second
that one model on every core does on an Intel Xeon with AMX; on an AMD EPYC, whose bf16
convolutions (AVX-512, no AMX) keep both cores busy, a little more (1.0–1.2×; docs/BENCHMARKS.md,
"Members at once", "The AMD EPYC again"). So `train_ensemble` trains its members at once on a
CPU, as many as memory allows (at most twice the cores); on a GPU as many as there are cores
and as the GPU's memory holds (one `ensemble` member alone on an H200 kept 25,000–28,000 img/s;
three at once 23,000–26,000 each, 2.7× the images a second, the same weights: bench/gpu.sh,
2026-12-04); one by one under torchrun, or where only one fits.

Data flows one way: the parent starts each member's process with its settings and thread count;
the member sends back its lines (printed with "model K: " before them), then its test accuracy
or the one line of what went wrong. A member's process ignores Ctrl-C; the parent stops them
all, so a run is never left half-stopped. A member trained on one thread gets the same weights
on the NumPy engine as on every core (its sums do not depend on the thread count); on the torch
engine its last bits differ, as they do between machines with other core counts.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import UserError

# The memory a member's process takes besides its data and its network's training (the
# inspector's estimate): Python, NumPy and PyTorch imported, measured as the resident size of
# `python -c "import convnet.train, torch"` (about 420 MB with torch 2.13 on Linux), rounded up.
PROCESS_BYTES = 600 * 2**20
MAX_PER_CORE = 2  # members at once, at most, per core (3 on 2 cores beat 2 then 1: 26 min vs 29)
# The GPU memory a member's process takes besides its network's training: CUDA's context with
# cuDNN's and cuBLAS's workspaces (about 0.5 GB with PyTorch 2.11 and CUDA 13), rounded up.
GPU_PROCESS_BYTES = 2**30


@dataclass(frozen=True)
class Member:
    number: int  # 1, 2, … as the ensemble's directory names them (model-1, …)
    config: Any  # its TrainConfig (its own seed)
    directory: Path


@dataclass(frozen=True)
class Plan:
    at_once: int  # members trained at the same time
    cores: int
    reason: str  # why, for the line before training


def plan(count: int, cores: int, at_once: int | None, *, device: str | None, processes: int,
         member_bytes: int | None, available: int | None, gpu_member_bytes: int | None = None,
         gpu_available: int | None = None) -> Plan:
    """How many of `count` members train at once. `at_once` is the user's (--at-once) or None
    to choose: on a CPU as many as there are members, at most MAX_PER_CORE a core and as many as
    `available` memory holds at `member_bytes` each; on a GPU (`device` cuda…) one a core at
    most, and as many as its free memory (`gpu_available`) holds at `gpu_member_bytes` each
    besides; one under torchrun (`processes` > 1)."""
    if at_once is not None and at_once < 1:
        raise UserError(f"--at-once takes the number of models trained at the same time, at "
                        f"least 1, got {at_once}")
    if processes > 1:
        if at_once is not None and at_once > 1:
            raise UserError("--at-once trains members in processes of their own; under torchrun "
                            "every process trains the same model, so leave --at-once out")
        return Plan(1, cores, "under torchrun, one model at a time")
    if at_once is not None:
        return Plan(min(at_once, count), cores, "--at-once")
    from .resources import bytes_text

    on_gpu = (device or "").startswith("cuda")
    if cores < 2:
        return Plan(1, cores, "one core: one at a time")
    chosen = min(count, cores if on_gpu else MAX_PER_CORE * cores)
    limits = [(gpu_available, gpu_member_bytes, "the GPU's {} free hold")] if on_gpu else []
    limits.append((available, member_bytes, "{} of memory holds"))
    for free, each, holds in limits:  # the GPU's memory first, then the host's
        if each and free is not None and (fits := max(1, free // each)) < chosen:
            return Plan(fits, cores, f"{holds.format(bytes_text(free))} {fits} at about "
                                     f"{bytes_text(each)} each")
    # the threads each: `threads_for`
    return Plan(chosen, cores, f"on the GPU, {cores} cores" if on_gpu else f"{cores} cores")


def threads_for(cores: int, together: int) -> int:
    """Each member's threads when `together` train at the same time on `cores`."""
    return max(1, cores // max(1, together))


@dataclass
class _Running:
    member: Member
    process: Any
    connection: Any
    result: tuple[str, Any] | None = None


def train_at_once(members: list[Member], at_once: int, cores: int, *, force: bool = False,
                  on_start: Callable[[Member, int], None] | None = None,
                  out=None, err=None) -> dict[int, float]:
    """Train `members`, `at_once` at a time, each in a process of its own; their lines go to
    `out` and `err` (sys.stdout, sys.stderr) as "model K: …". Returns each member's test
    accuracy by its number. A member's mistake (a UserError) stops the others and is raised
    here with "model K: " before it."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads forked
    pending, running, accuracy = list(members), [], {}
    try:
        while pending or running:
            while pending and len(running) < at_once:
                member = pending.pop(0)
                threads = threads_for(cores, min(at_once, len(running) + 1 + len(pending)))
                if on_start is not None:
                    on_start(member, threads)
                receiving, sending = context.Pipe(duplex=False)
                process = context.Process(
                    target=_member_main, name=f"convnet-model-{member.number}", daemon=True,
                    args=(asdict(member.config), str(member.directory), force, threads,
                          sending, os.getpid()))
                with _holding_ctrl_c(), _these_kernels():  # the member inherits both
                    process.start()
                sending.close()  # the child's end: the parent sees EOF when it exits
                running.append(_Running(member, process, receiving))
            ready = wait([r.connection for r in running])
            for run in [r for r in running if r.connection in ready]:
                if _receive(run, out or sys.stdout, err or sys.stderr):
                    continue
                run.process.join()
                running.remove(run)
                accuracy[run.member.number] = _outcome(run)
    finally:
        for run in running:  # a mistake, a crash or Ctrl-C: the others stop too
            if run.process.is_alive():
                run.process.terminate()
            run.process.join()
    return accuracy


@contextmanager
def _these_kernels():
    """OPENBLAS_CORETYPE set, while a member's process starts, to the kernels this process's
    OpenBLAS runs, then put back: the member's NumPy loads the same ones, so its model is the
    one trained here bit for bit, even where this process loaded NumPy before convnet could
    pick the kernels for the CPU (cpu.prefer_blas_kernels; a fresh process would)."""
    from .engines.numpy import blas
    name, before = blas.kernel(), os.environ.get("OPENBLAS_CORETYPE")
    if name:
        os.environ["OPENBLAS_CORETYPE"] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OPENBLAS_CORETYPE", None)
        else:
            os.environ["OPENBLAS_CORETYPE"] = before


@contextmanager
def _holding_ctrl_c():
    """SIGINT held back while a member's process starts: the process inherits the mask and
    ignores Ctrl-C from its first instruction (a terminal's Ctrl-C goes to every process of the
    group; the parent alone decides, and stops the members), and a Ctrl-C meanwhile reaches the
    parent as soon as the process has started."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _receive(run: _Running, out, err) -> bool:
    """Handle one message from a member; False once it has closed its end (it has ended)."""
    try:
        kind, value = run.connection.recv()
    except (EOFError, OSError):
        return False
    if kind in ("out", "err"):
        stream = out if kind == "out" else err
        stream.write(f"model {run.member.number}: {value}")
        stream.flush()
    else:
        run.result = (kind, value)
    return True


def _outcome(run: _Running) -> float:
    number = run.member.number
    if run.result is None:  # ended without a word: killed (the OOM killer, a signal) or crashed
        code = run.process.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else \
            f"ended with status {code}"
        hint = " (out of memory? try --at-once 1)" if code == -signal.SIGKILL else ""
        raise UserError(f"model {number}'s process {how}{hint}; its run is in "
                        f"{run.member.directory}")
    kind, value = run.result
    if kind == "done":
        return float(value)
    if kind == "user":
        raise UserError(f"model {number}: {value}")
    raise RuntimeError(f"model {number} failed:\n{value}")


class _Lines:
    """A child's stdout or stderr: whole lines sent to the parent."""

    def __init__(self, connection, kind: str) -> None:
        self.connection, self.kind, self.buffer = connection, kind, ""

    def write(self, text: str) -> int:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            if line.strip():
                self._send(line + "\n")
        return len(text)

    def _send(self, line: str) -> None:
        try:
            self.connection.send((self.kind, line))
        except OSError:  # the parent has ended: nobody is left to train for
            os._exit(1)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """The last line, if it had no newline."""
        if self.buffer.strip():
            self._send(self.buffer + "\n")
        self.buffer = ""

    def isatty(self) -> bool:
        return False


def _end_with(parent: int) -> None:
    """Linux: SIGTERM to this process when its parent ends (killed, say, where it had no time
    to stop its members); elsewhere a member ends at its next line, when sending it fails."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)


def _member_main(config: dict[str, Any], directory: str, force: bool, threads: int,
                 connection, parent: int) -> None:
    """A member's process: its threads set before any library starts its own, then one run."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "CONVNET_NUMPY_THREADS"):
        os.environ[name] = str(threads)
    _end_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the members
    if hasattr(signal, "pthread_sigmask"):  # held back while this process started
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    lines = _Lines(connection, "out"), _Lines(connection, "err")
    sys.stdout, sys.stderr = lines  # type: ignore[assignment]
    outcome: tuple[str, Any]
    try:
        from .resources import out_of_memory
        from .train import TrainConfig, Trainer

        settings = TrainConfig.from_json(config)
        if settings.engine != "numpy":
            try:
                import torch
                torch.set_num_threads(threads)
            except ImportError:
                pass
        try:
            result = Trainer(settings, Path(directory), force=force, progress=False).run()
        except Exception as e:
            if not out_of_memory(e):
                raise
            raise UserError("out of memory while training beside the other models; train "
                            "them one at a time (--at-once 1) or with a smaller "
                            "--batch-size") from None
        outcome = ("done", result.test_accuracy)
    except UserError as e:
        outcome = ("user", str(e))
    except BaseException:
        outcome = ("error", traceback.format_exc())
    for stream in lines:  # its last lines, then how it ended
        stream.close()
    connection.send(outcome)
    connection.close()
