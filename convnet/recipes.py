"""Named recipes: a description plus training settings, written in the lecture's language.

`convnet train --recipe NAME` starts from TrainConfig's defaults, applies the recipe, then any
option given on the command line. Figures (bench/time_to_accuracy.py, docs/BENCHMARKS.md) are for
Fashion-MNIST on 2 CPU cores with the torch engine.
"""

from __future__ import annotations

from typing import Any

from .errors import UserError

RECIPES: dict[str, dict[str, Any]] = {
    "fast91": {
        "network": "conv(24,3,pad=same,bias=false) batchnorm relu pool(2) "
                   "conv(48,3,pad=same,bias=false) batchnorm relu pool(2) fc(10)",
        "engine": "torch", "epochs": 2, "batch_size": 256, "optimizer": "sgd", "lr": 0.2,
        "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "schedule": "onecycle",
        "label_smoothing": 0.1, "val_size": 0, "channels_last": True, "bf16": True,
    },
    "fast93": {
        "network": "conv(32,3,pad=same,bias=false) batchnorm relu "
                   "conv(32,3,pad=same,bias=false) batchnorm relu pool(2) "
                   "conv(64,3,pad=same,bias=false) batchnorm relu pool(2) "
                   "fc(128,bias=false) batchnorm relu fc(10)",
        "engine": "torch", "epochs": 8, "batch_size": 256, "optimizer": "sgd", "lr": 0.2,
        "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "schedule": "onecycle",
        "label_smoothing": 0.1, "augment": "crop,flip", "val_size": 0, "channels_last": True,
        "bf16": True, "tta": True,
    },
    "fast94": {
        "network": "conv(64,3,pad=same,bias=false) batchnorm relu "
                   "conv(64,3,pad=same,bias=false) batchnorm relu pool(2) "
                   "conv(128,3,pad=same,bias=false) batchnorm relu "
                   "conv(128,3,pad=same,bias=false) batchnorm relu pool(2) "
                   "fc(256,bias=false) batchnorm relu dropout(0.2) fc(10)",
        "engine": "torch", "epochs": 16, "batch_size": 256, "optimizer": "sgd", "lr": 0.2,
        "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "schedule": "onecycle",
        "label_smoothing": 0.1, "augment": "crop,flip", "val_size": 0, "channels_last": True,
        "bf16": True, "tta": True,
    },
}


def recipe(name: str) -> dict[str, Any]:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return dict(RECIPES[name], recipe=name)


def describe(name: str) -> str:
    settings = RECIPES[name]
    rest = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "network")
    return f"{name}: {settings['network']} — {rest}"
