"""Pictures of an analysis: heatmap overlay, side-by-side panel, hottest-region outline, PNG."""

from __future__ import annotations

import io
import textwrap

import cv2
import numpy as np
from PIL import Image, ImageDraw

from brat import DISCLAIMER

# The share of the heatmap's pixels, hottest first, that the outline encloses.
HOTTEST_FRACTION = 0.15
COLORMAPS = {"jet": cv2.COLORMAP_JET, "inferno": cv2.COLORMAP_INFERNO, "turbo": cv2.COLORMAP_TURBO}


def grey_to_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1] to (H, W, 3) uint8."""
    return np.repeat(to_uint8(pixels)[..., None], 3, axis=2)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1] to uint8."""
    return np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)


def thumbnail(pixels: np.ndarray, size: int = 160) -> np.ndarray:
    """A greyscale uint8 copy whose longer side is `size` pixels (never enlarged)."""
    scale = min(1.0, size / max(pixels.shape))
    shape = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    return to_uint8(cv2.resize(pixels, shape, interpolation=cv2.INTER_AREA))


def hottest_region(heatmap: np.ndarray, fraction: float = HOTTEST_FRACTION) -> np.ndarray:
    """Boolean mask of the `fraction` of pixels with the highest heat (empty for a flat map)."""
    if float(heatmap.max()) <= 0.0:
        return np.zeros(heatmap.shape, bool)
    threshold = np.quantile(heatmap, 1.0 - fraction)
    return (heatmap >= threshold) & (heatmap > 0)


def overlay(
    pixels: np.ndarray,
    heatmap: np.ndarray,
    opacity: float = 0.45,
    colormap: str = "jet",
    outline: bool = True,
) -> np.ndarray:
    """The scan with the coloured heatmap blended on top: (H, W, 3) uint8."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"`opacity` must be in [0, 1]. Received: opacity={opacity}")
    base = grey_to_rgb(pixels)
    heat = to_uint8(heatmap)
    coloured = cv2.cvtColor(cv2.applyColorMap(heat, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)
    blended = np.round(base * (1.0 - opacity) + coloured * opacity).astype(np.uint8)
    if outline:
        region = hottest_region(heatmap).astype(np.uint8)
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        thickness = max(1, round(max(heatmap.shape) / 256))
        cv2.drawContours(blended, contours, -1, (255, 255, 255), thickness)
    return blended


def side_by_side(pixels: np.ndarray, overlaid: np.ndarray, gap: int = 8) -> np.ndarray:
    """Original | overlay, on one (H, 2W + gap, 3) uint8 image."""
    height, width = pixels.shape
    panel = np.zeros((height, 2 * width + gap, 3), np.uint8)
    panel[:, :width] = grey_to_rgb(pixels)
    panel[:, width + gap :] = overlaid
    return panel


def png_bytes(image: np.ndarray, caption: str | None = None) -> bytes:
    """PNG of an RGB image with a caption strip and the research-use disclaimer under it."""
    picture = Image.fromarray(image)
    # Pillow's built-in font is about 6 px per character: wrap to the picture's width.
    width = max(20, picture.width // 6 - 2)
    lines = [part for line in (caption, DISCLAIMER) if line for part in textwrap.wrap(line, width)]
    strip = 16 * len(lines) + 8
    canvas = Image.new("RGB", (picture.width, picture.height + strip), "black")
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((6, picture.height + 4 + 16 * i), line, fill="white")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()
