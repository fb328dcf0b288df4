"""Training the class evidence to sit on the tumour: the per-cell logits and their loss.

Under global average pooling and one dense layer, a class's logit is the mean over the last
feature map's cells of that cell's logit (its class-activation map, which is also Grad-CAM's). A
model trained with `mask_target="evidence"` gets, beside its logits, those per-cell logits from the
same weights, and a loss asking the true class's evidence to peak where the mask puts the tumour:
the cross-entropy between the tumour's share of each cell and a softmax over the cells of the true
class's cell logits. It shapes only where the evidence lies, not how strong it is, so it does not
pull against the class loss. The classifier saved after training is the plain one.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="brat")
class ClassEvidence(keras.layers.Layer):
    """The classifier's dense layer, applied to the pooled features and to every cell."""

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape) -> None:
        channels = input_shape[0][-1]
        self.kernel = self.add_weight(
            shape=(channels, self.units), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs):
        pooled, features = inputs
        logits = ops.matmul(pooled, self.kernel) + self.bias
        cells = ops.einsum("nhwk,kc->nhwc", features, self.kernel) + self.bias
        return logits, cells

    def compute_output_shape(self, input_shape):
        pooled, features = input_shape
        return (*pooled[:-1], self.units), (*features[:-1], self.units)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="brat")
def evidence_loss(y_true, y_pred):
    """Per image: -sum over cells and classes of y_true * log softmax-over-cells(y_pred).

    y_true (n, h, w, classes) holds the tumour's share of each cell (summing to 1) in the true
    class's channel and zeros elsewhere; an image without a mask is all zeros and costs nothing.
    """
    y_pred = ops.cast(y_pred, "float32")
    n, h, w, c = ops.shape(y_pred)
    flat = ops.reshape(y_pred, (n, h * w, c))
    log_share = flat - ops.logsumexp(flat, axis=1, keepdims=True)
    where = ops.reshape(ops.cast(y_true, "float32"), (n, h * w, c))
    return -ops.sum(where * log_share, axis=(1, 2))
