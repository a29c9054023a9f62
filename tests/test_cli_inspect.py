"""`convnet inspect` end to end: golden text, JSON, and every bad input → one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from convnet.cli import main

LENET = "conv(6,5) relu pool(2) conv(16,5) relu pool(2) fc(120) relu fc(84) relu fc(10)"
LECTURE = "conv(6,5) relu conv(10,5) relu"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name, argv", [
    ("inspect_lenet.txt", [LENET, "--input", "32x32x3"]),
    ("inspect_lenet_explain.txt", [LENET, "--input", "32x32x3", "--explain"]),
    ("inspect_lenet_ko.txt", [LENET, "--input", "32x32x3", "--lang", "ko"]),
    ("inspect_lecture_explain.txt", [LECTURE, "--input", "32x32x3", "--explain"]),
    ("inspect_lecture_explain_ko.txt", [LECTURE, "--input", "32x32x3", "--explain", "--lang",
                                        "ko"]),
    ("inspect_mixed_explain.txt", ["28x28x1 conv(8,4,pad=same) batchnorm tanh "
                                   "conv(4,3x5,stride=2,pad=1,floor=true) avgpool(2,floor=true) dropout(0.2) "
                                   "fc(10,bias=false)", "--explain"]),
    ("inspect_mixed_explain_ko.txt", ["28x28x1 conv(8,4,pad=same) batchnorm tanh "
                                      "conv(4,3x5,stride=2,pad=1,floor=true) avgpool(2,floor=true) "
                                      "dropout(0.2) fc(10,bias=false)", "--explain", "--lang",
                                      "ko"]),
])
def test_golden_text(capsys, golden, name, argv):
    code, out, err = run(capsys, "inspect", *argv)
    assert (code, err) == (0, "")
    golden(name, out)


def test_explain_shows_the_lecture_arithmetic(capsys):
    code, out, _ = run(capsys, "inspect", LECTURE, "--input", "32x32x3", "--explain")
    assert "(32 − 5 + 2·0)/1 + 1 = 28 → 28x28x6; weights 6·(5·5·3) + 6 = 456" in out
    assert "(28 − 5 + 2·0)/1 + 1 = 24 → 24x24x10; weights 10·(5·5·6) + 10 = 1,510" in out
    code, out, _ = run(capsys, "inspect", LECTURE, "--input", "32x32x3", "--explain", "--lang",
                       "ko")
    assert "가중치 6·(5·5·3) + 6 = 456" in out


def test_json_schema(capsys):
    code, out, _ = run(capsys, "inspect", LENET, "--input", "32x32x3", "--json")
    data = json.loads(out)
    assert data["input"] == [32, 32, 3]
    assert data["layers"][0] == {"index": 0, "name": "0", "type": "conv", "layer": "conv(6,5)",
                                 "output": [28, 28, 6], "params": 456, "macs": 352800,
                                 "receptive_field": [5, 5], "activation_bytes": 28 * 28 * 6 * 4}
    fc = data["layers"][7]
    assert (fc["type"], fc["output"], fc["params"]) == ("fc", [120], 48120)
    assert data["params"] == sum(layer["params"] for layer in data["layers"]) == 62006
    assert data["macs"] == sum(layer["macs"] for layer in data["layers"])


def test_description_from_a_file(capsys, tmp_path):
    path = tmp_path / "lenet.net"
    path.write_text("# the lecture's network\n32x32x3\n" + LENET + "\n")
    code, out, _ = run(capsys, "inspect", str(path), "--json")
    assert code == 0 and json.loads(out)["params"] == 62006


def test_floor_flag_accepts_what_pytorch_would(capsys):
    code, _, err = run(capsys, "inspect", "conv(1,3,stride=3)", "--input", "7x7x1")
    assert code == 2 and "Fix: stride=1 (→ 5x5) or stride=2 (→ 3x3)" in err
    code, out, _ = run(capsys, "inspect", "conv(1,3,stride=3)", "--input", "7x7x1", "--floor",
                       "--json")
    assert code == 0 and json.loads(out)["layers"][0]["output"] == [2, 2, 1]


BAD = [
    (["inspect", "conv(6,5) frobnicate", "--input", "32x32x3"], "unknown layer 'frobnicate'"),
    (["inspect", "conv(6)", "--input", "32x32x3"], "conv: missing size"),
    (["inspect", "conv(6,5,5)", "--input", "32x32x3"], "conv: extra argument '5'"),
    (["inspect", "conv(0,5)", "--input", "32x32x3"], "must be positive, got 0"),
    (["inspect", "conv(-2,5)", "--input", "32x32x3"], "must be positive, got -2"),
    (["inspect", "conv(x,5)", "--input", "32x32x3"], "must be a whole number, got 'x'"),
    (["inspect", "conv(6,5,pad=-1)", "--input", "32x32x3"], "pad must be at least 0, got -1"),
    (["inspect", "", "--input", "32x32x3"], "the description is empty"),
    (["inspect", "fc(0)", "--input", "32x32x3"], "fc: the number of units N must be positive"),
    (["inspect", "fc(10) softmax fc(3)", "--input", "32x32x3"], "nothing can follow softmax"),
    (["inspect", "conv(6,5)", "--input", "32x32"], "input shape '32x32' is not HxWxC"),
    (["inspect", "conv(6,5)", "--input", "32x32x0"], "input channels must be positive, got 0"),
    (["inspect", "conv(6,5)", "--input", "32,32,3"], "write it with x: 32x32x3"),
    (["inspect", "conv(6,5)", "--input", "7x7x" + "9" * 5000],
     "input channels must be at most 65,536, got a number of 5,000 digits"),
    (["inspect", "conv(6 5)", "--input", "32x32x3"], "separate the arguments of conv with a "
                                                     "comma: 6, 5"),
    (["inspect", "conv(1,3,stride=99999999999,pad=1)", "--input", "7x7x1"],
     "stride must be at most 65,536, got 99,999,999,999"),
    (["inspect", "conv(1,3,pad=" + "9" * 5000 + ")", "--input", "7x7x1"],
     "pad must be at most 65,536, got a number of 5,000 digits"),
    (["inspect", "conv(6,5)", "--input", "big"], "input shape 'big' is not HxWxC"),
    (["inspect", "conv(6,5)"], "the input shape is unknown"),
    (["inspect", "28x28x1 conv(6,5)", "--input", "32x32x3"], "but --input says 32x32x3"),
    (["inspect", "fc(65536)", "--input", "65536x65536x65536"], "overflow 64-bit counts"),
    (["inspect", "conv(6,5,stride=2)", "--input", "32x32x3"], "is not a whole number"),
    (["inspect", "conv(6,40)", "--input", "32x32x3"], "larger than its padded input"),
    (["inspect", "missing/file.net"], "no description file 'missing/file.net'"),
    (["inspect", "conv(6,5)", "--input", "32x32x3", "--lang", "fr"], "invalid choice: 'fr'"),
    (["inspect", "conv(6,5)", "--bogus"], "unrecognized arguments: --bogus"),
    (["inspect", "conv(6,5)", "--json", "--explain", "--input", "8x8x1"], "not allowed with"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize("argv, fragment", BAD)
def test_bad_input_is_one_line_and_status_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    error_lines = [line for line in err.splitlines() if line.startswith("convnet: error:")]
    assert len(error_lines) == 1 and fragment in error_lines[0]
    assert err.startswith("convnet: error:") and "Traceback" not in err
    # Only parse errors add context: the description and a caret under the offending token.
    assert len(err.splitlines()) in (1, 3)


def test_parse_error_context_is_the_text_and_a_caret(capsys):
    code, _, err = run(capsys, "inspect", "conv(6,5) relu poool(2)", "--input", "32x32x3")
    assert err.splitlines()[1:] == ["    conv(6,5) relu poool(2)", "                   ^^^^^"]


@pytest.mark.parametrize("argv", [["inspect", "conv(6,5) poool(2)", "--input", "32x32x3"],
                                  ["inspect", "conv(6,5)", "--input", "32x32"]])
def test_real_process_exit_status_and_no_traceback(argv):
    done = subprocess.run([sys.executable, "-m", "convnet", *argv], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("convnet: error:") and "Traceback" not in done.stderr


@pytest.mark.parametrize("argv, message", [
    (["conv(1,3,stride=3)", "--input", "7x7x1"],
     "0번 레이어 conv(1,3,stride=3) (7x7x1 입력): 높이 (7 − 3 + 2·0)/3 + 1 = 2.33, 정수가 아님 "
     "(7 − 3 + 2·0 = 4, 스트라이드 3의 배수가 아님) → 필터가 딱 맞게 들어가지 않음. 고치는 법: "
     "stride=1 (→ 5x5) 또는 stride=2 (→ 3x3) 또는 pad=1 (→ 3x3) 또는 입력 9x9 (→ 3x3); 또는 "
     "floor=true로 PyTorch처럼 남는 부분을 버림 (→ 2x2)"),
    (["pool(9)", "--input", "7x7x1"],
     "0번 레이어 pool(9) (7x7x1 입력): 9x9 창이 패딩한 입력 7x7보다 큼. 고치는 법: 더 작은 창 "
     "(최대 7x7), 또는 앞쪽 풀링 레이어 줄이기"),
])
def test_a_size_that_does_not_fit_is_explained_in_korean(capsys, argv, message):
    assert main(["inspect", *argv, "--lang", "ko"]) == 2
    assert capsys.readouterr().err == f"convnet: error: {message}\n"
    assert main(["inspect", *argv]) == 2  # English without --lang ko
    assert capsys.readouterr().err.startswith("convnet: error: layer 0 ")


def test_the_korean_table_lines_up_in_a_terminal(capsys):
    import unicodedata

    assert main(["inspect", LENET, "--input", "32x32x3", "--lang", "ko"]) == 0
    lines = capsys.readouterr().out.splitlines()

    def columns(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    rule = lines[2]
    assert set(rule) == {"─"}
    header, first = lines[3], lines[5]
    assert header.lstrip().startswith("#  레이어") and first.lstrip().startswith("입력")
    # the right edge of the memory column is the rule's end on every row
    assert all(columns(line) == len(rule) for line in lines[5:-4])
