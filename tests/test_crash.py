"""SIGKILL at named points and at random moments: nothing lost, and the run ends as if never
stopped (tests/crashing.py; `scripts/crash_soak.py` runs every point and many random kills)."""

from __future__ import annotations

import json

import pytest

from crashing import Setup, campaign, make_folder, named_points

# A sample of the named points that covers each kind of write once (the soak covers all).
CI_POINTS = ["file:train.json:written", "cache:decoded", "epoch:metrics@1",
             "checkpoint:weights@2", "epoch:best@3", "directory:last:swapped@1",
             "directory:best:swapped@4"]


def test_the_ci_points_are_named_points() -> None:
    assert set(CI_POINTS) <= set(named_points())


def test_the_numpy_engine_survives_kills_and_ends_bit_for_bit(tmp_path) -> None:
    folder = make_folder(tmp_path / "images")
    setup = Setup(folder, tmp_path / "work")
    report = campaign(setup, CI_POINTS, random_kills=1, seed=7)
    assert not report.failures, "\n".join(report.failures)
    rises = [json.loads(line)["val_accuracy"] for line in
             (setup.work / "reference" / "metrics.jsonl").read_text().splitlines()]
    assert rises == sorted(rises) and len(set(rises)) == len(rises), rises  # best/ rewritten
    assert report.survived == report.tried >= len(CI_POINTS) - len(report.unreached)
    assert not report.unreached, report.unreached


def test_the_torch_engine_resumes_after_a_kill_to_the_same_weights(tmp_path) -> None:
    """On the CPU PyTorch's kernels are deterministic for a given thread count, so a resumed
    torch run also ends bit for bit (on a GPU that is not promised)."""
    pytest.importorskip("torch")
    folder = make_folder(tmp_path / "images")
    report = campaign(Setup(folder, tmp_path / "work", engine="torch"),
                      ["directory:last:swapped@2"], exact=True)
    assert not report.failures and report.survived == 1, report.failures


def test_where_directories_cannot_be_exchanged_a_kill_between_renames_is_recovered(tmp_path):
    """The two-rename path (systems without renameat2's exchange): killed with last/ or best/
    renamed aside, --resume puts it back and the run ends as if never stopped."""
    folder = make_folder(tmp_path / "images")
    setup = Setup(folder, tmp_path / "work", no_exchange=True)
    report = campaign(setup, ["directory:last:moved-aside@2", "directory:best:moved-aside@1"])
    assert not report.failures, "\n".join(report.failures)
    assert report.survived == report.tried >= 1
