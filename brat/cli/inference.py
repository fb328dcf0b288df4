"""Commands that use a trained model: predict, explain, report, export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from brat import CLASSES
from brat.cli.common import error_rate_option, model_option, site_option, write_json
from brat.labels import METHODS, SHOWN_METHOD


def add_commands(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="classify scans or folders of scans; say which are uncertain or not brain MRI",
        description="Per file: label, calibrated probabilities, prediction_set (every class "
        "the model cannot rule out at --error-rate), in_distribution and ood_score (higher = less "
        "like a brain MRI slice), familiar and familiarity_score (higher = less like the training "
        "slices), verdict (the label, 'uncertain' or 'not a brain MRI') with its reasons, or "
        "error for a file that cannot be read. One bad file never stops the others. Folders are "
        "read recursively; scans are decoded in threads and classified in batches, without "
        "heatmaps (`brat explain` draws them).",
    )
    predict.add_argument(
        "files", nargs="+", type=Path, help="image files (JPEG, PNG, BMP, TIFF, DICOM) or folders"
    )
    output = predict.add_mutually_exclusive_group()
    output.add_argument(
        "--json", type=Path, default=Path("-"), metavar="OUT", help="one JSON list (default stdout)"
    )
    output.add_argument(
        "--jsonl",
        type=Path,
        metavar="OUT",
        help="JSON Lines, one scan per line, written as it goes; run again to resume: the scans "
        "already in OUT are skipped",
    )
    model_option(predict)
    error_rate_option(predict)
    studies = predict.add_mutually_exclusive_group()
    studies.add_argument(
        "--study",
        action="store_true",
        help="each argument is one study: a folder of one DICOM series, a multi-frame DICOM or "
        "a NIfTI volume (.nii, .nii.gz); one verdict per study from all its slices, with each "
        "slice's probabilities (brat.inference.study)",
    )
    studies.add_argument(
        "--one-study", action="store_true", help="the image files given are the slices of one study"
    )
    predict.add_argument(
        "--plane",
        choices=("axial", "coronal", "sagittal"),
        default="axial",
        help="the plane a NIfTI volume is cut in (default axial)",
    )
    predict.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="score on a Dask cluster: a scheduler address (tcp://host:8786) or local:N for N "
        "worker processes here; every worker must see the files and the model folder at the "
        "same paths (brat.inference.distributed)",
    )
    site_option(predict)
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    audit_options(predict)
    predict.set_defaults(handler=_predict)

    explain = commands.add_parser(
        "explain",
        help="classify scans and write heatmap overlays (original | overlay) as PNG",
        description="For each FILE: the calibrated prediction and a class-activation map on the "
        "original image, written to DIR as NAME-METHOD.png. Unreadable files are reported and "
        "skipped.",
    )
    explain.add_argument("files", type=Path, nargs="+", metavar="FILE", help="scans to explain")
    explain.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    explain.add_argument(
        "--method",
        choices=METHODS,
        default=SHOWN_METHOD,
        help=f"default {SHOWN_METHOD}, the one that points at the tumour most often",
    )
    explain.add_argument(
        "--target-class", choices=CLASSES, help="class to explain (default: the predicted one)"
    )
    explain.add_argument("--opacity", type=float, default=0.45, help="heatmap opacity, 0-1")
    model_option(explain)
    explain.set_defaults(handler=_explain)

    report = commands.add_parser(
        "report",
        help="write one PDF report of scans: a summary page, then one page per scan",
        description="One PDF, the same the app's Diagnose page makes: for each readable SCAN a "
        "page with the verdict, prediction set, calibrated probabilities, the scan and its "
        "heatmap overlay, the model's and the input's SHA-256 and the research-use notice; with "
        "several scans (or an unreadable one) a summary table first, where an unreadable file's "
        "row says why. The PDF is written even when some files are unreadable; the exit status "
        "is then 1.",
    )
    report.add_argument("files", type=Path, nargs="+", metavar="SCAN", help="scans to report")
    report.add_argument("--out", type=Path, required=True, metavar="PDF", help="the PDF to write")
    report.add_argument("--case-id", metavar="ID", help="your identifier of the case (optional)")
    report.add_argument(
        "--method",
        choices=METHODS,
        default=SHOWN_METHOD,
        help=f"heatmap method, default {SHOWN_METHOD}, the one that points at the tumour most "
        "often",
    )
    report.add_argument("--opacity", type=float, default=0.45, help="heatmap opacity, 0-1")
    report.add_argument(
        "--study",
        action="store_true",
        help="the SCANs are one study (a NIfTI volume, a DICOM series folder or multi-frame file, "
        "or several slices): its verdict, the per-slice strip and its strongest slices",
    )
    report.add_argument(
        "--plane", choices=("axial", "coronal", "sagittal"), default="axial", help="for a volume"
    )
    model_option(report)
    site_option(report)
    error_rate_option(report)
    audit_options(report)
    report.set_defaults(handler=_report)

    export = commands.add_parser(
        "export",
        help="export a model for TensorFlow Serving, TensorFlow Lite or ONNX Runtime",
        description="Writes the classifier (prepared slice in, logits out) in the chosen format, "
        "with brat.json (classes, calibration temperature, input contract) beside it.",
    )
    export.add_argument("--format", choices=("savedmodel", "tflite", "onnx"), required=True)
    export.add_argument("--out", type=Path, required=True, help="output folder")
    model_option(export)
    export.set_defaults(handler=_export)


def _predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from brat import audit
    from brat.errors import BratError
    from brat.inference.analysis import explainer_for
    from brat.inference.batch import scan_files, scored_records
    from brat.inference.distributed import score_on_cluster
    from brat.model_folder import read_meta
    from brat.settings import active_model_path

    if args.cluster and (args.study or args.one_study):
        raise BratError("--cluster scores single scans; studies are read on this machine.")
    if args.cluster and args.site:
        raise BratError("--cluster scores with the model's own calibration; drop --site.")
    model = explainer = None
    if args.cluster:
        model = Path(args.model or active_model_path()).resolve()
        read_meta(model)  # a model folder: a clear error here, not on every worker
    else:
        explainer = explainer_for(args.model, args.site)
    if args.study or args.one_study:
        return _predict_studies(args, explainer)
    files = scan_files(args.files)
    done = read_jsonl_paths(args.jsonl) if args.jsonl else set()
    todo = [path for path in files if str(path) not in done]
    if args.cluster:
        records = score_on_cluster(todo, model, args.cluster, args.error_rate)
    else:
        records = scored_records(todo, explainer, error_rate=args.error_rate)
    records = tqdm(records, total=len(todo), unit="scan", disable=args.quiet, file=sys.stderr)
    if args.audit:
        records = audit.logged(records, model or explainer, file_names=args.audit_file_names)
    if args.jsonl:
        failed = append_jsonl(records, args.jsonl)
    else:
        results = list(records)
        write_json(results, args.json)
        failed = sum("error" in r for r in results)
    return 0 if failed == 0 else 1


def _predict_studies(args: argparse.Namespace, explainer) -> int:
    """One record per study (`brat predict --study`); a study that cannot be read gets its
    error, and the others go on."""
    from brat import audit
    from brat.data.studies import read_study
    from brat.errors import UnreadableImageError
    from brat.inference.study import analyze_study

    sources = [list(args.files)] if args.one_study else list(args.files)
    results, failed = [], 0
    for source in sources:
        name = str(source[0].parent if isinstance(source, list) else source)
        try:
            study = read_study(source, args.plane)
            result = analyze_study(study, explainer, args.error_rate)
            results.append(result.to_json())
            if args.audit:
                audit.record_study(
                    result, file_hashes=_file_hashes(source), model=explainer, origin="predict"
                )
        except UnreadableImageError as error:
            results.append({"study": name, "error": str(error), "error_kind": error.kind})
            failed += 1
    if args.jsonl:
        append_jsonl(results, args.jsonl)
    else:
        write_json(results, args.json)
    return 1 if failed else 0


def _file_hashes(source) -> list[str]:
    """The SHA-256 of each file of a study (a file, a folder's files, or a list), in order."""
    from brat.files import sha256_file

    paths = source if isinstance(source, list) else [source]
    if len(paths) == 1 and paths[0].is_dir():
        paths = sorted(p for p in paths[0].iterdir() if p.is_file() and not p.name.startswith("."))
    return [sha256_file(path) for path in paths]


def read_jsonl_paths(path: Path) -> set[str]:
    """The paths already scored in a JSON Lines file; a last line cut short by a crash is
    dropped from the file, so its scan is scored again."""
    if not path.is_file():
        return set()
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]
    if complete != text:
        path.write_text(complete, encoding="utf-8")
    return {json.loads(line)["path"] for line in complete.splitlines() if line.strip()}


