"""Planted evidence: a tiny model learns classes that depend only on a square mark placed at a
random spot (horizontal stripes, vertical stripes, a checkerboard, or no mark for no_tumor); the
heatmap of each marked image, mapped back onto the original image, must peak on the mark.

This checks the whole chain a clinician relies on (training, Grad-CAM on the trained network,
undoing the head crop and resize) against a known answer, which real scans do not give.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import brat
from brat.data.manifest import ManifestRow
from brat.inference.classifier import load_classifier
from brat.inference.explain import METHODS, Explainer
from brat.labels import CLASSES
from brat.training.model import ModelConfig
from brat.training.train import TrainConfig, train
from tests.synthetic import make_slice

SIZE = 192  # the images' side; the model sees 128 px after the head crop
MARK = 30
TOLERANCE = 15  # px in the original image, as in the pointing game of `brat localize`
IMAGES = 400


def planted(i: int) -> tuple[np.ndarray, str, tuple[int, int] | None]:
    """A generated slice with the mark of class i % 4 at a random spot inside the head."""
    label = CLASSES[i % 4]
    image = make_slice(10_000 + i, size=SIZE, structures=3)
    if label == "no_tumor":
        return image, label, None
    x, y = (int(v) for v in np.random.default_rng(i).integers(45, SIZE - 45 - MARK, 2))
    stripes = (np.arange(MARK) // 3) % 2 == 0
    pattern = {
        "glioma_tumor": np.broadcast_to(stripes[:, None], (MARK, MARK)),  # horizontal stripes
        "meningioma_tumor": np.broadcast_to(stripes[None, :], (MARK, MARK)),  # vertical stripes
        "pituitary_tumor": stripes[:, None] ^ stripes[None, :],  # checkerboard
    }[label]
    image[y : y + MARK, x : x + MARK] = np.where(pattern, 255, 0)
    return image, label, (x, y)


@pytest.fixture(scope="module")
def planted_model(tmp_path_factory) -> tuple[Path, Path, dict[str, tuple[int, int]]]:
    root = tmp_path_factory.mktemp("planted")
    rows, marks = [], {}
    for i in range(IMAGES):
        image, label, corner = planted(i)
        path = f"{label}/{i}.png"
        (root / label).mkdir(exist_ok=True)
        cv2.imwrite(str(root / path), image)
        marks[path] = corner
        split = "train" if i < 0.7 * IMAGES else "val" if i < 0.85 * IMAGES else "test"
        rows.append(ManifestRow(path=path, label=label, split=split, group=str(i)))
    config = TrainConfig(
        model=ModelConfig(image_size=128, alpha=0.35, weights="none", mask_weight=0.0),
        epochs=15,
        schedule="plateau",
        batch_size=16,
        patience=15,
        augment=False,
        deterministic=True,
    )
    result = train(root, rows, root / "model", config, progress=False)
    assert result.validation.accuracy >= 0.85, "the marks were not learnt: nothing to explain"
    test = {r.path: marks[r.path] for r in rows if r.split == "test" and marks[r.path]}
    return result.out, root, test


@pytest.mark.parametrize("method", METHODS)
def test_the_heatmap_peaks_on_the_planted_mark(planted_model, method) -> None:
    """The map is coarse (a 4 x 4 grid at 128 px input: one cell is 48 px of these images), and
    the tiny model's peak often falls on a neighbouring cell; it must land on the mark well
    more often than by chance, and the mark must hold at least twice its share of the heat. A map
    that is flipped, transposed, or left in the model's crop instead of the image fails."""
    model_dir, root, test = planted_model
    explainer = Explainer(load_classifier(model_dir))
    on_mark, heat_ratio = [], []
    for path, (x, y) in test.items():
        heatmap = brat.analyze(root / path, method, model=explainer).heatmap
        assert heatmap.shape == (SIZE, SIZE)
        row, column = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
        on_mark.append(
            x - TOLERANCE <= column < x + MARK + TOLERANCE
            and y - TOLERANCE <= row < y + MARK + TOLERANCE
        )
        heat_ratio.append(heatmap[y : y + MARK, x : x + MARK].mean() / heatmap.mean())
    chance = ((MARK + 2 * TOLERANCE) / SIZE) ** 2
    print(
        f"{method}: peak on the mark {np.mean(on_mark):.0%} (chance {chance:.0%}), "
        f"heat on the mark {np.median(heat_ratio):.1f}x its share"
    )
    # LayerCAM's grid is 4x finer (stride 8): measured 98% here, gated by Grad-CAM 100%,
    # Grad-CAM alone 47%.
    least = 0.8 if "layercam" in method else 1.5 * chance
    assert np.mean(on_mark) >= least, f"{method}: peak on the mark {np.mean(on_mark):.0%}"
    assert np.median(heat_ratio) >= 2.0, f"{method}: heat on the mark {np.median(heat_ratio):.1f}x"
