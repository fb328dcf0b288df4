"""A model measured on whole labelled volumes: one verdict per study, and every slice by level.

Each volume of a folder (`brat.data.volumes.find_volumes`) is read as a user's upload is
(`brat.data.studies.read_study`, every slice of the head) in each view plane it can be cut in, and
given its study verdict (`brat.inference.study`). Reported: study accuracy (the top class), the
share answered with a class and the accuracy of those answers, every study's outcome, and per
level and plane how the slices read: the no-tumour slices (every slice of a healthy head; a
tumour volume's slices far from its mask) read as a tumour, and the tumour slices found.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from brat.data.studies import PLANE_AXES, read_study, read_volume, volume_study
from brat.data.volumes import MIN_SIDE, SERIES, LabelledVolume, is_series, slice_labels
from brat.evaluation.metrics import wilson_interval
from brat.inference.conformal import ERROR_RATE
from brat.inference.study import NO_TUMOUR, analyze_study
from brat.inference.verdict import NOT_MRI, UNCERTAIN
from brat.labels import PLANES, STUDY_RULES

# Slices are counted by level in this many equal bins from the first slice to the last.
LEVEL_BINS = 5
# A slice "reads as a tumour" when its probability of a tumour class is above this.
TUMOUR_READ = 0.5


def evaluate_volumes(
    root: str | Path,
    volumes: list[LabelledVolume],
    explainer,
    planes: tuple[str, ...] = PLANES,
    error_rate: float = ERROR_RATE,
    rule: str = STUDY_RULES[0],
) -> dict:
    """Study verdicts (by `rule`) and per-level slice behaviour of `explainer`'s model on
    `volumes`."""
    root = Path(root)
    studies, slices = [], []
    for volume in volumes:
        if is_series(root / volume.path):  # a DICOM series: its own plane, no mask
            study = read_study(root / volume.path)
            last = max(study.indices[-1], 1)
            outcome, rows = _read(study, volume, None, last, explainer, error_rate, rule)
            studies.append(outcome)
            slices += rows
            continue
        voxels = read_volume(volume.path, root / volume.path)
        tumour = read_volume(volume.mask, root / volume.mask) > 0 if volume.mask else None
        for plane in planes:
            if min(np.delete(voxels.shape, PLANE_AXES[plane])) < MIN_SIDE:
                continue
            study = volume_study(Path(volume.path).name, voxels, plane)
            masks = None if tumour is None else np.moveaxis(tumour, PLANE_AXES[plane], 0)
            last = max(voxels.shape[PLANE_AXES[plane]] - 1, 1)
            outcome, rows = _read(study, volume, masks, last, explainer, error_rate, rule)
            studies.append(outcome)
            slices += rows
    return {
        "rule": rule,
        "volumes": len(volumes),
        **study_summary(studies),
        "slices_by_level": level_table(slices),
        "outcomes": studies,
        "per_slice": slices,
    }


def _read(study, volume, masks, last, explainer, error_rate, rule) -> tuple[dict, list[dict]]:
    """The outcome of one study of `volume` and its slices' rows (truth from `masks`, a stack
    along the study's slices, when the volume has one; level = index / `last`)."""
    result = analyze_study(study, explainer, error_rate, rule)
    truths = slice_labels(volume.label, masks)
    plane = study.plane or SERIES
    normal = list(result.probabilities).index(NO_TUMOUR)
    probabilities = result.slice_probabilities
    rows = [
        {
            "volume": volume.path,
            "plane": plane,
            "index": index,
            "level": round(index / last, 4),
            "truth": truths[index] if truths else _unmasked(volume.label),
            "in_distribution": bool(result.slice_in_distribution[position]),
            "tumour": round(1.0 - float(probabilities[position, normal]), 4),
            "probabilities": [round(float(p), 5) for p in probabilities[position]],
        }
        for position, index in enumerate(result.indices)
    ]
    outcome = {
        "volume": volume.path,
        "group": volume.group,
        "plane": plane,
        "label": volume.label,
        "slices": result.slices,
        "predicted": result.label,
        "verdict": result.verdict,
        "reasons": result.reasons,
        "probability": round(result.probabilities[result.label], 4),
        "prediction_set": result.prediction_set,
        "strongest_slice": result.indices[result.strongest_slice],
    }
    return outcome, rows