def append_jsonl(records, path: Path) -> int:
    """Append each record as one line, flushed as it is written; the number with an error."""
    failed = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            failed += "error" in record
    return failed


def _explain(args: argparse.Namespace) -> int:
    from brat.errors import UnreadableImageError
    from brat.inference.analysis import analyze, explainer_for
    from brat.inference.render import overlay, png_bytes, side_by_side

    explainer = explainer_for(args.model)
    failed = 0
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        try:
            result = analyze(path, args.method, args.target_class, model=explainer)
        except UnreadableImageError as error:
            print(f"{path}: skipped: {error}", file=sys.stderr)
            failed += 1
            continue
        panel = side_by_side(result.pixels, overlay(result.pixels, result.heatmap, args.opacity))
        caption = (
            f"{path.name}: {result.label} {result.confidence:.1%}; {args.method} heatmap of "
            f"{result.target_class}"
        )
        destination = args.out / f"{path.stem}-{args.method}.png"
        destination.write_bytes(png_bytes(panel, caption))
        print(f"{caption} -> {destination}")
    return 1 if failed else 0


def audit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-audit",
        dest="audit",
        action="store_false",
        help="do not log this run in the audit trail ($BRAT_HOME/audit; `brat audit` prints it)",
    )
    parser.add_argument(
        "--audit-file-names",
        action="store_true",
        default=None,
        help="log file names in the audit trail for this run (off unless the settings allow it)",
    )


