"""The model card: a model folder's measured numbers as Markdown, with the author's notes.

`python -m brat card MODEL` reads MODEL/brat.json (config, training, validation), and when present
MODEL/evaluation-test.json (`brat evaluate --json`), MODEL/crossval.json (`brat crossval --json`),
the other measured files named below (out-of-distribution check, planes, plane comparison, heatmap
localisation) and MODEL/notes.md (hand-written: what was tried, failure modes), and writes
MODEL/MODEL_CARD.md.
Every number in the card comes from those files, so the card cannot drift from the measurements.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from brat import DISCLAIMER
from brat.errors import BratError
from brat.evaluation.card_checks import checks_section
from brat.evaluation.card_sites import sites_section
from brat.evaluation.compare import PlaneComparison, differences_text, training_differences
from brat.evaluation.crossval_report import CrossvalReport
from brat.evaluation.evaluate import (
    Evaluation,
    error_groups_text,
    group_errors_text,
    source_rows,
)
from brat.evaluation.localize import Localization
from brat.evaluation.metrics import Metrics
from brat.evaluation.selective import selective_rows
from brat.files import atomic_write_text
from brat.model_folder import (
    CARD_FILE,
    COMPARISON_FILE,
    CROSSVAL_FILE,
    LOCALIZATION_FILE,
    MODEL_FILE,
    NOTES_FILE,
    OOD_EVALUATION_FILE,
    PLANES_EVALUATION_FILE,
    TEST_FILE,
    read_meta,
)
from brat.training.config import TrainConfig
from brat.training.model import BACKBONE_BLOCKS


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _interval(pair: list[float]) -> str:
    return f"{_percent(pair[0])}–{_percent(pair[1])}"


def _evaluation_section(title: str, metrics: Metrics, clusters: str = "") -> list[str]:
    """A split's metrics; `clusters` says how its errors cluster by patient group."""
    lines = [
        f"## {title}",
        "",
        f"- images: {metrics.n} (tumour classes: {metrics.tumour_n})",
        f"- accuracy: **{_percent(metrics.accuracy)}** "
        f"(95% Wilson interval {_interval(metrics.accuracy_ci95)})",
        f"- accuracy on the three tumour classes: **{_percent(metrics.tumour_accuracy)}** "
        f"({_interval(metrics.tumour_accuracy_ci95)})",
        f"- macro-F1: {metrics.macro_f1:.3f}",
        f"- ECE: {metrics.ece_uncalibrated:.3f} before calibration, {metrics.ece:.3f} after",
        *([f"- errors by group: {clusters}"] if clusters else []),
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, scores in metrics.per_class.items():
        lines.append(
            f"| {name} | {scores['precision']:.3f} | {scores['recall']:.3f} | "
            f"{scores['f1']:.3f} | {scores['support']} |"
        )
    classes = list(metrics.per_class)
    lines += ["", "Confusion matrix (rows: true class, columns: predicted):", ""]
    lines.append("| | " + " | ".join(classes) + " |")
    lines.append("|---" * (len(classes) + 1) + "|")
    for name, row in zip(classes, metrics.confusion_matrix, strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return [*lines, ""]


def _configuration_differences(crossval: CrossvalReport, config: TrainConfig) -> list[str]:
    """The settings in which a cross-validation's runs differ from the model's own training."""
    differences = {
        name.removeprefix("model."): values
        for name, values in training_differences(config, crossval.config).items()
    }
    return [
        f"{name} {theirs} (this model: {ours})"
        for name, (ours, theirs) in sorted(differences.items())
    ]


def _crossval_section(report: CrossvalReport, config: TrainConfig) -> list[str]:
    mean, std = report.mean, report.std
    differences = _configuration_differences(report, config)
    folds, val_share = report.folds, report.val_share
    validation = "the next fold" if val_share == 1 else f"{val_share:g} of the next fold's groups"
    trained = (folds - 1 - val_share) / folds
    lines = [
        f"## Patient-level cross-validation ({report.folds} folds, {report.n} test images)",
        "",
        *(
            [
                "**Measured with another training configuration than this model's:** "
                + "; ".join(differences)
                + ". These numbers describe that configuration, not this model.",
                "",
            ]
            if differences
            else []
        ),
        "No patient group or near-duplicate cluster is in two folds. Each round tests on one "
        f"fold, validates on {validation} and trains on the rest (about {100 * trained:.0f}% of "
        "the images). Mean ± standard deviation over the rounds:",
        "",
        "| metric | mean | std |",
        "|---|---|---|",
    ]
    for key in mean:
        lines.append(f"| {key} | {mean[key]:.4f} | {std[key]:.4f} |")
    # Reports written before evaluations counted errors per group have no such column.
    grouped = any(r.get("error_groups") for r in report.rounds)
    lines += [
        "",
        "| round | n | accuracy | tumour accuracy | macro-F1 | ECE | training | epoch kept |"
        + (" most errors (group: errors of its images) |" if grouped else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if grouped else ""),
    ]
    for i, r in enumerate(report.rounds, start=1):
        worst = ", ".join(group_errors_text(g) for g in r.get("error_groups", [])[:3])
        lines.append(
            f"| {i} | {r['n']} | {_percent(r['accuracy'])} | {_percent(r['tumour_accuracy'])} | "
            f"{r['macro_f1']:.3f} | {r['ece']:.3f} | {r['training_seconds'] / 60:.0f} min | "
            f"{r['best_epoch']} |" + (f" {worst or '—'} |" if grouped else "")
        )
    return [*lines, ""]


def _planes_section(report: dict | None) -> list[str]:
    if not report:
        return []
    counts = ", ".join(f"{n} {plane}" for plane, n in report["planes"].items())
    per_plane = ", ".join(f"{p} {_percent(a)}" for p, a in report["per_plane"].items())
    per_folder = ", ".join(f"{f} {_percent(a)}" for f, a in report["per_folder"].items())
    return [
        "## View plane",
        "",
        f"A logistic regression on the model's pooled features, fitted on {report['images']} "
        f"plane-labelled images ({counts}). {report['folds']}-fold patient-grouped "
        f"cross-validation: **{_percent(report['accuracy'])}** ({per_plane}; per folder: "
        f"{per_folder}).",
        "",
    ]


def _plane_comparison_section(report: dict | None) -> list[str]:
    if not report:
        return []
    report = PlaneComparison.from_json(report)
    sources = report.plane_sources
    lines = [
        "## One model for all planes against one model per plane",
        "",
        f"`brat compare` on the {report.split} split: this model against three models, each "
        "trained on one plane of the same training split "
        f"({', '.join(Path(report.models[p]).name for p in report.planes)}). "
        f"{differences_text(report.differences)} Planes: "
        f"{sources['label']} hand labels, {sources['predicted'] + sources['model']} predicted by "
        'the plane classifier. "per plane" on all planes sends each image to its plane\'s model.',
        "",
        "| plane | n | combined | per plane | combined, tumour | per plane, tumour |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.rows():
        lines.append(
            f"| {row['plane']} | {row['n']} | {_percent(row['combined accuracy'])} "
            f"({row['combined 95% CI']}) | {_percent(row['per-plane accuracy'])} "
            f"({row['per-plane 95% CI']}) | {_percent(row['combined tumour accuracy'])} | "
            f"{_percent(row['per-plane tumour accuracy'])} |"
        )
    return [*lines, ""]


def _localization_section(report: dict | None) -> list[str]:
    if not report:
        return []
    from brat.labels import METHOD_NAMES

    report = Localization.from_json(report)
    methods = report.methods
    classes = sorted({c for summary in methods.values() for c in summary["per_class"]})
    lines = [
        "## Do the heatmaps point at the tumour?",
        "",
        f"`brat localize` on the {report.images} images of the {report.split} split that "
        "have a tumour mask, each map explaining the true class: the pointing game (the map's "
        f"maximum within {report.tolerance_px} px of the mask), the share of the map's heat "
        "inside the mask against the mask's share of the image, and the IoU of the hottest 15% "
        "with the mask. Pointing game per class in the last columns.",
        "",
        f"| method | pointing game | heat in mask / area | top-15% IoU | {' | '.join(classes)} |",
        f"|---|---|---|---|{'---|' * len(classes)}",
    ]
    for method, summary in methods.items():
        per_class = " | ".join(
            _percent(summary["per_class"][c]["pointing_game"]) if c in summary["per_class"] else ""
            for c in classes
        )
        lines.append(
            f"| {METHOD_NAMES.get(method, method)} | {_percent(summary['pointing_game'])} | "
            f"{summary['energy_over_share']:.1f}x | {summary['iou_top15']:.3f} | {per_class} |"
        )
    return [*lines, ""]


def render_card(model_dir: str | Path) -> str:
    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    config, model = meta.config, meta.config.model
    split = f"{meta.split_sizes['train']} training and {meta.split_sizes['val']} validation images"
    lines = [
        f"# Model card: {model_dir.name}",
        "",
        f"> {DISCLAIMER}",
        "",
        "## Model",
        "",
        f"- MobileNetV2, width {model.alpha}, input {model.image_size}×{model.image_size} "
        f"greyscale, dropout {model.dropout_rate}, four classes ({', '.join(meta.classes)})",
        f"- initial weights: {Path(model.weights).name}"
        + (
            f"; the stem and first {config.frozen_blocks} of {BACKBONE_BLOCKS} blocks kept "
            "as loaded"
            if config.frozen_blocks
            else ""
        ),
        *_lineage(meta.started_from),
        f"- trained on `{meta.data}`"
        + (f", {config.plane} plane only" if config.plane else "")
        + f": {split} (group-aware split; manifest.csv, sha256 {meta.manifest_sha256[:12]}…)",
        f"- schedule: up to {config.epochs} epochs, batch {config.batch_size}, Adam from "
        f"{np.format_float_scientific(config.initial_learning_rate, trim='-', exp_digits=1)}, "
        + _schedule(config)
        + f", augmentation {'on' if config.augment else 'off'}, "
        f"class weights {'on' if config.class_weights else 'off'}, seed {config.seed}",
        f"- run: {meta.status}, best epoch {meta.best_epoch} of {meta.epochs_run}, "
        f"{meta.training_seconds / 60:.1f} min of training on the machine it was trained on",
        f"- calibration: temperature {meta.temperature:.3f}, fitted on the validation split",
        f"- Keras {meta.keras_version}, TensorFlow {meta.tensorflow_version}",
        *(
            [f"- {MODEL_FILE} SHA-256 (checked when the model loads): `{meta.model_sha256}`"]
            if meta.model_sha256
            else []
        ),
        "",
    ]
    test, crossval = (_read(model_dir / name) for name in (TEST_FILE, CROSSVAL_FILE))
    if test or crossval:
        lines += [
            "## Summary",
            "",
            "| measured on | accuracy | tumour classes | ECE |",
            "|---|---|---|---|",
        ]
        if test:
            lines.append(
                f"| held-out test split ({test['n']} images) | {_percent(test['accuracy'])} "
                f"({_interval(test['accuracy_ci95'])}) | {_percent(test['tumour_accuracy'])} "
                f"({_interval(test['tumour_accuracy_ci95'])}) | {test['ece']:.3f} |"
            )
        if crossval:
            crossval = CrossvalReport.from_json(crossval)
            mean, std = crossval.mean, crossval.std
            other = (
                " (another configuration, see below)"
                if _configuration_differences(crossval, config)
                else ""
            )
            lines.append(
                f"| {crossval.folds}-fold patient-level cross-validation{other}, mean ± std | "
                f"{_percent(mean['accuracy'])} ± {_percent(std['accuracy'])} | "
                f"{_percent(mean['tumour_accuracy'])} ± {_percent(std['tumour_accuracy'])} | "
                f"{mean['ece']:.3f} ± {std['ece']:.3f} |"
            )
        lines.append("")
    lines += _evaluation_section("Validation split (used for model selection)", meta.validation)
    for name, render in (
        (TEST_FILE, _test_section),
        (CROSSVAL_FILE, lambda r: _crossval_section(CrossvalReport.from_json(r), config)),
    ):
        report = _read(model_dir / name)
        if report:
            lines += render(report)
        else:
            lines += [f"_{name} is not there yet: this section is missing._", ""]
    lines += checks_section(model_dir, _read(model_dir / OOD_EVALUATION_FILE))
    lines += _planes_section(_read(model_dir / PLANES_EVALUATION_FILE))
    lines += _plane_comparison_section(_read(model_dir / COMPARISON_FILE))
    lines += _localization_section(_read(model_dir / LOCALIZATION_FILE))
    lines += sites_section(model_dir)
    notes = model_dir / NOTES_FILE
    if notes.is_file():
        lines += [notes.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines)


def _test_section(report: dict) -> list[str]:
    evaluation = Evaluation.from_json(report)
    clusters = error_groups_text(evaluation.error_groups, evaluation.groups_n)
    lines = _evaluation_section("Held-out test split", evaluation.metrics, clusters)
    if evaluation.by_source:
        lines += ["Per source of the test images:", "", *_table(source_rows(evaluation.by_source))]
    if evaluation.selective:
        rate = evaluation.selective.error_rate
        by_source = evaluation.selective_by_source or {"all": evaluation.selective}
        lines += [
            "Knowing when not to answer on the test images"
            + (f" (prediction sets at a {rate:.0%} error rate)" if rate else "")
            + ": coverage is the share whose true class is in the set; answered, the share "
            "given a class (one class in the set, familiar, a brain MRI); error AUROC, how well "
            "a score tells wrong predictions from right ones.",
            "",
            *_table(selective_rows({"all": evaluation.selective, **by_source})),
        ]
    return lines


def _table(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(rows[0]) + " |", "|---" * len(rows[0]) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(name, v) for name, v in row.items()) + " |")
    return [*lines, ""]


def _cell(name: str, value) -> str:
    if value is None:
        return "—"
    if name in (
        "accuracy",
        "tumour accuracy",
        "coverage",
        "answered",
        "accuracy answered",
        "unfamiliar",
    ):
        return _percent(value)
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise BratError(f"{path} cannot be read ({error}).") from error


def write_card(model_dir: str | Path) -> Path:
    return atomic_write_text(Path(model_dir) / CARD_FILE, render_card(model_dir))


def _lineage(started_from: dict | None) -> list[str]:
    """One line per model this one was fine-tuned from, the latest first."""
    lines = []
    while started_from:
        config = TrainConfig.from_dict(started_from["config"])
        sha = started_from.get("model_sha256") or "unrecorded"
        lines.append(
            f"- fine-tuned from the model `{sha[:12]}…`, trained on `{started_from['data']}` for "
            f"{config.epochs} epochs from {Path(config.model.weights).name} "
            f"({started_from['training_seconds'] / 60:.1f} min)"
        )
        started_from = started_from.get("started_from")
    return lines


def _schedule(config: TrainConfig) -> str:
    """How the learning rate moved and which epoch was kept, in words."""
    if config.schedule == "cosine":
        return "cosine decay over every epoch, the last epoch kept"
    return (
        f"×{config.lr_factor} on a validation-loss plateau, early stopping after "
        f"{config.patience} epochs, the best epoch kept"
    )
