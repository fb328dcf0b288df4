"""Training commands: train, crossval, and fitting the not-a-brain-MRI and view-plane checks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brat.cli.common import (
    data_option,
    keep_split_option,
    kept_split,
    label_decisions_option,
    model_option,
    planes_option,
    read_decisions,
    with_planes,
    write_json,
)
from brat.labels import PLANES
from brat.model_folder import CONFORMAL_FILE, FAMILIARITY_FILE, OOD_FILE
from brat.training.config import (
    AUGMENTATIONS,
    BALANCES,
    LEARNING_RATES,
    SCHEDULES,
    TrainConfig,
)
from brat.training.model import MASK_TARGETS, ModelConfig


def add_commands(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a MobileNetV2 classifier on a split dataset",
        description="Train on the train split, select and calibrate on the val split, and write "
        "the model folder (model.keras, brat.json, history.json, manifest.csv) atomically. Run "
        "the same command again after a crash to resume from the last completed epoch.",
    )
    data_option(train, "dataset folder")
    train.add_argument("--out", type=Path, required=True, metavar="DIR", help="model folder")
    train.add_argument(
        "--manifest",
        type=Path,
        metavar="M.csv",
        help="split manifest from `brat split` (default: split DATA now with the defaults)",
    )
    planes_option(train)
    label_decisions_option(train)
    keep_split_option(train)
    _training_options(train)
    train.set_defaults(handler=_train)

    crossval = commands.add_parser(
        "crossval",
        help="patient-level cross-validation: train and evaluate on group-aware folds",
        description="No patient group or near-duplicate cluster is in two folds. Round i tests "
        "on fold i, validates on fold i+1 and trains on the rest; the report gives every metric "
        "per round with its mean and standard deviation. Rounds are kept in --work, so a "
        "stopped run resumes.",
    )
    data_option(crossval, "dataset folder")
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
    crossval.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="train the rounds side by side on a Dask cluster: a scheduler address "
        "(tcp://host:8786) or local:N for N worker processes here; the workers must see the data "
        "and the work folder at the same paths (brat.cluster)",
    )
    _training_options(crossval)
    crossval.set_defaults(handler=_crossval)

    checks = commands.add_parser(
        "fit-checks",
        aliases=["ood"],
        help="fit a model's checks: not a brain MRI, unfamiliar scan, prediction sets",
        description="Fits the checks of a model folder on the train split of its manifest and "
        "calibrates them on the val split: the not-a-brain-MRI check (ood.npz), the "
        "unfamiliar-scan score (familiarity.npz) and the conformal prediction sets "
        "(conformal.npz). `brat train` does this for every new model; run it for a folder "
        "trained before a check existed.",
    )
    data_option(checks, "dataset folder(s) the model was trained on")
    checks.add_argument(
        "--without-source",
        action="append",
        default=[],
        metavar="SOURCE",
        help="leave this source's images out of the checks (e.g. spm12-templates: blurred "
        "template averages, which made the not-a-brain-MRI check accept photographs of faces)",
    )
    model_option(checks)
    checks.set_defaults(handler=_fit_checks)

    fit_planes = commands.add_parser(
        "fit-planes",
        help="fit a model's plane classifier on the plane-labelled images of a dataset",
        description="Cross-validates (5 patient-grouped folds) a logistic regression on the "
        "model's pooled features of DATA's plane-labelled images (metadata.csv plane column), "
        "reports it, then fits on all of them and saves planes.npz in the model folder.",
    )
    data_option(fit_planes, "dataset folder with plane labels")
    fit_planes.add_argument("--json", type=Path, default=Path("-"), metavar="OUT")
    model_option(fit_planes)
    fit_planes.set_defaults(handler=_fit_planes)


def _training_options(parser: argparse.ArgumentParser) -> None:
    """The training flags; every default is TrainConfig's (the shipped model's recipe)."""
    config, model = TrainConfig(), ModelConfig()
    parser.add_argument(
        "--epochs", type=int, default=config.epochs, help=f"epochs (default {config.epochs})"
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=model.image_size,
        help=f"input side (default {model.image_size})",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=model.alpha,
        help=f"MobileNetV2 width multiplier (default {model.alpha})",
    )
    parser.add_argument(
        "--weights",
        default=model.weights,
        metavar="imagenet|none|PATH",
        help="initial weights: Keras' ImageNet download, none (from scratch), a backbone weights "
        "file, or a brat model folder to fine-tune on more data (every weight, classifier "
        f"included; same size and width) (default {model.weights})",
    )
    parser.add_argument("--plane", choices=PLANES, help="one view plane")
    parser.add_argument(
        "--mask-weight",
        type=float,
        default=model.mask_weight,
        help="weight of the auxiliary tumour-mask loss (images without a mask cost nothing; "
        f"0 turns it off; default {model.mask_weight})",
    )
    parser.add_argument(
        "--mask-target",
        choices=MASK_TARGETS,
        default=model.mask_target,
        help="what the mask loss trains: the true class's evidence across the last feature map "
        "(evidence, brat.training.evidence) or a separate head reading the tumour (head); "
        f"default {model.mask_target}",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=config.batch_size,
        help=f"default {config.batch_size}",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=config.learning_rate,
        help=f"default {LEARNING_RATES['pretrained']:g} when fine-tuning, "
        f"{LEARNING_RATES['scratch']:g} from scratch",
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=config.schedule,
        help="cosine: a cosine decay over every epoch, keep the last; plateau: lower the rate on "
        "a validation-loss plateau, stop early, keep the best epoch "
        f"(default {config.schedule})",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=config.label_smoothing,
        help="share of each label spread over all classes in the class loss "
        f"(default {config.label_smoothing:g})",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=config.patience,
        help=f"early-stopping patience of the plateau schedule (default {config.patience})",
    )
    parser.add_argument(
        "--seed", type=int, default=config.seed, help=f"random seed (default {config.seed})"
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="reproducible run (slower augmentation)"
    )
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument(
        "--augmentation",
        choices=AUGMENTATIONS,
        default=config.augmentation,
        help="standard: mirror, small rotation, zoom and shift, CLAHE and brightness/contrast; "
        "strong: wider geometry, elastic or grid distortion, gamma, noise or blur; scanners: "
        "standard plus other scanners' and sequences' looks (random intensity curves, bias "
        f"field, gamma, noise or blur, burnt-in text, JPEG re-encoding) (default "
        f"{config.augmentation})",
    )
    parser.add_argument(
        "--frozen-blocks",
        type=int,
        default=config.frozen_blocks,
        help="keep the backbone's stem and its first N of 17 blocks as loaded, which trains "
        f"faster (default {config.frozen_blocks})",
    )
    parser.add_argument(
        "--balance",
        choices=BALANCES,
        default=config.balance,
        help="sources: draw training images so that within each class every source is seen "
        f"equally often (default {config.balance})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _train_config(args: argparse.Namespace) -> TrainConfig:
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
        frozen_blocks=args.frozen_blocks,
        balance=args.balance,
    )


def _train(args: argparse.Namespace) -> int:
    from brat.data.manifest import read_manifest

    config = _train_config(args)
    if args.manifest:
        rows = read_manifest(args.manifest)
    else:
        from brat.data.split import split_dataset

        rows = split_dataset(
            args.data,
            decisions=read_decisions(args),
            keep=kept_split(args),
            progress=not args.quiet,
        ).rows
    rows = with_planes(rows, args.planes)
    from brat.training.train import train

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
        f"{result.seconds / 60:.1f} min; validation accuracy {v.accuracy:.4f}, "
        f"tumour classes {v.tumour_accuracy:.4f}, temperature {result.temperature:.3f}, "
        f"ECE {v.ece_uncalibrated:.4f} -> {v.ece:.4f}; wrote {result.out}"
    )
    return 0


def _crossval(args: argparse.Namespace) -> int:
    from brat.data.scan import scan_dataset
    from brat.training.crossval import crossval

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
        cluster=args.cluster,
    )
    write_json(report.to_json(), args.json)
    mean, std = report.mean, report.std
    print(
        f"{report.folds} folds, {report.n} test images: accuracy {mean['accuracy']:.4f} "
        f"± {std['accuracy']:.4f}, tumour classes {mean['tumour_accuracy']:.4f} ± "
        f"{std['tumour_accuracy']:.4f}, macro-F1 {mean['macro_f1']:.4f}, ECE {mean['ece']:.4f}"
    )
    return 0


def _fit_checks(args: argparse.Namespace) -> int:
    from brat.inference.checks import fit_checks_for_model
    from brat.inference.classifier import load_classifier

    classifier = load_classifier(args.model)
    checks = fit_checks_for_model(args.data, classifier, without_sources=tuple(args.without_source))
    ood, familiarity = checks[OOD_FILE], checks[FAMILIARITY_FILE]
    if CONFORMAL_FILE not in checks:
        print("too few validation images for prediction sets", file=sys.stderr)
    print(
        f"wrote {', '.join(checks)} in {classifier.path}: not-a-brain-MRI threshold "
        f"{ood.threshold:.2f}, unfamiliar-scan threshold {familiarity.threshold:.4f}"
    )
    return 0


def _fit_planes(args: argparse.Namespace) -> int:
    from brat.inference.classifier import load_classifier
    from brat.inference.planes import fit_planes_for_model

    classifier = load_classifier(args.model)
    report = fit_planes_for_model(args.data, classifier)
    write_json({"model": str(classifier.path), **report}, args.json)
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
