"""The ``.h5`` layout: names, the header, chunking, and the low-level reads the writer and the reader
share.

The native HDF5 format (through h5py): an append-only writer and a lazy reader.

Layout (see ``docs/FORMAT.md``): flat columnar datasets at the root, chunked along time and
resizable, under the names of the data model. Per step: ``obs`` (a group of datasets for Dict
observations), ``actions``, ``rewards``, ``episode_starts``, ``infos/<key>``. Per episode:
``episode_returns``, ``episode_lengths``, ``terminated``, ``truncated``, ``final_obs``. Root
attributes: ``format`` (``"sb3-expert"``), ``format_version``, ``observation_space`` and
``action_space`` (JSON), ``metadata`` (JSON), and the committed lengths ``n_steps`` and
``n_episodes``.

Crash safety: a commit writes the data, flushes the file, then writes the committed lengths in
one attribute (``committed = [n_steps, n_episodes, pending_slot]``) and flushes again. Readers
trust that attribute, never the datasets' shapes, so a process killed at any moment leaves a file
holding everything committed before the kill. Steps committed after the last finished episode
(the episode running when the writer died) are read back as a truncated episode whose final
observation is the newest observation the writer had seen at that commit: ``pending_final_obs``
has two rows, written alternately, and ``pending_slot`` names the one that belongs to the
committed steps (the other may hold a newer, uncommitted one). Files from before the attribute
existed are read through ``n_steps`` / ``n_episodes`` and row 0.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from gymnasium import spaces

from sb3_expert.data.episodes import Episodes, close_unfinished
from sb3_expert.data.obs import ObsArray
from sb3_expert.data.spaces import space_from_json
from sb3_expert.errors import DemonstrationFileError, OutputLockedError, UnsupportedFormatVersionError

FORMAT_NAME = "sb3-expert"
FORMAT_VERSION = 1
STEP_FIELDS = ("actions", "rewards", "episode_starts")
EPISODE_FIELDS = ("episode_returns", "episode_lengths", "terminated", "truncated")
CHUNK_BYTES = 128 * 1024
MAX_CHUNK_ROWS = 8192


def chunk_rows(row_shape: tuple[int, ...], dtype: np.dtype) -> int:
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize)
    return int(np.clip(CHUNK_BYTES // row_bytes, 1, MAX_CHUNK_ROWS))


def leaf_spaces(space: spaces.Space) -> dict[str | None, spaces.Space]:
    """``{key: space}`` for a Dict space, ``{None: space}`` for a leaf."""
    if isinstance(space, spaces.Dict):
        return {str(key): sub for key, sub in space.spaces.items()}
    return {None: space}


class PaddedFile(io.RawIOBase):
    """A read-only view of a file that HDF5 sees as longer than it is, reading zeros past its end:
    how a file whose writer failed mid-flush (its superblock claiming more than was written) opens.
    Readers trust the committed lengths, whose data was flushed before they were written."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = os.fstat(self._file.fileno()).st_size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size + 2**40}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        self._file.seek(self._pos)
        got = self._file.readinto(view) if self._pos < self._size else 0
        view[got:] = bytes(len(view) - got)
        self._pos += len(view)
        return len(view)

    def close(self) -> None:
        self._file.close()
        super().close()


def open_error(file: Path, e: Exception) -> DemonstrationFileError:
    if "lock" in str(e).lower():  # HDF5's own file locking: another process has it open for writing
        return OutputLockedError(
            f"{file}: another process holds HDF5's lock on it (it is open for writing); wait for it to "
            f"finish, or read it with HDF5_USE_FILE_LOCKING=FALSE: {e}"
        )
    return DemonstrationFileError(f"{file}: not a readable HDF5 file (truncated or corrupt?): {e}")


def check_header(f: h5py.File, file: Path) -> tuple[spaces.Space, spaces.Space, dict[str, Any]]:
    name = f.attrs.get("format")
    name = name.item() if isinstance(name, np.generic) else name
    if name != FORMAT_NAME:
        raise DemonstrationFileError(
            f"{file}: attribute 'format': expected {FORMAT_NAME!r} (a file written by sb3-expert), got {name!r}"
        )
    version = f.attrs.get("format_version")
    version = version.item() if isinstance(version, np.generic) else version
    if not isinstance(version, (int, np.integer)) or not 1 <= int(version) <= FORMAT_VERSION:
        raise UnsupportedFormatVersionError(
            f"{file}: attribute 'format_version': this sb3-expert reads versions 1 to {FORMAT_VERSION}, "
            f"got {version!r}; upgrade sb3-expert to read it"
        )
    try:
        obs_space = space_from_json(f.attrs["observation_space"])
        action_space = space_from_json(f.attrs["action_space"])
        metadata = json.loads(f.attrs.get("metadata", "{}"))
    except (KeyError, ValueError) as e:
        raise DemonstrationFileError(f"{file}: unreadable header attribute: {e}") from e
    return obs_space, action_space, metadata


def read_rows(ds: h5py.Dataset, index: Any) -> np.ndarray:
    """``ds[index]`` for sorted unique row indices: contiguous runs as slices; scattered small rows
    as one point selection, which HDF5 serves about twice as fast as h5py's fancy indexing."""
    row_shape = ds.shape[1:]
    row_size = int(np.prod(row_shape, dtype=np.int64))
    if not isinstance(index, np.ndarray) or not len(index):
        return ds[index]
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    if len(breaks) < len(index) // 16:  # mostly contiguous runs (whole episodes): one slice read each
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [len(index)]])
        return np.concatenate([ds[index[a] : index[b - 1] + 1] for a, b in zip(starts, ends)])
    if not 0 < row_size <= 64:
        return ds[index]
    grids = np.meshgrid(index, *(np.arange(n) for n in row_shape), indexing="ij")
    coords = np.stack(grids, axis=-1).reshape(-1, 1 + len(row_shape)).astype(np.uint64)
    file_space = ds.id.get_space()
    file_space.select_elements(coords)
    out = np.empty((len(index), *row_shape), dtype=ds.dtype)
    ds.id.read(h5py.h5s.create_simple(out.shape), file_space, out)
    return out


def read_obs(group: h5py.Group | h5py.Dataset, space: spaces.Space, index: Any) -> ObsArray:
    if isinstance(space, spaces.Dict):
        return {key: read_rows(group[key], index) for key in space.spaces}
    return read_rows(group, index)


def committed_lengths(f: h5py.File) -> tuple[int, int, int]:
    """``(n_steps, n_episodes, pending_slot)`` as last committed."""
    if "committed" in f.attrs:
        n_steps, n_episodes, slot = (int(v) for v in f.attrs["committed"])
        return n_steps, n_episodes, slot
    return int(f.attrs["n_steps"]), int(f.attrs["n_episodes"]), 0


def tail_episodes(f: h5py.File, covered: int, n_steps: int) -> Episodes:
    """:func:`close_unfinished` for the steps ``covered:n_steps`` of an open file."""
    obs_space = space_from_json(f.attrs["observation_space"])
    keys = list(leaf_spaces(obs_space))
    slot = committed_lengths(f)[2]
    pending_len = f["pending_final_obs" if keys[0] is None else f"pending_final_obs/{keys[0]}"].shape[0]
    pending = read_obs(f["pending_final_obs"], obs_space, slot) if pending_len > slot else None
    return close_unfinished(
        f["episode_starts"][covered:n_steps],
        f["rewards"][covered:n_steps],
        read_obs(f["obs"], obs_space, slice(covered, n_steps)),
        pending,
    )
