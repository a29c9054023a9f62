"""The decode cache: a folder's images decoded and resized once, kept as one memory-mapped uint8
array (N×H×W×C, a .npy file) beside an index of the files it came from.

    CACHE/<key>/images.npy     every file's image at the input shape (zeros where unreadable)
    CACHE/<key>/index.json     for each file: its path in the folder, size, modification time,
                               and whether it could be read (and why not)

The key is the folder's real path and the input shape; CACHE is --cache-dir, $CONVNET_CACHE or
~/.cache/convnet/folders. A later run stats the files: one whose path, size and modification
time are in the index is not decoded again, so an added, changed or removed file costs only its
own decode, and an unchanged folder opens at once. A new cache is built in a staging folder and
renamed into place only when whole, under a lock that other processes (torchrun's ranks) wait
on, so a killed run never leaves a cache that a later run trusts, and a folder is decoded once.

Decoding runs in worker processes, each writing its files' rows straight into the array: JPEGs
at reduced size (Pillow's draft mode), the rest resized as they are (convnet/data/folder.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import faults
from ..errors import UserError, first_line
from ..files import swap_in
from .folder import MAX_PIXELS, read_image

FORMAT = 1
CHUNK = 48  # files per task handed to a worker
IN_PROCESS_BELOW = 96  # fewer files to decode than this: no worker processes


@dataclass(frozen=True)
class FileKey:
    """What identifies a file's decoded image: where it is, its size and its modification time."""

    path: str  # relative to the folder
    size: int
    mtime_ns: int


@dataclass
class Decoded:
    """A folder's images at one input shape, in the order of the files asked for."""

    images: np.ndarray  # N×H×W×C uint8 (a read-only memory map when cached)
    readable: np.ndarray  # N booleans
    reasons: dict[int, str]  # why file i could not be read
    decoded: int  # how many were decoded this time (the rest came from the cache)
    seconds: float
    cache: Path | None  # where the cache is, or None
    notes: list[str] = field(default_factory=list)  # what happened, for the user

    def summary(self, root: Path) -> str:
        skipped = int((~self.readable).sum())
        reused = len(self.readable) - self.decoded
        parts = []
        if self.decoded:
            rate = self.decoded / max(self.seconds, 1e-9)
            parts.append(f"decoded {self.decoded:,} file{'s' if self.decoded != 1 else ''} in "
                         f"{self.seconds:.1f} s ({rate:,.0f} files/s)")
        if reused:
            parts.append(f"{reused:,} file{'s' if reused != 1 else ''} from the cache")
        if skipped:
            parts.append(f"{skipped:,} skipped (not readable images)")
        where = f" → {self.cache}" if self.cache is not None and self.decoded else ""
        return f"{root}: " + ", ".join(parts) + where


def cache_root(option: str | None = None) -> Path:
    """--cache-dir, else $CONVNET_CACHE, else the user cache's folders/."""
    if option:
        return Path(option)
    if os.environ.get("CONVNET_CACHE"):
        return Path(os.environ["CONVNET_CACHE"])
    from .sources import user_cache

    return user_cache() / "folders"


def key_dir(root: Path, shape: tuple[int, int, int], base: Path) -> Path:
    real = os.path.realpath(root)
    digest = hashlib.sha256(f"{real}\0{'x'.join(map(str, shape))}".encode(
        "utf-8", "surrogateescape")).hexdigest()[:20]
    return base / f"{Path(real).name[:40]}-{'x'.join(map(str, shape))}-{digest}"


def file_keys(root: Path, files: list[Path]) -> list[FileKey | None]:
    """Each file's key (None where it cannot even be stat'ed: a broken link)."""
    keys: list[FileKey | None] = []
    for path in files:
        try:
            info = path.stat()
        except OSError:
            keys.append(None)
            continue
        keys.append(FileKey(os.path.relpath(path, root), info.st_size, info.st_mtime_ns))
    return keys


# -- decoding ------------------------------------------------------------------------------------

