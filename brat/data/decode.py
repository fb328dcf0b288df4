"""One decode path for every input: files, uploads, bytes and arrays to a greyscale float image.

Training, the app and the command line all call `decode_image`. It accepts JPEG, PNG, BMP, TIFF
(any Pillow mode, 8 or 16 bit, EXIF orientation applied) and DICOM (modality and VOI LUTs applied),
and returns the pixels as a 2-D float32 array in [0, 1]. Every input it cannot use raises
`UnreadableImageError` with a message a clinician understands; no other exception escapes.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps

from brat.errors import UnreadableImageError

# A 6,000 x 6,000 slice is already far beyond any scanner's matrix (512 or 1,024 px is usual); the
# limit refuses decompression bombs, whose headers promise billions of pixels, before decoding.
MAX_PIXELS = 40_000_000
# Larger files are refused before they are read into memory; a single slice is a few MB at most.
MAX_FILE_BYTES = 200 * 1024 * 1024
# Below this size an image cannot show a brain slice, and later steps (cropping, hashing) need room.
MIN_SIDE = 16

PIL_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "BMP": "BMP", "TIFF": "TIFF"}
READABLE = "JPEG, PNG, BMP, TIFF or DICOM"
# ITU-R 601-2 luma, the weights Pillow itself uses for RGB -> L.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | np.ndarray


@dataclass(frozen=True)
class DecodedImage:
    """A decoded slice: greyscale pixels in [0, 1] and where they came from."""

    pixels: np.ndarray  # float32, shape (height, width), values in [0, 1]
    format: str  # "JPEG", "PNG", "BMP", "TIFF", "DICOM" or "array"
    mode: str  # Pillow mode, DICOM photometric interpretation, or the array's dtype
    bit_depth: int  # bits per sample in the source

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def decode_image(
    source: Source, *, name: str | None = None, window: tuple[float, float] | None = None
) -> DecodedImage:
    """Decode a path, bytes, file object or array into a `DecodedImage`.

    `name` (a file name) only helps recognise DICOM files stored without their preamble.
    `window` = (centre, width) overrides a DICOM file's own display window; it is ignored for
    other formats.
    """
    if isinstance(source, np.ndarray):
        return _decode_array(source)
    data, name = read_bytes(source, name)
    try:
        if _looks_like_dicom(data, name):
            return _decode_dicom(data, window)
        return _decode_pillow(data, name)
    except UnreadableImageError:
        raise
    except MemoryError as error:
        raise UnreadableImageError(
            "The image is too large to decode in memory.", "too large"
        ) from error
    except Exception as error:  # decoders raise many types; the caller sees one.
        raise UnreadableImageError(
            f"The image file is damaged or incomplete and cannot be decoded ({_detail(error)})."
        ) from error


def read_image(source: Source, *, name: str | None = None) -> np.ndarray:
    """Shortcut for `decode_image(source).pixels`."""
    return decode_image(source, name=name).pixels


def read_bytes(source: Source, name: str | None = None) -> tuple[bytes, str | None]:
    """The bytes of a path, bytes or upload, and its file name, after the size checks
    (UnreadableImageError for a missing, empty or oversized file). `brat predict` reads a scan
    with it once, to hash the bytes for the audit trail and then to decode them."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as error:
            raise UnreadableImageError(
                f"The file cannot be opened ({_detail(error)}).", "cannot be opened"
            ) from error
        if not path.is_file():
            raise UnreadableImageError("This is a folder, not an image file.", "not a file")
        _check_size(size)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise UnreadableImageError(
                f"The file cannot be read ({_detail(error)}).", "cannot be opened"
            ) from error
        return data, name or path.name
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif hasattr(source, "read"):
        with contextlib.suppress(AttributeError, OSError):
            source.seek(0)  # A re-read upload starts at its beginning.
        data = source.read(MAX_FILE_BYTES + 1)
        if not isinstance(data, bytes):
            raise UnreadableImageError(
                "The upload did not deliver binary image data.", "not an image"
            )
        name = name or getattr(source, "name", None)
    else:
        raise UnreadableImageError(
            f"Cannot read an image from a {type(source).__name__}; give a file, bytes or an array.",
            "not an image",
        )
    _check_size(len(data))
    return data, name


