"""Memory: training that cannot fit is refused before anything is allocated, with the
inspector's estimate; training that runs out anyway ends in one line with the estimate and the
fix — not a kill without a word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from crashing import make_folder

ROOT = Path(__file__).resolve().parents[1]
LIMITED = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from convnet.cli import main
sys.exit(main(sys.argv[2:]))
"""
BIG = ["conv(64,3,pad=same) relu conv(64,3,pad=same) relu pool(2) fc(3)", "--input",
       "96x96x3", "--batch-size", "256", "--epochs", "1", "--engine", "numpy", "--val-size",
       "15", "--test-fraction", "0.2"]


def run_limited(limit: int, argv: list[str], env_extra: dict[str, str]):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env_extra}
    return subprocess.run([sys.executable, "-c", LIMITED, str(limit), *argv], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("images") / "shapes", per_class=100)


def test_ulimit_v_is_memory_available(tmp_path, images):
    """Under `ulimit -v` the check counts the address space left: refused before any data is
    decoded, with the estimate and a batch size that fits."""
    done = run_limited(900 << 20, [*"train".split(), *BIG, "--data", str(images), "--out",
                                   str(tmp_path / "run")],
                       {"CONVNET_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 2, done.stderr[-2000:]
    line = done.stderr.strip().splitlines()
    assert len(line) == 1 and "needs about" in line[0] and "--batch-size" in line[0], line
    assert not (tmp_path / "run").exists()


def test_running_out_of_memory_anyway_is_one_line_with_the_estimate_and_the_fix(tmp_path,
                                                                               images):
    """CONVNET_MEMORY claims plenty (as a user who sets it wrong would), so the check passes and
    the allocation fails: one line, exit 2, naming the estimate and a smaller batch."""
    done = run_limited(900 << 20, ["train", *BIG, "--data", str(images), "--out",
                                   str(tmp_path / "run")],
                       {"CONVNET_CACHE": str(tmp_path / "cache"), "CONVNET_MEMORY": str(1 << 40)})
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert "out of memory while training" in lines[0] and "--batch-size 128" in lines[0]
    assert "Traceback" not in done.stderr


def test_the_check_counts_a_batch_no_larger_than_the_training_set(tmp_path, capsys,
                                                                  monkeypatch):
    """60 training images in batches of 256 are one batch of 60: memory for 60 images is
    enough, and a machine with less is refused with the batch it really has."""
    from convnet.cli import main
    from convnet.network import training_need
    from convnet.shapes import infer
    from convnet.spec import parse
    from convnet.train import default_network

    folder = make_folder(tmp_path / "shapes", per_class=25, size=32)  # 75: 60 train, 15 test
    network = parse(default_network((32, 32, 1), 3)).with_input((32, 32, 1))
    need_60, _, per_image = training_need(infer(network), "float32", 60)
    argv = ["train", "--data", str(folder), "--input", "32x32x1", "--batch-size", "256",
            "--epochs", "1", "--engine", "numpy", "--val-size", "0", "--test-fraction", "0.2",
            "--cache-dir", str(tmp_path / "cache")]
    monkeypatch.setenv("CONVNET_MEMORY", str(need_60 + per_image // 2))  # < 256 images' worth
    assert main([*argv, "--out", str(tmp_path / "fits")]) == 0
    assert "test accuracy" in capsys.readouterr().out
    monkeypatch.setenv("CONVNET_MEMORY", str(need_60 - per_image))
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "with batches of 60 needs about" in err and "--batch-size 59 or less fits" in err


@pytest.mark.parametrize("words", ["libpng16.so.16: cannot map zero-fill pages",
                                   "_image.so: failed to map segment from shared object"])
def test_a_library_that_cannot_be_mapped_for_memory_is_one_line(capsys, monkeypatch, words):
    """A library imported late (matplotlib, for the plots) that the loader cannot map into a
    process out of memory ends as running out of memory does: one line, exit 2."""
    from convnet import cli

    def no_room(args):
        raise ImportError(words)

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: SimpleNamespace(run=no_room))
    assert cli.main(["inspect", "fc(2)"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("convnet: error: out of memory")


def test_any_other_import_error_is_not_taken_for_memory(monkeypatch):
    from convnet import cli

    def broken(args):
        raise ImportError("No module named 'matplotlib'")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: SimpleNamespace(run=broken))
    with pytest.raises(ImportError, match="No module named"):
        cli.main(["inspect", "fc(2)"])


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA and /proc are Linux's")
def test_ulimit_d_is_memory_available_too():
    """Under `ulimit -d` (RLIMIT_DATA: what training processes in tests/test_folders.py run
    under) the memory available is the limit less the process's data, not the machine's."""
    code = """
import resource, sys
resource.setrlimit(resource.RLIMIT_DATA, (int(sys.argv[1]), int(sys.argv[1])))
from convnet.resources import available_memory
data = [int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmData:')][0]
print(available_memory(), data)
"""
    limit = 600 << 20
    done = subprocess.run([sys.executable, "-c", code, str(limit)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "CONVNET_MEMORY": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    have, data = map(int, done.stdout.split())
    assert 0 < have <= limit - data + (8 << 20)  # (the process grows a little after reading)
