"""The training pipeline's source-balanced sampling."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np

from brat.data.manifest import ManifestRow
from brat.training.config import TrainConfig
from brat.training.model import ModelConfig
from brat.training.pipeline import source_balanced_probabilities, training_data


def rows_of(cells: dict[tuple[int, str], int]) -> tuple[np.ndarray, list[ManifestRow]]:
    labels, rows = [], []
    for (label, source), count in cells.items():
        for i in range(count):
            labels.append(label)
            rows.append(ManifestRow(f"{source}/{label}/{i}.png", "x", "train", "", source=source))
    return np.array(labels), rows


def test_each_source_is_drawn_equally_often_within_a_class() -> None:
    labels, rows = rows_of({(0, "a"): 90, (0, "b"): 10, (1, "a"): 50})
    chances = source_balanced_probabilities(labels, rows)
    assert np.isclose(chances.sum(), 1.0)
    share = Counter()
    for y, row, p in zip(labels, rows, chances, strict=True):
        share[(int(y), row.source)] += p
    assert np.isclose(share[(0, "a")], share[(0, "b")])  # 0.5 of class 0's two thirds each
    assert np.isclose(share[(0, "a")] + share[(0, "b")], 100 / 150)  # the class keeps its share
    assert np.isclose(share[(1, "a")], 50 / 150)


def test_balanced_epochs_draw_the_rare_source_more_and_change_every_epoch() -> None:
    labels, rows = rows_of({(0, "a"): 180, (0, "b"): 20})
    images = np.arange(200, dtype=np.uint8)[:, None, None] * np.ones((1, 32, 32), np.uint8)
    config = TrainConfig(
        model=ModelConfig(image_size=32, weights="none", mask_weight=0.0),
        batch_size=50,
        augment=False,
        balance="sources",
    )
    data = training_data(images, labels, config, rows=rows)
    assert int(data.cardinality()) == 4  # Keras knows an epoch's length, as for a plain one
    epochs = []
    for _ in range(2):
        drawn = np.concatenate([np.round(x.numpy()[:, 0, 0, 0] * 255) for x, _ in data])
        assert len(drawn) == 200  # an epoch is as many images as there are
        epochs.append(drawn)
        assert 70 <= np.sum(drawn >= 180) <= 130  # source b: half the draws, not a tenth
    assert not np.array_equal(*epochs)
    plain = training_data(images, labels, replace(config, balance="none"), rows=rows)
    drawn = np.concatenate([np.round(x.numpy()[:, 0, 0, 0] * 255) for x, _ in plain])
    assert sorted(drawn) == list(range(200))
