"""DICOM beyond one decoded slice: every frame of a file, its display window, and the patient
fields the app shows behind a closed expander (and never stores)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from brat.data.decode import (
    Source,
    _dicom_image,
    _dicom_pixel_array,
    _looks_like_dicom,
    read_bytes,
)


def dicom_frames(source: Source, *, name: str | None = None) -> tuple[object, list[np.ndarray]]:
    """The pydicom dataset of a DICOM file and every frame of it (one for a single slice) as
    greyscale images in [0, 1], each through the same lookup tables as `decode_image`."""
    data, _ = read_bytes(source, name)
    dataset, array = _dicom_pixel_array(data)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    stack = array if frames > 1 else array[None]
    return dataset, [_dicom_image(dataset, frame, None).pixels for frame in stack]


def dicom_window(source: Source, *, name: str | None = None) -> dict | None:
    """For a greyscale DICOM: its stored value range and default display window
    ({"low", "high", "centre", "width"}), to set window/level controls; None for other images."""
    data, name = read_bytes(source, name)
    if not _looks_like_dicom(data, name):
        return None
    import pydicom
    from pydicom.pixels import apply_modality_lut

    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
        array = dataset.pixel_array
        if array.ndim != 2:
            return None
        values = apply_modality_lut(array, dataset).astype(np.float64)
    except Exception:  # decode_image reports why the file is unreadable.
        return None
    low, high = float(values.min()), float(values.max())
    centre, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if centre is None or width is None:
        centre, width = (low + high) / 2.0, max(high - low, 1.0)
    return {"low": low, "high": high, "centre": _first(centre), "width": _first(width)}


# Identifying and study fields shown, on request only, beside a DICOM scan; never in a report.
DICOM_PATIENT_FIELDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "InstitutionName",
    "ReferringPhysicianName",
    "StudyDate",
    "StudyDescription",
    "SeriesDescription",
    "Modality",
    "Manufacturer",
)


def dicom_patient_fields(source: Source, *, name: str | None = None) -> dict[str, str]:
    """The patient and study fields a DICOM header has (name -> text); {} for other images or an
    unreadable header. Read without the pixel data."""
    data, name = read_bytes(source, name)
    if not _looks_like_dicom(data, name):
        return {}
    import pydicom

    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
        return {
            field: str(dataset.get(field))
            for field in DICOM_PATIENT_FIELDS
            if dataset.get(field) not in (None, "")
        }
    except Exception:  # A damaged header: decode_image says why, if the pixels are unreadable.
        return {}


def _first(value) -> float:
    """A DICOM number, or the first of several (a header may list more than one window)."""
    return float(value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value)
