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

from brat import CLASSES, DISCLAIMER, __version__
from brat.errors import BratError
from brat.labels import METHODS, PLANES, SHOWN_METHOD
from brat.model import MASK_TARGETS
from brat.train_config import AUGMENTATIONS, SCHEDULES


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
    _planes_option(scan)
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
    _planes_option(split)
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

    train = commands.add_parser(
        "train",
        help="train a MobileNetV2 classifier on a split dataset",
        description="Train on the train split, select and calibrate on the val split, and write "
        "the model folder (model.keras, brat.json, history.json, manifest.csv) atomically. Run "
        "the same command again after a crash to resume from the last completed epoch.",
    )
    train.add_argument("data", type=Path, help="dataset folder")
    train.add_argument("--out", type=Path, required=True, metavar="DIR", help="model folder")
    train.add_argument(
        "--manifest",
        type=Path,
        metavar="M.csv",
        help="split manifest from `brat split` (default: split DATA now with the defaults)",
    )
    _planes_option(train)
    _training_options(train)
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="measure a model on a split of its manifest, or on every image of a folder",
        description="Accuracy with its Wilson 95% interval, tumour-class accuracy, per-class "
        "precision/recall/F1, macro-F1, confusion matrix, ECE before and after calibration, and "
        "the misclassified files. A named split uses the manifest stored with the model, with "
        "paths relative to DATA; --split all evaluates every labelled image of DATA.",
    )
    evaluate.add_argument("data", type=Path, help="dataset folder")
    _model_option(evaluate)
    _split_option(evaluate)
    evaluate.add_argument("--json", type=Path, metavar="OUT", help="write the report ('-': stdout)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(handler=_evaluate)

    crossval = commands.add_parser(
        "crossval",
        help="patient-level cross-validation: train and evaluate on group-aware folds",
        description="No patient group or near-duplicate cluster is in two folds. Round i tests "
        "on fold i, validates on fold i+1 and trains on the rest; the report gives every metric "
        "per round with its mean and standard deviation. Rounds are kept in --work, so a "
        "stopped run resumes.",
    )
    crossval.add_argument("data", type=Path, help="dataset folder")
    crossval.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    crossval.add_argument("--json", type=Path, required=True, metavar="OUT", help="report file")
    crossval.add_argument(
        "--work", type=Path, metavar="DIR", help="folder for the rounds (default: OUT's name)"
    )
    crossval.add_argument(
        "--val-share",
        type=float,
        default=1.0,
        metavar="F",
        help="share of fold i+1 that validates; its other groups train too (default 1: the "
        "whole fold; 0.5 with 5 folds trains on 70%% of the images, as the shipped split does)",
    )
    _training_options(crossval)
    crossval.set_defaults(handler=_crossval)

    explain = commands.add_parser(
        "explain",
        help="classify scans and write heatmap overlays (original | overlay) as PNG",
        description="For each FILE: the calibrated prediction and a class-activation map on the "
        "original image, written to DIR as NAME-METHOD.png. Unreadable files are reported and "
        "skipped.",
    )
    explain.add_argument("files", type=Path, nargs="+", metavar="FILE", help="scans to explain")
    explain.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    explain.add_argument(
        "--method",
        choices=METHODS,
        default=SHOWN_METHOD,
        help=f"default {SHOWN_METHOD}, the one that points at the tumour most often",
    )
    explain.add_argument(
        "--target-class", choices=CLASSES, help="class to explain (default: the predicted one)"
    )
    explain.add_argument("--opacity", type=float, default=0.45, help="heatmap opacity, 0-1")
    _model_option(explain)
    explain.set_defaults(handler=_explain)

    localize = commands.add_parser(
        "localize",
        help="measure whether heatmaps point at the tumour masks",
        description="For every image of the split (from the model's manifest) that has a tumour "
        "mask: pointing game (heatmap maximum inside the mask, 15 px tolerance), heat inside the "
        "mask against the mask's area share, and IoU of the hottest 15% with the mask; per "
        "method, class and plane, with the worst cases.",
    )
    localize.add_argument("data", type=Path, help="dataset folder")
    _model_option(localize)
    _split_option(localize)
    localize.add_argument(
        "--methods", default=",".join(METHODS), help="comma-separated (default: all)"
    )
    localize.add_argument("--limit", type=int, help="only the first N masked images")
    localize.add_argument("--json", type=Path, metavar="OUT", help="write the report ('-': stdout)")
    localize.add_argument("--quiet", action="store_true", help="no progress bar")
    localize.set_defaults(handler=_localize)

    card = commands.add_parser(
        "card",
        help="write a model folder's MODEL_CARD.md from its measured numbers",
        description="Render MODEL/MODEL_CARD.md from brat.json, evaluation-test.json, "
        "crossval.json and the hand-written notes.md found in the model folder.",
    )
    card.add_argument("model", type=Path, help="model folder")
    card.set_defaults(handler=_card)

    predict = commands.add_parser(
        "predict",
        help="classify scans; say which are not brain MRI slices",
        description="Per file: label, calibrated probabilities, in_distribution and ood_score "
        "(higher = less like a brain MRI slice), verdict (the label, 'uncertain' or 'not a brain "
        "MRI'), or error for a file that cannot be read. One bad file never stops the others.",
    )
    predict.add_argument(
        "files", nargs="+", type=Path, help="image files (JPEG, PNG, BMP, TIFF, DICOM)"
    )
    predict.add_argument(
        "--json", type=Path, default=Path("-"), metavar="OUT", help="default stdout"
    )
    _model_option(predict)
    predict.set_defaults(handler=_predict)

    ood = commands.add_parser(
        "ood",
        help="fit a model's not-a-brain-MRI check on its training images",
        description="Fits the out-of-distribution check (brat.ood) of a model folder on the "
        "train split of its manifest, sets the threshold on the val split, and saves ood.npz "
        "in the folder. `brat train` does this for every new model.",
    )
    ood.add_argument("data", type=Path, help="dataset folder the model was trained on")
    _model_option(ood)
    ood.set_defaults(handler=_ood)

    planes = commands.add_parser(
        "planes",
        help="view plane (axial, coronal, sagittal) of every image of a folder",
        description="Writes path,plane,confidence,source,error for every image of DATA (a "
        "dataset folder, or any folder of images, flat and unlabelled): the hand label of "
        "metadata.csv where there is one (source label), else the model's plane classifier "
        "(source predicted). `brat split --planes` and `brat train --planes` read it.",
    )
    planes.add_argument("data", type=Path, help="dataset folder or folder of images")
    planes.add_argument("--csv", type=Path, required=True, metavar="OUT", help="output CSV")
    _model_option(planes)
    planes.add_argument("--quiet", action="store_true", help="no progress bar")
    planes.set_defaults(handler=_planes)

    fit_planes = commands.add_parser(
        "fit-planes",
        help="fit a model's plane classifier on the plane-labelled images of a dataset",
        description="Cross-validates (5 patient-grouped folds) a logistic regression on the "
        "model's pooled features of DATA's plane-labelled images (metadata.csv plane column), "
        "reports it, then fits on all of them and saves planes.npz in the model folder.",
    )
    fit_planes.add_argument("data", type=Path, help="dataset folder with plane labels")
    fit_planes.add_argument("--json", type=Path, default=Path("-"), metavar="OUT")
    _model_option(fit_planes)
    fit_planes.set_defaults(handler=_fit_planes)

    compare = commands.add_parser(
        "compare",
        help="one model for all view planes against one model per plane, on the same test images",
        description="Evaluates the combined model (--model) and the three per-plane models on "
        "the combined model's held-out split, per plane: n, accuracy with its Wilson interval, "
        "tumour-class accuracy, macro-F1, ECE; and over all planes, the combined model against "
        "sending each image to its plane's model. Per-plane models default to the folders "
        "MODEL-axial, MODEL-coronal and MODEL-sagittal next to the combined model; train them "
        "with `brat train --manifest MODEL/manifest.csv --planes PLANES.csv --plane P`.",
    )
    compare.add_argument("data", type=Path, help="dataset folder the models were trained on")
    compare.add_argument("--json", type=Path, default=Path("-"), metavar="OUT")
    _model_option(compare)
    for plane in PLANES:
        compare.add_argument(
            f"--{plane}",
            type=Path,
            metavar="DIR",
            help=f"the {plane} model (default MODEL-{plane})",
        )
    _split_option(compare)
    compare.set_defaults(handler=_compare)

    bench = commands.add_parser(
        "bench",
        help="measure speed and memory on this machine",
        description="Cold start, warm brat.analyze p50/p95 against the peer path (model.predict "
        "+ tf-keras-vis Gradcam per image) on the same images, batch and training throughput, "
        "peak RSS. Images: the model's test split in --data, else generated slices.",
    )
    bench.add_argument("--json", type=Path, default=Path("-"), metavar="OUT")
    bench.add_argument("--data", type=Path, help="dataset folder the model was trained on")
    bench.add_argument("--images", type=int, default=40, help="images to time (default 40)")
    bench.add_argument("--quick", action="store_true", help="a few images (a smoke test)")
    _model_option(bench)
    bench.set_defaults(handler=_bench)

    export = commands.add_parser(
        "export",
        help="export a model for TensorFlow Serving, TensorFlow Lite or ONNX Runtime",
        description="Writes the classifier (prepared slice in, logits out) in the chosen format, "
        "with brat.json (classes, calibration temperature, input contract) beside it.",
    )
    export.add_argument("--format", choices=("savedmodel", "tflite", "onnx"), required=True)
    export.add_argument("--out", type=Path, required=True, help="output folder")
    _model_option(export)
    export.set_defaults(handler=_export)
    return parser


def _model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, metavar="DIR", help="model folder (default: the app's active model)"
    )


