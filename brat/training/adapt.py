"""Adapting a model to a site: fine-tuning on the site's labelled scans, then calibrating there.

A run starts from the model folder (every weight, `brat train --weights MODEL`), trains on the
site's scans mixed with a sample of the model's own training images (replay, so that it does not
forget what it knew), keeps the model's own test split as the adapted model's test split (so
`brat evaluate --split test` measures the forgetting), and writes a new model folder whose
lineage names the model it came from. When the site has enough scans, a share of its patient
groups is held out of training and the adapted model's site profile (`brat.inference.site`) is
fitted on them; with fewer, every site scan trains and the site calibration is left to a later
`brat calibrate-site` on new scans. What trains (frozen blocks, epochs, learning rate) was
chosen by measurement (models/mobilenetv2-brain-mri/notes.md, "Adapting to a site").
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from brat.data.manifest import ManifestRow, rows_for
from brat.data.split import assign_groups
from brat.errors import BratError, DatasetError
from brat.evaluation.site import MIN_CLASS_SCANS, Site
from brat.inference.conformal import MIN_CALIBRATION_IMAGES
from brat.training.config import TrainConfig


@dataclass(frozen=True)
class AdaptConfig:
    epochs: int = 5
    learning_rate: float = 1e-4
    # The backbone's stem and lowest blocks keep the model's weights (every stride-8 block).
    frozen_blocks: int = 6
    # Replayed training images of the model per site training scan, and at least `min_replay`.
    replay: float = 1.0
    min_replay: int = 200
    # Validation images of the model kept to calibrate the adapted model's own temperature.
    replay_validation: int = 400
    # The share of the site's patient groups held out to calibrate the site profile, when that
    # leaves at least MIN_CALIBRATION_IMAGES scans to calibrate on and more to train on.
    calibration_share: float = 0.25
    seed: int = 42

    def __post_init__(self) -> None:
        if not 0.0 < self.calibration_share < 1.0:
            raise ValueError(
                f"`calibration_share` must lie in (0, 1). Received: {self.calibration_share}"
            )
        if self.replay < 0 or self.min_replay < 0 or self.replay_validation < 1:
            raise ValueError("`replay`, `min_replay` and `replay_validation` must be >= 0 (>= 1).")


def site_rows(site: Site, config: AdaptConfig) -> tuple[list[ManifestRow], list[str]]:
    """The site's scans as manifest rows: split "train" or, for a share of patient groups held
    out to calibrate on, "val"; and warnings in words."""
    warnings = []
    counts = site.class_counts
    thin = [c for c, n in counts.items() if n < MIN_CLASS_SCANS]
    if thin:
        warnings.append(
            f"Fewer than {MIN_CLASS_SCANS} site scans of {', '.join(thin)}: the adapted model "
            "learns little about them from this site."
        )
    members: dict[str, list] = defaultdict(list)
    for record in site.records:
        members[site.groups[record.path]].append(record)
    held_out = round(len(site.records) * config.calibration_share)
    calibrate = held_out >= MIN_CALIBRATION_IMAGES
    split_of = {}
    if calibrate:
        groups = [
            (name, _most_common_label(rows), len(rows)) for name, rows in sorted(members.items())
        ]
        ratios = (1.0 - config.calibration_share, config.calibration_share)
        split_of = {
            name: ("train", "val")[part]
            for name, part in assign_groups(groups, ratios, config.seed).items()
        }
    else:
        warnings.append(
            f"{len(site.records)} site scans: too few to hold {MIN_CALIBRATION_IMAGES} out for "
            "a site calibration, so every scan trains and the adapted model has no site "
            "profile; fit one later on new labelled scans (`brat calibrate-site`)."
        )
    rows = [
        ManifestRow(
            path=r.path,
            label=r.label,
            split=split_of.get(site.groups[r.path], "train"),
            group=f"site:{site.groups[r.path]}",
            plane=r.plane or "",
            plane_source="label" if r.plane else "",
            mask=r.mask or "",
            source=site.name,
            folder=r.folder or "",
        )
        for r in site.records
    ]
    return rows, warnings


def adaptation_rows(
    site: list[ManifestRow], model_rows: list[ManifestRow], config: AdaptConfig
) -> list[ManifestRow]:
    """The manifest an adaptation trains on: the site's rows, a class-stratified sample of the
    model's training images (replay) and of its validation images, and the model's test rows
    (its held-out images stay held out, and measure what was forgotten)."""
    rng = random.Random(config.seed)
    site_train = sum(r.split == "train" for r in site)
    replay = max(config.min_replay, round(config.replay * site_train))
    chosen = _stratified([r for r in model_rows if r.split == "train"], replay, rng) + _stratified(
        [r for r in model_rows if r.split == "val"], config.replay_validation, rng
    )
    tested = [r for r in model_rows if r.split == "test"]
    return site + chosen + tested


def train_config(base: TrainConfig, model_dir: str | Path, config: AdaptConfig) -> TrainConfig:
    """The training run of an adaptation: the model's own recipe started from its weights."""
    return replace(
        base,
        model=replace(base.model, weights=str(Path(model_dir).resolve())),
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        frozen_blocks=config.frozen_blocks,
        schedule="cosine",
        seed=config.seed,
        plane=None,
    )


