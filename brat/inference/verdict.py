"""When BraTum answers with a class, and why it does not: the verdict rules in one place.

A scan gets its class only when it passes the not-a-brain-MRI check, its conformal prediction set
holds that one class, and it is familiar (like the training scans). Otherwise the verdict is
"uncertain" with every reason that applies, or "not a brain MRI". A model folder fitted before
prediction sets existed falls back to a confidence threshold.
"""

from __future__ import annotations

import numpy as np

NOT_MRI = "not a brain MRI"
UNCERTAIN = "uncertain"
# Reasons for "uncertain", as they are shown and exported.
SEVERAL_CLASSES = "two or more classes possible"
UNFAMILIAR = "unlike the training scans"
LOW_CONFIDENCE = "low confidence"
# Without prediction sets: below this calibrated probability a prediction is uncertain.
UNCERTAIN_BELOW = 0.6


def decide(
    label: str,
    confidence: float,
    prediction_set: list[str] | None = None,
    *,
    in_distribution: bool = True,
    familiar: bool | None = None,
) -> tuple[str, list[str]]:
    """(verdict, reasons): the class and no reasons, "uncertain" and why, or "not a brain MRI"."""
    if not in_distribution:
        return NOT_MRI, [NOT_MRI]
    reasons = []
    if prediction_set is not None:
        if len(prediction_set) > 1:
            reasons.append(SEVERAL_CLASSES)
    elif confidence < UNCERTAIN_BELOW:
        reasons.append(LOW_CONFIDENCE)
    if familiar is False:
        reasons.append(UNFAMILIAR)
    return (UNCERTAIN if reasons else label), reasons


def answered(
    probabilities: np.ndarray,
    sets: np.ndarray | None = None,
    in_distribution: np.ndarray | None = None,
    familiar: np.ndarray | None = None,
) -> np.ndarray:
    """(n,) bool: the scans of a batch that `decide` answers with a class (its rules on arrays)."""
    if sets is not None:
        result = np.asarray(sets).sum(axis=1) == 1
    else:
        result = np.asarray(probabilities).max(axis=1) >= UNCERTAIN_BELOW
    for check in (in_distribution, familiar):
        if check is not None:
            result = result & np.asarray(check, bool)
    return result
