"""The view-plane classifier: fitting, the shipped one on real labelled slices, the CLI's CSV."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from brat.cli import main
from brat.data.decode import decode_image
from brat.data.manifest import read_manifest
from brat.data.preprocess import prepare_slice
from brat.inference.classifier import load_classifier
from brat.inference.planes import PlaneClassifier, fit_planes, with_predicted_planes
from brat.labels import CLASSES, PLANES
from brat.settings import SHIPPED_MODEL


def test_fit_separates_planes_and_survives_a_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 8))
    planes = [PLANES[i % 3] for i in range(150)]
    features = centres[[PLANES.index(p) for p in planes]] + rng.normal(0, 1, (150, 8))
    model = fit_planes(features, planes, layer="any")
    predicted = [p for p, _ in model.predict(features)]
    assert np.mean(np.array(predicted) == np.array(planes)) > 0.95
    assert np.allclose(model.probabilities(features).sum(axis=1), 1.0)
    model.save(tmp_path / "planes.npz")
    again = PlaneClassifier.load(tmp_path / "planes.npz")
    assert np.allclose(again.probabilities(features), model.probabilities(features), atol=1e-5)
    with pytest.raises(ValueError, match="every plane"):
        fit_planes(features[:10], ["axial"] * 10, layer="any")


def test_the_shape_half_reads_the_plane_from_the_slice_alone(tmp_path) -> None:
    """Slices whose plane shows in their outline (wide, tall, round) and features that say
    nothing: the shape half carries the prediction, is saved and read back, and a classifier
    saved before it existed reads the features alone."""
    rng = np.random.default_rng(1)
    planes = [PLANES[i % 3] for i in range(90)]
    images = np.zeros((90, 96, 96), np.uint8)
    for image, plane in zip(images, planes, strict=True):
        axes = {"axial": (40, 28), "coronal": (28, 40), "sagittal": (36, 36)}[plane]
        cv2.ellipse(image, (48, 48), axes, 0, 0, 360, int(rng.integers(120, 255)), -1)
    noise = rng.normal(0, 1, (90, 8))
    model = fit_planes(noise[:60], planes[:60], layer="any", images=images[:60])
    predicted = [p for p, _ in model.predict(noise[60:], images[60:])]
    assert predicted == planes[60:]
    model.save(tmp_path / "planes.npz")
    again = PlaneClassifier.load(tmp_path / "planes.npz")
    assert np.allclose(
        again.probabilities(noise, images), model.probabilities(noise, images), atol=1e-5
    )
    features_only = fit_planes(noise[:60], planes[:60], layer="any")
    features_only.save(tmp_path / "old.npz")
    assert PlaneClassifier.load(tmp_path / "old.npz").shape is None
    assert np.allclose(
        features_only.probabilities(noise, images), features_only.probabilities(noise)
    )


@pytest.mark.heavy
def test_the_shipped_plane_classifier_on_labelled_real_slices(brain_mri) -> None:
    classifier = load_classifier(SHIPPED_MODEL)
    rows = list(csv.DictReader((brain_mri / "metadata.csv").open()))
    picked = [r for plane in PLANES for r in [r for r in rows if r["plane"] == plane][:4]]
    images = np.stack(
        [
            prepare_slice(decode_image(brain_mri / r["path"]).pixels, classifier.image_size)[0]
            for r in picked
        ]
    )
    predicted = classifier.planes.predict(classifier.features(images), images)
    assert classifier.planes.shape is not None
    assert [p for p, _ in predicted] == [r["plane"] for r in picked]
    assert all(confidence > 0.5 for _, confidence in predicted)


def test_planes_writes_a_csv_for_a_flat_folder(tmp_path, slice_image) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), slice_image(i, size=128))
    (folder / "broken.png").write_bytes(b"no")
    out = tmp_path / "planes.csv"
    assert main(["planes", str(folder), "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == ["0.png", "1.png", "2.png", "broken.png"]
    assert all(r["plane"] in PLANES and 0.0 < float(r["confidence"]) <= 1.0 for r in rows[:3])
    assert rows[3]["plane"] == "" and rows[3]["error"]


def test_hand_labels_win_and_predicted_planes_reach_the_manifest(tmp_path, slice_image) -> None:
    data = tmp_path / "data"
    for i, label in enumerate(CLASSES * 3):
        (data / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(data / label / f"{i}.png"), slice_image(i, size=128))
    (data / "metadata.csv").write_text("path,plane\nglioma_tumor/0.png,top\n")
    planes_csv, manifest = tmp_path / "planes.csv", tmp_path / "manifest.csv"
    assert main(["planes", str(data), "--csv", str(planes_csv), "--quiet"]) == 0
    rows = {r["path"]: r for r in csv.DictReader(planes_csv.open())}
    assert len(rows) == 12
    assert rows["glioma_tumor/0.png"]["plane"] == "axial"
    assert rows["glioma_tumor/0.png"]["source"] == "label"
    assert rows["glioma_tumor/0.png"]["confidence"] == ""
    others = [r for p, r in rows.items() if p != "glioma_tumor/0.png"]
    assert all(r["source"] == "predicted" and r["plane"] in PLANES for r in others)

    scan = tmp_path / "scan.json"
    assert main(["scan", str(data), "--json", str(scan), "--planes", str(planes_csv)]) == 0
    report = json.loads(scan.read_text())
    assert report["plane_sources"] == {"label": 1, "predicted": 11}
    assert sum(report["planes"].values()) == 12 and report["planes"]["glioma_tumor/axial"] >= 1

    assert main(["split", str(data), "--out", str(manifest), "--planes", str(planes_csv)]) == 0
    written = {r.path: r for r in read_manifest(manifest)}
    assert {p: r.plane for p, r in written.items()} == {p: r["plane"] for p, r in rows.items()}
    assert {p: r.plane_source for p, r in written.items()} == {
        p: r["source"] for p, r in rows.items()
    }


def test_a_manifest_from_before_plane_sources_reads_its_planes_as_hand_labels(tmp_path) -> None:
    old = tmp_path / "manifest.csv"
    old.write_text(
        "path,label,split,group,plane,mask,original_split\n"
        "a.png,glioma_tumor,train,g1,coronal,,\nb.png,no_tumor,val,g2,,,\n"
    )
    a, b = read_manifest(old)
    assert (a.plane, a.plane_source) == ("coronal", "label")
    assert (b.plane, b.plane_source) == ("", "")
    predicted = with_predicted_planes([a, b], {"a.png": "axial", "b.png": "sagittal"})
    assert [(r.plane, r.plane_source) for r in predicted] == [
        ("coronal", "label"),
        ("sagittal", "predicted"),
    ]
