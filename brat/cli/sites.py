"""Site commands: validate a model on a site's labelled scans, calibrate it there, adapt it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brat.cli.common import data_option, error_rate_option, model_option, write_json

# The acceptance criteria's options: flag, `brat.evaluation.site.Criteria` field, meaning.
CRITERIA_OPTIONS = (
    ("--min-accuracy", "accuracy", "the accuracy on the site's brain MRI scans"),
    ("--min-lower-bound", "lower_bound", "the accuracy's Wilson 95%% lower bound"),
    ("--min-coverage", "coverage", "the prediction sets' coverage"),
    ("--max-rejected", "rejected", "the share of scans called not a brain MRI"),
)
SITE_HELP = (
    "a site's labelled scans: class folders, a Kaggle layout or a metadata.csv with labels and "
    "patient groups (every layout brat reads)"
)


def add_commands(commands) -> None:
    from brat.evaluation.site import Criteria

    criteria = Criteria()
    validate = commands.add_parser(
        "validate",
        help="measure a model on a site's own labelled scans and judge it against criteria",
        description="Accuracy with its Wilson 95% interval, per class recall and precision, the "
        "confusion matrix, ECE, the prediction sets' coverage and size, the share answered and "
        "right when answered, the shares flagged unfamiliar and not a brain MRI (left out of "
        "the accuracy), the view planes; then 'fit for this site', 'not fit' or 'too few scans "
        "to tell' (with the number of scans needed) against the criteria.",
    )
    data_option(validate, SITE_HELP)
    validate.add_argument("--name", default="site", help="the site's name in the report")
    model_option(validate)
    validate.add_argument(
        "--site", metavar="NAME", help="answer with this site profile's calibration"
    )
    for flag, field, text in CRITERIA_OPTIONS:
        default = getattr(criteria, field)
        validate.add_argument(
            flag, type=float, default=default, dest=field, help=f"{text} (default {default})"
        )
    error_rate_option(validate)
    validate.add_argument("--json", type=Path, metavar="OUT", help="write the report ('-': stdout)")
    validate.add_argument("--pdf", type=Path, metavar="OUT.pdf", help="write the report as PDF")
    validate.add_argument("--quiet", action="store_true", help="no progress bar")
    validate.set_defaults(handler=_validate)

    calibrate = commands.add_parser(
        "calibrate-site",
        help="fit a site profile: temperature and prediction sets calibrated on a site's scans",
        description="Re-fits the temperature and the conformal prediction sets on the site's "
        "labelled scans and saves them as MODEL/sites/NAME, used by `brat predict --site NAME` "
        "and the app's site choice. Calibrate on scans the model never trained on.",
    )
    data_option(calibrate, SITE_HELP)
    calibrate.add_argument("--site", required=True, metavar="NAME", help="the site's name")
    model_option(calibrate)
    calibrate.add_argument("--quiet", action="store_true", help="no progress bar")
    calibrate.set_defaults(handler=_calibrate)

    adapt = commands.add_parser(
        "adapt",
        help="fine-tune a model on a site's labelled scans, then calibrate it there",
        description="Starts from MODEL, trains on the site's scans mixed with a sample of the "
        "model's own training images (from --replay, the folders it was trained on) so that it "
        "does not forget, keeps the model's test split held out, and writes a new model folder. "
        "When the site has enough scans, a quarter of its patient groups is held out to fit "
        "the adapted model's site profile. Run the same command again after a crash to resume.",
    )
    adapt.add_argument("model", type=Path, help="the model folder to adapt")
    adapt.add_argument("sites", type=Path, nargs="+", metavar="SITE", help=SITE_HELP)
    adapt.add_argument(
        "--replay",
        type=Path,
        nargs="+",
        required=True,
        metavar="DATA",
        help="the dataset folders the model was trained on",
    )
    adapt.add_argument("--site", required=True, metavar="NAME", help="the site's name")
    adapt.add_argument("--out", type=Path, required=True, metavar="DIR", help="new model folder")
    adapt.add_argument(
        "--accept-warnings",
        action="store_true",
        help="adapt even to a site of one class",
    )
    adapt.add_argument("--quiet", action="store_true", help="no progress bar")
    adapt.set_defaults(handler=_adapt)


def _validate(args: argparse.Namespace) -> int:
    from brat.evaluation.site import Criteria, read_site, validate
    from brat.inference.classifier import load_classifier

    criteria = Criteria(**{field: getattr(args, field) for _, field, _ in CRITERIA_OPTIONS})
    classifier = load_classifier(args.model, site=args.site)
    site = read_site(args.data, args.name, progress=not args.quiet)
    report = validate(
        site, classifier, criteria, error_rate=args.error_rate, progress=not args.quiet
    )
    if args.json:
        write_json(report.to_json(), args.json)
    if args.pdf:
        from brat.evaluation.site_report import site_pdf
        from brat.files import atomic_write_bytes

        atomic_write_bytes(args.pdf, site_pdf(report))
    print(site_summary(report))
    return 0


def site_summary(report) -> str:
    """The validation's verdict and headline numbers in a few lines."""
    lines = [f"site {report.site}: {report.verdict}"]
    m, s = report.metrics, report.selective
    if m is not None:
        low, high = m.accuracy_ci95
        lines.append(
            f"  {m.n} brain MRI scans: accuracy {m.accuracy:.1%} ({low:.1%}-{high:.1%}), ECE "
            f"{m.ece:.3f}"
            + (
                f", set coverage {s.coverage:.1%} (mean size {s.mean_set_size:.2f})"
                if s and s.coverage is not None
                else ""
            )
            + (f", answered {s.answered:.1%}" if s else "")
            + (
                f" ({s.answered_accuracy:.1%} right)"
                if s and s.answered_accuracy is not None
                else ""
            )
        )
    if report.not_mri:
        lines.append(f"  {len(report.not_mri)} scans called not a brain MRI, left out")
    lines += [f"  {reason}" for reason in report.reasons]
    return "\n".join(lines)


