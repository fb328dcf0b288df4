from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from brat.data.prepared import prepare_images
from brat.errors import BratError
from tests.synthetic import make_slice


def test_prepared_images_are_cached_and_refreshed(tmp_path: Path) -> None:
    paths = [f"img{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        cv2.imwrite(str(tmp_path / path), make_slice(i, size=80 + 20 * i))
    cache = tmp_path / "cache"
    first = prepare_images(tmp_path, paths, 48, cache_dir=cache, progress=False)
    assert first.shape == (3, 48, 48) and first.dtype == np.uint8
    assert first.max() == 255  # percentile normalisation stretches every slice
    assert len(list(cache.glob("prepared-48-*.npy"))) == 1
    np.testing.assert_array_equal(
        first, prepare_images(tmp_path, paths, 48, cache_dir=cache, progress=False)
    )
    cv2.imwrite(str(tmp_path / paths[0]), make_slice(9, size=80))  # the folder changed
    second = prepare_images(tmp_path, paths, 48, cache_dir=cache, progress=False)
    assert not np.array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1:], second[1:])


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    with pytest.raises(BratError, match=r"broken\.png"):
        prepare_images(tmp_path, ["broken.png"], 32, cache_dir=tmp_path / "c", progress=False)
