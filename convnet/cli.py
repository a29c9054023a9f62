"""The `convnet` command line. Each subcommand parses its options and calls into the package.

Every mistake a user can make ends here as one line on stderr and exit status 2 (`UserError`);
argparse's own errors are made to look the same.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Sequence

from .errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line and exit status 2 like every other mistake."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see {self.prog} --help)")


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    from .layers import help_text
    from .networks import NAMES

    p = sub.add_parser(
        "inspect", help="every layer's shape, weights and cost, explained",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Shows every layer's output shape (HxWxC), weights, multiply-adds, receptive "
                    "field and activation memory, computed with (N − F + 2P)/S + 1.",
        epilog="layers (separated by spaces; N*(...) repeats a group):\n" + help_text() +
               f"\n\nnetworks by name: {', '.join(NAMES)} (--list)\n\n"
               'examples: convnet inspect "conv(6,5) relu pool(2) fc(10)" --input 32x32x3 '
               "--explain   |   convnet inspect resnet18",
    )
    p.add_argument("description", nargs="?",
                   help="the network, e.g. 'conv(6,5) relu pool(2) fc(10)', a file that holds "
                        f"one, or a network's name ({', '.join(NAMES)})")
    p.add_argument("--list", action="store_true",
                   help="the networks convnet ships, by name, one line each")
    p.add_argument("--input", metavar="HxWxC", help="input shape, e.g. 32x32x3 (unless the "
                                                    "description starts with it)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the figures as JSON")
    shown.add_argument("--explain", action="store_true",
                       help="write each layer's arithmetic the way the lecture does")
    shown.add_argument("--values", metavar="NUMBERS",
                       help="run the network on these input numbers and print every layer's "
                            "output: rows split by ';' (e.g. \"1 2; 3 4\"), a .npy or text "
                            "file, or 'random' (whole numbers 0-9)")
    p.add_argument("--seed", type=int, default=0,
                   help="with --values: the seed of the random weights (and of 'random' "
                        "values), drawn as training starts them (default: %(default)s)")
    p.add_argument("--at", metavar="ROW,COL",
                   help="with --values: work out each conv layer's output at this cell as "
                        "W·x + b (rows and columns count from 0)")
    p.add_argument("--lang", choices=("en", "ko"), default="en",
                   help="language of the table, --explain and --values (ko: Korean)")
    p.add_argument("--floor", action="store_true",
                   help="accept strides that don't fit by flooring, as PyTorch does")
    p.set_defaults(run=_run_inspect)


def _cell(text: str, names: tuple[str, ...], option: str) -> tuple[int, ...]:
    """'1,2' → (1, 2): whole numbers from 0, as many as names."""
    parts = text.split(",")
    if len(parts) != len(names) or not all(p.strip().isdigit() for p in parts):
        raise UserError(f"{option} {text!r}: give {','.join(names)} as whole numbers from 0, "
                        f"e.g. {','.join(str(i + 1) for i in range(len(names)))}")
    return tuple(int(p) for p in parts)


def resolve_input(spec_input: tuple[int, int, int] | None, option: str | None
                  ) -> tuple[int, int, int]:
    """The input shape from --input or the description; both given must agree."""
    from .spec import parse_input_shape

    given = parse_input_shape(option) if option is not None else None
    if given is not None and spec_input is not None and given != spec_input:
        raise UserError(f"the description starts with input {'x'.join(map(str, spec_input))} "
                        f"but --input says {option}")
    shape = given or spec_input
    if shape is None:
        raise UserError("the input shape is unknown: give --input HxWxC (e.g. 32x32x3) or start "
                        "the description with it")
    return shape


def _run_inspect(args: argparse.Namespace) -> int:
    from .errors import GeometryError

    try:
        return _inspect(args)
    except GeometryError as e:
        if args.lang == "ko":
            raise UserError(e.korean) from None
        raise


VALUES_LIMIT = 16_384  # numbers per printed volume: past this, text is no way to look


def _inspect(args: argparse.Namespace) -> int:
    from . import inspector, spec

    if args.list:
        from .networks import listing

        print(listing())
        return 0
    if args.description is None:
        raise UserError("give a network to inspect: a description, a file, or a name such as "
                        "resnet18 (--list shows them)")
    network = spec.load(args.description, floor=args.floor)
    shape = resolve_input(network.input, args.input)
    if args.at is not None and args.values is None:
        raise UserError("--at works out one cell of a run on numbers: give --values too")
    if args.values is not None:
        from .by_hand import parse_values, values_text
        from .network import Network

        at: tuple[int, int] | None = None
        if args.at is not None:
            row, column = _cell(args.at, ("ROW", "COL"), "--at")
            at = (row, column)
        from .shapes import infer

        largest = max(math.prod(s.output) for s in infer(network, shape))  # before any weights
        if max(largest, math.prod(shape)) > VALUES_LIMIT:
            raise UserError(f"--values prints every number, and a layer here holds "
                            f"{max(largest, math.prod(shape)):,}; keep each volume to "
                            f"{VALUES_LIMIT:,} numbers (e.g. a 32x32x16 input) or look at whole "
                            "images with convnet show")
        net = Network(network, input=shape, engine="numpy", dtype="float64", seed=args.seed,
                      floor=args.floor)
        values = parse_values(args.values, shape, args.seed)
        if at is not None and not any(isinstance(s.layer, spec.Conv) and at[0] < s.output[0]
                                      and at[1] < s.output[1] for s in net.shapes):
            raise UserError(f"--at {args.at}: no conv layer's output has row {at[0]}, "
                            f"column {at[1]}")
        print(values_text(net, values, at, args.lang))
    elif args.json:
        print(json.dumps(inspector.as_json(network, shape), indent=2))
    elif args.explain:
        print(inspector.explain(network, shape, lang=args.lang))
    else:
        from .networks import source

        key = args.description.strip().lower()
        where = source(key)
        title = f"{key} ({where})" if where is not None else None
        print(inspector.table(network, shape, lang=args.lang, title=title))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _add_train(sub: argparse._SubParsersAction) -> None:
    from .config import MUON_LR
    from .recipes import RECIPES, describe
    from .train import (DEFAULT_NETWORK, EPOCH_RANGE, LEAST_VALIDATION, SMALL_DATA,
                        SMALL_MUON_LR, STEP_BUDGET, WARMUP_STEPS, TrainConfig)

    d = TrainConfig()
    recipes = "\n".join("  " + describe(name) for name in RECIPES)
    p = sub.add_parser(
        "train", help="train a network on a data set or a folder of images",
        argument_default=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Trains a network, validating after every epoch, and writes a run directory "
                    "with the best and last checkpoints, metrics.jsonl and curve.png.",
        epilog=f"recipes (--recipe NAME; options given here override them):\n{recipes}\n\n"
               "examples: convnet train   |   convnet train --recipe fast91   |   convnet train "
               "'conv(16,5) relu pool(2) fc(10)' --data mnist --epochs 3   |   convnet train "
               "--data photos/ --input 64x64x3",
    )

    def option(flag: str, help: str, **kwargs) -> None:
        field = flag.lstrip("-").replace("-", "_")
        default = getattr(d, kwargs.pop("dest", field), None)
        shown = f" (default: {default})" if default not in (None, "") else ""
        p.add_argument(flag, help=help + shown, **kwargs)

    p.add_argument("description", nargs="?",
                   help="the network, a file or a name (default: CONV–RELU–POOL stages fitted to "
                        f"the images, e.g. on 28x28x1 with 10 classes: {DEFAULT_NETWORK})")
    p.add_argument("--recipe", choices=list(RECIPES),
                   help="start from a named recipe (on other data its network gets one output "
                        "per class and averages maps larger than Fashion-MNIST's, and a smaller "
                        "training set the same steps in more epochs, with the small set's "
                        "augmentation besides the recipe's)")
    option("--data", "fashion-mnist, mnist, cifar10, or a folder with one subfolder per class")
    option("--input", "input shape for a folder of images (default: inferred from the images)",
           metavar="HxWxC")
    option("--data-dir", "where to look for data sets first (and download to)")
    option("--engine", "numpy, torch, or auto (torch where installed)",
           choices=("numpy", "torch", "auto"))
    option("--device", "torch engine: cpu, cuda, cuda:N or auto")
    option("--epochs", "passes over the training images (default: enough for about "
                       f"{STEP_BUDGET:,} steps, {EPOCH_RANGE[0]} to {EPOCH_RANGE[1]}, with "
                       "early stopping)", type=_positive_int)
    option("--patience", "stop after this many epochs without a better validation accuracy, "
                         "counted from the warm-up's end at the earliest (default: a fifth of "
                         "the epochs when --epochs is not given)",
           type=_positive_int)
    option("--balance", "unequal classes: weights (class-weighted loss), sampler (balanced "
                        "batches) or none", choices=("none", "weights", "sampler"))
    option("--batch-size", "images per step", type=_positive_int)
    option("--lr", "peak learning rate", type=_number)
    option("--optimizer", "sgd, adam, adamw, or muon (conv kernels by Muon, the other weights by "
                          f"SGD; default: muon under {SMALL_DATA:,} training images or with "
                          "--muon-lr, else sgd)", choices=("sgd", "adam", "adamw", "muon"))
    option("--muon-lr", f"muon: the conv kernels' peak learning rate (default {SMALL_MUON_LR} "
                        f"for colour images under {SMALL_DATA:,} training images where the convs "
                        f"hold most of the weights, as with global average pooling, else "
                        f"{MUON_LR}; --lr is the other weights')", type=_number, metavar="LR")
    option("--momentum", "SGD momentum", type=_number)
    p.add_argument("--no-nesterov", dest="nesterov", action="store_false",
                   help="plain momentum instead of Nesterov's")
    option("--weight-decay", "L2 penalty (decoupled for adamw)", type=_number)
    option("--schedule", "learning-rate schedule",
           choices=("constant", "cosine", "onecycle", "step"))
    option("--warmup-epochs", "linear warm-up before the cosine decay (default: half an epoch, "
                              f"at least {WARMUP_STEPS} steps or a fifth of the run)",
           type=_number)
    option("--label-smoothing", "share of each label spread over all classes", type=_number)
    option("--augment", "any of crop, flip, erase, rotate, zoom and light, e.g. crop,erase "
                        f"(default: under {SMALL_DATA:,} training images, crop, and for colour "
                        "images rotate, zoom and light too; else none)")
    option("--val-size", "validation images held out of train (a fraction if below 1; "
                         "default: a tenth, at most 5,000, and none where a tenth would be "
                         f"under {LEAST_VALIDATION} — the run then keeps its last epoch)",
           type=_number)
    option("--test-fraction", "folders without train/ and test/: the share held out for testing",
           type=_number)
    option("--seed", "seed of the weights, the order of images and the augmentation", type=int)
    option("--init", "weight initialiser", choices=("auto", "he", "xavier", "normal"))
    option("--dtype", "float type of the network", choices=("float32", "float64"))
    option("--channels-last", "torch engine: N×H×W×C memory for the convolutions",
           action=argparse.BooleanOptionalAction)
    option("--bf16", "torch engine: bfloat16 matrix work where the hardware has it",
           action=argparse.BooleanOptionalAction)
    option("--compile", "torch engine: torch.compile the model",
           action=argparse.BooleanOptionalAction)
    option("--tta", "test-time augmentation: each image and its mirror vote",
           action=argparse.BooleanOptionalAction)
    option("--tta-shift", "test-time augmentation: the image moved N pixels up, down, left and "
                          "right votes too", type=int, metavar="N")
    option("--ema", "evaluate and save an exponential moving average of the weights with this "
                    "decay per step, e.g. 0.99 (0: off)", type=_number, metavar="DECAY")
    option("--lookahead", "every K steps pull the weights halfway back to slow weights "
                          "(0: off)", type=int, metavar="K")
    option("--whiten", "initialise the first conv layer by whitening the images' patches "
                       f"(default: for a training set under {SMALL_DATA:,} images)",
           action=argparse.BooleanOptionalAction)
    option("--identity-init", "convs from C to C channels start as the identity (plus noise)",
           action=argparse.BooleanOptionalAction)
    option("--bn-lr-scale", "torch engine: batch norm's scale and shift learn this many times "
                            "faster than the other weights", type=_number, metavar="X")
    option("--tensorboard", "write TensorBoard logs (scalars, histograms, filters, activation "
                            "maps, graph) to this folder", metavar="DIR")
    option("--cache-dir", "where a folder's decoded images are kept (default: $CONVNET_CACHE "
                          "or ~/.cache/convnet/folders)", metavar="DIR")
    p.add_argument("--no-cache", dest="cache", action="store_false",
                   help="decode a folder's images into memory, every run")
    p.add_argument("--out", help="run directory (default: runs/DATA-DATE-TIME)")
    p.add_argument("--force", action="store_true", help="replace an existing run directory")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last epoch")
    p.add_argument("--ensemble", type=_positive_int, metavar="K",
                   help="train K models (seeds SEED … SEED+K−1) into OUT/model-1 … and save "
                        "their ensemble in OUT/ensemble")
    p.add_argument("--at-once", type=_positive_int, metavar="N",
                   help="with --ensemble: train N of its models at the same time, each in a "
                        "process of its own on a share of the cores (default: all of them, "
                        "at most two a core on a CPU, one a core on a GPU, as many as memory "
                        "holds)")
    p.add_argument("--serve", action="store_true",
                   help="watch it on a local page as it trains: the curves, and the maps and "
                        "filters of an image after every epoch (it stays up after training "
                        "until Ctrl-C)")
    p.add_argument("--port", type=int, default=8000,
                   help="the page's port with --serve (default: %(default)s)")
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .api import default_directory, say, settings
    from .resources import out_of_memory
    from .train import TrainConfig, Trainer, resume

    given = vars(args)
    if given.get("serve"):  # before anything is written
        from .web.serve import check_port

        check_port("127.0.0.1", given.get("port", 8000))
    if given.get("resume"):
        directory = Path(given["resume"])
        trainer = resume(directory, given.get("epochs"))
        config = trainer.config
    else:
        options = {k: v for k, v in given.items()
                   if k in TrainConfig.__dataclass_fields__ and k not in ("network", "recipe")}
        chosen = settings(given.get("description"), given.get("recipe"), given.get("ensemble"),
                          **options)
        if chosen.recipe_line is not None:
            from .distributed import world
            if world().main:
                print(chosen.recipe_line, flush=True)
        config = chosen.config
        directory = Path(given["out"]) if given.get("out") else default_directory(config)
        if chosen.ensemble > 1:
            if given.get("serve"):
                raise UserError("--serve watches one run; with --ensemble serve a member's run "
                                "directory yourself (convnet serve DIR/model-1)")
            return _train_ensemble(config, directory, chosen.ensemble, given.get("force", False),
                                   given.get("at_once"))
        if given.get("at_once") is not None:
            raise UserError("--at-once is for an ensemble (--ensemble K or --recipe ensemble): "
                            "it trains several of its models at the same time")
        trainer = Trainer(config, directory, force=given.get("force", False))
    config = trainer.config
    if not trainer.world.main:  # other ranks of a torchrun train quietly
        trainer.run()
        return 0
    for note in (*trainer.data.notes, *trainer.notes):
        say(note)
    print(trainer.plan(given.get("epochs") is not None or bool(given.get("recipe"))),
          flush=True)
    page = None
    if given.get("serve"):
        from .web.serve import Background

        page = Background(directory, "127.0.0.1", given.get("port", 8000),
                          config.data_dir).start()
        print(f"watch it at {page.url}", flush=True)
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        if page is not None:
            page.stop()
        print(f"convnet: interrupted; continue with: convnet train --resume {directory}",
              file=sys.stderr)
        return 130
    except Exception as e:
        if page is not None:
            page.stop()
        if out_of_memory(e):
            raise UserError(_out_of_memory_text(trainer, directory)) from None
        raise
    except BaseException:
        if page is not None:
            page.stop()
        raise
    views = trainer.net.view_count()  # (test-time augmentation: --tta-shift, --tta)
    print(f"test accuracy {result.test_accuracy:.2%} on {format_count(len(trainer.data.test))} "
          f"test images ({'best' if len(trainer.val) else 'last'} epoch {result.best_epoch} of "
          f"{config.epochs}; {format_duration(result.seconds)}"
          f"{f'; {views} views of each image voting' if views > 1 else ''})")
    recalls = [f"{name} {value:.1%}" for name, value in result.recall.items()
               if value is not None]
    if recalls and len(recalls) <= 20:
        print("recall per class: " + ", ".join(recalls))
    elif recalls:
        worst = sorted(((v, n) for n, v in result.recall.items() if v is not None))[:5]
        print("lowest recall: " + ", ".join(f"{n} {v:.1%}" for v, n in worst))
    print(f"model: {directory / 'best'}   curve: {directory / 'curve.png'}   "
          f"metrics: {directory / 'metrics.jsonl'}")
    if page is not None:
        print(f"the page stays at {page.url} until Ctrl-C", flush=True)
        try:
            while page.thread.is_alive():
                page.thread.join(0.5)
        except KeyboardInterrupt:
            page.stop()
    return 0


def _out_of_memory_text(trainer, directory) -> str:
    """What ran out, the inspector's estimate, and the fix."""
    from .network import training_need
    from .resources import available_memory, bytes_text

    config = trainer.config
    need, _, per_image = training_need(trainer.net.shapes, config.dtype, config.batch_size)
    have = available_memory()
    where = "the GPU" if (config.device or "").startswith("cuda") else "memory"
    smaller = max(1, config.batch_size // 2)
    return (f"out of {where} while training: batches of {config.batch_size:,} need about "
            f"{bytes_text(need)} by convnet inspect's estimate ({bytes_text(per_image)} per "
            f"image){f', and {bytes_text(have)} is available now' if have else ''}; start "
            f"again with --batch-size {smaller} --force (replacing what {directory} holds)")


def _train_ensemble(config, directory, count: int, force: bool, at_once: int | None) -> int:
    """K models with consecutive seeds, then their ensemble, all under one directory."""
    from .ensemble import train_ensemble

    result = train_ensemble(config, Path(directory), count, force,
                            tell=lambda line: print(line, flush=True), at_once=at_once)
    for run, accuracy in result.members:
        print(f"{run}: test accuracy {accuracy:.2%}")
    print(f"ensemble of {count}: test accuracy {result.accuracy:.2%} → {result.directory}")
    return 0


def format_duration(seconds: float) -> str:
    """12.4 → "12 s", 103.2 → "1 min 43 s" (rounded once, so never "0 min 60 s")."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def format_count(n: int) -> str:
    return f"{n:,}"


def plural(n: int, noun: str) -> str:
    """1 epoch, 2 epochs, 1,000 images."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy, per-class precision and recall of a trained model",
                       description="Evaluates a model on a data set's test split (or a folder) "
                                   "and writes a confusion-matrix PNG.")
    p.add_argument("model", help="a model directory (or a training run: its best/)")
    p.add_argument("--data", help="data set or folder (default: the one it was trained on)")
    p.add_argument("--data-dir", help="where to look for data sets first")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--engine", choices=("numpy", "torch", "auto"), default="auto")
    p.add_argument("--device")
    p.add_argument("--confusion", metavar="FILE.png",
                   help="where to write the confusion matrix (default: MODEL/confusion.png)")
    p.add_argument("--mistakes", metavar="FILE.png",
                   help="where to draw the most confident mistakes "
                        "(default: MODEL/misclassified.png)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from . import checkpoint
    from .evaluate import data_for, evaluate
    from .figures import check_target, confusion_matrix, gallery

    for given in (args.confusion, args.mistakes):
        if given:
            check_target(Path(given))
    net, meta = checkpoint.load(args.model, engine=args.engine, device=args.device)
    data = data_for(meta, net.input_shape, args.data, args.data_dir)
    classes = list(meta["classes"])
    split = data.test if args.split == "test" else data.train
    report = evaluate(net, split.images, split.labels, classes)
    target = Path(args.confusion) if args.confusion else Path(meta["directory"]) / "confusion.png"
    mistakes = Path(args.mistakes) if args.mistakes else \
        Path(meta["directory"]) / "misclassified.png"
    wrong = np.flatnonzero(report.predicted != split.labels)
    worst = wrong[np.argsort(-report.confidence[wrong], kind="stable")][:24]
    try:
        confusion_matrix(report.confusion, classes, target,
                         f"{data.name} {args.split}: {report.accuracy:.2%}")
        gallery(split.images[worst], [classes[i] for i in split.labels[worst]],
                [classes[i] for i in report.predicted[worst]], report.confidence[worst],
                mistakes, f"the {len(worst)} most confident mistakes of {len(wrong):,} "
                f"({data.name} {args.split})")
    except OSError as e:  # asked for: an error; beside the model (read-only, full): a notice
        if args.confusion or args.mistakes:
            raise
        print(f"convnet: note: the figures were not written ({os_error_text(e)}); "
              "--confusion FILE and --mistakes FILE put them elsewhere", file=sys.stderr)
        target = mistakes = None  # type: ignore[assignment]
    if args.json:
        print(json.dumps({**report.to_json(), "data": data.name, "split": args.split,
                          "confusion_png": target and str(target),
                          "misclassified_png": mistakes and str(mistakes)},
                         indent=2))
    else:
        print(report.text())
        if target is not None:
            print(f"\nconfusion matrix: {target}   most confident mistakes: {mistakes}")
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="the most likely classes of images",
                       description="Prints each image's top classes with probabilities.")
    p.add_argument("model", help="a model directory (or a training run: its best/)")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, folders (every image in them and their subfolders; "
                        "other files are skipped and counted), or test:N for test image N of "
                        "the model's data set")
    p.add_argument("--top", type=_positive_int, default=3)
    p.add_argument("--engine", choices=("numpy", "torch", "auto"), default="auto")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from . import checkpoint
    from .api import predict_files

    net, meta = checkpoint.load(args.model, engine=args.engine, device=args.device)
    results, skipped = predict_files(net, args.images, args.top, meta)
    if skipped:
        print(f"convnet: note: skipped {plural(len(skipped), 'file')} in the folders that "
              f"{'is' if len(skipped) == 1 else 'are'} not a readable image, e.g. {skipped[0]}",
              file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            best = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in r["top"])
            print(f"{r['image']}: {best}")
    return 0


