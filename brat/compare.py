"""The original project's comparison, measured: one model for every view plane against one model
per plane, on the same held-out images.

The images are the combined model's test split (its stored manifest). Each image's plane is the
one the manifest gives (a hand label, or the plane classifier's prediction written by
`brat split --planes`), else the combined model's plane classifier predicts it. A per-plane model
must not have trained or been selected on any of those images: `compare` checks its manifest, and
records every training setting in which it differs from the combined model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brat import DISCLAIMER
from brat.classifier import Classifier
from brat.errors import DatasetError
from brat.evaluate import evaluation_items
from brat.labels import PLANES
from brat.metrics import classification_metrics, softmax
from brat.planes import predict_prepared
from brat.prepared import prepare_images
from brat.train_config import TrainConfig

SUMMARY_METRICS = ("n", "accuracy", "accuracy_ci95", "tumour_accuracy", "macro_f1", "ece")


def compare_planes(
    data_root: str | Path,
    combined: Classifier,
    per_plane: dict[str, Classifier],
    *,
    split: str = "test",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict:
    """Per plane: the combined model and that plane's model on the same images of `split`; and
    over all planes, the combined model against routing each image to its plane's model."""
    missing = [plane for plane in PLANES if plane not in per_plane]
    if missing:
        raise ValueError(f"`per_plane` needs a model for every plane; missing {missing}.")
    root = Path(data_root)
    items = evaluation_items(root, combined, split)
    paths = [path for path, _ in items]
    for plane, model in per_plane.items():
        _check_held_out(model, plane, paths)
    images = prepare_images(
        root, paths, combined.image_size, cache_dir=cache_dir, progress=progress
    )
    planes, sources = _planes_of(combined, paths, images)
    truth = np.array([combined.classes.index(label) for _, label in items])

    combined_probabilities = combined.probabilities(images)
    routed = np.zeros_like(combined_probabilities)
    by_plane = {}
    for plane in PLANES:
        chosen = np.flatnonzero(planes == plane)
        if not chosen.size:
            raise DatasetError(f"The {split} split has no images of the {plane} plane.")
        model = per_plane[plane]
        if model.image_size == combined.image_size:
            plane_images = images[chosen]
        else:
            plane_paths = [paths[i] for i in chosen]
            plane_images = prepare_images(
                root, plane_paths, model.image_size, cache_dir=cache_dir, progress=progress
            )
        routed[chosen] = _in_order(model, combined, plane_images)
        by_plane[plane] = {
            "n": int(chosen.size),
            "combined": _summary(truth[chosen], combined_probabilities[chosen], combined),
            "per_plane": _summary(truth[chosen], routed[chosen], combined),
        }
    return {
        "disclaimer": DISCLAIMER,
        "split": split,
        "models": {
            "combined": str(combined.path),
            **{plane: str(per_plane[plane].path) for plane in PLANES},
        },
        "differences": {
            plane: training_differences(
                combined.meta.get("config", {}), per_plane[plane].meta.get("config", {})
            )
            for plane in PLANES
        },
        "plane_sources": {s: int((sources == s).sum()) for s in ("label", "predicted", "model")},
        "planes": by_plane,
        "all": {
            "n": len(paths),
            "combined": _summary(truth, combined_probabilities, combined),
            "per_plane": _summary(truth, routed, combined),
        },
    }


def training_differences(combined: dict, other: dict) -> dict[str, list]:
    """The training settings (brat.json "config") in which `other` differs from `combined`,
    besides its plane: dotted name -> [combined's value, other's]. A setting that an older brat
    did not record counts as its default."""
    ours, theirs = _settings(combined), _settings(other)
    return {
        name: [ours[name], theirs[name]]
        for name in ours
        if name != "plane" and ours[name] != theirs[name]
    }


def _settings(config: dict) -> dict:
    defaults = TrainConfig().to_dict()
    settings = {**defaults, **config}
    model = {**defaults["model"], **settings.pop("model")}
    return {**settings, **{f"model.{name}": value for name, value in model.items()}}


