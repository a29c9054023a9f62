"""The `convnet` command line. Each subcommand parses its options and calls into the package.

Every mistake a user can make ends here as one line on stderr and exit status 2 (`UserError`);
argparse's own errors are made to look the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line and exit status 2 like every other mistake."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see {self.prog} --help)")


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect", help="every layer's shape, weights and cost, explained",
        description="Shows every layer's output shape (HxWxC), weights, multiply-adds, receptive "
                    "field and activation memory, computed with (N − F + 2P)/S + 1.",
        epilog='example: convnet inspect "conv(6,5) relu pool(2) fc(10)" --input 32x32x3 --explain',
    )
    p.add_argument("description", help="the network, e.g. 'conv(6,5) relu pool(2) fc(10)', "
                                        "or a file that holds one")
    p.add_argument("--input", metavar="HxWxC", help="input shape, e.g. 32x32x3 (unless the "
                                                    "description starts with it)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the figures as JSON")
    shown.add_argument("--explain", action="store_true",
                       help="write each layer's arithmetic the way the lecture does")
    p.add_argument("--lang", choices=("en", "ko"), default="en",
                   help="language of --explain (ko: Korean)")
    p.add_argument("--floor", action="store_true",
                   help="accept strides that don't fit by flooring, as PyTorch does")
    p.set_defaults(run=_run_inspect)


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
    from . import inspector, spec

    network = spec.load(args.description, floor=args.floor)
    shape = resolve_input(network.input, args.input)
    if args.json:
        print(json.dumps(inspector.as_json(network, shape), indent=2))
    elif args.explain:
        print(inspector.explain(network, shape, lang=args.lang))
    else:
        print(inspector.table(network, shape))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convnet", description="The ConvNet of lecture 11, as software.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"convnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_inspect(sub)
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


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
