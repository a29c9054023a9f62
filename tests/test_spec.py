"""The description language: parsing tables, canonical form, JSON and exact error messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet import spec
from convnet.errors import ParseError, UserError
from convnet.layers.dropout import Dropout2d
from convnet.layers.residual import Residual
from convnet.spec import FC, Activation, BatchNorm, Conv, Dropout, Flatten, Pool, Softmax


@pytest.mark.parametrize("text, layers", [
    ("conv(6,5)", [Conv(6, (5, 5)), Flatten(), Softmax()]),
    ("conv(6, 5x5)", [Conv(6, (5, 5)), Flatten(), Softmax()]),
    ("conv(6, 3x5, stride=2, pad=1)", [Conv(6, (3, 5), (2, 2), 1), Flatten(), Softmax()]),
    ("conv(8,3,pad=same) relu", [Conv(8, (3, 3), pad="same"), Activation("relu"), Flatten(),
                                 Softmax()]),
    ("conv(8,3,padding=2,bias=false)", [Conv(8, (3, 3), pad=2, bias=False), Flatten(), Softmax()]),
    ("pool(2) avgpool(3, stride=1)", [Pool("max", (2, 2), (2, 2)), Pool("avg", (3, 3), (1, 1)),
                                      Flatten(), Softmax()]),
    ("maxpool(2)", [Pool("max", (2, 2), (2, 2)), Flatten(), Softmax()]),
    ("conv(6,5)-relu->pool(2) fc(10)", [Conv(6, (5, 5)), Activation("relu"),
                                       Pool("max", (2, 2), (2, 2)), Flatten(), FC(10), Softmax()]),
    ("conv(6,5) → tanh → fc(10) softmax", [Conv(6, (5, 5)), Activation("tanh"), Flatten(),
                                           FC(10), Softmax()]),
    ("flatten fc(10) sigmoid dropout(0.25) batchnorm fc(2)",
     [Flatten(), FC(10), Activation("sigmoid"), Dropout(0.25), BatchNorm(), FC(2), Softmax()]),
    ("dropout batchnorm(eps=0.001, momentum=0.01)", [Dropout(0.5), BatchNorm(0.001, 0.01),
                                                    Flatten(), Softmax()]),
    ("RELU fc(3)", [Activation("relu"), Flatten(), FC(3), Softmax()]),
    ("# LeNet-ish\nconv(6,5) # first\n  fc(10)\n", [Conv(6, (5, 5)), Flatten(), FC(10),
                                                    Softmax()]),
])
def test_parse_table(text, layers):
    assert list(spec.parse(text).layers) == layers


def test_input_shape_can_open_the_description():
    parsed = spec.parse("32x32x3 conv(6,5) relu")
    assert parsed.input == (32, 32, 3)
    assert str(parsed) == "32x32x3 conv(6,5) relu flatten softmax"


def test_floor_flag_marks_every_conv_and_pool():
    parsed = spec.parse("conv(6,5) pool(2) fc(3)", floor=True)
    assert all(layer.floor for layer in parsed.layers if isinstance(layer, (Conv, Pool)))


def test_canonical_string_and_json_round_trip():
    text = "28x28x1 conv(32,3,pad=same) relu conv(8,3x5,stride=2,pad=1,bias=false,floor=true) " \
           "avgpool(3,stride=2) batchnorm dropout(0.3) fc(10)"
    parsed = spec.parse(text)
    assert spec.parse(str(parsed)) == parsed
    assert spec.from_json(spec.to_json(parsed)) == parsed
    assert spec.to_json(parsed)["layers"][2] == {"type": "conv", "filters": 8, "kernel": [3, 5],
                                                 "stride": [2, 2], "pad": 1, "bias": False,
                                                 "floor": True}


@pytest.mark.parametrize("text, message", [
    ("", "the description is empty; write layers such as conv(6,5) relu pool(2) fc(10)"),
    ("   # only a comment", "the description is empty; write layers such as conv(6,5) relu "
                           "pool(2) fc(10)"),
    ("conv(6,5) poool(2)", "unknown layer 'poool'; did you mean pool? Known layers: " +
     ", ".join(spec.LAYER_NAMES)),
    ("conv(6)", "conv: missing size (conv(K, F) or conv(K, HxW, stride=S, pad=P))"),
    ("conv", "conv: missing filters, size (conv(K, F) or conv(K, HxW, stride=S, pad=P))"),
    ("conv(6,5,7)", "conv: extra argument '7': takes 2 arguments (conv(K, F) or "
                    "conv(K, HxW, stride=S, pad=P))"),
    ("relu(2)", "relu: extra argument '2': takes 0 arguments (relu)"),
    ("fc()", "fc: missing units (fc(N))"),
    ("conv(0,5)", "conv: the number of filters K must be positive, got 0"),
    ("conv(-3,5)", "conv: the number of filters K must be positive, got -3"),
    ("conv(6,0)", "conv: the filter size F must be positive, got 0"),
    ("conv(6,0x3)", "conv: the filter size F must be positive, got '0x3'"),
    ("conv(six,5)", "conv: the number of filters K must be a whole number, got 'six'"),
    ("conv(6,2.5)", "conv: the filter size F must be a whole number, got '2.5'"),
    ("conv(6,5x5x3)", "conv: the filter size F is F or HxW (the depth comes from the input), "
                      "got '5x5x3'"),
    ("conv(6,5,pad=-1)", "conv: pad must be at least 0, got -1"),
    ("conv(6,5,stride=0)", "conv: stride must be positive, got 0"),
    ("conv(6,5,stride=0x1)", "conv: stride must be positive, got '0x1'"),
    ("conv(6,5,stride=2,pad=same)", "conv: pad=same needs stride=1 (as in PyTorch); write pad=P "
                                    "with a number instead"),
    ("conv(6,5,dilation=2)", "conv: unknown option 'dilation' (allowed: filters, size, stride, "
                             "pad, bias, floor)"),
    ("conv(6,5,pad=1,pad=2)", "conv: pad is given twice"),
    ("conv(6,stride=2,5)", "conv: positional argument after a keyword argument"),
    ("conv(6,5,bias=maybe)", "conv: bias is true or false, got 'maybe'"),
    ("fc(0)", "fc: the number of units N must be positive, got 0"),
    ("dropout(1)", "dropout: p is a probability in [0, 1), got 1"),
    ("dropout(-0.1)", "dropout: p is a probability in [0, 1), got -0.1"),
    ("fc(10) softmax relu", "nothing can follow softmax: it is the classifier's end"),
    ("fc(10) conv(3,3)", "conv needs an HxWxC input, but it follows fc(10), whose output is a "
                         "vector"),
    ("flatten flatten", "flatten needs an HxWxC input, but its input is already a vector"),
    ("conv(6,5", "expected ',' or ')' in the arguments of conv but the description ends"),
    ("conv(6,5)relu", "expected a separator (a space, - or ->) before 'relu'"),
    ("conv(6,5) relu 32x32x3", "an input shape such as 32x32x3 can only open the description"),
    ("32x32 conv(3,3)", "input shape '32x32' is not HxWxC with positive whole numbers (e.g. "
                        "32x32x3 for colour, 28x28x1 for grey)"),
    ("0x32x3 conv(3,3)", "input height must be positive, got 0"),
    ("conv(6 5)", "separate the arguments of conv with a comma: 6, 5"),
    ("conv(65537,5)", "conv: the number of filters K must be at most 65,536, got 65,537"),
    ("conv(6,5,stride=99999999999)", "conv: stride must be at most 65,536, got 99,999,999,999"),
    ("conv(6,5,pad=" + "9" * 5000 + ")", "conv: pad must be at most 65,536, got a number of "
                                         "5,000 digits"),
    ("conv(6,70000x3)", "conv: the filter size F must be at most 65,536, got 70,000"),
    ("fc(" + "1" * 13 + ")", "fc: the number of units N must be at most 65,536, got a number of "
                             "13 digits"),
    ("dropout(1e999)", "dropout: p must be a finite number, got '1e999'"),
    ("batchnorm(eps=1e999)", "batchnorm: eps must be a finite number, got '1e999'"),
    ("99999x3x3 relu", "input height must be at most 65,536, got 99,999"),
    ("relu " * 2001, "the description has more than 2,000 layers (repeats written out); at "
                     "most that many are allowed"),
    ("1000*(1000*(relu relu))", "the description has more than 2,000 layers (repeats written "
                                "out); at most that many are allowed"),
    ("0*relu", "a repeat count is 1 to 1,000, got '0'; write 3*(conv(16,3,pad=1) relu) for "
               "three of them"),
    ("1000000*relu", "a repeat count is 1 to 1,000, got '1000000'; write 3*(conv(16,3,pad=1) "
                     "relu) for three of them"),
    ("2.5*relu", "a repeat count is a whole number, got '2.5'"),
    ("3*()", "the repeated group is empty"),
    ("3*(relu", "expected ')' to close the repeated group but the description ends"),
    ("3*,", "expected a layer or a (group) after 3*, found ','"),
    ("9*(" * 9 + "relu" + ")" * 9, "groups and blocks nest at most 8 deep"),
    ("residual()", "residual: missing layers (residual(LAYERS) or residual(LAYERS, "
                   "shortcut=LAYERS))"),
    ("residual(relu, shortcut=)", "expected layers for shortcut of residual, found ')'"),
    ("residual(relu softmax)", "residual: softmax ends a network; it cannot be inside a "
                               "residual block"),
    ("residual(relu, surprise=relu)", "residual: unknown option 'surprise' (allowed: layers, "
                                      "shortcut)"),
    ("fc(10) globalavgpool", "globalavgpool needs an HxWxC input, but it follows fc(10), whose "
                             "output is a vector"),
    ("globalavgpool globalavgpool", "globalavgpool needs an HxWxC input, but it follows "
                                    "globalavgpool, whose output is a vector"),
    ("fc(10) dropout2d(0.5)", "dropout2d needs an HxWxC input, but it follows fc(10), whose "
                              "output is a vector"),
    ("pool(3,pad=2)", "pool: pad can be at most half the window, 1 for 3x3 (as in PyTorch), "
                      "got 2"),
    ("dropout2d(1.5)", "dropout2d: p is a probability in [0, 1), got 1.5"),
    ("relu" + " " * 100_000, "the description is 100,004 characters long; at most 100,000 are "
                             "read"),
    ("conv(6,5) ; relu", "unexpected character ';' at column 11; a description is layers such as "
                         "conv(6,5) relu pool(2) fc(10)"),
    ("(6,5)", "expected a layer name (conv, pool, relu, fc, ...), found '('"),
])
def test_parse_errors_are_exact(text, message):
    with pytest.raises(UserError) as info:
        spec.parse(text)
    assert str(info.value) == message


def test_parse_error_shows_a_caret_under_the_offending_token():
    with pytest.raises(ParseError) as info:
        spec.parse("conv(6,5) relu poool(2) fc(10)")
    assert info.value.context == ("    conv(6,5) relu poool(2) fc(10)\n"
                                  "                   ^^^^^")


def test_caret_points_into_the_right_line_of_a_file():
    with pytest.raises(ParseError) as info:
        spec.parse("conv(6,5)\nrelu\npool(0)\n")
    assert info.value.context == "    pool(0)\n         ^"


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "lenet.net"
    path.write_text("32x32x3\nconv(6,5) relu pool(2)  # the lecture's first layer\nfc(10)\n")
    assert str(spec.load(str(path))) == "32x32x3 conv(6,5) relu pool(2) flatten fc(10) softmax"
    with pytest.raises(UserError, match="no description file"):
        spec.load(str(tmp_path / "missing.net"))


# -- properties ------------------------------------------------------------------------------

sizes = st.one_of(st.integers(1, 7).map(lambda f: (f, f)), st.tuples(st.integers(1, 7),
                                                                     st.integers(1, 7)))
strides = st.one_of(st.integers(1, 4).map(lambda s: (s, s)), st.tuples(st.integers(1, 4),
                                                                       st.integers(1, 4)))
conv_layers = st.builds(
    Conv, filters=st.integers(1, 64), kernel=sizes, stride=strides,
    pad=st.one_of(st.integers(0, 3)), bias=st.booleans(), floor=st.booleans(),
)
same_convs = st.builds(Conv, filters=st.integers(1, 64), kernel=sizes, pad=st.just("same"))
pool_layers = st.builds(lambda kind, k, s, default, fl: Pool(kind, k, k if default else s, fl),
                        st.sampled_from(["max", "avg"]), sizes, strides, st.booleans(),
                        st.booleans())
flat_layers = st.one_of(
    st.builds(Activation, st.sampled_from(["relu", "sigmoid", "tanh"])),
    st.builds(Dropout, st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9])),
    st.builds(BatchNorm, st.sampled_from([1e-5, 1e-3]), st.sampled_from([0.1, 0.01])),
)


def _residual(inside):
    return st.builds(Residual, st.lists(inside, min_size=1, max_size=3).map(tuple),
                     st.lists(inside, max_size=2).map(tuple))


spatial_layers = st.recursive(
    st.one_of(conv_layers, same_convs, pool_layers, flat_layers,
              st.builds(Dropout2d, st.sampled_from([0.0, 0.2]))),
    _residual, max_leaves=8)


@st.composite
def networks(draw):
    spatial = draw(st.lists(spatial_layers, max_size=6))
    head = draw(st.lists(st.one_of(st.builds(FC, st.integers(1, 50), st.booleans()),
                                   flat_layers), max_size=4))
    layers = list(spatial)
    if head:
        layers.append(Flatten())
        layers += head
    return spec.parse(" ".join(spec.layer_to_string(layer) for layer in layers) or "flatten")


@settings(max_examples=300, deadline=None)
@given(networks())
def test_parse_canonical_parse_is_identity(network):
    assert spec.parse(str(network)) == network
    assert spec.from_json(spec.to_json(network)) == network


# -- any text at all: parsed or refused with the project's error, at once ----------------------

def _answered_quickly(call, seconds: float = 10.0):
    """Run call(); fail (not hang) if it has not returned after `seconds`. A hang guard for
    inputs that once looped for ever, far above the milliseconds a parse takes: not a timing
    assertion."""
    import signal

    def stop(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


huge_numbers = st.one_of(st.integers(0, 10**20).map(str), st.integers(1, 6000).map(lambda n: "9" * n),
                         st.sampled_from(["1e999", "-0", "0.5", "1e-999", "65536", "65537"]))
fragments = st.one_of(
    st.sampled_from(["conv", "pool", "avgpool", "fc", "relu", "dropout", "batchnorm", "flatten",
                     "softmax", "(", ")", ",", "=", " ", "-", "->", "x", "#", "\n", "stride",
                     "pad", "same", "bias", "floor", "eps", "momentum", "p", "true", "×", "→",
                     "é", "\u200b", "한"]),
    huge_numbers,
    st.builds("{}x{}x{}".format, huge_numbers, huge_numbers, huge_numbers),
    st.builds("conv({},{},stride={},pad={})".format, huge_numbers, huge_numbers, huge_numbers,
              huge_numbers),
    st.text(max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(fragments, max_size=30).map("".join)))
def test_any_text_is_parsed_or_refused_with_a_user_error(text):
    from convnet import inspector, shapes

    def attempt():
        try:
            network = spec.parse(text)
        except UserError as e:
            assert str(e) and "\n" not in str(e)  # one line
            return
        if network.input is not None:  # the arithmetic must answer as quickly
            try:
                inspector.explain(network, network.input)
                shapes.infer(network)
            except UserError:
                pass

    _answered_quickly(attempt)


@pytest.mark.parametrize("text", [
    "7x7x1 conv(1,3,stride=65536,pad=1)",
    "65536x65535x1 conv(1,65536,stride=65535,pad=4)",
    "65536x65536x3 conv(65536,3,stride=65536,pad=65536)",
    "65536x65536x1 pool(65535,stride=65536)",
])
def test_a_stride_that_does_not_fit_answers_at_once_at_any_size(text):
    from convnet import shapes
    from convnet.errors import GeometryError

    with pytest.raises(GeometryError, match="Fix:"):
        _answered_quickly(lambda: shapes.infer(spec.parse(text)))


@settings(max_examples=100, deadline=None)
@given(st.lists(spatial_layers, min_size=1, max_size=4), st.integers(1, 5))
def test_a_repeat_is_its_group_written_out(group, count):
    text = " ".join(layer.to_text() for layer in group)
    repeated = spec.parse(f"{count}*({text})")
    assert repeated == spec.parse(" ".join([text] * count))
