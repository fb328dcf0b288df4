"""The `python -m brat` command line: every capability of the app, scriptable.

Errors a user can cause print one line ("error: ...") and exit with status 1; bad arguments exit
with status 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import sys

from brat import DISCLAIMER, __version__
from brat.cli import audit, data, evaluation, inference, sites, training
from brat.errors import BratError


def main(argv: list[str] | None = None) -> int:
    from brat.inference.serving import limit_blas_threads

    limit_blas_threads()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        if isinstance(getattr(args, "data", None), list):
            from brat.data.folders import dataset_root

            args.folders, args.data = args.data, dataset_root(args.data)
        return args.handler(args) or 0
    except BratError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m brat",
        description=f"BraTum Scans {__version__}: brain MRI tools. {DISCLAIMER}",
    )
    parser.add_argument("--version", action="version", version=f"brat {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in (data, training, sites, inference, evaluation, audit):
        group.add_commands(commands)
    return parser
