"""Site profiles: fitted on a site's labelled scans, saved beside the model, and answering in
place of the model's own calibration."""

from __future__ import annotations

import numpy as np
import pytest

from brat.errors import BratError
from brat.inference.classifier import Classifier
from brat.inference.conformal import fit_conformal
from brat.inference.site import (
    fit_site_profile,
    load_site_profile,
    save_site_profile,
    scans_for_guarantee,
    site_names,
    with_site,
)
from brat.labels import CLASSES
from brat.model_folder import ModelMeta

SHA = "ab" * 32


def site_logits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident logits: right 70% of the time, always sure (a site the model never saw)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    predicted = np.where(rng.random(n) < 0.7, truth, rng.integers(0, 4, n))
    logits = rng.normal(0, 0.3, (n, 4))
    logits[np.arange(n), predicted] += 8.0
    return logits, truth


def classifier(tmp_path) -> Classifier:
    """A classifier of the model's own calibration, confident sets calibrated in-source."""
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 200)
    probabilities = np.full((200, 4), 0.01)
    probabilities[np.arange(200), truth] = 0.97
    meta = ModelMeta(temperature=1.0, model_sha256=SHA)
    return Classifier(
        model=None, meta=meta, path=tmp_path, conformal=fit_conformal(probabilities, truth)
    )


def test_a_site_profile_recalibrates_saves_loads_and_widens_the_sets(tmp_path) -> None:
    logits, truth = site_logits(120)
    profile = fit_site_profile(
        "st-elsewhere", logits, truth, CLASSES, model_sha256=SHA, model_temperature=1.0
    )
    assert profile.temperature > 2.0  # sure and often wrong: the site's temperature softens it
    assert profile.ece_after < profile.ece_before
    assert profile.class_counts == {c: int((truth == i).sum()) for i, c in enumerate(CLASSES)}
    save_site_profile(profile, tmp_path)
    assert site_names(tmp_path) == ["st-elsewhere"]
    loaded = load_site_profile(tmp_path, "st-elsewhere", SHA)
    assert loaded.temperature == profile.temperature and loaded.n == 120

    test_logits, test_truth = site_logits(400, seed=5)
    own = classifier(tmp_path)
    site = with_site(own, loaded)
    assert site.site_name == "st-elsewhere" and site.temperature == loaded.temperature
    features = np.zeros((400, 2))
    before = own.checked(test_logits, features, features)
    after = site.checked(test_logits, features, features)
    covered = lambda out: out.sets[np.arange(400), test_truth].mean()  # noqa: E731
    assert covered(before) < 0.85  # the model's own sets do not hold on this site
    assert covered(after) >= 0.9  # the site's do
    assert after.sets.sum(axis=1).mean() > before.sets.sum(axis=1).mean()


def test_a_profile_is_refused_for_another_model_or_a_bad_name(tmp_path) -> None:
    logits, truth = site_logits(40)
    profile = fit_site_profile("a", logits, truth, CLASSES, model_sha256=SHA, model_temperature=1)
    save_site_profile(profile, tmp_path)
    with pytest.raises(BratError, match="another model"):
        load_site_profile(tmp_path, "a", "cd" * 32)
    with pytest.raises(BratError, match=r"no profile for site 'b'.*its sites: a"):
        load_site_profile(tmp_path, "b", SHA)
    for name in ("", "../up", "a b", "x" * 41):
        with pytest.raises(BratError, match="not a site name"):
            fit_site_profile(name, logits, truth, CLASSES, model_sha256=SHA, model_temperature=1)


def test_too_few_scans_for_a_guarantee_say_so(tmp_path) -> None:
    assert scans_for_guarantee(0.05) == 20 and scans_for_guarantee(0.01) == 99
    logits, truth = site_logits(12)
    few = fit_site_profile("few", logits, truth, CLASSES, model_sha256=SHA, model_temperature=1)
    assert few.conformal is None and not few.guarantees(0.05)
    assert "at least 20 to promise a 5% error rate" in few.guarantee_note(0.05)
    own = classifier(tmp_path)
    assert with_site(own, few).conformal is own.conformal  # the model's own sets, said so
    logits, truth = site_logits(60)
    some = fit_site_profile("some", logits, truth, CLASSES, model_sha256=SHA, model_temperature=1)
    assert some.guarantees(0.05) and not some.guarantees(0.01)
    assert some.guarantee_note(0.05) == ""
    with pytest.raises(BratError, match="at least two classes"):
        fit_site_profile(
            "one", logits[:5], np.zeros(5, int), CLASSES, model_sha256=SHA, model_temperature=1
        )


def test_a_site_of_two_classes_gets_sets_that_hold_there(tmp_path) -> None:
    """MAPIE reads two classes as a binary task, for which only the least ambiguous score is
    valid: a site of gliomas and healthy slices still gets its own sets."""
    logits, truth = site_logits(300, seed=3)
    two = np.isin(truth, [0, 2])
    profile = fit_site_profile(
        "two", logits[two], truth[two], CLASSES, model_sha256=SHA, model_temperature=1.0
    )
    assert profile.conformal.score == "lac"
    sets = profile.conformal.sets(np.full((5, 4), 0.25))
    assert sets.shape == (5, 4) and sets.any(axis=1).all()
