"""Training with torchrun: 2 CPU processes (gloo, on 127.0.0.1) equal 1 process with the same
global batch and seed; what cannot work ends on rank 0 with a clear error, and all exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from serving import free_port

NET = "conv(6,3,pad=same) relu pool(2) conv(8,3,pad=same) relu pool(2) fc(16) relu fc(10)"


def launch_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for a torchrun: torchrun's agent keeps its files in a torchelastic_*
    folder of the temporary directory that it never removes, so TMPDIR is the test's own."""
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    return {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(scratch), **extra}


def torchrun(tmp_path: Path, processes: int, *argv: str,
             timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
               "-m", "convnet", *argv]
    env = launch_env(tmp_path, GLOO_SOCKET_IFNAME="lo", CONVNET_DIST_TIMEOUT="60")
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def arguments(data_dir, out, *extra):
    return ["train", NET, "--data-dir", str(data_dir), "--epochs", "1", "--engine", "torch",
            "--val-size", "300", "--batch-size", "64", "--dtype", "float64", "--out", str(out),
            *extra]


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path, fashion_dir):
    one = torchrun(tmp_path, 1, *arguments(fashion_dir, tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = torchrun(tmp_path, 2, *arguments(fashion_dir, tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("test accuracy") == 1  # rank 0 alone reports
    a = load_file(str(tmp_path / "one" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:  # 42 SGD steps in float64: equal but for the order of the sums
        assert np.abs(a[name] - b[name]).max() <= 1e-9 * np.abs(a[name]).max(), name


def test_a_batch_that_does_not_split_evenly_is_refused_on_every_rank(tmp_path, fashion_dir):
    done = torchrun(tmp_path, 2, *arguments(fashion_dir, tmp_path / "run", "--batch-size", "63"),
                    timeout=120)
    assert done.returncode != 0
    assert "--batch-size 63 does not split evenly between 2 processes" in done.stderr
    assert not (tmp_path / "run").exists()


def test_the_numpy_engine_is_refused(tmp_path, fashion_dir):
    argv = arguments(fashion_dir, tmp_path / "run")
    argv[argv.index("torch")] = "numpy"
    done = torchrun(tmp_path, 2, *argv, timeout=120)
    assert done.returncode != 0
    assert "training on several processes needs --engine torch" in done.stderr


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:  # the parent pid
                found.append(int(entry))
    return found


def test_a_rank_that_dies_ends_every_process_in_bounded_time(tmp_path, fashion_dir):
    import signal
    import time

    env = launch_env(tmp_path, GLOO_SOCKET_IFNAME="lo", CONVNET_DIST_TIMEOUT="30")
    argv = arguments(fashion_dir, tmp_path / "run", "--epochs", "50")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "-m",
         "convnet", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "run" / "train.json").exists():  # training has begun
            assert launcher.poll() is None and time.time() < deadline
            time.sleep(0.2)
        workers = children(launcher.pid)
        assert len(workers) == 2
        os.kill(workers[1], signal.SIGKILL)
        started = time.time()
        code = launcher.wait(timeout=120)
        assert code != 0 and time.time() - started < 120
        time.sleep(1)
        assert all(not os.path.exists(f"/proc/{w}") or
                   open(f"/proc/{w}/stat").read().split()[2] == "Z" for w in workers)
    finally:
        if launcher.poll() is None:
            launcher.kill()


def test_an_endpoint_nobody_answers_at_ends_torchrun_in_bounded_time(tmp_path, fashion_dir):
    # A second machine whose --rdzv-endpoint points at nothing: torchrun's read_timeout bounds
    # each try to reach the store (its default is 60 s; the README shows how to set it).
    import time

    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
         "--rdzv-conf", "is_host=false,read_timeout=3", "-m", "convnet",
         *arguments(fashion_dir, tmp_path / "run")],
        capture_output=True, text=True, timeout=120, env=launch_env(tmp_path))
    assert done.returncode != 0 and time.time() - started < 120
    assert "RendezvousConnectionError" in done.stderr
    assert "The connection to the C10d store has failed" in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_machine_that_never_joins_ends_the_rendezvous_in_bounded_time(tmp_path, fashion_dir):
    # --nnodes 2 but only this machine starts: join_timeout (default 600 s) ends the wait.
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
         "--rdzv-conf", "join_timeout=3", "-m", "convnet",
         *arguments(fashion_dir, tmp_path / "run")],
        capture_output=True, text=True, timeout=120, env=launch_env(tmp_path))
    assert done.returncode != 0
    assert "RendezvousTimeoutError" in done.stderr
    assert not (tmp_path / "run").exists()


def convnet_alone(env: dict[str, str | None], *argv: str) -> subprocess.CompletedProcess:
    merged = {**os.environ, **env}
    for name in [name for name, value in merged.items() if value is None]:
        del merged[name]  # None: not set at all
    return subprocess.run([sys.executable, "-m", "convnet", *argv], capture_output=True,
                          text=True, timeout=120, env=merged)


def test_a_hand_set_world_without_a_master_is_one_clear_line(tmp_path, fashion_dir):
    done = convnet_alone({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": None, "MASTER_PORT": None},
                         *arguments(fashion_dir, tmp_path / "run"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        "convnet: error: cannot join the 2-process group as rank 0")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_master_nobody_answers_at_ends_in_the_set_time(tmp_path, fashion_dir):
    env = {"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "CONVNET_DIST_TIMEOUT": "2"}
    done = convnet_alone(env, *arguments(fashion_dir, tmp_path / "run"))
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("convnet: error: cannot join the 2-process group as rank 1 "
                           "(MASTER_ADDR=127.0.0.1"), last
    assert "Traceback" not in done.stderr
