"""Measures of answering and abstaining on known predictions."""

from __future__ import annotations

import numpy as np
import pytest

from brat.evaluation.selective import accuracy_answering, error_auroc, selective_metrics

CLASSES = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")


def test_selective_metrics_on_known_predictions() -> None:
    truth = np.array([0, 0, 1, 2, 3])
    probabilities = np.array(
        [
            [0.9, 0.1, 0.0, 0.0],  # right, sure
            [0.4, 0.6, 0.0, 0.0],  # wrong, set {0, 1}
            [0.1, 0.8, 0.1, 0.0],  # right
            [0.0, 0.0, 0.3, 0.7],  # wrong, set {3}: missed
            [0.0, 0.0, 0.0, 1.0],  # right
        ]
    )
    sets = probabilities >= 0.35
    familiarity = np.array([0.1, 0.5, 0.2, 0.9, 0.15])
    familiar = familiarity < 0.8
    s = selective_metrics(
        truth,
        probabilities,
        CLASSES,
        sets=sets,
        error_rate=0.1,
        familiarity=familiarity,
        familiar=familiar,
    )
    assert s.coverage == pytest.approx(0.8) and s.mean_set_size == pytest.approx(1.2)
    assert s.per_class["glioma_tumor"] == {"n": 2, "coverage": 1.0, "mean_set_size": 1.5}
    assert s.per_class["no_tumor"]["coverage"] == 0.0
    assert s.answered == pytest.approx(0.6)  # scans 0, 2, 4: one class and familiar
    assert s.answered_accuracy == 1.0
    assert s.unfamiliar == pytest.approx(0.2)
    assert s.error_auroc == {"max_probability": 1.0, "unfamiliar": 1.0}
    assert s.accuracy_at["unfamiliar"] == pytest.approx(0.75)  # 4 surest: 3 right
    assert s.curves["unfamiliar"][-1] == {"answered": 1.0, "accuracy": 0.6}


def test_auroc_and_accuracy_answering_edge_cases() -> None:
    right = np.array([True, True, False, False])
    assert error_auroc(right, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert error_auroc(right, np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert error_auroc(np.ones(3, bool), np.arange(3.0)) is None
    assert accuracy_answering(right, np.array([0.1, 0.2, 0.3, 0.4]), 0.5) == 1.0
    assert accuracy_answering(right, np.arange(4.0), 0.1) is None
