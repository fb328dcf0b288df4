"""Generated brain-like slices, for benchmarks and demos when no dataset is at hand."""

from __future__ import annotations

import cv2
import numpy as np


def generated_slice(seed: int, size: int = 128, structures: int = 12) -> np.ndarray:
    """An 8-bit greyscale 'slice': skull ellipse, tissue, and `structures` random blobs."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.uint8)
    centre = (size // 2, size // 2)
    axes = (int(size * rng.uniform(0.33, 0.42)), int(size * rng.uniform(0.38, 0.46)))
    cv2.ellipse(image, centre, axes, 0, 0, 360, 200, -1)
    cv2.ellipse(image, centre, (axes[0] - size // 20, axes[1] - size // 20), 0, 0, 360, 90, -1)
    for _ in range(structures):
        x = int(centre[0] + rng.uniform(-0.6, 0.6) * axes[0])
        y = int(centre[1] + rng.uniform(-0.6, 0.6) * axes[1])
        radius = (
            int(rng.integers(size // 30 + 1, size // 8)),
            int(rng.integers(size // 30 + 1, size // 8)),
        )
        cv2.ellipse(
            image,
            (x, y),
            radius,
            float(rng.uniform(0, 180)),
            0,
            360,
            int(rng.integers(20, 255)),
            -1,
        )
    image = cv2.GaussianBlur(image, (3, 3), 0)
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)
