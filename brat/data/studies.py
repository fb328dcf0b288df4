"""A study (one patient's series of slices) read into an ordered stack of greyscale slices.

Inputs: a NIfTI volume (`.nii`, `.nii.gz`, through nibabel: turned to the closest RAS orientation
and cut in the chosen view plane), a folder holding a DICOM series (the files of one
SeriesInstanceUID, ordered by their position along the slice normal, else by InstanceNumber), one
multi-frame DICOM file (its frames in order), or several 2D images the user marks as one study
(in the order given). Slices that hold almost nothing (outside the head) are left out of a volume.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brat.data.decode import read_image
from brat.errors import UnreadableImageError
from brat.labels import PLANES

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# In RAS orientation: which array axis runs across each view plane's slices.
PLANE_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
MIN_CONTENT = 0.05  # a slice whose share of voxels above 10% of the volume's maximum is below this
MAX_SLICES = 1_000
MAX_VOXELS = 512 * 512 * 500  # a volume larger than this is not one MRI series
MAX_NIFTI_BYTES = 512 * 2**20  # what a .nii.gz may unpack to (int16 voxels, or float32 ones)


@dataclass(frozen=True)
class Study:
    """The slices of one study in order, each a 2D float array in [0, 1]."""

    name: str
    kind: str  # "nifti", "dicom-series", "dicom-multiframe" or "images"
    slices: list[np.ndarray]
    indices: list[int]  # each slice's index in the volume or series (kept slices only)
    plane: str | None  # the plane the slices were cut in, where the volume says it
    skipped: int = 0  # slices left out as outside the head
    left_out: str | None = None  # files not read into the study, in words (other series, ...)


def read_study(source: Path | list[Path], plane: str = "axial") -> Study:
    """The study at `source` (see the module docstring); `plane` is used for volumes."""
    if isinstance(source, list | tuple):
        return study_from_files([(Path(p).name, Path(p)) for p in source], plane, "images")
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        return study_from_files([(p.name, p) for p in files], plane, path.name)
    return study_from_files([(path.name, path)], plane, path.name)


def study_from_files(
    files: list[tuple[str, object]], plane: str = "axial", name: str = ""
) -> Study:
    """The study of (file name, path or bytes) items, as uploads give them: one NIfTI volume,
    the DICOM files of a series (or one multi-frame file), or 2D images in the order given."""
    if plane not in PLANES:
        raise ValueError(f"`plane` must be one of {PLANES}. Received: {plane!r}")
    if not files:
        raise UnreadableImageError(f"{name or 'The study'} holds no file.", "no image data")
    if len(files) == 1 and files[0][0].lower().endswith(NIFTI_SUFFIXES):
        return _nifti(*files[0], plane)
    dicom = _dicom_items(files)
    if dicom:
        return _dicom_study(dicom, name or files[0][0], len(files) - len(dicom))
    slices = [read_image(source, name=file_name) for file_name, source in files]
    return _limited(Study(name or "study", "images", slices, list(range(len(slices))), None))


def _nifti(name: str, source, plane: str) -> Study:
    return volume_study(name, read_volume(name, source), plane)


def volume_study(name: str, volume: np.ndarray, plane: str) -> Study:
    """The study of a volume already read (`read_volume`) cut in `plane`, less the slices outside
    the head."""
    stack = np.moveaxis(volume, PLANE_AXES[plane], 0)
    keep = kept_slices(stack, float(volume.max()))
    slices = [oriented(stack[i]) for i in keep]
    return _limited(Study(name, "nifti", slices, keep, plane, len(stack) - len(keep)))


def read_volume(name: str, source) -> np.ndarray:
    """The 3D voxels of a NIfTI volume (a path or its bytes) in the closest RAS orientation, as
    float32 (a time series: its first volume); UnreadableImageError for anything else."""
    import zlib

    import nibabel

    try:
        data = source.read_bytes() if isinstance(source, Path) else bytes(source)
        if data[:2] == b"\x1f\x8b":  # gzip, unpacked no further than a volume may be
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, MAX_NIFTI_BYTES + 1)
            if len(data) > MAX_NIFTI_BYTES:
                raise UnreadableImageError(
                    f"{name} unpacks to more than {MAX_NIFTI_BYTES // 2**20} MB.", "too large"
                )
        image = nibabel.Nifti1Image.from_bytes(data)
        if int(np.prod(image.shape[:3])) > MAX_VOXELS:
            raise UnreadableImageError(
                f"{name} holds {image.shape[:3]} voxels, more than a brain MRI volume.",
                "too large",
            )
        image = nibabel.as_closest_canonical(image)
        dataobj = image.dataobj if len(image.shape) < 4 else image.dataobj[..., 0]
        volume = np.asarray(dataobj, dtype=np.float32)
    except UnreadableImageError:
        raise
    except Exception as error:
        raise UnreadableImageError(
            f"{name} is not a NIfTI volume BraTum can read ({error}).", "not an image"
        ) from error
    if volume.ndim != 3:
        raise UnreadableImageError(f"{name} is not a 3D volume.", "not an image")
    return np.nan_to_num(volume)


def kept_slices(stack: np.ndarray, volume_max: float, content: float = MIN_CONTENT) -> list[int]:
    """The indices of a stack's slices that hold the head: at least `content` of their voxels
    above a tenth of the volume's maximum."""
    floor = 0.1 * volume_max
    return [i for i, raw in enumerate(stack) if np.mean(raw > floor) >= content]


