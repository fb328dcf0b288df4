"""The audit command: the audit trail (`brat.audit`) as CSV."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path


def add_commands(commands) -> None:
    audit = commands.add_parser(
        "audit",
        help="print the audit trail (one row per analysed scan) as CSV",
        description="The audit trail of the app and `brat predict` in $BRAT_HOME/audit/, rotated "
        "files included, oldest first: time, origin, input_sha256, file_name (where allowed), "
        "model, model_sha256, verdict, label, one probability column per class, prediction_set, "
        "method and error. No patient field is ever logged.",
    )
    audit.add_argument(
        "--csv", type=Path, default=Path("-"), metavar="OUT", help="CSV file (default stdout: -)"
    )
    audit.add_argument(
        "--since",
        type=_date,
        metavar="DATE",
        help="only analyses from DATE on (ISO 8601: 2025-01-31 or 2025-01-31T14:00, UTC unless "
        "it says otherwise)",
    )
    audit.set_defaults(handler=_audit)


def _date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"DATE must be ISO 8601, like 2025-01-31. Received: {text!r}"
        ) from None


def _audit(args: argparse.Namespace) -> int:
    from brat.audit import read, to_csv

    records = read(args.since)
    if str(args.csv) == "-":
        to_csv(records, sys.stdout)
        return 0
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", encoding="utf-8", newline="") as stream:
        rows = to_csv(records, stream)
    print(f"{rows} analyses -> {args.csv}", file=sys.stderr)
    return 0
