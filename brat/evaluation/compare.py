"""The original project's comparison, measured: one model for every view plane against one model
per plane, on the same held-out images.

The images are the combined model's test split (its stored manifest). Each image's plane is the
one the manifest gives (a hand label, or the plane classifier's prediction written by
`brat split --planes`), else the combined model's plane classifier predicts it. A per-plane model
must not have trained or been selected on any of those images: `compare` checks its manifest, and
records every training setting in which it differs from the combined model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brat import DISCLAIMER
from brat.data.prepared import prepare_images
from brat.errors import BratError, DatasetError
from brat.evaluation.evaluate import evaluation_items
from brat.evaluation.metrics import classification_metrics, softmax
from brat.inference.classifier import Classifier
from brat.inference.planes import predict_prepared
from brat.labels import PLANES
from brat.model_folder import MODEL_FILE, read_meta
from brat.training.config import TrainConfig

SUMMARY_METRICS = ("n", "accuracy", "accuracy_ci95", "tumour_accuracy", "macro_f1", "ece")


@dataclass(frozen=True)
class PlaneComparison:
    """The combined model against one model per plane on the same images (`compare_planes`)."""

    split: str
    models: dict[str, str]  # "combined" and each plane -> model folder
    differences: dict[str, dict] | None  # plane -> `training_differences`; None: not recorded
    plane_sources: dict[str, int]  # how each image's plane was known: label, predicted, model
    planes: dict[str, dict]  # plane -> n, and SUMMARY_METRICS of "combined" and "per_plane"
    all: dict  # the same over all planes, "per_plane" routing each image to its plane's model
    disclaimer: str = DISCLAIMER

    def to_json(self) -> dict:
        data = {"disclaimer": self.disclaimer, "split": self.split, "models": self.models}
        if self.differences is not None:
            data["differences"] = self.differences
        return {**data, "plane_sources": self.plane_sources, "planes": self.planes, "all": self.all}

    @classmethod
    def from_json(cls, data: dict) -> PlaneComparison:
        return cls(
            split=data["split"],
            models=data["models"],
            differences=data.get("differences"),
            plane_sources=data["plane_sources"],
            planes=data["planes"],
            all=data["all"],
        )

    def rows(self) -> list[dict]:
        """One row per plane and one for all planes: n, and accuracy (with its interval),
        tumour-class accuracy and macro-F1 of the combined and the per-plane models."""
        rows = []
        for plane, row in [*self.planes.items(), ("all planes", self.all)]:
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


def compare_planes(
    data_root: str | Path,
    combined: Classifier,
    per_plane: dict[str, Classifier],
    *,
    split: str = "test",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> PlaneComparison:
    """Per plane: the combined model and that plane's model on the same images of `split`; and
    over all planes, the combined model against routing each image to its plane's model."""
    missing = [plane for plane in PLANES if plane not in per_plane]
    if missing:
        raise ValueError(f"`per_plane` needs a model for every plane; missing {missing}.")
    root = Path(data_root)
    items = evaluation_items(root, combined, split)
    paths = [path for path, _ in items]
    for plane, model in per_plane.items():
        _check_held_out(model, plane, paths, root)
    images = prepare_images(
        root, paths, combined.image_size, cache_dir=cache_dir, progress=progress
    )
    planes, sources = _planes_of(combined, paths, images, root)
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
    return PlaneComparison(
        split=split,
        models={
            "combined": str(combined.path),
            **{plane: str(per_plane[plane].path) for plane in PLANES},
        },
        differences={
            plane: training_differences(combined.meta.config, per_plane[plane].meta.config)
            for plane in PLANES
        },
        plane_sources={s: int((sources == s).sum()) for s in ("label", "predicted", "model")},
        planes=by_plane,
        all={
            "n": len(paths),
            "combined": _summary(truth, combined_probabilities, combined),
            "per_plane": _summary(truth, routed, combined),
        },
    )


def training_differences(combined: TrainConfig, other: TrainConfig) -> dict[str, list]:
    """The training settings in which `other` differs from `combined`, besides its plane: dotted
    name -> [combined's value, other's]."""
    ours, theirs = _settings(combined), _settings(other)
    return {
        name: [ours[name], theirs[name]]
        for name in ours
        if name != "plane" and ours[name] != theirs[name]
    }


def _settings(config: TrainConfig) -> dict:
    settings = config.to_dict()
    model = settings.pop("model")
    return {**settings, **{f"model.{name}": value for name, value in model.items()}}


def differences_text(differences: dict[str, dict] | None) -> str:
    """How the per-plane models of a comparison were trained (`PlaneComparison.differences`):
    with the combined model's settings, or which settings differ."""
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


def _check_held_out(model: Classifier, plane: str, paths: list[str], root: Path) -> None:
    """A per-plane model must have been trained for `plane` without any of `paths`."""
    own_plane = model.meta.config.plane
    if own_plane not in (None, plane):
        raise DatasetError(f"{model.path} was trained on the {own_plane} plane, not {plane}.")
    seen = {r.path for r in model.manifest_for(root) if r.split in ("train", "val")} & set(paths)
    if seen:
        raise DatasetError(
            f"{model.path} trained or was selected on {len(seen)} of the images compared on "
            f"(e.g. {sorted(seen)[0]}); train it on the combined model's manifest with --plane."
        )


def _planes_of(
    combined: Classifier, paths: list[str], images: np.ndarray, root: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Each image's plane and where it came from: the manifest's label or prediction, else the
    combined model's plane classifier ("model")."""
    rows = {r.path: r for r in combined.manifest_for(root)}
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
    return {key: getattr(metrics, key) for key in SUMMARY_METRICS}


def find_plane_models(combined_path: Path, candidates: dict[str, Path]) -> dict[str, Path]:
    """plane -> model folder among `candidates` (label -> folder) trained on one plane, preferring
    the MODEL-plane folders next to the combined model."""
    found: dict[str, Path] = {}
    for plane in PLANES:
        sibling = combined_path.with_name(f"{combined_path.name}-{plane}")
        if (sibling / MODEL_FILE).is_file():
            found[plane] = sibling
    for folder in candidates.values():
        try:
            plane = read_meta(folder).config.plane
        except BratError:
            continue
        if plane in PLANES and plane not in found:
            found[plane] = Path(folder)
    return found
