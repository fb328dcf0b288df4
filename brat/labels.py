"""The four classes and the many ways datasets spell them."""

from __future__ import annotations

import re

CLASSES = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")
TUMOUR_CLASSES = ("glioma_tumor", "meningioma_tumor", "pituitary_tumor")
PLANES = ("axial", "coronal", "sagittal")
# Class-activation map methods (brat.inference.explain) and how the app names them.
METHODS = ("gradcam", "gradcam++", "scorecam", "layercam", "gated-layercam")
METHOD_NAMES = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "scorecam": "Score-CAM",
    "layercam": "LayerCAM",
    "gated-layercam": "Gated LayerCAM",
}
# What the app and `brat explain` show unless told otherwise: the method whose maximum falls on
# the tumour most often (`brat localize`, the model card). `brat.analyze` defaults to Grad-CAM,
# the fastest (one forward pass, no gradients).
SHOWN_METHOD = "gated-layercam"
# How a study's slices make its verdict (brat.inference.study): "strongest" (shipped), or "mean",
# the rule before it, kept for `brat evaluate --studies mean` to compare.
STUDY_RULES = ("strongest", "mean")

# Folder names seen in public datasets, after lower-casing and squashing separators to "_".
_ALIASES = {
    "glioma": "glioma_tumor",
    "glioma_tumor": "glioma_tumor",
    "glioma_tumour": "glioma_tumor",
    "meningioma": "meningioma_tumor",
    "meningioma_tumor": "meningioma_tumor",
    "meningioma_tumour": "meningioma_tumor",
    "pituitary": "pituitary_tumor",
    "pituitary_tumor": "pituitary_tumor",
    "pituitary_tumour": "pituitary_tumor",
    "notumor": "no_tumor",
    "notumour": "no_tumor",
    "no_tumor": "no_tumor",
    "no_tumour": "no_tumor",
    "healthy": "no_tumor",
    "normal": "no_tumor",
}
# The original project's angle names for the view planes.
_PLANE_ALIASES = {
    "axial": "axial",
    "top": "axial",
    "transverse": "axial",
    "coronal": "coronal",
    "back": "coronal",
    "sagittal": "sagittal",
    "left": "sagittal",
}


def _squash(name: str) -> str:
    return re.sub(r"[\s\-_]+", "_", name.strip().lower())


def normalise_label(name: str) -> str | None:
    """Map a folder or CSV label to one of `CLASSES`, or None when it names no class."""
    return _ALIASES.get(_squash(name))


def normalise_plane(name: str | None) -> str | None:
    """Map a plane label (including "top", "back", "left") to one of `PLANES`, or None."""
    if not name:
        return None
    return _PLANE_ALIASES.get(_squash(name))
