"""Training a classifier from a split manifest, resumable, stoppable, and written atomically.

A run reads the train and validation rows of a manifest, prepares their images once (cached), fits
the MobileNetV2 with augmentation on the training images only (`brat.training.pipeline`), follows
its schedule and checkpoints every epoch (`brat.training.checkpoint`: the same command resumes
after a crash), then calibrates on the validation images, fits the not-a-brain-MRI and view-plane
checks, and writes the model folder atomically (`brat.model_folder`). A stop request ends the run
after the current batch; the completed epoch the schedule would keep is kept. Seeds and op
determinism are set for the run and put back afterwards (`seeded`).

Importing this module loads TensorFlow; commands import it only when they train. A folder that
cannot be written (read-only, full) is a BratError naming it; the previous model is left as it was
and the checkpoint is kept, so the same command finishes the run once the cause is fixed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from brat import model_folder
from brat.data.manifest import ManifestRow
from brat.data.prepared import prepare_images, prepare_masks
from brat.errors import BratError, DatasetError
from brat.evaluation.metrics import (
    Metrics,
    classification_metrics,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from brat.folder_swap import recover
from brat.inference.checks import fit_checks
from brat.inference.classifier import pooled_outputs
from brat.inference.ood import OOD_LAYER
from brat.inference.planes import fit_planes
from brat.labels import CLASSES, PLANES
from brat.model_folder import PLANES_FILE, ModelMeta
from brat.training.checkpoint import EpochControl, load_state, start_work, work_folder
from brat.training.config import TrainConfig, TrainingEvents
from brat.training.losses import loss_arguments
from brat.training.model import (
    ModelConfig,
    build_model,
    classification_model,
    trained_model_folder,
)
from brat.training.pipeline import class_weights, training_data


@dataclass
class TrainResult:
    out: Path | None  # None when the run stopped before completing an epoch
    status: str  # "completed", "early_stopped" or "stopped"
    history: list[dict]
    best_epoch: int
    seconds: float
    temperature: float
    validation: Metrics | None  # the calibrated model on the validation split (None: stopped)
    resumed_after: int = 0  # the checkpointed epoch this run resumed after (0: a fresh run)


def manifest_digest(rows: list[ManifestRow]) -> str:
    text = "\n".join(f"{r.path},{r.label},{r.split},{r.group},{r.plane}" for r in rows)
    return hashlib.sha256(text.encode()).hexdigest()


def train(
    data_root: str | Path,
    rows: list[ManifestRow],
    out: str | Path,
    config: TrainConfig,
    *,
    events: TrainingEvents | None = None,
    stop: threading.Event | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train on the manifest's train rows, select on its val rows, and write the model to `out`."""
    started = time.perf_counter()
    data_root, out = Path(data_root), Path(out)
    events = events or TrainingEvents()
    stop = stop or threading.Event()
    train_rows, val_rows = _select_rows(rows, config.plane)
    if config.frozen_blocks and config.model.weights == "none":
        raise BratError(
            "Freezing the lowest blocks keeps their weights as loaded: it needs pretrained weights "
            "(a weights file or imagenet), not a model trained from scratch."
        )
    _check_writable(out)
    recover(out)  # A swap into `out` that a killed run left halfway.
    size = config.model.image_size
    events.on_status(f"Preparing {len(train_rows) + len(val_rows)} images at {size} px")
    train_x = prepare_images(
        data_root, [r.path for r in train_rows], size, cache_dir=cache_dir, progress=progress
    )
    val_x = prepare_images(
        data_root, [r.path for r in val_rows], size, cache_dir=cache_dir, progress=progress
    )
    train_masks = None
    if config.model.mask_weight > 0:
        events.on_status("Preparing the tumour masks")
        train_masks = prepare_masks(
            data_root, [(r.path, r.mask or None) for r in train_rows], size, progress=progress
        )
    train_y = np.array([CLASSES.index(r.label) for r in train_rows])
    val_y = np.array([CLASSES.index(r.label) for r in val_rows])

    work = work_folder(out)
    run_key = hashlib.sha256(
        (json.dumps(config.to_dict(), sort_keys=True) + manifest_digest(rows)).encode()
    ).hexdigest()
    state = load_state(work, run_key)
    with seeded(config.seed, config.deterministic):
        gpus = tf.config.list_logical_devices("GPU")
        strategy = (
            tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
        )
        policy = keras.mixed_precision.global_policy()
        if gpus:
            keras.mixed_precision.set_global_policy("mixed_float16")

        try:
            with strategy.scope():
                if state:
                    events.on_status(f"Resuming after epoch {state['epoch']}")
                    import brat.training.evidence  # noqa: F401  (the layer and loss a checkpoint may use)

                    model = keras.saving.load_model(work / state["last"])
                else:
                    start_work(work, run_key)
                    events.on_status("Building the model")
                    model = build_model(
                        config.model,
                        frozen_blocks=config.frozen_blocks,
                        start=starting_model(config.model),
                    )
                    model.compile(
                        optimizer=keras.optimizers.Adam(config.initial_learning_rate),
                        **loss_arguments(config),
                    )
            batches = math.ceil(len(train_rows) / config.batch_size)
            control = EpochControl(config, work, val_x, val_y, batches, events, stop, state)
            events.on_status("Training")
            model.fit(
                training_data(train_x, train_y, config, train_masks, train_rows),
                epochs=state["epoch"] if state and state.get("early") else config.epochs,
                initial_epoch=state["epoch"] if state else 0,
                class_weight=class_weights(train_y)
                if config.class_weights and train_masks is None
                else None,
                callbacks=[control],
                shuffle=False,  # The dataset shuffles itself, seeded.
                verbose=0,
            )
        finally:
            keras.mixed_precision.set_global_policy(policy)

    if control.best_epoch == 0:
        shutil.rmtree(work, ignore_errors=True)
        return TrainResult(None, "stopped", [], 0, time.perf_counter() - started, 1.0, None)
    events.on_status("Calibrating on the validation split")
    trained_as = replace(config.model, weights="none")
    if trained_as.mask_target == "evidence":  # Same weights, in the plain dense layer.
        trained_as = replace(trained_as, mask_weight=0.0)
    final = build_model(trained_as)
    model.load_weights(work / control.best_file)
    final.set_weights(model.get_weights())
    final = classification_model(final)
    val_logits, val_features, val_penultimate = pooled_outputs(final, val_x)
    temperature = fit_temperature(val_logits, val_y)
    val_probabilities = softmax(val_logits, temperature)
    validation = classification_metrics(
        val_y,
        val_probabilities,
        ece_uncalibrated=expected_calibration_error(softmax(val_logits), val_y),
    )
    events.on_status("Fitting the checks: not a brain MRI, unfamiliar scan, prediction sets")
    _, train_features, train_penultimate = pooled_outputs(final, train_x)
    checks = fit_checks(
        train_features,
        train_penultimate,
        train_y,
        val_features,
        val_penultimate,
        val_probabilities,
        val_y,
    )
    planes = _fit_planes(
        train_rows + val_rows,
        np.concatenate([train_features, val_features]),
        np.concatenate([train_x, val_x]),
    )
    status = "stopped" if control.stopped else "early_stopped" if control.early else "completed"
    seconds = (state or {}).get("seconds", 0.0) + time.perf_counter() - started
    meta = ModelMeta(
        config=config,
        temperature=temperature,
        manifest_sha256=manifest_digest(rows),
        data=" + ".join(sorted({r.folder for r in rows if r.folder})) or data_root.name,
        split_sizes={"train": len(train_rows), "val": len(val_rows)},
        status=status,
        best_epoch=control.best_epoch,
        epochs_run=len(control.history),
        training_seconds=round(seconds, 1),
        validation=validation,
        keras_version=keras.__version__,
        tensorflow_version=tf.__version__,
        started_from=_started_from(config),
    )
    checks |= {PLANES_FILE: planes} if planes is not None else {}
    try:
        model_folder.write(out, final, meta, control.history, rows, checks)
    except BratError as error:
        raise BratError(
            f"{error} The training checkpoint in {work_folder(out)} is kept, so the same command "
            "writes the model without training again once the cause is fixed."
        ) from error
    shutil.rmtree(work, ignore_errors=True)
    events.on_status(f"Saved {out}")
    resumed_after = state["epoch"] if state else 0
    return TrainResult(
        out,
        status,
        control.history,
        control.best_epoch,
        seconds,
        temperature,
        validation,
        resumed_after,
    )


