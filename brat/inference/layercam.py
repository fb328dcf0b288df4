"""LayerCAM's gradient written out as forward operations, so ONNX Runtime can run it.

LayerCAM (Jiang et al. 2021) weighs a layer's activations by the positive part of the class
score's gradient with respect to them. TensorFlow's automatic differentiation builds that gradient
from ops that tf2onnx cannot convert (Relu6Grad, DepthwiseConv2dNativeBackpropInput, ShapeN), so
the gradient ran in TensorFlow, per image. Here the backward pass is spelt out layer by layer,
from the logits down to the explained layer, with operations both runtimes have: for each layer
of MobileNetV2's head the derivative of its output with respect to its input, applied to the
gradient arriving from above. The maps equal the automatic gradient's (the tests hold them to
tf-keras-vis' LayerCAM).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def layercam_function(model: keras.Model, layer: str, features_layer: str):
    """A function (images (n, S, S, 1), targets (n,) int32) -> (LayerCAM maps of `layer` for each
    image's target class (n, h, w), the activations of `features_layer`), for `model`: a Keras
    MobileNetV2 classifier whose layers after `layer` are those `_input_gradient` knows."""
    names = [each.name for each in model.layers]
    path = model.layers[names.index(layer) + 1 :]
    inputs: dict[int, keras.KerasTensor] = {}
    for each in path:
        for tensor in _inputs_of(each):
            inputs[id(tensor)] = tensor
    explained = model.get_layer(layer).output
    features = model.get_layer(features_layer).output
    needed = list({id(t): t for t in (*inputs.values(), explained, features)}.values())
    forward = keras.Model(model.inputs[0], [model.output, *needed])
    position = {id(tensor): i for i, tensor in enumerate(needed)}

    def layercam(images, targets):
        logits, *values = forward(images, training=False)
        value = {key: values[i] for key, i in position.items()}
        gradients = {id(model.output): tf.one_hot(targets, logits.shape[-1], dtype=logits.dtype)}
        for each in reversed(path):
            gradient = gradients.pop(id(each.output), None)
            if gradient is None:
                continue
            below = _inputs_of(each)
            for tensor, part in zip(
                below, _input_gradient(each, gradient, value[id(below[0])]), strict=True
            ):
                key = id(tensor)
                gradients[key] = gradients[key] + part if key in gradients else part
        weights = tf.nn.relu(gradients[id(explained)])
        cams = tf.nn.relu(tf.reduce_sum(value[id(explained)] * weights, axis=-1))
        return cams, value[id(features)]

    return layercam


def _inputs_of(layer) -> list:
    return list(layer._inbound_nodes[0].input_tensors)


def _input_gradient(layer, gradient, x) -> list:
    """d(score)/d(input) of `layer`, for each of its inputs, from d(score)/d(output) `gradient`
    and its (first) input `x`, at inference (batch normalisation with its moving statistics,
    dropout off)."""
    kind = type(layer).__name__
    if kind == "Dense":
        return [tf.matmul(gradient, layer.kernel, transpose_b=True)]
    if kind == "Dropout":
        return [gradient]
    if kind == "GlobalAveragePooling2D":
        area = x.shape[1] * x.shape[2]
        return [tf.broadcast_to(gradient[:, None, None, :] / area, tf.shape(x))]
    if kind == "ReLU":
        inside = (x > 0) & (x < layer.max_value) if layer.max_value is not None else x > 0
        return [gradient * tf.cast(inside, gradient.dtype)]
    if kind == "BatchNormalization":
        return [gradient * layer.gamma / tf.sqrt(layer.moving_variance + layer.epsilon)]
    if kind == "Conv2D" and layer.kernel.shape[:2] == (1, 1) and layer.strides == (1, 1):
        return [tf.nn.conv2d(gradient, tf.transpose(layer.kernel, (0, 1, 3, 2)), 1, "VALID")]
    if kind == "DepthwiseConv2D" and layer.kernel.shape[:2] == (3, 3):
        rotated = layer.kernel[::-1, ::-1]
        if layer.strides == (1, 1) and layer.padding == "same":
            return [tf.nn.depthwise_conv2d(gradient, rotated, (1, 1, 1, 1), "SAME")]
        if layer.strides == (2, 2) and layer.padding == "valid":
            spread = _between_zeros(gradient)  # the stride's skipped positions get nothing
            spread = tf.pad(spread, [[0, 0], [2, 2], [2, 2], [0, 0]])
            return [tf.nn.depthwise_conv2d(spread, rotated, (1, 1, 1, 1), "VALID")]
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = layer.padding
        height, width = gradient.shape[1], gradient.shape[2]
        return [gradient[:, top : height - bottom, left : width - right]]
    if kind == "Add":
        return [gradient] * len(_inputs_of(layer))
    raise NotImplementedError(f"no input gradient for {kind} layer {layer.name}")


def _between_zeros(x):
    """(n, h, w, c) -> (n, 2h - 1, 2w - 1, c) with x at the even positions and zeros between."""
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    rows = tf.reshape(tf.stack([x, tf.zeros_like(x)], axis=3), (-1, height, 2 * width, channels))
    rows = rows[:, :, : 2 * width - 1]
    grid = tf.stack([rows, tf.zeros_like(rows)], axis=2)
    return tf.reshape(grid, (-1, 2 * height, 2 * width - 1, channels))[:, : 2 * height - 1]
