"""Decoded, cropped and resized copies of a dataset's images, cached for training and evaluation.

Training reads every image many times; decoding a JPEG and finding the head each time would cost
more than the network's forward pass on this CPU. `prepare_images` does it once per image size and
keeps the result as 8-bit arrays next to the fingerprint cache. `prepare_masks` gives the tumour
masks the same crop and resize, for training with masks as an auxiliary target.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from brat.data.decode import decode_image
from brat.data.fingerprint import decode_workers, default_cache_dir, file_stamp
from brat.data.preprocess import crop_square, head_crop_box, prepare_slice, square_box
from brat.errors import BratError
from brat.files import atomic_write


def prepare_images(
    root: Path,
    paths: list[str],
    size: int,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> np.ndarray:
    """(n, size, size) uint8 prepared slices of `paths` (relative to `root`), in order.

    Raises BratError naming the first file that cannot be read: a manifest only lists readable
    images, so an unreadable one means the folder changed after the split.
    """

    def prepare(path: str) -> np.ndarray:
        image, _ = prepare_slice(_pixels(root, path), size)
        return image

    stamps = [f"{path}:{file_stamp(root / path)}" for path in paths]
    name = f"prepared-{size}"
    return _cached(root, name, stamps, paths, prepare, size, cache_dir, progress)


def prepare_masks(
    root: Path,
    items: list[tuple[str, str | None]],
    size: int,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> np.ndarray:
    """(n, size, size) uint8 masks (0 or 255) of (image path, mask path or None) items, cropped
    and resized exactly as `prepare_images` prepares the image; no mask gives all zeros."""

    def prepare(item: tuple[str, str | None]) -> np.ndarray:
        path, mask_path = item
        if not mask_path:
            return np.zeros((size, size), np.float32)
        box = square_box(head_crop_box(_pixels(root, path)))
        mask = (_pixels(root, mask_path) > 0.5).astype(np.float32)
        return (crop_square(mask, box, size) > 0.5).astype(np.float32)

    stamps = [f"{p}:{m}:{file_stamp(root / m) if m else ''}" for p, m in items]
    name = f"masks-{size}"
    return _cached(root, name, stamps, items, prepare, size, cache_dir, progress)


def _pixels(root: Path, path: str) -> np.ndarray:
    try:
        return decode_image(root / path).pixels
    except BratError as error:
        raise BratError(f"{path}: {error}") from error


def _cached(
    root: Path,
    name: str,
    stamps: list[str],
    items: list,
    prepare: Callable[[object], np.ndarray],
    size: int,
    cache_dir: Path | None,
    progress: bool,
) -> np.ndarray:
    """Arrays of `prepare(item)` (float in [0, 1]) as uint8, cached under a digest of `stamps`."""
    digest = hashlib.sha1(str(root.resolve()).encode())
    for stamp in stamps:
        digest.update(f"{stamp}\n".encode())
    cache_file = (cache_dir or default_cache_dir()) / f"{name}-{digest.hexdigest()[:20]}.npy"
    try:
        cached = np.load(cache_file, allow_pickle=False)
        if cached.shape == (len(items), size, size):
            return cached
    except (OSError, ValueError):
        pass  # Not prepared yet at this size, or a damaged cache: prepare again.

    arrays = np.empty((len(items), size, size), np.uint8)
    with ThreadPoolExecutor(max_workers=decode_workers()) as pool:
        jobs = pool.map(prepare, items)
        bar = tqdm(
            jobs, total=len(items), desc=f"Preparing {name}", unit="img", disable=not progress
        )
        for i, array in enumerate(bar):
            arrays[i] = np.round(array * 255.0).astype(np.uint8)
    # A read-only cache folder only costs time.
    with contextlib.suppress(OSError):
        atomic_write(cache_file, lambda temporary: np.save(temporary, arrays))
    return arrays
