"""Study-level accuracy: an evaluation's images grouped into studies by their patient group
(figshare patients; a Br35H image or a copy cluster is a study of its own), each study's
probabilities by the rule `brat.inference.study` applies to a study a user uploads (or the mean
of its slices, to compare). Every misread study is listed."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from brat.evaluation.metrics import wilson_interval
from brat.inference.study import RULES, combined


def study_report(evaluation, records: dict, rule: str = RULES[0]) -> dict:
    """Studies, study-level accuracy (Wilson 95% interval) and tumour-class accuracy beside the
    slice-level ones, overall and per source (a study's source is its first image's), and every
    misread study, for an `Evaluation` of the images in `records` (path -> manifest row or
    dataset record, for the patient groups and sources)."""
    classes = list(evaluation.metrics.per_class)
    inside = evaluation.outputs.in_distribution
    if inside is None:
        inside = np.ones(len(evaluation.paths), bool)
    slice_right = evaluation.probabilities.argmax(axis=1) == np.array(
        [classes.index(label) for label in evaluation.labels]
    )
    members = defaultdict(list)
    for i, path in enumerate(evaluation.paths):
        row = records.get(path)
        members[(row.group if row and row.group else None) or path].append(i)
    outcomes = []
    for study, indices in sorted(members.items()):
        truth = evaluation.labels[indices[0]]
        probabilities = combined(evaluation.probabilities[indices], inside[indices], rule)
        row = records.get(evaluation.paths[indices[0]])
        outcomes.append(
            {
                "study": study,
                "source": (row.source if row else None) or "unknown",
                "slices": len(indices),
                "label": truth,
                "predicted": classes[int(probabilities.argmax())],
                "probability": round(float(probabilities.max()), 4),
                "slices_right": int(slice_right[indices].sum()),
            }
        )
    by_source = {
        source: _summary([o for o in outcomes if o["source"] == source])
        for source in sorted({o["source"] for o in outcomes})
    }
    return {
        "rule": rule,
        **_summary(outcomes),
        "by_source": by_source if len(by_source) > 1 else None,
        "misread": [o for o in outcomes if o["predicted"] != o["label"]],
    }


def _summary(outcomes: list[dict]) -> dict:
    """Study- and slice-level accuracy of some studies' outcomes."""
    n = len(outcomes)
    right = sum(o["predicted"] == o["label"] for o in outcomes)
    tumour = [o for o in outcomes if o["label"] != "no_tumor"]
    slices = sum(o["slices"] for o in outcomes)
    tumour_slices = sum(o["slices"] for o in tumour)
    low, high = wilson_interval(right, n)
    return {
        "studies": n,
        "studies_with_several_slices": sum(o["slices"] > 1 for o in outcomes),
        "accuracy": round(right / n, 4),
        "accuracy_ci95": [round(low, 4), round(high, 4)],
        "tumour_accuracy": round(sum(o["predicted"] == o["label"] for o in tumour) / len(tumour), 4)
        if tumour
        else None,
        "slices": slices,
        "slice_accuracy": round(sum(o["slices_right"] for o in outcomes) / slices, 4),
        "slice_tumour_accuracy": round(sum(o["slices_right"] for o in tumour) / tumour_slices, 4)
        if tumour
        else None,
    }


def study_text(report: dict) -> str:
    lines = [f"studies ({report['rule']} of each study's slices): {_line(report)}"]
    lines += [f"  {source}: {_line(part)}" for source, part in (report["by_source"] or {}).items()]
    lines += [
        f"  misread {m['study']}: {m['label']} read as {m['predicted']} ({m['probability']:.2f}; "
        f"{m['slices_right']} of {m['slices']} slices right)"
        for m in report["misread"]
    ]
    return "\n".join(lines)


def _line(summary: dict) -> str:
    low, high = summary["accuracy_ci95"]
    return (
        f"n {summary['studies']} ({summary['studies_with_several_slices']} with several slices), "
        f"accuracy {summary['accuracy']:.4f} ({low:.4f}-{high:.4f}), tumour classes "
        f"{summary['tumour_accuracy']}; slices {summary['slice_accuracy']:.4f} of "
        f"{summary['slices']}, tumour classes {summary['slice_tumour_accuracy']}"
    )
