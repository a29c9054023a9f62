"""Ablations of a recipe: each trick taken out (or added), everything else the same.

Trains each variant on Fashion-MNIST with the same seeds and prints the training time, the time
to 91% and the final test accuracy (means over seeds), as in bench/time_to_accuracy.py. With
--compile-line, a variant with torch.compile is timed including its compilation (which happens
inside the first training step).

    .venv/bin/python bench/ablation.py --recipe fast91 --seeds 2
    .venv/bin/python bench/ablation.py --recipe fast93 --seeds 2 --only +
    .venv/bin/python bench/ablation.py --recipe fast94 --seeds 1 --first-seed 1 --only "9 epochs"
    CONVNET_CPU_FLAGS=avx512f .venv/bin/python bench/ablation.py --recipe fast93 --only batch 24
                                             (the float32 path, as on a CPU without bf16 units)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from time_to_accuracy import recipe_run, time_to  # noqa: E402

from convnet import cpu, recipes  # noqa: E402
from convnet.data import load_dataset  # noqa: E402

POOL_AFTER = ("conv(16,3,pad=same,bias=false) batchnorm relu pool(2) "
              "conv(32,3,pad=same,bias=false) batchnorm relu pool(2) "
              "fc(128,bias=false) batchnorm relu fc(10)")
MIDDLE = ("conv(24,3,pad=same,bias=false) pool(2) batchnorm relu "
          "conv(48,3,pad=same,bias=false) pool(2) batchnorm relu fc(128,bias=false) batchnorm "
          "relu fc(10)")
WIDER = ("conv(32,3,pad=same,bias=false) pool(2) batchnorm relu "
         "conv(64,3,pad=same,bias=false) pool(2) batchnorm relu fc(128,bias=false) batchnorm "
         "relu fc(10)")
RESIDUAL = ("conv(32,3,pad=same,bias=false) batchnorm relu "
            "residual(conv(32,3,pad=same,bias=false) batchnorm relu "
            "conv(32,3,pad=same,bias=false) batchnorm) relu pool(2) "
            "conv(64,3,pad=same,bias=false) batchnorm relu pool(2) "
            "fc(128,bias=false) batchnorm relu fc(10)")
COMMON = {  # one change at a time, to any recipe
    "recipe as is": {},
    "fp32 (no bf16, no channels-last)": {"bf16": False, "channels_last": False},
    "fp32 with channels-last": {"bf16": False, "channels_last": True},
    "no label smoothing": {"label_smoothing": 0.0},
    "cosine schedule instead of one-cycle": {"schedule": "cosine"},
    "+ weight average (--ema 0.99)": {"ema": 0.99},
    "+ lookahead every 5 steps": {"lookahead": 5},
    "+ test-time shifts of 1 pixel": {"tta_shift": 1},
    "+ random erasing": {"augment": "erase"},
    "+ whitened first layer": {"whiten": True},
    "no whitened first layer": {"whiten": False},
    "+ batch norm learning 4× faster": {"bn_lr_scale": 4.0},
    # conv kernels by Muon (airbench94_muon's optimiser), the other weights by SGD as before
    **{f"+ Muon lr {rate}": {"optimizer": "muon", "muon_lr": rate} for rate in (0.05, 0.1, 0.2)},
}
DEEPER_POOL_FIRST = ("conv(32,3,pad=same,bias=false) batchnorm relu "
                     "conv(32,3,pad=same,bias=false) pool(2) batchnorm relu "
                     "conv(64,3,pad=same,bias=false) pool(2) batchnorm relu "
                     "fc(128,bias=false) batchnorm relu fc(10)")
NARROW = ("conv(24,3,pad=same,bias=false) batchnorm relu "
          "conv(24,3,pad=same,bias=false) batchnorm relu pool(2) "
          "conv(48,3,pad=same,bias=false) batchnorm relu pool(2) "
          "fc(128,bias=false) batchnorm relu fc(10)")
# fast93's float32 path in its second session
NARROW_POOL_FIRST = ("conv(24,3,pad=same,bias=false) batchnorm relu "
                     "conv(24,3,pad=same,bias=false) pool(2) batchnorm relu "
                     "conv(48,3,pad=same,bias=false) pool(2) batchnorm relu "
                     "fc(128,bias=false) batchnorm relu fc(10)")
EARLY_POOL = recipes.EARLY_POOL + recipes.HEAD  # fast93's network now (both paths)
EARLY_POOL_32 = recipes.EARLY_POOL_32 + recipes.HEAD  # best's, the ensemble's, fast94's (bf16)
FAST94_UNTIL_5 = {"network": recipes.DEEPER + recipes.HEAD, "epochs": 16, "lr": 0.2, "ema": 0.0,
                  "whiten": False, "tta_shift": 0, "optimizer": "sgd"}
# the bf16 path from its fifth session to 12-01 evening: best's network for 10 epochs, SGD
FAST94_BF16_5 = {"network": recipes.EARLY_POOL_32 + recipes.HEAD, "epochs": 10, "lr": 0.3,
                 "ema": 0.98, "whiten": True, "tta_shift": 1, "augment": "crop",
                 "optimizer": "sgd"}
THIRD_AT_7 = ("conv(32,3,pad=same,bias=false) pool(2) batchnorm relu "
              "conv(64,3,pad=same,bias=false) pool(2) batchnorm relu "
              "conv(128,3,pad=same,bias=false) batchnorm relu " + recipes.HEAD)
# best's network with 48 filters in the middle conv: a quarter fewer multiply-adds
MIDDLE_48 = ("conv(32,3,pad=same,bias=false) pool(2) batchnorm relu "
             "conv(48,3,pad=same,bias=false) batchnorm relu "
             "conv(64,3,pad=same,bias=false) pool(2) batchnorm relu " + recipes.HEAD)


def strided_stem(first: int, rest: str, kernel: int = 4) -> str:
    """The first conv and its pooling replaced by one conv of stride 2 (a kernel×kernel
    window every 2 pixels, padded to keep 28 → 14): a quarter of the first layer's outputs to
    normalise, and no pooling over the full-size image."""
    pad = (kernel - 2) // 2
    return f"conv({first},{kernel},stride=2,pad={pad},bias=false) batchnorm relu " + rest


AFTER_FIRST_48 = ("conv(48,3,pad=same,bias=false) batchnorm relu "
                  "conv(48,3,pad=same,bias=false) pool(2) batchnorm relu " + recipes.HEAD)
AFTER_FIRST_64 = ("conv(64,3,pad=same,bias=false) batchnorm relu "
                  "conv(64,3,pad=same,bias=false) pool(2) batchnorm relu " + recipes.HEAD)

VARIANTS = {
    "fast91": {**COMMON,
               "batch norm and ReLU before pooling": {"network": POOL_AFTER},
               "24/48 filters, lr 0.2": {"network": MIDDLE, "lr": 0.2},
               "32/64 filters, lr 0.2": {"network": WIDER, "lr": 0.2}},
    "fast93": {**COMMON,
               "the network until its third session (32/32/64, two convs at 28x28)": {
                   "network": recipes.DEEPER + recipes.HEAD, "whiten": False},
               "+ random erasing": {"augment": "crop,erase"},
               "+ identity-initialised conv 32 → 32": {"identity_init": True},
               "a residual block instead of conv 32 → 32": {"network": RESIDUAL},
               "batch norm and ReLU after pooling": {"network": DEEPER_POOL_FIRST},
               # for the float32 path (CONVNET_CPU_FLAGS=avx512f): narrower, cheaper networks
               "24/24/48 filters": {"network": NARROW},
               "24/24/48 filters, batch norm and ReLU after pooling": {
                   "network": NARROW_POOL_FIRST},
               "7 epochs": {"epochs": 7},
               "6 epochs": {"epochs": 6},
               "pooling after the first conv, 24/48/48 filters": {"network": EARLY_POOL},
               "pooling after the first conv, 32/64/64 filters": {"network": EARLY_POOL_32},
               "pooling after the first conv, 24/48/48, + weight average": {
                   "network": EARLY_POOL, "ema": 0.99},
               "pooling after the first conv, 24/48/48, + whitened first layer": {
                   "network": EARLY_POOL, "whiten": True},
               "pooling after the first conv, 24/48/48, + whitening and weight average": {
                   "network": EARLY_POOL, "whiten": True, "ema": 0.99},
               # toward 93% within 60 s with bf16: six epochs, and what might win back the
               # seventh's tenth of a point
               "6 epochs, no label smoothing": {"epochs": 6, "label_smoothing": 0.0},
               "6 epochs, batch norm learning 4× faster": {"epochs": 6, "bn_lr_scale": 4.0},
               "6 epochs, batch 512, lr 0.4": {"epochs": 6, "batch_size": 512, "lr": 0.4},
               "6 epochs, weight average 0.98": {"epochs": 6, "ema": 0.98},
               "6 epochs, lr 0.3": {"epochs": 6, "lr": 0.3},
               "6 epochs, lr 0.4": {"epochs": 6, "lr": 0.4},
               "5 epochs, lr 0.3": {"epochs": 5, "lr": 0.3},
               "6 epochs, lr 0.3, no label smoothing": {"epochs": 6, "lr": 0.3,
                                                        "label_smoothing": 0.0},
               "6 epochs, lr 0.3, weight average 0.98": {"epochs": 6, "lr": 0.3, "ema": 0.98},
               # the float32 path (CONVNET_CPU_FLAGS=avx512f), 8 epochs at lr 0.2 now
               "7 epochs, lr 0.3": {"epochs": 7, "lr": 0.3},
               "7 epochs, lr 0.3, weight average 0.98": {"epochs": 7, "lr": 0.3, "ema": 0.98},
               # a stride-2 first conv instead of conv + pooling at 28×28 (both paths)
               "stride-2 first conv 4×4, 24/48/48": {"network": strided_stem(24, AFTER_FIRST_48)},
               "stride-2 first conv 4×4, 32/48/48": {"network": strided_stem(32, AFTER_FIRST_48)},
               "stride-2 first conv 2×2, 32/48/48": {
                   "network": strided_stem(32, AFTER_FIRST_48, kernel=2)},
               "stride-2 first conv 4×4, 32/64/64": {"network": strided_stem(32, AFTER_FIRST_64)},
               # Muon for the conv kernels, the rest SGD as before (both paths); the bf16 path
               # is Muon since 12-01 evening (the rows above ran against SGD)
               "SGD, 6 epochs (the bf16 path until 12-01 evening)": {
                   "epochs": 6, "optimizer": "sgd"},
               **{f"{n} epochs, Muon lr {rate}": {"epochs": n, "optimizer": "muon",
                                                  "muon_lr": rate}
                  for n in (4, 5, 6, 7) for rate in (0.05, 0.1, 0.2)}},
    # `best` within 10 minutes on 2 cores: fast93's ideas on best's 35 epochs (its first three
    # seeds: 94.62%, 533 s) against best until its fourth session; since 12-02 (bf16 path) Muon
    # for 30 epochs (convnet train --recipe best, seeds 0–2: 94.68%, 472–548 s)
    "best": {"recipe as is": {},
             "SGD, 35 epochs (the bf16 path until 12-02)": {"optimizer": "sgd", "epochs": 35},
             "fast94's network, no whitening, no weight average (until the fourth session)": {
                 "network": recipes.DEEPER + recipes.HEAD, "whiten": False, "ema": 0.0},
             # toward 94.5% within 10 minutes on a CPU without bf16 units (run with
             # CONVNET_CPU_FLAGS=avx512f): best's float32 step takes 118 ms, fast93's network's
             # 70; with SGD, as measured on 12-01 (the float32 path's 25 epochs until 12-02)
             "fast93's network (24/48/48)": {"network": recipes.EARLY_POOL + recipes.HEAD,
                                             "optimizer": "sgd", "epochs": 35},
             "20 epochs": {"epochs": 20, "optimizer": "sgd"},
             "25 epochs": {"epochs": 25, "optimizer": "sgd"},
             "25 epochs, lr 0.3": {"epochs": 25, "lr": 0.3, "optimizer": "sgd"},
             # the float32 path with Muon for the conv kernels (22 epochs at 0.2 since 12-02)
             **{f"{n} epochs, Muon lr {rate}": {"epochs": n, "optimizer": "muon",
                                               "muon_lr": rate}
                for n in (18, 20, 22, 25) for rate in (0.1, 0.2)},
             # the float32 path on a narrower network, for CPUs whose float32 is slow (best's
             # 22 epochs took 16.5–18 minutes on an AVX2-only EPYC): fast93's 24/48/48, whose
             # float32 step is 0.68× best's, with best's other settings and Muon (seed 0, 22
             # epochs: 94.40% at rate 0.1, 94.37% at 0.2, against the recipe's 94.67%; Zen 4)
             **{f"fast93's network, {n} epochs, Muon lr {rate}": {
                 "network": recipes.EARLY_POOL + recipes.HEAD, "epochs": n,
                 "optimizer": "muon", "muon_lr": rate}
                for n in (22, 25, 30) for rate in (0.1, 0.2)},
             # the ensemble's members on the bf16 path (convnet ensemble of seeds 0–2: 95.04%)
             "a residual block of two 64 → 64 convs (the ensemble's members)": {
                 "network": recipes.RESIDUAL_32 + recipes.HEAD}},
    # fast94 is best's network for 10 epochs since its fifth session (9 with Muon since 12-01
    # evening); the variants below the common ones are written against fast94 until then
    # (FAST94_UNTIL_5), or in full, each naming its optimiser
    "fast94": {**COMMON,
               "fast94 until its fifth session (16 epochs, fast91's network made deeper)":
                   FAST94_UNTIL_5,
               "+ whitening and weight average": {**FAST94_UNTIL_5, "whiten": True, "ema": 0.99},
               "pooling after the first conv, 32/64/64, + whitening and weight average": {
                   **FAST94_UNTIL_5, "network": EARLY_POOL_32, "whiten": True, "ema": 0.99},
               # toward 94% within 150 s: fast93's lessons (lr 0.3, a shorter average) at
               # 32/64/64 pooling early, fewer epochs, the test images shifted a pixel each way
               **{f"pooling early, {n} epochs, lr {lr}, EMA 0.98, shifts{extra}": {
                   "network": EARLY_POOL_32, "whiten": True, "epochs": n, "lr": lr,
                   "ema": 0.98, "tta_shift": 1, "optimizer": "sgd", **change}
                  for n in (9, 10, 11, 12) for lr in (0.3, 0.4)
                  for extra, change in (("", {}), (", erasing", {"augment": "crop,erase"}))},
               # cheaper networks: the 64 → 64 conv at 14×14 is 40% of a step (bf16, batch
               # 256); the third conv after the second pooling (at 7×7, 128 filters),
               # fast93's 24/48/48 trained longer, or 48 filters in the middle conv
               **{f"{label}, {n} epochs, lr 0.3, EMA 0.98, shifts": {
                   "network": network, "whiten": True, "epochs": n, "lr": 0.3, "ema": 0.98,
                   "tta_shift": 1, "optimizer": "sgd"}
                  for label, network in (("third conv at 7x7", THIRD_AT_7),
                                         ("fast93's network", EARLY_POOL),
                                         ("32/48/64", MIDDLE_48))
                  for n in (10, 11, 12, 14, 16)},
               # what might give 9 epochs the tenth of a point the 10th gives (the recipe's
               # bf16 path since its fifth session, one epoch shorter, one change each)
               **{f"9 epochs, {label}": {**FAST94_BF16_5, "epochs": 9, **change}
                  for label, change in (
                      ("label smoothing 0.2", {"label_smoothing": 0.2}),
                      ("label smoothing 0.3", {"label_smoothing": 0.3}),
                      ("no label smoothing", {"label_smoothing": 0.0}),
                      ("EMA 0.97", {"ema": 0.97}),
                      ("identity-initialised convs", {"identity_init": True}),
                      ("batch norm learning 4× faster", {"bn_lr_scale": 4.0}),
                      ("weight decay 1e-3", {"weight_decay": 1e-3}))},
               "SGD, 10 epochs (the bf16 path until 12-01 evening)": FAST94_BF16_5,
               # Muon for the conv kernels (airbench94_muon's optimiser; the rest SGD as before)
               **{f"{n} epochs, Muon lr {rate}": {**FAST94_BF16_5, "epochs": n,
                                                 "optimizer": "muon", "muon_lr": rate}
                  for n in (8, 9, 10) for rate in (0.01, 0.02, 0.05, 0.1, 0.2)},
               # the float32 path (CONVNET_CPU_FLAGS=avx512f): fast93's network, SGD for 16
               # epochs until 12-02, and with Muon for the conv kernels (11 epochs at 0.1 since)
               "SGD, 16 epochs on fast93's network (the float32 path until 12-02)": {
                   "network": EARLY_POOL, "epochs": 16, "optimizer": "sgd"},
               **{f"fast93's network, {n} epochs, Muon lr {rate}": {
                   "network": EARLY_POOL, "epochs": n, "optimizer": "muon", "muon_lr": rate}
                  for n in (10, 11, 12, 13, 14) for rate in (0.1, 0.2)}},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="fast91", choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0,
                   help="the seeds are this one and the ones after it (default 0)")
    p.add_argument("--only", nargs="+",
                   help="these variants (a whole label, or its first words)")
    p.add_argument("--compile-line", action="store_true")
    p.add_argument("--no-baseline", action="store_true",
                   help="leave out 'recipe as is' (when its figures exist from the same seeds)")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    data = load_dataset("fashion-mnist")
    variants = dict(VARIANTS[args.recipe])
    if args.compile_line:
        variants["+ torch.compile (compile time included)"] = {"compile": True}
    if args.only:
        def chosen(label: str, word: str) -> bool:  # a whole label, or the labels it starts
            return label == word if word in variants else label.startswith(word)
        variants = {k: v for k, v in variants.items()
                    if k == "recipe as is" or any(chosen(k, o) for o in args.only)}
    if args.no_baseline:
        variants.pop("recipe as is", None)
    path = recipes.path_for()[0]
    base = {k: v for k, v in recipes.recipe(args.recipe, path).items() if k != "recipe"}
    results = {}
    for label, change in variants.items():
        name = f"{args.recipe}:{label}"
        recipes.RECIPES[name] = recipes.changed(base, change)
        results[label] = [recipe_run(data, name, seed, path="bf16") for seed in
                          range(args.first_seed, args.first_seed + args.seeds)]
    seeds = ", ".join(map(str, range(args.first_seed, args.first_seed + args.seeds)))
    print(f"\n# {args.recipe} ({path} path), seeds {seeds}, Fashion-MNIST; "
          f"{cpu.describe()}")
    print(f"{'variant':42} {'training s':>10} {'to 91% s':>9} {'to 93% s':>9} "
          f"{'to 94% s':>9} {'final accuracy':>15}")

    def mean_time(histories: list, level: float) -> str:  # or how many seeds got there
        reached = [time_to(h, level) for h in histories]
        return f"{statistics.mean(reached):.1f}" if all(reached) else \
            f"{sum(r is not None for r in reached)}/{len(reached)}"

    for label, histories in results.items():
        total = statistics.mean(h[-1][0] for h in histories)
        final = statistics.mean(h[-1][1] for h in histories)
        spread = " / ".join(f"{100 * h[-1][1]:.2f}" for h in histories)
        print(f"{label:42} {total:10.1f} {mean_time(histories, 0.91):>9} "
              f"{mean_time(histories, 0.93):>9} {mean_time(histories, 0.94):>9} "
              f"{100 * final:14.2f}%   ({spread})")


if __name__ == "__main__":
    main()
