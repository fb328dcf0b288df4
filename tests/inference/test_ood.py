"""The not-a-brain-MRI check: the statistics on known data, the shipped model on real pictures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brat.cli import main
from brat.inference.ood import OutOfDistribution, fit_ood
from brat.settings import SHIPPED_MODEL


def test_fit_accepts_the_training_distribution_and_rejects_far_points(tmp_path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (4, 16))
    labels = rng.integers(0, 4, 2000)
    train = centres[labels] + rng.normal(0, 1, (2000, 16))
    val = centres[rng.integers(0, 4, 500)] + rng.normal(0, 1, (500, 16))
    ood = fit_ood(train, labels, val, layer="any", quantile=0.99)
    assert np.mean(ood.scores(val) > ood.threshold) == pytest.approx(0.01, abs=0.002)
    far = centres[0] + rng.normal(0, 1, (100, 16)) + 8.0  # shifted off every class
    assert np.all(ood.scores(far) > ood.threshold)
    # In a whitened space the squared distance of a class member is about the dimension.
    assert np.median(ood.scores(val) ** 2) == pytest.approx(16, rel=0.25)

    ood.save(tmp_path / "ood.npz")
    again = OutOfDistribution.load(tmp_path / "ood.npz")
    assert again.layer == "any" and again.threshold == ood.threshold
    assert np.allclose(again.scores(far), ood.scores(far), rtol=1e-4)


@pytest.mark.heavy
def test_the_shipped_check_separates_brain_mri_from_other_pictures(brain_mri) -> None:
    from benchmarks.ood import measure

    report = measure(brain_mri, SHIPPED_MODEL, quick=True)
    assert (
        report["non_mri_pictures"] >= 40
    )  # generated ones at least, package pictures if installed
    assert report["auroc"] >= 0.99, report
    assert report["mri_rejected"] <= 0.02, report  # at most 1 of the ~60 quick-mode slices
    # The model trained on two sources accepts 3 of the 205 pictures (the Shepp-Logan head phantom
    # twice, as its predecessor did, and one grey rotated photograph); a broken check accepts
    # dozens. The regression from 2 to 3 is recorded in the model card's notes.
    assert report["non_mri_accepted"] <= 0.015, report["accepted_non_mri"]


def test_predict_reports_each_file_and_survives_a_bad_one(tmp_path, slice_image, capsys) -> None:
    import cv2

    good, bad, noise = tmp_path / "scan.png", tmp_path / "bad.jpg", tmp_path / "noise.png"
    cv2.imwrite(str(good), slice_image(3, size=200))
    bad.write_bytes(b"not an image")
    cv2.imwrite(str(noise), np.random.default_rng(1).integers(0, 256, (200, 200), np.uint8))
    out = tmp_path / "predictions.json"
    assert main(["predict", str(good), str(bad), str(noise), "--json", str(out)]) == 1
    results = json.loads(out.read_text())
    assert [r["path"] for r in results] == [str(good), str(bad), str(noise)]
    assert "error" in results[1] and "label" not in results[1]
    assert results[2]["in_distribution"] is False and results[2]["verdict"] == "not a brain MRI"
    assert results[2]["ood_score"] > results[0]["ood_score"]
    assert results[2]["reasons"] == ["not a brain MRI"]
    assert results[0]["label"] in results[0]["prediction_set"]  # the top class is always in it
    assert results[0]["error_rate"] == 0.05 and isinstance(results[0]["familiar"], bool)
    assert (results[0]["verdict"] == results[0]["label"]) == (not results[0]["reasons"])
    for result in (results[0], results[2]):
        assert abs(sum(result["probabilities"].values()) - 1.0) < 1e-4
        assert result["disclaimer"].startswith("Research use only")