def differences_text(report: dict) -> str:
    """How the per-plane models of a `compare_planes` report were trained: with the combined
    model's settings, or which settings differ."""
    differences = report.get("differences")
    if differences is None:
        return "Their training settings were not recorded."
    groups: dict[str, list[str]] = {}
    for plane, changed in differences.items():
        settings = ", ".join(
            f"{name} {theirs} (combined: {ours})" for name, (ours, theirs) in changed.items()
        )
        groups.setdefault(settings, []).append(plane)
    sentences = []
    for settings, planes in groups.items():
        several = len(planes) > 1
        models = (", ".join(planes[:-1]) + " and " if several else "") + planes[-1]
        if settings:
            verb = "models differ" if several else "model differs"
            sentences.append(f"The {models} {verb} from the combined model in {settings}.")
        else:
            verb = "models were" if several else "model was"
            sentences.append(f"The {models} {verb} trained with the combined model's settings.")
    return " ".join(sentences)


def _check_held_out(model: Classifier, plane: str, paths: list[str]) -> None:
    """A per-plane model must have been trained for `plane` without any of `paths`."""
    own_plane = model.meta.get("config", {}).get("plane")
    if own_plane not in (None, plane):
        raise DatasetError(f"{model.path} was trained on the {own_plane} plane, not {plane}.")
    seen = {r.path for r in model.manifest if r.split in ("train", "val")} & set(paths)
    if seen:
        raise DatasetError(
            f"{model.path} trained or was selected on {len(seen)} of the images compared on "
            f"(e.g. {sorted(seen)[0]}); train it on the combined model's manifest with --plane."
        )


def _planes_of(
    combined: Classifier, paths: list[str], images: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each image's plane and where it came from: the manifest's label or prediction, else the
    combined model's plane classifier ("model")."""
    rows = {r.path: r for r in combined.manifest}
    planes = np.array([rows[p].plane if p in rows else "" for p in paths], dtype=object)
    sources = np.array([rows[p].plane_source if p in rows else "" for p in paths], dtype=object)
    unknown = np.flatnonzero(planes == "")
    if unknown.size:
        found = predict_prepared(combined, images[unknown])
        planes[unknown] = [plane for plane, _ in found]
        sources[unknown] = "model"
    return planes, sources


def _in_order(model: Classifier, combined: Classifier, images: np.ndarray) -> np.ndarray:
    """`model`'s calibrated probabilities with columns in `combined`'s class order."""
    probabilities = softmax(model.logits(images), model.temperature)
    columns = [model.classes.index(c) for c in combined.classes]
    return probabilities[:, columns]


def _summary(truth: np.ndarray, probabilities: np.ndarray, combined: Classifier) -> dict:
    metrics = classification_metrics(truth, probabilities, combined.classes)
    return {key: metrics[key] for key in SUMMARY_METRICS}


def comparison_rows(report: dict) -> list[dict]:
    """One row per plane and one for all planes: n, and accuracy (with its interval), tumour-class
    accuracy and macro-F1 of the combined and the per-plane models; for tables and the card."""
    rows = []
    for plane, row in [*report["planes"].items(), ("all planes", report["all"])]:
        line = {"plane": plane, "n": row["n"]}
        for side, name in (("combined", "combined"), ("per_plane", "per-plane")):
            metrics = row[side]
            low, high = metrics["accuracy_ci95"]
            line[f"{name} accuracy"] = metrics["accuracy"]
            line[f"{name} 95% CI"] = f"{low:.1%}–{high:.1%}"
            line[f"{name} tumour accuracy"] = metrics["tumour_accuracy"]
            line[f"{name} macro-F1"] = metrics["macro_f1"]
        rows.append(line)
    return rows


def find_plane_models(combined_path: Path, candidates: dict[str, Path]) -> dict[str, Path]:
    """plane -> model folder among `candidates` (label -> folder) trained on one plane, preferring
    the MODEL-plane folders next to the combined model."""
    import json

    found: dict[str, Path] = {}
    for plane in PLANES:
        sibling = combined_path.with_name(f"{combined_path.name}-{plane}")
        if (sibling / "model.keras").is_file():
            found[plane] = sibling
    for folder in candidates.values():
        try:
            config = json.loads((Path(folder) / "brat.json").read_text(encoding="utf-8"))["config"]
        except (OSError, ValueError, KeyError):
            continue
        plane = config.get("plane")
        if plane in PLANES and plane not in found:
            found[plane] = Path(folder)
    return found
