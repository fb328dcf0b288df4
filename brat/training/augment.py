"""Training augmentations for prepared 8-bit slices, and the named ones the Dataset page previews.

The original project used CLAHE, RandomBrightness and RandomBrightnessContrast. Albumentations 2.x
has no RandomBrightness; a RandomBrightnessContrast with zero contrast range is the same thing.
Geometric changes stay small and anatomically plausible: a left-right mirror (the hemispheres are
near-symmetric and a tumour's side does not change its class), a few degrees of rotation, a little
zoom and shift. No vertical flips: an upside-down head is not a scan anyone takes.
"""

from __future__ import annotations

import albumentations as A  # noqa: N812 (the library's own convention)
import cv2
import numpy as np

from brat.training.config import AUGMENTATIONS


def named_augmentations() -> dict[str, A.BasicTransform]:
    """Each photometric augmentation on its own, always applied, for a live preview."""
    return {
        "CLAHE": A.CLAHE(clip_limit=(1.0, 4.0), tile_grid_size=(8, 8), p=1.0),
        "RandomBrightness": A.RandomBrightnessContrast(
            brightness_limit=0.2, contrast_limit=0.0, p=1.0
        ),
        "RandomBrightnessContrast": A.RandomBrightnessContrast(
            brightness_limit=0.2, contrast_limit=0.2, p=1.0
        ),
    }


def training_augmentation(seed: int | None = None, strength: str = "standard") -> A.Compose:
    """The training pipeline: uint8 (H, W) in, uint8 (H, W) out (masks follow the geometry).

    "standard" is the shipped recipe's; "strong" widens the rotation, zoom and shift and adds an
    elastic or grid distortion, gamma, and noise or blur; "scanners" adds to the standard steps
    the looks of other scanners, sequences and saved slices (`brat.training.scanner_shift`).
    """
    if strength not in AUGMENTATIONS:
        raise ValueError(f"`strength` must be one of {AUGMENTATIONS}. Received: {strength!r}")
    strong = strength == "strong"
    photometric = named_augmentations()
    edge = {"border_mode": cv2.BORDER_CONSTANT, "fill": 0}
    geometric = [
        A.HorizontalFlip(p=0.5),
        A.Affine(
            rotate=(-15, 15) if strong else (-10, 10),
            scale=(0.85, 1.15) if strong else (0.9, 1.1),
            translate_percent=(-0.08, 0.08) if strong else (-0.05, 0.05),
            p=0.8 if strong else 0.7,
            **edge,
        ),
    ]
    if strong:
        warps = [
            A.ElasticTransform(alpha=30, sigma=6, **edge),
            A.GridDistortion(num_steps=5, distort_limit=0.2, **edge),
        ]
        geometric.append(A.OneOf(warps, p=0.3))
    intensity = [
        A.OneOf(
            [
                photometric["CLAHE"],
                photometric["RandomBrightness"],
                photometric["RandomBrightnessContrast"],
            ],
            p=0.6,
        )
    ]
    if strong:
        intensity += [
            A.RandomGamma(gamma_limit=(80, 120), p=0.3),
            A.OneOf(
                [A.GaussNoise(std_range=(0.01, 0.04)), A.GaussianBlur(blur_limit=(3, 5))], p=0.3
            ),
        ]
    if strength == "scanners":
        from brat.training.scanner_shift import scanner_shift

        intensity += scanner_shift()
    return A.Compose([*geometric, *intensity], seed=seed)


def augment_batch(images: np.ndarray, pipeline: A.Compose, masks: np.ndarray | None = None):
    """Apply `pipeline` to each uint8 image of an (n, H, W) batch; with `masks`, move each mask
    with its image (geometric steps only) and return (images, masks)."""
    if masks is None:
        return np.stack([pipeline(image=image)["image"] for image in images])
    results = [pipeline(image=image, mask=mask) for image, mask in zip(images, masks, strict=True)]
    return np.stack([r["image"] for r in results]), np.stack([r["mask"] for r in results])


def preview_augmentation(
    clip_limit: float = 2.0,
    tile_grid: int = 8,
    brightness_limit: float = 0.2,
    contrast_limit: float = 0.2,
    *,
    clahe: bool = True,
    seed: int | None = None,
) -> A.Compose:
    """CLAHE (optional) then brightness/contrast jitter, with the Dataset page's settings."""
    steps = []
    if clahe:
        steps.append(
            A.CLAHE(clip_limit=(clip_limit, clip_limit), tile_grid_size=(tile_grid,) * 2, p=1.0)
        )
    steps.append(
        A.RandomBrightnessContrast(
            brightness_limit=brightness_limit, contrast_limit=contrast_limit, p=1.0
        )
    )
    return A.Compose(steps, seed=seed)
