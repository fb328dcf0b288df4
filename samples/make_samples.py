"""How this folder was made (kept for provenance; the app and tests only read the images).

    python samples/make_samples.py BRAIN_MRI MODEL_MANIFEST MNI_SLICES

BRAIN_MRI is the development dataset (figshare + Br35H with metadata.csv), MODEL_MANIFEST the
shipped model's manifest.csv (samples come from its test split only, so no sample was trained on),
MNI_SLICES a folder of PNG slices cut from nilearn's copy of the MNI ICBM152 2009a template with a
metadata.csv (path,label,group,plane,source). Br35H's licence is unknown, so no Br35H image is here.
"""

import csv
import random
import shutil
import sys
from pathlib import Path

PER_TUMOUR_CLASS = 4
TEMPLATE_SLICES = ("axial-063", "axial-087", "coronal-125", "sagittal-092")
FIELDS = ("path", "label", "group", "plane", "mask", "source")
# View planes of the chosen slices that the dataset does not label, labelled by looking at them.
PLANES_BY_EYE = {
    "glioma_tumor/fs2103.jpg": "axial",
    "meningioma_tumor/fs0063.jpg": "axial",
    "meningioma_tumor/fs0248.jpg": "coronal",
    "meningioma_tumor/fs0473.jpg": "sagittal",
    "meningioma_tumor/fs0522.jpg": "sagittal",
    "pituitary_tumor/fs1336.jpg": "axial",
}


def main(brain_mri: Path, manifest: Path, mni_slices: Path, out: Path) -> None:
    metadata = {r["path"]: r for r in csv.DictReader((brain_mri / "metadata.csv").open())}
    test = [
        r["path"].removeprefix("brain-mri/")
        for r in csv.DictReader(manifest.open())
        if r["split"] == "test" and r["source"].startswith("figshare")
    ]
    rows = []
    for label in ("glioma_tumor", "meningioma_tumor", "pituitary_tumor"):
        pool = sorted(p for p in test if p.startswith(f"{label}/"))
        planed = [p for p in pool if metadata[p]["plane"]]
        others = random.Random(7).sample([p for p in pool if p not in planed], PER_TUMOUR_CLASS)
        for path in (planed + others)[:PER_TUMOUR_CLASS]:
            record = metadata[path]
            for name in (path, record["mask"]):
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(brain_mri / name, out / name)
            row = {field: record.get(field, "") for field in FIELDS}
            rows.append({**row, "plane": row["plane"] or PLANES_BY_EYE[path]})
    for name in TEMPLATE_SLICES:
        path = f"no_tumor/mni152-{name}.png"
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mni_slices / path, out / path)
        plane = name.split("-")[0]
        rows.append(
            {
                "path": path,
                "label": "no_tumor",
                "group": "mni152",
                "plane": plane,
                "mask": "",
                "source": "mni152-icbm2009a",
            }
        )
    with (out / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main(*map(Path, sys.argv[1:4]), Path(__file__).parent)