def _decode_task(task: tuple[str, tuple[int, int, int], list[tuple[int, str]], int]
                 ) -> list[tuple[int, str | None]]:
    """In a worker: decode each (row, path) into row of the .npy at `out`."""
    out, shape, items, max_pixels = task
    images = np.lib.format.open_memmap(out, mode="r+")
    results: list[tuple[int, str | None]] = []
    for row, path in items:
        try:
            images[row] = read_image(Path(path), shape, max_pixels)
            results.append((row, None))
        except Exception as e:  # noqa: BLE001 - any unreadable file is skipped and counted
            results.append((row, first_line(e)[:200]))
    images.flush()
    del images
    return results


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def decode_into(out: Path, shape: tuple[int, int, int], items: list[tuple[int, str]],
                progress: bool, label: str, max_pixels: int = MAX_PIXELS
                ) -> dict[int, str]:
    """Decode every (row, path) into the .npy file `out` (already of the right shape), with all
    cores; returns {row: why} for the files that could not be read."""
    failed: dict[int, str] = {}
    bar = None
    if progress and items:
        from tqdm import tqdm
        bar = tqdm(total=len(items), desc=f"decoding {label}", unit="file", leave=False,
                   file=sys.stderr, dynamic_ncols=True)

    def done(results: list[tuple[int, str | None]]) -> None:
        for row, reason in results:
            if reason is not None:
                failed[row] = reason
        if bar is not None:
            bar.update(len(results))
            bar.set_postfix(skipped=len(failed), refresh=False)

    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
    workers = min(_workers(), len(chunks))
    try:
        if len(items) < IN_PROCESS_BELOW or workers < 2:
            for chunk in chunks:
                done(_decode_task((str(out), shape, chunk, max_pixels)))
        else:
            import multiprocessing

            # spawn: the workers need only Pillow and NumPy, never the parent's torch threads
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                futures = [pool.submit(_decode_task, (str(out), shape, chunk, max_pixels))
                           for chunk in chunks]
                for future in as_completed(futures):
                    done(future.result())
    finally:
        if bar is not None:
            bar.close()
    return failed


# -- the cache -----------------------------------------------------------------------------------

@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created), held while the block runs; others wait."""
    import fcntl

    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_index(directory: Path, shape: tuple[int, int, int]) -> tuple[list[dict], np.ndarray]:
    """A cache's index and images, or ([], empty) when it is missing, incomplete or damaged."""
    try:
        index = json.loads((directory / "index.json").read_text(encoding="utf-8"))
        if index.get("format") != FORMAT or list(index.get("shape", [])) != list(shape) or \
                not index.get("complete"):
            return [], np.zeros((0, *shape), np.uint8)
        images = np.load(directory / "images.npy", mmap_mode="r")
        entries = index["files"]
        if images.shape != (len(entries), *shape) or images.dtype != np.uint8:
            return [], np.zeros((0, *shape), np.uint8)
        return entries, images
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return [], np.zeros((0, *shape), np.uint8)


def _entry(key: FileKey | None, reason: str | None) -> dict:
    if key is None:
        return {"path": None, "size": -1, "mtime_ns": -1, "error": reason}
    return {"path": key.path, "size": key.size, "mtime_ns": key.mtime_ns, "error": reason}


def load(root: Path, files: list[Path], shape: tuple[int, int, int], cache: Path | None,
         progress: bool = False, max_pixels: int = MAX_PIXELS) -> Decoded:
    """The images of `files` (under the folder `root`) at `shape`: from the cache under `cache`
    where it has them, decoded (and cached) where it does not; with `cache` None, decoded into
    memory. A cache folder that cannot be written falls back to memory, with a note."""
    started = time.perf_counter()
    keys = file_keys(root, files)
    if cache is not None:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            target = key_dir(root, shape, cache)
            with _locked(target.parent / f"{target.name}.lock"):
                return _cached(root, files, keys, shape, target, progress, max_pixels, started)
        except OSError as e:
            note = (f"cannot cache decoded images in {cache} ({e.strerror or first_line(e)}); "
                    "decoding into memory")
            decoded = _in_memory(root, files, keys, shape, progress, max_pixels, started)
            decoded.notes.append(note)
            return decoded
    return _in_memory(root, files, keys, shape, progress, max_pixels, started)


