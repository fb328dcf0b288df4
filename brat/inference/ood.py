"""Is this input a brain MRI slice like the ones the model learned from? (out-of-distribution)

The score is the Mahalanobis distance of an image's features to the nearest class centre of the
training images, with one covariance shared by the classes and shrunk towards a multiple of the
identity (Ledoit-Wolf), as in Lee et al. 2018, "A Simple Unified Framework for Detecting
Out-of-Distribution Samples". The features are the spatial average of a middle layer of the
classifier's own backbone (`OOD_LAYER`, stride 16): it still describes texture and contrast, which
is what separates an MRI slice from a photo, a document or noise. On the brain-mri test split
against 205 other pictures the last layer's pooled features reached a ROC AUC of 0.90, this layer
1.000 (`python -m benchmarks.ood`). The threshold is a high quantile of the validation images'
scores, so about that share of real slices passes. The model folder keeps it all in `ood.npz`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brat.model_folder import OOD_FILE

OOD_LAYER = "block_13_expand_relu"
# Share of validation slices that must pass as brain MRI.
PASS_QUANTILE = 0.995


@dataclass(frozen=True)
class OutOfDistribution:
    layer: str  # the backbone layer whose pooled activations are the features
    centres: np.ndarray  # (classes, d) class means of the training features
    precision: np.ndarray  # (d, d) inverse of the shared, shrunk within-class covariance
    threshold: float  # scores above it are "not a brain MRI slice"

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(n,) distance to the nearest class centre; higher = less like a training slice."""
        return mahalanobis(features, self.centres, self.precision).min(axis=1)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            layer=np.array(self.layer),
            centres=self.centres.astype(np.float32),
            precision=self.precision.astype(np.float32),
            threshold=np.float64(self.threshold),
        )

    @classmethod
    def load(cls, path: Path) -> OutOfDistribution:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                layer=str(data["layer"]),
                centres=data["centres"].astype(np.float64),
                precision=data["precision"].astype(np.float64),
                threshold=float(data["threshold"]),
            )


def mahalanobis(features: np.ndarray, centres: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(n, centres) Mahalanobis distance of each row of `features` to each centre."""
    features = np.asarray(features, np.float64)
    # (d P) . d per row: one matrix product (an unoptimised einsum took 2.5 ms per slice).
    offsets = (features[:, None, :] - centres[None]).reshape(-1, features.shape[1])
    squared = ((offsets @ precision) * offsets).sum(axis=1).reshape(len(features), len(centres))
    return np.sqrt(np.maximum(squared, 0.0))


def class_gaussians(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, d) class means and the (d, d) precision of the within-class covariance shared by
    the classes, shrunk towards a multiple of the identity (Ledoit-Wolf)."""
    from sklearn.covariance import LedoitWolf

    x = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    centres = np.stack([x[labels == c].mean(axis=0) for c in classes])
    within = np.concatenate([x[labels == c] - centres[i] for i, c in enumerate(classes)])
    return centres, LedoitWolf(assume_centered=True).fit(within).precision_


def fit_ood(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    *,
    layer: str = OOD_LAYER,
    quantile: float = PASS_QUANTILE,
) -> OutOfDistribution:
    """Fit on the training images' features; set the threshold on the validation images'."""
    centres, precision = class_gaussians(train_features, train_labels)
    unset = OutOfDistribution(layer, centres, precision, threshold=np.inf)
    threshold = float(np.quantile(unset.scores(val_features), quantile))
    return OutOfDistribution(layer, centres, precision, threshold)


def features_model(model, layer: str = OOD_LAYER):
    """A Keras model from the classifier's input to the spatial mean of `layer`."""
    import keras

    pooled = keras.layers.GlobalAveragePooling2D(name=f"{layer}_mean")(
        model.get_layer(layer).output
    )
    return keras.Model(model.inputs[0], pooled)


def load_ood(model_dir: Path) -> OutOfDistribution | None:
    path = Path(model_dir) / OOD_FILE
    return OutOfDistribution.load(path) if path.is_file() else None
