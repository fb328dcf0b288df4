"""Batch scoring (`brat predict` over folders): the same answers as `brat.analyze`, streamed as
JSON Lines and resumable."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import brat
from brat.cli import main
from brat.inference.analysis import explainer_for
from brat.inference.batch import scan_files, score_scans
from tests.synthetic import make_slice


@pytest.fixture
def scans(tmp_path):
    folder = tmp_path / "scans"
    (folder / "nested").mkdir(parents=True)
    for i in range(5):
        cv2.imwrite(str(folder / f"scan{i}.png"), make_slice(i, size=140 + 10 * i))
    cv2.imwrite(
        str(folder / "nested" / "noise.png"),
        np.random.default_rng(1).integers(0, 256, (90, 90), np.uint8),
    )
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (folder / "notes.txt").write_text("not a scan")
    return folder


def test_batch_scores_equal_single_analysis(scans) -> None:
    files = scan_files([scans])
    assert [f.name for f in files] == [
        "broken.jpg",
        "noise.png",
        "scan0.png",
        "scan1.png",
        "scan2.png",
        "scan3.png",
        "scan4.png",
    ]
    results = list(score_scans(files, explainer_for(), batch_size=3))
    assert [scan.path for scan in results] == files
    assert results[0].prediction is None and results[0].error  # the damaged file says why
    assert results[0].error_kind and results[1].input_sha256
    for path, prediction, *_ in results[1:]:
        alone = brat.analyze(path)
        assert prediction.label == alone.label and prediction.verdict == alone.verdict
        assert prediction.reasons == alone.reasons
        assert prediction.prediction_set == alone.prediction_set
        for name, p in alone.probabilities.items():
            assert prediction.probabilities[name] == pytest.approx(p, abs=1e-5)
        assert prediction.ood_score == pytest.approx(alone.ood_score, rel=1e-4)


def test_predict_streams_json_lines_and_resumes(scans, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(scans), "--jsonl", str(out), "--quiet"]) == 1  # one damaged file
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 7 and "error" in lines[0]
    assert all(r["disclaimer"].startswith("Research use only") for r in lines)

    # A crash mid-line: the cut line is dropped and its scan scored again; the rest is skipped.
    text = out.read_text()
    out.write_text(text[: text.rfind("\n", 0, len(text) - 1) + 1] + '{"path": "cut')
    assert main(["predict", str(scans), "--jsonl", str(out), "--quiet"]) == 0
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in again] == [r["path"] for r in lines]
    assert again[-1]["verdict"] == lines[-1]["verdict"]  # scored alone now, in a batch before
    assert again[-1]["probabilities"] == pytest.approx(lines[-1]["probabilities"], abs=1e-5)


def test_a_local_dask_cluster_scores_like_one_machine_and_resumes(scans, tmp_path) -> None:
    """`--cluster local:2`: two worker processes, chunks of 3 files; every record equals the
    one-machine record (order aside), and a rerun skips what is done."""
    from brat.inference import distributed
    from brat.inference.distributed import score_on_cluster
    from brat.settings import active_model_path

    alone = tmp_path / "alone.jsonl"
    assert main(["predict", str(scans), "--jsonl", str(alone), "--quiet", "--no-audit"]) == 1
    expected = {r["path"]: r for r in map(json.loads, alone.read_text().splitlines())}

    files = scan_files([scans])
    model = active_model_path().resolve()
    records = list(score_on_cluster(files, model, "local:2", error_rate=0.05, chunk=3))
    assert sorted(r["path"] for r in records) == sorted(expected)
    for record in records:
        want = expected[record["path"]]
        assert record.keys() == want.keys()
        assert record.get("verdict") == want.get("verdict") and record.get(
            "error_kind"
        ) == want.get("error_kind")
        if "probabilities" in want:
            assert record["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)

    out = tmp_path / "cluster.jsonl"
    out.write_text("\n".join(json.dumps(expected[str(f)]) for f in files[:4]) + "\n")
    command = ["predict", str(scans), "--jsonl", str(out), "--quiet", "--cluster", "local:2"]
    assert main(command) == 0  # the damaged file was among the 4 done: no error left to score
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["path"] for r in lines) == sorted(expected)
    with pytest.raises(Exception, match="local:N"):
        list(distributed.score_on_cluster(files, model, "local:zero", error_rate=0.05))


def test_a_dataset_folders_tumour_masks_are_not_scans() -> None:
    from brat.settings import SAMPLES

    files = scan_files([SAMPLES])
    assert len(files) == 16 and not any("masks" in f.parts for f in files)
    mask = next((SAMPLES / "masks").rglob("*.png"))
    assert scan_files([mask]) == [mask]  # a mask given by name is scored as asked