def _one_network(model_dir: str, engine: str = "numpy"):
    """A checkpoint that holds one network (not an ensemble), for the commands that look at
    a network's layers."""
    from . import checkpoint

    net, meta = checkpoint.open_model(model_dir, engine=engine)
    if meta.get("kind") == "ensemble":
        raise UserError(f"{model_dir} is an ensemble of {len(meta['members'])} models; this "
                        f"looks at one network: give a member, e.g. {meta['directory']}/"
                        f"{meta['members'][0]}")
    return net, meta


def _network_and_voter(model_dir: str):
    """For show: the network whose layers are drawn, its metadata, and the ensemble whose
    probabilities answer (None for a single model)."""
    from .web.source import network_and_voter

    net, meta, voter, notes = network_and_voter(model_dir)
    for note in notes:
        print(f"convnet: note: {note}", file=sys.stderr)
    return net, meta, voter


def _add_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="every layer's activation maps for one image, as a PNG",
                       description="Draws the input, each layer's activation maps (labelled "
                                   "with the layer, its shape HxWxC and a colour scale), the "
                                   "first layer's filters and the class probabilities.")
    p.add_argument("model", help="a model directory (or a training run: its best/), or a "
                                      "network by name, e.g. resnet18, with random weights")
    p.add_argument("image", help="an image file, or test:N for test image N of the model's "
                                 "data set")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--layer", action="append", metavar="N|NAME",
                   help="only these layers (numbers or names like conv, relu; repeatable)")
    p.add_argument("--cell", metavar="LAYER,ROW,COL,MAP",
                   help="also print how layer LAYER made the number at ROW, COL of map MAP: for "
                        "a conv W·x + b and the ReLU after it, for pooling the window's largest "
                        "value or mean, for an fc unit MAP (ROW, COL 0) W·x + b (all counted "
                        "from 0; a block's layers are named like 3.inner.0)")
    p.add_argument("--lang", choices=("en", "ko"), default="en",
                   help="language of the --cell text (ko: Korean)")
    p.set_defaults(run=_run_show)


