"""Putting a freshly written folder in place of another, and finishing a swap a killed process left.

`swap_in` renames the folder at `out` aside (`.NAME.previous-PID`), renames the complete staging
folder (`.NAME.staging-PID`) to `out`, then deletes the old folder: readers see the old folder or
the new one, never a mix. A process killed between the two renames (kill -9, power loss) leaves
nothing at `out`. `recover` finishes such a swap from the staging folder the dead process left
(complete: the first rename happens only after it is written) or, without one, renames the previous
folder back; and it removes what dead processes left beside `out`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def staging_folder(out: Path, pid: int | None = None) -> Path:
    return out.parent / f".{out.name}.staging-{pid or os.getpid()}"


def previous_folder(out: Path, pid: int | None = None) -> Path:
    return out.parent / f".{out.name}.previous-{pid or os.getpid()}"


def swap_in(staging: Path, out: Path) -> None:
    """Replace `out` (if any) by `staging`; if that fails, the folder that was at `out` is put back
    and the OSError raised."""
    previous = previous_folder(out)
    if out.exists():
        out.replace(previous)
    try:
        staging.replace(out)
    except OSError:
        if previous.exists() and not out.exists():
            previous.replace(out)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def recover(out: Path) -> bool:
    """Finish or undo a swap into `out` that a dead process left halfway, and remove the staging
    and previous folders of dead processes. True when a folder was put back at `out`."""
    restored = False
    for previous in _left_by_dead_processes(out, "previous"):
        staging = staging_folder(out, _pid(previous))
        if not out.exists():
            (staging if staging.is_dir() else previous).replace(out)
            restored = True
        shutil.rmtree(previous, ignore_errors=True)
    for staging in _left_by_dead_processes(out, "staging"):
        shutil.rmtree(staging, ignore_errors=True)  # written halfway, or replaced by a newer one
    return restored


def _left_by_dead_processes(out: Path, kind: str) -> list[Path]:
    folders = sorted(out.parent.glob(f".{out.name}.{kind}-*"))
    return [f for f in folders if f.is_dir() and _pid(f) and not _alive(_pid(f))]


def _pid(folder: Path) -> int | None:
    suffix = folder.name.rpartition("-")[2]
    return int(suffix) if suffix.isdigit() else None


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would end the process there: never touch another's folders.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Another user's process.
        return True
    return True
