"""A cross-validation's report: every round's test metrics, with their mean and spread.

Kept apart from `brat.training.crossval` (which trains, and loads TensorFlow) so the model card
and the pages read a report without it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from brat import DISCLAIMER
from brat.training.config import TrainConfig

# The numbers summarised over folds (per-class ones are added by name).
SUMMARY_KEYS = ("accuracy", "tumour_accuracy", "macro_f1", "ece", "ece_uncalibrated")
# Each round keeps this many of its groups with most errors.
TOP_ERROR_GROUPS = 5


@dataclass(frozen=True)
class CrossvalReport:
    """Every round's test metrics and their mean and spread (`brat crossval`'s report)."""

    folds: int
    seed: int
    val_share: float
    config: TrainConfig
    n: int  # test images over all rounds
    mean: dict[str, float]  # SUMMARY_KEYS and per-class precision, recall, F1
    std: dict[str, float]
    rounds: list[dict]  # each round's metrics, training time, epoch kept, worst groups
    disclaimer: str = DISCLAIMER

    def to_json(self) -> dict:
        return {
            "disclaimer": self.disclaimer,
            "folds": self.folds,
            "seed": self.seed,
            "val_share": self.val_share,
            "config": self.config.to_dict(),
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "rounds": self.rounds,
        }

    @classmethod
    def from_json(cls, data: dict) -> CrossvalReport:
        return cls(
            folds=data["folds"],
            seed=data.get("seed", 42),
            val_share=data.get("val_share", 1.0),
            config=TrainConfig.from_dict(data.get("config", {})),
            n=data["n"],
            mean=data["mean"],
            std=data["std"],
            rounds=data["rounds"],
        )


def summarise(
    rounds: list[dict], config: TrainConfig, seed: int, val_share: float = 1.0
) -> CrossvalReport:
    values: dict[str, list[float]] = defaultdict(list)
    for result in rounds:
        for key in SUMMARY_KEYS:
            values[key].append(result[key])
        for name, scores in result["per_class"].items():
            for metric in ("precision", "recall", "f1"):
                values[f"{name}_{metric}"].append(scores[metric])
    kept = (
        *SUMMARY_KEYS,
        "n",
        "accuracy_ci95",
        "per_class",
        "confusion_matrix",
        "training_seconds",
        "best_epoch",
    )
    return CrossvalReport(
        folds=len(rounds),
        seed=seed,
        val_share=val_share,
        config=config,
        n=sum(r["n"] for r in rounds),
        mean={k: statistics.fmean(v) for k, v in values.items()},
        std={k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in values.items()},
        # The groups with most errors (rounds measured before groups were reported have none).
        rounds=[
            {k: r[k] for k in kept} | {"error_groups": r.get("error_groups", [])[:TOP_ERROR_GROUPS]}
            for r in rounds
        ],
    )
