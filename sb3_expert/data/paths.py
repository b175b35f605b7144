"""File-system helpers shared by the formats: checked paths and atomic writes."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TypeAlias

from sb3_expert.arguments import check_flags, check_path
from sb3_expert.errors import (
    DemonstrationFileError,
    DemonstrationFileNotFoundError,
    OutputExistsError,
    OutputLockedError,
)

__all__ = [
    "FORMATS",
    "PathLike",
    "WriteLock",
    "atomic_path",
    "check_input_path",
    "check_output_path",
    "format_of",
    "temp_path",
]

PathLike: TypeAlias = str | os.PathLike[str]
"""A file path, as the public functions take it."""

FORMATS = {".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5"}


def format_of(path: str | os.PathLike[str], *, argument: str = "path") -> str:
    """The format a path's suffix picks: ``"npz"`` or ``"hdf5"``.

    :raises DemonstrationFileError: for any other suffix, listing the known ones
    """
    check_path(argument, path)
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DemonstrationFileError(
            f"{argument}: expected a file name ending in one of {sorted(FORMATS)}, got {str(path)!r}"
        )
    return FORMATS[suffix]


def check_input_path(path: str | os.PathLike[str], *, argument: str = "path") -> Path:
    """``path`` as a :class:`Path`, which must be an existing file."""
    check_path(argument, path)
    p = Path(path)
    if not p.exists():
        raise DemonstrationFileNotFoundError(f"{argument}: no such file: {str(p)!r}")
    if not p.is_file():
        raise DemonstrationFileError(f"{argument}: expected a file, got a directory: {str(p)!r}")
    return p


def check_output_path(path: str | os.PathLike[str], *, overwrite: bool, argument: str = "path") -> Path:
    """``path`` as a :class:`Path` that may be written: absent, or ``overwrite`` asked for (a bool:
    ``overwrite="no"`` would otherwise replace the file)."""
    check_path(argument, path)
    check_flags(overwrite=overwrite)
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_path(path: Path) -> Path:
    """The temporary file beside ``path`` that this process writes before renaming it onto ``path``
    (hidden, named after the process so that a stale one can be told apart)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


class WriteLock:
    """One writer per file: a lock file ``.<name>.lock`` beside ``path``, created with ``O_EXCL``
    (so it works where HDF5's own locking is off, as is usual on NFS and Lustre) and holding
    ``pid@host``. A lock whose process is gone (same host) is stale and taken over. While the lock
    is held, temporary files that earlier writers of ``path`` left behind (killed mid-save) are
    removed.

    :raises OutputLockedError: when another live process holds the lock (naming it and the lock file)
    """

    def __init__(self, path: Path, *, argument: str = "path") -> None:
        self.path = path
        self.lock_path = path.with_name(f".{path.name}.lock")
        self.owner = f"{os.getpid()}@{socket.gethostname()}"
        self.held = False
        for _ in range(3):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and self._stale(holder):
                    self.lock_path.unlink(missing_ok=True)
                    continue
                raise OutputLockedError(
                    f"{argument}: {str(path)!r} is being written by another process ({holder or 'unknown'}); "
                    f"wait for it to finish, or, if no such process runs, delete the lock file {str(self.lock_path)!r}"
                ) from None
            except OSError as e:  # a read-only folder, a file where the folder should be...
                raise DemonstrationFileError(
                    f"{argument}: cannot write in the folder {str(path.parent)!r} ({e.strerror})"
                ) from e
            with os.fdopen(fd, "w") as f:
                f.write(self.owner)
            self.held = True
            for stale in path.parent.glob(f".{path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            return
        raise OutputLockedError(f"{argument}: could not take the lock file {str(self.lock_path)!r}")

    def _holder(self) -> str | None:
        try:
            return self.lock_path.read_text().strip() or None
        except OSError:
            return None

    @staticmethod
    def _stale(holder: str) -> bool:
        pid, _, host = holder.partition("@")
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)  # alive (this process too: a second writer of the same file is refused)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            pass
        return False

    def release(self) -> None:
        """Remove the lock file (if this process still holds it). Idempotent."""
        if self.held:
            self.held = False
            if self._holder() == self.owner:
                self.lock_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: Path, lock: WriteLock | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` in one rename.

    The writer holds ``path``'s :class:`WriteLock` meanwhile (``lock``: one the caller already
    holds and keeps; else one taken and released here). A crash or an exception leaves
    ``path`` as it was (absent, or the previous complete file); the temporary file is removed on
    failure, and a crash's is removed by the next writer. The file's mode follows the umask.
    """
    own = WriteLock(path) if lock is None else None
    tmp = temp_path(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        if own is not None:
            own.release()
