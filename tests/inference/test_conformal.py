"""Conformal prediction sets: coverage on scores of a known distribution, never empty, nested."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brat.inference.conformal import ConformalSets, fit_conformal


def draw(rng: np.random.Generator, n: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities of noisy logits whose true class gets `signal` more."""
    labels = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), labels] += signal
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities, labels


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    signal=st.floats(0.5, 4.0),
    error_rate=st.sampled_from([0.05, 0.1, 0.2]),
)
def test_sets_cover_the_true_class_as_often_as_asked(seed, signal, error_rate) -> None:
    """Calibration and test scans from one distribution: coverage >= 1 - error rate, up to the
    sampling error of 4,000 test scans (and the finite-sample slack of 1,000 calibration ones)."""
    rng = np.random.default_rng(seed)
    sets = fit_conformal(*draw(rng, 1000, signal))
    probabilities, labels = draw(rng, 4000, signal)
    members = sets.sets(probabilities, error_rate)
    coverage = members[np.arange(len(labels)), labels].mean()
    assert coverage >= 1 - error_rate - 0.025


def test_sets_are_never_empty_and_grow_as_the_error_rate_falls() -> None:
    rng = np.random.default_rng(3)
    sets = fit_conformal(*draw(rng, 800, 2.0))
    probabilities, _ = draw(rng, 2000, 2.0)
    previous = None
    for error_rate in (0.3, 0.2, 0.1, 0.05, 0.01):
        members = sets.sets(probabilities, error_rate)
        assert members.sum(axis=1).min() >= 1
        assert members[np.arange(2000), probabilities.argmax(axis=1)].all()  # the top class
        if previous is not None:
            assert np.all(members | ~previous)  # every class of the larger rate's set stays
            assert members.sum() > previous.sum()
        previous = members


def test_sets_save_load_and_refuse_bad_input(tmp_path) -> None:
    rng = np.random.default_rng(5)
    sets = fit_conformal(*draw(rng, 300, 2.0))
    sets.save(tmp_path / "conformal.npz")
    again = ConformalSets.load(tmp_path / "conformal.npz")
    probabilities, _ = draw(rng, 100, 2.0)
    assert np.array_equal(again.sets(probabilities), sets.sets(probabilities))
    assert np.array_equal(sets.sets(probabilities), sets.sets(probabilities))  # deterministic
    with pytest.raises(ValueError, match="at least 20"):
        fit_conformal(probabilities[:5], np.zeros(5))
    with pytest.raises(ValueError, match="error_rate"):
        sets.sets(probabilities, 0.0)
