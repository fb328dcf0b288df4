from __future__ import annotations

from dataclasses import replace

from brat.evaluation.crossval_report import CrossvalReport
from brat.evaluation.model_card import _configuration_differences, _crossval_section
from brat.training.config import TrainConfig
from brat.training.model import ModelConfig


def crossval_of(config: TrainConfig | dict, **report) -> CrossvalReport:
    config = config.to_dict() if isinstance(config, TrainConfig) else config
    defaults = {"folds": 5, "n": 100, "mean": {}, "std": {}, "rounds": []}
    return CrossvalReport.from_json({**defaults, "config": config, **report})


def test_cross_validation_of_another_configuration_is_flagged() -> None:
    ours = TrainConfig(model=ModelConfig(image_size=160))
    other = TrainConfig(model=ModelConfig(image_size=128), patience=3)
    assert _configuration_differences(crossval_of(other), ours) == [
        "image_size 128 (this model: 160)",
        "patience 3 (this model: 4)",
    ]


def test_a_setting_added_after_the_model_was_trained_counts_as_its_value_then() -> None:
    """A cross-validation recorded before `mask_weight` existed trained without the mask loss."""
    config = TrainConfig(model=replace(ModelConfig(), mask_weight=0.0)).to_dict()
    older = {**config, "model": {k: v for k, v in config["model"].items() if k != "mask_weight"}}
    assert _configuration_differences(crossval_of(older), TrainConfig.from_dict(config)) == []


def test_cross_validation_section_says_how_much_of_each_round_trained() -> None:
    config = TrainConfig()
    older = "\n".join(_crossval_section(crossval_of(config), config))  # before val_share
    assert "validates on the next fold" in older and "about 60% of the images" in older
    half = "\n".join(_crossval_section(crossval_of(config, val_share=0.5), config))
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
    rounds = [{**measured, "error_groups": groups}, {**measured, "error_groups": []}]
    config = TrainConfig()
    section = _crossval_section(crossval_of(config, folds=2, n=20, rounds=rounds), config)
    rows = [line for line in section if line.startswith(("| 1 |", "| 2 |"))]
    assert rows[0].endswith("| fs-1 (meningioma_tumor): 2 of 4 |")
    assert rows[1].endswith("| 3 | — |")  # a round without errors in any group
    older = crossval_of(config, rounds=[measured, measured])  # before groups were counted
    section = _crossval_section(older, config)
    assert not any("most errors" in line for line in section)
    assert next(line for line in section if line.startswith("| 1 |")).endswith("| 3 |")
