"""Training runs in a process of their own, followed by any number of readers (the app's pages).

`start_run` writes the run's request into a live folder, `runs_dir()/.live/NAME`, and starts
`python -m brat.training.worker` on it (`brat.training.worker`): the run has its own interpreter
lock, so analysing sessions in the server cannot starve it, and its own crash domain, so a crash or
a kill of the training leaves the app serving. The worker appends the run's events to the live
folder and holds its lock while it lives; a `TrainingRun` reads them. Everything is on disk, so a
page reload, a second tab or a restarted server finds the same run, running or ended. One run at a
time: a 2-core machine gains nothing from two, and each would slow the other.
Finished runs are model folders under `brat.settings.runs_dir()`; `brat.model_folder.list_models`
lists them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from brat.data.manifest import write_manifest
from brat.errors import BratError
from brat.files import atomic_write_text
from brat.model_folder import META_FILE, split_for_folder
from brat.settings import runs_dir
from brat.training.config import TrainConfig
from brat.training.worker import (
    EVENTS_FILE,
    MANIFEST_FILE,
    REQUEST_FILE,
    STOP_FILE,
    is_locked,
)

# Batches kept for the live chart (a long run keeps the most recent ones).
MAX_BATCH_POINTS = 2000
# Live folders of ended runs kept (the newest), so their charts stay after a reload.
KEEP_ENDED = 20
LOG_FILE = "worker.log"


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
    # A resumed run's first batch after the restart: seconds since the run began, and the share
    # of batches done (both 0 for a run never resumed), so its pace leaves out the idle time.
    resumed_at: float = 0.0
    resumed_fraction: float = 0.0

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float:
        """Share of the planned batches done (early stopping can end a run sooner)."""
        return _share(self.epoch, self.batch, self.batches, self.epochs)

    @property
    def eta(self) -> float | None:
        """Seconds left at the pace since the latest (re)start, or None before its first batch."""
        done = self.fraction - self.resumed_fraction
        if not self.running or done <= 0.0:
            return None
        return (self.elapsed - self.resumed_at) * (1.0 - self.fraction) / done


def _share(epoch: int, batch: int, batches: int, epochs: int) -> float:
    """Share of the planned batches done at `batch` of `epoch` (1-based; 0: none yet)."""
    if not batches or not epochs or not epoch:
        return 0.0
    return min(1.0, ((epoch - 1) * batches + batch) / (epochs * batches))


@dataclass
class TrainingRun:
    """A reader of one run's live folder; cheap to ask again (it reads only new events)."""

    folder: Path
    name: str
    out: Path
    epochs: int
    started: float
    _process: subprocess.Popen | None = None  # when this process started the worker
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _offset: int = 0
    _status: str = "Starting"
    _epoch: int = 0
    _batch: int = 0
    _batches: int = 0
    _steps: int = 0
    _batch_log: list[dict] = field(default_factory=list)
    _epoch_log: list[dict] = field(default_factory=list)
    _end: dict | None = None
    _resumed: tuple[float, int, int] = (0.0, 0, 0)  # time, epoch, batch: first after a restart
    _restarted: bool = False
    pid: int | None = None  # the worker's process id, once it has started

    @classmethod
    def open(cls, folder: Path, process: subprocess.Popen | None = None) -> TrainingRun:
        request = json.loads((folder / REQUEST_FILE).read_text(encoding="utf-8"))
        return cls(
            folder=folder,
            name=folder.name,
            out=Path(request["out"]),
            epochs=int(request["config"]["epochs"]),
            started=float(request["started"]),
            _process=process,
        )

    @property
    def running(self) -> bool:
        return self.snapshot().running

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            alive = self._alive()  # Before reading: a worker that ends now has written its end.
            self._read_events()
            end = self._end or {}
            if end:
                state, status, error = end["state"], end["status"], end.get("error")
            elif alive:
                state, error = "running", None
                stopping = (self.folder / STOP_FILE).exists()
                status = "Stopping after the current batch" if stopping else self._status
            else:
                state, status = "failed", self._vanished()
                error = "the training process ended without finishing"
            at, epoch, batch = self._resumed
            return RunSnapshot(
                name=self.name,
                state=state,
                status=status,
                epoch=self._epoch,
                epochs=self.epochs,
                batch=self._batch,
                batches=self._batches,
                batch_log=list(self._batch_log),
                epoch_log=list(self._epoch_log),
                elapsed=end.get("time", time.time()) - self.started,
                error=error,
                out=self.out if state in ("completed", "early_stopped", "stopped") else None,
                resumed_at=at - self.started if at else 0.0,
                resumed_fraction=_share(epoch, batch, self._batches, self.epochs),
            )

    def stop(self) -> None:
        """Ask the run to stop after its current batch; the best finished epoch is kept."""
        (self.folder / STOP_FILE).touch()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the run has ended (or `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)

    def _alive(self) -> bool:
        if self._process is not None and self._process.poll() is None:
            return True
        return is_locked(self.folder)

    def _read_events(self) -> None:
        try:
            with (self.folder / EVENTS_FILE).open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]  # a line being written waits for the next read
        self._offset += len(complete)
        for line in complete.decode("utf-8").splitlines():
            self._apply(json.loads(line))

    def _apply(self, event: dict) -> None:
        kind = event["event"]
        if kind == "start":  # a resumed run starts a new worker: its end is behind it
            self._end, self.pid = None, event["pid"]
            self._restarted = self._steps > 0
        elif kind == "status":
            self._status = event["text"]
        elif kind == "batch":
            self._epoch, self._batch, self._batches = (
                event["epoch"],
                event["batch"],
                event["batches"],
            )
            self._steps += 1
            if self._restarted:
                self._resumed, self._restarted = (event["time"], self._epoch, self._batch), False
            point = {key: event[key] for key in ("epoch", "batch", "loss", "accuracy")}
            self._batch_log.append({"step": self._steps, **point})
            del self._batch_log[:-MAX_BATCH_POINTS]
        elif kind == "epoch":
            self._epoch_log.append(event["row"])
        elif kind == "end":
            self._end = event

    def _vanished(self) -> str:
        code = self._process.returncode if self._process is not None else None
        how = f" (killed by signal {-code})" if code and code < 0 else ""
        return (
            f"The training process ended without a word{how}; its output is in "
            f"{self.folder / LOG_FILE}. Resume it to go on from the last checkpoint"
        )


_runs: dict[Path, TrainingRun] = {}
_registry_lock = threading.Lock()


def live_dir() -> Path:
    return runs_dir() / ".live"


def start_run(
    data_root: str | Path,
    rows,
    config: TrainConfig,
    name: str | None = None,
    site: dict | None = None,
) -> TrainingRun:
    """Start training in a process of its own; refuses while another run is going. `site`
    ({"name", "folders"}) makes it an adaptation: the site's held-out rows then calibrate the new
    model's site profile (`brat.training.adapt.site_profile_after`)."""
    with _registry_lock:
        _refuse_if_busy()
        name = name or default_run_name(config)
        out = runs_dir() / name
        if (out / META_FILE).exists():
            raise BratError(f"A finished run named {name} exists already; choose another name.")
        folder = live_dir() / name
        shutil.rmtree(folder, ignore_errors=True)  # an earlier, ended run of that name
        folder.mkdir(parents=True)
        write_manifest(rows, folder / MANIFEST_FILE)
        request = {
            "data_root": str(Path(data_root).resolve()),
            "out": str(out.resolve()),
            "config": config.to_dict(),
            "started": time.time(),
            **({"site": site} if site else {}),
        }
        atomic_write_text(folder / REQUEST_FILE, json.dumps(request, indent=2))
        run = _launch(folder)
        _prune_ended()
    return run


def resume_run(name: str) -> TrainingRun:
    """Start a failed run's worker again on the same request: training goes on from its last
    checkpoint, and its charts continue."""
    with _registry_lock:
        _refuse_if_busy()
        folder = live_dir() / name
        if not (folder / REQUEST_FILE).is_file():
            raise BratError(f"There is no run named {name} to resume.")
        if (TrainingRun.open(folder).out / META_FILE).exists():
            raise BratError(f"Run {name} has finished and written its model: nothing to resume.")
        (folder / STOP_FILE).unlink(missing_ok=True)
        return _launch(folder)


def current_run() -> TrainingRun | None:
    """The running run, else the most recently started one (in any process, from disk)."""
    with _registry_lock:
        runs = _known_runs()
    running = [run for run in runs if run.running]
    return (running or runs or [None])[-1]


def _launch(folder: Path) -> TrainingRun:
    log = (folder / LOG_FILE).open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "brat.training.worker", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_worker_environment(),
        start_new_session=True,  # Ctrl-C on the server does not stop the run.
    )
    log.close()
    run = TrainingRun.open(folder, process)
    _runs[folder] = run
    return run


def _worker_environment() -> dict[str, str]:
    """This process's environment, with brat importable wherever the app was started from."""
    package_parent = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": level}


def _known_runs() -> list[TrainingRun]:
    """Every run with a live folder, oldest first."""
    folders = [p for p in live_dir().glob("*") if (p / REQUEST_FILE).is_file()]
    for folder in folders:
        if folder not in _runs:
            try:
                _runs[folder] = TrainingRun.open(folder)
            except (OSError, ValueError, KeyError):
                continue  # a folder being written, or damaged: not a run to show
    return sorted((_runs[f] for f in folders if f in _runs), key=lambda run: run.started)


def _refuse_if_busy() -> None:
    busy = [run.name for run in _known_runs() if run.running]
    if busy:
        raise BratError(f"Run {busy[0]} is still training; stop it or wait until it ends.")


def _prune_ended() -> None:
    ended = [run for run in _known_runs() if not run.running]
    for run in ended[:-KEEP_ENDED]:
        shutil.rmtree(run.folder, ignore_errors=True)
        _runs.pop(run.folder, None)


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
