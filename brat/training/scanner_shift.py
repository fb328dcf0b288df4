"""Augmentations that imitate other scanners, sequences and ways of saving a slice.

brain-mri's classes coincide with its sources (every tumour slice is figshare T1 contrast, every
normal slice Br35H), so a model can learn the look of a source instead of the anatomy. These
transforms change the look and keep the anatomy, in the spirit of single-source domain
generalisation (GIN, Xu et al. 2021; RandConv, Xu et al. 2021; bias-field and intensity
augmentation as in MRI segmentation): a random smooth map of grey levels (sometimes non-monotone,
as T1 against T2 contrast), a smooth multiplicative bias field, and the marks of slices saved from
viewers and web pages (JPEG re-encoding, a frame, burnt-in text), beside albumentations' gamma,
blur and noise. No whole-image inversion: the background is black in every source, and the
non-monotone curves already swap tissue contrasts. Every transform is seeded through the
pipeline's seed.
"""

from __future__ import annotations

from typing import Any

import albumentations as A  # noqa: N812 (the library's own convention)
import cv2
import numpy as np


class IntensityCurve(A.ImageOnlyTransform):
    """Maps grey levels through a random smooth curve through `knots` points: monotone (another
    scanner's windowing) or, with probability `non_monotone`, not (another sequence's contrast).
    Black stays black: the background is air on every scanner."""

    def __init__(self, knots: int = 5, non_monotone: float = 0.3, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.knots, self.non_monotone = knots, non_monotone

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict[str, Any]:
        rng = self.random_generator
        levels = rng.uniform(0.0, 1.0, self.knots)
        if rng.uniform() >= self.non_monotone:
            levels = np.sort(levels)
        xs = np.linspace(0.0, 1.0, self.knots + 1)
        ys = np.concatenate([[0.0], levels])
        curve = np.interp(np.linspace(0.0, 1.0, 256), xs, ys)
        curve = cv2.GaussianBlur(curve.reshape(1, -1), (1, 31), 0).ravel()  # smooth, no kinks
        curve[0] = 0.0
        return {"lut": np.clip(np.round(curve * 255.0), 0, 255).astype(np.uint8)}

    def apply(self, img: np.ndarray, lut: np.ndarray, **params: Any) -> np.ndarray:
        return cv2.LUT(img, lut)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("knots", "non_monotone")


class BiasField(A.ImageOnlyTransform):
    """A smooth multiplicative field (coil inhomogeneity): a random low-order polynomial over the
    image, scaling intensities by 1 ± `strength` at most."""

    def __init__(self, strength: float = 0.3, p: float = 0.4) -> None:
        super().__init__(p=p)
        self.strength = strength

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict[str, Any]:
        return {"coefficients": self.random_generator.uniform(-1.0, 1.0, 6)}

    def apply(self, img: np.ndarray, coefficients: np.ndarray, **params: Any) -> np.ndarray:
        height, width = img.shape[:2]
        y, x = np.mgrid[-1 : 1 : height * 1j, -1 : 1 : width * 1j]
        terms = np.stack([x, y, x * y, x * x, y * y, np.ones_like(x)])
        field = np.tensordot(coefficients, terms, axes=1)
        field = 1.0 + self.strength * field / max(float(np.abs(field).max()), 1e-6)
        return np.clip(img.astype(np.float32) * field, 0, 255).astype(np.uint8)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("strength",)


class ViewerMarks(A.ImageOnlyTransform):
    """What a slice saved from a viewer or a web page carries: burnt-in text in a corner and
    sometimes a frame."""

    def __init__(self, p: float = 0.3) -> None:
        super().__init__(p=p)

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict[str, Any]:
        rng = self.random_generator
        height, width = data["image"].shape[:2]
        text = "".join(rng.choice(list("ABCDEFGHKLMNRST0123456789:/. "), int(rng.integers(4, 12))))
        corner = (int(rng.integers(2, width // 4)), int(rng.choice([height // 12, height - 4])))
        return {
            "text": text,
            "corner": corner,
            "scale": float(rng.uniform(0.25, 0.5)) * width / 160,
            "level": int(rng.integers(150, 256)),
            "frame": int(rng.integers(0, 4)) if rng.uniform() < 0.3 else 0,
        }

    def apply(
        self, img: np.ndarray, text: str, corner, scale, level, frame, **params
    ) -> np.ndarray:
        out = img.copy()
        cv2.putText(out, text, corner, cv2.FONT_HERSHEY_SIMPLEX, scale, level, 1, cv2.LINE_AA)
        if frame:
            cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), level, frame)
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


def scanner_shift() -> list[A.BasicTransform]:
    """The steps `training_augmentation(strength="scanners")` adds to the standard pipeline."""
    return [
        IntensityCurve(p=0.5),
        BiasField(p=0.4),
        A.RandomGamma(gamma_limit=(70, 150), p=0.3),
        A.OneOf([A.GaussNoise(std_range=(0.01, 0.05)), A.GaussianBlur(blur_limit=(3, 5))], p=0.3),
        ViewerMarks(p=0.2),
        A.ImageCompression(quality_range=(30, 95), p=0.4),
    ]
