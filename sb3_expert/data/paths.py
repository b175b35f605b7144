"""File-system helpers shared by the formats: checked paths and atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sb3_expert.errors import DemonstrationFileError, DemonstrationFileNotFoundError, OutputExistsError

__all__ = ["FORMATS", "atomic_path", "check_input_path", "check_output_path", "format_of"]

FORMATS = {".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5"}


def format_of(path: str | os.PathLike[str], *, argument: str = "path") -> str:
    """The format a path's suffix picks: ``"npz"`` or ``"hdf5"``.

    :raises DemonstrationFileError: for any other suffix, listing the known ones
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DemonstrationFileError(
            f"{argument}: expected a file name ending in one of {sorted(FORMATS)}, got {str(path)!r}"
        )
    return FORMATS[suffix]


def check_input_path(path: str | os.PathLike[str], *, argument: str = "path") -> Path:
    """``path`` as a :class:`Path`, which must be an existing file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a path (str or os.PathLike), got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise DemonstrationFileNotFoundError(f"{argument}: no such file: {str(p)!r}")
    if not p.is_file():
        raise DemonstrationFileError(f"{argument}: expected a file, got a directory: {str(p)!r}")
    return p


def check_output_path(path: str | os.PathLike[str], *, overwrite: bool, argument: str = "path") -> Path:
    """``path`` as a :class:`Path` that may be written: absent, or ``overwrite`` asked for."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a path (str or os.PathLike), got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise DemonstrationFileError(f"{argument}: expected a file path, got a directory: {str(p)!r}")
    if p.exists() and not overwrite:
        raise OutputExistsError(
            f"{argument}: {str(p)!r} already exists; pass overwrite=True to replace it"
            " (or append=True where appending is offered)"
        )
    if not p.parent.exists():
        raise DemonstrationFileNotFoundError(f"{argument}: the folder {str(p.parent)!r} does not exist")
    return p


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` in one rename.

    A crash or an exception leaves ``path`` as it was (absent, or the previous complete file).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
