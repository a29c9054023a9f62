"""A disk that fills up and a disk that is read-only, for real: a small tmpfs mounted by the test
(root only; skipped with the reason elsewhere). Every command ends in one line and exit status 2,
and what was there before is intact."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from crashing import make_folder



def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    if not shutil.which("mount"):
        return "no mount command"
    return None


pytestmark = pytest.mark.skipif(_can_mount() is not None, reason=_can_mount() or "")


@contextlib.contextmanager
def small_disk(path: Path, size_kb: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def fill(path: Path) -> None:
    """Take every free byte of the file system that holds `path`."""
    with open(path / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    with contextlib.suppress(OSError):
        with open(path / "filler-small", "wb") as f:
            while True:
                f.write(b"\0")
                f.flush()


def convnet(*argv: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    """The command in this process (as a user runs it: exit status, stdout, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from convnet.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.get("CONVNET_CACHE")
    if cache is not None:
        os.environ["CONVNET_CACHE"] = str(cache)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv))
    finally:
        if saved is None:
            os.environ.pop("CONVNET_CACHE", None)
        else:
            os.environ["CONVNET_CACHE"] = saved
    return subprocess.CompletedProcess(list(argv), code, out.getvalue(), err.getvalue())


def one_line_exit_2(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-1500:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convnet: error:"), done.stderr[-1500:]
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file()}


TRAIN = ("train", "conv(4,3,pad=same) relu pool(2) fc(3)", "--input", "8x8x1", "--engine",
         "numpy", "--batch-size", "16", "--val-size", "15", "--test-fraction", "0.2")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("images") / "shapes")


def test_a_disk_that_fills_during_training_stops_with_one_line_and_keeps_the_last_epoch(
        tmp_path, images):
    with small_disk(tmp_path / "disk", 2048) as disk:
        run = disk / "run"
        first = convnet(*TRAIN, "--data", str(images), "--epochs", "1", "--out", str(run),
                        cache=tmp_path / "cache")
        assert first.returncode == 0, first.stderr
        before = snapshot(run)
        fill(disk)
        done = convnet("train", "--resume", str(run), "--epochs", "3", cache=tmp_path / "cache")
        one_line_exit_2(done, "No space left on device")
        assert snapshot(run) == before  # the first epoch's checkpoints, untouched
        assert not [p for p in run.iterdir() if ".part" in p.name or p.name.endswith(".old")]
        (disk / "filler").unlink()
        again = convnet("train", "--resume", str(run), "--epochs", "3", cache=tmp_path / "cache")
        assert again.returncode == 0, again.stderr  # room again: it goes on from epoch 1
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [1, 2, 3]


def test_a_new_run_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, images):
    with small_disk(tmp_path / "disk", 512) as disk:
        fill(disk)
        done = convnet(*TRAIN, "--data", str(images), "--epochs", "1", "--out",
                       str(disk / "run"), cache=tmp_path / "cache")
        one_line_exit_2(done, "No space left on device")
        assert sorted(p.name for p in disk.iterdir()) in (["filler", "filler-small"],
                                                          ["filler", "filler-small", "run"])
        if (disk / "run").exists():  # at most the empty folder the run had claimed
            assert [p.name for p in (disk / "run").iterdir()] == []


def test_the_decode_cache_on_a_full_disk_falls_back_to_memory(tmp_path, images):
    with small_disk(tmp_path / "disk", 256) as disk:
        fill(disk)
        done = convnet(*TRAIN, "--data", str(images), "--epochs", "1", "--out",
                       str(tmp_path / "run"), cache=disk / "cache")
        assert done.returncode == 0, done.stderr[-1500:]
        assert "No space left on device" in done.stdout + done.stderr
        assert not list((disk / "cache").glob("*.part-*")) if (disk / "cache").exists() else True


def test_figures_exports_and_ensembles_on_a_full_disk(tmp_path, images):
    run = tmp_path / "run"
    assert convnet(*TRAIN, "--data", str(images), "--epochs", "1", "--out", str(run),
                   cache=tmp_path / "cache").returncode == 0
    with small_disk(tmp_path / "disk", 256) as disk:
        fill(disk)
        for argv in (("eval", str(run), "--confusion", str(disk / "confusion.png")),
                     ("show", str(run), "test:0", "--out", str(disk / "maps.png")),
                     ("ensemble", str(run), str(run), "--out", str(disk / "both")),
                     ("export", str(run), "--onnx", str(disk / "model.onnx"))):
            done = convnet(*argv, cache=tmp_path / "cache")
            one_line_exit_2(done, "No space left on device")
            assert sorted(p.name for p in disk.iterdir()) == ["filler", "filler-small"], argv


def test_a_read_only_disk(tmp_path, images):
    with small_disk(tmp_path / "disk", 2048) as disk:
        run = disk / "run"
        assert convnet(*TRAIN, "--data", str(images), "--epochs", "1", "--out", str(run),
                       cache=tmp_path / "cache").returncode == 0
        before = snapshot(run)
        read_only(disk)
        for argv in (("train", "--resume", str(run), "--epochs", "2"),
                     (*TRAIN, "--data", str(images), "--epochs", "1", "--out", str(disk / "new")),
                     ("eval", str(run), "--confusion", str(disk / "confusion.png")),
                     ("show", str(run), "test:0", "--out", str(disk / "maps.png"))):
            done = convnet(*argv, cache=tmp_path / "cache")
            one_line_exit_2(done, "Read-only file system")
        assert snapshot(run) == before
        # and what only reads works: eval (its figures beside the model skipped, with a note)
        done = convnet("eval", str(run), cache=tmp_path / "cache")
        assert done.returncode == 0, done.stderr
        assert "figures were not written (Read-only file system" in done.stderr
        assert "accuracy" in done.stdout
        assert snapshot(run) == before


def test_a_cache_larger_than_the_free_space_is_decoded_into_memory_not_a_bus_error(tmp_path,
                                                                                   images):
    """The cache's images file is memory-mapped; on a disk with room for its header but not its
    pages, writing them once killed the process with SIGBUS (exit 135, no message). Its blocks
    are now reserved first, so the full disk is an error convnet catches."""
    with small_disk(tmp_path / "disk", 256) as disk:
        done = convnet(*[a if a != "8x8x1" else "64x64x1" for a in TRAIN], "--data", str(images),
                       "--epochs", "1", "--out", str(tmp_path / "run"), cache=disk / "cache")
        assert done.returncode == 0, (done.returncode, done.stderr[-1500:])
        assert "cannot cache decoded images" in done.stdout + done.stderr
        assert not list((disk / "cache").glob("*.part-*"))
