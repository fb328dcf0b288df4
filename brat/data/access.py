"""Which folders the app may read, and how much of one it will walk.

The app reads a dataset folder only inside its allowed data roots (`brat.settings.data_roots`):
every path a page accepts is resolved (`~`, `..`, symbolic links) before the check, so neither a
`..` nor a link leads outside. Before a page reads a folder, `survey` walks it once under limits
(files and depth): a folder with more files than a dataset could hold is refused with a message
instead of being walked to the end, and a folder holding links to files outside the roots is
refused rather than read through them. The command line, run by users on their own files, does not
use this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from brat.errors import BratError, DatasetError

ROOTS_SETTING = "`data_roots` under [brat] in .streamlit/secrets.toml, or $BRAT_DATA_ROOTS"
MAX_FILES = 200_000
MAX_DEPTH = 12
PROGRESS_EVERY = 2_000  # files between two progress calls (each may stop a cancelled walk)


class AccessError(BratError):
    """A folder outside the allowed data roots, or one too large to read."""


@dataclass(frozen=True)
class Survey:
    """What one bounded walk of a folder found."""

    folder: Path
    files: int
    folders: int


def allowed_folder(text: str | Path, roots: Sequence[Path]) -> Path:
    """The folder `text` names, resolved, if it lies inside one of `roots` (each resolved too);
    raises AccessError naming the setting otherwise. It need not exist yet."""
    folder = _resolved(text)
    if _within(folder, [_resolved(root) for root in roots]):
        return folder
    raise AccessError(
        f"{text} is outside the folders this app may read. An administrator can allow it in "
        f"{ROOTS_SETTING}."
    )


def survey(
    folder: Path,
    roots: Sequence[Path],
    *,
    max_files: int = MAX_FILES,
    max_depth: int = MAX_DEPTH,
    progress: Callable[[int], None] | None = None,
) -> Survey:
    """Walk `folder` (already `allowed_folder`) without following links to folders, and stop
    with DatasetError past `max_files` files or `max_depth` levels; AccessError for a link (to a
    file or a folder) that leads outside `roots`. `progress(files)` is called every few thousand
    files: raising in it cancels the walk."""
    resolved_roots = [_resolved(root) for root in roots]
    files = folders = 0
    pending = [(folder, 0)]
    while pending:
        current, depth = pending.pop()
        folders += 1
        try:
            entries = list(os.scandir(current))
        except OSError as error:
            raise DatasetError(f"The folder {current} cannot be read ({error.strerror}).") from None
        for entry in entries:
            if entry.is_symlink():  # a file or folder elsewhere (hidden too): inside the roots
                _check_link(Path(entry.path), resolved_roots)
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 > max_depth:
                    raise DatasetError(
                        f"{folder} is nested more than {max_depth} folders deep; a dataset folder "
                        "is not. Choose the dataset's own folder."
                    )
                pending.append((Path(entry.path), depth + 1))
                continue
            files += 1
            if files > max_files:
                raise DatasetError(
                    f"{folder} holds more than {max_files:,} files, more than a dataset folder "
                    "this app reads (the limit is $BRAT_MAX_FILES). Choose the dataset's own "
                    "folder."
                )
            if progress and files % PROGRESS_EVERY == 0:
                progress(files)
    return Survey(folder, files, folders)


def _resolved(path: str | Path) -> Path:
    """`path` with `~`, `..` and every link resolved; AccessError for a link loop."""
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as error:
        raise AccessError(f"{path} cannot be resolved ({error}).") from None


def _within(path: Path, roots: list[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _check_link(path: Path, roots: list[Path]) -> None:
    if not _within(_resolved(path), roots):
        raise AccessError(
            f"{path} links to a place outside the folders this app may read; it is not read. "
            f"Remove the link, or allow its target in {ROOTS_SETTING}."
        )
