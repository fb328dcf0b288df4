"""Decoded, cropped and resized copies of a dataset's images, cached for training and evaluation.

Training reads every image many times; decoding a JPEG and finding the head each time would cost
more than the network's forward pass on this CPU. `prepare_images` does it once per image size and
keeps the result as 8-bit arrays next to the fingerprint cache.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from brat.decode import decode_image
from brat.errors import BratError
from brat.fingerprint import decode_workers, default_cache_dir, file_stamp
from brat.preprocess import prepare_slice


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
    cache_file = _cache_file(root, paths, size, cache_dir)
    try:
        cached = np.load(cache_file, allow_pickle=False)
        if cached.shape == (len(paths), size, size):
            return cached
    except (OSError, ValueError):
        pass  # Not prepared yet at this size, or a damaged cache: prepare again.

    def prepare(path: str) -> np.ndarray:
        try:
            pixels = decode_image(root / path).pixels
        except BratError as error:
            raise BratError(f"{path}: {error}") from error
        image, _ = prepare_slice(pixels, size)
        return np.round(image * 255.0).astype(np.uint8)

    images = np.empty((len(paths), size, size), np.uint8)
    with ThreadPoolExecutor(max_workers=decode_workers()) as pool:
        jobs = pool.map(prepare, paths)
        bar = tqdm(
            jobs, total=len(paths), desc=f"Preparing {size} px", unit="img", disable=not progress
        )
        for i, image in enumerate(bar):
            images[i] = image
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        with temporary.open("wb") as handle:
            np.save(handle, images)
        temporary.replace(cache_file)
    except OSError:
        pass  # A read-only cache folder only costs time.
    return images


def _cache_file(root: Path, paths: list[str], size: int, cache_dir: Path | None) -> Path:
    digest = hashlib.sha1(str(root.resolve()).encode())
    for path in paths:
        digest.update(f"{path}:{file_stamp(root / path)}\n".encode())
    return (cache_dir or default_cache_dir()) / f"prepared-{size}-{digest.hexdigest()[:20]}.npy"
