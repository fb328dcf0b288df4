"""Dataset commands: scan, split, download, planes."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from brat.cli.common import (
    VOLUMES_HELP,
    data_option,
    keep_split_option,
    kept_split,
    label_decisions_option,
    model_option,
    planes_option,
    read_decisions,
    volumes_option,
    with_planes,
    write_json,
)
from brat.data.volumes import MARGIN, MAX_SLICES


def add_commands(commands) -> None:
    scan = commands.add_parser(
        "scan",
        help="count images, find unreadable files, duplicates and split leaks",
        description="Read every image of a dataset folder once and report counts per split and "
        "class, image sizes and modes, unreadable files, exact and near-duplicate clusters, and "
        "leaks across existing Training/Testing splits.",
    )
    data_option(scan, "dataset folder")
    scan.add_argument(
        "--json", type=Path, metavar="OUT", help="write the full report here ('-' for stdout)"
    )
    planes_option(scan)
    scan.add_argument("--quiet", action="store_true", help="no progress bar")
    scan.set_defaults(handler=_scan)

    split = commands.add_parser(
        "split",
        help="write a group-aware, stratified train/val/test manifest",
        description="Split a dataset so that no patient group or near-duplicate cluster crosses "
        "train, validation and test, stratified by class and seeded. A Testing/ folder stays the "
        "test set unless --resplit-test is given.",
    )
    data_option(split, "dataset folder")
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
    split.add_argument(
        "--hold-out",
        metavar="FOLDER",
        help="with several DATA folders: test on this folder's images that have no copy in the "
        "others, train and validate on the rest (leave one source out)",
    )
    split.add_argument(
        "--hold-out-fold",
        metavar="I/K",
        type=_fold,
        help="with --hold-out: test on fold I (1..K) of K patient-grouped folds of those new "
        "images and train on the other folds too; one split per fold gives cross-validated "
        "new-source accuracy (what a user gets when their kind of scan is in training)",
    )
    label_decisions_option(split)
    keep_split_option(split)
    planes_option(split)
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

    slices = commands.add_parser(
        "slices",
        help="cut labelled volumes into a slice dataset at every level and plane",
        description="Cuts every labelled volume into PNG slices in each view plane it can be cut "
        "in, from the skull base to the vertex, and writes them "
        "under OUT as a dataset folder (class folders, masks/, metadata.csv with each slice's "
        "patient group, plane and level) that every command reads. A healthy head's slices are "
        "no_tumor; a masked tumour volume's are its class where the tumour shows, no_tumor "
        "more than --margin slices away from it, and left out in between (brat.data.volumes). "
        f"{VOLUMES_HELP}.",
    )
    volumes_option(slices)
    slices.add_argument("--out", type=Path, required=True, metavar="DIR", help="a new folder")
    slices.add_argument(
        "--max-slices",
        type=int,
        default=MAX_SLICES,
        metavar="N",
        help=f"slices per volume and plane, evenly spaced (default {MAX_SLICES})",
    )
    slices.add_argument(
        "--margin",
        type=int,
        default=MARGIN,
        metavar="N",
        help=f"slices this close to the tumour's mask are left out (default {MARGIN})",
    )
    slices.set_defaults(handler=_slices)

    planes = commands.add_parser(
        "planes",
        help="view plane (axial, coronal, sagittal) of every image of a folder",
        description="Writes path,plane,confidence,source,error for every image of DATA (a "
        "dataset folder, or any folder of images, flat and unlabelled): the hand label of "
        "metadata.csv where there is one (source label), else the model's plane classifier "
        "(source predicted). `brat split --planes` and `brat train --planes` read it.",
    )
    data_option(planes, "dataset folder or folder of images")
    planes.add_argument("--csv", type=Path, required=True, metavar="OUT", help="output CSV")
    model_option(planes)
    planes.add_argument("--quiet", action="store_true", help="no progress bar")
    planes.set_defaults(handler=_planes)


def _slices(args: argparse.Namespace) -> int:
    from brat.data.volumes import find_volumes, write_slice_dataset

    volumes = find_volumes(args.volumes, args.labels)
    report = write_slice_dataset(
        args.volumes, volumes, args.out, max_slices=args.max_slices, margin=args.margin
    )
    classes = ", ".join(f"{label} {n}" for label, n in report["classes"].items())
    planes = ", ".join(f"{plane} {n}" for plane, n in report["planes"].items())
    print(f"wrote {args.out}: {report['slices']} slices ({classes}; {planes})")
    for reason in report["skipped"]:
        print(f"  skipped {reason}")
    return 0


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
    from brat.data.scan import scan_summary, timed_scan

    scanned, seconds = timed_scan(args.data, progress=not args.quiet)
    planes = None
    if args.planes:
        from brat.inference.planes import read_plane_csv

        planes = read_plane_csv(args.planes)
    summary = scan_summary(scanned, seconds, planes)
    if args.json:
        write_json(summary.to_json(), args.json)
    if str(args.json) != "-":
        print(
            f"{summary.images} images in {summary.layout} layout ({seconds:.1f} s): "
            + ", ".join(f"{name} {count}" for name, count in summary.classes.items())
        )
        print(
            f"unreadable {len(summary.unreadable)}, exact duplicate clusters "
            f"{summary.exact_duplicate_clusters}, near-duplicate clusters "
            f"{summary.near_duplicate_clusters} ({summary.distinct_images} distinct images), "
            f"cross-split leak clusters {summary.cross_split_leak_clusters} "
            f"({summary.cross_split_leak_files} files)"
        )
        if len(summary.folders) > 1:
            for name, counts in summary.folders.items():
                print(
                    f"{name}: {counts['images']} images, {counts['with_copies_elsewhere']} with a "
                    f"copy in another folder, {counts['new']} new"
                )
        if summary.label_conflict_clusters:
            print(
                f"label conflicts: {summary.label_conflict_clusters} clusters of copies filed "
                "under different labels (left out of splits unless --label-decisions settles "
                "them; listed in --json under clusters.label_conflicts)"
            )
        for warning in summary.warnings:
            print(f"warning: {warning}")
    return 0


def _fold(text: str) -> tuple[int, int]:
    """ "I/K" (fold I of K, counted from 1) as (I - 1, K)."""
    try:
        fold, folds = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"I/K, like 1/3. Received: {text!r}") from None
    if not 1 <= fold <= folds:
        raise argparse.ArgumentTypeError(f"I must be 1 to K. Received: {text!r}")
    return fold - 1, folds


def _split(args: argparse.Namespace) -> int:
    from brat.data.manifest import write_manifest
    from brat.data.split import SplitConfig, split_dataset

    config = SplitConfig(
        ratios=args.ratios,
        seed=args.seed,
        keep_existing_test=not args.resplit_test,
        leaks=args.leaks,
        hold_out=args.hold_out,
        hold_out_fold=args.hold_out_fold,
    )
    result = split_dataset(
        args.data,
        config,
        decisions=read_decisions(args),
        keep=kept_split(args),
        progress=not args.quiet,
    )
    rows = with_planes(result.rows, args.planes)
    write_manifest(rows, args.out)
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
    if result.conflicts:
        print(
            f"  left out {sum(map(len, result.conflicts))} copies filed under different labels "
            f"({len(result.conflicts)} clusters; settle them with --label-decisions)"
        )
    if result.excluded:
        print(f"  excluded {len(result.excluded)} unlabelled, unreadable or conflicting images")
    return 0


def _download(args: argparse.Namespace) -> int:
    from brat.data.download import download_dataset

    path = download_dataset(args.dataset, args.out)
    print(f"downloaded to {path}")
    return 0


def _planes(args: argparse.Namespace) -> int:
    from brat.inference.classifier import load_classifier
    from brat.inference.planes import predict_planes, write_plane_csv

    predictions = predict_planes(args.data, load_classifier(args.model), progress=not args.quiet)
    write_plane_csv(predictions, args.csv)
    counts = Counter(p.plane or "unreadable" for p in predictions)
    labelled = sum(p.source == "label" for p in predictions)
    print(
        f"wrote {args.csv}: {len(predictions)} images ({labelled} hand-labelled): "
        + ", ".join(f"{plane} {n}" for plane, n in sorted(counts.items()))
    )
    return 0
