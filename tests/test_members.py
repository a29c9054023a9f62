"""An ensemble's models trained at once, each in a process of its own: how many, the same
weights as one by one, their lines, and what happens when one fails or Ctrl-C comes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convnet.cli import main
from convnet.errors import UserError
from convnet.members import MAX_PER_CORE, Member, _outcome, _Running, plan, threads_for

NET = "conv(6,3,pad=same) relu pool(2) fc(10)"
GiB = 2**30


def chosen(count, cores, at_once=None, device=None, processes=1, member=None, available=None,
           gpu_member=None, gpu_available=None):
    return plan(count, cores, at_once, device=device, processes=processes, member_bytes=member,
                available=available, gpu_member_bytes=gpu_member,
                gpu_available=gpu_available).at_once


def test_how_many_train_at_once():
    assert chosen(3, 2) == 3  # all of them: 3 on 2 cores beat 2 and then 1
    assert chosen(10, 2) == 2 * MAX_PER_CORE
    assert chosen(3, 16) == 3
    assert chosen(3, 1) == 1  # one core: nothing to share
    assert chosen(3, 8, device="cuda") == chosen(3, 8, device="cuda:1") == 3
    assert chosen(3, 8, processes=4) == 1  # torchrun: every process trains the same model
    assert chosen(3, 8, member=2 * GiB, available=5 * GiB) == 2  # as many as memory holds
    assert chosen(3, 8, member=2 * GiB, available=GiB) == 1
    assert chosen(3, 8, member=2 * GiB, available=None) == 3  # the system does not say
    assert chosen(3, 2, at_once=1) == 1 and chosen(3, 2, at_once=7) == 3  # the user's word
    assert chosen(2, 2, at_once=2, device="cuda") == 2
    assert "holds 2" in plan(3, 8, None, device=None, processes=1, member_bytes=2 * GiB,
                             available=5 * GiB).reason


@pytest.mark.parametrize("at_once, processes, message", [
    (0, 1, "--at-once takes the number of models trained at the same time, at least 1"),
    (2, 2, "under torchrun every process trains the same model"),
])
def test_what_plan_refuses(at_once, processes, message):
    with pytest.raises(UserError, match=message):
        plan(3, 2, at_once, device=None, processes=processes, member_bytes=None, available=None)


def test_on_a_gpu_members_train_at_once_a_core_each_as_its_memory_holds():
    """On a GPU the members train at once too (three `ensemble` members on an H200: 2.7× the
    images a second of one by one): one a core at most, as many as the GPU's free memory and
    the host's hold."""
    assert chosen(10, 4, device="cuda") == 4  # a core each, not MAX_PER_CORE
    assert chosen(10, 4) == 4 * MAX_PER_CORE  # on the CPU two a core
    assert chosen(3, 16, device="cuda", gpu_member=2 * GiB, gpu_available=5 * GiB) == 2
    assert chosen(3, 16, device="cuda", gpu_member=2 * GiB, gpu_available=GiB) == 1
    assert chosen(3, 16, device="cuda", gpu_member=2 * GiB, gpu_available=None) == 3
    assert chosen(3, 16, device="cuda", member=2 * GiB, available=3 * GiB) == 1  # the host's
    assert chosen(3, 1, device="cuda") == 1
    assert chosen(3, 16, device="cuda", at_once=1) == 1  # the user's word
    gpu = plan(3, 16, None, device="cuda", processes=1, member_bytes=None, available=None,
               gpu_member_bytes=2 * GiB, gpu_available=5 * GiB)
    assert gpu.reason == "the GPU's 5.0 GiB free hold 2 at about 2.0 GiB each"
    assert "on the GPU" in plan(3, 16, None, device="cuda", processes=1, member_bytes=None,
                         available=None).reason


def test_threads_share_the_cores():
    assert [threads_for(2, n) for n in (1, 2, 3)] == [2, 1, 1]
    assert [threads_for(16, n) for n in (1, 3, 5)] == [16, 5, 3]
    assert threads_for(1, 0) == 1


class _Ended:
    def __init__(self, exitcode):
        self.exitcode = exitcode


@pytest.mark.parametrize("result, exitcode, raised, message", [
    (("done", 0.875), 0, None, None),
    (("user", "cannot read x.png"), 0, UserError, "model 2: cannot read x.png"),
    (("error", "Traceback …\nValueError: boom"), 0, RuntimeError, "model 2 failed"),
    (None, -signal.SIGKILL, UserError, "model 2's process was killed by signal 9 \\(out of "
                                       "memory\\? try --at-once 1\\); its run is in runs/x"),
    (None, 3, UserError, "model 2's process ended with status 3; its run is in runs/x"),
])
def test_what_a_member_says_at_its_end(result, exitcode, raised, message):
    run = _Running(Member(2, None, Path("runs/x")), _Ended(exitcode), None, result)
    if raised is None:
        assert _outcome(run) == 0.875
    else:
        with pytest.raises(raised, match=message):
            _outcome(run)


