"""`brat adapt` on a tiny model and a generated site whose scans look different (the contrast
inverted): adapting must raise accuracy there, keep the model's own test split held out, and
refuse what it cannot learn from."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from brat.cli import main
from brat.data.prepared import prepare_images
from brat.errors import DatasetError
from brat.inference.classifier import load_classifier
from brat.labels import CLASSES
from brat.model_folder import read_model_manifest
from brat.training.adapt import AdaptConfig, adapt
from brat.training.model import ModelConfig
from brat.training.train import TrainConfig, train

BASE = TrainConfig(
    model=ModelConfig(image_size=32, alpha=0.35, weights="none", mask_weight=0.0),
    epochs=6,
    batch_size=16,
    learning_rate=2e-3,
    augment=False,
)
# A tiny model from scratch learns a new look at a higher rate than a pretrained one needs.
ADAPT = AdaptConfig(epochs=12, learning_rate=2e-3, frozen_blocks=0, min_replay=32)


def inverted_site(toy_root, folder, first: int, count: int) -> None:
    """Toy slices (a bright square in the class's corner) with their contrast inverted."""
    for i in range(first, first + count):
        label = CLASSES[i % 4]
        source = toy_root / label / f"{i}.png"
        (folder / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / label / f"s{i}.png"), 255 - cv2.imread(str(source), 0))


@pytest.fixture(scope="module")
def base_model(toy_data, tmp_path_factory):
    root, rows = toy_data
    out = tmp_path_factory.mktemp("base") / "model"
    train(root, rows, out, BASE, progress=False)
    return out


def accuracy(model, folder) -> float:
    classifier = load_classifier(model)
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    images = prepare_images(folder, paths, classifier.image_size, progress=False)
    truth = np.array([CLASSES.index(p.split("/")[0]) for p in paths])
    return float((classifier.logits(images).argmax(axis=1) == truth).mean())


def test_adapting_to_a_site_raises_accuracy_there_and_keeps_the_test_split(
    toy_data, base_model, tmp_path
) -> None:
    root, _ = toy_data
    site, held_out = tmp_path / "site", tmp_path / "held-out"
    inverted_site(root, site, 0, 64)
    inverted_site(root, held_out, 64, 32)
    photo = np.random.default_rng(0).integers(0, 255, (128, 128, 3), np.uint8)  # not a slice
    cv2.imwrite(str(site / "no_tumor" / "photo.png"), photo)
    (site / "glioma_tumor" / "broken.png").write_bytes(b"not a png")
    before = accuracy(base_model, held_out)
    result = adapt(
        base_model,
        [site],
        [root],
        tmp_path / "adapted",
        name="inverted",
        config=ADAPT,
        progress=False,
    )
    after = accuracy(result.out, held_out)
    assert after >= before + 0.25 and after >= 0.6, (before, after)
    # A quarter of 64 site scans (16) is too few to calibrate on: every one trains, and the
    # adapted model has no site profile, which the warnings say.
    assert result.plan.site_scans == {"train": 65, "val": 0} and result.profile is None
    assert any("too few to hold 20 out" in w for w in result.warnings)
    # The tiny model's not-a-brain-MRI check rejects every inverted slice (and the photo): counted,
    # said, and kept, since off-source the check rejects real slices too.
    assert any("calls 65 of the 65 site scans not a brain MRI" in w for w in result.warnings)
    assert any("1 site files could not be read" in w for w in result.warnings)
    rows = read_model_manifest(result.out)
    base_rows = read_model_manifest(base_model)
    assert {r.path for r in rows if r.split == "test"} == {
        f"{root.name}/{r.path}" for r in base_rows if r.split == "test"
    }
    assert sum(r.source == "inverted" for r in rows) == 65
    meta = json.loads((result.out / "brat.json").read_text())
    assert (
        meta["started_from"]["data"] == json.loads((base_model / "brat.json").read_text())["data"]
    )


def test_adaptation_refuses_a_site_it_cannot_learn_from(toy_data, base_model, tmp_path) -> None:
    root, _ = toy_data
    one_class = tmp_path / "one"
    inverted_site(root, one_class, 0, 1)
    for i in range(4, 40, 4):
        inverted_site(root, one_class, i, 1)  # glioma only
    with pytest.raises(Exception, match=r"Every site scan is glioma_tumor.*--accept-warnings"):
        adapt(base_model, [one_class], [root], tmp_path / "x", name="one", progress=False)
    tiny = tmp_path / "tiny"
    inverted_site(root, tiny, 0, 3)
    with pytest.raises(DatasetError, match="adaptation needs at least 5"):
        adapt(base_model, [tiny], [root], tmp_path / "x", name="tiny", progress=False)
    code = main(
        [
            "adapt",
            str(base_model),
            str(tiny),
            "--replay",
            str(tmp_path),
            "--site",
            "t",
            "--out",
            str(tmp_path / "y"),
        ]
    )
    assert code == 1 and not (tmp_path / "y").exists()
