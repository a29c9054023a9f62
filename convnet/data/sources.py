"""Where data sets come from: local folders first, then the authors' addresses.

Search order for a named data set (the first place that has all its files wins):
  1. --data-dir (the `data_dir` argument), and its subfolder named after the data set
  2. $CONVNET_DATA, likewise
  3. the user cache: $XDG_CACHE_HOME/convnet or ~/.cache/convnet
  4. where Debian's package installs it (fashion-mnist: `apt-get install dataset-fashion-mnist`)
Then a download from the data set's addresses, tried in order for each file (MNIST: torchvision's
mirrors, PyTorch's copy first; Fashion-MNIST and CIFAR-10: their authors'), or from
$CONVNET_DATA_URL alone when it is set, into the first writable of --data-dir and the user cache,
checked against the authors' MD5 checksums, written to a temporary file and renamed only when it
checks out.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..files import atomic_file
from . import cifar, folder, idx
from .dataset import Dataset, Split, stratified_split


@dataclass(frozen=True)
class Source:
    title: str
    mirrors: tuple[str, ...]  # base addresses, tried in order for each file
    files: dict[str, str]  # role → file name
    md5: dict[str, str]  # file name → the authors' MD5
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # H×W×C of its images, known before they are read
    debian_package: str | None = None
    extracted: str | None = None  # the folder its archive unpacks to, accepted in its place
    # why a mirrored image is no longer of its class, where it is not (training warns about
    # mirroring then: --augment flip, --tta)
    mirrored: str | None = None


MNIST_FILES = {"train_images": "train-images-idx3-ubyte.gz",
               "train_labels": "train-labels-idx1-ubyte.gz",
               "test_images": "t10k-images-idx3-ubyte.gz",
               "test_labels": "t10k-labels-idx1-ubyte.gz"}

DATASETS: dict[str, Source] = {
    "fashion-mnist": Source(
        "Fashion-MNIST", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        MNIST_FILES,
        {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
         "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
         "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"),
        (28, 28, 1), debian_package="dataset-fashion-mnist",
    ),
    "mnist": Source(
        # torchvision's MNIST mirrors, in its order (pytorch/vision#8865): PyTorch's own copy
        # first, then the authors' address, which has answered 403/404 since 2024
        "MNIST", ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "http://yann.lecun.com/exdb/mnist/"), MNIST_FILES,
        {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
         "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
         "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        tuple(str(d) for d in range(10)), (28, 28, 1),
        mirrored="a mirrored 2, 3, 4, 5, 6, 7 or 9 is no longer that digit",
    ),
    "cifar10": Source(
        "CIFAR-10", ("https://www.cs.toronto.edu/~kriz/",),
        {"archive": "cifar-10-python.tar.gz"},
        {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"), (32, 32, 3), extracted=cifar.FOLDER,
    ),
}
ALIASES = {"fashion": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist",
           "cifar-10": "cifar10", "cifar": "cifar10"}


def user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "convnet"


def debian_dirs(package: str | None) -> list[Path]:
    """Folders where a Debian package put its files (dpkg -L), or its usual place."""
    if package is None:
        return []
    found = [Path("/usr/share/datasets") / package.removeprefix("dataset-")]
    if shutil.which("dpkg"):
        try:
            listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True,
                                     timeout=10).stdout.split()
            found += sorted({Path(p).parent for p in listing if p.endswith(".gz")
                             and "/datasets/" in p})
        except (OSError, subprocess.SubprocessError):
            pass
    return list(dict.fromkeys(found))


def candidate_dirs(name: str, data_dir: str | None) -> list[Path]:
    dirs: list[Path] = []
    for base in (data_dir, os.environ.get("CONVNET_DATA"), str(user_cache())):
        if base:
            dirs += [Path(base) / name, Path(base)]
    return dirs + debian_dirs(DATASETS[name].debian_package)


def _find_file(directory: Path, file: str) -> Path | None:
    for candidate in (directory / file, directory / file.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def locate(name: str, data_dir: str | None) -> dict[str, Path] | None:
    """The files of a named data set, from the first folder that has all of them (or, for an
    archive, the folder it unpacks to)."""
    source = DATASETS[name]
    for directory in candidate_dirs(name, data_dir):
        paths = {role: _find_file(directory, file) for role, file in source.files.items()}
        if all(paths.values()):
            return paths  # type: ignore[return-value]
        if source.extracted and (directory / source.extracted).is_dir():
            return {role: directory / source.extracted for role in source.files}
    return None


def download(url: str, md5: str, destination: Path, timeout: float = 60) -> Path:
    """Fetch url into destination, atomically: a temporary file, checked, then renamed."""
    digest = hashlib.md5()
    try:
        with atomic_file(destination) as temporary:
            with open(temporary, "wb") as out, \
                    urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != md5:
                raise UserError(f"the download of {url} is corrupt: its MD5 is "
                                f"{digest.hexdigest()}, the authors' is {md5}; the file was "
                                "deleted, try again")
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise UserError(f"could not download {url}: {getattr(e, 'reason', e)}") from None
    return destination


def fetch(name: str, data_dir: str | None) -> dict[str, Path]:
    source = DATASETS[name]
    mirrors = (os.environ["CONVNET_DATA_URL"],) if os.environ.get("CONVNET_DATA_URL") else \
        source.mirrors
    targets = [Path(data_dir) / name] if data_dir else []
    targets.append(user_cache() / name)
    made: list[Path] = []  # folders created for the download, removed again if it fails
    target = next((t for t in targets if _writable(t, made)), None)
    looked = ", ".join(str(d) for d in dict.fromkeys(candidate_dirs(name, data_dir)))
    how = (f"`apt-get install {source.debian_package}`, or " if source.debian_package else "")
    if target is None:
        _remove_if_empty(made)
        raise UserError(f"{source.title} is not in {looked}, and there is nowhere writable to "
                        f"download it to; get it with {how}put its files in --data-dir")
    paths = {}
    for role, file in source.files.items():
        existing = _find_file(target, file)
        if existing:
            paths[role] = existing
            continue
        failures = []
        for mirror in mirrors:  # the first that gives the file, checked, wins
            try:
                paths[role] = download(mirror.rstrip("/") + "/" + file, source.md5[file],
                                       target / file)
                break
            except UserError as e:
                failures.append(str(e))
        else:
            _remove_if_empty(made)
            raise UserError(f"{source.title} is not in {looked}, and {'; '.join(failures)}. "
                            f"Get it with {how}the files {', '.join(source.files.values())} in "
                            "--data-dir") from None
    return paths


def _writable(directory: Path, made: list[Path]) -> bool:
    """Whether files can be written into `directory`, creating it (and noting in `made` each
    folder that had to be created, deepest last)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        _remove_if_empty(list(reversed(missing)))
        return False
    made += reversed(missing)
    return os.access(directory, os.W_OK)