def _run_show(args: argparse.Namespace) -> int:
    from .api import image_from
    from .figures import check_target, inside_figure
    from .inside import activations, conv_filters, pick_layers

    check_target(Path(args.out))
    net, meta, voter = _network_and_voter(args.model)
    image = image_from(args.image, net.input_shape, meta)
    chosen = pick_layers(net.shapes, args.layer)
    views = activations(net, image, voter)
    cell = None
    if args.cell is not None:  # checked before anything is drawn
        from .by_hand import one_number

        found = re.fullmatch(r"\s*(\d+(?:\.(?:inner|shortcut)\.\d+)*)\s*,\s*(\d+)\s*,"
                             r"\s*(\d+)\s*,\s*(\d+)\s*", args.cell)
        if found is None:
            raise UserError(f"--cell {args.cell!r}: give LAYER,ROW,COL,MAP as whole numbers "
                            "from 0, e.g. 0,14,14,2 (a layer inside a block: 3.inner.0)")
        layer, row, column, channel = found.group(1), *(int(v) for v in found.groups()[1:])
        cell = one_number(net, views, image, layer, row, column, channel)
    everything = not args.layer  # --layer draws those layers alone (and the answer above)
    shown = views[:-1] if everything else [v for v in views if v.index in chosen]
    filters = conv_filters(net)
    first_conv = filters[0] if filters else None
    drawn_filters = first_conv[1] if first_conv is not None and (
        everything or first_conv[0].index in chosen) else None
    probs = views[-1].values
    path = inside_figure(image, shown, drawn_filters, list(meta["classes"]), Path(args.out),
                         probabilities=probs)
    best = int(probs.argmax())
    print(f"{args.image}: {meta['classes'][best]} {probs[best]:.1%}; "
          f"{plural(len(shown), 'layer')} drawn → {path}")
    if cell is not None:
        from .by_hand import one_number_text

        print("\n".join(one_number_text(cell, lang=args.lang)))
    return 0


