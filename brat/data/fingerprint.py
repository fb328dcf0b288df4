"""Pixel fingerprints of images: an exact hash of the pixels and a small normalised thumbnail.

Fingerprints are computed on decoded pixels (so a JPEG and its PNG re-encode are the same image)
and cached per dataset, keyed by path, size and modification time, so that scanning and splitting
the same folder again costs seconds rather than a full decode.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from brat.data.decode import decode_image
from brat.data.preprocess import head_crop_box
from brat.errors import BratError
from brat.files import atomic_write

THUMB_SIDE = 32  # The confirming comparison runs on 32 x 32 thumbnails of the cropped head.
CACHE_VERSION = 1  # Bump when the fingerprint definition changes; old caches are then ignored.


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of `paths` (arrays aligned with it); `errors` maps unreadable paths to why."""

    paths: list[str]
    exact: np.ndarray  # (n,) bytes: SHA-1 of the 8-bit decoded pixels and their shape
    thumbs: np.ndarray  # (n, THUMB_SIDE * THUMB_SIDE) float32, zero mean and unit norm
    sizes: np.ndarray  # (n, 2) int: width, height
    modes: list[str]
    errors: dict[str, str]


def fingerprint_pixels(pixels: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Exact hash and normalised thumbnail of the head in a decoded image."""
    grey8 = np.round(pixels * 255.0).astype(np.uint8)
    exact = hashlib.sha1(grey8.tobytes() + str(grey8.shape).encode()).digest()
    top, bottom, left, right = head_crop_box(pixels)
    head = pixels[top:bottom, left:right].astype(np.float32)
    thumb = cv2.resize(head, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).flatten()
    thumb = thumb - thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return exact, (thumb / norm if norm > 0 else thumb).astype(np.float32)


def _fingerprint_file(path: Path) -> tuple[bytes, np.ndarray, tuple[int, int], str] | str:
    try:
        image = decode_image(path)
    except BratError as error:
        return str(error)
    exact, thumb = fingerprint_pixels(image.pixels)
    return exact, thumb, (image.width, image.height), image.mode


def compute_fingerprints(
    root: Path,
    paths: list[str],
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> Fingerprints:
    """Fingerprint every file in `paths` (relative to `root`), reusing the cache where valid."""
    cache_file = _cache_file(root, cache_dir)
    cached = _load_cache(cache_file)
    stamps = {p: file_stamp(root / p) for p in paths}
    results: dict[str, tuple | str] = {
        p: cached[p][1] for p in paths if cached.get(p, (None,))[0] == stamps[p]
    }
    todo = [p for p in paths if p not in results]
    if todo:
        workers = workers or decode_workers()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            jobs = pool.map(_fingerprint_file, (root / p for p in todo))
            bar = tqdm(
                jobs, total=len(todo), desc="Reading images", unit="img", disable=not progress
            )
            for path, result in zip(todo, bar, strict=True):
                results[path] = result
        _save_cache(cache_file, {p: (stamps[p], results[p]) for p in paths})
    good = [p for p in paths if not isinstance(results[p], str)]
    n = len(good)
    return Fingerprints(
        paths=good,
        exact=np.array([results[p][0] for p in good], dtype="S20").reshape(n),
        thumbs=np.array([results[p][1] for p in good], dtype=np.float32).reshape(
            n, THUMB_SIDE * THUMB_SIDE
        ),
        sizes=np.array([results[p][2] for p in good], dtype=np.int64).reshape(n, 2),
        modes=[results[p][3] for p in good],
        errors={p: results[p] for p in paths if isinstance(results[p], str)},
    )


def default_cache_dir() -> Path:
    """BRAT_CACHE_DIR, else the user's cache folder (never inside the dataset)."""
    configured = os.environ.get("BRAT_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "brat"


def _cache_file(root: Path, cache_dir: Path | None) -> Path:
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return (cache_dir or default_cache_dir()) / f"fingerprints-v{CACHE_VERSION}-{key}.npz"


def decode_workers() -> int:
    """Threads for decoding: one more than the cores, as Pillow and OpenCV release the GIL."""
    return min(8, (os.cpu_count() or 1) + 1)


def file_stamp(path: Path) -> str:
    """Size and modification time of a file, to tell whether a cached result is still valid."""
    try:
        status = path.stat()
    except OSError:
        return "missing"
    return f"{status.st_size}:{status.st_mtime_ns}"


def _load_cache(cache_file: Path) -> dict[str, tuple[str, tuple | str]]:
    try:
        with np.load(cache_file, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except (OSError, KeyError, ValueError):
        return {}  # No cache yet, or an unreadable one: recompute.
    entries: dict[str, tuple[str, tuple | str]] = {}
    for i, path in enumerate(data["paths"].tolist()):
        stamp, error = str(data["stamps"][i]), str(data["errors"][i])
        if error:
            entries[path] = (stamp, error)
            continue
        size = (int(data["sizes"][i][0]), int(data["sizes"][i][1]))
        fingerprint = (
            bytes(data["exact"][i]),
            data["thumbs"][i],
            size,
            str(data["modes"][i]),
        )
        entries[path] = (stamp, fingerprint)
    return entries


def _save_cache(cache_file: Path, entries: dict[str, tuple[str, tuple | str]]) -> None:
    paths = list(entries)
    blank = (b"", np.zeros(THUMB_SIDE * THUMB_SIDE, np.float32), (0, 0), "")
    values = [v if not isinstance(v, str) else blank for _, v in entries.values()]
    # A cache is an optimisation: a read-only home folder must not stop a scan.
    with contextlib.suppress(OSError):
        atomic_write(
            cache_file,
            lambda temporary: np.savez(
                temporary,
                paths=np.array(paths, dtype=str),
                stamps=np.array([s for s, _ in entries.values()], dtype=str),
                errors=np.array(
                    [v if isinstance(v, str) else "" for _, v in entries.values()], dtype=str
                ),
                exact=np.array([v[0] for v in values], dtype="S20"),
                thumbs=np.array([v[1] for v in values], dtype=np.float32),
                sizes=np.array([v[2] for v in values], dtype=np.int64),
                modes=np.array([v[3] for v in values], dtype=str),
            ),
        )
