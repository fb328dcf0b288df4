from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import JPEGBaseline8Bit

from brat.data import decode
from brat.data.decode import LUMA, decode_image
from brat.data.dicom import dicom_window
from brat.errors import UnreadableImageError
from tests.synthetic import make_dicom


def _gradient(height: int = 48, width: int = 64) -> np.ndarray:
    """8-bit test pattern: a horizontal ramp, so orientation and scaling are visible."""
    return np.tile(np.linspace(0, 255, width).astype(np.uint8), (height, 1))


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


MODES = {
    "L": lambda g: Image.fromarray(g),
    "RGB": lambda g: Image.fromarray(np.stack([g] * 3, axis=-1)),
    "RGBA": lambda g: Image.fromarray(np.dstack([g, g, g, np.full_like(g, 255)])),
    "P": lambda g: Image.fromarray(np.stack([g] * 3, axis=-1)).convert("P", palette=Image.ADAPTIVE),
    "LA": lambda g: Image.fromarray(g).convert("LA"),
    "CMYK": lambda g: Image.fromarray(np.stack([g] * 3, axis=-1)).convert("CMYK"),
    "1": lambda g: Image.fromarray(g).convert("1"),
    "I;16": lambda g: Image.fromarray(g.astype(np.uint16) * 257),
}


def _writable(mode: str, fmt: str) -> bool:
    try:
        _encode(MODES[mode](_gradient()), fmt)
    except (OSError, ValueError, KeyError):
        return False  # e.g. JPEG has no alpha, BMP no 16-bit
    return True


MODE_FORMATS = [(m, f) for m in MODES for f in ("PNG", "TIFF", "BMP", "JPEG") if _writable(m, f)]


@pytest.mark.parametrize(("mode", "fmt"), MODE_FORMATS, ids=[f"{m}-{f}" for m, f in MODE_FORMATS])
def test_every_mode_decodes_to_grey_float(mode: str, fmt: str) -> None:
    decoded = decode_image(_encode(MODES[mode](_gradient()), fmt))
    assert decoded.pixels.dtype == np.float32
    assert decoded.pixels.shape == (48, 64)
    assert decoded.pixels.min() >= 0.0 and decoded.pixels.max() <= 1.0
    if mode != "1":  # A 1-bit image is thresholded; the others keep the ramp.
        row = decoded.pixels[24]
        assert row[-1] - row[0] > 0.8
        assert np.all(np.diff(row[::8]) > -0.05), "the ramp should rise from left to right"


def test_colour_becomes_luma() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
    pixels = decode_image(_encode(Image.fromarray(rgb), "PNG")).pixels
    np.testing.assert_allclose(pixels, (rgb / 255.0) @ LUMA, atol=1e-6)


def test_rgba_transparency_becomes_black() -> None:
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, 16:, 3] = 255
    pixels = decode_image(_encode(Image.fromarray(rgba), "PNG")).pixels
    assert pixels[:, :16].max() == 0.0
    assert pixels[:, 16:].min() == pytest.approx(1.0)


def test_sixteen_bit_png_and_tiff_keep_their_precision() -> None:
    values = np.tile(np.arange(0, 4096, 64, dtype=np.uint16), (20, 1))  # 12-bit data, 64 levels
    for fmt in ("PNG", "TIFF"):
        decoded = decode_image(_encode(Image.fromarray(values), fmt))
        assert decoded.bit_depth == 16
        assert decoded.pixels[0, 0] == 0.0
        assert decoded.pixels[0, -1] == pytest.approx(1.0)
        assert len(np.unique(decoded.pixels)) == 64


