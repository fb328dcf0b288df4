"""Does a training run keep its pace while the app analyses? The probe run `brat bench` and the
load test (`benchmarks/load_test.py`) start the way the Train page does, and its pace."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

# Generated slices the probe run trains on: about ten batches an epoch.
PROBE_IMAGES = 240
START_TIMEOUT_S = 300


@contextlib.contextmanager
def private_home():
    """A temporary BRAT_HOME and BRAT_CACHE_DIR, so the run and its caches leave no trace."""
    names = ("BRAT_HOME", "BRAT_CACHE_DIR")
    previous = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="brat-load-") as folder:
        for name in names:
            os.environ[name] = str(Path(folder) / name.lower())
        try:
            yield Path(folder)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def start_probe_run(folder: Path):
    """A small from-scratch run (64 px, PROBE_IMAGES generated slices) in its own process
    (`brat.training.runs.start_run`), returned once its first epoch is done (tracing, validation
    and the first checkpoint behind it: steady training). It runs until stopped: epochs and
    patience are far beyond any measurement."""
    import cv2

    from brat.data.split import split_dataset
    from brat.data.synthetic import generated_slice
    from brat.labels import CLASSES
    from brat.training.config import TrainConfig
    from brat.training.model import ModelConfig
    from brat.training.runs import start_run

    data = folder / "train-data"
    for i in range(PROBE_IMAGES):
        (data / CLASSES[i % 4]).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(data / CLASSES[i % 4] / f"{i:03d}.png"), generated_slice(1000 + i, 64))
    rows = split_dataset(data, progress=False).rows
    config = TrainConfig(
        model=ModelConfig(image_size=64, alpha=0.35, weights="none", mask_weight=0.0),
        epochs=10_000,
        schedule="plateau",
        batch_size=16,
        augment=False,
        patience=10_000,
        lr_patience=10_000,
    )
    run = start_run(data, rows, config, name=f"load-probe-{os.getpid()}")
    deadline = time.monotonic() + START_TIMEOUT_S
    while run.running and not run.snapshot().epoch_log:
        if time.monotonic() > deadline:
            run.stop()
            raise RuntimeError(f"the probe run did not finish an epoch in {START_TIMEOUT_S} s")
        time.sleep(0.1)
    if not run.running:
        raise RuntimeError(f"the probe run ended before the measurement: {run.snapshot().error}")
    return run


def training_steps(run) -> int:
    log = run.snapshot().batch_log
    return log[-1]["step"] if log else 0


def training_rate(run, seconds: float) -> float:
    """The run's batches per second over the next `seconds`."""
    before, started = training_steps(run), time.perf_counter()
    time.sleep(seconds)
    return (training_steps(run) - before) / (time.perf_counter() - started)


def pace_under_load(analyse, sessions: int, seconds: float) -> dict:
    """The probe run's batches per second alone, then while `sessions` threads call `analyse()`
    in a loop, each over `seconds`; the run is stopped afterwards."""
    import threading

    with private_home() as folder:
        run = start_probe_run(folder)
        try:
            idle = training_rate(run, seconds)
            done = threading.Event()

            def session() -> None:
                while not done.is_set():
                    analyse()

            threads = [threading.Thread(target=session) for _ in range(sessions)]
            for thread in threads:
                thread.start()
            loaded = training_rate(run, seconds)
            done.set()
            for thread in threads:
                thread.join()
        finally:
            run.stop()
            run.join(timeout=120)
    return {
        "sessions": sessions,
        "idle_batches_per_s": round(idle, 2),
        "loaded_batches_per_s": round(loaded, 2),
        "share_of_idle": round(loaded / idle, 2) if idle else None,
    }