def check_site(site: Site, classes: tuple[str, ...], accept_warnings: bool) -> list[str]:
    """Refuse a site adaptation cannot learn from; the warnings a user must accept otherwise."""
    site.check_labels(classes)
    if len(site.records) < MIN_CLASS_SCANS:
        raise DatasetError(
            f"Site {site.name} has {len(site.records)} labelled scans: adaptation needs at least "
            f"{MIN_CLASS_SCANS}."
        )
    warnings = []
    if len(site.class_counts) == 1:
        warnings.append(
            f"Every site scan is {next(iter(site.class_counts))}: the adapted model may learn "
            "that everything from this site is."
        )
    if warnings and not accept_warnings:
        raise BratError(" ".join(warnings) + " Pass --accept-warnings to adapt anyway.")
    return warnings


def _stratified(rows: list[ManifestRow], n: int, rng: random.Random) -> list[ManifestRow]:
    """About `n` of `rows`, each class in its share (all of them when n >= len(rows))."""
    if n >= len(rows):
        return list(rows)
    by_label: dict[str, list[ManifestRow]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.path):
        by_label[row.label].append(row)
    chosen = []
    for label in sorted(by_label):
        members = by_label[label]
        chosen += rng.sample(members, max(1, round(n * len(members) / len(rows))))
    return chosen


def _most_common_label(records: list) -> str:
    labels = [r.label for r in records]
    return max(sorted(set(labels)), key=labels.count)


@dataclass(frozen=True)
class AdaptationPlan:
    """What an adaptation trains on, before it trains (`plan_adaptation`)."""

    name: str  # the site's
    root: Path  # the replay and site folders read as one
    manifest: list[ManifestRow]  # site rows (source: the site's name), replay and test rows
    config: TrainConfig
    site_folders: list[str]
    warnings: list[str]

    @property
    def site_scans(self) -> dict[str, int]:
        """Split -> site scans: "train", and "val" (held out to fit the site profile)."""
        site = [r for r in self.manifest if r.source == self.name]
        return {s: sum(r.split == s for r in site) for s in ("train", "val")}

    @property
    def replayed(self) -> dict[str, int]:
        """Split -> the model's own images replayed: "train" trains, "val" calibrates."""
        own = [r for r in self.manifest if r.source != self.name]
        return {s: sum(r.split == s for r in own) for s in ("train", "val")}


@dataclass(frozen=True)
class AdaptResult:
    plan: AdaptationPlan
    out: Path | None  # None when stopped before an epoch completed
    status: str
    profile: object | None  # the site profile fitted on the held-out site scans, if any
    warnings: list[str]
    seconds: float


