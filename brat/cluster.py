"""A Dask cluster for work that outgrows one machine: scoring an archive (`brat predict
--cluster`) and training cross-validation rounds side by side (`brat crossval --cluster`).

ADDRESS is a running scheduler (`tcp://host:8786`, from `dask scheduler` on one machine and
`dask worker tcp://host:8786` on each of the others, or any Dask deployment: Kubernetes, SLURM,
cloud), or `local:N`, a cluster of N worker processes on this machine (how the tests run it).
Every worker must see the data, the model folders and the work folders at the same paths (a shared
file system). Dask (`dask[distributed]`) was chosen over Ray or Spark: pure Python, it schedules
plain functions with retries when a worker dies, and its local cluster starts in seconds with no
JVM and no object store. Keras 3 cannot train one model across machines with TensorFlow's
MultiWorkerMirroredStrategy (keras-team/keras#20585; `model.fit` fails while building the model,
reproduced here with Keras 3.15.1 and TensorFlow 2.21.0), so a training run stays on one machine
and the cluster runs several of them at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from brat.errors import BratError


@contextmanager
def dask_client(address: str) -> Iterator:
    """A `distributed.Client` connected to `address` (see the module docstring); a `local:N`
    cluster is closed on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:
        raise BratError(
            "Working on a cluster needs Dask: pip install 'dask[distributed]'."
        ) from error
    cluster = None
    if address.startswith("local:"):
        cluster = LocalCluster(
            n_workers=_local_workers(address),
            threads_per_worker=1,
            processes=True,
            memory_limit=0,  # brat's own limits apply; a training run would be paused at 80%
            dashboard_address=None,
        )
        address = cluster.scheduler_address
    try:
        with Client(address, timeout="30s") as client:
            yield client
    except OSError as error:  # no scheduler at that address, or it went away
        raise BratError(f"Cannot work on the Dask cluster at {address}: {error}") from error
    finally:
        if cluster is not None:
            cluster.close()


def _local_workers(address: str) -> int:
    try:
        workers = int(address.removeprefix("local:"))
    except ValueError:
        workers = 0
    if workers < 1:
        raise BratError(f"`{address}`: write local:N with N, the number of workers, at least 1.")
    return workers
