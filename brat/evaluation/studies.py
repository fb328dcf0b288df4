"""Study-level accuracy: an evaluation's images grouped into studies by their patient group
(figshare patients; a Br35H image or a copy cluster is a study of its own), each study's
probabilities the mean over its slices that pass the not-a-brain-MRI check, as
`brat.inference.study` rules for a study a user uploads. Every misread study is listed."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from brat.evaluation.metrics import wilson_interval
from brat.inference.study import combined


def study_report(evaluation, records: dict, rule: str = "mean") -> dict:
    """Studies, study-level accuracy (Wilson 95% interval) and tumour-class accuracy beside the
    slice-level ones, and every misread study, for an `Evaluation` of the images in `records`
    (path -> manifest row or dataset record, for the patient groups)."""
    classes = list(evaluation.metrics.per_class)
    inside = evaluation.outputs.in_distribution
    if inside is None:
        inside = np.ones(len(evaluation.paths), bool)
    members = defaultdict(list)
    for i, path in enumerate(evaluation.paths):
        row = records.get(path)
        members[(row.group if row and row.group else None) or path].append(i)
    right, tumour_right, tumour_n, misread = 0, 0, 0, []
    for study, indices in sorted(members.items()):
        truth = evaluation.labels[indices[0]]
        probabilities = combined(evaluation.probabilities[indices], inside[indices], rule)
        predicted = classes[int(probabilities.argmax())]
        right += predicted == truth
        if truth != "no_tumor":
            tumour_n += 1
            tumour_right += predicted == truth
        if predicted != truth:
            misread.append(
                {
                    "study": study,
                    "slices": len(indices),
                    "label": truth,
                    "predicted": predicted,
                    "probability": round(float(probabilities.max()), 4),
                    "slices_right": int(
                        sum(
                            evaluation.probabilities[i].argmax() == classes.index(truth)
                            for i in indices
                        )
                    ),
                }
            )
    n = len(members)
    low, high = wilson_interval(right, n)
    return {
        "rule": rule,
        "studies": n,
        "studies_with_several_slices": sum(len(v) > 1 for v in members.values()),
        "accuracy": round(right / n, 4),
        "accuracy_ci95": [round(low, 4), round(high, 4)],
        "tumour_accuracy": round(tumour_right / tumour_n, 4) if tumour_n else None,
        "slice_accuracy": round(evaluation.metrics.accuracy, 4),
        "slice_tumour_accuracy": round(evaluation.metrics.tumour_accuracy, 4),
        "misread": misread,
    }


def study_text(report: dict) -> str:
    low, high = report["accuracy_ci95"]
    lines = [
        f"studies ({report['rule']} of each study's slices): n {report['studies']} "
        f"({report['studies_with_several_slices']} with several slices), accuracy "
        f"{report['accuracy']:.4f} ({low:.4f}-{high:.4f}), tumour classes "
        f"{report['tumour_accuracy']}; slices {report['slice_accuracy']:.4f}"
    ]
    lines += [
        f"  misread {m['study']}: {m['label']} read as {m['predicted']} ({m['probability']:.2f}; "
        f"{m['slices_right']} of {m['slices']} slices right)"
        for m in report["misread"]
    ]
    return "\n".join(lines)
