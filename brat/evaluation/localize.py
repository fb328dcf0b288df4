"""Do the heatmaps point at the tumour? Measured against tumour masks, per method, class and plane.

For every image of a split that has a tumour mask, each method's map of the image's true class is
placed on the original image and compared with the mask (the plane is the manifest's, else the
model's plane classifier's):
- pointing game: the map's maximum lies inside the mask, or within `tolerance` pixels of it;
- energy in mask: the share of the map's total heat inside the mask, against the mask's share of
  the image (a map that ignores the tumour gets about the area share; 3x or more means it points);
- IoU of the hottest 15% of the map with the mask.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from brat import DISCLAIMER
from brat.data.decode import decode_image
from brat.data.preprocess import prepare_slice
from brat.errors import DatasetError
from brat.inference.render import hottest_region
from brat.labels import METHODS

if TYPE_CHECKING:
    from brat.inference.explain import Explainer

TOLERANCE_PX = 15
WORST_CASES = 10
BATCH = 16


def image_scores(heatmap: np.ndarray, mask: np.ndarray, tolerance: int = TOLERANCE_PX) -> dict:
    """Pointing hit, energy in mask, mask area share and top-15% IoU of one map and its mask."""
    peak = np.unravel_index(int(heatmap.argmax()), heatmap.shape)
    side = 2 * tolerance + 1
    near = cv2.dilate(
        mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    )
    total = float(heatmap.sum())
    hottest = hottest_region(heatmap)
    union = int((hottest | mask).sum())
    return {
        "pointing": bool(near[peak]) and total > 0,
        "energy_in_mask": float(heatmap[mask].sum()) / total if total > 0 else 0.0,
        "mask_share": float(mask.mean()),
        "iou_top15": int((hottest & mask).sum()) / union if union else 0.0,
    }


@dataclass(frozen=True)
class Localization:
    """Where each method's heatmaps point, against the tumour masks (`localize`)."""

    model: str
    split: str
    images: int  # images of the split with a tumour mask
    tolerance_px: int  # the pointing game's tolerance
    # method -> n, pointing_game, energy_in_mask, mask_share, energy_over_share, iou_top15,
    # per_class, per_plane (the same per group) and the worst images
    methods: dict[str, dict]
    disclaimer: str = DISCLAIMER

    def to_json(self) -> dict:
        fields = ("model", "split", "images", "tolerance_px", "methods")
        return {"disclaimer": self.disclaimer, **{name: getattr(self, name) for name in fields}}

    @classmethod
    def from_json(cls, data: dict) -> Localization:
        return cls(**{k: data[k] for k in ("model", "split", "images", "tolerance_px", "methods")})


def localize(
    data_root: str | Path,
    explainer: Explainer,
    split: str = "test",
    *,
    methods: tuple[str, ...] = METHODS,
    limit: int | None = None,
    progress: bool = True,
) -> Localization:
    """The localisation report of `explainer`'s model on the masked images of `split`.

    `limit` takes only the first N masked images (a quick look; the report says how many).
    """
    from brat.inference.explain import to_image_space  # loads TensorFlow

    root = Path(data_root)
    classifier = explainer.classifier
    rows = [
        r for r in classifier.manifest_for(root) if r.mask and (split == "all" or r.split == split)
    ]
    if not rows:
        raise DatasetError(f"No image of the {split} split has a tumour mask.")
    rows = rows[:limit] if limit else rows
    per_image: dict[str, list[dict]] = defaultdict(list)
    for start in tqdm(
        range(0, len(rows), BATCH), desc="Localising", unit="batch", disable=not progress
    ):
        batch = rows[start : start + BATCH]
        decoded = [decode_image(root / r.path).pixels for r in batch]
        masks = [decode_image(root / r.mask).pixels > 0.5 for r in batch]
        prepared = [prepare_slice(pixels, classifier.image_size) for pixels in decoded]
        images = np.stack([image for image, _ in prepared])
        targets = np.array([classifier.classes.index(r.label) for r in batch])
        planes = [r.plane for r in batch]
        for method in methods:
            result = explainer.predict(images, method, targets)
            if classifier.planes and not all(planes):  # the plane classifier fills the gaps
                predicted = classifier.planes.predict(result.features, images)
                planes = [p or q for p, (q, _) in zip(planes, predicted, strict=True)]
            for row, plane, pixels, mask, (_, box), cam in zip(
                batch, planes, decoded, masks, prepared, result.maps, strict=True
            ):
                if mask.shape != pixels.shape:
                    mask = cv2.resize(mask.astype(np.uint8), pixels.shape[::-1]) > 0
                scores = image_scores(to_image_space(cam, box, pixels.shape), mask)
                per_image[method].append(
                    {"path": row.path, "label": row.label, "plane": plane, **scores}
                )
    return Localization(
        model=str(classifier.path),
        split=split,
        images=len(rows),
        tolerance_px=TOLERANCE_PX,
        methods={method: _summary(results) for method, results in per_image.items()},
    )


def _aggregate(results: list[dict]) -> dict:
    energy = float(np.mean([r["energy_in_mask"] for r in results]))
    share = float(np.mean([r["mask_share"] for r in results]))
    return {
        "n": len(results),
        "pointing_game": float(np.mean([r["pointing"] for r in results])),
        "energy_in_mask": energy,
        "mask_share": share,
        "energy_over_share": energy / share if share else 0.0,
        "iou_top15": float(np.mean([r["iou_top15"] for r in results])),
    }


def _summary(results: list[dict]) -> dict:
    by_class: dict[str, list[dict]] = defaultdict(list)
    by_plane: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_class[r["label"]].append(r)
        if r["plane"]:
            by_plane[r["plane"]].append(r)
    worst = sorted(results, key=lambda r: (r["pointing"], r["energy_in_mask"]))[:WORST_CASES]
    return {
        **_aggregate(results),
        "per_class": {name: _aggregate(group) for name, group in sorted(by_class.items())},
        "per_plane": {name: _aggregate(group) for name, group in sorted(by_plane.items())},
        "worst": worst,
    }
