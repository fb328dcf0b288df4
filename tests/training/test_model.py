from __future__ import annotations

import numpy as np
import pytest

from brat.errors import BratError
from brat.training.model import ModelConfig, build_model
from tests.conftest import SHARED

WEIGHTS = SHARED / "weights" / "mobilenet_v2_imagenet_0.35_224_no_top.h5"


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="alpha"):
        ModelConfig(alpha=0.3)
    with pytest.raises(ValueError, match="image_size"):
        ModelConfig(image_size=8)


def test_tiny_model_gives_four_logits_per_slice() -> None:
    model = build_model(ModelConfig(image_size=32, alpha=0.35, weights="none", mask_weight=0.0))
    logits = model(np.random.default_rng(0).uniform(size=(2, 32, 32, 1)).astype("float32"))
    assert tuple(logits.shape) == (2, 4)
    bn = [layer for layer in model.layers if "BN" in layer.name]
    assert bn and all(layer.momentum == 0.9 for layer in bn)


def test_the_default_recipe_trains_with_the_evidence_output() -> None:
    """The shipped recipe (ModelConfig's defaults) adds the per-cell class evidence the mask
    loss trains; `classification_model` is the plain classifier saved after training."""
    from brat.training.model import classification_model

    model = build_model(ModelConfig(image_size=64, alpha=0.35, weights="none"))
    logits, cells = model(np.zeros((1, 64, 64, 1), np.float32))
    assert tuple(logits.shape) == (1, 4) and tuple(cells.shape) == (1, 2, 2, 4)
    assert len(classification_model(model).outputs) == 1


def test_local_weights_load_and_wrong_width_is_a_clear_error() -> None:
    if not WEIGHTS.is_file():
        pytest.skip(f"no shared weights at {WEIGHTS}")
    model = build_model(ModelConfig(image_size=96, alpha=0.35, weights=str(WEIGHTS)))
    first = model.get_layer("Conv1").get_weights()[0]
    assert np.abs(first).mean() > 0.05  # trained filters, not a fresh initialisation
    with pytest.raises(BratError, match="do not fit"):
        build_model(ModelConfig(image_size=96, alpha=1.0, weights=str(WEIGHTS)))
    with pytest.raises(BratError, match="does not exist"):
        build_model(ModelConfig(image_size=96, alpha=0.35, weights="/no/such/file.h5"))


def test_imagenet_falls_back_to_a_local_copy_with_a_clear_message(
    tmp_path, monkeypatch, capsys
) -> None:
    if not WEIGHTS.is_file():
        pytest.skip(f"no shared weights at {WEIGHTS}")
    # 100 px has no Keras download, so nothing is fetched; the local copy is used instead.
    (tmp_path / WEIGHTS.name).symlink_to(WEIGHTS)
    monkeypatch.setenv("BRAT_WEIGHTS_DIR", str(tmp_path))
    model = build_model(ModelConfig(image_size=100, alpha=0.35, weights="imagenet"))
    assert "using the local copy" in capsys.readouterr().err
    first = model.get_layer("Conv1").get_weights()[0]
    assert np.abs(first).mean() > 0.05

    monkeypatch.setenv("BRAT_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    build_model(ModelConfig(image_size=100, alpha=0.35, weights="imagenet"))
    assert "training from scratch" in capsys.readouterr().err