def _add_filters(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("filters", help="the learned filters of each conv layer, as a PNG")
    p.add_argument("model", help="a model directory (or a training run: its best/), or a "
                                      "network by name, e.g. resnet18, with random weights")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.set_defaults(run=_run_filters)


def _run_filters(args: argparse.Namespace) -> int:
    from .figures import check_target, filters_figure
    from .inside import conv_filters
    from .spec import layer_to_string

    check_target(Path(args.out))
    net, _ = _one_network(args.model)
    layers = [(f"{s.index} {layer_to_string(s.layer)}", w) for s, w in conv_filters(net)]
    if not layers:
        raise UserError("this network has no conv layer, so no filters to draw")
    path = filters_figure(layers, Path(args.out))
    print(f"{len(layers)} conv layer(s) drawn → {path}")
    return 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a local web page to look inside a trained model",
                       description="Serves a page (and a JSON API, schema at /openapi.json) "
                                   "where you upload, draw or pick an image and see every "
                                   "layer's activation maps with their arithmetic.")
    p.add_argument("model", help="a model directory, a training run (watched: its newest "
                                 "checkpoint, reloaded after every epoch), or a network by "
                                 "name, e.g. resnet18, with random weights")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; "
                        "0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another name the page may be opened at (e.g. behind a proxy); "
                        "requests for names not allowed are refused (repeatable)")
    p.add_argument("--data-dir", help="where to find the data set's test images for examples")
    p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from .web.serve import serve

    return serve(args.model, host=args.host, port=args.port, allow_hosts=args.allow_host,
                 data_dir=args.data_dir)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="a trained model as ONNX",
                       description="Writes an ONNX file that takes float32 N×H×W×C images with "
                                   "values 0–1 and gives class probabilities, as predict does.")
    p.add_argument("model", help="a model directory (or a training run: its best/), or a "
                                      "network by name, e.g. resnet18, with random weights")
    p.add_argument("--onnx", required=True, metavar="FILE.onnx")
    p.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from .export import export_onnx
    from .files import existing_folder

    existing_folder(Path(args.onnx))

    result = export_onnx(args.model, Path(args.onnx), args.opset)
    print(f"{result['path']}: input images float32 N×{'×'.join(map(str, result['input'][1:]))} "
          f"(0–1), output probabilities of {len(result['classes'])} classes, "
          f"ONNX opset {result['opset']}")
    return 0


