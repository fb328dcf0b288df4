"""The training images as a tf.data pipeline: shuffled, augmented off the model's thread, with
the tumour-mask targets and per-sample weights when the run uses a mask loss."""

from __future__ import annotations

from collections import Counter

import numpy as np
import tensorflow as tf

from brat.data.manifest import ManifestRow
from brat.labels import CLASSES
from brat.training.augment import augment_batch, training_augmentation
from brat.training.config import TrainConfig


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Balanced weights n / (k * n_c): every class contributes equally to the loss."""
    counts = Counter(labels.tolist())
    return {c: len(labels) / (len(counts) * n) for c, n in counts.items()}


def source_balanced_probabilities(labels: np.ndarray, rows: list[ManifestRow]) -> np.ndarray:
    """Each training image's chance to be drawn: every class keeps its share of the images, and
    within a class each source (the row's source, else its folder) is drawn equally often."""
    sources = [r.source or r.folder for r in rows]
    cells = Counter(zip(labels.tolist(), sources, strict=True))
    sources_of = Counter(label for label, _ in cells)
    of_class = Counter(labels.tolist())
    chances = np.array(
        [
            of_class[y] / (sources_of[y] * cells[(y, source)])
            for y, source in zip(labels.tolist(), sources, strict=True)
        ]
    )
    return chances / chances.sum()


def training_data(
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    masks: np.ndarray | None = None,
    rows: list[ManifestRow] | None = None,
):
    """Shuffled (or, with `config.balance == "sources"`, source-balanced) augmented float batches
    (n, S, S, 1) in [0, 1], prefetched; an epoch is as many images as there are.

    With `masks`, each batch also carries the tumour's share of every cell of the network's last
    feature map (S/32 x S/32) and sample weights: the class weight for the label, and for the mask
    1 where the mask is known (an image with a mask, or a no_tumor image) and 0 elsewhere.
    """
    size = images.shape[1]
    with_masks = masks is not None
    if with_masks:
        known = np.array([bool(r.mask) or r.label == "no_tumor" for r in rows], np.float32)
        weights = class_weights(labels) if config.class_weights else {}
        label_weights = np.array([weights.get(int(y), 1.0) for y in labels], np.float32)
        arrays = (images, masks, labels, label_weights, known)
    else:
        arrays = (images, labels)
    if config.balance == "sources":
        chances = source_balanced_probabilities(labels, rows)
        rng = np.random.default_rng(config.seed)
        tensors = tuple(tf.constant(array) for array in arrays)
        draws = tf.data.Dataset.from_generator(  # new draws every epoch
            lambda: rng.choice(len(images), len(images), p=chances),
            output_signature=tf.TensorSpec((), tf.int64),
        )
        data = draws.map(lambda i: tuple(tf.gather(tensor, i) for tensor in tensors))
        # A generator's length is unknown to Keras: say it, so an epoch is known to be n images.
        data = data.apply(tf.data.experimental.assert_cardinality(len(images)))
    else:
        data = tf.data.Dataset.from_tensor_slices(arrays)
        data = data.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    data = data.batch(config.batch_size)
    if config.augment:
        pipeline = training_augmentation(config.seed, config.augmentation)
        workers = 1 if config.deterministic else tf.data.AUTOTUNE

        def augment(batch, *rest):
            if not with_masks:
                augmented = tf.numpy_function(
                    lambda x: augment_batch(x, pipeline), [batch], tf.uint8, stateful=True
                )
                return tf.ensure_shape(augmented, (None, size, size)), *rest
            augmented, moved = tf.numpy_function(
                lambda x, m: augment_batch(x, pipeline, m),
                [batch, rest[0]],
                [tf.uint8, tf.uint8],
                stateful=True,
            )
            shape = (None, size, size)
            return tf.ensure_shape(augmented, shape), tf.ensure_shape(moved, shape), *rest[1:]

        data = data.map(augment, num_parallel_calls=workers, deterministic=config.deterministic)

    def to_float(batch, *rest):
        x = tf.cast(batch, tf.float32)[..., None] / 255.0
        if not with_masks:
            return x, rest[0]
        mask, batch_labels, label_weights, known = rest
        cells = size // 32
        share = tf.image.resize(
            tf.cast(mask, tf.float32)[..., None] / 255.0, (cells, cells), method="area"
        )
        if config.model.mask_target == "evidence":
            # The tumour's share of each cell, summing to 1, in the true class's channel.
            total = tf.reduce_sum(share, axis=(1, 2, 3), keepdims=True)
            where = tf.math.divide_no_nan(share, total)
            target = where * tf.one_hot(batch_labels, len(CLASSES))[:, None, None, :]
            return x, (batch_labels, target), (label_weights, known)
        mask_weights = tf.broadcast_to(known[:, None, None], (tf.shape(known)[0], cells, cells))
        return x, (batch_labels, share), (label_weights, mask_weights)

    return data.map(to_float).prefetch(tf.data.AUTOTUNE)