def starting_model(config: ModelConfig) -> keras.Model | None:
    """The trained model of the brat model folder `config.weights` names (None for other
    weights), checked to be of this run's size and width."""
    folder = trained_model_folder(config.weights)
    if folder is None:
        return None
    meta = model_folder.read_meta(folder)
    trained = meta.config.model
    if (trained.image_size, trained.alpha) != (config.image_size, config.alpha):
        raise BratError(
            f"The model in {folder} takes {trained.image_size} px at width {trained.alpha}; this "
            f"run is set to {config.image_size} px at width {config.alpha}: start from a model "
            "of the same size and width."
        )
    return model_folder.load_keras_model(folder, meta)


def _started_from(config: TrainConfig) -> dict | None:
    """The lineage of the model folder a fine-tuning run started from (None for other weights)."""
    folder = trained_model_folder(config.model.weights)
    return model_folder.read_meta(folder).lineage() if folder else None


def _select_rows(
    rows: list[ManifestRow], plane: str | None
) -> tuple[list[ManifestRow], list[ManifestRow]]:
    if plane:
        rows = [r for r in rows if r.plane == plane]
        if not rows:
            raise DatasetError(f"The manifest has no images of the {plane} plane.")
    unknown = sorted({r.label for r in rows} - set(CLASSES))
    if unknown:
        raise DatasetError(f"The manifest has labels brat does not know: {unknown}.")
    train_rows = [r for r in rows if r.split == "train"]
    val_rows = [r for r in rows if r.split == "val"]
    if not train_rows or not val_rows:
        raise DatasetError(
            "Training needs images in both the train and the val split "
            f"(found {len(train_rows)} and {len(val_rows)})."
        )
    missing = sorted(set(CLASSES) - {r.label for r in train_rows})
    if missing and not plane:
        raise DatasetError(f"The training split has no images of {missing}.")
    # One plane may lack a class (brain-mri's no_tumor scans are all axial): the model keeps every
    # class's output and learns from the classes the plane has.
    return train_rows, val_rows