def test_exif_orientation_is_applied() -> None:
    image = Image.fromarray(_gradient(height=20, width=40))
    exif = Image.Exif()
    exif[0x0112] = 6  # "Rotate 90 CW to display"
    decoded = decode_image(_encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert decoded.pixels.shape == (40, 20)
    # The ramp now runs from top (dark) to bottom (bright).
    assert decoded.pixels[-1].mean() - decoded.pixels[0].mean() > 0.8


def test_path_file_object_and_array_give_the_same_pixels(tmp_path: Path) -> None:
    data = _encode(Image.fromarray(_gradient()), "PNG")
    path = tmp_path / "scan.png"
    path.write_bytes(data)
    from_path = decode_image(path).pixels
    handle = io.BytesIO(data)
    handle.read(10)  # A partly read upload is re-read from its start.
    np.testing.assert_array_equal(from_path, decode_image(handle).pixels)
    np.testing.assert_array_equal(from_path, decode_image(str(path)).pixels)
    np.testing.assert_allclose(from_path, decode_image(_gradient()).pixels, atol=1e-6)


def test_dicom_applies_modality_and_voi_lut() -> None:
    raw = np.tile(np.arange(0, 1000, 10, dtype=np.uint16), (32, 1))  # 32 x 100
    # Rescale to 0..2000, then a window of centre 500, width 200 saturates most of the ramp.
    data = make_dicom(raw, RescaleSlope=2, RescaleIntercept=0, WindowCenter=500, WindowWidth=200)
    decoded = decode_image(data)
    assert decoded.format == "DICOM"
    row = decoded.pixels[0]
    assert row[:20].max() == 0.0  # values <= 400 are below the window
    assert row[-40:].min() == pytest.approx(1.0)  # values >= 600 are above it
    # Overriding the window (the app's window/level control) shows the full range.
    wide = decode_image(data, window=(1000, 2000)).pixels[0]
    assert np.all(np.diff(wide) > 0)


def test_dicom_monochrome1_is_inverted_and_multiframe_uses_middle_frame() -> None:
    ramp = np.tile(np.arange(0, 640, 10, dtype=np.uint16), (32, 1))
    assert decode_image(make_dicom(ramp, photometric="MONOCHROME1")).pixels[0, 0] == 1.0
    frames = np.stack([np.full((32, 32), v, np.uint16) for v in (0, 100, 200)])
    frames[1, :, 16:] = 300  # Only the middle frame has structure.
    pixels = decode_image(make_dicom(frames, frames=3)).pixels
    assert pixels[:, :16].max() == 0.0 and pixels[:, 16:].min() == 1.0


def test_dicom_without_preamble_is_read_by_name(tmp_path: Path) -> None:
    data = make_dicom(np.tile(np.arange(64, dtype=np.uint16), (32, 1)))
    dataset = pydicom.dcmread(io.BytesIO(data))
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=False)
    raw = buffer.getvalue()[132:] if buffer.getvalue()[128:132] == b"DICM" else buffer.getvalue()
    path = tmp_path / "slice.dcm"
    path.write_bytes(raw)
    assert decode_image(path).format == "DICOM"


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG whose header claims width x height pixels (a decompression bomb)."""
    data = bytearray(_encode(Image.fromarray(np.zeros((16, 16), np.uint8)), "PNG"))
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of header data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _truncated(fmt: str) -> bytes:
    noise = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), fmt)
    return data[: len(data) // 2]


def _compressedmake_dicom() -> bytes:
    data = make_dicom(np.zeros((32, 32), np.uint16))
    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8 not really a jpeg \xff\xd9"])
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


def _dicom_without_pixels() -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(make_dicom(np.zeros((32, 32), np.uint16))))
    del dataset.PixelData
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


BAD_INPUTS = {
    "empty": (b"", "empty"),
    "text": (b"Patient notes: follow-up in six weeks.\n" * 10, "not an image"),
    "random-bytes": (np.random.default_rng(1).bytes(5000), "not an image"),
    "truncated-jpeg": (_truncated("JPEG"), "damaged or incomplete"),
    "truncated-png": (_truncated("PNG"), "damaged or incomplete"),
    "gif": (_encode(Image.fromarray(_gradient()), "GIF"), "not supported"),
    "png-bomb": (_png_claiming(100_000, 100_000), "refused without decoding"),
    "tiny": (_encode(Image.fromarray(np.zeros((4, 4), np.uint8)), "PNG"), "at least"),
    "dicom-no-pixels": (_dicom_without_pixels(), "no pixel data"),
    "dicom-compressed-corrupt": (_compressedmake_dicom(), "cannot be decoded"),
    "dicom-truncated": (make_dicom(np.ones((64, 64), np.uint16))[:400], "DICOM"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_inputs_raise_one_clear_error(name: str) -> None:
    data, expected = BAD_INPUTS[name]
    with pytest.raises(UnreadableImageError, match=expected):
        decode_image(data)


def test_bad_paths_and_types(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImageError, match="cannot be opened"):
        decode_image(tmp_path / "missing.png")
    with pytest.raises(UnreadableImageError, match="folder"):
        decode_image(tmp_path)
    with pytest.raises(UnreadableImageError, match="Cannot read an image from a int"):
        decode_image(42)  # type: ignore[arg-type]
    with pytest.raises(UnreadableImageError, match="shape"):
        decode_image(np.zeros((4, 32, 32)))
    with pytest.raises(UnreadableImageError, match="NaN"):
        decode_image(np.full((32, 32), np.nan))


def test_oversized_files_are_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decode, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.png"
    path.write_bytes(_encode(Image.fromarray(_truncated_noise()), "PNG"))
    with pytest.raises(UnreadableImageError, match="larger than"):
        decode_image(path)


def _truncated_noise() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 255, (64, 64), dtype=np.uint8)


def test_dicom_window_reports_the_value_range_and_default_window() -> None:
    pixels = np.linspace(100, 1100, 64 * 64).reshape(64, 64)
    data = make_dicom(pixels, WindowCenter=600, WindowWidth=400)
    window = dicom_window(data)
    assert window == {"low": 100.0, "high": 1100.0, "centre": 600.0, "width": 400.0}
    narrow = decode_image(data, window=(600.0, 200.0)).pixels
    assert narrow.min() == 0.0 and narrow.max() == 1.0
    assert (narrow == 0.0).mean() > 0.4  # everything below 500 is black
    assert dicom_window(_encode(Image.fromarray(_gradient()), "PNG")) is None