def oriented(raw: np.ndarray) -> np.ndarray:
    """A RAS slice turned as a viewer shows it (anterior or superior up, the patient's right on
    the left) and scaled to [0, 1]."""
    return np.rot90(_unit(raw))


def _dicom_items(files: list[tuple[str, object]]) -> list[tuple[object, list[np.ndarray]]]:
    """(dataset, frames) of every file that is a DICOM image; [] when none is."""
    from brat.data.dicom import dicom_frames

    items = []
    for file_name, source in files:
        try:
            items.append(dicom_frames(source, name=file_name))
        except UnreadableImageError:
            continue  # not a DICOM image: a DICOMDIR, a report, another file
    return items


def _dicom_study(
    items: list[tuple[object, list[np.ndarray]]], name: str, other_files: int = 0
) -> Study:
    """The largest series among the DICOM files, its slices in order of position; the other
    series (a scout, another sequence) and the files that hold no DICOM image are named in
    `left_out`, so the user knows to read them on their own."""
    series: dict[str, list] = defaultdict(list)
    for dataset, frames in items:
        uid = str(dataset.get("SeriesInstanceUID", "unknown"))
        series[uid] += [(_position(dataset), i, frame) for i, frame in enumerate(frames)]
    slices = max(series.values(), key=len)
    slices.sort(key=lambda item: (item[0], item[1]))
    frames = [frame for _, _, frame in slices]
    kind = "dicom-multiframe" if len(items) == 1 and len(frames) > 1 else "dicom-series"
    others = [len(s) for s in series.values() if s is not slices]
    notes = []
    if others:
        counts = ", ".join(f"{n} slice{'s' * (n > 1)}" for n in sorted(others, reverse=True))
        notes.append(
            f"{len(others)} other DICOM series ({counts}; only the largest series is read: read "
            "each series on its own)"
        )
    if other_files:
        files = "1 file that holds" if other_files == 1 else f"{other_files} files that hold"
        notes.append(f"{files} no DICOM image")
    left_out = "; ".join(notes) or None
    return _limited(Study(name, kind, frames, list(range(len(frames))), None, left_out=left_out))


def _position(dataset) -> float:
    """A slice's position along its normal (ImagePositionPatient on the cross product of
    ImageOrientationPatient), else its InstanceNumber."""
    try:
        orientation = np.array(dataset.ImageOrientationPatient, dtype=float)
        normal = np.cross(orientation[:3], orientation[3:])
        return float(np.dot(normal, np.array(dataset.ImagePositionPatient, dtype=float)))
    except (AttributeError, ValueError, TypeError):
        return float(dataset.get("InstanceNumber", 0) or 0)


def _limited(study: Study) -> Study:
    if not study.slices:
        raise UnreadableImageError(f"{study.name} holds no slice with an image.", "no image data")
    if len(study.slices) > MAX_SLICES:
        raise UnreadableImageError(
            f"{study.name} holds {len(study.slices)} slices, more than {MAX_SLICES}.", "too large"
        )
    return study


def _unit(values: np.ndarray) -> np.ndarray:
    """A slice scaled to [0, 1] by its own range (NaN as 0)."""
    values = np.nan_to_num(np.asarray(values, np.float32))
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)
