"""One row per image of a dataset folder, for browsing: its class, view plane and split.

The split is the folder's own (Training/Testing), or that of a reference model trained on this
folder (`brat.model_folder.split_for_folder`: the same rule training uses to keep that model's
held-out images held out), so a browser sees which images a model never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from brat.data.dataset import load_dataset
from brat.model_folder import split_for_folder


@dataclass(frozen=True)
class ImageRow:
    path: str
    label: str  # "unlabelled" when the folder does not say
    plane: str  # "unknown" until labelled or predicted
    plane_source: str  # "label", "predicted 93%", or ""
    split: str  # train / val / test, the folder's own split, "unsplit" or "excluded"


def image_rows(data_root: str | Path, reference_model: str | Path | None = None) -> list[ImageRow]:
    """Every image of `data_root`; the split is `reference_model`'s where it trained on this
    folder (images its manifest left out are "excluded"), else the folder's own."""
    dataset = load_dataset(data_root)
    manifest = split_for_folder(reference_model, data_root) if reference_model else None
    split_of = {row.path: row.split for row in manifest or []}
    return [
        ImageRow(
            path=r.path,
            label=r.label or "unlabelled",
            plane=r.plane or "unknown",
            plane_source="label" if r.plane else "",
            split=split_of.get(r.path, "excluded") if manifest else r.original_split or "unsplit",
        )
        for r in dataset.records
    ]


def with_predicted_planes(rows: list[ImageRow], predictions) -> list[ImageRow]:
    """`rows` with the planes a plane classifier predicted (`brat.inference.planes.
    predict_planes`) where no hand label gives one."""
    predicted = {p.path: p for p in predictions if p.plane and p.source == "predicted"}
    return [
        replace(row, plane=p.plane, plane_source=f"predicted {p.confidence:.0%}")
        if row.plane == "unknown" and (p := predicted.get(row.path))
        else row
        for row in rows
    ]
