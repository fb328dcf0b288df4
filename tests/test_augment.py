from __future__ import annotations

import numpy as np

from brat.augment import augment_batch, named_augmentations, training_augmentation
from tests.synthetic import make_slice


def test_named_augmentations_change_a_real_slice_and_keep_its_shape() -> None:
    image = make_slice(3)
    assert set(named_augmentations()) == {"CLAHE", "RandomBrightness", "RandomBrightnessContrast"}
    for name, transform in named_augmentations().items():
        out = transform(image=image)["image"]
        assert out.shape == image.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, image), name


def test_brightness_alone_keeps_contrast() -> None:
    image = make_slice(4)
    out = named_augmentations()["RandomBrightness"](image=image)["image"].astype(float)
    inside = (image > 30) & (image < 220)  # away from clipping
    shift = out[inside] - image[inside]
    assert shift.std() < 2.0  # one offset for every pixel: brightness, not contrast


def test_the_training_pipeline_is_seeded() -> None:
    batch = np.stack([make_slice(i) for i in range(6)])
    first = augment_batch(batch, training_augmentation(seed=7))
    again = augment_batch(batch, training_augmentation(seed=7))
    other = augment_batch(batch, training_augmentation(seed=8))
    assert first.shape == batch.shape and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)
