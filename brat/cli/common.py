"""Options and output helpers the command groups share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from brat.errors import BratError


def model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, metavar="DIR", help="model folder (default: the app's active model)"
    )


def planes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--planes",
        type=Path,
        metavar="PLANES.csv",
        help="view planes from `brat planes` for the images without a hand-labelled plane",
    )


def with_planes(rows: list, planes_csv: Path | None) -> list:
    if planes_csv is None:
        return rows
    from brat.inference.planes import read_plane_csv, with_predicted_planes

    return with_predicted_planes(rows, read_plane_csv(planes_csv))


def split_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split", choices=("test", "val", "train", "all"), default="test", help="default test"
    )


def write_json(data: dict | list, destination: Path) -> None:
    text = json.dumps(data, indent=2)
    if str(destination) == "-":
        print(text)
        return
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise BratError(f"Cannot write {destination} ({error}).") from error
