"""The PNG figures a teacher would put on a slide: what `show`, `filters` and the training curve
draw, checked on the matplotlib figures themselves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convnet.figures import curve_figure, filter_mosaic, filters_figure_of, inside_figure_of
from convnet.inside import activations, conv_filters
from convnet.network import Network

CLASSES = [f"class {k}" for k in range(10)]


@pytest.fixture(scope="module")
def lenet():
    net = Network("conv(6,5) relu pool(2) conv(16,5) relu pool(2) fc(120) relu fc(10)",
                  input=(28, 28, 1), seed=0)
    image = (np.random.default_rng(0).random((28, 28, 1)) * 255).astype(np.uint8)
    return net, image, activations(net, image)


def titles(figure) -> list[str]:
    return [axis.get_title(loc="left") for axis in figure.axes if axis.get_title(loc="left")]


def close(figure):
    import matplotlib.pyplot as plt
    plt.close(figure)


def test_show_draws_every_layer_the_answer_and_the_filters(lenet):
    net, image, views = lenet
    figure = inside_figure_of(image, views[:-1], conv_filters(net)[0][1], CLASSES,
                              probabilities=views[-1].values)
    drawn = titles(figure)
    assert drawn[0] == "input 28x28x1" and drawn[1].startswith("softmax: ")
    assert [t.split(" ")[0] for t in drawn[2:-1]] == [str(v.index) for v in views[:-1]]
    assert drawn[-1].startswith("the first conv layer's filters: 6 filters of 5x5x1")
    figure.canvas.draw()
    dpi = figure.dpi
    for axis in figure.axes:  # a vector is a strip a reader can see, not a line of pixels
        if axis.get_title(loc="left").startswith(("6 flatten", "7 fc", "9 fc")):
            assert axis.get_window_extent().height >= 0.25 * dpi
    close(figure)


def test_the_probability_chart_holds_real_classes_with_percentages(lenet):
    _, image, views = lenet
    many = [f"c{k}" for k in range(10)]
    probs = views[-1].values
    figure = inside_figure_of(image, [], None, many, probabilities=probs)
    chart = next(a for a in figure.axes if a.get_title(loc="left").startswith("softmax"))
    labels = [t.get_text() for t in chart.get_yticklabels()]
    order = np.argsort(-probs, kind="stable")
    assert labels == [many[i] for i in order]  # largest first, all of them named
    written = [t.get_text() for t in chart.texts]
    assert written == [f"{p:.1%}" for p in probs[order]]
    close(figure)


def test_a_vector_with_one_value_per_class_is_labelled(lenet):
    _, image, views = lenet
    figure = inside_figure_of(image, [views[9]], None, CLASSES)  # fc(10): the logits
    strip = figure.axes[-2]  # then its colour bar
    assert [t.get_text() for t in strip.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in strip.texts] == [f"{v:.2f}" for v in views[9].values]
    close(figure)


def test_layer_choice_draws_those_layers_alone(tmp_path, capsys, served_model):
    from convnet.cli import main

    assert main(["show", str(served_model), "test:0", "--out", str(tmp_path / "r.png"),
                 "--layer", "relu"]) == 0
    assert "2 layers drawn" in capsys.readouterr().out


@pytest.mark.parametrize("shape, colour", [((8, 1, 5, 5), False), ((64, 3, 11, 11), True),
                                           ((32, 16, 3, 3), False)])
def test_filters_are_laid_out_wider_than_tall(shape, colour):
    weight = np.random.default_rng(0).normal(size=shape)
    mosaic, is_colour, note = filter_mosaic(weight)
    assert is_colour is colour
    h, w = mosaic.shape[:2]
    assert w >= h  # eight 5x5 filters: one row, not a column narrower than its colour bar
    if shape[0] == 8:
        assert h == 5 and note == ""
    if shape == (32, 16, 3, 3):
        assert "first 16 of 32 filters" in note and "first 4 of 16 channels" in note


def test_the_filters_figure_of_every_conv_layer():
    net = Network("conv(8,5) relu pool(2) conv(12,3) relu fc(3)", input=(20, 20, 3), seed=1)
    figure = filters_figure_of([(f"{s.index}", w) for s, w in conv_filters(net)])
    drawn = titles(figure)
    assert drawn[0].startswith("0: 8 filters of 5x5x3, in colour")
    assert drawn[1].startswith("3: 12 filters of 3x3x8, its channels side by side")
    close(figure)


@pytest.mark.parametrize("epochs", [1, 3, 7, 40])
def test_the_training_curve_ticks_whole_epochs(epochs):
    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 0.5,
             "val_accuracy": 0.6} for e in range(1, epochs + 1)]
    figure = curve_figure(rows)
    figure.canvas.draw()
    for axis in figure.axes:
        low, high = axis.get_xlim()
        ticks = [t for t in axis.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks)
    close(figure)


def test_a_run_without_validation_images_draws_no_validation_line():
    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": math.nan, "train_accuracy": 0.5,
             "val_accuracy": math.nan} for e in range(1, 4)]
    figure = curve_figure(rows)
    for axis in figure.axes:
        assert [text.get_text() for text in axis.get_legend().get_texts()] == ["train"]
    close(figure)
    rows[1]["val_accuracy"], rows[1]["val_loss"] = 0.7, 0.9
    figure = curve_figure(rows)
    assert [t.get_text() for t in figure.axes[1].get_legend().get_texts()] == \
        ["train", "validation"]
    close(figure)
