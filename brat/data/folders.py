"""Several dataset folders read as one.

`dataset_root([A, B])` returns a folder (in brat's cache) holding a link to each folder under its
own name and a metadata.csv listing every image of both, as paths that start with that name
(`A/glioma_tumor/x.jpg`), with its label, patient group, plane, mask, original split, source
(metadata.csv's source column, else the folder's name) and folder. Everything that reads one
dataset folder (scan, split, train, evaluate, ...) reads it unchanged; the duplicate finder then
sees every image of every folder at once, so a copy of an image in another folder joins its
group and never sits on both sides of a split. A manifest's paths name their folder, so
`brat evaluate A B` finds the same images wherever the folders live, as long as their names stay.
One folder is returned as it is.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

from brat.data.dataset import METADATA_FILE, load_dataset
from brat.errors import DatasetError
from brat.files import atomic_write_text

COLUMNS = ("path", "label", "group", "plane", "mask", "split", "source", "folder")
SPLIT_NAMES = {"train": "Training", "test": "Testing"}


def dataset_root(folders: Sequence[str | Path], cache_dir: Path | None = None) -> Path:
    """The folder to read `folders` as one dataset (see the module docstring)."""
    folders = [Path(folder).expanduser() for folder in folders]
    if not folders:
        raise DatasetError("No dataset folder was given.")
    if len(folders) == 1:
        return folders[0]
    resolved = [folder.resolve() for folder in folders]
    if len(set(resolved)) < len(resolved):
        raise DatasetError("The same dataset folder was given twice.")
    from brat.data.fingerprint import default_cache_dir

    key = hashlib.sha1("\n".join(map(str, resolved)).encode()).hexdigest()[:16]
    combined = (cache_dir or default_cache_dir()) / "datasets" / key
    combined.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, folder in zip(folder_names(resolved), resolved, strict=True):
        link = combined / name
        if not (link.is_symlink() and link.resolve() == folder):
            link.unlink(missing_ok=True)
            link.symlink_to(folder, target_is_directory=True)
        dataset = load_dataset(folder)
        inside = dataset.root.resolve().relative_to(folder).as_posix()
        prefix = name if inside == "." else f"{name}/{inside}"
        for r in dataset.records:
            rows.append(
                {
                    "path": f"{prefix}/{r.path}",
                    "label": r.label or "",
                    "group": f"{name}:{r.group}" if r.group else "",
                    "plane": r.plane or "",
                    "mask": f"{prefix}/{r.mask}" if r.mask else "",
                    "split": SPLIT_NAMES.get(r.original_split or "", ""),
                    "source": r.source or name,
                    "folder": name,
                }
            )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    metadata = combined / METADATA_FILE
    text = buffer.getvalue()
    if not metadata.is_file() or metadata.read_text(encoding="utf-8") != text:
        atomic_write_text(metadata, text)
    return combined


def folder_names(folders: Sequence[Path]) -> list[str]:
    """Each folder's name, made unique with -2, -3 ... where two folders share one."""
    names: list[str] = []
    for folder in folders:
        name, n = folder.name or "data", 1
        while name in names:
            n += 1
            name = f"{folder.name}-{n}"
        names.append(name)
    return names