def _check_size(size: int) -> None:
    if size == 0:
        raise UnreadableImageError("The file is empty (0 bytes).", "empty file")
    if size > MAX_FILE_BYTES:
        raise UnreadableImageError(
            f"The file is larger than {MAX_FILE_BYTES // 2**20} MB; a single MRI slice is far "
            "smaller. Export the slice you want to analyse on its own.",
            "too large",
        )


def _check_dimensions(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise UnreadableImageError(
            f"The image claims {width} x {height} pixels, more than any MRI slice "
            f"(limit {MAX_PIXELS:,} pixels); it was refused without decoding.",
            "too large",
        )
    if min(width, height) < MIN_SIDE:
        raise UnreadableImageError(
            f"The image is only {width} x {height} pixels; a brain MRI slice needs at least "
            f"{MIN_SIDE} x {MIN_SIDE}.",
            "too small",
        )


def _looks_like_dicom(data: bytes, name: str | None) -> bool:
    if data[128:132] == b"DICM":
        return True
    return bool(name) and Path(name).suffix.lower() in {".dcm", ".dicom"}


def _decode_pillow(data: bytes, name: str | None) -> DecodedImage:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.UnidentifiedImageError as error:
            raise UnreadableImageError(
                f"This file is not an image BraTum can read. Use a {READABLE} file.",
                "not an image",
            ) from error
        except Image.DecompressionBombError as error:
            raise UnreadableImageError(
                "The image claims more pixels than any MRI slice; it was refused without decoding.",
                "too large",
            ) from error
        fmt = PIL_FORMATS.get(image.format or "")
        if fmt is None:
            raise UnreadableImageError(
                f"{image.format} images are not supported. Save the scan as a {READABLE} file.",
                "unsupported format",
            )
        _check_dimensions(*image.size)
        image = ImageOps.exif_transpose(image)  # This also loads (decodes) the pixels.
        mode = image.mode
        bit_depth = 16 if mode.startswith("I;16") else 32 if mode in {"I", "F"} else 8
        pixels = _pillow_to_grey(image)
    return DecodedImage(pixels=pixels, format=fmt, mode=mode, bit_depth=bit_depth)


def _pillow_to_grey(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in {"P", "PA"}:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode == "1":
        image, mode = image.convert("L"), "L"
    if mode == "L":
        grey = np.array(image, dtype=np.float32)
        grey /= 255.0
        return grey
    if mode == "LA":
        grey, alpha = (np.asarray(band, dtype=np.float32) / 255.0 for band in image.split())
        return grey * alpha  # Transparent parts become black, like an MRI background.
    if mode in {"RGBA", "RGBa"}:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        return (rgba[..., :3] @ LUMA) * rgba[..., 3]
    if mode.startswith("I") or mode == "F":
        return _stretch(np.asarray(image).astype(np.float64))
    # OpenCV's grey conversion uses the same weights (`LUMA`), twice as fast as a NumPy product.
    rgb = image if mode == "RGB" else image.convert("RGB")
    grey = cv2.cvtColor(np.asarray(rgb, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    grey /= 255.0
    return np.clip(grey, 0.0, 1.0, out=grey)


def _decode_dicom(data: bytes, window: tuple[float, float] | None) -> DecodedImage:
    dataset, array = _dicom_pixel_array(data)
    if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
        array = array[len(array) // 2]  # A multi-frame series: use its middle slice.
    return _dicom_image(dataset, array, window)


def _dicom_pixel_array(data: bytes):
    """The dataset and decoded pixel array of DICOM bytes, after the size checks."""
    import pydicom

    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as error:
        raise UnreadableImageError(
            f"This file is not a DICOM image BraTum can read ({_detail(error)}).",
            "not an image",
        ) from error
    if "PixelData" not in dataset:
        raise UnreadableImageError(
            "The DICOM file holds no image (it has no pixel data).", "no image data"
        )
    rows, columns = int(dataset.get("Rows", 0)), int(dataset.get("Columns", 0))
    _check_dimensions(columns, rows)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if rows * columns * frames > MAX_PIXELS:
        raise UnreadableImageError(
            f"The DICOM file holds {frames} frames of {columns} x {rows} pixels, too many to "
            "decode; export the slice you want to analyse on its own.",
            "too large",
        )
    try:
        array = dataset.pixel_array
    except Exception as error:
        syntax = getattr(dataset.file_meta, "TransferSyntaxUID", None)
        syntax_name = getattr(syntax, "name", "unknown")
        raise UnreadableImageError(
            f"The DICOM pixel data cannot be decoded (transfer syntax: {syntax_name}). "
            "Export the slice uncompressed or as PNG.",
            "unsupported format",
        ) from error
    return dataset, array


def _dicom_image(dataset, array: np.ndarray, window: tuple[float, float] | None) -> DecodedImage:
    """One frame's pixels through the modality and display lookup tables, in [0, 1]."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if array.ndim == 3:  # Colour DICOM (pydicom already converted YBR to RGB).
        pixels = _stretch(array[..., :3].astype(np.float64) @ LUMA.astype(np.float64))
    else:
        values = apply_modality_lut(array, dataset).astype(np.float64)
        if window is not None:
            values = _apply_window(values, *window)
        elif "WindowCenter" in dataset or "VOILUTSequence" in dataset:
            values = apply_voi_lut(values, dataset, index=0).astype(np.float64)
        pixels = _stretch(values)
        if photometric == "MONOCHROME1":  # Low values are white in MONOCHROME1.
            pixels = 1.0 - pixels
    bits = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 8)) or 8)
    return DecodedImage(pixels=pixels, format="DICOM", mode=photometric, bit_depth=bits)


def _apply_window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    width = max(float(width), 1.0)
    low = centre - width / 2.0
    return np.clip((values - low) / width, 0.0, 1.0)


def _decode_array(array: np.ndarray) -> DecodedImage:
    if array.dtype.kind not in "uifb":
        raise UnreadableImageError(
            f"An image array must be numeric, not {array.dtype}.", "not an image"
        )
    if array.ndim == 3 and array.shape[2] in {1, 3, 4}:
        channels = array.shape[2]
    elif array.ndim == 2:
        channels = 1
    else:
        raise UnreadableImageError(
            f"An image array must have shape (H, W) or (H, W, 1|3|4), not {array.shape}."
        )
    _check_dimensions(array.shape[1], array.shape[0])
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise UnreadableImageError("The image array holds NaN or infinite values.")
    if array.dtype == np.uint8:
        values /= 255.0
    elif array.dtype == np.bool_ or (values.min() >= 0.0 and values.max() <= 1.0):
        pass  # Already in [0, 1].
    else:
        values = _stretch(values)
    if channels == 4:
        values = (values[..., :3] @ LUMA) * values[..., 3]
    elif channels == 3:
        values = values @ LUMA
    elif values.ndim == 3:
        values = values[..., 0]
    pixels = np.ascontiguousarray(np.clip(values, 0.0, 1.0), dtype=np.float32)
    bits = array.dtype.itemsize * 8 if array.dtype.kind in "ui" else 32
    return DecodedImage(pixels=pixels, format="array", mode=str(array.dtype), bit_depth=bits)


def _stretch(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the image's own minimum and maximum (used for >8-bit data)."""
    if not np.isfinite(values).all():
        finite = values[np.isfinite(values)]
        fill = float(finite.min()) if finite.size else 0.0
        values = np.where(np.isfinite(values), values, fill)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def _detail(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:160]
