"""Validating a model on a site's own labelled scans, against acceptance criteria the user sets.

A site is a set of labelled scans from one place, in any folder layout brat reads (several folders
read as one, `brat.data.folders`). `read_site` reads it once with the duplicate finder: unreadable
files are counted and left out, copies filed under different labels are reported and left out,
and patient groups come from metadata.csv joined by duplicate clusters (`brat.data.split`), so
adaptation never trains on one copy of a scan and calibrates on another.

`validate` measures the model there: accuracy with its Wilson interval, per class, the confusion
matrix, ECE, the prediction sets' coverage and size, the share answered and right when answered,
the shares flagged unfamiliar and not a brain MRI (those are counted and left out of the accuracy),
and the view planes. `site_verdict` then says "fit for this site", "not fit" or "too few scans to
tell", with the number of scans that would be needed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from brat import DISCLAIMER
from brat.data.dataset import ImageRecord
from brat.data.prepared import prepare_images
from brat.data.scan import scan_dataset
from brat.data.split import join_groups
from brat.errors import DatasetError
from brat.evaluation.metrics import Metrics, classification_metrics, wilson_interval
from brat.evaluation.selective import Selective, selective_of
from brat.inference.conformal import ERROR_RATE

FIT, NOT_FIT, TOO_FEW = "fit for this site", "not fit", "too few scans to tell"
# A class with fewer scans than this has no recall worth a number.
MIN_CLASS_SCANS = 5
MAX_NEEDED = 100_000


@dataclass(frozen=True)
class Site:
    """The labelled, readable scans of one site (`read_site`)."""

    name: str
    root: Path
    records: list[ImageRecord]  # labelled, readable, without label conflicts
    groups: dict[str, str]  # path -> patient group (metadata joined by duplicate clusters)
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why
    unlabelled: int = 0
    conflicts: list[list[str]] = field(default_factory=list)  # copies with different labels
    # Site scans with a copy among the other folders read with it (the model's own data, when
    # adapting), left out of `records`.
    copies: list[str] = field(default_factory=list)

    @property
    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.label for r in self.records).items()))

    def check_labels(self, classes: tuple[str, ...]) -> None:
        """A DatasetError when the site has labels a model of `classes` does not know."""
        unknown = sorted(set(self.class_counts) - set(classes))
        if unknown:
            raise DatasetError(f"Site {self.name} has labels the model does not know: {unknown}.")


def read_site(
    root: str | Path,
    name: str,
    *,
    folders: set[str] | None = None,
    progress: bool = True,
) -> Site:
    """The site at `root` (a dataset folder, or several read as one); with `folders`, only the
    images of those folders of `root` are the site's, and those with a copy in another folder
    are left out (`Site.copies`)."""
    scanned = scan_dataset(root, progress=progress)
    unreadable = dict(scanned.unreadable)
    ours = [r for r in scanned.dataset.records if folders is None or r.folder in folders]
    copies = []
    if folders is not None:
        mine = {r.path for r in ours}
        for cluster in scanned.duplicates.near_clusters:
            if any(path not in mine for path in cluster):
                copies += [path for path in cluster if path in mine]
    unreadable = {p: e for p, e in unreadable.items() if p in {r.path for r in ours}}
    left_out = set(unreadable) | set(copies)
    labelled = [r for r in ours if r.label and r.path not in left_out]
    conflicts = scanned.duplicates.label_conflicts({r.path: r.label for r in labelled})
    conflicting = {path for cluster in conflicts for path in cluster}
    records = [r for r in labelled if r.path not in conflicting]
    if not records:
        raise DatasetError(
            f"Site {name} ({root}) has no labelled, readable scans: put them in class folders "
            "(glioma_tumor, meningioma_tumor, no_tumor, pituitary_tumor) or list them in a "
            "metadata.csv with a label column."
        )
    return Site(
        name,
        scanned.dataset.root,
        records,
        join_groups(records, scanned.duplicates),
        unreadable,
        sum(1 for r in ours if not r.label),
        [sorted(c) for c in conflicts],
        sorted(set(copies)),
    )


@dataclass(frozen=True)
class Criteria:
    """What the user asks of a model before using it at a site."""

    accuracy: float = 0.90  # at least this accuracy on the site's brain MRI scans
    lower_bound: float = 0.85  # and the Wilson 95% interval's lower bound at least this
    coverage: float = 0.90  # the prediction sets hold the true class this often
    rejected: float = 0.05  # at most this share of the site's scans called not a brain MRI

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must lie in [0, 1]. Received: {value!r}")
        if self.lower_bound > self.accuracy:
            raise ValueError(
                "`lower_bound` cannot be above `accuracy`. Received: "
                f"lower_bound={self.lower_bound}, accuracy={self.accuracy}"
            )


@dataclass(frozen=True)
class SiteValidation:
    site: str
    model: str
    model_sha256: str
    site_profile: str | None  # the site calibration the model answered with, if any
    scans: int  # labelled, readable scans
    not_mri: list[str]  # scans the model called not a brain MRI (left out of the metrics)
    unreadable: int
    unlabelled: int
    conflicts: list[list[str]]
    metrics: Metrics | None  # on the scans that passed the not-a-brain-MRI check
    selective: Selective | None
    planes: dict[str, int]  # view plane (hand-labelled, else predicted) -> scans
    criteria: Criteria
    verdict: str
    reasons: list[str]
    needed: int | None  # scans that would settle "too few scans to tell"
    unmeasured_classes: list[str]  # classes with fewer than MIN_CLASS_SCANS scans
    seconds: float = 0.0
    disclaimer: str = DISCLAIMER

    def to_json(self) -> dict:
        data = asdict(self)
        data["metrics"] = self.metrics.to_json() if self.metrics else None
        data["selective"] = self.selective.to_json() if self.selective else None
        return data


def validate(
    site: Site,
    classifier,
    criteria: Criteria | None = None,
    *,
    error_rate: float = ERROR_RATE,
    progress: bool = True,
) -> SiteValidation:
    """`classifier` (a `brat.inference.classifier.Classifier`, with its site profile if it has
    one) measured on `site` and judged against `criteria`."""
    import time

    from brat.inference.planes import planes_or_predicted

    started = time.perf_counter()
    criteria = criteria or Criteria()
    site.check_labels(classifier.classes)
    paths = [r.path for r in site.records]
    images = prepare_images(site.root, paths, classifier.image_size, progress=progress)
    outputs = classifier.outputs(images, error_rate)
    inside = (
        outputs.in_distribution
        if outputs.in_distribution is not None
        else np.ones(len(paths), bool)
    )
    truth = np.array([classifier.classes.index(r.label) for r in site.records])
    metrics = selective = None
    if inside.any():
        metrics = classification_metrics(
            truth[inside], outputs.probabilities[inside], classifier.classes
        )
        selective = selective_of(classifier, truth[inside], outputs, inside)
    known = [r.plane for r in site.records]
    planes = planes_or_predicted(known, classifier.planes, outputs.features, outputs.images)
    counts = Counter(r.label for r, keep in zip(site.records, inside, strict=True) if keep)
    unmeasured = [c for c in classifier.classes if 0 < counts.get(c, 0) < MIN_CLASS_SCANS]
    verdict, reasons, needed = site_verdict(
        metrics, selective, criteria, rejected=1.0 - float(inside.mean())
    )
    if unmeasured:
        reasons.append(
            f"Fewer than {MIN_CLASS_SCANS} scans of {', '.join(unmeasured)}: their recall is not "
            "measured."
        )
    labelled = Counter(r.label for r in site.records)
    missing = [c for c in classifier.classes if counts.get(c, 0) == 0]
    if missing:
        rejected_only = [c for c in missing if labelled.get(c)]
        reasons.append(
            f"No scans of {', '.join(missing)}"
            + (
                f" ({', '.join(rejected_only)}: all called not a brain MRI)"
                if rejected_only
                else ""
            )
            + ": the model is not validated on them."
        )
    return SiteValidation(
        site=site.name,
        model=str(classifier.path),
        model_sha256=classifier.meta.model_sha256 or "",
        site_profile=classifier.site_name,
        scans=len(paths),
        not_mri=[p for p, keep in zip(paths, inside, strict=True) if not keep],
        unreadable=len(site.unreadable),
        unlabelled=site.unlabelled,
        conflicts=site.conflicts,
        metrics=metrics,
        selective=selective,
        planes=dict(sorted(Counter(p or "unknown" for p in planes).items())),
        criteria=criteria,
        verdict=verdict,
        reasons=reasons,
        needed=needed,
        unmeasured_classes=unmeasured,
        seconds=round(time.perf_counter() - started, 2),
    )


def site_verdict(
    metrics: Metrics | None,
    selective: Selective | None,
    criteria: Criteria,
    *,
    rejected: float = 0.0,
) -> tuple[str, list[str], int | None]:
    """(verdict, reasons, scans needed) for a model measured on a site.

    "not fit" when a number misses its criterion: the share rejected as not a brain MRI, the
    sets' coverage, or the accuracy, when its whole interval lies below the bar or the site has
    the scans to judge it (as many as showing the bar itself takes); "too few scans to tell"
    when the accuracy interval's lower bound is below the one asked and more scans could settle
    it (with how many, at the accuracy seen, or at the bar); else "fit for this site".
    """
    if metrics is None or metrics.n == 0:
        return NOT_FIT, ["No scan of the site passed the not-a-brain-MRI check."], None
    reasons = []
    if rejected > criteria.rejected:
        reasons.append(
            f"{rejected:.1%} of the scans were called not a brain MRI, more than the "
            f"{criteria.rejected:.0%} allowed."
        )
    coverage = selective.coverage if selective else None
    if coverage is not None and coverage < criteria.coverage:
        reasons.append(
            f"The prediction sets hold the true class for {coverage:.1%} of the scans, below the "
            f"{criteria.coverage:.0%} asked."
        )
    low, high = metrics.accuracy_ci95
    accuracy = (
        f"Accuracy {metrics.accuracy:.1%} on {metrics.n} scans (95% interval {low:.1%}-{high:.1%})"
    )
    enough = scans_needed(criteria.accuracy, criteria.lower_bound)
    if metrics.accuracy < criteria.accuracy and (
        high < criteria.accuracy or enough is None or metrics.n >= enough
    ):
        reasons.append(f"{accuracy} is below the {criteria.accuracy:.0%} asked.")
    if reasons:
        return NOT_FIT, reasons, None
    if low >= criteria.lower_bound and metrics.accuracy >= criteria.accuracy:
        return FIT, [], None
    needed = scans_needed(max(metrics.accuracy, criteria.accuracy), criteria.lower_bound)
    return (
        TOO_FEW,
        [
            f"{accuracy}: its lower bound is below the {criteria.lower_bound:.0%} asked"
            + (
                f"; about {needed} scans at {max(metrics.accuracy, criteria.accuracy):.0%} "
                "accuracy would show it."
                if needed
                else "."
            )
        ],
        needed,
    )


def scans_needed(accuracy: float, lower_bound: float) -> int | None:
    """The fewest scans at which `accuracy` has a Wilson 95% lower bound of at least
    `lower_bound` (None when no number of scans would do)."""
    if accuracy <= lower_bound:
        return None
    low, high = 1, MAX_NEEDED
    if wilson_interval(round(accuracy * high), high)[0] < lower_bound:
        return None
    while low < high:
        middle = (low + high) // 2
        if wilson_interval(round(accuracy * middle), middle)[0] >= lower_bound:
            high = middle
        else:
            low = middle + 1
    return low
