"""The model card's section on its checks: not a brain MRI, prediction sets, unfamiliar scans."""

from __future__ import annotations

from pathlib import Path


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def checks_section(model_dir: Path, measured: dict | None) -> list[str]:
    """How the model says "not a brain MRI" and "uncertain", with the measured
    not-a-brain-MRI results (`python -m benchmarks.ood`) when given."""
    from brat.inference.conformal import ERROR_RATE, load_conformal
    from brat.inference.familiarity import FLAG_SHARE, load_familiarity
    from brat.inference.ood import OOD_FILE, PASS_QUANTILE, load_ood
    from brat.inference.verdict import UNCERTAIN_BELOW

    ood = load_ood(model_dir)
    lines = ["## Not a brain MRI, and uncertain answers", ""]
    if ood is None:
        return [*lines, f"_{OOD_FILE} is not there: this model does not check its inputs._", ""]
    lines.append(
        f"- An input whose out-of-distribution score (Mahalanobis distance of the pooled "
        f"`{ood.layer}` features to the nearest class centre) is above **{ood.threshold:.1f}** "
        f"is reported as *not a brain MRI* and gets no diagnosis. The threshold passes "
        f"{PASS_QUANTILE:.1%} of the validation slices."
    )
    conformal, familiarity = load_conformal(model_dir), load_familiarity(model_dir)
    if conformal is None:
        lines.append(
            f"- A brain MRI slice whose most likely class has a calibrated probability below "
            f"**{UNCERTAIN_BELOW:.0%}** is reported as *uncertain*."
        )
    else:
        lines.append(
            f"- Every scan gets a conformal prediction set ({conformal.score.upper()} through "
            f"MAPIE, calibrated on the {len(conformal.labels)} validation slices; error rate "
            f"{ERROR_RATE:.0%} unless the user picks another); a set of two or more classes "
            "makes the verdict *uncertain*."
        )
    if familiarity is not None:
        lines.append(
            f"- A slice whose distance to its {familiarity.k}th nearest training slice "
            f"(normalised penultimate features) is above **{familiarity.threshold:.3f}** is "
            f"*uncertain: unlike the training scans*; the threshold flags {FLAG_SHARE:.0%} of "
            "the validation slices."
        )
    if measured:
        lines += [
            f"- Measured (`python -m benchmarks.ood`): {measured['mri_test_images']} test slices "
            f"against {measured['non_mri_pictures']} other pictures (package sample photos, "
            "documents, screenshots, noise, gradients, patterns, shapes): ROC AUC "
            f"{measured['auroc']:.4f}; {_percent(measured['mri_rejected'])} of the test slices "
            f"rejected, {_percent(measured['non_mri_accepted'])} of the other pictures accepted.",
        ]
    return [*lines, ""]
