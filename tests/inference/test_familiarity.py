"""The unfamiliar-scan score: its statistics on known features, the shipped model on real slices."""

from __future__ import annotations

import numpy as np
import pytest

from brat.inference.familiarity import FLAG_SHARE, Familiarity, fit_familiarity


def test_fit_flags_its_share_of_validation_and_far_points(tmp_path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (4, 32))
    train = centres[rng.integers(0, 4, 3000)] + rng.normal(0, 1, (3000, 32))
    val = centres[rng.integers(0, 4, 1000)] + rng.normal(0, 1, (1000, 32))
    familiarity = fit_familiarity(train, val)
    assert np.mean(familiarity.scores(val) > familiarity.threshold) == pytest.approx(
        FLAG_SHARE, abs=0.003
    )
    far = rng.normal(0, 3, (100, 32))  # directions no class lies in
    assert np.mean(familiarity.scores(far) > familiarity.threshold) > 0.9

    familiarity.save(tmp_path / "familiarity.npz")
    again = Familiarity.load(tmp_path / "familiarity.npz")
    assert again.k == familiarity.k and again.threshold == familiarity.threshold
    assert np.allclose(again.scores(far), familiarity.scores(far), atol=2e-3)  # float16 bank


@pytest.mark.heavy
def test_the_shipped_model_finds_inverted_and_recontrasted_slices_unfamiliar(brain_mri) -> None:
    """Real test slices against the same slices with their contrast inverted or squashed by a
    strong gamma: the score ranks the shifted ones higher (ROC AUC 0.85 and 0.93 when written),
    and the two checks together keep most of them from an answer."""
    from sklearn.metrics import roc_auc_score

    from brat.data.prepared import prepare_images
    from brat.inference.classifier import load_classifier
    from brat.settings import SHIPPED_MODEL

    classifier = load_classifier(SHIPPED_MODEL)
    rows = [r for r in classifier.manifest_for(brain_mri) if r.split == "test"][::10]
    images = prepare_images(brain_mri, [r.path for r in rows], classifier.image_size)
    originals = classifier.outputs(images)
    assert originals.familiar.mean() >= 0.9 and originals.in_distribution.mean() >= 0.95
    for shifted_images in (255 - images, (255 * (images / 255.0) ** 4).astype(np.uint8)):
        shifted = classifier.outputs(shifted_images)
        truth = np.r_[np.zeros(len(images)), np.ones(len(images))]
        scores = np.r_[originals.familiarity_scores, shifted.familiarity_scores]
        assert roc_auc_score(truth, scores) >= 0.8
        checked = shifted.in_distribution & shifted.familiar
        assert checked.mean() <= 0.5
