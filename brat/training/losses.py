"""The losses a training run compiles with: the class loss (optionally label-smoothed) and, with
a mask weight, the tumour-mask loss (`brat.training.evidence`, or the separate mask head's)."""

from __future__ import annotations

import keras

from brat.training.config import TrainConfig


def loss_arguments(config: TrainConfig) -> dict:
    """compile() arguments: class loss and accuracy, plus the weighted mask loss when asked."""
    if config.label_smoothing > 0:
        class_loss = SmoothedSparseCrossentropy(config.label_smoothing)
    else:
        class_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    if config.model.mask_weight <= 0:
        return {"loss": class_loss, "metrics": [accuracy]}
    if config.model.mask_target == "evidence":
        from brat.training.evidence import evidence_loss

        mask_loss = evidence_loss
    else:
        mask_loss = keras.losses.BinaryCrossentropy()
    return {
        "loss": [class_loss, mask_loss],
        "loss_weights": [1.0, config.model.mask_weight],
        "metrics": [[accuracy], []],
    }


@keras.saving.register_keras_serializable(package="brat")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of logits against integer labels smoothed towards the uniform distribution
    (Keras' sparse loss has no label smoothing)."""

    def __init__(self, label_smoothing: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.one_hot(
            keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), classes
        )
        return keras.losses.categorical_crossentropy(
            labels, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