def _remove_if_empty(made: list[Path]) -> None:
    """After a failed download: the folders created for it, deepest first, if nothing else
    has come into them."""
    for directory in reversed(made):
        try:
            directory.rmdir()  # only an empty folder goes
        except OSError:
            return


def load_named(name: str, data_dir: str | None = None, download_ok: bool = True) -> Dataset:
    source = DATASETS[name]
    paths = locate(name, data_dir)
    if paths is None:
        if not download_ok:
            looked = ", ".join(str(d) for d in candidate_dirs(name, data_dir))
            raise UserError(f"{source.title} is not in {looked}")
        paths = fetch(name, data_dir)
    if name == "cifar10":
        (x, y), (xt, yt), classes = cifar.read_cifar10(paths["archive"])
        return Dataset(name, Split(x, y), Split(xt, yt), classes).check()
    x, y = idx.read_images_and_labels(paths["train_images"], paths["train_labels"])
    xt, yt = idx.read_images_and_labels(paths["test_images"], paths["test_labels"])
    return Dataset(name, Split(x, y), Split(xt, yt), source.classes).check()


@dataclass(frozen=True)
class FolderOptions:
    """How a folder of images is read: its decode cache (--cache-dir, --no-cache) and whether a
    progress bar shows (None: when stderr is a terminal)."""

    cache_dir: str | None = None
    cache: bool = True
    progress: bool | None = None


def _shown_path(path: Path) -> str:
    """A file name as a terminal can print it, even when it is not UTF-8."""
    return os.fsencode(path).decode("utf-8", "replace")


