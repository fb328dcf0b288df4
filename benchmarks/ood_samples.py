"""Pictures that are not brain MRI slices, for measuring the out-of-distribution check offline.

Sample images that ship with installed packages (scikit-image, matplotlib, scikit-learn: photos,
a cat, faces, documents, a retina photograph, a CT phantom, astronomy, textures), each also in
greyscale, cropped and rotated, plus generated ones: blank frames, noise, gradients,
checkerboards, document pages, screenshots and random shapes. Every sample is PNG bytes with a
category, ready for `brat.data.decode`.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif"}


def _package_folder(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)), *parts)
    return folder if folder.is_dir() else None


def package_pictures() -> dict[str, Image.Image]:
    """name -> picture for every sample picture of the installed packages (none if absent)."""
    pictures = {}
    for package, parts in (
        ("skimage", ("data",)),
        ("matplotlib", ("mpl-data", "sample_data")),
        ("sklearn", ("datasets", "images")),
    ):
        folder = _package_folder(package, *parts)
        for path in sorted(folder.iterdir()) if folder else []:
            if path.suffix.lower() in PHOTO_SUFFIXES:
                try:
                    picture = Image.open(path).convert("RGB")
                except OSError:
                    continue
                if min(picture.size) >= 32:  # skip icons: decode refuses tiny pictures
                    pictures[f"{package}/{path.name}"] = picture
    faces = _package_folder("skimage", "data")
    if faces and (faces / "lfw_subset.npy").is_file():
        for i, face in enumerate(np.load(faces / "lfw_subset.npy")[::20]):
            pictures[f"skimage/lfw_face_{i}"] = Image.fromarray(np.uint8(face * 255)).resize(
                (100, 100)
            )
    return pictures


def package_mri() -> dict[str, bytes]:
    """Brain MRI slices that ship with packages (matplotlib's s1045.ima), as PNG: in-distribution
    pictures from another source, reported apart."""
    folder = _package_folder("matplotlib", "mpl-data", "sample_data")
    path = folder / "s1045.ima.gz" if folder else None
    if not path or not path.is_file():
        return {}
    values = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint16).reshape(256, 256)
    scaled = (values.astype(np.float64) / max(1, values.max()) * 255).astype(np.uint8)
    return {"matplotlib/s1045.ima": _png(Image.fromarray(scaled))}


def _variants(name: str, picture: Image.Image) -> dict[str, Image.Image]:
    width, height = picture.size
    crop = picture.crop((width // 4, height // 4, width * 3 // 4, height * 3 // 4))
    return {
        f"{name}": picture,
        f"{name} grey": picture.convert("L"),
        f"{name} crop": crop,
        f"{name} grey rotated": picture.convert("L").rotate(90, expand=True),
    }


def generated_pictures(seed: int = 0) -> dict[str, tuple[str, Image.Image]]:
    """name -> (category, picture) of generated non-MRI pictures."""
    rng = np.random.default_rng(seed)
    size = 256
    out: dict[str, tuple[str, Image.Image]] = {}
    for value in (0, 128, 255):
        out[f"blank {value}"] = ("blank", Image.new("L", (size, size), value))
    for i in range(5):
        out[f"uniform noise {i}"] = (
            "noise",
            Image.fromarray(rng.integers(0, 256, (size, size), np.uint8)),
        )
        gaussian = np.clip(rng.normal(128, 40, (size, size, 3)), 0, 255).astype(np.uint8)
        out[f"gaussian noise {i}"] = ("noise", Image.fromarray(gaussian))
    ramp = np.linspace(0, 255, size)
    for i, array in enumerate((np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)))):
        out[f"linear gradient {i}"] = ("gradient", Image.fromarray(array.astype(np.uint8)))
        out[f"linear gradient {i} reversed"] = (
            "gradient",
            Image.fromarray(255 - array.astype(np.uint8)),
        )
    y, x = np.mgrid[:size, :size]
    for i, (cy, cx) in enumerate(((128, 128), (60, 200), (200, 60))):
        radial = 255 - np.clip(np.hypot(y - cy, x - cx) * 1.4, 0, 255)
        out[f"radial gradient {i}"] = ("gradient", Image.fromarray(radial.astype(np.uint8)))
    for cell in (8, 32, 64):
        board = ((y // cell + x // cell) % 2 * 255).astype(np.uint8)
        out[f"checkerboard {cell}"] = ("pattern", Image.fromarray(board))
    font = ImageFont.load_default(size=14)
    words = ["patient", "report", "findings", "impression", "contrast", "slice", "lesion"]
    for i in range(6):
        page = Image.new("L", (420, 560), 255)
        draw = ImageDraw.Draw(page)
        for line in range(30):
            text = " ".join(rng.choice(words, size=int(rng.integers(4, 9))))
            draw.text((20, 15 + line * 18), text, fill=0, font=font)
        out[f"document {i}"] = ("document", page)
    for i in range(6):
        screen = Image.new("RGB", (640, 400), tuple(int(v) for v in rng.integers(200, 256, 3)))
        draw = ImageDraw.Draw(screen)
        draw.rectangle((0, 0, 640, 36), fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
        for _ in range(8):
            x0, y0 = int(rng.integers(10, 500)), int(rng.integers(50, 330))
            draw.rectangle((x0, y0, x0 + int(rng.integers(40, 130)), y0 + 28), outline=(90, 90, 90))
            draw.text((x0 + 6, y0 + 6), str(rng.choice(words)), fill=(20, 20, 20), font=font)
        out[f"screenshot {i}"] = ("screenshot", screen)
    for i in range(6):
        canvas = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(canvas)
        for _ in range(12):
            box = (
                sorted(rng.integers(0, size, 2).tolist()),
                sorted(rng.integers(0, size, 2).tolist()),
            )
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            draw.ellipse((box[0][0], box[1][0], box[0][1], box[1][1]), fill=colour)
        out[f"shapes {i}"] = ("shapes", canvas)
    return out


def not_mri_samples(seed: int = 0) -> list[tuple[str, str, bytes]]:
    """(name, category, PNG bytes) of every non-MRI sample."""
    samples = []
    for name, picture in package_pictures().items():
        for variant, image in _variants(name, picture).items():
            samples.append((variant, "package picture", _png(image)))
    for name, (category, image) in generated_pictures(seed).items():
        samples.append((name, category, _png(image)))
    return samples


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
