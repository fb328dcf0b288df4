"""Sites with the real shipped model: validated on real held-out scans, calibrated there, and the
site named in every answer, report and audit line (skipped without ../shared)."""

from __future__ import annotations

import json
import shutil

import pytest
from pypdf import PdfReader

from brat.cli import main
from brat.data.manifest import read_manifest
from brat.settings import SHIPPED_MODEL

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def site_and_model(tmp_path_factory, sartaj):
    """40 scans of sartaj-training the shipped model held out as its test split (10 per class,
    as there are), as a site folder; a copy of the shipped model to write site profiles into."""
    root = tmp_path_factory.mktemp("site")
    rows = [
        r
        for r in read_manifest(SHIPPED_MODEL / "manifest.csv")
        if r.split == "test" and r.folder == "sartaj-training"
    ]
    taken = {}
    for row in sorted(rows, key=lambda r: r.path):
        if taken.get(row.label, 0) < 10:
            taken[row.label] = taken.get(row.label, 0) + 1
            destination = root / row.label / row.path.rsplit("/", 1)[-1]
            destination.parent.mkdir(exist_ok=True)
            shutil.copy(sartaj / row.path.removeprefix("sartaj-training/"), destination)
    (root / "no_tumor" / "broken.jpg").write_bytes(b"not a jpeg")
    model = tmp_path_factory.mktemp("model") / "shipped"
    shutil.copytree(SHIPPED_MODEL, model)
    return root, model


def test_validate_calibrate_and_answer_as_the_site(site_and_model, tmp_path, capsys) -> None:
    root, model = site_and_model
    report_file, pdf = tmp_path / "validation.json", tmp_path / "validation.pdf"
    code = main(
        [
            "validate",
            str(root),
            "--model",
            str(model),
            "--name",
            "clinic-a",
            "--quiet",
            "--json",
            str(report_file),
            "--pdf",
            str(pdf),
        ]
    )
    assert code == 0
    report = json.loads(report_file.read_text())
    assert report["unreadable"] == 1 and report["scans"] == 40
    assert report["metrics"]["n"] + len(report["not_mri"]) == 40
    assert report["metrics"]["accuracy"] > 0.7
    # 40 scans cannot show a 85% lower bound at 90% accuracy: never "fit" here.
    assert report["verdict"] in ("too few scans to tell", "not fit")
    assert "site clinic-a:" in capsys.readouterr().out
    (page,) = PdfReader(pdf).pages
    text = " ".join(page.extract_text().split())
    assert "site validation: clinic-a" in text and f"Verdict: {report['verdict']}" in text
    assert "Research use only" in text

    assert (
        main(["calibrate-site", str(root), "--site", "clinic-a", "--model", str(model), "--quiet"])
        == 0
    )
    profile = json.loads((model / "sites" / "clinic-a" / "profile.json").read_text())
    assert profile["n"] == 40 and profile["class_counts"]["no_tumor"] == 10
    from brat.evaluation.model_card import render_card

    assert "site profile **clinic-a**: calibrated on 40 of its labelled scans" in render_card(model)

    out = tmp_path / "predictions.json"
    scans = sorted((root / "meningioma_tumor").iterdir())[:2]
    assert (
        main(
            [
                "predict",
                *map(str, scans),
                "--model",
                str(model),
                "--site",
                "clinic-a",
                "--json",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    records = json.loads(out.read_text())
    assert [r["site"] for r in records] == ["clinic-a", "clinic-a"]
    from brat import audit

    assert [line.get("site") for line in audit.read()][-2:] == ["clinic-a", "clinic-a"]
    assert main(["predict", str(scans[0]), "--model", str(model), "--site", "nowhere"]) == 1
    assert "no profile for site 'nowhere'" in capsys.readouterr().err


def test_adaptation_counts_what_the_model_calls_not_a_brain_mri(site_and_model, tmp_path):
    import cv2
    import numpy as np

    from brat.evaluation.site import read_site
    from brat.training.adapt import flagged_not_mri

    root, model = site_and_model
    site_folder = tmp_path / "site"
    shutil.copytree(root, site_folder)
    photo = np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8)
    cv2.imwrite(str(site_folder / "no_tumor" / "photo.png"), photo)
    site = read_site(site_folder, "clinic-b", progress=False)
    rejected = flagged_not_mri(site, model, progress=False)
    assert "no_tumor/photo.png" in rejected and len(rejected) <= 4
