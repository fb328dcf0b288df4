"""Prediction sets with a coverage guarantee: split conformal prediction through MAPIE.

Calibrated on images the model never trained on (its validation split), a set holds the true class
of a new scan from the same distribution with probability at least 1 - error rate, whatever the
model. MAPIE (scikit-learn-contrib) computes the conformity scores and the quantile; the model's
calibrated probabilities reach it through `_GivenProbabilities`, an estimator that returns its
input, so MAPIE never sees the network. The score (`SCORE`) was chosen by measurement
(`python -m benchmarks.unfamiliar`, docs/knowing-when-not-to-answer.md). A set always holds the
most likely class, so it is never empty. The model folder keeps the calibration images'
probabilities and labels (`conformal.npz`), so any error rate can be asked for later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from brat.files import atomic_write
from brat.model_folder import CONFORMAL_FILE

# Adaptive prediction sets (Romano et al. 2020), not randomised: the classes in order of
# probability until their sum passes the calibrated quantile. On the shipped model's test split at
# a 5% error rate: coverage 98.6%, mean size 1.18; least ambiguous sets ("lac") are smaller (1.00)
# but cover only 95.5%, RAPS is the same as APS here (docs/knowing-when-not-to-answer.md).
SCORE = "aps"
ERROR_RATE = 0.05  # default share of scans whose true class may fall outside the set
ERROR_RATES = (0.01, 0.02, 0.05, 0.1, 0.2)  # the choices the app offers
# Fewer calibration images than this give no sets (at 5% the quantile would be the maximum).
MIN_CALIBRATION_IMAGES = 20


class _GivenProbabilities(ClassifierMixin, BaseEstimator):
    """A fitted scikit-learn classifier whose input already is the class probabilities."""

    def __init__(self, n_classes: int = 4) -> None:
        self.n_classes = n_classes

    def fit(self, x=None, y=None) -> _GivenProbabilities:
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, x) -> np.ndarray:
        return np.asarray(x, np.float64)

    def predict(self, x) -> np.ndarray:
        return np.asarray(x).argmax(axis=1)


@dataclass
class ConformalSets:
    probabilities: np.ndarray  # (n, classes) calibrated probabilities of the calibration images
    labels: np.ndarray  # (n,) their true class indices
    score: str = SCORE
    _fitted: dict = field(default_factory=dict, repr=False, compare=False)

    def _conformalized(self, error_rate: float):
        if not 0.0 < error_rate < 1.0:
            raise ValueError(f"`error_rate` must lie in (0, 1). Received: {error_rate!r}")
        if error_rate not in self._fitted:
            from mapie.classification import SplitConformalClassifier

            classes = self.probabilities.shape[1]
            mapie = SplitConformalClassifier(
                _GivenProbabilities(classes).fit(),
                confidence_level=1.0 - error_rate,
                conformity_score=self.score,
                prefit=True,
                random_state=0,  # APS draws a tie-breaking number per calibration image
            )
            self._fitted[error_rate] = mapie.conformalize(self.probabilities, self.labels)
        return self._fitted[error_rate]

    def sets(self, probabilities: np.ndarray, error_rate: float = ERROR_RATE) -> np.ndarray:
        """(n, classes) bool: which classes each scan's prediction set holds (never empty)."""
        probabilities = np.atleast_2d(np.asarray(probabilities, np.float64))
        _, sets = self._conformalized(float(error_rate)).predict_set(probabilities)
        sets = sets[:, :, 0].astype(bool)
        sets[np.arange(len(sets)), probabilities.argmax(axis=1)] = True
        return sets

    def save(self, path: Path) -> None:
        np.savez(
            path,
            probabilities=self.probabilities.astype(np.float64),
            labels=self.labels.astype(np.int64),
            score=np.array(self.score),
        )

    @classmethod
    def load(cls, path: Path) -> ConformalSets:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["probabilities"], data["labels"], str(data["score"]))


def fit_conformal(
    probabilities: np.ndarray, labels: np.ndarray, score: str = SCORE
) -> ConformalSets:
    """Prediction sets calibrated on held-out images' calibrated probabilities and true labels."""
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels, np.int64)
    if len(probabilities) != len(labels) or len(labels) < MIN_CALIBRATION_IMAGES:
        raise ValueError(
            f"Conformal calibration needs at least {MIN_CALIBRATION_IMAGES} labelled held-out "
            "images."
        )
    return ConformalSets(probabilities, labels, score)


def save_conformal(conformal: ConformalSets, model_dir: Path) -> None:
    atomic_write(Path(model_dir) / CONFORMAL_FILE, conformal.save)


def load_conformal(model_dir: Path) -> ConformalSets | None:
    path = Path(model_dir) / CONFORMAL_FILE
    return ConformalSets.load(path) if path.is_file() else None
