"""A split manifest: one row per image (path, label, split, group, plane, mask), as CSV.

Every model folder keeps the manifest it was trained on, so its held-out images are measured
wherever the dataset lives. Reading one needs neither the images nor the duplicate finder.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

from brat.data.dataset import ImageRecord
from brat.errors import DatasetError
from brat.files import atomic_write_text

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = (
    "path",
    "label",
    "split",
    "group",
    "plane",
    "plane_source",
    "mask",
    "original_split",
    "source",
    "folder",
)
# Where a row's plane comes from: a hand label (metadata.csv), or the plane classifier.
PLANE_SOURCES = ("label", "predicted")


@dataclass(frozen=True)
class ManifestRow:
    path: str
    label: str
    split: str
    group: str
    plane: str = ""
    plane_source: str = ""  # "label", "predicted", or "" when the plane is unknown
    mask: str = ""
    original_split: str = ""
    source: str = ""  # where the image comes from (metadata.csv's source, else its folder)
    folder: str = ""  # the dataset folder it was read from


def rows_for(rows: list[ManifestRow], data_root: str | Path) -> list[ManifestRow]:
    """A manifest's rows as paths under `data_root`.

    A manifest of several folders read as one names each image FOLDER/PATH. Read against those
    folders (`brat.data.folders.dataset_root`) it stays as it is; against some of them, it keeps
    their rows; against one of them alone, it keeps that folder's rows with the folder's name
    taken off their paths, so a model trained on several folders is measured on any of them. A
    one-folder manifest stays as it is.
    """
    prefixed = {r.folder for r in rows if r.folder and r.path.startswith(f"{r.folder}/")}
    data_root = Path(data_root)
    present = {folder for folder in prefixed if (data_root / folder).is_dir()}
    if not prefixed or present == prefixed:
        return rows
    if present:
        return [r for r in rows if r.folder in present]
    name = data_root.resolve().name
    prefix = f"{name}/"
    return [
        replace(r, path=r.path.removeprefix(prefix), mask=r.mask.removeprefix(prefix))
        for r in rows
        if r.folder == name
    ]


def manifest_row(record: ImageRecord, split: str, group: str) -> ManifestRow:
    """The manifest row of a dataset record placed in `split` as part of `group`."""
    return ManifestRow(
        path=record.path,
        label=record.label,
        split=split,
        group=group,
        plane=record.plane or "",
        plane_source="label" if record.plane else "",
        mask=record.mask or "",
        original_split=record.original_split or "",
        source=record.source or "",
        folder=record.folder or "",
    )


def write_manifest(rows: list[ManifestRow], path: str | Path) -> None:
    """Write the manifest atomically (a temporary file renamed into place)."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, column) for column in MANIFEST_COLUMNS])
    try:
        atomic_write_text(path, buffer.getvalue())
    except OSError as error:
        raise DatasetError(f"The manifest cannot be written to {path} ({error}).") from error


def read_manifest(path: str | Path) -> list[ManifestRow]:
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"path", "label", "split", "group"} - set(reader.fieldnames or [])
            if missing:
                raise DatasetError(
                    f"{path} is not a split manifest: it lacks the columns {sorted(missing)}."
                )
            rows = [_manifest_row(row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"The manifest {path} cannot be read ({error}).") from error
    bad = sorted({row.split for row in rows} - set(SPLITS))
    bad_sources = sorted({row.plane_source for row in rows} - {"", *PLANE_SOURCES})
    if bad_sources:
        raise DatasetError(f"{path} has unknown plane sources {bad_sources}.")
    if bad:
        raise DatasetError(f"{path} has unknown split names {bad}; expected {list(SPLITS)}.")
    return rows


def _manifest_row(row: dict) -> ManifestRow:
    values = {c: (row.get(c) or "") for c in MANIFEST_COLUMNS}
    if values["plane"] and not values["plane_source"]:
        values["plane_source"] = "label"  # Manifests before plane_source held hand labels only.
    return ManifestRow(**values)
