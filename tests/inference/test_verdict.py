"""The verdict rules on hand-made cases."""

from __future__ import annotations

import numpy as np

from brat.inference.verdict import (
    LOW_CONFIDENCE,
    NOT_MRI,
    SEVERAL_CLASSES,
    UNCERTAIN,
    UNFAMILIAR,
    answered,
    decide,
)


def test_a_class_only_for_a_familiar_brain_mri_with_a_one_class_set() -> None:
    assert decide("glioma_tumor", 0.97, ["glioma_tumor"], familiar=True) == ("glioma_tumor", [])
    assert decide("glioma_tumor", 0.55, ["glioma_tumor", "meningioma_tumor"], familiar=True) == (
        UNCERTAIN,
        [SEVERAL_CLASSES],
    )
    assert decide("no_tumor", 0.99, ["no_tumor"], familiar=False) == (UNCERTAIN, [UNFAMILIAR])
    assert decide("no_tumor", 0.5, ["no_tumor", "pituitary_tumor"], familiar=False) == (
        UNCERTAIN,
        [SEVERAL_CLASSES, UNFAMILIAR],
    )
    assert decide("no_tumor", 0.99, ["no_tumor"], in_distribution=False, familiar=False) == (
        NOT_MRI,
        [NOT_MRI],
    )


def test_without_sets_or_familiarity_the_confidence_threshold_decides() -> None:
    assert decide("pituitary_tumor", 0.59) == (UNCERTAIN, [LOW_CONFIDENCE])
    assert decide("pituitary_tumor", 0.61) == ("pituitary_tumor", [])
    # With a set, the set decides: a 50% top class alone in its set is answered.
    assert decide("pituitary_tumor", 0.5, ["pituitary_tumor"]) == ("pituitary_tumor", [])


def test_answered_applies_the_same_rules_to_a_batch() -> None:
    probabilities = np.array(
        [[0.9, 0.1, 0, 0], [0.5, 0.5, 0, 0], [0.9, 0.1, 0, 0], [0.55, 0.45, 0, 0]]
    )
    sets = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]], bool)
    familiar = np.array([True, True, False, True])
    assert answered(probabilities, sets, None, familiar).tolist() == [True, False, False, True]
    assert answered(probabilities).tolist() == [True, False, True, False]
    ood = np.array([False, True, True, True])
    assert answered(probabilities, sets, ood, familiar).tolist() == [False, False, False, True]
