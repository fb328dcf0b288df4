from __future__ import annotations

import numpy as np
import pytest

from brat.evaluation.localize import image_scores


def test_scores_of_a_map_that_points_at_the_mask() -> None:
    mask = np.zeros((100, 100), bool)
    mask[40:60, 40:60] = True
    heatmap = np.zeros((100, 100), np.float32)
    heatmap[45:55, 45:55] = 1.0
    scores = image_scores(heatmap, mask)
    assert scores["pointing"] and scores["energy_in_mask"] == 1.0
    assert scores["mask_share"] == pytest.approx(0.04)
    # The hottest 15% holds the 100 hot pixels (and ties at zero are excluded): IoU 100 / 400.
    assert scores["iou_top15"] == pytest.approx(0.25)


def test_the_pointing_tolerance_is_15_pixels() -> None:
    mask = np.zeros((100, 100), bool)
    mask[40:60, 40:60] = True
    near, far = (np.zeros((100, 100), np.float32) for _ in range(2))
    near[40, 74] = 1.0  # 15 px right of the mask's edge
    far[40, 76] = 1.0  # 17 px
    assert image_scores(near, mask)["pointing"]
    assert not image_scores(far, mask)["pointing"]
    assert image_scores(far, mask)["energy_in_mask"] == 0.0


def test_a_flat_map_points_nowhere() -> None:
    mask = np.zeros((50, 50), bool)
    mask[:10, :10] = True
    scores = image_scores(np.zeros((50, 50), np.float32), mask)
    assert not scores["pointing"] and scores["energy_in_mask"] == 0.0 and scores["iou_top15"] == 0
