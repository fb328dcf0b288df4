"""The model card's section on sites: the site profiles the model carries, and the learning curve
of adapting it to a site (`python -m benchmarks.site_adaptation ... --json
MODEL/site-adaptation.json`: every site scan tested once by a model adapted without it)."""

from __future__ import annotations

import json
from pathlib import Path

ADAPTATION_FILE = "site-adaptation.json"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def sites_section(model_dir: Path) -> list[str]:
    from brat.inference.conformal import ERROR_RATE
    from brat.inference.site import load_site_profile, site_names

    names = site_names(model_dir)
    curve_file = Path(model_dir) / ADAPTATION_FILE
    if not names and not curve_file.is_file():
        return []
    lines = ["## Sites", ""]
    for name in names:
        profile = load_site_profile(model_dir, name, "")
        lines.append(
            f"- site profile **{name}**: calibrated on {profile.n} of its labelled scans "
            f"({', '.join(f'{c} {n}' for c, n in profile.class_counts.items() if n)}); "
            f"temperature {profile.temperature:.3f}, ECE on those scans {profile.ece_before:.3f} "
            f"with the model's own calibration, {profile.ece_after:.3f} with the site's; "
            + (
                f"its prediction sets promise a {ERROR_RATE:.0%} error rate on that site"
                if profile.guarantees(ERROR_RATE)
                else f"too few scans for its own sets at {ERROR_RATE:.0%}"
            )
        )
    if names:
        lines.append("")
    if curve_file.is_file():
        curve = json.loads(curve_file.read_text(encoding="utf-8"))
        lines += _curve(curve)
    return lines


def _curve(curve: dict) -> list[str]:
    pooled = curve["pooled"]
    classes = sorted({c for row in pooled.values() for c in row["recall"]})
    lines = [
        f"Adapting this model to a site it never trained on ({curve['site_images']} labelled "
        f"scans, each tested once by a model adapted without it, recipe {curve['recipe']}):",
        "",
        "| labelled site scans per class | accuracy (95% CI) | "
        + " | ".join(f"{c} recall" for c in classes)
        + " | set coverage, mean size | answered, right | change on the model's validation split |",
        "|---" * (4 + len(classes)) + "|",
    ]
    for shots, row in pooled.items():
        low, high = row["accuracy_ci95"]
        forgetting = row.get("forgetting_points")
        lines.append(
            f"| {shots} | {_percent(row['accuracy'])} ({_percent(low)}–{_percent(high)}) | "
            + " | ".join(_percent(row["recall"].get(c, {}).get("recall")) for c in classes)
            + f" | {_percent(row['coverage'])}, {row['mean_set_size']:.2f} | "
            f"{_percent(row['answered'])}, {_percent(row['answered_accuracy'])} | "
            + ("—" if forgetting is None else f"{forgetting:+.1f} points")
            + " |"
        )
    return [*lines, ""]
