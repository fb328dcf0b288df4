"""One training run in a process of its own: `python -m brat.training.worker FOLDER`.

FOLDER is a run's live folder (`brat.training.runs`): it holds `request.json` (the data folder,
the model folder to write, the configuration and, for an adaptation, the site whose held-out
scans calibrate the new model's site profile) and `manifest.csv` (the rows to train on). The
worker holds an exclusive lock on `FOLDER/lock` while it lives, so a reader in any process can tell
a running run from a dead one; it appends every event of the run to `FOLDER/events.jsonl`, one JSON
object a line, and ends with an "end" event. It stops after the current batch once `FOLDER/stop`
exists or it receives SIGTERM. TensorFlow is imported after the lock is taken.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from brat.training.config import TrainingEvents

EVENTS_FILE = "events.jsonl"
REQUEST_FILE = "request.json"
MANIFEST_FILE = "manifest.csv"
LOCK_FILE = "lock"
STOP_FILE = "stop"
# How often the worker looks for the stop file.
STOP_POLL_S = 0.5


class EventLog(TrainingEvents):
    """Writes each event as one line of JSON, flushed at once, for readers in other processes."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, event: str, **values) -> None:
        line = json.dumps({"event": event, "time": time.time(), **values}, allow_nan=True)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def on_status(self, text: str) -> None:
        self.write("status", text=text)

    def on_batch(self, epoch: int, batch: int, batches: int, logs: dict) -> None:
        self.write(
            "batch",
            epoch=epoch,
            batch=batch,
            batches=batches,
            loss=float(logs.get("loss", float("nan"))),
            accuracy=float(logs.get("accuracy", float("nan"))),
        )

    def on_epoch(self, row: dict) -> None:
        self.write("epoch", row={key: _plain(value) for key, value in row.items()})


def _plain(value):
    """A history value as JSON can hold it (numpy scalars become floats)."""
    return value if isinstance(value, (str, int, type(None))) else float(value)


def hold_lock(folder: Path, wait_s: float = 5.0):
    """The open lock file, locked for this process's lifetime (the OS releases it on death).
    Waits up to `wait_s` for a reader's brief probe (`is_locked`) to let go."""
    import fcntl

    handle = (folder / LOCK_FILE).open("a")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise SystemExit(f"another worker holds {folder / LOCK_FILE}") from None
            time.sleep(0.05)


def is_locked(folder: Path) -> bool:
    """Whether a worker holds `folder`'s lock, i.e. is alive (from any process)."""
    import fcntl

    try:
        with (folder / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def watch_for_stop(folder: Path, stop: threading.Event) -> None:
    """Set `stop` once the stop file appears or SIGTERM arrives."""
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def poll() -> None:
        while not stop.wait(STOP_POLL_S):
            if (folder / STOP_FILE).exists():
                stop.set()

    threading.Thread(target=poll, name="brat-stop-watch", daemon=True).start()


def run(folder: Path) -> int:
    lock = hold_lock(folder)
    events = EventLog(folder / EVENTS_FILE)
    events.write("start", pid=os.getpid())
    stop = threading.Event()
    watch_for_stop(folder, stop)
    try:
        from brat.data.manifest import read_manifest
        from brat.inference.serving import limit_blas_threads
        from brat.training.config import TrainConfig
        from brat.training.train import train

        limit_blas_threads()
        request = json.loads((folder / REQUEST_FILE).read_text(encoding="utf-8"))
        result = train(
            request["data_root"],
            read_manifest(folder / MANIFEST_FILE),
            request["out"],
            TrainConfig.from_dict(request["config"]),
            events=events,
            stop=stop,
            progress=False,
        )
        if result.out is not None and request.get("site"):
            from brat.training.adapt import site_profile_after

            events.on_status("Calibrating on the site's held-out scans")
            site = request["site"]
            site_profile_after(
                result.out,
                Path(request["data_root"]),
                read_manifest(folder / MANIFEST_FILE),
                site["name"],
                site["folders"],
                progress=False,
            )
        if result.out is None:
            events.write(
                "end",
                state="stopped",
                status="Stopped before the first epoch ended: no model was written",
            )
        else:
            events.write("end", state=result.status, status=f"Saved {result.out}")
        code = 0
    except Exception as error:  # Any failure ends the run with its message.
        traceback.print_exc()
        events.write(
            "end",
            state="failed",
            status="Resume it to go on from the last checkpoint",
            error=f"{type(error).__name__}: {error}",
        )
        code = 1
    lock.close()
    return code


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
