"""The `python -m brat` command line: every capability of the app, scriptable.

Errors a user can cause print one line ("error: ...") and exit with status 1; bad arguments exit
with status 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from brat import DISCLAIMER, __version__
from brat.errors import BratError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
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

    scan = commands.add_parser(
        "scan",
        help="count images, find unreadable files, duplicates and split leaks",
        description="Read every image of a dataset folder once and report counts per split and "
        "class, image sizes and modes, unreadable files, exact and near-duplicate clusters, and "
        "leaks across existing Training/Testing splits.",
    )
    scan.add_argument("data", type=Path, help="dataset folder")
    scan.add_argument(
        "--json", type=Path, metavar="OUT", help="write the full report here ('-' for stdout)"
    )
    scan.add_argument("--quiet", action="store_true", help="no progress bar")
    scan.set_defaults(handler=_scan)

    split = commands.add_parser(
        "split",
        help="write a group-aware, stratified train/val/test manifest",
        description="Split a dataset so that no patient group or near-duplicate cluster crosses "
        "train, validation and test, stratified by class and seeded. A Testing/ folder stays the "
        "test set unless --resplit-test is given.",
    )
    split.add_argument("data", type=Path, help="dataset folder")
    split.add_argument(
        "--out", type=Path, required=True, metavar="MANIFEST.csv", help="manifest to write"
    )
    split.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    split.add_argument(
        "--ratios",
        type=_ratios,
        default=(0.7, 0.2, 0.1),
        metavar="TRAIN,VAL,TEST",
        help="split ratios (default 0.7,0.2,0.1)",
    )
    split.add_argument(
        "--leaks",
        choices=("drop", "move"),
        default="drop",
        help="Training copies of Testing images: leave out (drop, default) or move to test",
    )
    split.add_argument(
        "--resplit-test",
        action="store_true",
        help="ignore an existing Testing/ folder and split all images by --ratios",
    )
    split.add_argument("--quiet", action="store_true", help="no progress bar")
    split.set_defaults(handler=_split)

    download = commands.add_parser(
        "download",
        help="download a public Kaggle brain-MRI dataset (needs a network)",
        description="Fetch a Kaggle dataset with kagglehub and copy it to --out.",
    )
    download.add_argument(
        "--dataset",
        choices=("sartaj", "nickparvar"),
        default="sartaj",
        help="sartaj: Brain Tumor Classification (MRI); nickparvar: Brain Tumor MRI Dataset",
    )
    download.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder to copy it to"
    )
    download.set_defaults(handler=_download)
    return parser


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected three numbers like 0.7,0.2,0.1, got {text!r}"
        ) from None
    if len(values) != 3 or any(v < 0 for v in values) or sum(values) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected three non-negative numbers like 0.7,0.2,0.1, got {text!r}"
        )
    return values  # type: ignore[return-value]


def _scan(args: argparse.Namespace) -> int:
    from brat.scan import scan_report, timed_scan

    scanned, seconds = timed_scan(args.data, progress=not args.quiet)
    report = scan_report(scanned, seconds)
    if args.json:
        _write_json(report, args.json)
    if str(args.json) != "-":
        print(
            f"{report['images']} images in {report['layout']} layout ({seconds:.1f} s): "
            + ", ".join(f"{name} {count}" for name, count in report["classes"].items())
        )
        print(
            f"unreadable {len(report['unreadable'])}, exact duplicate clusters "
            f"{report['exact_duplicate_clusters']}, near-duplicate clusters "
            f"{report['near_duplicate_clusters']} ({report['distinct_images']} distinct images), "
            f"cross-split leak clusters {report['cross_split_leak_clusters']} "
            f"({report['cross_split_leak_files']} files)"
        )
        for warning in report["warnings"]:
            print(f"warning: {warning}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from brat.scan import scan_dataset
    from brat.split import SplitConfig, make_split, write_manifest

    config = SplitConfig(
        ratios=args.ratios,
        seed=args.seed,
        keep_existing_test=not args.resplit_test,
        leaks=args.leaks,
    )
    scanned = scan_dataset(args.data, progress=not args.quiet)
    result = make_split(scanned.dataset, scanned.duplicates, config, set(scanned.unreadable))
    write_manifest(result.rows, args.out)
    counts = Counter((row.split, row.label) for row in result.rows)
    groups = Counter(row.split for row in {(r.split, r.group): r for r in result.rows}.values())
    print(f"wrote {args.out}: {len(result.rows)} images")
    for split in ("train", "val", "test"):
        per_class = ", ".join(
            f"{label} {n}" for (s, label), n in sorted(counts.items()) if s == split
        )
        total = sum(n for (s, _), n in counts.items() if s == split)
        print(f"  {split}: {total} images in {groups[split]} groups ({per_class})")
    if result.dropped_leaks:
        print(f"  left out {len(result.dropped_leaks)} Training copies of Testing images")
    if result.moved_leaks:
        print(f"  moved {len(result.moved_leaks)} Training copies of Testing images to test")
    if result.excluded:
        print(f"  excluded {len(result.excluded)} unlabelled or unreadable images")
    return 0


def _download(args: argparse.Namespace) -> int:
    from brat.download import download_dataset

    path = download_dataset(args.dataset, args.out)
    print(f"downloaded to {path}")
    return 0


def _write_json(data: dict, destination: Path) -> None:
    text = json.dumps(data, indent=2)
    if str(destination) == "-":
        print(text)
        return
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise BratError(f"Cannot write {destination} ({error}).") from error
