"""Writing files atomically: into a temporary sibling, then renamed over the target, so nobody
ever reads half a file. Temporary files are created private (0600); the finished file gets the
mode an ordinary open() would have given it (0666 less the umask).

The folder a file goes into must exist: a mistyped path is refused, not created. Commands that
own a folder (train's run directory, the data cache) create it themselves first."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

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
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yields a temporary directory to fill; on success it takes the place of `path` (an old
    one is moved aside first and deleted after), else it is removed."""
    path = Path(path)
    existing_folder(path)
    staging = Path(tempfile.mkdtemp(prefix=path.name + ".", suffix=".part", dir=path.parent))
    try:
        yield staging
        for child in staging.iterdir():  # what this module created is private; open it up
            os.chmod(child, (0o777 if child.is_dir() else 0o666) & ~_umask())
        os.chmod(staging, 0o777 & ~_umask())
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=path.name + ".", suffix=".old", dir=path.parent))
            os.rmdir(old)
            os.rename(path, old)
            os.rename(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
