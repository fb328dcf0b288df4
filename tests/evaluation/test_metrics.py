from __future__ import annotations

import numpy as np
import pytest

from brat.evaluation.metrics import (
    classification_metrics,
    expected_calibration_error,
    fit_temperature,
    softmax,
    wilson_interval,
)


def test_wilson_interval_matches_the_published_formula() -> None:
    # Newcombe (1998), method 3: 81/263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_ece_of_a_hand_worked_example() -> None:
    # Two images at confidence 0.9 (one right), two at 0.6 (both right):
    # 0.5 * |0.5 - 0.9| + 0.5 * |1.0 - 0.6| = 0.4.
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    truth = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probabilities, truth) == pytest.approx(0.4)


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 4))
    true_probabilities = softmax(logits, 2.5)
    truth = np.array([rng.choice(4, p=p) for p in true_probabilities])
    temperature = fit_temperature(logits, truth)
    assert temperature == pytest.approx(2.5, rel=0.05)
    before = expected_calibration_error(softmax(logits), truth)
    after = expected_calibration_error(softmax(logits, temperature), truth)
    assert after < 0.02 < before


def test_classification_metrics_on_known_predictions() -> None:
    # Classes: glioma, meningioma, no_tumor, pituitary.
    truth = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    predicted = np.array([0, 1, 1, 1, 2, 2, 2, 3])  # one glioma as meningioma, one pituitary missed
    probabilities = np.eye(4)[predicted] * 0.7 + 0.075
    metrics = classification_metrics(truth, probabilities)
    assert metrics.n == 8 and metrics.accuracy == 0.75
    assert metrics.tumour_n == 6 and metrics.tumour_accuracy == pytest.approx(4 / 6)
    assert metrics.per_class["glioma_tumor"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert metrics.per_class["no_tumor"]["precision"] == pytest.approx(2 / 3)
    assert metrics.confusion_matrix[3] == [0, 0, 1, 1]
    assert metrics.confusion_matrix[0] == [1, 1, 0, 0]
    assert metrics.ece == pytest.approx(abs(0.75 - 0.775))
