"""Training runs in a process of their own: live events, stop, a killed worker, resume, and a
reader that finds the run from disk (a reload, or a restarted app)."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import replace

import pytest

from brat.errors import BratError
from brat.training import runs
from brat.training.runs import current_run, resume_run, start_run, training_rows
from tests.training.test_train import CONFIG


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAT_HOME", str(tmp_path))
    monkeypatch.setattr(runs, "_runs", {})
    return tmp_path


def wait_for(condition, timeout: float = 300.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_run_trains_in_another_process_and_a_new_reader_finds_it(home, toy_dataset) -> None:
    rows, _ = training_rows(toy_dataset, reference=toy_dataset)
    run = start_run(toy_dataset, rows, replace(CONFIG, epochs=2), name="apart")
    wait_for(lambda: run.snapshot().batch_log, what="the first batch")
    assert run.pid is not None and run.pid != os.getpid()
    assert run.running

    runs._runs.clear()  # as a restarted app: nothing in memory, the run is found on disk
    found = current_run()
    assert found is not run and found.name == "apart" and found.running
    found.join(timeout=600)
    snapshot = found.snapshot()
    assert snapshot.state == "completed" and snapshot.error is None, snapshot
    assert [row["epoch"] for row in snapshot.epoch_log] == [1, 2]
    assert snapshot.out == home / "runs" / "apart"
    assert json.loads((snapshot.out / "brat.json").read_text())["epochs_run"] == 2
    with pytest.raises(BratError, match="nothing to resume"):
        resume_run("apart")
    assert run.snapshot().state == "completed"  # every reader sees the same end


def test_stop_ends_the_run_after_a_batch_and_keeps_its_best_epoch(home, toy_dataset) -> None:
    rows, _ = training_rows(toy_dataset, reference=toy_dataset)
    run = start_run(toy_dataset, rows, replace(CONFIG, epochs=500), name="stopped")
    wait_for(lambda: run.snapshot().epoch_log, what="the first epoch")
    run.stop()
    assert run.snapshot().status == "Stopping after the current batch"
    run.join(timeout=300)
    snapshot = run.snapshot()
    assert snapshot.state == "stopped" and snapshot.out is not None, snapshot
    assert (snapshot.out / "brat.json").is_file()


def test_a_killed_worker_fails_the_run_and_resume_goes_on_from_its_checkpoint(
    home, toy_dataset
) -> None:
    rows, _ = training_rows(toy_dataset, reference=toy_dataset)
    run = start_run(toy_dataset, rows, replace(CONFIG, epochs=6), name="killed")
    wait_for(lambda: len(run.snapshot().epoch_log) >= 2, what="two epochs")
    os.kill(run.pid, signal.SIGKILL)
    wait_for(lambda: not run.running, timeout=30, what="the run to end")
    snapshot = run.snapshot()
    assert snapshot.state == "failed", snapshot
    assert "killed by signal 9" in snapshot.status and "Resume" in snapshot.status
    done = len(snapshot.epoch_log)

    again = resume_run("killed")
    with pytest.raises(BratError, match="still training"):
        resume_run("killed")
    again.join(timeout=600)
    snapshot = again.snapshot()
    assert snapshot.state == "completed", snapshot
    epochs = [row["epoch"] for row in snapshot.epoch_log]
    assert epochs == list(range(1, 7)), epochs  # the charts go on; no epoch trained twice
    assert epochs[done] == done + 1


def test_a_failing_run_reports_its_error(home, toy_dataset) -> None:
    rows, _ = training_rows(toy_dataset, reference=toy_dataset)
    run = start_run(home / "no-such-folder", rows, CONFIG, name="broken")
    run.join(timeout=120)
    snapshot = run.snapshot()
    assert snapshot.state == "failed" and snapshot.error, snapshot
    assert "Resume" in snapshot.status


def test_a_resumed_runs_time_left_counts_its_pace_since_the_restart(tmp_path) -> None:
    """Epoch 1 of 2 took 10 s, the run lay dead for 1,000 s, then 4 more batches in 4 s: about
    5 s are left, not the ~340 s the pace since the first start would give."""
    from brat.training.worker import hold_lock

    folder = tmp_path / "resumed"
    folder.mkdir()
    started = time.time() - 1016.0  # the last batch below is now
    request = {"out": str(tmp_path / "out"), "config": {"epochs": 2}, "started": started}
    (folder / runs.REQUEST_FILE).write_text(json.dumps(request))
    events = [{"event": "start", "time": started, "pid": 1}]
    events += [
        {"event": "batch", "time": started + b, "epoch": 1, "batch": b, "batches": 10}
        for b in range(1, 11)
    ]
    events.append({"event": "start", "time": started + 1010.0, "pid": 2})
    events += [
        {"event": "batch", "time": started + 1011.0 + b, "epoch": 2, "batch": b, "batches": 10}
        for b in range(1, 6)
    ]
    lines = [json.dumps({"loss": 1.0, "accuracy": 0.5, **e}) for e in events]
    (folder / runs.EVENTS_FILE).write_text("\n".join(lines) + "\n")
    lock = hold_lock(folder)  # the worker's lock: the run reads as running
    try:
        snapshot = runs.TrainingRun.open(folder).snapshot()
    finally:
        lock.close()
    assert snapshot.running and snapshot.fraction == 0.75
    assert (snapshot.resumed_at, snapshot.resumed_fraction) == (1012.0, 0.55)
    # 4 batches (0.2 of the run) in the ~4 s since the first batch after the restart; 0.25 left.
    assert snapshot.eta == pytest.approx(5.0, abs=1.0)
