from __future__ import annotations

import cv2
import numpy as np
import pytest

from brat.data.preprocess import head_crop_box, percentiles, prepare_slice
from tests.synthetic import make_slice


def test_head_crop_ignores_borders_labels_and_noise() -> None:
    head = make_slice(3, size=100).astype(np.float32) / 255
    framed = np.zeros((200, 300), np.float32)
    framed[60:160, 120:220] = head
    framed[5:12, 5:60] = 1.0  # a burnt-in text label in the corner
    framed += np.random.default_rng(0).uniform(0, 0.03, framed.shape).astype(np.float32)
    top, bottom, left, right = head_crop_box(framed)
    assert abs(top - 60 - 10) < 8 and abs(bottom - 160 + 10) < 8  # the skull ellipse inside
    assert left >= 120 and right <= 220


def test_blank_image_keeps_whole_frame() -> None:
    assert head_crop_box(np.zeros((40, 60), np.float32)) == (0, 40, 0, 60)


@pytest.mark.parametrize("shape", [(128, 128), (90, 200), (300, 120)], ids=str)
def test_prepare_slice_is_square_normalised_and_source_independent(shape) -> None:
    head = make_slice(5, size=120).astype(np.float32) / 255
    canvas = np.zeros((max(shape[0], 130), max(shape[1], 130)), np.float32)
    canvas[5:125, 5:125] = head
    canvas = cv2.resize(canvas, shape[::-1]) * 0.6  # another size and a darker scanner
    image, box = prepare_slice(canvas, 64)
    reference, _ = prepare_slice(head, 64)
    assert image.shape == (64, 64) and image.dtype == np.float32
    assert image.min() >= 0 and image.max() == pytest.approx(1.0)
    assert box[1] - box[0] == box[3] - box[2]
    if shape == (128, 128):  # Same geometry: the darker copy prepares to nearly the same image.
        assert np.abs(image - reference).mean() < 0.05


def test_a_very_elongated_image_is_prepared_without_a_huge_square() -> None:
    """64 x 30,000 px would pad to a 30,000-px square (3.6 GB of float32): refused by design."""
    import tracemalloc

    from brat.data.preprocess import prepare_slice

    pixels = np.zeros((30_000, 64), np.float32)
    pixels[100:20_000, 8:56] = 0.8
    tracemalloc.start()
    image, _ = prepare_slice(pixels, 160)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert image.shape == (160, 160) and image.max() > 0
    assert peak < 200 * 1024 * 1024


@pytest.mark.parametrize("size", [1, 2, 17, 20_001])
def test_percentiles_equal_numpy(size: int) -> None:
    values = np.random.default_rng(size).random(size).astype(np.float32)
    qs = (0.0, 1.0, 50.0, 99.5, 100.0)
    np.testing.assert_allclose(percentiles(values, qs), np.percentile(values, qs), rtol=1e-6)
