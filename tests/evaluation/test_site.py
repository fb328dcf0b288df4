"""The site verdict on hand-made measurements, and reading a site folder's bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from brat.evaluation.metrics import classification_metrics
from brat.evaluation.selective import selective_metrics
from brat.evaluation.site import (
    FIT,
    NOT_FIT,
    TOO_FEW,
    Criteria,
    read_site,
    scans_needed,
    site_verdict,
)
from brat.labels import CLASSES
from tests.synthetic import make_slice


def measured(n: int, right: int, covered: int | None = None):
    """Metrics and sets of `n` scans, `right` of them right, the sets holding `covered`."""
    truth = np.arange(n) % 4
    probabilities = np.full((n, 4), 0.02)
    predicted = np.where(np.arange(n) < right, truth, (truth + 1) % 4)
    probabilities[np.arange(n), predicted] = 0.94
    sets = np.zeros((n, 4), bool)
    sets[np.arange(n), predicted] = True
    sets[np.arange(covered if covered is not None else n), truth[: covered or n]] = True
    metrics = classification_metrics(truth, probabilities, CLASSES)
    return metrics, selective_metrics(truth, probabilities, CLASSES, sets=sets, error_rate=0.05)


def test_the_verdict_follows_the_criteria_and_says_how_many_scans_are_needed() -> None:
    criteria = Criteria(accuracy=0.9, lower_bound=0.85, coverage=0.9)
    assert site_verdict(*measured(400, 380), criteria)[0] == FIT  # 95%, 92.4-96.9
    verdict, reasons, _ = site_verdict(*measured(400, 340), criteria)
    assert verdict == NOT_FIT and "Accuracy 85.0%" in reasons[0]
    verdict, reasons, needed = site_verdict(*measured(120, 112), criteria)  # 93.3%, 87.4-96.6
    assert verdict == FIT and needed is None
    verdict, reasons, needed = site_verdict(*measured(250, 228), criteria)  # 91.2%, 87.0-94.1
    assert verdict == FIT
    verdict, reasons, needed = site_verdict(*measured(220, 199), criteria)  # 90.5%, 85.8-93.6
    assert verdict == FIT
    verdict, reasons, needed = site_verdict(*measured(210, 189), criteria)  # 90.0%, 85.2-93.3
    assert verdict == FIT
    verdict, reasons, needed = site_verdict(*measured(40, 38), criteria)  # 95%, 83.5-98.6
    assert verdict == TOO_FEW and needed == scans_needed(0.95, 0.85)
    assert f"about {needed} scans at 95% accuracy would show it" in reasons[0]
    verdict, reasons, needed = site_verdict(*measured(10, 8), criteria)  # 80%, 49-94: unsettled
    assert verdict == TOO_FEW and needed == scans_needed(0.9, 0.85)
    strict = Criteria(accuracy=0.9, lower_bound=0.85, coverage=0.97)
    verdict, reasons, needed = site_verdict(*measured(300, 276, covered=280), strict)
    assert verdict == NOT_FIT and "hold the true class for 93.3%" in reasons[0]
    verdict, reasons, _ = site_verdict(*measured(400, 380), criteria, rejected=0.1)
    assert verdict == NOT_FIT and "10.0% of the scans were called not a brain MRI" in reasons[0]
    assert site_verdict(None, None, criteria)[0] == NOT_FIT


def test_scans_needed_is_the_fewest_that_lift_the_lower_bound() -> None:
    from brat.evaluation.metrics import wilson_interval

    n = scans_needed(0.95, 0.9)
    assert wilson_interval(round(0.95 * n), n)[0] >= 0.9
    assert wilson_interval(round(0.95 * (n - 5)), n - 5)[0] < 0.9
    assert scans_needed(0.85, 0.9) is None and scans_needed(0.9, 0.9) is None
    with pytest.raises(ValueError, match="lower_bound"):
        Criteria(accuracy=0.8, lower_bound=0.9)


def test_a_site_counts_unreadable_files_and_leaves_out_copies_with_two_labels(tmp_path) -> None:
    for i, label in enumerate(CLASSES * 3):
        (tmp_path / label).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / label / f"{i}.png"), make_slice(300 + i))
    (tmp_path / "glioma_tumor" / "broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(tmp_path / "no_tumor" / "copy.png"), make_slice(300))  # a glioma's copy
    site = read_site(tmp_path, "clinic", progress=False)
    assert site.unreadable.keys() == {"glioma_tumor/broken.png"}
    assert site.conflicts == [["glioma_tumor/0.png", "no_tumor/copy.png"]]
    assert len(site.records) == 11 and "glioma_tumor/0.png" not in {r.path for r in site.records}
    assert site.class_counts == {
        "glioma_tumor": 2,
        "meningioma_tumor": 3,
        "no_tumor": 3,
        "pituitary_tumor": 3,
    }


def test_the_card_shows_the_learning_curve_of_adapting_to_a_site(tmp_path) -> None:
    import json

    from brat.evaluation.card_sites import ADAPTATION_FILE, sites_section

    assert sites_section(tmp_path) == []
    row = {
        "accuracy": 0.5,
        "accuracy_ci95": [0.4, 0.6],
        "recall": {"no_tumor": {"n": 20, "recall": 0.3}, "glioma_tumor": {"n": 5, "recall": 1.0}},
        "coverage": 0.74,
        "mean_set_size": 2.01,
        "answered": 0.33,
        "answered_accuracy": 0.58,
        "forgetting_points": None,
    }
    curve = {
        "site_images": 25,
        "recipe": "f6-e5-lr0.0001",
        "pooled": {"0": row, "all": {**row, "accuracy": 0.9, "forgetting_points": -0.4}},
    }
    (tmp_path / ADAPTATION_FILE).write_text(json.dumps(curve))
    text = "\n".join(sites_section(tmp_path))
    assert "| glioma_tumor recall | no_tumor recall |" in text
    assert "| 0 | 50.0% (40.0%–60.0%) | 100.0% | 30.0% | 74.0%, 2.01 | 33.0%, 58.0% | — |" in text
    assert "| all | 90.0% (40.0%–60.0%)" in text and "| -0.4 points |" in text
