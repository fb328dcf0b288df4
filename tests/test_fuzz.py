"""Fuzzing: mutated JPEG, PNG, TIFF and DICOM files through decode -> analyze never crash, never
hang, and fail only with UnreadableImageError (the one documented error)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

import brat
from brat.data.decode import decode_image
from brat.errors import UnreadableImageError
from brat.settings import SHIPPED_MODEL
from tests.synthetic import make_dicom, make_slice

# CI's short mode; raise it locally (e.g. BRAT_FUZZ_EXAMPLES=20000) for a longer run.
EXAMPLES = int(os.environ.get("BRAT_FUZZ_EXAMPLES", "3000"))


def _encoded(fmt: str) -> bytes:
    pixels = make_slice(4, size=64)
    if fmt == "DICOM":
        return make_dicom(pixels.astype(np.uint16) * 16)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in ("JPEG", "PNG", "TIFF", "DICOM")}


def _tall_tiff() -> bytes:
    """The TIFF the fuzzer found: its header claims 64 x 65,344 px (once a 17 GB heatmap)."""
    data = bytearray(SEEDS["TIFF"])
    length_tag = data.index(b"\x01\x01\x04\x00\x01\x00\x00\x00@\x00")  # ImageLength = 64
    data[length_tag + 9] = 0xFF
    return bytes(data)


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[fmt])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "header"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif kind == "header" and len(data) > 32:  # widths, heights, lengths live up front
            data[draw(st.integers(0, 31))] = draw(st.integers(0, 255))
    return fmt, bytes(data)


@pytest.fixture(scope="module")
def explainer():
    from brat.inference.analysis import explainer_for

    return explainer_for(SHIPPED_MODEL)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the damaged tags it skips
@settings(
    max_examples=EXAMPLES,
    deadline=10_000,  # a hang or a runaway decode fails the example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(case=mutated())
@example(case=("TIFF", _tall_tiff()))
def test_mutated_files_decode_or_fail_cleanly(case, explainer) -> None:
    fmt, data = case
    name = "scan.dcm" if fmt == "DICOM" else None
    try:
        decode_image(data, name=name)
    except UnreadableImageError as error:
        assert str(error)
        return
    result = brat.analyze(data, model=explainer, name=name)
    assert np.isfinite(list(result.probabilities.values())).all()
    assert result.heatmap.shape == result.pixels.shape
