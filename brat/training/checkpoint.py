"""A training run's checkpoints (`.NAME.work/` beside its output) and the callback that, after
every epoch, validates, keeps the best weights, follows the learning-rate schedule, stops early and
checkpoints, so that rerunning the same command after a crash (even `kill -9`) resumes.

Every checkpoint file is written under a new name and state.json, replaced atomically, names the
files of the last complete epoch.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from brat.errors import BratError
from brat.evaluation.metrics import softmax
from brat.files import atomic_write_json
from brat.inference.classifier import model_outputs


def work_folder(out: Path) -> Path:
    """Where the checkpoints of a run writing `out` live."""
    return out.parent / f".{out.name}.work"


def start_work(work: Path, run_key: str) -> None:
    """An empty checkpoint folder for a new run."""
    try:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        atomic_write_json(work / "run.json", {"key": run_key})
    except OSError as error:
        raise BratError(f"Cannot create the checkpoint folder {work} ({error}).") from error


def load_state(work: Path, run_key: str) -> dict | None:
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


class EpochControl(keras.callbacks.Callback):
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
        logits = model_outputs(self.model, self.val_x)
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
        atomic_write_json(self.work / "state.json", state)
        for path in self.work.iterdir():
            if path.is_file() and path.name not in {"run.json", "state.json", last, self.best_file}:
                path.unlink(missing_ok=True)


def _floats(logs: dict | None) -> dict:
    """Keras logs as floats; a two-output model's `logits_accuracy` is reported as `accuracy`."""
    values = {key: float(np.asarray(value)) for key, value in (logs or {}).items()}
    if "logits_accuracy" in values:
        values["accuracy"] = values.pop("logits_accuracy")
    return values
