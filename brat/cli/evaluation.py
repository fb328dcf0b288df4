"""Commands that measure a model: evaluate, localize, compare, card, bench."""

from __future__ import annotations

import argparse
from pathlib import Path

from brat.cli.common import (
    VOLUMES_HELP,
    data_option,
    error_rate_option,
    model_option,
    split_option,
    volumes_option,
    write_json,
)
from brat.labels import METHODS, PLANES, STUDY_RULES


def add_commands(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="measure a model on a split of its manifest, or on every image of a folder",
        description="Accuracy with its Wilson 95% interval, tumour-class accuracy, per-class "
        "precision/recall/F1, macro-F1, confusion matrix, ECE before and after calibration, and "
        "the misclassified files. A named split uses the manifest stored with the model, with "
        "paths relative to DATA; --split all evaluates every labelled image of DATA.",
    )
    data_option(evaluate, "dataset folder")
    model_option(evaluate)
    split_option(evaluate)
    evaluate.add_argument(
        "--manifest",
        type=Path,
        metavar="M.csv",
        help="take the split from this manifest instead of the model's own (e.g. `brat split "
        "--hold-out`); the model must never have trained on its images",
    )
    evaluate.add_argument(
        "--by-source", action="store_true", help="every metric per source of the images too"
    )
    evaluate.add_argument(
        "--studies",
        choices=STUDY_RULES,
        nargs="?",
        const=STUDY_RULES[0],
        help="also one verdict per study (the images of one patient group) by this rule over its "
        f"slices (default {STUDY_RULES[0]}, the rule `brat predict --study` uses; mean: the "
        "mean of every slice, the rule before it), and every misread study",
    )
    error_rate_option(evaluate)
    evaluate.add_argument("--json", type=Path, metavar="OUT", help="write the report ('-': stdout)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(handler=_evaluate)

    volumes = commands.add_parser(
        "evaluate-volumes",
        help="one verdict per whole labelled volume, and how its slices read by level",
        description="Reads every labelled volume as a study in each view plane it can be cut in, "
        "and reports study accuracy, the share answered with a "
        "class and their accuracy, every study, and per plane and level the no-tumour slices "
        "read as a tumour and the tumour slices found (slices of a tumour volume are told apart "
        f"by its mask). Slices and studies as `brat predict --study` reads them. {VOLUMES_HELP}.",
    )
    volumes_option(volumes)
    volumes.add_argument(
        "--groups",
        metavar="G,G",
        help="only the volumes of these groups (patients): a model's held-out ones",
    )
    volumes.add_argument(
        "--planes", default=",".join(PLANES), metavar="P,P", help="comma-separated (default: all)"
    )
    volumes.add_argument(
        "--rule",
        choices=STUDY_RULES,
        default=STUDY_RULES[0],
        help=f"the study rule (default {STUDY_RULES[0]}; mean: the rule before it, to compare)",
    )
    model_option(volumes)
    error_rate_option(volumes)
    volumes.add_argument("--json", type=Path, metavar="OUT", help="write the report ('-': stdout)")
    volumes.set_defaults(handler=_evaluate_volumes)

    localize = commands.add_parser(
        "localize",
        help="measure whether heatmaps point at the tumour masks",
        description="For every image of the split (from the model's manifest) that has a tumour "
        "mask: pointing game (heatmap maximum inside the mask, 15 px tolerance), heat inside the "
        "mask against the mask's area share, and IoU of the hottest 15% with the mask; per "
        "method, class and plane, with the worst cases.",
    )
    data_option(localize, "dataset folder")
    model_option(localize)
    split_option(localize)
    localize.add_argument(
        "--methods", default=",".join(METHODS), help="comma-separated (default: all)"
    )
    localize.add_argument("--limit", type=int, help="only the first N masked images")
    localize.add_argument("--json", type=Path, metavar="OUT", help="write the report ('-': stdout)")
    localize.add_argument("--quiet", action="store_true", help="no progress bar")
    localize.set_defaults(handler=_localize)

    compare = commands.add_parser(
        "compare",
        help="one model for all view planes against one model per plane, on the same test images",
        description="Evaluates the combined model (--model) and the three per-plane models on "
        "the combined model's held-out split, per plane: n, accuracy with its Wilson interval, "
        "tumour-class accuracy, macro-F1, ECE; and over all planes, the combined model against "
        "sending each image to its plane's model. Per-plane models default to the folders "
        "MODEL-axial, MODEL-coronal and MODEL-sagittal next to the combined model; train them "
        "with `brat train --manifest MODEL/manifest.csv --planes PLANES.csv --plane P`.",
    )
    data_option(compare, "dataset folder the models were trained on")
    compare.add_argument("--json", type=Path, default=Path("-"), metavar="OUT")
    model_option(compare)
    for plane in PLANES:
        compare.add_argument(
            f"--{plane}",
            type=Path,
            metavar="DIR",
            help=f"the {plane} model (default MODEL-{plane})",
        )
    split_option(compare)
    compare.set_defaults(handler=_compare)

    card = commands.add_parser(
        "card",
        help="write a model folder's MODEL_CARD.md from its measured numbers",
        description="Render MODEL/MODEL_CARD.md from brat.json, evaluation-test.json, "
        "crossval.json and the hand-written notes.md found in the model folder.",
    )
    card.add_argument("model", type=Path, help="model folder")
    card.set_defaults(handler=_card)

    bench = commands.add_parser(
        "bench",
        help="measure speed and memory on this machine",
        description="Cold start, warm brat.analyze p50/p95 against the peer path (model.predict "
        "+ tf-keras-vis Gradcam per image) on the same images, batch and training throughput, "
        "peak RSS. Images: the model's test split in --data, else generated slices.",
    )
    bench.add_argument("--json", type=Path, default=Path("-"), metavar="OUT")
    bench.add_argument("--data", type=Path, help="dataset folder the model was trained on")
    bench.add_argument("--images", type=int, default=40, help="images to time (default 40)")
    bench.add_argument("--quick", action="store_true", help="a few images (a smoke test)")
    model_option(bench)
    bench.set_defaults(handler=_bench)


def _evaluate(args: argparse.Namespace) -> int:
    from brat.data.manifest import read_manifest
    from brat.evaluation.evaluate import error_groups_text, evaluate
    from brat.evaluation.selective import selective_text
    from brat.inference.classifier import load_classifier

    classifier = load_classifier(args.model)
    manifest = read_manifest(args.manifest) if args.manifest else None
    result = evaluate(
        args.data,
        classifier,
        args.split,
        manifest=manifest,
        by_source=args.by_source,
        progress=not args.quiet,
        error_rate=args.error_rate,
    )
    studies = None
    if args.studies:
        from brat.evaluation.evaluate import split_records
        from brat.evaluation.studies import study_report

        records = split_records(args.data, classifier, args.split, manifest)
        studies = study_report(result, records, args.studies)
    if args.json:
        write_json({**result.to_json(), **({"studies": studies} if studies else {})}, args.json)
    if str(args.json) != "-":
        m = result.metrics
        low, high = m.accuracy_ci95
        print(
            f"{result.split}: n {m.n}, accuracy {m.accuracy:.4f} (95% CI {low:.4f}-{high:.4f}), "
            f"tumour classes {m.tumour_accuracy:.4f}, macro-F1 {m.macro_f1:.4f}, "
            f"ECE {m.ece_uncalibrated:.4f} -> {m.ece:.4f}, "
            f"{len(result.misclassified)} misclassified"
        )
        if clusters := error_groups_text(result.error_groups, result.groups_n):
            print(clusters)
        print(f"  {selective_text(result.selective)}")
        for source, s in (result.by_source or {}).items():
            recalls = ", ".join(
                f"{c} {v['recall']:.3f}" for c, v in s.per_class.items() if v["support"]
            )
            print(
                f"  {source}: n {s.n}, accuracy {s.accuracy:.4f} ({s.accuracy_ci95[0]:.4f}-"
                f"{s.accuracy_ci95[1]:.4f}), tumour classes {s.tumour_accuracy:.4f}, "
                f"ECE {s.ece:.4f}; recall {recalls}"
            )
            print(f"    {selective_text(result.selective_by_source[source])}")
        if studies:
            from brat.evaluation.studies import study_text

            print(study_text(studies))
    return 0


def _evaluate_volumes(args: argparse.Namespace) -> int:
    from brat.data.volumes import find_volumes
    from brat.evaluation.volumes import evaluate_volumes, volumes_text
    from brat.inference.analysis import explainer_for

    volumes = find_volumes(args.volumes, args.labels)
    if args.groups:
        groups = set(args.groups.split(","))
        volumes = [v for v in volumes if v.group in groups]
        if not volumes:
            raise ValueError(f"no volume of the groups {sorted(groups)} in {args.volumes}")
    planes = tuple(p.strip() for p in args.planes.split(",") if p.strip())
    if not planes or set(planes) - set(PLANES):
        raise ValueError(f"--planes takes some of {', '.join(PLANES)}; got {args.planes!r}")
    report = evaluate_volumes(
        args.volumes, volumes, explainer_for(args.model), planes, args.error_rate, args.rule
    )
    if args.json:
        write_json(report, args.json)
    if str(args.json) != "-":
        print(volumes_text(report))
    return 0


def _localize(args: argparse.Namespace) -> int:
    from brat.evaluation.localize import localize
    from brat.inference.analysis import explainer_for

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    report = localize(
        args.data,
        explainer_for(args.model),
        args.split,
        methods=methods,
        limit=args.limit,
        progress=not args.quiet,
    )
    if args.json:
        write_json(report.to_json(), args.json)
    if str(args.json) != "-":
        for method, summary in report.methods.items():
            print(
                f"{method}: {summary['n']} images, pointing game {summary['pointing_game']:.3f}, "
                f"heat in mask {summary['energy_in_mask']:.3f} vs area {summary['mask_share']:.3f} "
                f"({summary['energy_over_share']:.1f}x), top-15% IoU {summary['iou_top15']:.3f}"
            )
    return 0


def _compare(args: argparse.Namespace) -> int:
    from brat.evaluation.compare import compare_planes
    from brat.inference.classifier import load_classifier

    combined = load_classifier(args.model)
    per_plane = {
        plane: load_classifier(
            getattr(args, plane) or combined.path.with_name(f"{combined.path.name}-{plane}")
        )
        for plane in PLANES
    }
    report = compare_planes(args.data, combined, per_plane, split=args.split)
    write_json(report.to_json(), args.json)
    if str(args.json) != "-":
        for plane, row in [*report.planes.items(), ("all", report.all)]:
            a, b = row["combined"], row["per_plane"]
            print(
                f"{plane:>8}: n {row['n']:4d}  combined {a['accuracy']:.1%}  "
                f"per-plane {b['accuracy']:.1%}"
            )
    return 0


def _card(args: argparse.Namespace) -> int:
    from brat.evaluation.model_card import write_card

    print(f"wrote {write_card(args.model)}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from brat.evaluation.bench import run_bench

    write_json(run_bench(args.model, args.data, args.images, args.quick), args.json)
    return 0
