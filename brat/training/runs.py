"""Training runs in a background thread, followed by any number of readers (the app's pages).

A `TrainingRun` is the run's `TrainingEvents`: the training thread appends to it and readers take
snapshots, under one lock. The thread never touches a user interface. Runs live in this module's
registry, in the process, so a page reload or a second browser tab finds the same run. One run at a
time: a 2-core machine gains nothing from two, and each would slow the other.
Finished runs are model folders under `brat.settings.runs_dir()`; `brat.model_folder.list_models`
lists them.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from brat.errors import BratError
from brat.model_folder import META_FILE, split_for_folder
from brat.settings import runs_dir
from brat.training.config import TrainConfig, TrainingEvents

# Batches kept for the live chart (a long run keeps the most recent ones).
MAX_BATCH_POINTS = 2000


@dataclass
class RunSnapshot:
    """A consistent copy of a run's state for one reader."""

    name: str
    state: str  # "running", "completed", "early_stopped", "stopped", "failed"
    status: str  # what the run is doing now, in words
    epoch: int
    epochs: int
    batch: int
    batches: int
    batch_log: list[dict]  # {"step", "epoch", "batch", "loss", "accuracy"}
    epoch_log: list[dict]  # history rows: epoch, loss, accuracy, val_loss, val_accuracy, ...
    elapsed: float
    error: str | None
    out: Path | None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float:
        """Share of the planned batches done (early stopping can end a run sooner)."""
        if not self.batches or not self.epochs:
            return 0.0
        done = (self.epoch - 1) * self.batches + self.batch if self.epoch else 0
        return min(1.0, done / (self.epochs * self.batches))

    @property
    def eta(self) -> float | None:
        """Seconds left at the pace so far, or None before the first batch."""
        fraction = self.fraction
        if not self.running or fraction <= 0.0:
            return None
        return self.elapsed * (1.0 - fraction) / fraction


@dataclass
class TrainingRun(TrainingEvents):
    name: str
    data_root: Path
    out: Path
    config: TrainConfig
    started: float = field(default_factory=time.time)
    stop_event: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _state: str = "running"
    _status: str = "Starting"
    _epoch: int = 0
    _batch: int = 0
    _batches: int = 0
    _steps: int = 0
    _batch_log: list[dict] = field(default_factory=list)
    _epoch_log: list[dict] = field(default_factory=list)
    _error: str | None = None
    _finished: float | None = None
    _thread: threading.Thread | None = None

    # TrainingEvents, called from the training thread.
    def on_status(self, text: str) -> None:
        with self._lock:
            self._status = text

    def on_batch(self, epoch: int, batch: int, batches: int, logs: dict) -> None:
        with self._lock:
            self._epoch, self._batch, self._batches = epoch, batch, batches
            self._steps += 1
            self._batch_log.append(
                {
                    "step": self._steps,
                    "epoch": epoch,
                    "batch": batch,
                    "loss": float(logs.get("loss", float("nan"))),
                    "accuracy": float(logs.get("accuracy", float("nan"))),
                }
            )
            del self._batch_log[:-MAX_BATCH_POINTS]

    def on_epoch(self, row: dict) -> None:
        with self._lock:
            self._epoch_log.append(dict(row))

    # Readers.
    @property
    def running(self) -> bool:
        with self._lock:
            return self._state == "running"

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            end = self._finished or time.time()
            return RunSnapshot(
                name=self.name,
                state=self._state,
                status=self._status,
                epoch=self._epoch,
                epochs=self.config.epochs,
                batch=self._batch,
                batches=self._batches,
                batch_log=list(self._batch_log),
                epoch_log=list(self._epoch_log),
                elapsed=end - self.started,
                error=self._error,
                out=self.out if self._state in ("completed", "early_stopped", "stopped") else None,
            )

    def stop(self) -> None:
        """Ask the run to stop after its current batch; the best finished epoch is kept."""
        self.stop_event.set()
        self.on_status("Stopping after the current batch")

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, rows) -> None:
        from brat.training.train import train

        try:
            result = train(
                self.data_root,
                rows,
                self.out,
                self.config,
                events=self,
                stop=self.stop_event,
                progress=False,
            )
            state = result.status if result.out is not None else "stopped"
            status = (
                f"Saved {result.out}"
                if result.out
                else "Stopped before the first epoch ended: no model was written"
            )
            error = None
        except Exception as exc:  # Any failure ends the run with its message, not a dead thread.
            state, error = "failed", f"{type(exc).__name__}: {exc}"
            status = "Failed; rerun the same settings to resume from the last checkpoint"
            traceback.print_exc()
        with self._lock:
            self._state, self._status, self._error = state, status, error
            self._finished = time.time()


_runs: dict[str, TrainingRun] = {}
_registry_lock = threading.Lock()


def start_run(
    data_root: str | Path, rows, config: TrainConfig, name: str | None = None
) -> TrainingRun:
    """Start training in a background thread; refuses while another run is going."""
    with _registry_lock:
        busy = [run.name for run in _runs.values() if run.running]
        if busy:
            raise BratError(f"Run {busy[0]} is still training; stop it or wait until it ends.")
        name = name or default_run_name(config)
        out = runs_dir() / name
        if (out / META_FILE).exists():
            raise BratError(f"A finished run named {name} exists already; choose another name.")
        run = TrainingRun(name=name, data_root=Path(data_root), out=out, config=config)
        run._thread = threading.Thread(
            target=run._run, args=(rows,), name=f"brat-train-{name}", daemon=True
        )
        _runs[name] = run
        run._thread.start()
    return run


def current_run() -> TrainingRun | None:
    """The running run, else the most recently started one of this process."""
    with _registry_lock:
        runs = list(_runs.values())
    running = [run for run in runs if run.running]
    return (running or runs or [None])[-1]


def training_rows(
    data_root: str | Path, reference: Path | None = None, *, planes: bool = False
) -> tuple[list, str]:
    """The manifest rows to train on, and where they came from.

    The split of the `reference` model folder (default: the active model) when every one of its
    images is in `data_root`, so new runs are measured on the same held-out images; else a fresh
    group-aware split of `data_root`. With `planes`, images without a hand-labelled plane get the
    plane the reference model's plane classifier predicts (for training one plane).
    """
    from brat.data.split import split_dataset
    from brat.settings import active_model_path

    data_root = Path(data_root)
    reference = Path(reference or active_model_path())
    rows = split_for_folder(reference, data_root)
    if rows:
        origin = f"the split of {reference.name}"
    else:
        rows = split_dataset(data_root, progress=False).rows
        origin = "a new group-aware split of the folder"
    if planes:
        from brat.inference.classifier import load_classifier
        from brat.inference.planes import planes_of_images, with_predicted_planes

        unknown = [row.path for row in rows if not row.plane]
        found = planes_of_images(data_root, unknown, load_classifier(reference), progress=False)
        predicted = {path: plane for path, (plane, _) in zip(unknown, found, strict=True)}
        rows = with_predicted_planes(rows, predicted)
        origin += f", with {len(unknown)} view planes predicted by {reference.name}"
    return rows, origin


def default_run_name(config: TrainConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    plane = config.plane or "combined"
    return f"mnv2-{config.model.image_size}px-{plane}-{stamp}"
