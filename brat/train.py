"""Training a classifier from a split manifest, resumable, stoppable, and written atomically.

A run reads the train and validation rows of a manifest, prepares their images once (cached), and
fits the MobileNetV2 with augmentation on the training images only. After every epoch it scores
the validation images, keeps the best weights by validation loss, lowers the learning rate on a
plateau and stops early (or, on the cosine schedule, trains every epoch and keeps the last), and
saves a checkpoint next to the output (`.NAME.work/`). Running the same command again after a crash
(even `kill -9`) resumes from that checkpoint: every checkpoint file is written under a new name
and state.json, replaced atomically, names the files of the last complete epoch. A stop request
ends the run after the current batch; the completed epoch the schedule would keep is kept.

Importing this module loads TensorFlow; commands import it only when they train.

The output folder (model.keras, brat.json, history.json, manifest.csv) is assembled in a temporary
folder and renamed into place, so readers see the previous model or the new one, never half of one;
a run killed between those renames is finished by the next load of the folder or run writing it.
brat.json records the SHA-256 of model.keras, which loading checks. A folder that cannot be written
(read-only, full) is a BratError naming it; the previous model is left as it was and the checkpoint
is kept, so the same command finishes the run once the cause is fixed.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from brat import DISCLAIMER, __version__
from brat.augment import augment_batch, training_augmentation
from brat.classifier import MANIFEST_FILE, META_FILE, MODEL_FILE, file_sha256, model_outputs
from brat.errors import BratError, DatasetError
from brat.folder_swap import recover, staging_folder, swap_in
from brat.labels import CLASSES, PLANES
from brat.metrics import (
    classification_metrics,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from brat.model import build_model, classification_model
from brat.ood import OOD_FILE, OOD_LAYER, features_model, fit_ood
from brat.planes import PLANES_FILE, fit_planes
from brat.prepared import prepare_images, prepare_masks
from brat.split import ManifestRow, write_manifest
from brat.train_config import TrainConfig, TrainingEvents

HISTORY_FILE = "history.json"
FORMAT_VERSION = 1


@dataclass
class TrainResult:
    out: Path | None  # None when the run stopped before completing an epoch
    status: str  # "completed", "early_stopped" or "stopped"
    history: list[dict]
    best_epoch: int
    seconds: float
    temperature: float
    validation: dict  # metrics of the calibrated model on the validation split
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

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    policy = keras.mixed_precision.global_policy()
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")

    work = _work_folder(out)
    run_key = hashlib.sha256(
        (json.dumps(config.to_dict(), sort_keys=True) + manifest_digest(rows)).encode()
    ).hexdigest()
    state = _load_state(work, run_key)
    try:
        with strategy.scope():
            if state:
                events.on_status(f"Resuming after epoch {state['epoch']}")
                import brat.evidence  # noqa: F401  (its layer and loss, for a checkpoint using them)

                model = keras.saving.load_model(work / state["last"])
            else:
                _start_work(work, run_key)
                events.on_status("Building the model")
                model = build_model(config.model)
                model.compile(
                    optimizer=keras.optimizers.Adam(config.initial_learning_rate),
                    **loss_arguments(config),
                )
        batches = math.ceil(len(train_rows) / config.batch_size)
        control = _EpochControl(config, work, val_x, val_y, batches, events, stop, state)
        events.on_status("Training")
        model.fit(
            _training_data(train_x, train_y, config, train_masks, train_rows),
            epochs=state["epoch"] if state and state.get("early") else config.epochs,
            initial_epoch=state["epoch"] if state else 0,
            class_weight=_class_weights(train_y)
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
        return TrainResult(None, "stopped", [], 0, time.perf_counter() - started, 1.0, {})
    events.on_status("Calibrating on the validation split")
    trained_as = replace(config.model, weights="none")
    if trained_as.mask_target == "evidence":  # Same weights, in the plain dense layer.
        trained_as = replace(trained_as, mask_weight=0.0)
    final = build_model(trained_as)
    model.load_weights(work / control.best_file)
    final.set_weights(model.get_weights())
    final = classification_model(final)
    val_logits = model_outputs(final, val_x, len(CLASSES))
    temperature = fit_temperature(val_logits, val_y)
    validation = classification_metrics(val_y, softmax(val_logits, temperature))
    validation["ece_uncalibrated"] = expected_calibration_error(softmax(val_logits), val_y)
    events.on_status("Fitting the not-a-brain-MRI check")
    check = features_model(final)
    width = int(check.outputs[0].shape[-1])
    train_features = model_outputs(check, train_x, width)
    val_features = model_outputs(check, val_x, width)
    ood = fit_ood(train_features, train_y, val_features)
    planes = _fit_planes(train_rows + val_rows, np.concatenate([train_features, val_features]))
    status = "stopped" if control.stopped else "early_stopped" if control.early else "completed"
    seconds = (state or {}).get("seconds", 0.0) + time.perf_counter() - started
    meta = {
        "format_version": FORMAT_VERSION,
        "brat_version": __version__,
        "disclaimer": DISCLAIMER,
        "classes": list(CLASSES),
        "config": config.to_dict(),
        "temperature": temperature,
        "manifest_sha256": manifest_digest(rows),
        "data": data_root.name,
        "split_sizes": {"train": len(train_rows), "val": len(val_rows)},
        "status": status,
        "best_epoch": control.best_epoch,
        "epochs_run": len(control.history),
        "training_seconds": round(seconds, 1),
        "validation": validation,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
    }
    _write_output(out, final, meta, control.history, rows, ood, planes)
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


def _class_weights(labels: np.ndarray) -> dict[int, float]:
    """Balanced weights n / (k * n_c): every class contributes equally to the loss."""
    counts = Counter(labels.tolist())
    return {c: len(labels) / (len(counts) * n) for c, n in counts.items()}


def loss_arguments(config: TrainConfig) -> dict:
    """compile() arguments: class loss and accuracy, plus the weighted mask loss when asked."""
    if config.label_smoothing > 0:
        class_loss = SmoothedSparseCrossentropy(config.label_smoothing)
    else:
        class_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    if config.model.mask_weight <= 0:
        return {"loss": class_loss, "metrics": [accuracy]}
    if config.model.mask_target == "evidence":
        from brat.evidence import evidence_loss

        mask_loss = evidence_loss
    else:
        mask_loss = keras.losses.BinaryCrossentropy()
    return {
        "loss": [class_loss, mask_loss],
        "loss_weights": [1.0, config.model.mask_weight],
        "metrics": [[accuracy], []],
    }


@keras.saving.register_keras_serializable(package="brat")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of logits against integer labels smoothed towards the uniform distribution
    (Keras' sparse loss has no label smoothing)."""

    def __init__(self, label_smoothing: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.one_hot(
            keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), classes
        )
        return keras.losses.categorical_crossentropy(
            labels, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _training_data(
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    masks: np.ndarray | None = None,
    rows: list[ManifestRow] | None = None,
):
    """Shuffled, augmented float batches (n, S, S, 1) in [0, 1], prefetched.

    With `masks`, each batch also carries the tumour's share of every cell of the network's last
    feature map (S/32 x S/32) and sample weights: the class weight for the label, and for the mask
    1 where the mask is known (an image with a mask, or a no_tumor image) and 0 elsewhere.
    """
    size = images.shape[1]
    with_masks = masks is not None
    if with_masks:
        known = np.array([bool(r.mask) or r.label == "no_tumor" for r in rows], np.float32)
        weights = _class_weights(labels) if config.class_weights else {}
        label_weights = np.array([weights.get(int(y), 1.0) for y in labels], np.float32)
        data = tf.data.Dataset.from_tensor_slices((images, masks, labels, label_weights, known))
    else:
        data = tf.data.Dataset.from_tensor_slices((images, labels))
    data = data.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    data = data.batch(config.batch_size)
    if config.augment:
        pipeline = training_augmentation(config.seed, config.augmentation)
        workers = 1 if config.deterministic else tf.data.AUTOTUNE

        def augment(batch, *rest):
            if not with_masks:
                augmented = tf.numpy_function(
                    lambda x: augment_batch(x, pipeline), [batch], tf.uint8, stateful=True
                )
                return tf.ensure_shape(augmented, (None, size, size)), *rest
            augmented, moved = tf.numpy_function(
                lambda x, m: augment_batch(x, pipeline, m),
                [batch, rest[0]],
                [tf.uint8, tf.uint8],
                stateful=True,
            )
            shape = (None, size, size)
            return tf.ensure_shape(augmented, shape), tf.ensure_shape(moved, shape), *rest[1:]

        data = data.map(augment, num_parallel_calls=workers, deterministic=config.deterministic)

    def to_float(batch, *rest):
        x = tf.cast(batch, tf.float32)[..., None] / 255.0
        if not with_masks:
            return x, rest[0]
        mask, batch_labels, label_weights, known = rest
        cells = size // 32
        share = tf.image.resize(
            tf.cast(mask, tf.float32)[..., None] / 255.0, (cells, cells), method="area"
        )
        if config.model.mask_target == "evidence":
            # The tumour's share of each cell, summing to 1, in the true class's channel.
            total = tf.reduce_sum(share, axis=(1, 2, 3), keepdims=True)
            where = tf.math.divide_no_nan(share, total)
            target = where * tf.one_hot(batch_labels, len(CLASSES))[:, None, None, :]
            return x, (batch_labels, target), (label_weights, known)
        mask_weights = tf.broadcast_to(known[:, None, None], (tf.shape(known)[0], cells, cells))
        return x, (batch_labels, share), (label_weights, mask_weights)

    return data.map(to_float).prefetch(tf.data.AUTOTUNE)


def _fit_planes(rows: list[ManifestRow], features: np.ndarray):
    """The view-plane classifier, when the training and validation images have hand-labelled
    planes for every plane (at least 10 each); else None (`brat fit-planes` can add one later).
    Predicted planes are never learnt from."""
    labelled = [i for i, r in enumerate(rows) if r.plane in PLANES and r.plane_source == "label"]
    counts = Counter(rows[i].plane for i in labelled)
    if len(counts) < len(PLANES) or min(counts.values()) < 10:
        return None
    return fit_planes(features[labelled], [rows[i].plane for i in labelled], OOD_LAYER)


def _work_folder(out: Path) -> Path:
    """Where the checkpoints of a run writing `out` live."""
    return out.parent / f".{out.name}.work"


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


def _start_work(work: Path, run_key: str) -> None:
    """An empty checkpoint folder for a new run."""
    try:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        _write_json_atomic(work / "run.json", {"key": run_key})
    except OSError as error:
        raise BratError(f"Cannot create the checkpoint folder {work} ({error}).") from error


def _load_state(work: Path, run_key: str) -> dict | None:
    """The saved state of an interrupted run with the same config and manifest, if any."""
    try:
        if json.loads((work / "run.json").read_text())["key"] != run_key:
            return None
        state = json.loads((work / "state.json").read_text())
        # Checkpoints written before the files had epoch names used these two names.
        state.setdefault("last", "last.keras")
        state.setdefault("best", "best.weights.h5")
        if (work / state["last"]).is_file() and (work / state["best"]).is_file():
            return state
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def _write_json_atomic(path: Path, data: dict | list) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def _write_output(out: Path, model, meta: dict, history: list[dict], rows, ood, planes) -> None:
    """Assemble the model folder beside `out`, then swap it in with renames (`brat.folder_swap`).

    On failure the staging folder is removed, a model already at `out` is put back, and the
    checkpoint stays: the same command writes the model again without training again.
    """
    staging = staging_folder(out)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        model.save(staging / MODEL_FILE)
        meta = {**meta, "model_sha256": file_sha256(staging / MODEL_FILE)}
        _write_json_atomic(staging / META_FILE, meta)
        _write_json_atomic(staging / HISTORY_FILE, history)
        write_manifest(rows, staging / MANIFEST_FILE)
        ood.save(staging / OOD_FILE)
        if planes is not None:
            planes.save(staging / PLANES_FILE)
        swap_in(staging, out)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise BratError(
            f"Cannot write the model to {out} ({error}). Any model there before is unchanged; "
            f"the training checkpoint in {_work_folder(out)} is kept, so the same command "
            "writes the model without training again once the cause is fixed."
        ) from error


class _EpochControl(keras.callbacks.Callback):
    """Validation, best weights, learning-rate plateau, early stopping, checkpoints, events."""

    def __init__(self, config, work, val_x, val_y, batches, events, stop, state) -> None:
        super().__init__()
        self.config, self.work, self.events, self.stop = config, work, events, stop
        self.val_x, self.val_y, self.batches = val_x, val_y, batches
        state = state or {}
        self.history: list[dict] = state.get("history", [])
        self.best_loss: float = state.get("best_loss", math.inf)
        self.best_epoch: int = state.get("best_epoch", 0)
        self.wait: int = state.get("wait", 0)
        self.lr_wait: int = state.get("lr_wait", 0)
        self.seconds: float = state.get("seconds", 0.0)
        self.best_file: str | None = state.get("best")
        self.stopped = False
        self.early: bool = state.get("early", False)
        self.epoch_started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        if self.config.schedule == "cosine":
            self.model.optimizer.learning_rate.assign(self.config.cosine_rate(self.epoch))
        self.epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.events.on_batch(self.epoch, batch + 1, self.batches, _floats(logs))
        if self.stop.is_set():
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped:
            return  # A partial epoch is not kept.
        logits = model_outputs(self.model, self.val_x, len(CLASSES))
        rows = np.arange(len(self.val_y))
        val_loss = float(-np.log(softmax(logits)[rows, self.val_y] + 1e-12).mean())
        optimizer = self.model.optimizer
        learning_rate = float(np.asarray(optimizer.learning_rate))
        seconds = time.perf_counter() - self.epoch_started
        self.seconds += seconds
        row = {
            "epoch": self.epoch,
            **_floats(logs),
            "val_loss": val_loss,
            "val_accuracy": float((logits.argmax(axis=1) == self.val_y).mean()),
            "learning_rate": learning_rate,
            "seconds": round(seconds, 1),
        }
        self.history.append(row)
        if self.config.schedule == "cosine":  # The last epoch is the one kept.
            improved = True
            self.best_loss, self.best_epoch = val_loss, self.epoch
        elif improved := val_loss < self.best_loss - 1e-4:
            self.best_loss, self.best_epoch, self.wait, self.lr_wait = val_loss, self.epoch, 0, 0
        else:
            self.wait += 1
            self.lr_wait += 1
            if self.lr_wait >= self.config.lr_patience:
                optimizer.learning_rate.assign(learning_rate * self.config.lr_factor)
                self.lr_wait = 0
            if self.wait >= self.config.patience:
                self.early = True
                self.model.stop_training = True
        try:
            self._checkpoint(improved)
        except OSError as error:
            raise BratError(
                f"Cannot save the checkpoint of epoch {self.epoch} in {self.work} ({error}). Fix "
                "that and run the same command again: it resumes after the last saved epoch."
            ) from error
        self.events.on_epoch(row)

    def _checkpoint(self, improved: bool) -> None:
        """Save this epoch's model (and weights, if best) under new names, then commit them by
        replacing state.json, then delete the files it no longer names. A kill at any point leaves
        a state.json that names complete files."""
        last = f"last-{self.epoch}.keras"
        self.model.save(self.work / last)
        if improved:
            self.best_file = f"best-{self.epoch}.weights.h5"
            self.model.save_weights(self.work / self.best_file)
        state = {
            "epoch": self.epoch,
            "history": self.history,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "lr_wait": self.lr_wait,
            "seconds": self.seconds,
            "early": self.early,
            "last": last,
            "best": self.best_file,
        }
        _write_json_atomic(self.work / "state.json", state)
        for path in self.work.iterdir():
            if path.is_file() and path.name not in {"run.json", "state.json", last, self.best_file}:
                path.unlink(missing_ok=True)


def _floats(logs: dict | None) -> dict:
    """Keras logs as floats; a two-output model's `logits_accuracy` is reported as `accuracy`."""
    values = {key: float(np.asarray(value)) for key, value in (logs or {}).items()}
    if "logits_accuracy" in values:
        values["accuracy"] = values.pop("logits_accuracy")
    return values
