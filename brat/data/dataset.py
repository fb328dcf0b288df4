"""Find the images of a dataset folder, whichever public layout it uses.

Supported layouts (detected from the folder alone):
- Kaggle "Brain Tumor Classification (MRI)": ROOT/Training|Testing/<class>/*.jpg;
- Kaggle "Brain Tumor MRI Dataset": the same with glioma, meningioma, notumor, pituitary;
- class folders only: ROOT/<class>/*;
- any of these plus ROOT/metadata.csv (columns: any of path,label,group,plane,mask,source,folder,
  split,patient), which adds patient or duplicate groups, view planes, tumour masks and sources,
  and can list images itself;
- a plain folder of images without classes (for `brat planes` and scanning): labels are unknown.
Class folder names normalise to `brat.labels.CLASSES`. Hidden and non-image files are skipped.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from brat.errors import DatasetError
from brat.labels import normalise_label, normalise_plane

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"})
SPLIT_FOLDERS = {"training": "train", "train": "train", "testing": "test", "test": "test"}
METADATA_FILE = "metadata.csv"


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset; `path` and `mask` are POSIX paths relative to the dataset root."""

    path: str
    label: str | None
    original_split: str | None = None  # "train" or "test" when the folder came split
    group: str | None = None  # images that must stay on one side of any split
    plane: str | None = None  # axial, coronal or sagittal when known
    mask: str | None = None  # tumour mask image, when known
    # Where the image comes from: metadata.csv's source column, else the dataset folder's name.
    source: str | None = None
    # The dataset folder it was read from (several folders read as one: `brat.data.folders`).
    folder: str | None = None


@dataclass
class Dataset:
    root: Path
    records: list[ImageRecord]
    layout: str
    skipped: list[str] = field(default_factory=list)  # non-image files that were ignored
    warnings: list[str] = field(default_factory=list)

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    @property
    def has_splits(self) -> bool:
        return any(record.original_split for record in self.records)

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.label or "unlabelled" for r in self.records).items()))


def load_dataset(root: str | Path) -> Dataset:
    """Read the images of the dataset folder `root` (see the module docstring for layouts)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"The dataset folder {root} does not exist or is not a folder.")
    name = root.resolve().name
    root = _descend_single_wrapper(root)
    skipped: list[str] = []
    records: list[ImageRecord] = []
    split_dirs = {d: SPLIT_FOLDERS[d.name.lower()] for d in _subdirs(root) if _is_split_dir(d)}
    for split_dir, split in sorted(split_dirs.items()):
        for class_dir in _class_dirs(split_dir):
            records += _walk(root, class_dir, normalise_label(class_dir.name), split, skipped)
    for class_dir in _class_dirs(root):
        records += _walk(root, class_dir, normalise_label(class_dir.name), None, skipped)
    layout = "kaggle-splits" if split_dirs else "class-folders" if records else ""
    dataset = Dataset(root=root, records=records, layout=layout, skipped=skipped)
    if (root / METADATA_FILE).is_file():
        _merge_metadata(dataset, root / METADATA_FILE)
        dataset.layout = dataset.layout or "metadata"
    if not dataset.records:
        dataset.records = _walk(root, root, None, None, skipped)
        dataset.layout = "unlabelled"
    if not dataset.records:
        raise DatasetError(
            f"No images were found in {root}. Expected class folders such as glioma_tumor/ "
            "(optionally inside Training/ and Testing/), or a folder of JPEG, PNG, BMP, TIFF or "
            "DICOM files."
        )
    dataset.records = sorted(
        (replace(r, source=r.source or name, folder=r.folder or name) for r in dataset.records),
        key=lambda record: record.path,
    )
    return dataset


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_split_dir(folder: Path) -> bool:
    return folder.name.lower() in SPLIT_FOLDERS and bool(_class_dirs(folder))


def _class_dirs(folder: Path) -> list[Path]:
    return [d for d in _subdirs(folder) if normalise_label(d.name)]


def _descend_single_wrapper(root: Path) -> Path:
    """Kaggle archives often unpack into one extra folder; look through it."""
    while True:
        entries = [p for p in root.iterdir() if not p.name.startswith(".")]
        subdirs = [p for p in entries if p.is_dir()]
        if len(entries) != 1 or len(subdirs) != 1 or _class_dirs(root):
            return root
        root = subdirs[0]


def _walk(
    root: Path, folder: Path, label: str | None, split: str | None, skipped: list[str]
) -> list[ImageRecord]:
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue  # .DS_Store, ._resource forks, hidden folders
        if not path.is_file():
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(relative)
            continue
        found.append(ImageRecord(path=relative, label=label, original_split=split))
    return found


def _merge_metadata(dataset: Dataset, csv_path: Path) -> None:
    """Add groups, planes and masks from metadata.csv; rows may also add images themselves."""
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{csv_path} cannot be read as a CSV table ({error}).") from error
    if rows and "path" not in rows[0]:
        raise DatasetError(f"{csv_path} has no 'path' column; its columns are {list(rows[0])}.")
    by_path = {record.path: i for i, record in enumerate(dataset.records)}
    missing = conflicts = 0
    for row in rows:
        raw = (row.get("path") or "").strip()
        if raw in {"", "."}:
            continue
        relative = _inside(raw)
        if relative is None:
            missing += 1  # absolute or leading out of the folder: not in the folder
            continue
        label = normalise_label(row.get("label") or "")
        extra = {
            "group": (row.get("group") or "").strip() or None,
            "plane": normalise_plane(row.get("plane")),
            "mask": _inside((row.get("mask") or "").strip()),
            "source": (row.get("source") or "").strip() or None,
            "folder": (row.get("folder") or "").strip() or None,
        }
        if split := SPLIT_FOLDERS.get((row.get("split") or "").strip().lower()):
            extra["original_split"] = split
        if relative in by_path:
            record = dataset.records[by_path[relative]]
            if label and record.label and label != record.label:
                conflicts += 1  # The folder wins: it is what a user sees and edits.
            dataset.records[by_path[relative]] = replace(
                record, label=record.label or label, **extra
            )
        elif (dataset.root / relative).is_file():
            by_path[relative] = len(dataset.records)
            dataset.records.append(ImageRecord(path=relative, label=label, **extra))
        else:
            missing += 1
    if missing:
        dataset.warnings.append(
            f"{METADATA_FILE} lists {missing} files that are not in the folder."
        )
    if conflicts:
        dataset.warnings.append(
            f"{METADATA_FILE} gives {conflicts} images another label than their folder; "
            "the folder's label was used."
        )


def _inside(text: str) -> str | None:
    """A metadata.csv path as a POSIX path inside the dataset folder, or None for an empty, an
    absolute, a `..` or a hidden path: a dataset lists only its own visible files."""
    path = PurePosixPath(text.replace("\\", "/"))
    if path.as_posix() in {"", "."} or path.is_absolute():
        return None
    if any(part == ".." or part.startswith(".") for part in path.parts):
        return None  # out of the folder, or into a hidden entry the folder's walk skips
    return path.as_posix()
