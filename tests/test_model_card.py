from __future__ import annotations

from dataclasses import asdict, replace

from brat.model import ModelConfig
from brat.model_card import _configuration_differences, _crossval_section
from brat.train_config import TrainConfig


def test_cross_validation_of_another_configuration_is_flagged() -> None:
    ours = asdict(TrainConfig(model=ModelConfig(image_size=160)))
    other = asdict(TrainConfig(model=ModelConfig(image_size=128), patience=3))
    assert _configuration_differences({"config": other}, ours) == [
        "image_size 128 (this model: 160)",
        "patience 3 (this model: 4)",
    ]


def test_a_setting_added_after_the_model_was_trained_counts_as_its_default() -> None:
    """The shipped model's brat.json predates `mask_weight`; its cross-validation has 0.0."""
    config = asdict(TrainConfig(model=replace(ModelConfig(), mask_weight=0.0)))
    older = {**config, "model": {k: v for k, v in config["model"].items() if k != "mask_weight"}}
    assert _configuration_differences({"config": config}, older) == []


def test_cross_validation_section_says_how_much_of_each_round_trained() -> None:
    report = {"folds": 5, "n": 100, "mean": {}, "std": {}, "rounds": []}
    config = asdict(TrainConfig())
    older = "\n".join(_crossval_section(report, config))  # reports before val_share
    assert "validates on the next fold" in older and "about 60% of the images" in older
    half = "\n".join(_crossval_section({**report, "val_share": 0.5}, config))
    assert "validates on 0.5 of the next fold's groups" in half
    assert "about 70% of the images" in half


def test_each_cross_validation_round_names_the_groups_with_most_errors() -> None:
    measured = {
        "n": 10,
        "accuracy": 0.8,
        "tumour_accuracy": 0.75,
        "macro_f1": 0.7,
        "ece": 0.05,
        "training_seconds": 600,
        "best_epoch": 3,
    }
    groups = [{"group": "fs-1", "label": "meningioma_tumor", "n": 4, "wrong": 2}]
    report = {
        "folds": 2,
        "n": 20,
        "mean": {},
        "std": {},
        "rounds": [{**measured, "error_groups": groups}, {**measured, "error_groups": []}],
    }
    section = _crossval_section(report, asdict(TrainConfig()))
    rows = [line for line in section if line.startswith(("| 1 |", "| 2 |"))]
    assert rows[0].endswith("| fs-1 (meningioma_tumor): 2 of 4 |")
    assert rows[1].endswith("| 3 | — |")  # a round without errors in any group
    older = {**report, "rounds": [measured, measured]}  # written before groups were counted
    section = _crossval_section(older, asdict(TrainConfig()))
    assert not any("most errors" in line for line in section)
    assert next(line for line in section if line.startswith("| 1 |")).endswith("| 3 |")
