"""`brat.analyze` and `brat explain` on the shipped model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import brat
from brat.cli import main
from brat.errors import UnreadableImageError
from tests.synthetic import make_slice


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_analyze_returns_a_calibrated_prediction_and_a_heatmap_on_the_original() -> None:
    # A wide image with the head off-centre: the heatmap must come back at the input's size.
    canvas = np.zeros((200, 320), np.uint8)
    canvas[20:180, 40:200] = make_slice(5, size=160)
    result = brat.analyze(png(canvas), name="wide.png")
    assert result.heatmap.shape == (200, 320) == result.pixels.shape
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
    assert result.heatmap[:, 210:].max() == 0.0  # nothing outside the head's square
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.label == max(result.probabilities, key=result.probabilities.get)
    assert result.target_class == result.label
    assert result.ood_score is not None  # a drawn slice: the check decides, test_ood measures it
    assert result.verdict in {result.label, "uncertain", "not a brain MRI"}
    assert set(result.timings) == {"load", "decode", "model", "map"}

    other = brat.analyze(png(canvas), target_class="pituitary_tumor")
    assert other.target_class == "pituitary_tumor"
    assert other.probabilities == pytest.approx(result.probabilities)


def test_analyze_refuses_what_it_cannot_read_or_do() -> None:
    with pytest.raises(UnreadableImageError):
        brat.analyze(b"not an image at all", name="notes.txt")
    with pytest.raises(ValueError, match="method"):
        brat.analyze(png(make_slice(1)), method="lime")
    with pytest.raises(ValueError, match="target_class"):
        brat.analyze(png(make_slice(1)), target_class="astrocytoma")


def test_explain_writes_panels_and_reports_unreadable_files(tmp_path, capsys) -> None:
    good = tmp_path / "scan.png"
    good.write_bytes(png(make_slice(2, size=150)))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["explain", str(good), str(bad), "--out", str(tmp_path / "out")]) == 1
    written = Image.open(tmp_path / "out" / "scan-gated-layercam.png")
    assert written.width == 2 * 150 + 8 and written.height > 150
    streams = capsys.readouterr()
    assert "broken.jpg: skipped" in streams.err and "scan-gated-layercam.png" in streams.out
