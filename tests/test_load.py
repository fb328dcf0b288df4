"""The load test's short mode: 1, 4 and 8 concurrent sessions on the shipped model while a training
run goes in its own process, every answer equal to the single-user one, and still after that
process is killed (timings and the run's pace are reported, not asserted)."""

from __future__ import annotations

import json

import pytest

from benchmarks.load_test import LEVELS, measure


@pytest.mark.heavy
def test_concurrent_sessions_get_single_user_answers_while_training() -> None:
    report = measure(quick=True)
    json.dumps(report)  # What the script prints.
    assert [level["sessions"] for level in report["levels"]] == list(LEVELS) == [1, 4, 8]
    for level in report["levels"]:
        assert level["calls"] == 3 * level["sessions"], level
        assert level["errors"] == 0, level["error_examples"]
        assert level["mismatches"] == 0, level["mismatched_scans"]
        assert 0 < level["p50_ms"] <= level["p95_ms"], level
        assert level["throughput_per_s"] > 0
        assert level["training_running"], level
    assert report["training_running"] and report["training"]["running_during_every_level"]
    assert report["training"]["epochs_done"] >= 1 and report["training"]["error"] is None
    assert report["training"]["idle_batches_per_s"] > 0
    assert all(level["training_share_of_idle"] is not None for level in report["levels"])
    assert report["training"]["state_after_kill"] == "failed"
    after = report["serving_after_training_killed"]
    assert after["calls"] == 3 and after["errors"] == after["mismatches"] == 0, after
    assert report["quick"] and report["image_size"] == 160
