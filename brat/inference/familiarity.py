"""Is this brain MRI slice like the ones the model learned from? (the "unfamiliar scan" score)

The not-a-brain-MRI check (`brat.inference.ood`) separates MRI slices from other pictures; this
finer score says how far an MRI slice lies from the model's training slices, so that a scan from a
scanner, sequence or view the model never saw is answered "uncertain: unlike the training scans"
rather than with a confident class. Candidates, measured by `python -m benchmarks.unfamiliar`
(docs/knowing-when-not-to-answer.md): Mahalanobis distance to the nearest class centre, relative
Mahalanobis, and the distance to the k-th nearest training slice on normalised features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brat.files import atomic_write
from brat.inference.ood import class_gaussians, mahalanobis
from brat.model_folder import FAMILIARITY_FILE

# Share of validation slices the score may flag: its threshold is this upper quantile.
FLAG_SHARE = 0.02
# The neighbour whose distance is the score.
K = 10

Score = Callable[[np.ndarray], np.ndarray]


def mahalanobis_scores(features: np.ndarray, labels: np.ndarray) -> Score:
    """Distance to the nearest class centre under the shared within-class covariance."""
    centres, precision = class_gaussians(features, labels)
    return lambda x: mahalanobis(x, centres, precision).min(axis=1)


def relative_mahalanobis_scores(features: np.ndarray, labels: np.ndarray) -> Score:
    """The nearest class's distance less the distance to one Gaussian of all the training
    features (Ren et al. 2021): what the classes explain beyond the image statistics."""
    class_score = mahalanobis_scores(features, labels)
    background = mahalanobis_scores(features, np.zeros(len(features)))
    return lambda x: class_score(x) ** 2 - background(x) ** 2


def _normalised(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def knn_scores(features: np.ndarray, k: int = 10) -> Score:
    """Distance to the k-th nearest training slice on L2-normalised features (Sun et al. 2022)."""
    bank = _normalised(features)

    def score(x: np.ndarray) -> np.ndarray:
        similarity = _normalised(x) @ bank.T  # cosine; distance^2 = 2 - 2 similarity
        kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]
        return np.sqrt(np.maximum(2.0 - 2.0 * kth, 0.0))

    return score


@dataclass(frozen=True)
class Familiarity:
    bank: np.ndarray  # (n, d) L2-normalised penultimate features of the training slices
    k: int  # the neighbour whose distance is the score
    threshold: float  # scores above it are "unlike the training scans"

    def scores(self, penultimate: np.ndarray) -> np.ndarray:
        """(n,) distance to the k-th nearest training slice; higher = less familiar."""
        similarity = _normalised(penultimate) @ self.bank.T  # float32: no copy of the bank
        kth = -np.partition(-similarity, self.k - 1, axis=1)[:, self.k - 1]
        return np.sqrt(np.maximum(2.0 - 2.0 * kth, 0.0)).astype(np.float64)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, bank=self.bank.astype(np.float16), k=np.int64(self.k), threshold=self.threshold
        )

    @classmethod
    def load(cls, path: Path) -> Familiarity:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["bank"].astype(np.float32), int(data["k"]), float(data["threshold"]))


def fit_familiarity(
    train_penultimate: np.ndarray,
    val_penultimate: np.ndarray,
    *,
    k: int = K,
    flag_share: float = FLAG_SHARE,
) -> Familiarity:
    """The training slices are the bank; the threshold flags `flag_share` of the validation's."""
    k = min(k, len(train_penultimate))
    unset = Familiarity(_normalised(train_penultimate), k, np.inf)
    threshold = float(np.quantile(unset.scores(val_penultimate), 1.0 - flag_share))
    return Familiarity(unset.bank, k, threshold)


def save_familiarity(familiarity: Familiarity, model_dir: Path) -> None:
    atomic_write(Path(model_dir) / FAMILIARITY_FILE, familiarity.save)


def load_familiarity(model_dir: Path) -> Familiarity | None:
    path = Path(model_dir) / FAMILIARITY_FILE
    return Familiarity.load(path) if path.is_file() else None