def _calibrate(args: argparse.Namespace) -> int:
    from brat.evaluation.site import read_site
    from brat.inference.classifier import load_classifier
    from brat.inference.conformal import ERROR_RATE
    from brat.inference.site import calibrate_site

    classifier = load_classifier(args.model)
    site = read_site(args.data, args.site, progress=not args.quiet)
    profile = calibrate_site(
        classifier, site.root, site.records, args.site, args.folders, progress=not args.quiet
    )
    print(
        f"site {profile.name}: {profile.n} scans, temperature {classifier.meta.temperature:.3f} "
        f"-> {profile.temperature:.3f}, ECE {profile.ece_before:.3f} -> {profile.ece_after:.3f}; "
        f"wrote it beside {classifier.path}"
    )
    if note := profile.guarantee_note(ERROR_RATE):
        print(note, file=sys.stderr)
    return 0


def _adapt(args: argparse.Namespace) -> int:
    from brat.cli.training import _PrintEvents
    from brat.training.adapt import adapt

    result = adapt(
        args.model,
        args.sites,
        args.replay,
        args.out,
        name=args.site,
        accept_warnings=args.accept_warnings,
        events=_PrintEvents(args.quiet),
        progress=not args.quiet,
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.out is None:
        print("stopped before the first epoch ended: no model written")
        return 1
    profile, plan = result.profile, result.plan
    print(
        f"{result.status}: {plan.site_scans['train']} site scans trained with "
        f"{plan.replayed['train']} training images of the model's own (and calibrated on "
        f"{plan.replayed['val']} of its validation images), {result.seconds / 60:.1f} min; "
        f"wrote {result.out}"
        + (f" with the site profile {profile.name} ({profile.n} held-out scans)" if profile else "")
    )
    return 0
