"""How an evaluation's errors cluster by patient group."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from brat.evaluation.evaluate import Evaluation, error_groups, error_groups_text, evaluation_of
from brat.labels import CLASSES


def test_error_groups_count_each_patients_errors_most_first() -> None:
    groups = ["p1", "p1", "p1", "p2", "p2", "p3", None]
    truth = ["glioma_tumor"] * 3 + ["meningioma_tumor"] * 2 + ["no_tumor", "glioma_tumor"]
    predicted = [
        "glioma_tumor",
        "meningioma_tumor",
        "meningioma_tumor",
        "pituitary_tumor",
        "glioma_tumor",
        "no_tumor",
        "pituitary_tumor",  # wrong, but without a group: not counted
    ]
    assert error_groups(groups, truth, predicted) == [
        {
            "group": "p1",
            "label": "glioma_tumor",
            "n": 3,
            "wrong": 2,
            "predicted": {"meningioma_tumor": 2},
        },
        {
            "group": "p2",
            "label": "meningioma_tumor",
            "n": 2,
            "wrong": 2,
            "predicted": {"pituitary_tumor": 1, "glioma_tumor": 1},
        },
    ]


def test_the_evaluation_names_each_misclassified_files_group() -> None:
    classifier = SimpleNamespace(classes=CLASSES, temperature=1.0, path="model")
    labels = ["glioma_tumor", "glioma_tumor", "meningioma_tumor", "no_tumor"]
    paths = ["g/a.png", "g/b.png", "m/c.png", "n/d.png"]
    logits = np.eye(4)[[1, 0, 1, 2]] * 5.0  # g/a.png is called meningioma
    groups = {"g/a.png": "p1", "g/b.png": "p1", "m/c.png": "p2", "n/d.png": "c7"}
    result = evaluation_of(classifier, labels, paths, logits, "test", groups)
    assert result.misclassified[0]["path"] == "g/a.png"
    assert result.misclassified[0]["group"] == "p1"
    assert result.groups_n == 3
    assert [row["group"] for row in result.error_groups] == ["p1"]
    assert result.predicted == ["meningioma_tumor", "glioma_tumor", "meningioma_tumor", "no_tumor"]
    text = error_groups_text(result.error_groups, result.groups_n)
    assert text.startswith("1 error in 1 of the 3 groups")
    assert "p1 (glioma_tumor): 1 of 2 (meningioma_tumor 1)" in text

    without = evaluation_of(classifier, labels, paths, logits, "test")
    assert "group" not in without.misclassified[0] and without.error_groups == []
    assert error_groups_text(without.error_groups, without.groups_n) == ""
    right = evaluation_of(classifier, labels, paths, np.eye(4)[[0, 0, 1, 2]] * 5.0, "test", groups)
    assert (
        error_groups_text(right.error_groups, right.groups_n) == "No errors in any of the 3 groups."
    )


def test_an_evaluation_reads_back_from_its_json() -> None:
    classifier = SimpleNamespace(classes=CLASSES, temperature=1.5, path="model")
    labels = ["glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"]
    logits = np.eye(4)[[1, 1, 2, 3]] * 3.0
    result = evaluation_of(classifier, labels, ["a", "b", "c", "d"], logits, "val", {"a": "p"})
    data = result.to_json()
    assert list(data)[:5] == ["disclaimer", "model", "split", "temperature", "n"]
    assert data["accuracy"] == 0.75 and data["ece_uncalibrated"] > 0
    assert Evaluation.from_json(data).to_json() == data


def test_metrics_by_source_on_known_predictions() -> None:
    from brat.evaluation.evaluate import metrics_by

    classifier = SimpleNamespace(classes=CLASSES)
    labels = ["glioma_tumor", "no_tumor", "no_tumor", "no_tumor"]
    probabilities = np.eye(4)[[0, 2, 0, 3]] * 0.9 + 0.025  # the new source's no_tumor misread
    by_source = metrics_by(["old", "old", "new", "new"], labels, probabilities, classifier)
    assert list(by_source) == ["new", "old"]
    assert by_source["old"].accuracy == 1.0 and by_source["new"].accuracy == 0.0
    assert by_source["new"].per_class["no_tumor"]["recall"] == 0.0


def test_a_foreign_manifest_must_hold_images_the_model_never_trained_on() -> None:
    from brat.data.manifest import ManifestRow
    from brat.errors import DatasetError
    from brat.evaluation.evaluate import evaluation_items

    own = [
        ManifestRow(path="glioma_tumor/a.png", label="glioma_tumor", split="train", group="1"),
        ManifestRow(path="no_tumor/b.png", label="no_tumor", split="test", group="2"),
    ]
    classifier = SimpleNamespace(
        classes=CLASSES,
        manifest=own,
        meta=SimpleNamespace(data="alpha", config=SimpleNamespace(plane=None)),
        path="model",
    )
    new = ManifestRow(path="beta/x.png", label="no_tumor", split="test", group="3", folder="beta")
    assert evaluation_items(".", classifier, "test", [new]) == [("beta/x.png", "no_tumor")]
    trained = ManifestRow(
        path="alpha/glioma_tumor/a.png",
        label="glioma_tumor",
        split="test",
        group="1",
        folder="alpha",
    )
    with pytest.raises(DatasetError, match="trained or was selected on 1 of these images"):
        evaluation_items(".", classifier, "test", [new, trained])
