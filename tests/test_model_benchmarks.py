"""The benchmarks that compare models on the second source: an average of models, and accuracy per
hand-labelled subgroup, on the shipped model and real held-out images."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from benchmarks.ensemble import measure as ensemble
from benchmarks.subgroups import measure as subgroups
from brat.data.folders import dataset_root
from brat.data.prepared import prepare_images
from brat.inference.classifier import load_classifier
from brat.settings import SHIPPED_MODEL

pytestmark = pytest.mark.heavy


def test_each_image_is_counted_once_by_the_model_that_tested_it(brain_mri, sartaj, tmp_path):
    shipped = load_classifier(SHIPPED_MODEL)
    root = dataset_root([brain_mri, sartaj])
    rows = shipped.manifest_for(root)
    tested = [r for r in rows if r.split == "test" and r.folder == sartaj.name][::40]
    trained = next(r for r in rows if r.split == "train")
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "kind"])
        writer.writerows([r.path, "ab"[i % 2]] for i, r in enumerate(tested))
        writer.writerow([trained.path, "a"])

    # The same model twice: the second finds every image already classified.
    result = subgroups([brain_mri, sartaj], labels, "kind", [SHIPPED_MODEL, SHIPPED_MODEL])

    assert result["untested"] == 1
    images = prepare_images(root, [r.path for r in tested], shipped.image_size, progress=False)
    predicted = shipped.probabilities(images).argmax(axis=1)
    hits = [shipped.classes[p] == r.label for p, r in zip(predicted, tested, strict=True)]
    for value, offset in (("a", 0), ("b", 1)):
        measured = result["accuracy"][value]
        assert (measured["n"], measured["right"]) == (len(hits[offset::2]), sum(hits[offset::2]))
        assert sum(c["n"] for c in measured["by_class"].values()) == measured["n"]


def test_an_average_of_one_model_with_itself_measures_like_the_model(brain_mri, sartaj):
    source = "sartaj-training"
    result = ensemble([brain_mri, sartaj], [SHIPPED_MODEL, SHIPPED_MODEL], "test", source)
    (alone,) = result["models"].values()
    assert result["average"] == alone
    # What `brat evaluate --by-source` recorded for the same images.
    recorded = json.loads((SHIPPED_MODEL / "evaluation-test.json").read_text())["by_source"]
    assert alone["n"] == recorded[source]["n"]
    assert np.isclose(alone["accuracy"], recorded[source]["accuracy"], atol=0.002)
