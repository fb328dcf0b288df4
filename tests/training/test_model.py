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
    config = ModelConfig(image_size=100, alpha=0.35, weights="imagenet")
    model = build_model(config, frozen_blocks=6)
    assert "training from scratch" in capsys.readouterr().err
    assert all(layer.trainable for layer in model.layers), "random weights must not be frozen"


def test_frozen_blocks_keep_their_weights_while_the_rest_trains(tmp_path, toy_dataset) -> None:
    """`frozen_blocks=6`: the stem and blocks 0-5 (every stride-8 block) stay as loaded, batch-norm
    statistics included; block 6 onwards and the classifier train."""
    from dataclasses import replace

    import keras

    from brat.inference.classifier import load_classifier
    from brat.training.config import TrainConfig
    from brat.training.model import freeze_lowest_blocks
    from brat.training.runs import training_rows
    from brat.training.train import train
    from tests.training.test_train import CONFIG

    model = build_model(ModelConfig(image_size=32, alpha=0.35, weights="none", mask_weight=0.0))
    freeze_lowest_blocks(model, 6)
    frozen = [layer.name for layer in model.layers if not layer.trainable]
    assert frozen[0] == "Conv1" and frozen[-1] == "block_5_add" and "block_6_expand" not in frozen
    with pytest.raises(ValueError, match="frozen_blocks"):
        TrainConfig(frozen_blocks=18)

    backbone = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None
    )
    loaded = tmp_path / "backbone.weights.h5"
    backbone.save_weights(loaded)
    rows, _ = training_rows(toy_dataset, reference=toy_dataset)
    with pytest.raises(BratError, match="pretrained weights"):
        train(toy_dataset, rows, tmp_path / "scratch", replace(CONFIG, frozen_blocks=6))
    config = replace(
        CONFIG, epochs=1, frozen_blocks=6, model=replace(CONFIG.model, weights=str(loaded))
    )
    train(toy_dataset, rows, tmp_path / "model", config, progress=False)
    trained = load_classifier(tmp_path / "model").model

    def weights(model, name):
        return model.get_layer(name).get_weights()

    for name in ("Conv1", "bn_Conv1", "block_5_project", "block_5_project_BN"):
        for before, after in zip(weights(backbone, name), weights(trained, name), strict=True):
            np.testing.assert_array_equal(before, after, err_msg=name)
    before, after = weights(backbone, "block_6_expand"), weights(trained, "block_6_expand")
    assert not np.array_equal(before[0], after[0])


def test_a_run_can_start_from_a_trained_model_folder_and_records_it(tmp_path, toy_dataset) -> None:
    """`weights` naming a brat model folder: every weight, classifier included, starts as that
    model's (the recipe's evidence layer takes the plain classifier's), a model of another size is
    refused, and the new folder records what it was fine-tuned from."""
    from dataclasses import replace

    from brat import model_folder
    from brat.evaluation.model_card import render_card
    from brat.training.model import classification_model
    from brat.training.runs import training_rows
    from brat.training.train import starting_model, train
    from tests.training.test_train import CONFIG

    rows, _ = training_rows(toy_dataset, reference=toy_dataset)
    start = classification_model(build_model(CONFIG.model))
    logits = start.get_layer("logits")
    logits.set_weights([w + 0.5 for w in logits.get_weights()])
    meta = model_folder.ModelMeta(config=CONFIG, data="toy", training_seconds=60.0)
    model_folder.write(tmp_path / "start", start, meta, [], rows, {})

    evidence = replace(CONFIG.model, weights=str(tmp_path / "start"), mask_weight=0.5)
    with pytest.raises(BratError, match="is a model folder"):
        build_model(evidence)  # the folder's model is loaded (and checked) by the caller
    model = build_model(evidence, start=starting_model(evidence))
    assert model.get_layer("logits").__class__.__name__ == "ClassEvidence"
    for layer in start.layers:
        for before, after in zip(
            layer.get_weights(), model.get_layer(layer.name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(before, after, err_msg=layer.name)
    with pytest.raises(BratError, match="same size and width"):
        starting_model(replace(evidence, image_size=64))

    config = replace(CONFIG, epochs=1, frozen_blocks=6, model=replace(evidence, mask_weight=0.0))
    train(toy_dataset, rows, tmp_path / "tuned", config, progress=False)
    tuned = model_folder.read_meta(tmp_path / "tuned")
    recorded = model_folder.read_meta(tmp_path / "start")
    assert tuned.started_from == recorded.lineage() and tuned.started_from["data"] == "toy"
    assert f"fine-tuned from the model `{recorded.model_sha256[:12]}…`" in render_card(
        tmp_path / "tuned"
    )