def _fit_planes(rows: list[ManifestRow], features: np.ndarray, images: np.ndarray):
    """The view-plane classifier, when the training and validation images (`images`, prepared)
    have hand-labelled planes for every plane (at least 10 each); else None (`brat fit-planes` can
    add one later). Predicted planes are never learnt from."""
    labelled = [i for i, r in enumerate(rows) if r.plane in PLANES and r.plane_source == "label"]
    counts = Counter(rows[i].plane for i in labelled)
    if len(counts) < len(PLANES) or min(counts.values()) < 10:
        return None
    return fit_planes(
        features[labelled], [rows[i].plane for i in labelled], OOD_LAYER, images=images[labelled]
    )


def _check_writable(out: Path) -> None:
    """Fail before any work when the folder that will hold `out` cannot be written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as error:
        raise BratError(
            f"Cannot write the model folder {out}: {out.parent} cannot be written ({error}). "
            "Choose another output folder, or make that one writable."
        ) from error


@contextmanager
def seeded(seed: int, deterministic: bool) -> Iterator[None]:
    """Seed Python, NumPy, TensorFlow and Keras for one run (and make TensorFlow's ops
    deterministic when asked), then put back what the process had: the app's other sessions keep
    their own randomness."""
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils
    from tensorflow.python.eager import context
    from tensorflow.python.framework import config as tf_config

    python_state, numpy_state, tf_seed = (
        random.getstate(),
        np.random.get_state(),
        context.global_seed(),
    )
    keras_state = {
        name: global_state.get_global_attribute(name)
        for name in (rng_utils.GLOBAL_RANDOM_SEED, seed_generator.GLOBAL_SEED_GENERATOR)
    }
    was_deterministic = tf_config.is_op_determinism_enabled()
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf_config.enable_op_determinism()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        tf.random.set_seed(tf_seed)
        for name, value in keras_state.items():
            global_state.set_global_attribute(name, value)
        if not was_deterministic:
            tf_config.disable_op_determinism()
