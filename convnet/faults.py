"""Named points where a test can kill the process, to check that nothing is lost at any moment.

Every place that writes something a later run relies on calls `point(name)` between its steps:

    file:NAME:written        a file's temporary copy is whole, not yet renamed over NAME
    file:NAME:replaced       NAME replaced, the temporary copy gone
    directory:NAME:filled    a checkpoint's staging folder is whole, not yet swapped in
    directory:NAME:swapped   NAME swapped in, the old one not yet removed
    directory:NAME:moved-aside  (where the system cannot exchange two directories in one step,
                             or CONVNET_NO_EXCHANGE is set) the old NAME renamed aside, the new
                             one not yet in its place
    checkpoint:weights       model.safetensors written, model.json not yet
    epoch:metrics            metrics.jsonl holds the epoch, its checkpoints not yet written
    epoch:best               best/ saved for the epoch, last/ not yet
    cache:decoded            a folder cache's images decoded, its index not yet written
    cache:swapped            the new cache in place, the old one not yet removed

With CONVNET_KILL_AT=PATTERN[@N] in the environment, the N-th (default first) point whose name
matches PATTERN (fnmatch: `directory:last:*`, `epoch:*`) sends SIGKILL to this process — no
handler runs, no buffer is flushed, exactly as the kernel's OOM killer or a power button would
leave it (short of the page cache, which a kill does not lose). tests/test_crash.py and
scripts/crash_soak.py drive it; without the variable a point costs one dictionary lookup.
"""

from __future__ import annotations

import fnmatch
import os
import signal

VARIABLE = "CONVNET_KILL_AT"
_seen: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    given = os.environ.get(VARIABLE)
    if not given:
        return None
    pattern, _, count = given.partition("@")
    return pattern, int(count) if count.isdigit() and int(count) > 0 else 1


def point(name: str) -> None:
    """Kill this process here if CONVNET_KILL_AT names this point (and this is its N-th time)."""
    target = _target()
    if target is None:
        return
    pattern, count = target
    if not fnmatch.fnmatchcase(name, pattern):
        return
    _seen[pattern] = _seen.get(pattern, 0) + 1
    if _seen[pattern] == count:
        os.kill(os.getpid(), signal.SIGKILL)
