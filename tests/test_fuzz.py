"""Fuzzing everything convnet reads from strangers (tests/fuzzing.py): a few hundred mutated
cases per target, each read or refused with one line — never another exception. The soak runs
many more: `scripts/fuzz_soak.py`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from fuzzing import TARGETS, run

CASES = {"description": 300, "idx": 300, "cifar": 300, "safetensors": 300, "model.json": 300,
         "image": 300}


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on broken TIFF tags
@pytest.mark.parametrize("target", list(TARGETS))
def test_fuzzed_input_is_read_or_refused_with_one_line(target):
    result = run(target, CASES[target], seed=1)
    assert not result.failures, "\n\n".join(result.failures[:3])
    assert result.refused > 0  # the mutations do reach the checks
    print(result.line())


def _raw_global(module: str, name: str, argument: str, protocol: int) -> bytes:
    """A pickle that calls module.name(argument), written opcode by opcode."""
    if protocol == 0:  # GLOBAL, MARK, STRING, TUPLE, REDUCE
        return f"c{module}\n{name}\n(S'{argument}'\ntR.".encode()
    if protocol == 1:  # INST: the class is found and called in one opcode
        return f"(S'{argument}'\ni{module}\n{name}\n.".encode()

    def short(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw

    # protocol 4: STACK_GLOBAL, TUPLE1, REDUCE, inside the dict a batch is
    call = short(module) + short(name) + b"\x93" + short(argument) + b"\x85R"
    return b"\x80\x04}" + b"C\x04data" + call + b"s."  # {b"data": call}


# What pickle exploits call (from public write-ups of pickle and NumPy/PyTorch loading attacks):
# shells, eval/exec, imports, file access, and NumPy's own ways back into pickle or exec.
EXPLOITS = [("os", "system"), ("posix", "system"), ("nt", "system"), ("builtins", "eval"),
            ("builtins", "exec"), ("builtins", "__import__"), ("builtins", "getattr"),
            ("builtins", "open"), ("builtins", "compile"), ("__builtin__", "eval"),
            ("subprocess", "Popen"), ("subprocess", "check_output"), ("subprocess", "run"),
            ("os", "popen"), ("os", "execv"), ("pty", "spawn"), ("runpy", "_run_code"),
            ("code", "InteractiveInterpreter"), ("importlib", "import_module"),
            ("pickle", "loads"), ("_pickle", "loads"), ("copyreg", "_reconstructor"),
            ("functools", "partial"), ("operator", "attrgetter"), ("operator", "methodcaller"),
            ("shutil", "rmtree"), ("webbrowser", "open"), ("timeit", "timeit"),
            ("ctypes", "CDLL"), ("numpy", "load"), ("numpy.lib.npyio", "load"),
            ("numpy.testing._private.utils", "runstring"), ("numpy", "fromfile"),
            ("numpy.core.multiarray", "_reconstruct.__globals__"),
            ("numpy", "ndarray.__reduce__"), ("torch", "load"), ("_codecs", "decode"),
            ("numpy.ctypeslib", "load_library")]


@pytest.mark.parametrize("protocol", [0, 1, 4])
@pytest.mark.parametrize("module,name", EXPLOITS)
def test_known_pickle_exploits_are_refused_and_run_nothing(tmp_path, monkeypatch, module, name,
                                                          protocol):
    from convnet.data.cifar import unpickle
    from convnet.errors import UserError

    marker = tmp_path / "ran"
    monkeypatch.chdir(tmp_path)
    payload = _raw_global(module, name, f"touch {marker}", protocol)
    with pytest.raises(UserError, match="refusing to load|not a CIFAR-10 batch"):
        unpickle(payload, "evil")
    assert not marker.exists()


def test_the_exploit_pickles_would_run_with_plain_pickle(tmp_path, monkeypatch):
    """The corpus is real: the same bytes given to pickle.loads do call what they name."""
    import builtins

    called = []
    monkeypatch.setattr(builtins, "print", lambda *a: called.append(a))
    for protocol in (0, 1):
        pickle.loads(_raw_global("builtins", "print", "hello", protocol))
    result = pickle.loads(_raw_global("builtins", "print", "hello", 4))
    assert called == [("hello",)] * 3 and list(result) == [b"data"]


def test_an_object_array_inside_a_batch_is_refused():
    """dtype=object arrays would unpickle their elements: refused by what a batch may hold."""
    from convnet.data.cifar import _batch, unpickle
    from convnet.errors import UserError

    data = pickle.dumps({b"data": np.array([[1] * 3072], dtype=object), b"labels": [1]},
                        protocol=2)
    with pytest.raises(UserError):
        _batch(unpickle(data, "b"), "b")


def test_a_pickle_error_of_several_lines_is_refused_in_one():
    """Found by the soak (scripts/fuzz_soak.py, cifar case 149): pickle's message for a
    persistent id spans two lines."""
    from convnet.data.cifar import unpickle
    from convnet.errors import UserError

    with pytest.raises(UserError) as refused:
        unpickle(b"\x80\x02}q\x00Pq\n.", "b")
    assert "\n" not in str(refused.value) and "persistent" in str(refused.value)
