"""What a training run is configured with, and the hooks that follow it.

Kept apart from `brat.training.train` (which loads TensorFlow) so the app's Train page paints
without it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from brat.training.model import BACKBONE_BLOCKS, ModelConfig

SCHEDULES = ("plateau", "cosine")
AUGMENTATIONS = ("standard", "strong", "scanners")
BALANCES = ("none", "sources")
# What a setting meant in configurations recorded before it existed (brat.json, crossval.json):
# each was added with the behaviour of its time as its default, and the shipped recipe's defaults
# came later.
LEGACY_DEFAULTS = {
    "schedule": "plateau",
    "augmentation": "standard",
    "label_smoothing": 0.0,
    "frozen_blocks": 0,
    "balance": "none",
    "model": {"mask_weight": 0.0, "mask_target": "head"},
}
# The learning rate when none is given: fine-tuning pretrained weights needs a smaller one.
LEARNING_RATES = {"pretrained": 5e-4, "scratch": 2e-3}


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    # Ten cosine epochs: the shipped recipe (cross-validation in the model card); more did not help.
    epochs: int = 10
    batch_size: int = 32
    # None picks 5e-4 when fine-tuning pretrained weights and 2e-3 from scratch.
    learning_rate: float | None = None
    # "cosine" (the shipped recipe): the learning rate falls along half a cosine over `epochs`,
    # every epoch is trained and the last is kept; the validation split only calibrates. A
    # validation split with a few confidently misread patients can make its loss rise while its
    # accuracy still climbs, which stopped "plateau" runs too early. "plateau": the learning rate
    # falls by lr_factor on a validation-loss plateau, training stops after `patience` epochs
    # without a better validation loss, and the best epoch is kept.
    schedule: str = "cosine"
    # Epochs without a better validation loss before training stops.
    patience: int = 4
    # Epochs without a better validation loss before the learning rate is multiplied by lr_factor.
    lr_patience: int = 1
    lr_factor: float = 0.3
    seed: int = 42
    # Same seed, same data, same machine: same model (slower: one augmentation worker).
    deterministic: bool = False
    augment: bool = True
    # "standard" (the shipped recipe's), "strong" or "scanners": see
    # brat.training.augment.training_augmentation.
    augmentation: str = "standard"
    class_weights: bool = True
    # Share of each label's probability spread over all classes in the class loss (0: none).
    label_smoothing: float = 0.0
    # Train on one view plane only (manifest rows whose plane matches).
    plane: str | None = None
    # The backbone's stem and its first N inverted-residual blocks keep their pretrained weights
    # and batch-norm statistics (0: every layer trains). Their backward pass, at the highest
    # resolutions, is most of a training step's cost (docs/training-speed.md).
    frozen_blocks: int = 0
    # "none": every training image once an epoch; "sources": images drawn (with replacement) so
    # that every class keeps its share of an epoch and, within a class, every source is drawn
    # equally often (brat.training.pipeline.source_balanced_probabilities).
    balance: str = "none"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {SCHEDULES}. Received: schedule={self.schedule!r}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"`epochs` and `batch_size` must be >= 1. Received: epochs={self.epochs}, "
                f"batch_size={self.batch_size}"
            )
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(
                f"`augmentation` must be one of {AUGMENTATIONS}. Received: {self.augmentation!r}"
            )
        if self.balance not in BALANCES:
            raise ValueError(f"`balance` must be one of {BALANCES}. Received: {self.balance!r}")
        if not 0 <= self.frozen_blocks <= BACKBONE_BLOCKS:
            raise ValueError(
                f"`frozen_blocks` must be in [0, {BACKBONE_BLOCKS}]. "
                f"Received: frozen_blocks={self.frozen_blocks}"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1). Received: {self.label_smoothing}"
            )

    @property
    def initial_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return LEARNING_RATES["scratch" if self.model.weights == "none" else "pretrained"]

    def cosine_rate(self, epoch: int) -> float:
        """The cosine schedule's learning rate for `epoch` (counted from 1)."""
        return (
            self.initial_learning_rate * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / self.epochs))
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """A recorded configuration (`to_dict`'s); settings it lacks take the value they had
        before they existed (LEGACY_DEFAULTS), and settings this version does not know are
        ignored."""
        model = {**LEGACY_DEFAULTS["model"], **data.get("model", {})}
        values = {**LEGACY_DEFAULTS, **data, "model": _known(ModelConfig, model)}
        values["model"] = ModelConfig(**values["model"])
        return cls(**_known(cls, values))


def _known(kind: type, values: dict) -> dict:
    names = {f.name for f in fields(kind)}
    return {key: value for key, value in values.items() if key in names}


class TrainingEvents:
    """Hooks a caller overrides to follow a run (the app's Train page, the CLI's progress)."""

    def on_batch(self, epoch: int, batch: int, batches: int, logs: dict) -> None:
        """After each training batch; epoch and batch count from 1, logs has loss/accuracy."""

    def on_epoch(self, row: dict) -> None:
        """After each completed epoch, with the history row (train and validation metrics)."""

    def on_status(self, text: str) -> None:
        """A one-line description of what the run is doing now."""
