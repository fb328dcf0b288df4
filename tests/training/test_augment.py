from __future__ import annotations

import albumentations as A  # noqa: N812
import numpy as np
import pytest

from brat.training.augment import augment_batch, named_augmentations, training_augmentation
from brat.training.config import TrainConfig
from brat.training.scanner_shift import BiasField, IntensityCurve, ViewerMarks
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


def test_strong_augmentation_moves_masks_with_their_images_and_changes_more() -> None:
    batch = np.stack([make_slice(i) for i in range(24)])
    masks = (batch > 160).astype(np.uint8)
    changed = {}
    for strength in ("standard", "strong"):
        images, moved = augment_batch(batch, training_augmentation(3, strength), masks)
        assert images.shape == batch.shape and moved.shape == masks.shape
        # The moved masks sit on the bright structures of the moved images, the unmoved ones less.
        contrast = images[moved > 0].mean() - images[moved == 0].mean()
        assert contrast > images[masks > 0].mean() - images[masks == 0].mean() + 25
        changed[strength] = np.abs(images.astype(float) - batch).mean()
    assert changed["strong"] > changed["standard"]
    with pytest.raises(ValueError, match="strength"):
        training_augmentation(strength="extreme")
    with pytest.raises(ValueError, match="augmentation"):
        TrainConfig(augmentation="extreme")


@pytest.mark.parametrize(
    "transform",
    [IntensityCurve(p=1.0), BiasField(p=1.0), ViewerMarks(p=1.0)],
    ids=lambda t: type(t).__name__,
)
def test_each_scanner_shift_keeps_shape_range_and_dtype_and_is_seeded(transform) -> None:
    image = make_slice(5)
    outputs = []
    for seed in (1, 1, 2):
        pipeline = A.Compose([transform], seed=seed)
        out = pipeline(image=image)["image"]
        assert out.shape == image.shape and out.dtype == np.uint8
        outputs.append(out)
    assert np.array_equal(outputs[0], outputs[1]) and not np.array_equal(outputs[0], outputs[2])
    assert not np.array_equal(outputs[0], image)


def test_intensity_curves_keep_the_background_black_and_can_swap_contrasts() -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (8, 1))
    flips = 0
    for seed in range(40):
        out = A.Compose([IntensityCurve(p=1.0, non_monotone=0.5)], seed=seed)(image=ramp)["image"]
        assert out[0, 0] == 0  # air stays black
        curve = out[0].astype(int)
        flips += bool((np.maximum.accumulate(curve) - curve).max() > 20)  # brighter maps darker
    assert 5 < flips < 35  # about half the curves are not monotone


def test_the_scanners_pipeline_moves_masks_with_their_images() -> None:
    batch = np.stack([make_slice(i) for i in range(16)])
    masks = (batch > 160).astype(np.uint8)
    images, moved = augment_batch(batch, training_augmentation(5, "scanners"), masks)
    assert images.shape == batch.shape and images.dtype == np.uint8
    assert moved.shape == masks.shape and set(np.unique(moved)) <= {0, 1}
    standard = augment_batch(batch, training_augmentation(5, "standard"))
    assert (
        np.abs(images.astype(float) - batch).mean() > np.abs(standard.astype(float) - batch).mean()
    )
