"""Scoring an archive on a Dask cluster (`brat.cluster`): `brat predict FILES --cluster ADDRESS`.

The files are cut into chunks; each chunk is a Dask task that scores its files with
`brat.inference.batch.scored_records` on a worker, which loads the model once (from the model
folder's path). Each record is the one `brat predict` writes on one machine, so labels and
probabilities equal `brat.analyze`'s. Records come back as chunks finish (not in file order), and
`--jsonl` output stays resumable as on one machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from brat.cluster import dask_client

# Files per task: large enough that each worker fills its model batches (128), small enough that
# a lost worker costs little to redo.
CHUNK = 512


def score_chunk(model: str, paths: list[str], error_rate: float) -> list[dict]:
    """The `prediction_record`s of `paths`, scored on the worker this runs on (the model is
    loaded once per worker process by `explainer_for`)."""
    from brat.inference.analysis import explainer_for
    from brat.inference.batch import scored_records
    from brat.inference.serving import limit_blas_threads

    limit_blas_threads()
    explainer = explainer_for(model)
    return list(scored_records(map(Path, paths), explainer, error_rate=error_rate))


def score_on_cluster(
    paths: list[Path], model: Path, address: str, error_rate: float, chunk: int = CHUNK
) -> Iterator[dict]:
    """Every path's record, scored on the Dask cluster at `address` (see the module docstring),
    yielded as its chunk finishes."""
    with dask_client(address) as client:
        from distributed import as_completed

        futures = [
            client.submit(
                score_chunk,
                str(model),
                [str(p) for p in paths[i : i + chunk]],
                error_rate,
                pure=False,
                retries=2,
            )
            for i in range(0, len(paths), chunk)
        ]
        for future in as_completed(futures):
            yield from future.result()
