"""Writing files atomically: into a temporary sibling, then renamed over the target, so nobody
ever reads half a file. Temporary files are created private (0600); the finished file gets the
mode an ordinary open() would have given it (0666 less the umask).

A directory is swapped in with one atomic exchange where the system has one (Linux's
renameat2 with RENAME_EXCHANGE): at every moment the old or the new directory is in place, whole,
so a process killed at any point leaves one of the two. Elsewhere it takes two renames, and a
process killed between them leaves the old directory under a `.old` name, which
`recover_directory` puts back. Staging folders a killed process left (`NAME.*.part`) are never
read, and `remove_leftovers` clears them.

The folder a file goes into must exist: a mistyped path is refused, not created. Commands that
own a folder (train's run directory, the data cache) create it themselves first."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from . import faults
from .errors import UserError


def existing_folder(path: Path) -> Path:
    """The folder `path` is to be written into; refused when it does not exist."""
    folder = Path(path).parent
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no such folder"
        raise UserError(f"cannot write {path}: {folder} is {what} (create it first)")
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yields a temporary path to write; on success it replaces `path`, else it is removed."""
    path = Path(path)
    existing_folder(path)
    fd, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".part" + path.suffix,
                                     dir=path.parent)
    os.close(fd)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        faults.point(f"file:{path.name}:written")
        os.replace(temporary, path)
        faults.point(f"file:{path.name}:replaced")
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yields a temporary directory to fill; on success it takes the place of `path` (swapped in
    whole, the old one deleted after), else it is removed."""
    path = Path(path)
    existing_folder(path)
    staging = Path(tempfile.mkdtemp(prefix=path.name + ".", suffix=".part", dir=path.parent))
    try:
        yield staging
        for child in staging.iterdir():  # what this module created is private; open it up
            os.chmod(child, (0o777 if child.is_dir() else 0o666) & ~_umask())
        os.chmod(staging, 0o777 & ~_umask())
        faults.point(f"directory:{path.name}:filled")
        swap_in(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2); False where that is not possible."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("CONVNET_NO_EXCHANGE"):
        return False  # (the variable: to test the two-rename path where exchange works)
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # libc's symbols, without find_library's fork
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    return done == 0


def swap_in(staging: Path, path: Path, point: str | None = None) -> None:
    """Put the whole directory `staging` in the place of `path`, then remove the old one."""
    point = point or f"directory:{path.name}:swapped"
    if not path.exists():
        os.rename(staging, path)
        faults.point(point)
        return
    if _exchange(staging, path):  # staging now holds the old directory
        faults.point(point)
        shutil.rmtree(staging, ignore_errors=True)
        return
    old = Path(tempfile.mkdtemp(prefix=path.name + ".", suffix=".old", dir=path.parent))
    os.rmdir(old)
    os.rename(path, old)
    faults.point(point.replace(":swapped", ":moved-aside"))
    os.rename(staging, path)
    faults.point(point)
    shutil.rmtree(old, ignore_errors=True)


def recover_directory(path: Path) -> bool:
    """Put back the directory a process killed between two renames left as `NAME.*.old` (only
    where `path` itself is missing); True if one was put back."""
    path = Path(path)
    if path.exists() or not path.parent.is_dir():
        return False
    olds = sorted(path.parent.glob(f"{glob_escape(path.name)}.*.old"),
                  key=lambda p: p.stat().st_mtime)
    if not olds:
        return False
    os.rename(olds[-1], path)
    return True


def remove_leftovers(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """Remove the staging copies (`NAME.*.part…`) and old directories (`NAME.*.old`) that a
    killed process left in `folder` for each of `names`; the paths removed."""
    removed = []
    for name in names:
        for leftover in list(folder.glob(f"{glob_escape(name)}.*.part*")) + \
                list(folder.glob(f"{glob_escape(name)}.*.old")):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)
