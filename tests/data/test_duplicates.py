from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from brat.data.duplicates import find_duplicates
from brat.data.fingerprint import compute_fingerprints
from tests.synthetic import make_slice


def _dataset_with_copies(root: Path) -> dict[str, str]:
    original = make_slice(7, size=256)
    files = {
        "original": "a/original.png",
        "resized_jpeg": "a/resized.jpg",
        "mirrored": "a/mirrored.png",
        "brighter_padded": "a/padded.png",
        "exact_copy": "b/exact.png",
        "other_slice": "a/other.png",
    }
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir(parents=True)
    cv2.imwrite(str(root / files["original"]), original)
    cv2.imwrite(str(root / files["exact_copy"]), original)
    small = cv2.resize(original, (180, 180), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / files["resized_jpeg"]), small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    cv2.imwrite(str(root / files["mirrored"]), original[:, ::-1])
    brighter = np.clip(original.astype(np.float32) * 1.2 + 5, 0, 255).astype(np.uint8)
    cv2.imwrite(
        str(root / files["brighter_padded"]),
        cv2.copyMakeBorder(brighter, 30, 30, 50, 50, cv2.BORDER_CONSTANT),
    )
    cv2.imwrite(str(root / files["other_slice"]), make_slice(8, size=256))
    return files


def test_copies_are_clustered_and_a_different_slice_is_not(tmp_path: Path) -> None:
    files = _dataset_with_copies(tmp_path)
    fingerprints = compute_fingerprints(tmp_path, sorted(files.values()), progress=False)
    report = find_duplicates(fingerprints)
    assert report.exact_clusters == [sorted([files["original"], files["exact_copy"]])]
    assert len(report.near_clusters) == 1
    cluster = set(report.near_clusters[0])
    assert cluster == set(files.values()) - {files["other_slice"]}


def test_fingerprint_cache_is_reused_and_invalidated(tmp_path: Path) -> None:
    files = _dataset_with_copies(tmp_path / "data")
    cache = tmp_path / "cache"
    paths = sorted(files.values())
    first = compute_fingerprints(tmp_path / "data", paths, cache_dir=cache, progress=False)
    assert len(list(cache.iterdir())) == 1
    cv2.imwrite(str(tmp_path / "data" / files["other_slice"]), make_slice(9, size=256))
    second = compute_fingerprints(tmp_path / "data", paths, cache_dir=cache, progress=False)
    changed = paths.index(files["other_slice"])
    assert second.exact[changed] != first.exact[changed]
    unchanged = [i for i in range(len(paths)) if i != changed]
    np.testing.assert_array_equal(second.thumbs[unchanged], first.thumbs[unchanged])
