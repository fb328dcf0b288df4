"""Scoring many scans: decoding in threads while the model runs the previous batch, the forward
pass in batches (ONNX Runtime where installed), every check, no heatmaps. `brat predict` uses it;
each scan gets the same label, probabilities and verdict as `brat.analyze` gives it alone."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np

from brat.data.decode import decode_image
from brat.data.preprocess import prepare_slice
from brat.errors import BratError
from brat.inference.conformal import ERROR_RATE
from brat.inference.prediction import Prediction, prediction_fields

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
BATCH_SIZE = 128  # 195 scans/s against 167 at 64 and 146 at 32 (docs/performance.md)


def scan_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files to score: each file as given, and every image file under each folder (sorted)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
        else:
            files.append(path)
    return files


def _prepared(path: Path, size: int) -> tuple[np.ndarray | None, str | None]:
    try:
        image, _ = prepare_slice(decode_image(path).pixels, size)
        return image, None
    except (BratError, OSError, ValueError) as error:
        return None, str(error)


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def score(
    paths: Iterable[Path],
    explainer,
    *,
    error_rate: float = ERROR_RATE,
    batch_size: int = BATCH_SIZE,
    workers: int = 2,
) -> Iterator[tuple[Path, Prediction | None, str | None]]:
    """(path, Prediction, None) or (path, None, why it could not be read) for every path, in
    order. `explainer` is a `brat.inference.explain.Explainer` (`explainer_for`)."""
    classifier = explainer.classifier
    size = classifier.image_size
    with ThreadPoolExecutor(workers) as pool:
        pending = None
        for batch in _batches(paths, batch_size):
            loading = (batch, [pool.submit(_prepared, path, size) for path in batch])
            if pending:
                yield from _scored(*pending, explainer, error_rate)
            pending = loading
        if pending:
            yield from _scored(*pending, explainer, error_rate)


def _scored(batch: list[Path], futures: list, explainer, error_rate: float):
    loaded = [future.result() for future in futures]
    readable = [i for i, (image, _) in enumerate(loaded) if image is not None]
    fields = {}
    if readable:
        classifier = explainer.classifier
        images = np.stack([loaded[i][0] for i in readable])
        checked = classifier.checked(*explainer.forward(images), error_rate=error_rate)
        fields = dict(zip(readable, prediction_fields(classifier, checked), strict=True))
    for i, path in enumerate(batch):
        if i in fields:
            yield path, Prediction(**fields[i]), None
        else:
            yield path, None, loaded[i][1]
