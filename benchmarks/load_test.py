"""Do concurrent sessions get single-user answers, and how fast, while a run trains, and does the
run keep its pace? Prints JSON.

    python -m benchmarks.load_test [--model DIR] [--data DIR] [--quick] [--seconds S]
        [--min-seconds S] [--http]

The Streamlit server runs every browser session in a thread of one process and shares one cached
explainer (`app_pages.ui.explainer`); this does the same in-process. It loads the explainer once,
analyses every scan alone for the reference answers, starts a small training run in its own
process as the Train page does (`brat.evaluation.training_load`, in a temporary BRAT_HOME),
measures its batches per second with no session, and then, for 1, 4 and 8 concurrent sessions,
runs one thread per session that calls `brat.analyze` on the scans in turn. Every answer (label,
probabilities to 1e-5, heatmap) must equal the reference; any exception counts as an error.
Reports per level the calls, errors, mismatches, p50/p95 latency and throughput, whether the run
was training throughout and its batches per second against the idle rate. At the end it kills the
training process (SIGKILL) and checks that one more session still gets single-user answers.
Scans: 8 generated slices, or up to 8 images of `--data`.

--quick makes 3 calls per session (CI's short mode); otherwise at least 20, going on until the
level has run `--min-seconds` (default 20, so the run's pace is measured over that long), and
each level stops after `--seconds` (default 120) at the latest. --http also starts
`streamlit run app.py` on 127.0.0.1 and fetches its health check and page with as many concurrent
clients (skipped, with the reason, when the server does not answer within 60 s).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 4, 8)
SCANS = 8
PROBABILITY_DECIMALS = 5
# Seconds over which the run's idle pace is measured, at least.
IDLE_SECONDS_QUICK = 8.0


def generated_scans(count: int = SCANS) -> tuple[list[bytes], str]:
    """PNG bytes of `count` different generated 256-px slices."""
    import cv2

    from brat.data.synthetic import generated_slice

    scans = [cv2.imencode(".png", generated_slice(i, 256))[1].tobytes() for i in range(count)]
    return scans, f"{count} generated 256-px slices"


def folder_scans(folder: Path, count: int = SCANS) -> tuple[list[bytes], str]:
    """The bytes of up to `count` images of `folder` (searched recursively, evenly spread)."""
    from brat.data.dataset import IMAGE_SUFFIXES

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"no images in {folder}")
    paths = paths[:: max(1, len(paths) // count)][:count]
    return [p.read_bytes() for p in paths], f"{len(paths)} images of {folder}"


def answer(analysis) -> tuple[str, tuple[float, ...], np.ndarray]:
    """What a session is shown: the label, the rounded probabilities and the heatmap."""
    probabilities = tuple(round(p, PROBABILITY_DECIMALS) for p in analysis.probabilities.values())
    return analysis.label, probabilities, analysis.heatmap


def same_answer(got, expected) -> bool:
    return got[0] == expected[0] and got[1] == expected[1] and np.array_equal(got[2], expected[2])


def run_concurrently(threads: list[threading.Thread]) -> float:
    """Start every thread, wait for all of them; returns the wall-clock seconds."""
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def run_level(
    explainer, scans, reference, sessions: int, calls: int, seconds: float, min_seconds: float = 0.0
) -> dict:
    """`sessions` threads, each analysing the scans in turn (thread i starts at scan i): at least
    `calls` calls and `min_seconds` each, at most `seconds`."""
    import brat

    latencies: list[list[float]] = [[] for _ in range(sessions)]
    errors: list[str] = []
    mismatches: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(sessions)

    def session(index: int) -> None:
        barrier.wait()
        start = time.monotonic()
        call = 0
        while call < calls or time.monotonic() - start < min_seconds:
            if call and time.monotonic() - start > seconds:
                break
            which = (index + call) % len(scans)
            call += 1
            started = time.perf_counter()
            try:
                got = answer(brat.analyze(scans[which], model=explainer))
            except Exception as error:  # Any failure is what the load test looks for.
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
                continue
            finally:
                latencies[index].append(time.perf_counter() - started)
            if not same_answer(got, reference[which]):
                with lock:
                    mismatches.append(which)

    wall = run_concurrently(
        [
            threading.Thread(target=session, args=(i,), name=f"load-session-{i}")
            for i in range(sessions)
        ]
    )
    values = np.array([s for row in latencies for s in row]) * 1000.0
    return {
        "sessions": sessions,
        "calls": len(values),
        "errors": len(errors),
        "mismatches": len(mismatches),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "throughput_per_s": round(len(values) / wall, 2),
        "wall_s": round(wall, 2),
        "error_examples": sorted(set(errors))[:3],
        "mismatched_scans": sorted(set(mismatches)),
    }


def measure(
    model: Path | None = None,
    data: Path | None = None,
    quick: bool = False,
    seconds: float | None = None,
    http: bool = False,
    levels: tuple[int, ...] = LEVELS,
    min_seconds: float | None = None,
) -> dict:
    """Run the load test; see the module's docstring. Returns the report printed as JSON."""
    import brat
    from brat.evaluation.training_load import (
        private_home,
        start_probe_run,
        training_rate,
        training_steps,
    )
    from brat.inference.analysis import explainer_for
    from brat.inference.serving import limit_blas_threads
    from brat.settings import SHIPPED_MODEL

    limit_blas_threads()  # As the app does where it starts.
    started = time.perf_counter()
    calls = 3 if quick else 20
    seconds = seconds or (60.0 if quick else 120.0)
    min_seconds = (0.0 if quick else 20.0) if min_seconds is None else min_seconds
    model = Path(model or SHIPPED_MODEL).resolve()
    scans, source = folder_scans(data) if data else generated_scans()

    explainer = explainer_for(model)  # Like the app's cached explainer, loaded and traced once.
    size = explainer.classifier.image_size
    explainer.predict(np.zeros((1, size, size), np.float32))
    reference = [answer(brat.analyze(scan, model=explainer)) for scan in scans]

    report = {
        "model": str(model),
        "image_size": size,
        "scans": source,
        "cpu_count": os.cpu_count(),
        "quick": quick,
        "calls_per_session": calls,
        "seconds_per_level_max": seconds,
        "seconds_per_level_min": min_seconds,
        "levels": [],
    }
    with private_home() as folder:
        run = start_probe_run(folder)
        running_throughout = True
        try:
            idle = training_rate(run, max(IDLE_SECONDS_QUICK, min_seconds))
            for sessions in levels:
                steps_before = training_steps(run)
                running_before = run.running
                level = run_level(
                    explainer, scans, reference, sessions, calls, seconds, min_seconds
                )
                level["training_running"] = running_before and run.running
                level["training_batches_during"] = training_steps(run) - steps_before
                rate = level["training_batches_during"] / level["wall_s"]
                level["training_batches_per_s"] = round(rate, 2)
                level["training_share_of_idle"] = round(rate / idle, 2) if idle else None
                running_throughout &= level["training_running"]
                report["levels"].append(level)
            if http:
                report["http"] = measure_http(levels, calls, seconds, folder)
            snapshot = run.snapshot()
            os.kill(run.pid, signal.SIGKILL)
            run.join(timeout=60)
            killed = run.snapshot().state
            after = run_level(explainer, scans, reference, 1, calls, seconds)
        finally:
            run.stop()
            run.join(timeout=300)
    report["training"] = {
        "idle_batches_per_s": round(idle, 2),
        "running_during_every_level": running_throughout,
        "epochs_done": len(snapshot.epoch_log),
        "batches_done": snapshot.batch_log[-1]["step"] if snapshot.batch_log else 0,
        "error": snapshot.error,
        "state_after_kill": killed,
    }
    report["serving_after_training_killed"] = {
        key: after[key] for key in ("calls", "errors", "mismatches", "p50_ms")
    }
    report["training_running"] = running_throughout
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def measure_http(levels, calls: int, seconds: float, folder: Path, start_timeout: float = 60.0):
    """`streamlit run app.py` on 127.0.0.1: its health check and page under concurrent clients.

    Only HTTP: a session's analyses go over Streamlit's websocket, which the in-process levels
    stand in for (tests/e2e/test_browser.py drives the real thing in a browser).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "streamlit", "run", "app.py"]
    command += ["--server.address", "127.0.0.1", "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "BRAT_HOME": str(folder / "http-home")}
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if _fetch(f"{url}/_stcore/health").strip() == b"ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                return {"skipped": f"the server did not answer within {start_timeout:.0f} s"}
            time.sleep(0.5)
        return {
            "url": url,
            "levels": [_http_level(url, sessions, calls, seconds) for sessions in levels],
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _http_level(url: str, sessions: int, calls: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(sessions)

    def client() -> None:
        barrier.wait()
        deadline = time.monotonic() + seconds
        for call in range(calls):
            if call and time.monotonic() > deadline:
                break
            for path in ("/_stcore/health", "/"):
                started = time.perf_counter()
                try:
                    _fetch(url + path)
                except OSError as error:
                    with lock:
                        errors.append(f"{path}: {error}")
                with lock:
                    latencies.append(time.perf_counter() - started)

    wall = run_concurrently([threading.Thread(target=client) for _ in range(sessions)])
    values = np.array(latencies) * 1000.0
    return {
        "sessions": sessions,
        "requests": len(values),
        "errors": len(errors),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "throughput_per_s": round(len(values) / wall, 2),
        "error_examples": sorted(set(errors))[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    parser.add_argument("--data", type=Path, help="take the scans from this folder's images")
    parser.add_argument("--quick", action="store_true", help="3 calls per session")
    parser.add_argument("--seconds", type=float, help="at most this long per level")
    parser.add_argument("--min-seconds", type=float, help="at least this long per level")
    parser.add_argument("--http", action="store_true", help="also load the real server")
    args = parser.parse_args()
    report = measure(
        args.model, args.data, args.quick, args.seconds, args.http, min_seconds=args.min_seconds
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
