"""Fitting a model's checks: not a brain MRI, unlike the training scans, and prediction sets.

Each check is fitted on the model's own training images and thresholded or calibrated on its
validation images (`fit_checks`), at the end of training and again by `brat fit-checks` for a
folder trained before a check existed (`fit_checks_for_model`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brat.files import atomic_write
from brat.inference.conformal import MIN_CALIBRATION_IMAGES, fit_conformal
from brat.inference.familiarity import fit_familiarity
from brat.inference.ood import fit_ood
from brat.model_folder import CONFORMAL_FILE, FAMILIARITY_FILE, OOD_FILE


def fit_checks(
    train_features: np.ndarray,
    train_penultimate: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_penultimate: np.ndarray,
    val_probabilities: np.ndarray,
    val_labels: np.ndarray,
) -> dict[str, object]:
    """File name -> fitted check, from the pooled features (`pooled_outputs`) of the training and
    validation images, the validation images' calibrated probabilities and the class indices.
    With fewer than MIN_CALIBRATION_IMAGES validation images there are no prediction sets (the
    verdict then falls back to a confidence threshold)."""
    checks = {
        OOD_FILE: fit_ood(train_features, train_labels, val_features),
        FAMILIARITY_FILE: fit_familiarity(train_penultimate, val_penultimate),
    }
    if len(val_labels) >= MIN_CALIBRATION_IMAGES:
        checks[CONFORMAL_FILE] = fit_conformal(val_probabilities, val_labels)
    return checks


def fit_checks_for_model(
    data_root: Path,
    classifier,
    *,
    without_sources: tuple[str, ...] = (),
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, object]:
    """Fit the checks of a model folder on its manifest's train and val splits (less the images
    of `without_sources`: averaged templates the model may learn from but that no scanner makes),
    save them in the folder and use them from then on."""
    from brat.data.prepared import prepare_images

    rows = [r for r in classifier.manifest_for(data_root) if r.source not in without_sources]
    plane = classifier.meta.config.plane
    rows = [r for r in rows if not plane or r.plane == plane]
    outputs, labels = {}, {}
    for split in ("train", "val"):
        chosen = [r for r in rows if r.split == split]
        images = prepare_images(
            Path(data_root),
            [r.path for r in chosen],
            classifier.image_size,
            cache_dir=cache_dir,
            progress=progress,
        )
        outputs[split] = classifier.outputs(images)
        labels[split] = np.array([classifier.classes.index(r.label) for r in chosen])
    train, val = outputs["train"], outputs["val"]
    checks = fit_checks(
        train.features,
        train.penultimate,
        labels["train"],
        val.features,
        val.penultimate,
        val.probabilities,
        labels["val"],
    )
    for name, check in checks.items():
        atomic_write(classifier.path / name, check.save)
    classifier.ood = checks[OOD_FILE]
    classifier.familiarity = checks[FAMILIARITY_FILE]
    classifier.conformal = checks.get(CONFORMAL_FILE)
    return checks
