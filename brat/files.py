"""Writing a file so that readers see its old content or its new content, never half of it, and
the SHA-256 of files and bytes. Every writer of lasting files in brat goes through here."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Let `write` fill a temporary file beside `path`, then rename it over `path`.

    The temporary name carries the process and thread, so concurrent writers never share one, and
    keeps the suffix (NumPy appends `.npz` to names without it). On failure it is removed and the
    error raised; the file at `path`, if any, is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(
        f".{path.stem}.{os.getpid()}-{threading.get_ident()}.tmp{path.suffix}"
    )
    try:
        write(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda temporary: temporary.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, data: dict | list) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks (model.keras: ~9 MB, a few ms)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_file_sha256(path: Path) -> str:
    """`sha256_file` of a model file, cached per path, size and modification time: a report or
    an audit line per scan does not re-read the model, and a model retrained at the same path is
    hashed again."""
    stat = Path(path).stat()
    return _cached_sha256(Path(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _cached_sha256(path: Path, mtime_ns: int, size: int) -> str:
    return sha256_file(path)