def _report(args: argparse.Namespace) -> int:
    from brat.errors import BratError
    from brat.files import atomic_write_bytes
    from brat.inference.analysis import explainer_for
    from brat.inference.pdf_report import pdf_report
    from brat.model_folder import MODEL_FILE

    explainer = explainer_for(args.model, args.site)
    if args.study:
        return _study_report(args, explainer)
    scans = [_report_scan(path, explainer, args) for path in args.files]
    model_path = explainer.classifier.path
    report = pdf_report(
        scans, model_path=model_path, model_file=model_path / MODEL_FILE, case_id=args.case_id
    )
    try:
        atomic_write_bytes(args.out, report)
    except OSError as error:
        raise BratError(f"Cannot write {args.out} ({error}).") from error
    print(f"wrote {args.out}")
    return 1 if any(scan.analysis is None for scan in scans) else 0


def _study_report(args: argparse.Namespace, explainer) -> int:
    from brat import audit
    from brat.data.studies import read_study
    from brat.files import atomic_write_bytes, sha256_bytes
    from brat.inference.study import analyze_study
    from brat.inference.study_report import study_pdf

    source = args.files[0] if len(args.files) == 1 else list(args.files)
    study = read_study(source, args.plane)
    result = analyze_study(study, explainer, args.error_rate)
    hashes = _file_hashes(source)
    if args.audit:
        audit.record_study(result, file_hashes=hashes, model=explainer, origin="report")
    digest = sha256_bytes("".join(sorted(hashes)).encode())
    report = study_pdf(
        result, study, explainer, study_sha256=digest, method=args.method, case_id=args.case_id
    )
    atomic_write_bytes(args.out, report)
    print(f"{result.name}: {result.verdict} (top class {result.label}) -> {args.out}")
    if result.left_out:
        print(f"{result.name}: left out {result.left_out}", file=sys.stderr)
    return 0


def _report_scan(path: Path, explainer, args: argparse.Namespace):
    """The `ReportScan` of one file: analysed from the bytes its SHA-256 is taken of, or the
    reason it cannot be read (printed as it goes)."""
    from brat.data.decode import read_bytes
    from brat.errors import UnreadableImageError, error_kind
    from brat.files import sha256_bytes
    from brat.inference.analysis import analyze
    from brat.inference.pdf_report import report_scan

    digest, data = "", None
    try:
        data, name = read_bytes(path)
        digest = sha256_bytes(data)
        result = analyze(data, args.method, model=explainer, name=name, error_rate=args.error_rate)
    except UnreadableImageError as error:
        reason = f"{error_kind(error)}: {error}"
        print(f"{path}: unreadable: {reason}", file=sys.stderr)
        _audit_report(args, explainer, path, data, None, reason)
        return report_scan(path.name, digest, None, reason)
    print(f"{path}: {result.verdict} (top class {result.label}, {result.confidence:.1%})")
    _audit_report(args, explainer, path, data, result, None)
    return report_scan(path.name, digest, result, opacity=args.opacity)


def _audit_report(args, explainer, path: Path, data: bytes | None, result, error) -> None:
    from brat import audit

    if args.audit:
        audit.record_analysis(
            result,
            data=data,
            model=explainer,
            file_name=path.name,
            method=args.method,
            file_names=args.audit_file_names,
            error=error,
            origin="report",
        )


def _export(args: argparse.Namespace) -> int:
    from brat.inference.classifier import load_classifier
    from brat.inference.export import export_model

    print(f"wrote {export_model(load_classifier(args.model), args.format, args.out)}")
    return 0
