"""A trained model's folder: the names of its files, its metadata, and how it is written, read,
listed and promoted.

A model folder holds model.keras, brat.json (`ModelMeta`: the training configuration, classes,
calibration temperature, validation metrics and the SHA-256 of model.keras), history.json, the
split manifest it was trained on, the fitted checks (ood.npz, planes.npz) and, for published
models, the measured reports its model card is made from. `write` assembles a folder beside its
destination and swaps it in (`brat.folder_swap`), so readers see the old model or the new one,
never half of one; `load_keras_model` checks model.keras against its recorded hash first, so a
damaged file is reported as damaged rather than served.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from brat import DISCLAIMER, __version__
from brat.data.manifest import ManifestRow, read_manifest, rows_for, write_manifest
from brat.errors import BratError, DamagedModelError
from brat.evaluation.metrics import Metrics
from brat.files import atomic_write_json, atomic_write_text, sha256_file
from brat.folder_swap import recover, staging_folder, swap_in
from brat.labels import CLASSES
from brat.settings import ACTIVE_MODEL_FILE, home, runs_dir
from brat.training.config import TrainConfig

if TYPE_CHECKING:
    import keras

MODEL_FILE = "model.keras"
META_FILE = "brat.json"
HISTORY_FILE = "history.json"
MANIFEST_FILE = "manifest.csv"
OOD_FILE = "ood.npz"
PLANES_FILE = "planes.npz"
CONFORMAL_FILE = "conformal.npz"
FAMILIARITY_FILE = "familiarity.npz"
# The model card and the measured reports it is made from (`brat card`).
CARD_FILE = "MODEL_CARD.md"
NOTES_FILE = "notes.md"
TEST_FILE = "evaluation-test.json"  # `brat evaluate DATA --json FILE`
CROSSVAL_FILE = "crossval.json"  # `brat crossval DATA --json FILE`
OOD_EVALUATION_FILE = "ood-evaluation.json"  # `python -m benchmarks.ood DATA > FILE`
PLANES_EVALUATION_FILE = "planes-evaluation.json"  # `brat fit-planes DATA --json FILE`
COMPARISON_FILE = "plane-comparison.json"  # `brat compare DATA --json FILE`
LOCALIZATION_FILE = "localization-test.json"  # `brat localize DATA --json FILE`
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelMeta:
    """brat.json: how the model was trained and what it measured on its validation split."""

    format_version: int = FORMAT_VERSION
    brat_version: str = __version__
    disclaimer: str = DISCLAIMER
    classes: tuple[str, ...] = CLASSES
    config: TrainConfig = field(default_factory=TrainConfig)
    temperature: float = 1.0  # fitted on the validation split: probabilities = softmax(z / T)
    manifest_sha256: str = ""  # `brat.training.train.manifest_digest` of the split manifest
    data: str = ""  # the dataset folder's name
    split_sizes: dict[str, int] = field(default_factory=dict)
    status: str = "completed"  # "completed", "early_stopped" or "stopped"
    best_epoch: int = 0
    epochs_run: int = 0
    training_seconds: float = 0.0
    validation: Metrics | None = None  # on the validation split, calibrated
    keras_version: str = ""
    tensorflow_version: str = ""
    model_sha256: str | None = None  # None in folders written before hashes were recorded
    # The model this one was fine-tuned from (`lineage`), when its weights were a model folder.
    started_from: dict | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["classes"] = list(self.classes)
        data["validation"] = self.validation.to_json() if self.validation else {}
        if self.model_sha256 is None:
            del data["model_sha256"]
        if self.started_from is None:
            del data["started_from"]
        return data

    def lineage(self) -> dict:
        """What a model fine-tuned from this one records of it: its hash, data, recipe and time,
        and what it was itself fine-tuned from."""
        return {
            "model_sha256": self.model_sha256,
            "data": self.data,
            "config": self.config.to_dict(),
            "training_seconds": self.training_seconds,
            "started_from": self.started_from,
        }

    @classmethod
    def from_json(cls, data: dict) -> ModelMeta:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["config"] = TrainConfig.from_dict(data["config"])
        values["classes"] = tuple(data.get("classes", CLASSES))
        values["validation"] = (
            Metrics.from_json(data["validation"]) if data.get("validation") else None
        )
        return cls(**values)


def read_meta(folder: str | Path) -> ModelMeta:
    """A folder's brat.json; DamagedModelError when it is unreadable or not brat's."""
    path = Path(folder) / META_FILE
    try:
        return ModelMeta.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DamagedModelError(f"{path} is damaged ({type(error).__name__}: {error}).") from error


def model_folder(path: str | Path) -> Path:
    """The model folder `path` names (a folder, or its model.keras), finishing a swap into it that
    a killed training run left halfway; a BratError when no model is there."""
    path = Path(path)
    if path.is_file() and path.name == MODEL_FILE:
        path = path.parent
    if not (path / MODEL_FILE).is_file():
        recover(path)
    if not (path / MODEL_FILE).is_file() or not (path / META_FILE).is_file():
        raise BratError(
            f"No trained model at {path} (it needs {MODEL_FILE} and {META_FILE}). Train one with "
            "`python -m brat train DATA --out PATH`, or set BRAT_MODEL to a model folder."
        )
    return path


def load_keras_model(folder: Path, meta: ModelMeta) -> keras.Model:
    """model.keras of `folder`, after checking it against the SHA-256 recorded in `meta`."""
    model_file = Path(folder) / MODEL_FILE
    if meta.model_sha256:  # Older folders record none: then only Keras' own checks apply.
        try:
            actual = sha256_file(model_file)
        except OSError as error:
            raise DamagedModelError(f"{model_file} cannot be read ({error}).") from error
        if actual != meta.model_sha256:
            raise DamagedModelError(
                f"{model_file} is damaged: its SHA-256 {actual[:16]}… does not match the "
                f"{meta.model_sha256[:16]}… recorded in {META_FILE} when it was trained. Retrain "
                "the model or restore the file from a backup."
            )
    import keras

    try:
        return keras.saving.load_model(model_file, compile=False)
    except Exception as error:  # Keras raises many types for a damaged or foreign file.
        raise DamagedModelError(
            f"{model_file} is damaged or not a Keras model and cannot be loaded "
            f"({type(error).__name__}: {str(error)[:160]}). Retrain the model or restore the file."
        ) from error


def write(
    out: Path,
    model: keras.Model,
    meta: ModelMeta,
    history: list[dict],
    rows: list[ManifestRow],
    checks: dict[str, object],
) -> None:
    """Assemble the model folder beside `out`, then swap it in with renames.

    `checks` maps file names (OOD_FILE, PLANES_FILE) to fitted checks with a `save(path)`. On
    failure the staging folder is removed, a model already at `out` is put back, and a BratError
    says so.
    """
    staging = staging_folder(out)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        model.save(staging / MODEL_FILE)
        meta = ModelMeta(**{**vars(meta), "model_sha256": sha256_file(staging / MODEL_FILE)})
        atomic_write_json(staging / META_FILE, meta.to_json())
        atomic_write_json(staging / HISTORY_FILE, history)
        write_manifest(rows, staging / MANIFEST_FILE)
        for name, check in checks.items():
            check.save(staging / name)
        swap_in(staging, out)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise BratError(
            f"Cannot write the model to {out} ({error}). Any model there before is unchanged."
        ) from error


def read_model_manifest(folder: str | Path) -> list[ManifestRow]:
    """The split manifest a model was trained on."""
    return read_manifest(Path(folder) / MANIFEST_FILE)


def split_for_folder(folder: str | Path, data_root: str | Path) -> list[ManifestRow] | None:
    """The split the model in `folder` was trained on, when every one of its images is in
    `data_root` (the same dataset, wherever it lives now); else None. Training and the Dataset
    page use it to keep the held-out images of that model held out."""
    try:
        rows = rows_for(read_model_manifest(folder), data_root)
    except (OSError, BratError):
        return None
    data_root = Path(data_root)
    return rows if rows and all((data_root / r.path).is_file() for r in rows) else None


@dataclass(frozen=True)
class ModelSummary:
    """One finished model folder, as the Train page lists it."""

    name: str
    path: str
    finished: datetime
    status: str
    plane: str
    image_size: int
    alpha: float
    epochs: int
    best_epoch: int
    minutes: float
    val_accuracy: float | None
    val_macro_f1: float | None


def list_models(folder: Path | None = None) -> list[ModelSummary]:
    """Finished model folders under `folder` (default: the app's runs folder), newest first; a
    damaged folder is left out (`brat evaluate` on it says what is wrong)."""
    folder = folder or runs_dir()
    summaries = []
    for meta_file in sorted(folder.glob(f"*/{META_FILE}")):
        if meta_file.parent.name.startswith("."):
            continue  # A run being written (staging) or its checkpoints.
        try:
            meta = read_meta(meta_file.parent)
            finished = datetime.fromtimestamp(meta_file.stat().st_mtime)
        except (OSError, BratError):
            continue
        summaries.append(
            ModelSummary(
                name=meta_file.parent.name,
                path=str(meta_file.parent),
                finished=finished,
                status=meta.status,
                plane=meta.config.plane or "combined",
                image_size=meta.config.model.image_size,
                alpha=meta.config.model.alpha,
                epochs=meta.epochs_run,
                best_epoch=meta.best_epoch,
                minutes=round(meta.training_seconds / 60, 1),
                val_accuracy=meta.validation.accuracy if meta.validation else None,
                val_macro_f1=meta.validation.macro_f1 if meta.validation else None,
            )
        )
    return sorted(summaries, key=lambda summary: summary.finished, reverse=True)


def promote(folder: str | Path) -> Path:
    """Make `folder` the app's model in one atomic step (the pointer file is replaced by a
    rename: readers see the old or the new model); it must load as a Keras model first."""
    folder = model_folder(Path(folder).resolve())
    load_keras_model(folder, read_meta(folder))  # Refuse a folder the app could not serve.
    try:
        atomic_write_text(home() / ACTIVE_MODEL_FILE, f"{folder}\n")
    except OSError as error:
        raise BratError(
            f"Cannot promote {folder}: {error}. The active model is unchanged."
        ) from error
    return folder
