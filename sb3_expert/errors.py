"""Exceptions raised by sb3_expert.

Every error raised for bad input is a :class:`ValueError` or :class:`TypeError`
subclass, so ``except ValueError`` keeps working for callers that do not know
this library's types. Messages name the argument, file or field, what was
expected and what was received.
"""

from __future__ import annotations

__all__ = [
    "DemonstrationError",
    "DemonstrationFileError",
    "DemonstrationFileNotFoundError",
    "EmptyDatasetError",
    "OutputExistsError",
    "SpaceMismatchError",
    "UnsupportedFormatVersionError",
    "UnsupportedSpaceError",
]


class DemonstrationError(ValueError):
    """Demonstration data that breaks an invariant (a field of the wrong length, dtype, shape...)."""


class EmptyDatasetError(DemonstrationError):
    """A dataset with no steps (or no episodes) where some are needed."""


class SpaceMismatchError(DemonstrationError):
    """Demonstrations whose spaces do not match an environment's or a model's spaces."""


class UnsupportedSpaceError(TypeError):
    """A gymnasium space this library cannot store or learn from."""


class DemonstrationFileError(ValueError):
    """A demonstrations file that cannot be read or written (corrupt, truncated, wrong keys...)."""


class DemonstrationFileNotFoundError(DemonstrationFileError, FileNotFoundError):
    """A path that does not exist."""


class OutputExistsError(DemonstrationFileError, FileExistsError):
    """An output path that already exists, without ``overwrite`` (or ``append``) asked for."""


class OutputLockedError(DemonstrationFileError):
    """Another process is writing the same output file."""


class WriteFailedError(DemonstrationFileError):
    """Writing to a demonstrations file failed (a full disk, a file-size limit...). The message
    names the file and how many steps it keeps: everything committed before the failure."""


class UnsupportedFormatVersionError(DemonstrationFileError):
    """A file written by a newer (or unknown) version of the format."""
