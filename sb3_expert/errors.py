"""Exceptions raised by sb3_expert: all of them live here.

Every error raised for bad input (an argument, a file, an action, a loader name) is one of these,
a :class:`ValueError` or :class:`TypeError` subclass, so ``except ValueError`` keeps working for
callers that do not know this library's types. Messages name the argument, file or field, what
was expected and what was received.

Outside bad input, the library follows its ecosystem: calls in the wrong order raise
:class:`RuntimeError` (as SB3 does: ``DAgger.update()`` before any ``collect()``), a recording
wrapper stepped before ``reset()`` raises gymnasium's ``ResetNeeded``, a missing optional
dependency raises :class:`ImportError` naming the extra to install, and a failed write raises
:class:`WriteFailedError`.
"""

from __future__ import annotations

__all__ = [
    "ActionError",
    "ArgumentTypeError",
    "ArgumentValueError",
    "DemonstrationError",
    "DemonstrationFileError",
    "DemonstrationFileNotFoundError",
    "EmptyDatasetError",
    "ExpertLoaderError",
    "IndexOutOfRangeError",
    "OutputExistsError",
    "OutputLockedError",
    "SpaceMismatchError",
    "UnsupportedFormatVersionError",
    "UnsupportedSpaceError",
    "UnsafeModelError",
    "WriteFailedError",
]


class ArgumentValueError(ValueError):
    """An argument of a type the function takes, with a value it does not accept (out of range,
    not one of the choices, arguments that exclude each other)."""


class ArgumentTypeError(TypeError):
    """An argument of a type the function does not take, or an object it cannot work with (a model
    without the parts asked of it, data read lazily where it must be in memory)."""


class DemonstrationError(ValueError):
    """Demonstration data that breaks an invariant (a field of the wrong length, dtype, shape...)."""


class IndexOutOfRangeError(DemonstrationError, IndexError):
    """An episode or step index outside the data (also an :class:`IndexError`, as a sequence's)."""


class ActionError(DemonstrationError):
    """An action that does not fit the environment's action space."""


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


class ExpertLoaderError(ValueError):
    """An unknown loader name, a name registered twice, or an expert that cannot be loaded."""


class UnsafeModelError(ExpertLoaderError):
    """A model or statistics file asks to run code that is not on the allow-list."""
