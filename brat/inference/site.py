"""Site profiles: a model's calibration re-fitted on one site's labelled scans.

A model's temperature and prediction sets are calibrated on its own validation split; scans from
another hospital are not exchangeable with those, and the sets' coverage falls there (77.6% at a
5% error rate on a source the model never saw, docs/knowing-when-not-to-answer.md). A site profile
re-fits both on the site's own labelled scans: the temperature by the same NLL fit, the conformal
sets (MAPIE, `brat.inference.conformal`) on the site's scans at that temperature, so coverage holds
for new scans of that site. It lives beside the model, in MODEL/sites/NAME/ (profile.json and
conformal.npz), and names the model's SHA-256: a profile never applies to another model.
With fewer scans than an error rate needs (`scans_for_guarantee`), the sets keep the model's own
calibration at that rate and the profile says so instead of claiming a guarantee.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from brat.errors import BratError
from brat.evaluation.metrics import expected_calibration_error, fit_temperature, softmax
from brat.files import atomic_write, atomic_write_json
from brat.inference.conformal import (
    MIN_CALIBRATION_IMAGES,
    SCORE,
    ConformalSets,
    fit_conformal,
)

SITES_DIR = "sites"
PROFILE_FILE = "profile.json"
SITE_CONFORMAL_FILE = "conformal.npz"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def scans_for_guarantee(error_rate: float) -> int:
    """The fewest calibration scans for which split conformal sets can promise an error rate:
    the quantile ceil((n + 1)(1 - rate)) / n must not pass 1."""
    return max(MIN_CALIBRATION_IMAGES, math.ceil((1 - error_rate) / error_rate))


@dataclass(frozen=True)
class SiteProfile:
    name: str
    model_sha256: str
    temperature: float  # fitted on the site's scans
    n: int  # site scans calibrated on
    class_counts: dict[str, int]
    ece_before: float  # the model's own temperature on the site's scans
    ece_after: float  # the site's temperature
    folders: list[str] = field(default_factory=list)  # what the site's scans were read from
    created: str = ""
    conformal: ConformalSets | None = field(default=None, compare=False, repr=False)

    def guarantees(self, error_rate: float) -> bool:
        """Whether the site's sets promise `error_rate` (enough site scans were calibrated on)."""
        return self.conformal is not None and self.n >= scans_for_guarantee(error_rate)

    def guarantee_note(self, error_rate: float) -> str:
        """ "" when the site's sets promise `error_rate`; else what is missing, in a sentence."""
        if self.guarantees(error_rate):
            return ""
        return (
            f"Site {self.name} was calibrated on {self.n} scans; prediction sets calibrated on "
            f"the site need at least {scans_for_guarantee(error_rate)} to promise a "
            f"{error_rate:.0%} error rate, so they keep the model's own calibration, which "
            "does not promise that rate on this site."
        )

    def to_json(self) -> dict:
        data = asdict(self)
        del data["conformal"]
        return data


def check_site_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise BratError(
            f"{name!r} is not a site name: use 1-40 letters, digits, '-', '_' or '.', starting "
            "with a letter or digit."
        )
    return name


def fit_site_profile(
    name: str,
    logits: np.ndarray,
    truth: np.ndarray,
    classes: tuple[str, ...],
    *,
    model_sha256: str,
    model_temperature: float,
    folders: list[str] | None = None,
) -> SiteProfile:
    """The profile of site `name` from the model's logits on its labelled scans."""
    check_site_name(name)
    logits, truth = np.asarray(logits, np.float64), np.asarray(truth, np.int64)
    present = len(set(truth.tolist()))
    if present < 2:
        raise BratError(
            f"Site {name}: calibration needs labelled scans of at least two classes "
            f"(found {len(truth)} scans of {present} class)."
        )
    temperature = fit_temperature(logits, truth)
    probabilities = softmax(logits, temperature)
    # MAPIE takes a site with scans of two classes for a binary task, where only the least
    # ambiguous set score applies; its sets keep the same guarantee.
    score = SCORE if present > 2 else "lac"
    conformal = (
        fit_conformal(probabilities, truth, score) if len(truth) >= MIN_CALIBRATION_IMAGES else None
    )
    return SiteProfile(
        name=name,
        model_sha256=model_sha256,
        temperature=temperature,
        n=len(truth),
        class_counts={c: int((truth == i).sum()) for i, c in enumerate(classes)},
        ece_before=expected_calibration_error(softmax(logits, model_temperature), truth),
        ece_after=expected_calibration_error(probabilities, truth),
        folders=[str(f) for f in folders or []],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        conformal=conformal,
    )