def load_folder(root: Path, shape: tuple[int, int, int] | None, test_fraction: float = 0.2,
                seed: int = 0, options: FolderOptions = FolderOptions()) -> Dataset:
    """A folder of class folders (optionally train/ and test/), each file decoded once and
    resized to `shape` (inferred from the images when None; see sizing.py)."""
    import sys

    from . import cache
    from .dataset import Rows
    from .sizing import infer_input

    listing = folder.scan(root)
    files = [path for path, _ in listing.train + listing.test]
    labels = np.array([label for _, label in listing.train + listing.test], np.int64)
    in_test = np.array([False] * len(listing.train) + [True] * len(listing.test))
    notes: list[str] = []
    if shape is None:
        inferred = infer_input(files)
        shape = inferred.shape
        notes.append(f"input {'x'.join(map(str, shape))}: {inferred.reason}")
    progress = sys.stderr.isatty() if options.progress is None else options.progress
    decoded = cache.load(root, files, shape, cache.cache_root(options.cache_dir)
                         if options.cache else None, progress)
    notes += decoded.notes
    notes.append(decoded.summary(root))
    readable = decoded.readable
    if not readable.any():
        raise UserError(f"{root}: no readable images ({len(files):,} "
                        f"file{'' if len(files) == 1 else 's'} skipped, e.g. "
                        f"{_shown_path(files[0]) if files else 'none'})")
    if (~readable).any():
        first = int(np.flatnonzero(~readable)[0])
        notes.append(f"skipped {int((~readable).sum()):,} file(s) that are not readable images, "
                     f"e.g. {_shown_path(files[first])} ({decoded.reasons.get(first, '?')})")

    # a class none of whose training files can be read cannot be learned: it is left out
    counts = np.bincount(labels[readable & ~in_test], minlength=len(listing.classes))
    kept = [c for c in range(len(listing.classes)) if counts[c] > 0]
    for c in range(len(listing.classes)):
        if counts[c] == 0:
            notes.append(f"class {listing.classes[c]!r} left out: no readable images in "
                         f"{_shown_path(root / ('train' if listing.split else '') / listing.classes[c])}")
    if len(kept) < 2:
        raise UserError(f"{root}: needs readable images of at least two classes, found "
                        f"{len(kept)} ({int((~readable).sum()):,} files skipped)")
    renumber = np.full(len(listing.classes), -1, np.int64)
    renumber[kept] = np.arange(len(kept))
    labels = renumber[labels]
    usable = readable & (labels >= 0)
    images = decoded.images

    def split_of(rows: np.ndarray) -> Split:
        """Rows of the cache's memory map (read when indexed), or of the in-memory array."""
        if isinstance(images, np.memmap):
            return Split(Rows(images, rows), labels[rows])
        return Split(images[rows], labels[rows])

    classes = tuple(listing.classes[c] for c in kept)
    if listing.split:
        train_rows = np.flatnonzero(usable & ~in_test)
        test_rows = np.flatnonzero(usable & in_test)
        if len(test_rows) == 0:
            raise UserError(f"{root}: no readable images in test/")
        data = Dataset(root.name, split_of(train_rows), split_of(test_rows), classes,
                       tuple(notes))
    else:
        rows = np.flatnonzero(usable)
        kept_rows, held = stratified_split(labels[rows], test_fraction, seed)
        data = Dataset(root.name, split_of(rows[kept_rows]), split_of(rows[held]), classes,
                       tuple(notes))
    return data.check()


def source_of(name: str) -> Source | None:
    """The named data set `name` stands for (any spelling load_dataset takes), or None: a
    folder."""
    return DATASETS.get(ALIASES.get(name.lower(), name.lower()))


def known_shape(name_or_folder: str) -> tuple[int, int, int] | None:
    """The image shape of a named data set (before reading it), or None for a folder."""
    source = source_of(name_or_folder)
    return None if source is None else source.shape


def load_dataset(name_or_folder: str, data_dir: str | None = None,
                 shape: tuple[int, int, int] | None = None, test_fraction: float = 0.2,
                 seed: int = 0, download_ok: bool = True,
                 options: FolderOptions = FolderOptions()) -> Dataset:
    """A named data set (fashion-mnist, mnist, cifar10) or a folder of class folders (its input
    shape inferred from its images when `shape` is None)."""
    key = ALIASES.get(name_or_folder.lower(), name_or_folder.lower())
    if key in DATASETS:
        return load_named(key, data_dir, download_ok)
    root = Path(name_or_folder)
    if not root.exists():
        known = ", ".join(DATASETS)
        raise UserError(f"no data set {name_or_folder!r}: give one of {known}, or a folder with "
                        "one subfolder of images per class")
    return load_folder(root, shape, test_fraction, seed, options)