def _cached(root: Path, files: list[Path], keys: list[FileKey | None],
            shape: tuple[int, int, int], target: Path, progress: bool, max_pixels: int,
            started: float) -> Decoded:
    entries, old_images = _read_index(target, shape)
    known = {(e["path"], e["size"], e["mtime_ns"]): (row, e.get("error"))
             for row, e in enumerate(entries) if e.get("path") is not None}
    found = [known.get((k.path, k.size, k.mtime_ns)) if k is not None else None for k in keys]
    same = len(entries) == len(keys) and all(
        f is not None and f[0] == i for i, f in enumerate(found))
    if same:  # the folder is as cached: open it
        readable = np.array([e.get("error") is None for e in entries], bool)
        reasons = {i: e["error"] for i, e in enumerate(entries) if e.get("error") is not None}
        return Decoded(old_images, readable, reasons, 0, time.perf_counter() - started, target)

    for stale in [*target.parent.glob(f"{target.name}.part-*"),  # a killed run's: never
                  *target.parent.glob(f"{target.name}.*.old")]:  # trusted, and removed
        shutil.rmtree(stale, ignore_errors=True)
    staging = target.parent / f"{target.name}.part-{os.getpid()}"
    staging.mkdir()
    try:
        images = np.lib.format.open_memmap(staging / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=(len(files), *shape))
        reserve(staging / "images.npy")
        reasons: dict[int, str] = {}
        to_decode: list[tuple[int, str]] = []
        for i, (key, hit) in enumerate(zip(keys, found)):
            if key is None:
                reasons[i] = "cannot be read (a broken link?)"
            elif hit is not None:
                images[i] = old_images[hit[0]]  # reused, not decoded again
                if hit[1] is not None:
                    reasons[i] = hit[1]
            else:
                to_decode.append((i, str(files[i])))
        images.flush()
        del images
        reasons.update(decode_into(staging / "images.npy", shape, to_decode, progress,
                                   root.name or str(root), max_pixels))
        index = {"format": FORMAT, "shape": list(shape), "root": os.path.realpath(root),
                 "files": [_entry(k, reasons.get(i)) for i, k in enumerate(keys)],
                 "complete": True}
        faults.point("cache:decoded")
        (staging / "index.json").write_text(json.dumps(index), encoding="utf-8")
        swap_in(staging, target, "cache:swapped")  # whole, or the old cache whole
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    images = np.load(target / "images.npy", mmap_mode="r")
    readable = np.array([i not in reasons for i in range(len(files))], bool)
    return Decoded(images, readable, reasons, len(to_decode), time.perf_counter() - started,
                   target)


def reserve(path: Path) -> None:
    """Claim the disk blocks of a memory-mapped file now: the file is sparse, and a page written
    to it on a full disk kills the process with SIGBUS (no exception, no message); reserved, a
    full disk is an OSError here, and the images are decoded into memory instead."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _in_memory(root: Path, files: list[Path], keys: list[FileKey | None],
               shape: tuple[int, int, int], progress: bool, max_pixels: int,
               started: float) -> Decoded:
    """Decoded through a temporary file the workers can write into, then read into memory."""
    reasons = {i: "cannot be read (a broken link?)" for i, k in enumerate(keys) if k is None}
    items = [(i, str(path)) for i, path in enumerate(files) if keys[i] is not None]
    fd, scratch = tempfile.mkstemp(prefix="convnet-decode-", suffix=".npy")
    os.close(fd)
    try:
        np.lib.format.open_memmap(scratch, mode="w+", dtype=np.uint8,
                                  shape=(len(files), *shape)).flush()
        reserve(Path(scratch))  # a full temporary folder: an error, not SIGBUS
        reasons.update(decode_into(Path(scratch), shape, items, progress,
                                   root.name or str(root), max_pixels))
        images = np.array(np.load(scratch, mmap_mode="r"))
    except OSError as e:
        raise UserError(f"cannot decode {root}: {e.strerror or first_line(e)} "
                        f"({tempfile.gettempdir()})") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(scratch)
    readable = np.array([i not in reasons for i in range(len(files))], bool)
    return Decoded(images, readable, reasons, len(items), time.perf_counter() - started, None)