def _unmasked(label: str) -> str | None:
    """A slice's truth without a mask: a healthy head's slices are all no-tumour; which slices of
    a tumour volume hold the tumour is unknown."""
    return label if label == NO_TUMOUR else None


def study_summary(studies: list[dict]) -> dict:
    """Study accuracy (top class, Wilson 95% interval), answered share and accuracy of the
    answered, the share of studies whose prediction set holds their class, per class of study."""
    n = len(studies)
    right = sum(s["predicted"] == s["label"] for s in studies)
    answered = [s for s in studies if s["verdict"] not in {UNCERTAIN, NOT_MRI}]
    answered_right = sum(s["verdict"] == s["label"] for s in answered)
    with_sets = [s for s in studies if s["prediction_set"] is not None]
    by_class = defaultdict(list)
    for s in studies:
        by_class[s["label"]].append(s)
    return {
        "studies": n,
        "accuracy": round(right / n, 4) if n else None,
        "accuracy_ci95": [round(v, 4) for v in wilson_interval(right, n)] if n else None,
        "answered": round(len(answered) / n, 4) if n else None,
        "answered_accuracy": round(answered_right / len(answered), 4) if answered else None,
        "answered_wrong": len(answered) - answered_right,
        "set_coverage": round(
            sum(s["label"] in s["prediction_set"] for s in with_sets) / len(with_sets), 4
        )
        if with_sets
        else None,
        "by_class": {
            label: {
                "studies": len(group),
                "right": sum(s["predicted"] == label for s in group),
                "answered_right": sum(s["verdict"] == label for s in group),
                "answered_wrong": sum(
                    s["verdict"] not in {label, UNCERTAIN, NOT_MRI} for s in group
                ),
            }
            for label, group in sorted(by_class.items())
        },
    }


def level_table(slices: list[dict]) -> list[dict]:
    """Per plane and level bin: the no-tumour slices that pass the not-a-brain-MRI check and how
    many read as a tumour, and the tumour slices and how many read as one."""
    rows = []
    for plane in (*PLANES, SERIES):
        in_plane = [s for s in slices if s["plane"] == plane and s["in_distribution"]]
        if not in_plane:
            continue
        for b in range(LEVEL_BINS):
            low, high = b / LEVEL_BINS, (b + 1) / LEVEL_BINS
            inside = [
                s
                for s in in_plane
                if low <= s["level"] < high or (b == LEVEL_BINS - 1 and s["level"] == 1)
            ]
            normal = [s for s in inside if s["truth"] == NO_TUMOUR]
            tumour = [s for s in inside if s["truth"] not in {None, NO_TUMOUR}]
            rows.append(
                {
                    "plane": plane,
                    "levels": f"{low:.0%}-{high:.0%}",
                    "no_tumour_slices": len(normal),
                    "read_as_tumour": sum(s["tumour"] > TUMOUR_READ for s in normal),
                    "tumour_slices": len(tumour),
                    "tumour_found": sum(s["tumour"] > TUMOUR_READ for s in tumour),
                }
            )
    return rows


def volumes_text(report: dict) -> str:
    """The report in a few lines for the terminal."""
    lines = [
        f"{report['studies']} studies from {report['volumes']} volumes: top class right "
        f"{report['accuracy']:.1%}, answered {report['answered']:.1%}"
        + (
            f", {report['answered_accuracy']:.1%} of those right"
            if report["answered_accuracy"] is not None
            else ""
        )
    ]
    for s in report["outcomes"]:
        lines.append(
            f"  {s['volume']} ({s['plane']}, {s['slices']} slices): {s['label']} -> {s['verdict']}"
            f" ({s['predicted']} {s['probability']:.2f}; set {s['prediction_set']})"
        )
    lines.append("no-tumour slices read as a tumour (> 0.5), by level:")
    for row in report["slices_by_level"]:
        lines.append(
            f"  {row['plane']:8} {row['levels']:>8}: {row['read_as_tumour']} of "
            f"{row['no_tumour_slices']}; tumour slices found {row['tumour_found']} of "
            f"{row['tumour_slices']}"
        )
    return "\n".join(lines)
