"""Time and memory of one verdict for a 200-slice study, and of Grad-CAM maps for all its slices.

    python -m benchmarks.study_speed [--slices 200]

The study is the bundled sample slices repeated (decoded before timing). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from brat.data.decode import read_image
from brat.data.preprocess import prepare_slice
from brat.data.studies import Study
from brat.inference.analysis import explainer_for
from brat.inference.serving import limit_blas_threads
from brat.inference.study import BATCH_SIZE, analyze_study
from brat.settings import SAMPLES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    args = parser.parse_args()
    limit_blas_threads()
    explainer = explainer_for()
    size = explainer.classifier.image_size
    base = [read_image(path) for path in sorted(SAMPLES.glob("*_tumor/*.jpg"))]
    slices = [base[i % len(base)] for i in range(args.slices)]
    study = Study("bench", "images", slices, list(range(len(slices))), None)
    analyze_study(Study("warm-up", "images", slices[:8], list(range(8)), None), explainer)
    started = time.perf_counter()
    analyze_study(study, explainer)
    verdict = time.perf_counter() - started
    started = time.perf_counter()
    prepared = np.stack([prepare_slice(pixels, size)[0] for pixels in slices])
    for i in range(0, len(prepared), BATCH_SIZE):
        explainer.predict(prepared[i : i + BATCH_SIZE], "gradcam")
    maps = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "slices": args.slices,
                "verdict_seconds": round(verdict, 2),
                "gradcam_maps_seconds": round(maps, 2),
                "peak_rss_mb": round(peak),
            }
        )
    )


if __name__ == "__main__":
    main()