def plan_adaptation(
    model_dir: str | Path,
    site_folders: list[Path],
    replay_folders: list[Path],
    *,
    name: str,
    config: AdaptConfig | None = None,
    accept_warnings: bool = False,
    progress: bool = True,
) -> AdaptationPlan:
    """Read site `name`'s scans (`site_folders`) and the model's own images (`replay_folders`,
    the folders it was trained on) and lay out the run that adapts the model of `model_dir`."""
    from brat import model_folder
    from brat.data.folders import dataset_root, folder_names
    from brat.evaluation.site import read_site
    from brat.inference.site import check_site_name

    config = config or AdaptConfig()
    check_site_name(name)
    model_dir = model_folder.model_folder(model_dir)
    base = model_folder.read_meta(model_dir)
    if not replay_folders:
        raise BratError(
            "Adaptation replays the model's own training images so that it does not forget "
            f"them: give the folders it was trained on ({base.data})."
        )
    folders = [Path(f).expanduser().resolve() for f in [*replay_folders, *site_folders]]
    if shared := set(folders[: len(replay_folders)]) & set(folders[len(replay_folders) :]):
        raise DatasetError(
            f"{sorted(map(str, shared))[0]} is given as the site and as the model's own data: a "
            "site's scans are the ones in other folders."
        )
    root = dataset_root(folders)
    names = folder_names(folders)
    site = read_site(root, name, folders=set(names[len(replay_folders) :]), progress=progress)
    warnings = check_site(site, base.classes, accept_warnings)
    if rejected := flagged_not_mri(site, model_dir, progress):
        warnings.append(
            f"The model calls {len(rejected)} of the {len(site.records)} site scans not a brain "
            f"MRI (e.g. {rejected[0]}). They are kept: its check knows only the sources it "
            "trained on, and off-source it also rejects real slices (the leave-source-out model "
            "rejected 48 of 100 slices of whole volumes, docs/sites.md). Check that they are "
            "brain MRI slices."
        )
    if site.unreadable:
        warnings.append(f"{len(site.unreadable)} site files could not be read and were left out.")
    if site.conflicts:
        warnings.append(
            f"{len(site.conflicts)} groups of copies filed under different labels were left out "
            f"(e.g. {', '.join(site.conflicts[0])})."
        )
    if site.copies:
        warnings.append(
            f"{len(site.copies)} site scans have a copy among the model's own images and were "
            "left out."
        )
    rows, more = site_rows(site, config)
    model_rows = replay_rows(model_folder.read_model_manifest(model_dir), root, names[0])
    trained = [r for r in model_rows if r.split == "train"]
    missing = [r.path for r in trained[:50] if not (root / r.path).is_file()]
    if missing or not trained:
        example = f" (e.g. {missing[0]})" if missing else ""
        raise DatasetError(
            f"The model's training images are not in the replay folders{example}: give the "
            f"folders it was trained on ({base.data}), under their own names."
        )
    return AdaptationPlan(
        name=name,
        root=root,
        manifest=adaptation_rows(rows, model_rows, config),
        config=train_config(base.config, model_dir, config),
        site_folders=[str(f) for f in site_folders],
        warnings=warnings + more,
    )


def adapt(
    model_dir: str | Path,
    site_folders: list[Path],
    replay_folders: list[Path],
    out: str | Path,
    *,
    name: str,
    config: AdaptConfig | None = None,
    accept_warnings: bool = False,
    events=None,
    stop=None,
    progress: bool = True,
) -> AdaptResult:
    """Fine-tune the model of `model_dir` on site `name`'s scans mixed with its own training
    images (`plan_adaptation`), write the adapted model to `out` and, where the site had scans
    held out for it, its site profile."""
    import time

    from brat.training.train import train

    started = time.perf_counter()
    plan = plan_adaptation(
        model_dir,
        site_folders,
        replay_folders,
        name=name,
        config=config,
        accept_warnings=accept_warnings,
        progress=progress,
    )
    result = train(
        plan.root, plan.manifest, out, plan.config, events=events, stop=stop, progress=progress
    )
    profile, warnings = None, list(plan.warnings)
    if result.out is not None:
        try:
            profile = site_profile_after(
                result.out, plan.root, plan.manifest, name, plan.site_folders, progress
            )
        except BratError as error:
            warnings.append(f"No site profile was fitted: {error}")
    return AdaptResult(
        plan=plan,
        out=result.out,
        status=result.status,
        profile=profile,
        warnings=warnings,
        seconds=round(time.perf_counter() - started, 1),
    )


def site_profile_after(
    model_dir: Path,
    root: Path,
    manifest: list[ManifestRow],
    name: str,
    folders: list[str],
    progress: bool = True,
):
    """The adapted model's profile of site `name`, fitted on the site scans its manifest held
    out (`split` val, `source` the site), saved in `model_dir`; None when none were held out."""
    from brat.inference.classifier import load_classifier
    from brat.inference.site import calibrate_site

    calibration = [r for r in manifest if r.source == name and r.split == "val"]
    if not calibration:
        return None
    return calibrate_site(load_classifier(model_dir), root, calibration, name, folders, progress)


def flagged_not_mri(site: Site, model_dir: Path, progress: bool = True) -> list[str]:
    """The site scans the model's not-a-brain-MRI check rejects."""
    from brat.data.prepared import prepare_images
    from brat.inference.classifier import load_classifier

    classifier = load_classifier(model_dir)
    if classifier.ood is None:
        return []
    paths = [r.path for r in site.records]
    images = prepare_images(site.root, paths, classifier.image_size, progress=progress)
    inside = classifier.outputs(images).in_distribution
    return [path for path, keep in zip(paths, inside, strict=True) if not keep]


def replay_rows(rows: list[ManifestRow], root: Path, first: str) -> list[ManifestRow]:
    """A model's manifest rows as paths under the adaptation's `root` (the replay and site folders
    read as one): a manifest of several folders names them already (`rows_for`); a one-folder
    manifest's bare paths lie in the first replay folder, named `first` there."""
    if any(r.folder and r.path.startswith(f"{r.folder}/") for r in rows):
        return rows_for(rows, root)
    return [
        replace(r, path=f"{first}/{r.path}", mask=f"{first}/{r.mask}" if r.mask else "")
        for r in rows
    ]
