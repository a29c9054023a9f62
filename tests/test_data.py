"""Data loaders on fixture files in the real formats, the downloader against a local server."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import pickle
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.data import load_dataset, sources
from convnet.data.cifar import read_cifar10
from convnet.data.idx import read_idx
from convnet.errors import UserError
from formats import cifar_batch, write_cifar, write_idx, write_image_folder, write_mnist_like


def small_mnist(seed=0, n_train=30, n_test=10):
    rng = np.random.default_rng(seed)
    return ((rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train)),
            (rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test)))


# -- IDX ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    train, test = small_mnist()
    write_mnist_like(tmp_path / "mnist", train, test, gz=gz)
    data = load_dataset("mnist", data_dir=str(tmp_path), download_ok=False)
    assert data.train.images.shape == (30, 28, 28, 1) and data.train.images.dtype == np.uint8
    assert np.array_equal(data.train.images[..., 0], train[0])
    assert np.array_equal(data.test.labels, test[1]) and data.classes[3] == "3"


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:100], "truncated"),
    (lambda b: b"\x01\x02" + b[2:], "not an IDX file"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "is not unsigned bytes"),
    (lambda b: b[:3] + b"\x02" + b[4:], "has 2 dimensions, expected 3"),
    (lambda b: b + b"\x00\x00", "more data than its header says"),
    (lambda b: b[:6], "truncated IDX header"),
])
def test_damaged_idx_files_are_refused(tmp_path, mutate, message):
    path = write_idx(tmp_path / "x.idx", np.zeros((3, 28, 28), np.uint8), gz=False)
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(UserError, match=message):
        read_idx(path, 3)


def test_a_header_that_claims_huge_sizes_allocates_nothing(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((2, 28, 28), np.uint8),
                     claim=(4_000_000_000, 28, 28))
    with pytest.raises(UserError, match="more than any real data set"):
        read_idx(path, 3)
    path = write_idx(tmp_path / "y.gz", np.zeros((2, 28, 28), np.uint8), claim=(60_000, 28, 28))
    with pytest.raises(UserError, match="truncated: the header promises 47,040,000 bytes"):
        read_idx(path, 3)


def test_corrupt_gzip_is_refused(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((3, 28, 28), np.uint8))
    data = bytearray(path.read_bytes())
    data[30:40] = b"\xff" * 10
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="cannot read|truncated|not an IDX"):
        read_idx(path, 3)


@settings(max_examples=60, deadline=None)
@given(images=st.integers(0, 4), members=st.integers(1, 3), zeros=st.integers(0, 3),
       cut=st.integers(0, 30), extra=st.integers(0, 2))
def test_a_gzipped_idx_file_reads_as_the_gzip_module_reads_it(tmp_path_factory, images, members,
                                                               zeros, cut, extra):
    """read_idx decompresses a gzip file in one call per member (not gzip.open's 8 KiB reads):
    whatever the gzip module makes of a file — several members, zero padding, a file cut short,
    more data than the header promises — it reads the same array or refuses it in one line."""
    import gzip

    body = np.arange(images * 28 * 28 + extra, dtype=np.uint32).astype(np.uint8).tobytes()
    content = b"\x00\x00\x08\x03" + struct.pack(">III", images, 28, 28) + body
    bounds = np.linspace(0, len(content), members + 1).astype(int)
    packed = b"".join(gzip.compress(content[a:b]) for a, b in zip(bounds, bounds[1:]))
    packed = (packed + b"\x00" * zeros)[:len(packed) + zeros - cut]
    path = tmp_path_factory.mktemp("gz") / "x.gz"
    path.write_bytes(packed)
    try:
        with gzip.open(path, "rb") as f:
            whole = f.read()
        expected = whole[16:] if whole[:16] == content[:16] else None  # a whole header first
    except (OSError, EOFError):
        expected = None
    if expected is not None and len(expected) == images * 28 * 28:
        assert np.array_equal(read_idx(path, 3), np.frombuffer(expected, np.uint8).reshape(
            images, 28, 28))
    else:  # cut short, or more data than promised: one line, not a traceback
        with pytest.raises(UserError, match="cannot read|truncated|more data|not an IDX"):
            read_idx(path, 3)


def test_images_and_labels_must_match(tmp_path):
    train, test = small_mnist()
    write_mnist_like(tmp_path, train, test)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", train[1][:20])
    with pytest.raises(UserError, match="holds 30 images but .* holds 20 labels"):
        load_dataset("mnist", data_dir=str(tmp_path), download_ok=False)


def test_labels_outside_the_classes_are_refused(tmp_path):
    train, test = small_mnist()
    write_mnist_like(tmp_path, (train[0], np.full(30, 12)), test)
    with pytest.raises(UserError, match="labels go outside the 10 classes"):
        load_dataset("mnist", data_dir=str(tmp_path), download_ok=False)


def test_real_fashion_mnist_from_the_debian_package():
    data = load_dataset("fashion-mnist", download_ok=False)
    assert data.train.images.shape == (60000, 28, 28, 1)
    assert data.test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(data.test.labels).tolist() == [1000] * 10
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"


# -- CIFAR-10 ----------------------------------------------------------------------------------

def test_cifar10_from_tar_and_folder(tmp_path):
    archive = write_cifar(tmp_path / "cifar10" / "cifar-10-python.tar.gz", per_batch=6)
    data = load_dataset("cifar10", data_dir=str(tmp_path), download_ok=False)
    assert data.train.images.shape == (30, 32, 32, 3) and data.test.images.shape == (6, 32, 32, 3)
    assert data.classes[0] == "airplane" and data.classes[9] == "truck"
    import tarfile
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    (train, labels), _, _ = read_cifar10(tmp_path / "extracted")
    assert np.array_equal(train, data.train.images) and np.array_equal(labels, data.train.labels)


def test_cifar10_pixel_layout_is_planes_of_rows():
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 1, 2] = (10, 20, 30)  # row 1, column 2: red 10, green 20, blue 30
    from convnet.data.cifar import _batch, unpickle
    images, _ = _batch(unpickle(cifar_batch(image, np.array([3]), "b"), "b"), "b")
    assert images[0, 1, 2].tolist() == [10, 20, 30]
    raw = pickle.loads(cifar_batch(image, np.array([3]), "b"))[b"data"][0]
    assert raw[32 + 2] == 10 and raw[1024 + 32 + 2] == 20 and raw[2048 + 32 + 2] == 30


class Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("replacement, message", [
    (pickle.dumps({b"data": Evil()}, protocol=2), "refusing to load"),
    (b"not a pickle at all", "not a CIFAR-10 batch"),
    (pickle.dumps([1, 2, 3], protocol=2), "no dictionary inside"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2),
     "is not an N×3072 uint8 array"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 11]}, protocol=2),
     "is not a list of 2 classes"),
])
def test_bad_cifar_batches_are_refused(tmp_path, replacement, message):
    write_cifar(tmp_path / "cifar10" / "cifar-10-python.tar.gz", per_batch=4,
                replace={"data_batch_3": replacement})
    with pytest.raises(UserError, match=message):
        load_dataset("cifar10", data_dir=str(tmp_path), download_ok=False)


def test_truncated_cifar_archive_is_refused(tmp_path):
    path = write_cifar(tmp_path / "cifar10" / "cifar-10-python.tar.gz", per_batch=40)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(UserError, match="cannot read CIFAR-10|missing"):
        load_dataset("cifar10", data_dir=str(tmp_path), download_ok=False)


# -- folders of images -------------------------------------------------------------------------

def test_folder_with_a_stratified_split(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=10)
    (root / "across" / "notes.txt").write_text("not an image")
    (root / "down" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    data = load_dataset(str(root), shape=(16, 16, 3), test_fraction=0.2, seed=1)
    assert data.classes == ("across", "down")
    assert data.train.images.shape == (16, 16, 16, 3) and len(data.test) == 4
    assert np.bincount(data.test.labels).tolist() == [2, 2]
    again = load_dataset(str(root), shape=(16, 16, 3), test_fraction=0.2, seed=1)
    assert np.array_equal(again.test.images, data.test.images)  # seeded


def test_folder_with_train_and_test(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=4, split=True,
                              classes=("a", "b", "c"))
    data = load_dataset(str(root), shape=(12, 12, 1))
    assert (len(data.train), len(data.test), data.shape) == (12, 12, (12, 12, 1))


@pytest.mark.parametrize("make, message", [
    (lambda r: r.mkdir(), "needs one subfolder per class, at least two; found none"),
    (lambda r: (r / "only").mkdir(parents=True), "found only 'only'"),
    (lambda r: [(r / c).mkdir(parents=True) for c in "ab"] and (r / "a" / "x.txt").write_text("x"),
     "no readable images \\(1 file skipped, e.g. "),
])
def test_unusable_folders_are_refused(tmp_path, make, message):
    root = tmp_path / "photos"
    make(root)
    with pytest.raises(UserError, match=message):
        load_dataset(str(root), shape=(8, 8, 1))


def test_unknown_data_set_name():
    with pytest.raises(UserError, match="no data set 'imagenet'"):
        load_dataset("imagenet")


# -- finding and downloading -------------------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_download_checks_the_checksum_and_writes_atomically(tmp_path, server):
    served, url = server
    (served / "good.bin").write_bytes(b"x" * 5000)
    good_md5 = hashlib.md5(b"x" * 5000).hexdigest()
    target = tmp_path / "cache" / "good.bin"
    target.parent.mkdir()
    assert sources.download(url + "good.bin", good_md5, target).read_bytes() == b"x" * 5000
    with pytest.raises(UserError, match="is corrupt: its MD5 is .* the file was deleted"):
        sources.download(url + "good.bin", "0" * 32, tmp_path / "cache" / "bad.bin")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["good.bin"]
    with pytest.raises(UserError, match="could not download .*missing.bin"):
        sources.download(url + "missing.bin", good_md5, tmp_path / "cache" / "missing.bin")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["good.bin"]


def test_a_missing_data_set_is_downloaded_and_verified(tmp_path, server, monkeypatch):
    served, url = server
    train, test = small_mnist()
    write_mnist_like(served, train, test)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in served.iterdir()}
    real = sources.DATASETS["mnist"]
    monkeypatch.setitem(sources.DATASETS, "mnist", dataclasses.replace(real, mirrors=(url,),
                                                                        md5=md5))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CONVNET_DATA", raising=False)
    data = load_dataset("mnist")
    assert np.array_equal(data.train.labels, train[1])
    assert sorted(p.name for p in (tmp_path / "xdg" / "convnet" / "mnist").iterdir()) == \
        sorted(md5)
    # A corrupted file on the server: refused, deleted, and the message says how to get it.
    (tmp_path / "xdg" / "convnet" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(b"corrupted")
    with pytest.raises(UserError, match="corrupt.*the files train-images-idx3-ubyte.gz"):
        load_dataset("mnist")
    assert not (tmp_path / "xdg" / "convnet" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_mirror_address_from_the_environment(tmp_path, server, monkeypatch):
    served, url = server
    write_cifar(served / "cifar-10-python.tar.gz", per_batch=3)
    md5 = hashlib.md5((served / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    real = sources.DATASETS["cifar10"]
    monkeypatch.setitem(sources.DATASETS, "cifar10", dataclasses.replace(
        real, mirrors=("http://127.0.0.1:9/unreachable/",), md5={"cifar-10-python.tar.gz": md5}))
    monkeypatch.setenv("CONVNET_DATA_URL", url)
    data = load_dataset("cifar10", data_dir=str(tmp_path / "data"))
    assert len(data.train) == 15 and (tmp_path / "data" / "cifar10").is_dir()


def test_unreachable_data_says_how_to_get_it_and_leaves_no_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CONVNET_DATA_URL", "http://127.0.0.1:9/")
    with pytest.raises(UserError, match="MNIST is not in .* could not download"):
        load_dataset("mnist", data_dir=str(tmp_path / "empty" / "data"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the folders made for it are gone
    (tmp_path / "mine").mkdir()  # a folder the user had stays, and so does what is in it
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="could not download"):
        load_dataset("mnist", data_dir=str(tmp_path / "mine"))
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_an_extracted_cifar_folder_is_found(tmp_path):
    import tarfile

    archive = tmp_path / "archive.tar.gz"
    write_cifar(archive, per_batch=3)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "data" / "cifar10", filter="data")
    assert (tmp_path / "data" / "cifar10" / "cifar-10-batches-py").is_dir()
    data = load_dataset("cifar10", data_dir=str(tmp_path / "data"), download_ok=False)
    assert len(data.train) == 15 and len(data.test) == 3


@pytest.mark.parametrize("names, message", [
    ([b"\xff\xfe" + bytes([i]) for i in range(10)], "label names are not UTF-8 text"),
    ([b"cat"] * 10, "must be 10 different, non-empty names"),
    ([""] + [chr(65 + i) for i in range(9)], "must be 10 different, non-empty names"),
])
def test_cifar_label_names_that_are_not_names_are_refused(tmp_path, names, message):
    meta = pickle.dumps({b"label_names": names}, protocol=2)
    path = write_cifar(tmp_path / "c.tar.gz", per_batch=3, replace={"batches.meta": meta})
    with pytest.raises(UserError, match=message):
        read_cifar10(path)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                    reason="measuring a peak needs Linux's /proc/self/clear_refs")
def test_a_decode_costs_at_most_its_stated_bytes_per_pixel(tmp_path):
    """The constant the server's pixel cap and decode slots are derived from holds for the
    costliest image modes (measured in a fresh process, as scripts/decode_memory.py does)."""
    import importlib.util

    from convnet.data.folder import DECODE_BYTES_PER_PIXEL

    script = Path(__file__).resolve().parent.parent / "scripts" / "decode_memory.py"
    spec = importlib.util.spec_from_file_location("decode_memory", script)
    measure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measure)
    side = 3000
    for path in measure.images(side, tmp_path):
        if path.name in ("rgba.png", "palette.png", "grey16.png", "rgb.png"):
            assert measure.peak_growth(path, 3, 32) <= DECODE_BYTES_PER_PIXEL * side ** 2, path


def test_mnist_comes_from_torchvisions_mirrors_in_its_order():
    assert sources.DATASETS["mnist"].mirrors == ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                                                 "http://yann.lecun.com/exdb/mnist/")


def test_the_next_mirror_is_tried_when_one_fails(tmp_path, server, monkeypatch):
    served, url = server
    train, test = small_mnist()
    write_mnist_like(served, train, test)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in served.iterdir()}
    real = sources.DATASETS["mnist"]
    monkeypatch.setitem(sources.DATASETS, "mnist", dataclasses.replace(
        real, mirrors=(url + "gone/", "http://127.0.0.1:9/", url), md5=md5))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CONVNET_DATA_URL", raising=False)
    data = load_dataset("mnist", data_dir=str(tmp_path / "data"))
    assert len(data.train) == 30
