"""The benchmark command runs end to end and reports every figure (speed targets live in its
output, not in assertions on timings)."""

from __future__ import annotations

import json

from brat.cli import main
from brat.labels import SHOWN_METHOD


def test_bench_quick_reports_every_figure(tmp_path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    for key in (
        "cold_start_s",
        "batch_images_per_s",
        "predict_scans_per_s",
        "training_images_per_s",
        "speedup_p50",
        "page_without_model_paint_s",
    ):
        assert report[key] > 0, key
    assert report["runtime"] == "onnxruntime"
    assert report["analyze_warm_tensorflow"]["n"] == 24
    assert report["analyze_warm"]["n"] == 24 and report["analyze_warm"]["p50_ms"] > 0
    assert report["analyze_warm_shown"]["n"] == 8 and report["shown_method"] == SHOWN_METHOD
    assert report["peer_predict_plus_tf_keras_vis"]["n"] == 4
    assert report["peak_rss_mb_serving"] <= report["peak_rss_mb_with_peer_and_training"]
    assert "generated" in report["images"]
    load = report["training_under_load"]
    assert load["sessions"] == 8 and load["idle_batches_per_s"] > 0
    assert load["share_of_idle"] is not None and load["share_of_idle"] >= 0
