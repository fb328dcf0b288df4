"""The error types brat raises.

Every error a user can cause (a bad file, a missing folder, a network that is not there) is one of
these, with a message written for a clinician rather than a programmer. Pages and the command line
catch `BratError` and show its message; anything else is a bug.
"""

from __future__ import annotations


class BratError(Exception):
    """Base class of every error brat reports to a user."""


class UnreadableImageError(BratError):
    """An input could not be decoded into a brain MRI slice.

    Raised for empty, truncated, corrupt, non-image, unsupported and absurdly large inputs.
    The message says what is wrong with the file and, where it helps, what to do instead; `kind`
    says it in a few words for a table ("damaged file", "not an image", "too large").
    """

    def __init__(self, message: str, kind: str = "damaged file") -> None:
        super().__init__(message, kind)  # both in args, so the error survives pickling
        self.kind = kind

    def __str__(self) -> str:
        return self.args[0]


def error_kind(error: BaseException | str | None) -> str:
    """What went wrong in a few words: an unreadable image's `kind`, else "cannot be read"."""
    return getattr(error, "kind", "cannot be read")


class DatasetError(BratError):
    """A dataset folder or split manifest cannot be used as given."""


class DamagedModelError(BratError):
    """A model folder's files are damaged: unreadable, truncated, or not the bytes it was trained
    with (model.keras's SHA-256 differs from the one in brat.json)."""


class DownloadError(BratError):
    """A dataset download failed (most often: no network)."""
