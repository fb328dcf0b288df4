"""Evaluating a model folder on a split of its own manifest, or on every image of a folder."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from brat import DISCLAIMER
from brat.data.dataset import load_dataset
from brat.data.manifest import SPLITS, ManifestRow
from brat.data.prepared import prepare_images
from brat.errors import DatasetError
from brat.evaluation.metrics import (
    Metrics,
    classification_metrics,
    expected_calibration_error,
    softmax,
)
from brat.evaluation.selective import Selective, selective_of
from brat.inference.classifier import Classifier, Outputs
from brat.inference.conformal import ERROR_RATE
from brat.inference.planes import planes_or_predicted

EVALUATION_SPLITS = (*SPLITS, "all")


def evaluation_items(
    data_root: str | Path,
    classifier: Classifier,
    split: str,
    manifest: list[ManifestRow] | None = None,
) -> list[tuple[str, str]]:
    """(path relative to data_root, label) of the images to evaluate.

    A named split comes from the manifest stored with the model (restricted to the model's view
    plane, if it has one), so it measures the same held-out images wherever the data lives, or
    from another `manifest` (e.g. `brat split --hold-out`), whose images the model must never have
    trained or been selected on; "all" takes every labelled image of data_root.
    """
    if split not in EVALUATION_SPLITS:
        raise ValueError(f"`split` must be one of {EVALUATION_SPLITS}. Received: split={split!r}")
    if split == "all":
        records = [r for r in load_dataset(data_root).records if r.label]
        items = [(r.path, r.label) for r in records]
    else:
        plane = classifier.meta.config.plane
        items = [
            (r.path, r.label)
            for r in (manifest or classifier.manifest_for(data_root))
            if r.split == split and (not plane or r.plane == plane)
        ]
        if manifest is not None:
            _check_never_trained_on(classifier, manifest, {path for path, _ in items})
    if not items:
        raise DatasetError(f"There are no labelled images to evaluate in the {split} split.")
    unknown = sorted({label for _, label in items} - set(classifier.classes))
    if unknown:
        raise DatasetError(f"The model does not know the labels {unknown}.")
    return items


def _check_never_trained_on(
    classifier: Classifier, manifest: list[ManifestRow], paths: set[str]
) -> None:
    """A DatasetError when the model trained or was selected on any of `paths` (images are
    compared as FOLDER/PATH: a model trained on one folder keeps its manifest's paths bare)."""
    folder_of = {r.path: r.folder for r in manifest}

    def qualified(path: str, folder: str) -> str:
        return path if not folder or path.startswith(f"{folder}/") else f"{folder}/{path}"

    seen = {
        qualified(r.path, r.folder or classifier.meta.data)
        for r in classifier.manifest
        if r.split in ("train", "val")
    }
    overlap = sorted(p for p in paths if qualified(p, folder_of.get(p, "")) in seen)
    if overlap:
        raise DatasetError(
            f"{classifier.path} trained or was selected on {len(overlap)} of these images "
            f"(e.g. {overlap[0]}): they would measure what it learnt, not what it does on new "
            "images."
        )


@dataclass(frozen=True)
class Evaluation:
    """A model measured on the images of a split (`evaluate`); `to_json` is `brat evaluate`'s
    report. The per-image arrays stay in memory for the Evaluate page and are not written."""

    model: str
    split: str
    temperature: float
    metrics: Metrics  # calibrated, with the uncalibrated ECE
    misclassified: list[dict]  # path, label, group, predicted, probabilities; surest first
    groups_n: int  # patient or duplicate groups among the images
    error_groups: list[dict]  # `error_groups`
    paths: list[str] = field(default_factory=list, compare=False)
    labels: list[str] = field(default_factory=list, compare=False)
    probabilities: np.ndarray | None = field(default=None, compare=False)  # calibrated
    planes: list[str | None] = field(default_factory=list, compare=False)  # label or predicted
    planes_predicted: int = field(default=0, compare=False)  # planes not hand-labelled
    by_source: dict[str, Metrics] | None = None  # the same metrics per source, when asked
    selective: Selective | None = None  # prediction sets and abstaining, when measured
    selective_by_source: dict[str, Selective] | None = None
    outputs: Outputs | None = field(default=None, compare=False)  # per image, not written
    disclaimer: str = DISCLAIMER

    @property
    def predicted(self) -> list[str]:
        classes = list(self.metrics.per_class)
        return [classes[i] for i in self.probabilities.argmax(axis=1)]

    def to_json(self) -> dict:
        return {
            "disclaimer": self.disclaimer,
            "model": self.model,
            "split": self.split,
            "temperature": self.temperature,
            **self.metrics.to_json(),
            "misclassified": self.misclassified,
            "groups_n": self.groups_n,
            "error_groups": self.error_groups,
            **(
                {"by_source": {s: m.to_json() for s, m in self.by_source.items()}}
                if self.by_source is not None
                else {}
            ),
            **({"selective": self.selective.to_json()} if self.selective else {}),
            **(
                {
                    "selective_by_source": {
                        s: v.to_json() for s, v in self.selective_by_source.items()
                    }
                }
                if self.selective_by_source is not None
                else {}
            ),
        }

    @classmethod
    def from_json(cls, data: dict) -> Evaluation:
        return cls(
            model=data.get("model", ""),
            split=data.get("split", ""),
            temperature=data.get("temperature", 1.0),
            metrics=Metrics.from_json(data),
            misclassified=data.get("misclassified", []),
            groups_n=data.get("groups_n", 0),
            error_groups=data.get("error_groups", []),
            by_source={s: Metrics.from_json(m) for s, m in data["by_source"].items()}
            if "by_source" in data
            else None,
            selective=Selective.from_json(data["selective"]) if "selective" in data else None,
            selective_by_source={
                s: Selective.from_json(v) for s, v in data["selective_by_source"].items()
            }
            if "selective_by_source" in data
            else None,
        )


def evaluate(
    data_root: str | Path,
    classifier: Classifier,
    split: str = "test",
    *,
    manifest: list[ManifestRow] | None = None,
    by_source: bool = False,
    cache_dir: Path | None = None,
    progress: bool = True,
    error_rate: float = ERROR_RATE,
) -> Evaluation:
    """Every metric of `classification_metrics`, the uncalibrated ECE, the misclassified files
    and how the errors cluster by patient group; with `by_source`, every metric per source.
    `manifest` takes the split from another manifest than the model's own. The prediction sets
    are measured at `error_rate`."""
    paths, labels, outputs = predictions(
        data_root,
        classifier,
        split,
        manifest=manifest,
        cache_dir=cache_dir,
        progress=progress,
        error_rate=error_rate,
    )
    records = split_records(data_root, classifier, split, manifest)
    groups = {path: r.group for path, r in records.items() if r.group}
    known = [records[path].plane or None if path in records else None for path in paths]
    planes = planes_or_predicted(known, classifier.planes, outputs.features, outputs.images)
    result = evaluation_of(classifier, labels, paths, outputs.logits, split, groups, planes)
    truth = np.array([classifier.classes.index(label) for label in labels])
    predicted = sum(plane is not None for plane in planes) - sum(map(bool, known))
    selective = selective_of(classifier, truth, outputs)
    result = replace(result, selective=selective, outputs=outputs, planes_predicted=predicted)
    if not by_source:
        return result
    sources = np.array([(records[p].source if p in records else "") or "unknown" for p in paths])
    return replace(
        result,
        by_source=metrics_by(list(sources), labels, result.probabilities, classifier),
        selective_by_source={
            source: selective_of(classifier, truth[sources == source], outputs, sources == source)
            for source in sorted(set(sources))
        },
    )


def source_rows(by_source: dict[str, Metrics]) -> list[dict]:
    """One row per source: n, accuracy with its interval, tumour-class accuracy, ECE and each
    class's recall (where the source has that class); for tables and the model card."""
    rows = []
    for source, m in by_source.items():
        low, high = m.accuracy_ci95
        rows.append(
            {
                "source": source,
                "n": m.n,
                "accuracy": round(m.accuracy, 4),
                "95% CI": f"{low:.1%}–{high:.1%}",
                "tumour accuracy": round(m.tumour_accuracy, 4) if m.tumour_n else None,
                "ECE": round(m.ece, 4),
                **{
                    f"{c} recall": round(v["recall"], 3) if v["support"] else None
                    for c, v in m.per_class.items()
                },
            }
        )
    return rows


def metrics_by(
    keys: list[str], labels: list[str], probabilities: np.ndarray, classifier: Classifier
) -> dict[str, Metrics]:
    """Every metric for each group of images sharing a key (a source, a folder)."""
    classes = classifier.classes
    truth = np.array([classes.index(label) for label in labels])
    keys_array = np.array(keys, dtype=object)
    return {
        key: classification_metrics(
            truth[keys_array == key], probabilities[keys_array == key], classes
        )
        for key in sorted(set(keys))
    }


def split_records(
    data_root: str | Path,
    classifier: Classifier,
    split: str,
    manifest: list[ManifestRow] | None = None,
) -> dict:
    """Path -> the row (group, plane, source, ...) of each image of `split`: the manifest (the
    model's own unless given) for a named split, the dataset's metadata for "all"."""
    if split == "all":
        return {r.path: r for r in load_dataset(data_root).records}
    return {r.path: r for r in manifest or classifier.manifest_for(data_root)}


def predictions(
    data_root: str | Path,
    classifier: Classifier,
    split: str = "test",
    *,
    manifest: list[ManifestRow] | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    error_rate: float = ERROR_RATE,
) -> tuple[list[str], list[str], Outputs]:
    """Paths, true labels and the model's outputs and checks for the images of `split`."""
    items = evaluation_items(data_root, classifier, split, manifest)
    paths = [path for path, _ in items]
    images = prepare_images(
        Path(data_root), paths, classifier.image_size, cache_dir=cache_dir, progress=progress
    )
    return paths, [label for _, label in items], classifier.outputs(images, error_rate)


def evaluation_of(
    classifier: Classifier,
    labels: list[str],
    paths: list[str],
    logits,
    split: str,
    groups: dict[str, str] | None = None,
    planes: list[str | None] | None = None,
) -> Evaluation:
    """The evaluation of `logits` against `labels`; with `groups` (path -> patient group), each
    misclassified file names its group and `error_groups` counts the errors per group."""
    groups = groups or {}
    classes = classifier.classes
    truth = np.array([classes.index(label) for label in labels])
    probabilities = softmax(logits, classifier.temperature)
    metrics = classification_metrics(
        truth,
        probabilities,
        classes,
        ece_uncalibrated=expected_calibration_error(softmax(logits), truth),
    )
    predicted = probabilities.argmax(axis=1)
    wrong = [i for i in range(len(paths)) if predicted[i] != truth[i]]
    wrong.sort(key=lambda i: -probabilities[i].max())
    named = [p for p in paths if p in groups]
    return Evaluation(
        model=str(classifier.path),
        split=split,
        temperature=classifier.temperature,
        metrics=metrics,
        misclassified=[
            {
                "path": paths[i],
                "label": labels[i],
                **({"group": groups[paths[i]]} if paths[i] in groups else {}),
                "predicted": classes[predicted[i]],
                "probabilities": {
                    c: round(float(p), 4) for c, p in zip(classes, probabilities[i], strict=True)
                },
            }
            for i in wrong
        ],
        groups_n=len({groups[p] for p in named}),
        error_groups=error_groups(
            [groups.get(p) for p in paths], labels, [classes[k] for k in predicted]
        ),
        paths=paths,
        labels=labels,
        probabilities=probabilities,
        planes=planes or [None] * len(paths),
    )


def error_groups(groups: list[str | None], truth: list[str], predicted: list[str]) -> list[dict]:
    """The groups (patients) with at least one error, most errors first: each with its label(s),
    its number of images, of errors, and what its errors were called."""
    members: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        if group:
            members.setdefault(group, []).append(i)
    rows = []
    for group, indices in members.items():
        wrong = [i for i in indices if truth[i] != predicted[i]]
        if wrong:
            rows.append(
                {
                    "group": group,
                    "label": "/".join(sorted({truth[i] for i in indices})),
                    "n": len(indices),
                    "wrong": len(wrong),
                    "predicted": dict(Counter(predicted[i] for i in wrong).most_common()),
                }
            )
    return sorted(rows, key=lambda row: (-row["wrong"], row["group"]))


def accuracy_by(groups: list[str | None], truth: list[str], predicted: list[str]) -> list[dict]:
    """Accuracy with its Wilson interval per group (e.g. view plane); images without one are
    left out."""
    from brat.evaluation.metrics import wilson_interval

    rows = []
    for group in sorted({g for g in groups if g}):
        hits = [t == p for g, t, p in zip(groups, truth, predicted, strict=True) if g == group]
        low, high = wilson_interval(sum(hits), len(hits))
        rows.append(
            {
                "group": group,
                "n": len(hits),
                "accuracy": sum(hits) / len(hits),
                "low": low,
                "high": high,
            }
        )
    return rows


def group_errors_text(row: dict) -> str:
    """One row of `error_groups` in a few words: "GROUP (LABEL): ERRORS of IMAGES"."""
    return f"{row['group']} ({row['label']}): {row['wrong']} of {row['n']}"


def error_groups_text(rows: list[dict], groups_n: int, shown: int = 3) -> str:
    """One sentence on how an evaluation's errors (`error_groups` rows) cluster among its
    `groups_n` groups ("" without groups)."""
    if not groups_n:
        return ""
    if not rows:
        return f"No errors in any of the {groups_n} groups."
    errors = sum(row["wrong"] for row in rows)
    worst = "; ".join(
        f"{group_errors_text(row)} ({', '.join(f'{k} {v}' for k, v in row['predicted'].items())})"
        for row in rows[:shown]
    )
    return (
        f"{errors} error{'s' * (errors != 1)} in {len(rows)} of the {groups_n} groups "
        f"(patients, or copies of one slice); most: {worst}."
    )
