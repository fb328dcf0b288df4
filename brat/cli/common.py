"""Options and output helpers the command groups share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from brat.errors import BratError


def data_option(parser: argparse.ArgumentParser, help: str) -> None:
    """DATA: one or more dataset folders, read as one (`brat.data.folders`); `main` turns the
    list into the folder to read."""
    parser.add_argument(
        "data",
        type=Path,
        nargs="+",
        metavar="DATA",
        help=f"{help}; several folders are read as one dataset",
    )


def label_decisions_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--label-decisions",
        type=Path,
        metavar="DECISIONS.csv",
        help="path,label rows (a class, or exclude) settling copies filed under different labels; "
        "without one such copies are left out (`brat scan` lists them)",
    )


def read_decisions(args: argparse.Namespace) -> dict[str, str] | None:
    if not getattr(args, "label_decisions", None):
        return None
    from brat.data.split import read_label_decisions

    return read_label_decisions(args.label_decisions)


def keep_split_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-split",
        type=Path,
        metavar="MODEL",
        help="keep the images of this model folder's manifest in its splits (its test images "
        "stay held out; copies of them in other folders join them); new images are split by "
        "the ratios",
    )


def kept_split(args: argparse.Namespace) -> dict[str, str] | None:
    """path -> split of the --keep-split model's manifest, its paths named as in DATA: prefixed
    with their folder when several folders are read as one."""
    if not getattr(args, "keep_split", None):
        return None
    from brat.model_folder import read_meta, read_model_manifest

    data = read_meta(args.keep_split).data
    several = len(args.folders) > 1
    return {
        f"{row.folder or data}/{row.path}" if several and not row.folder else row.path: row.split
        for row in read_model_manifest(args.keep_split)
    }


# How VOLUMES is given to the commands that read labelled volumes (brat.data.volumes).
VOLUMES_HELP = (
    "VOLUMES: class folders of NIfTI volumes or DICOM series folders, or a volumes.csv / --labels "
    "CSV with columns path,label[,group,mask,source]"
)


def volumes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("volumes", type=Path, metavar="VOLUMES", help="folder of volumes")
    parser.add_argument("--labels", type=Path, metavar="CSV", help="the volume list")


def model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, metavar="DIR", help="model folder (default: the app's active model)"
    )


def site_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site",
        metavar="NAME",
        help="answer with this site's calibration (a site profile of the model, fitted by `brat "
        "calibrate-site` or `brat adapt`)",
    )


def error_rate_option(parser: argparse.ArgumentParser) -> None:
    from brat.inference.conformal import ERROR_RATE

    parser.add_argument(
        "--error-rate",
        type=float,
        default=ERROR_RATE,
        metavar="RATE",
        help="the prediction sets' error rate: the share of scans whose true class may fall "
        f"outside the set (default {ERROR_RATE})",
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