def _add_ensemble(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ensemble", help="several trained models voting: accuracy, and saving",
                       description="Evaluates each model and their ensemble (mean of the softmax "
                                   "probabilities, and sum of the logits) on a data set; --out "
                                   "saves it as one model directory for eval and predict.")
    p.add_argument("models", nargs="+", metavar="DIR")
    p.add_argument("--data", help="data set or folder (default: the first model's)")
    p.add_argument("--data-dir")
    p.add_argument("--combine", choices=("softmax", "logits"), default="softmax",
                   help="how a saved ensemble combines its members (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", help="save the ensemble here")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--engine", choices=("numpy", "torch", "auto"), default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_run_ensemble)


def _run_ensemble(args: argparse.Namespace) -> int:
    from . import checkpoint
    from .ensemble import Ensemble, check_classes, save
    from .evaluate import data_for, report

    if len(args.models) < 2:
        raise UserError("an ensemble needs at least two models")
    loaded = [checkpoint.load(m, engine=args.engine) for m in args.models]
    classes = check_classes([meta for _, meta in loaded])
    if any(meta.get("kind") == "ensemble" for _, meta in loaded):
        raise UserError("give the models themselves, not a saved ensemble")
    nets = [net for net, _ in loaded]
    ensembles = {c: Ensemble(nets, classes, c) for c in ("softmax", "logits")}
    if args.out and Path(args.out).exists() and not args.force:
        raise UserError(f"{args.out} already exists; use --force to replace it")
    data = data_for(loaded[0][1], nets[0].input_shape, args.data, args.data_dir)
    test = data.test
    scores = [net.logits(test.images) for net in nets]  # each member's once, for every row
    rows = [(meta["directory"], report(s, test.labels, classes).accuracy)
            for s, (_, meta) in zip(scores, loaded)]
    rows += [(f"ensemble, {'mean of softmax' if c == 'softmax' else 'sum of logits'}",
              report(e.vote(scores), test.labels, classes).accuracy)
             for c, e in ensembles.items()]
    if args.out:
        save(ensembles[args.combine], [meta for _, meta in loaded], Path(args.out))
    if args.json:
        print(json.dumps({"data": data.name, "images": len(test),
                          "accuracy": {name: acc for name, acc in rows},
                          "saved": args.out}, indent=2))
    else:
        width = max(len(name) for name, _ in rows)
        for name, accuracy in rows:
            print(f"{name:<{width}}  {accuracy:.2%}")
        if args.out:
            print(f"saved: {args.out} (combines by {args.combine})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convnet", description="The ConvNet of lecture 11, as software.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"convnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_inspect(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_predict(sub)
    _add_show(sub)
    _add_filters(sub)
    _add_serve(sub)
    _add_export(sub)
    _add_ensemble(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except UserError as e:
        print(f"convnet: error: {e}", file=sys.stderr)
        if e.context:
            print(e.context, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (MemoryError, ImportError) as e:
        from .resources import available_memory, bytes_text, out_of_memory

        if not out_of_memory(e):  # an ImportError that is not the loader short of memory
            raise
        have = available_memory()
        print(f"convnet: error: out of memory"
              f"{f' ({bytes_text(have)} available now)' if have is not None else ''}; "
              "a smaller --batch-size, input or network needs less (convnet inspect shows "
              "each layer's share)", file=sys.stderr)
        return 2
    except OSError as e:  # the file system refused: a path too long, no permission, disk full
        print(f"convnet: error: {os_error_text(e)}", file=sys.stderr)
        return 2


def os_error_text(e: OSError) -> str:
    """'No space left on device: runs/x/best' — the system's words and the file, shortened."""
    name = str(e.filename) if e.filename is not None else ""
    if len(name) > 80:
        name = name[:40] + "…" + name[-20:]
    reason = e.strerror or str(e) or type(e).__name__
    return f"{reason}: {name}" if name else reason


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