def calibrate_site(
    classifier,
    root: Path,
    scans: list,
    name: str,
    folders: list | None = None,
    progress: bool = True,
) -> SiteProfile:
    """Fit site `name`'s profile of a classifier's model on labelled `scans` (anything with a
    `path` under `root` and a `label`: dataset records, manifest rows) and save it beside the
    model."""
    from brat.data.prepared import prepare_images

    paths = [scan.path for scan in scans]
    images = prepare_images(Path(root), paths, classifier.image_size, progress=progress)
    profile = fit_site_profile(
        name,
        classifier.logits(images),
        np.array([classifier.classes.index(scan.label) for scan in scans]),
        classifier.classes,
        model_sha256=classifier.meta.model_sha256 or "",
        model_temperature=classifier.meta.temperature,
        folders=folders,
    )
    save_site_profile(profile, classifier.path)
    return profile


def site_folder(model_dir: str | Path, name: str) -> Path:
    return Path(model_dir) / SITES_DIR / check_site_name(name)


def save_site_profile(profile: SiteProfile, model_dir: str | Path) -> Path:
    """Write the profile into MODEL/sites/NAME/ (each file atomically); its folder."""
    folder = site_folder(model_dir, profile.name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if profile.conformal is not None:
            atomic_write(folder / SITE_CONFORMAL_FILE, profile.conformal.save)
        else:
            (folder / SITE_CONFORMAL_FILE).unlink(missing_ok=True)
        atomic_write_json(folder / PROFILE_FILE, profile.to_json())
    except OSError as error:
        raise BratError(
            f"The site profile cannot be written to {folder} ({error}): the model folder must "
            "be writable."
        ) from error
    return folder


def load_site_profile(model_dir: str | Path, name: str, model_sha256: str) -> SiteProfile:
    """Site `name`'s profile of the model in `model_dir` (whose model.keras has `model_sha256`);
    a BratError naming the sites there when it has none, or when it was fitted for another
    model."""
    folder = site_folder(model_dir, name)
    if not (folder / PROFILE_FILE).is_file():
        known = ", ".join(site_names(model_dir)) or "none"
        raise BratError(
            f"The model in {model_dir} has no profile for site {name!r} (its sites: {known}). "
            "Fit one with `python -m brat calibrate-site SITE... --site NAME`."
        )
    try:
        data = json.loads((folder / PROFILE_FILE).read_text(encoding="utf-8"))
        conformal_file = folder / SITE_CONFORMAL_FILE
        conformal = ConformalSets.load(conformal_file) if conformal_file.is_file() else None
        profile = SiteProfile(**data, conformal=conformal)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise BratError(f"The site profile in {folder} is damaged ({error}).") from error
    if model_sha256 and profile.model_sha256 != model_sha256:
        raise BratError(
            f"The profile of site {name!r} was fitted for another model (SHA-256 "
            f"{profile.model_sha256[:12]}…, this one {model_sha256[:12]}…): fit it again for "
            "this model."
        )
    return profile


def site_names(model_dir: str | Path) -> list[str]:
    folder = Path(model_dir) / SITES_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / PROFILE_FILE).is_file())


def site_classifier(classifier, name: str):
    """The classifier answering with its model's profile of site `name` (`load_site_profile`)."""
    profile = load_site_profile(classifier.path, name, classifier.meta.model_sha256 or "")
    return with_site(classifier, profile)


def with_site(classifier, profile: SiteProfile | None):
    """The classifier answering with the site's calibration: its temperature, and its prediction
    sets where it has them (the model's own sets otherwise, named so by `guarantee_note`)."""
    if profile is None:
        return classifier
    return replace(classifier, site=profile, conformal=profile.conformal or classifier.conformal)
