"""Scoring many scans: decoding in threads while the model runs the previous batch, the forward
pass in batches (ONNX Runtime where installed), every check, no heatmaps. `brat predict` uses it;
each scan gets the same label, probabilities and verdict as `brat.analyze` gives it alone, and the
SHA-256 of its bytes for the audit trail (`brat.audit`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brat.data.decode import decode_image, read_bytes
from brat.data.preprocess import prepare_slice
from brat.errors import BratError, error_kind
from brat.files import sha256_bytes
from brat.inference.conformal import ERROR_RATE
from brat.inference.prediction import Prediction, prediction_fields, prediction_record

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
BATCH_SIZE = 128  # 195 scans/s against 167 at 64 and 146 at 32 (docs/performance.md)


def scan_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files to score: each file as given, and every image file under each folder (sorted),
    less the tumour masks a dataset folder's metadata.csv names (they are not scans)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            masks = _mask_files(path)
            files += sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and p not in masks
            )
        else:
            files.append(path)
    return files


def _mask_files(folder: Path) -> set[Path]:
    import csv

    table = folder / "metadata.csv"
    if not table.is_file():
        return set()
    with table.open(newline="", encoding="utf-8") as handle:
        return {folder / row["mask"] for row in csv.DictReader(handle) if row.get("mask")}


class ScoredScan(NamedTuple):
    path: Path
    prediction: Prediction | None  # None when the file could not be read
    error: str | None  # why the file could not be read
    input_sha256: str | None  # of the file's bytes (for the audit trail); None if not opened
    error_kind: str | None = None  # that reason in a few words ("damaged file", "too large")


def _prepared(path: Path, size: int) -> tuple[np.ndarray | None, Exception | None, str | None]:
    """(prepared slice, None, SHA-256) or (None, the error, SHA-256 when the bytes were read)."""
    digest = None
    try:
        data, name = read_bytes(path)
        digest = sha256_bytes(data)  # ~1 ms per MB; classifying a scan takes ~5 ms
        image, _ = prepare_slice(decode_image(data, name=name).pixels, size)
        return image, None, digest
    except (BratError, OSError, ValueError) as error:
        return None, error, digest


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def score_scans(
    paths: Iterable[Path],
    explainer,
    *,
    error_rate: float = ERROR_RATE,
    batch_size: int = BATCH_SIZE,
    workers: int = 2,
) -> Iterator[ScoredScan]:
    """A `ScoredScan` for every path, in order: its prediction, or why it could not be read, and
    the SHA-256 of its bytes. `explainer` is a `brat.inference.explain.Explainer`
    (`explainer_for`)."""
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


def scored_records(
    paths: Iterable[Path], explainer, *, error_rate: float = ERROR_RATE
) -> Iterator[dict]:
    """`score_scans` as the `prediction_record`s `brat predict` writes, in order."""
    for s in score_scans(paths, explainer, error_rate=error_rate):
        yield prediction_record(
            str(s.path), s.prediction, s.error, input_sha256=s.input_sha256, error_kind=s.error_kind
        )


def _scored(batch: list[Path], futures: list, explainer, error_rate: float):
    loaded = [future.result() for future in futures]
    readable = [i for i, (image, _, _) in enumerate(loaded) if image is not None]
    fields = {}
    if readable:
        classifier = explainer.classifier
        images = np.stack([loaded[i][0] for i in readable])
        checked = classifier.checked(
            *explainer.forward(images), error_rate=error_rate, images=images
        )
        fields = dict(zip(readable, prediction_fields(classifier, checked), strict=True))
    for i, path in enumerate(batch):
        _, error, digest = loaded[i]
        prediction = Prediction(**fields[i]) if i in fields else None
        yield ScoredScan(
            path, prediction, error and str(error), digest, error and error_kind(error)
        )
