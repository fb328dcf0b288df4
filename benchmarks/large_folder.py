"""Does a huge folder stall the app? Times `brat.analyze` on a sample scan while another thread
walks a folder of more files than the app allows (`brat.data.access.survey`, refused at the
limit), as a second session of the app would meet it.

    python -m benchmarks.large_folder [--files 200001] [--folder DIR]

Prints JSON: the analysis' p50 / p95 alone and during 10 s of walks repeated back to back, how
long one walk took to be refused, and the message a user sees.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

SCAN = Path(__file__).resolve().parents[1] / "samples" / "pituitary_tumor" / "fs1361.jpg"


def make_folder(folder: Path, files: int) -> None:
    """`files` empty .png files in folders of 1,000."""
    for i in range(files):
        block = folder / f"part{i // 1000:04d}"
        if i % 1000 == 0:
            block.mkdir(parents=True, exist_ok=True)
        (block / f"{i}.png").touch()


def timings(explainer, seconds: float | None = None, count: int = 40) -> list[float]:
    import brat

    data = SCAN.read_bytes()
    found, started = [], time.perf_counter()
    while len(found) < count or (seconds and time.perf_counter() - started < seconds):
        begin = time.perf_counter()
        brat.analyze(data, "gated-layercam", model=explainer)
        found.append(time.perf_counter() - begin)
        if seconds and time.perf_counter() - started >= seconds:
            break
    return found


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "n": len(times),
        "p50_ms": round(1000 * statistics.median(times), 1),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_001)
    parser.add_argument("--folder", type=Path, help="where to make it (default: a temp folder)")
    args = parser.parse_args()

    from brat.data.access import MAX_FILES, survey
    from brat.errors import BratError
    from brat.inference.analysis import explainer_for
    from brat.inference.serving import limit_blas_threads

    limit_blas_threads()
    explainer = explainer_for()
    with tempfile.TemporaryDirectory(dir=args.folder) as temporary:
        folder = Path(temporary) / "huge"
        started = time.perf_counter()
        make_folder(folder, args.files)
        made = time.perf_counter() - started
        alone = timings(explainer)
        outcome = {}

        def walk() -> None:  # again and again for 10 s, as sessions retrying would
            outcome["walks"], stop = 0, time.perf_counter() + 10
            while time.perf_counter() < stop:
                begin = time.perf_counter()
                try:
                    survey(folder, [folder.parent], max_files=MAX_FILES)
                    outcome["message"] = "read"
                except BratError as error:
                    outcome["message"] = str(error)
                outcome["seconds"] = round(time.perf_counter() - begin, 2)
                outcome["walks"] += 1

        walker = threading.Thread(target=walk)
        walker.start()
        during = []
        while walker.is_alive():
            during += timings(explainer, count=1)
        walker.join()
    print(
        json.dumps(
            {
                "files": args.files,
                "seconds_to_make": round(made, 1),
                "walk_seconds": outcome["seconds"],
                "walks_in_10_s": outcome["walks"],
                "message": outcome["message"],
                "analysis_alone": summary(alone),
                "analysis_during_walk": summary(during),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
