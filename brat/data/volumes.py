"""Labelled volumes (whole studies with a known class), and the slice dataset cut from them.

A folder of labelled volumes is read from a CSV (`volumes.csv` in the folder, or one given; columns
path,label and optionally group, mask, source; paths relative to the folder), else from class
folders of NIfTI volumes and DICOM series folders (`ROOT/<class>/*.nii.gz`,
`ROOT/<class>/SERIES/`; a series is read in its own plane, as `brat.data.studies` reads it, and
masks are NIfTI). A volume's `group` is its patient: the exams of one patient, or the contrasts
of one template, stay together in every split. A tumour volume with a `mask` (a volume of the same
grid, non-zero inside the tumour) says which of its slices hold tumour; without one only the
study's class is known.

`cut_slices` cuts a volume into labelled slices in each view plane it can be read in, from the
skull base to the vertex: a no-tumour volume's slices are all no_tumor; a masked tumour volume's
slices are its class where the tumour shows (at least `TUMOUR_SHARE` of its largest
cross-section), no_tumor more than `margin` slices away from any tumour voxel, and left out in
between (the edge of a tumour, or tissue next to it that the mask may miss).
`write_slice_dataset` writes them as a dataset folder every brat command reads (class folders of
PNG slices, masks, metadata.csv with the patient group, each slice's level, and its plane where
the slice shows enough of the head to learn planes from: `PLANE_LEVELS`).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from brat.data.studies import (
    NIFTI_SUFFIXES,
    PLANE_AXES,
    kept_slices,
    oriented,
    read_study,
    read_volume,
)
from brat.errors import DatasetError, UnreadableImageError
from brat.labels import CLASSES, PLANES, normalise_label

VOLUMES_FILE = "volumes.csv"
SERIES = "series"  # the plane of a DICOM series' slices, which it is read in as it comes
# A plane is cut only where its slices are at least this many voxels on each side (a stack of 24
# thick axial slices gives no useful coronal or sagittal image).
MIN_SIDE = 64
# Slices cut for training hold more of the head than a study needs: the blurred edge of an
# averaged template is not a slice of a head.
MIN_TRAINING_CONTENT = 0.15
# A slice holds the tumour when its cross-section is at least this share of the largest one.
TUMOUR_SHARE = 0.1
# Slices this close (in slices) to a tumour voxel are neither tumour nor no-tumour slices.
MARGIN = 2
# Slices kept per volume and plane, evenly spaced from the first to the last slice of the head.
MAX_SLICES = 40
# The levels (share of the way through the volume) whose slices carry their plane in metadata.csv
# for the plane classifier: a slice near the skull or the vertex shows too little anatomy to tell
# its plane by (measured in docs/studies.md), though its plane is known.
PLANE_LEVELS = (0.25, 0.75)


@dataclass(frozen=True)
class LabelledVolume:
    path: str  # POSIX path relative to the folder
    label: str
    group: str  # the patient (or template) it belongs to
    mask: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class VolumeSlice:
    pixels: np.ndarray  # (h, w) in [0, 1], as a viewer shows it
    mask: np.ndarray | None  # (h, w) bool where the tumour is, for a masked volume
    plane: str  # axial, coronal, sagittal, or SERIES (a DICOM series, in its own plane)
    index: int  # along the plane's axis in the volume
    level: float  # index / (slices in the plane - 1): 0 inferior, posterior or right
    label: str | None  # None: left out (next to the tumour)


def find_volumes(root: str | Path, labels: str | Path | None = None) -> list[LabelledVolume]:
    """The labelled volumes of `root` (module docstring); DatasetError when there are none."""
    root = Path(root)
    table = Path(labels) if labels else root / VOLUMES_FILE
    if labels and not table.is_file():
        raise DatasetError(f"The volume list {table} does not exist.")
    volumes = _from_table(root, table) if table.is_file() else _from_class_folders(root)
    if not volumes:
        raise DatasetError(
            f"{root} holds no labelled volume: give class folders of NIfTI volumes "
            f"({', '.join(NIFTI_SUFFIXES)}) or DICOM series folders, or a {VOLUMES_FILE} with "
            "columns path,label."
        )
    return volumes


def _from_table(root: Path, table: Path) -> list[LabelledVolume]:
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    volumes = []
    for number, row in enumerate(rows, start=2):
        label = normalise_label(row.get("label") or "")
        path = (row.get("path") or "").strip()
        if not path or label not in CLASSES:
            raise DatasetError(
                f"{table}, line {number}: needs a path and one of the classes {CLASSES} "
                f"(found path={path!r}, label={row.get('label')!r})."
            )
        for relative in (path, row.get("mask")):
            if relative and not (root / relative).exists():
                raise DatasetError(f"{table}, line {number}: {root / relative} does not exist.")
        volumes.append(
            LabelledVolume(
                path,
                label,
                (row.get("group") or "").strip() or path,
                (row.get("mask") or "").strip() or None,
                (row.get("source") or "").strip() or None,
            )
        )
    return volumes


def _from_class_folders(root: Path) -> list[LabelledVolume]:
    volumes = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        label = normalise_label(folder.name)
        if label not in CLASSES:
            continue
        for path in sorted(folder.iterdir()):
            if path.name.lower().endswith(NIFTI_SUFFIXES) or is_series(path):
                relative = str(PurePosixPath(folder.name, path.name))
                volumes.append(LabelledVolume(relative, label, relative))
    return volumes


def cut_slices(
    root: str | Path,
    volume: LabelledVolume,
    planes: tuple[str, ...] = PLANES,
    max_slices: int = MAX_SLICES,
    margin: int = MARGIN,
) -> list[VolumeSlice]:
    """The labelled slices of `volume` in each of `planes` it can be cut in (module docstring)."""
    root = Path(root)
    if is_series(root / volume.path):
        study = read_study(root / volume.path)
        last = max(study.indices[-1], 1)
        kept = np.linspace(0, len(study.slices) - 1, min(max_slices, len(study.slices)))
        return [
            VolumeSlice(
                study.slices[i],
                None,
                SERIES,
                study.indices[i],
                round(study.indices[i] / last, 4),
                volume.label if volume.label == "no_tumor" else None,
            )
            for i in sorted(set(kept.round().astype(int)))
        ]
    voxels = read_volume(volume.path, root / volume.path)
    tumour = None
    if volume.mask:
        tumour = read_volume(volume.mask, root / volume.mask) > 0
        if tumour.shape != voxels.shape:
            raise UnreadableImageError(
                f"The mask {volume.mask} ({tumour.shape}) does not fit its volume "
                f"{volume.path} ({voxels.shape}).",
                "not an image",
            )
    slices = []
    for plane in planes:
        stack = np.moveaxis(voxels, PLANE_AXES[plane], 0)
        if min(stack.shape[1:]) < MIN_SIDE:
            continue
        masks = None if tumour is None else np.moveaxis(tumour, PLANE_AXES[plane], 0)
        labels = slice_labels(volume.label, masks, margin)
        kept = kept_slices(stack, float(voxels.max()), MIN_TRAINING_CONTENT)
        if len(kept) > max_slices:
            kept = [kept[i] for i in np.linspace(0, len(kept) - 1, max_slices).round().astype(int)]
        last = max(len(stack) - 1, 1)
        for i in kept:
            slices.append(
                VolumeSlice(
                    oriented(stack[i]),
                    None if masks is None else np.rot90(masks[i]),
                    plane,
                    i,
                    round(i / last, 4),
                    labels[i] if labels is not None else volume.label,
                )
            )
    return slices


def is_series(path: Path) -> bool:
    """A folder that is a volume: one DICOM series (or any folder of its files)."""
    return path.is_dir() and not path.name.startswith(".")


def slice_labels(label: str, masks: np.ndarray | None, margin: int = MARGIN) -> list | None:
    """Each slice's label along a stack of tumour masks (slices, h, w): the volume's class where
    the tumour shows, no_tumor more than `margin` slices away from any tumour voxel, None between;
    None for the whole stack when a tumour volume has no mask (only the study's class is known)."""
    if label == "no_tumor":
        return None
    if masks is None:
        return None
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    if not areas.any():
        return [None] * len(masks)
    touched = np.flatnonzero(areas)
    distance = np.abs(np.arange(len(masks))[:, None] - touched[None, :]).min(axis=1)
    shown = areas >= TUMOUR_SHARE * areas.max()
    return [
        label if shown[i] else "no_tumor" if distance[i] > margin else None
        for i in range(len(masks))
    ]


def write_slice_dataset(
    root: str | Path,
    volumes: list[LabelledVolume],
    out: str | Path,
    planes: tuple[str, ...] = PLANES,
    max_slices: int = MAX_SLICES,
    margin: int = MARGIN,
) -> dict:
    """Write the labelled slices of `volumes` under `out` as a dataset folder (class folders of
    PNG slices, masks/ for the tumour slices, metadata.csv); a tumour volume without a mask is
    skipped. Returns counts per class, plane and volume."""
    import cv2

    root, out = Path(root), Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty: give a new folder for the slices.")
    rows, skipped, planes_cut = [], [], Counter()
    for volume in volumes:
        if volume.label != "no_tumor" and not volume.mask:
            skipped.append(f"{volume.path}: a tumour volume without a mask")
            continue
        stem = _stem(volume.path)
        for item in cut_slices(root, volume, planes, max_slices, margin):
            if item.label is None:
                continue
            name = f"{stem}_{item.plane}_{item.index:03d}.png"
            path = PurePosixPath(item.label, name)
            _write_png(out / path, item.pixels, cv2)
            mask_path = None
            if item.mask is not None and item.label != "no_tumor":
                mask_path = PurePosixPath("masks", item.label, name)
                _write_png(out / mask_path, item.mask.astype(np.float32), cv2)
            planes_cut[item.plane] += 1
            rows.append(
                {
                    "path": str(path),
                    "label": item.label,
                    "source": volume.source or "",
                    "group": volume.group,
                    "plane": item.plane
                    if item.plane in PLANES and _plane_readable(item.level)
                    else "",
                    "mask": str(mask_path or ""),
                    "volume": volume.path,
                    "level": item.level,
                }
            )
    if not rows:
        raise DatasetError("No labelled slice could be cut from these volumes.")
    with (out / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {
        "slices": len(rows),
        "classes": dict(sorted(Counter(row["label"] for row in rows).items())),
        "planes": dict(sorted(planes_cut.items())),
        "volumes": dict(sorted(Counter(row["volume"] for row in rows).items())),
        "skipped": skipped,
    }


def _plane_readable(level: float) -> bool:
    low, high = PLANE_LEVELS
    return low <= level <= high


def _stem(path: str) -> str:
    name = path
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return "".join(c if c.isalnum() or c in "-." else "_" for c in name)


def _write_png(path: Path, pixels: np.ndarray, cv2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.ascontiguousarray(np.clip(pixels * 255.0, 0, 255).round().astype(np.uint8))
    if not cv2.imwrite(str(path), image):
        raise DatasetError(f"Cannot write {path}.")