def test_at_once_gives_the_weights_one_by_one_gives(capsys, tmp_path, fashion_dir):
    """The NumPy engine's sums do not depend on its thread count, so a model trained in a
    process of its own on one thread is the same, bit for bit, as one trained here on every
    core; its lines come back with its number."""
    common = ["train", NET, "--data-dir", str(fashion_dir), "--epochs", "1", "--val-size", "300",
              "--engine", "numpy", "--ensemble", "2", "--seed", "3", "--batch-size", "64"]
    assert main([*common, "--out", str(tmp_path / "apart"), "--at-once", "2"]) == 0
    apart = capsys.readouterr().out
    assert main([*common, "--out", str(tmp_path / "one-by-one"), "--at-once", "1"]) == 0
    together = capsys.readouterr().out
    assert "the 2 models at once, each in a process of its own (--at-once)" in apart
    assert "model 2 of 2 (seed 4), 1 thread" in apart
    assert "model 1: epoch 1/1: loss" in apart and "model 2: epoch 1/1: loss" in apart
    assert "model 2 of 2 (seed 4)\n" in together and "model 1: epoch" not in together
    for k in (1, 2):
        a, b = (tmp_path / run / f"model-{k}" for run in ("apart", "one-by-one"))
        assert (a / "best" / "model.safetensors").read_bytes() == \
            (b / "best" / "model.safetensors").read_bytes()
        assert json.loads((a / "train.json").read_text())["seed"] == 2 + k
    line = [x for x in apart.splitlines() if x.startswith("ensemble of 2")]
    assert line and line[0].split(" → ")[0] in together


def test_a_member_killed_stops_the_others_with_one_line(tmp_path, fashion_dir):
    """A member's process killed (here at its first epoch's metrics, as the OOM killer would):
    one line and status 2, and no member left running."""
    out = tmp_path / "killed"
    env = {**os.environ, "CONVNET_KILL_AT": "epoch:metrics"}
    done = subprocess.run(
        [sys.executable, "-m", "convnet", "train", NET, "--data-dir", str(fashion_dir),
         "--epochs", "2", "--engine", "numpy", "--ensemble", "2", "--at-once", "2",
         "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and "'s process was killed by signal 9 (out of memory? try " \
        "--at-once 1); its run is in" in error[0], done.stderr
    assert not (out / "ensemble").exists()


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"\nPPid:\t{pid}\n" in status.read_text():
                found.append(int(status.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_ctrl_c_stops_every_member(tmp_path, fashion_dir):
    """Ctrl-C goes to the whole process group: the members ignore it, the parent stops them
    and says so (status 130)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "convnet", "train", NET, "--data-dir", str(fashion_dir),
         "--epochs", "50", "--engine", "numpy", "--ensemble", "2", "--at-once", "2",
         "--out", str(tmp_path / "stopped")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = time.monotonic()
    lines = []
    while not any(line.startswith("model 1: epoch 1/") for line in lines):
        line = process.stdout.readline()
        assert line and time.monotonic() - started < 120, "".join(lines)
        lines.append(line)
    members = _children(process.pid)
    assert members
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert [line for line in err.splitlines() if not line.startswith("model ")] == \
        ["convnet: interrupted"], err  # no member's traceback
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in members) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in members if Path(f"/proc/{pid}").exists()]


def test_at_once_without_an_ensemble_is_refused(capsys, fashion_dir, tmp_path):
    assert main(["train", NET, "--data-dir", str(fashion_dir), "--epochs", "1", "--at-once",
                 "2", "--out", str(tmp_path / "one")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "convnet: error: --at-once is for an ensemble (--ensemble K or --recipe " \
        "ensemble): it trains several of its models at the same time"
    assert not (tmp_path / "one").exists()
    assert main(["train", NET, "--ensemble", "2", "--at-once", "0"]) == 2
    assert "argument --at-once: must be at least 1, got 0" in capsys.readouterr().err


def test_fit_refuses_at_once_without_an_ensemble(fashion_dir, tmp_path):
    import convnet

    with pytest.raises(UserError, match="at_once is for an ensemble"):
        convnet.fit(NET, data_dir=str(fashion_dir), epochs=1, at_once=2, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_member_starts_with_the_kernels_this_process_runs(monkeypatch):
    """Where NumPy was loaded before convnet (as here, under pytest), this process's OpenBLAS may
    run other kernels than a fresh process would pick (cpu.prefer_blas_kernels): the members'
    processes are started asking for this one's, and the setting is put back after."""
    from convnet.engines.numpy import blas
    from convnet.members import _these_kernels

    monkeypatch.setattr(blas, "kernel", lambda: "SkylakeX")
    for before in (None, "Haswell"):
        if before is None:
            monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
        else:
            monkeypatch.setenv("OPENBLAS_CORETYPE", before)
        with _these_kernels():
            assert os.environ["OPENBLAS_CORETYPE"] == "SkylakeX"
        assert os.environ.get("OPENBLAS_CORETYPE") == before
    monkeypatch.setattr(blas, "kernel", lambda: None)  # another BLAS: nothing asked
    with _these_kernels():
        assert os.environ.get("OPENBLAS_CORETYPE") == "Haswell"