def _planes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--planes",
        type=Path,
        metavar="PLANES.csv",
        help="view planes from `brat planes` for the images without a hand-labelled plane",
    )


def _with_planes(rows: list, planes_csv: Path | None) -> list:
    if planes_csv is None:
        return rows
    from brat.planes import read_plane_csv, with_predicted_planes

    return with_predicted_planes(rows, read_plane_csv(planes_csv))


def _split_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split", choices=("test", "val", "train", "all"), default="test", help="default test"
    )


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=12, help="maximum epochs (default 12)")
    parser.add_argument("--image-size", type=int, default=160, help="input side (default 160)")
    parser.add_argument(
        "--alpha", type=float, default=1.0, help="MobileNetV2 width multiplier (default 1.0)"
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        metavar="imagenet|none|PATH",
        help="initial weights: Keras' ImageNet download, none (from scratch), or a weights file",
    )
    parser.add_argument("--plane", choices=PLANES, help="one view plane")
    parser.add_argument(
        "--mask-weight",
        type=float,
        default=0.0,
        help="weight of the auxiliary tumour-mask loss (needs masks in the manifest; default 0)",
    )
    parser.add_argument(
        "--mask-target",
        choices=MASK_TARGETS,
        default="head",
        help="what the mask loss trains: a separate head reading the tumour (default), or the "
        "true class's evidence across the last feature map (brat.evidence)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="default 32")
    parser.add_argument(
        "--learning-rate", type=float, help="default 5e-4 when fine-tuning, 2e-3 from scratch"
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="plateau",
        help="plateau: lower the rate on a validation-loss plateau, stop early, keep the best "
        "epoch (default); cosine: a cosine decay over every epoch, keep the last",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="share of each label spread over all classes in the class loss (default 0)",
    )
    parser.add_argument("--patience", type=int, default=4, help="early-stopping patience")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--deterministic", action="store_true", help="reproducible run (slower augmentation)"
    )
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument(
        "--augmentation",
        choices=AUGMENTATIONS,
        default="standard",
        help="standard (default): mirror, small rotation, zoom and shift, CLAHE and brightness/"
        "contrast; strong: wider geometry, elastic or grid distortion, gamma, noise or blur",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


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
    planes = None
    if args.planes:
        from brat.planes import read_plane_csv

        planes = read_plane_csv(args.planes)
    report = scan_report(scanned, seconds, planes)
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
    from brat.scan import split_dataset
    from brat.split import SplitConfig, write_manifest

    config = SplitConfig(
        ratios=args.ratios,
        seed=args.seed,
        keep_existing_test=not args.resplit_test,
        leaks=args.leaks,
    )
    result = split_dataset(args.data, config, progress=not args.quiet)
    rows = _with_planes(result.rows, args.planes)
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
    if result.excluded:
        print(f"  excluded {len(result.excluded)} unlabelled or unreadable images")
    return 0


def _train_config(args: argparse.Namespace):
    from brat.model import ModelConfig
    from brat.train import TrainConfig

    model = ModelConfig(
        image_size=args.image_size,
        alpha=args.alpha,
        weights=args.weights,
        mask_weight=args.mask_weight,
        mask_target=args.mask_target,
    )
    return TrainConfig(
        model=model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        schedule=args.schedule,
        label_smoothing=args.label_smoothing,
        patience=args.patience,
        seed=args.seed,
        deterministic=args.deterministic,
        augment=not args.no_augment,
        augmentation=args.augmentation,
        plane=args.plane,
    )


def _train(args: argparse.Namespace) -> int:
    from brat.split import read_manifest

    config = _train_config(args)
    if args.manifest:
        rows = read_manifest(args.manifest)
    else:
        from brat.scan import split_dataset

        rows = split_dataset(args.data, progress=not args.quiet).rows
    rows = _with_planes(rows, args.planes)
    from brat.train import train

    result = train(
        args.data, rows, args.out, config, events=_PrintEvents(args.quiet), progress=not args.quiet
    )
    if result.out is None:
        print("stopped before the first epoch ended: no model written")
        return 1
    v = result.validation
    resumed = f" (resumed after epoch {result.resumed_after})" if result.resumed_after else ""
    print(
        f"{result.status}{resumed}: best epoch {result.best_epoch} of {len(result.history)}, "
        f"{result.seconds / 60:.1f} min; validation accuracy {v['accuracy']:.4f}, "
        f"tumour classes {v['tumour_accuracy']:.4f}, temperature {result.temperature:.3f}, "
        f"ECE {v['ece_uncalibrated']:.4f} -> {v['ece']:.4f}; wrote {result.out}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from brat.classifier import load_classifier
    from brat.evaluate import error_groups_text, evaluate

    report = evaluate(args.data, load_classifier(args.model), args.split, progress=not args.quiet)
    if args.json:
        _write_json(report, args.json)
    if str(args.json) != "-":
        low, high = report["accuracy_ci95"]
        print(
            f"{report['split']}: n {report['n']}, accuracy {report['accuracy']:.4f} "
            f"(95% CI {low:.4f}-{high:.4f}), tumour classes {report['tumour_accuracy']:.4f}, "
            f"macro-F1 {report['macro_f1']:.4f}, ECE {report['ece_uncalibrated']:.4f} -> "
            f"{report['ece']:.4f}, {len(report['misclassified'])} misclassified"
        )
        if clusters := error_groups_text(report):
            print(clusters)
    return 0


def _crossval(args: argparse.Namespace) -> int:
    from brat.crossval import crossval
    from brat.scan import scan_dataset

    config = _train_config(args)
    work = args.work or args.json.with_name(args.json.stem + "-folds")
    scanned = scan_dataset(args.data, progress=not args.quiet)
    report = crossval(
        scanned,
        config,
        args.folds,
        work,
        seed=args.seed,
        val_share=args.val_share,
        events=_PrintEvents(args.quiet),
        progress=not args.quiet,
    )
    _write_json(report, args.json)
    mean, std = report["mean"], report["std"]
    print(
        f"{report['folds']} folds, {report['n']} test images: accuracy {mean['accuracy']:.4f} "
        f"± {std['accuracy']:.4f}, tumour classes {mean['tumour_accuracy']:.4f} ± "
        f"{std['tumour_accuracy']:.4f}, macro-F1 {mean['macro_f1']:.4f}, ECE {mean['ece']:.4f}"
    )
    return 0


def _explain(args: argparse.Namespace) -> int:
    from brat.analysis import analyze, explainer_for
    from brat.errors import UnreadableImageError
    from brat.render import overlay, png_bytes, side_by_side

    explainer = explainer_for(args.model)
    failed = 0
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        try:
            result = analyze(path, args.method, args.target_class, model=explainer)
        except UnreadableImageError as error:
            print(f"{path}: skipped: {error}", file=sys.stderr)
            failed += 1
            continue
        panel = side_by_side(result.pixels, overlay(result.pixels, result.heatmap, args.opacity))
        caption = (
            f"{path.name}: {result.label} {result.confidence:.1%}; {args.method} heatmap of "
            f"{result.target_class}"
        )
        destination = args.out / f"{path.stem}-{args.method}.png"
        destination.write_bytes(png_bytes(panel, caption))
        print(f"{caption} -> {destination}")
    return 1 if failed else 0


def _localize(args: argparse.Namespace) -> int:
    from brat.analysis import explainer_for
    from brat.localize import localize

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    report = localize(
        args.data,
        explainer_for(args.model),
        args.split,
        methods=methods,
        limit=args.limit,
        progress=not args.quiet,
    )
    if args.json:
        _write_json(report, args.json)
    if str(args.json) != "-":
        for method, summary in report["methods"].items():
            print(
                f"{method}: {summary['n']} images, pointing game {summary['pointing_game']:.3f}, "
                f"heat in mask {summary['energy_in_mask']:.3f} vs area {summary['mask_share']:.3f} "
                f"({summary['energy_over_share']:.1f}x), top-15% IoU {summary['iou_top15']:.3f}"
            )
    return 0


def _card(args: argparse.Namespace) -> int:
    from brat.model_card import write_card

    print(f"wrote {write_card(args.model)}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from brat.analysis import analyze, explainer_for
    from brat.errors import UnreadableImageError

    explainer = explainer_for(args.model)
    results = []
    for path in args.files:
        try:
            analysis = analyze(path, model=explainer)
        except UnreadableImageError as error:
            results.append({"path": str(path), "error": str(error), "disclaimer": DISCLAIMER})
            continue
        results.append(
            {
                "path": str(path),
                "label": analysis.label,
                "verdict": analysis.verdict,
                "probabilities": {c: round(p, 6) for c, p in analysis.probabilities.items()},
                "in_distribution": analysis.in_distribution,
                "ood_score": analysis.ood_score,
                "plane": analysis.plane,
                "plane_confidence": analysis.plane_confidence,
                "disclaimer": DISCLAIMER,
            }
        )
    _write_json(results, args.json)
    return 0 if all("error" not in r for r in results) else 1


def _ood(args: argparse.Namespace) -> int:
    from brat.classifier import load_classifier
    from brat.ood import fit_for_model

    classifier = load_classifier(args.model)
    ood = fit_for_model(args.data, classifier)
    print(f"wrote {classifier.path / 'ood.npz'}: threshold {ood.threshold:.2f}")
    return 0


def _planes(args: argparse.Namespace) -> int:
    from brat.classifier import load_classifier
    from brat.planes import predict_planes, write_plane_csv

    predictions = predict_planes(args.data, load_classifier(args.model), progress=not args.quiet)
    write_plane_csv(predictions, args.csv)
    counts = Counter(p.plane or "unreadable" for p in predictions)
    labelled = sum(p.source == "label" for p in predictions)
    print(
        f"wrote {args.csv}: {len(predictions)} images ({labelled} hand-labelled): "
        + ", ".join(f"{plane} {n}" for plane, n in sorted(counts.items()))
    )
    return 0


def _fit_planes(args: argparse.Namespace) -> int:
    from brat.classifier import load_classifier
    from brat.planes import fit_planes_for_model

    classifier = load_classifier(args.model)
    report = fit_planes_for_model(args.data, classifier)
    _write_json({"model": str(classifier.path), **report}, args.json)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from brat.classifier import load_classifier
    from brat.compare import compare_planes

    combined = load_classifier(args.model)
    per_plane = {
        plane: load_classifier(
            getattr(args, plane) or combined.path.with_name(f"{combined.path.name}-{plane}")
        )
        for plane in PLANES
    }
    report = compare_planes(args.data, combined, per_plane, split=args.split)
    _write_json(report, args.json)
    if str(args.json) != "-":
        for plane, row in [*report["planes"].items(), ("all", report["all"])]:
            a, b = row["combined"], row["per_plane"]
            print(
                f"{plane:>8}: n {row['n']:4d}  combined {a['accuracy']:.1%}  "
                f"per-plane {b['accuracy']:.1%}"
            )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from brat.bench import run_bench

    _write_json(run_bench(args.model, args.data, args.images, args.quick), args.json)
    return 0


def _export(args: argparse.Namespace) -> int:
    from brat.classifier import load_classifier
    from brat.export import export_model

    print(f"wrote {export_model(load_classifier(args.model), args.format, args.out)}")
    return 0


class _PrintEvents:
    """Training progress on the terminal: a bar per epoch and one line per finished epoch."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None

    def on_status(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr)

    def on_batch(self, epoch: int, batch: int, batches: int, logs: dict) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if batch == 1 or self.bar is None:
            self.bar = tqdm(total=batches, desc=f"Epoch {epoch}", unit="batch", leave=False)
        self.bar.update(1)
        self.bar.set_postfix(
            loss=f"{logs.get('loss', 0):.3f}", acc=f"{logs.get('accuracy', 0):.3f}"
        )

    def on_epoch(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(
            f"epoch {row['epoch']}: loss {row['loss']:.4f} accuracy {row['accuracy']:.4f} "
            f"val_loss {row['val_loss']:.4f} val_accuracy {row['val_accuracy']:.4f} "
            f"lr {row['learning_rate']:.2g} ({row['seconds']:.0f} s)",
            flush=True,
        )


def _download(args: argparse.Namespace) -> int:
    from brat.download import download_dataset

    path = download_dataset(args.dataset, args.out)
    print(f"downloaded to {path}")
    return 0


def _write_json(data: dict | list, destination: Path) -> None:
    text = json.dumps(data, indent=2)
    if str(destination) == "-":
        print(text)
        return
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise BratError(f"Cannot write {destination} ({error}).") from error
