"""The native HDF5 format (through h5py): an append-only writer and a lazy reader.

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

import contextlib
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import h5py
import numpy as np
from gymnasium import spaces

from sb3_expert.data.demonstrations import Demonstrations, ObsArray, check_finite, check_range
from sb3_expert.data.paths import WriteLock, atomic_path, check_input_path, check_output_path, temp_path
from sb3_expert.data.spaces import (
    check_space,
    check_spaces_match,
    is_image_observation,
    space_from_json,
    space_to_json,
    step_layout,
)
from sb3_expert.errors import (
    DemonstrationError,
    DemonstrationFileError,
    OutputLockedError,
    UnsupportedFormatVersionError,
    WriteFailedError,
)

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "HDF5Reader", "HDF5Writer", "close_unfinished", "load_hdf5", "save_hdf5"]

FORMAT_NAME = "sb3-expert"
FORMAT_VERSION = 1
STEP_FIELDS = ("actions", "rewards", "episode_starts")
EPISODE_FIELDS = ("episode_returns", "episode_lengths", "terminated", "truncated")
_CHUNK_BYTES = 128 * 1024
_MAX_CHUNK_ROWS = 8192


def _chunk_rows(row_shape: tuple[int, ...], dtype: np.dtype) -> int:
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize)
    return int(np.clip(_CHUNK_BYTES // row_bytes, 1, _MAX_CHUNK_ROWS))


def _leaf_spaces(space: spaces.Space) -> dict[str | None, spaces.Space]:
    """``{key: space}`` for a Dict space, ``{None: space}`` for a leaf."""
    if isinstance(space, spaces.Dict):
        return {str(key): sub for key, sub in space.spaces.items()}
    return {None: space}


class _PaddedFile(io.RawIOBase):
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


def _open_error(file: Path, e: Exception) -> DemonstrationFileError:
    if "lock" in str(e).lower():  # HDF5's own file locking: another process has it open for writing
        return OutputLockedError(
            f"{file}: another process holds HDF5's lock on it (it is open for writing); wait for it to "
            f"finish, or read it with HDF5_USE_FILE_LOCKING=FALSE: {e}"
        )
    return DemonstrationFileError(f"{file}: not a readable HDF5 file (truncated or corrupt?): {e}")


def _check_header(f: h5py.File, file: Path) -> tuple[spaces.Space, spaces.Space, dict[str, Any]]:
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


class HDF5Writer:
    """Append steps and episodes to an ``.h5`` file through one open file.

    Nothing is written per step: callers hand over batches (the recorders buffer a chunk of steps
    in preallocated arrays), and :meth:`flush` makes what was appended durable.

    :param path: the ``.h5`` file
    :param observation_space: the environment's observation space
    :param action_space: the environment's action space
    :param overwrite: replace an existing file
    :param append: add to an existing file (its spaces must match); an episode it left unfinished
        is closed as truncated
    :param metadata: JSON-serialisable provenance (``env_id``, ``producer``...), merged into the file's
    :param compression: ``"auto"`` (lossless ``lzf`` for image observations, none for the rest),
        None, ``"gzip"`` or ``"lzf"``
    :raises OutputExistsError: when ``path`` exists and neither ``overwrite`` nor ``append`` is set

    .. code-block:: python

        with HDF5Writer("demos.h5", env.observation_space, env.action_space) as writer:
            writer.append_steps(obs, actions, rewards, episode_starts)
            writer.end_episodes(returns, lengths, terminated, truncated, final_obs)
            writer.flush()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        overwrite: bool = False,
        append: bool = False,
        metadata: Mapping[str, Any] | None = None,
        compression: Literal["auto", "gzip", "lzf"] | None = "auto",
    ) -> None:
        if overwrite and append:
            raise ValueError("overwrite and append: expected at most one of them to be True, got both")
        self.observation_space = check_space(observation_space, name="observation_space", allow_dict=True)
        self.action_space = check_space(action_space, name="action_space", allow_dict=False)
        self.path = check_output_path(path, overwrite=overwrite or (append and Path(path).exists()))
        if compression not in ("auto", "gzip", "lzf", None):
            raise ValueError(f"compression: expected 'auto', 'gzip', 'lzf' or None, got {compression!r}")
        self._compression = compression
        self._datasets: dict[str, list[Any]] = {}
        self._failure: str | None = None  # set by the first failed write
        self._committed = (0, 0)  # (n_steps, n_episodes) of the last commit
        self._lock = WriteLock(self.path)  # before anything is truncated: one writer per file
        # overwrite: a new file beside the old one, renamed over it by close(); the old file stays
        # whole until then (and after a crash)
        self._replaces = not append and self.path.exists()
        self._file_path = temp_path(self.path) if self._replaces else self.path
        try:
            if append and self.path.exists():
                self._open_for_append(metadata)
            else:
                self._create(metadata)
        except BaseException:
            self._lock.release()
            raise

    # ------------------------------------------------------------------ set-up

    def _create(self, metadata: Mapping[str, Any] | None) -> None:
        # not libver="latest": its superblock flags refuse to open after a kill. locking=False: readers
        # may open the file while it is recorded; WriteLock keeps writers apart
        self.file = h5py.File(self._file_path, "w", locking=False)
        f = self.file
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["observation_space"] = space_to_json(self.observation_space)
        f.attrs["action_space"] = space_to_json(self.action_space)
        f.attrs["metadata"] = json.dumps(dict(Demonstrations.default_metadata() if metadata is None else metadata))
        for key, space in _leaf_spaces(self.observation_space).items():
            shape, dtype = step_layout(space)
            lossless = self._codec(is_image_observation(space))
            for field in ("obs", "final_obs", "pending_final_obs"):
                self._make(field if key is None else f"{field}/{key}", shape, dtype, lossless)
        shape, dtype = step_layout(self.action_space)
        self._make("actions", shape, dtype, None)
        self._make("rewards", (), np.dtype(np.float64), None)
        self._make("episode_starts", (), np.dtype(np.bool_), None)
        self._make("episode_returns", (), np.dtype(np.float64), None)
        self._make("episode_lengths", (), np.dtype(np.int64), None)
        self._make("terminated", (), np.dtype(np.bool_), None)
        self._make("truncated", (), np.dtype(np.bool_), None)
        f.create_group("infos")
        self.n_steps = 0
        self.n_episodes = 0
        self._slot = 0
        self.file.flush()
        self._commit(0)

    def _codec(self, image: bool) -> str | None:
        if self._compression == "auto":
            return "lzf" if image else None
        return self._compression

    def _make(self, name: str, shape: tuple[int, ...], dtype: np.dtype, compression: str | None) -> None:
        self.file.create_dataset(
            name,
            shape=(0, *shape),
            maxshape=(None, *shape),
            dtype=dtype,
            chunks=(_chunk_rows(shape, dtype), *shape),
            compression=compression,
            shuffle=compression is not None,
        )

    def _open_for_append(self, metadata: Mapping[str, Any] | None) -> None:
        try:
            self.file = h5py.File(self.path, "r+", locking=False)  # WriteLock keeps writers apart
        except OSError as e:
            raise _open_error(self.path, e) from e
        try:
            obs_space, action_space, old_meta = _check_header(self.file, self.path)
            what = f"the file {str(self.path)!r}"
            check_spaces_match(obs_space, self.observation_space, name="observation_space", what=what)
            check_spaces_match(action_space, self.action_space, name="action_space", what=what)
        except Exception:
            self.file.close()
            raise
        if metadata:
            self.file.attrs["metadata"] = json.dumps({**old_meta, **metadata})
        self.n_steps, self.n_episodes, self._slot = _committed(self.file)
        self._committed = (self.n_steps, self.n_episodes)
        covered = int(self.file["episode_lengths"][: self.n_episodes].sum())
        if covered < self.n_steps:  # an episode left running by an earlier writer: close it as truncated
            reader_tail = _tail_episodes(self.file, covered, self.n_steps)
            self.end_episodes(*reader_tail)
            self.flush()

    # ------------------------------------------------------------------ appending

    def _write(self, name: str, start: int, values: np.ndarray) -> None:
        if not len(values):
            return
        if name not in self._datasets:  # h5py handles and sizes, kept: looking them up costs more than writing
            ds = self.file[name]
            self._datasets[name] = [ds, ds.shape[0], ds.chunks[0]]
        entry = self._datasets[name]
        ds, size, chunk = entry
        end = start + len(values)
        if size < end:  # grow ahead by at least 1/4 (whole chunks): few resizes; readers trust n_steps
            size = -(-max(end, size + size // 4) // chunk) * chunk
            ds.resize(size, axis=0)
            entry[1] = size
        # h5py's low-level write: a quarter of ds[start:end] = values's cost, which matters per chunk
        values = np.ascontiguousarray(values)
        file_space = ds.id.get_space()
        file_space.select_hyperslab((start,) + (0,) * (values.ndim - 1), values.shape)
        ds.id.write(h5py.h5s.create_simple(values.shape), file_space, values)

    def _obs_rows(self, field: str, obs: ObsArray, n: int) -> dict[str, np.ndarray]:
        """``{dataset name: checked rows}`` for observations of ``field``."""
        out = {}
        for key, sub in _leaf_spaces(self.observation_space).items():
            if key is not None and not isinstance(obs, Mapping):
                raise DemonstrationError(f"{field}: expected a dict of arrays for {self.observation_space}")
            value = obs if key is None else obs[key]
            name = field if key is None else f"{field}/{key}"
            out[name] = self._checked(value, sub, f"{field}[{key!r}]" if key else field, n)
        return out

    @staticmethod
    def _checked(values: Any, space: spaces.Space | None, name: str, n: int) -> np.ndarray:
        arr = np.asarray(values)
        if space is None:  # a plain column: rewards (float64), starts and flags (bool), lengths (int64)
            if arr.ndim != 1 or len(arr) != n:
                raise DemonstrationError(f"{name}: expected {n} rows of scalars, got shape {arr.shape}")
            return arr
        shape, dtype = step_layout(space)
        if arr.shape != (n, *shape) or arr.dtype != dtype:
            raise DemonstrationError(
                f"{name}: expected rows of shape {shape} and dtype {dtype} ({space}), "
                f"got shape {arr.shape} dtype {arr.dtype}"
            )
        return arr

    def _write_all(self, start: int, rows: Mapping[str, np.ndarray]) -> None:
        with self._guard():
            for name, values in rows.items():
                self._write(name, start, values)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a failed write (disk full, file-size limit, I/O error) into :class:`WriteFailedError`
        and detach the file, so that nothing HDF5 still holds in its caches reaches it: HDF5's own
        later flushes (at close, at exit) would write a superblock claiming more file than there
        is, and the file would no longer open. Detached, it keeps exactly its last commit."""
        if self._failure is not None:
            raise WriteFailedError(self._failure)
        try:
            yield
        except (OSError, RuntimeError) as e:
            self._detach()
            self._failure = (
                f"{self.path}: writing failed ({str(e).splitlines()[0]}); the file keeps the {self._committed[0]} "
                f"steps and {self._committed[1]} episodes committed before the failure, and nothing more is written"
            )
            raise WriteFailedError(self._failure) from e

    @property
    def failed(self) -> bool:
        """Whether a write failed (then the file keeps its last commit and nothing more is written)."""
        return self._failure is not None

    def _detach(self) -> None:
        """Point HDF5's file descriptor at /dev/null: its remaining writes go nowhere."""
        try:
            fd = self.file.id.get_vfd_handle()
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, fd)
            os.close(null)
        except (OSError, RuntimeError, ValueError):  # pragma: no cover - no descriptor to detach
            pass

    def append_steps(
        self,
        obs: ObsArray,
        actions: np.ndarray,
        rewards: np.ndarray,
        episode_starts: np.ndarray,
        infos: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append B steps: ``obs`` ``(B, *obs_shape)``, ``actions`` ``(B, *action_shape)``,
        ``rewards`` ``(B,)`` float64, ``episode_starts`` ``(B,)`` bool, ``infos`` ``{key: (B, ...)}``.

        Everything is checked before anything is written.
        """
        n = len(actions)
        rows = self._obs_rows("obs", obs, n)
        rows["actions"] = self._checked(actions, self.action_space, "actions", n)
        rows["rewards"] = self._checked(np.asarray(rewards, dtype=np.float64), None, "rewards", n)
        # what the reader would refuse is refused here, naming the step
        check_range("actions", rows["actions"], self.action_space, offset=self.n_steps)
        check_finite("rewards", rows["rewards"], offset=self.n_steps)
        rows["episode_starts"] = self._checked(np.asarray(episode_starts, dtype=np.bool_), None, "episode_starts", n)
        for key, value in (infos or {}).items():
            name, value = f"infos/{key}", np.asarray(value)
            if name not in self.file:
                if self.n_steps:
                    raise DemonstrationError(f"infos[{key!r}]: a new info key after {self.n_steps} steps were written")
                self._make(name, value.shape[1:], value.dtype, None)
            if len(value) != n:
                raise DemonstrationError(f"infos[{key!r}]: expected {n} rows, got shape {value.shape}")
            rows[name] = value
        self._write_all(self.n_steps, rows)
        self.n_steps += n

    def end_episodes(
        self,
        returns: np.ndarray,
        lengths: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        final_obs: ObsArray,
    ) -> None:
        """Append E finished episodes (their steps must have been appended): ``(E,)`` arrays and
        ``final_obs`` ``(E, *obs_shape)``."""
        e = len(np.asarray(lengths).reshape(-1))
        rows = self._obs_rows("final_obs", final_obs, e)
        rows["episode_returns"] = self._checked(np.asarray(returns, np.float64).reshape(-1), None, "returns", e)
        rows["episode_lengths"] = self._checked(np.asarray(lengths, np.int64).reshape(-1), None, "lengths", e)
        rows["terminated"] = self._checked(np.asarray(terminated, np.bool_).reshape(-1), None, "terminated", e)
        rows["truncated"] = self._checked(np.asarray(truncated, np.bool_).reshape(-1), None, "truncated", e)
        self._write_all(self.n_episodes, rows)
        self.n_episodes += e

    def write(self, demos: Demonstrations) -> None:
        """Append a whole :class:`Demonstrations` (its episodes all finished) and flush."""
        check_spaces_match(self.observation_space, demos.observation_space, name="observation_space", what="file")
        check_spaces_match(self.action_space, demos.action_space, name="action_space", what="file")
        if demos.final_obs is None:
            raise DemonstrationError(
                "final_obs: expected the final observation of each episode, got None (SB2 data); "
                "save_hdf5() writes such data with each episode's last observation standing in"
            )
        self.append_steps(demos.obs, demos.actions, demos.rewards, demos.episode_starts, demos.infos)
        self.end_episodes(
            demos.episode_returns, demos.episode_lengths, demos.terminated, demos.truncated, demos.final_obs
        )
        self.flush()

    def flush(self, pending_final_obs: ObsArray | None = None) -> None:
        """Commit what was appended: the data (and ``pending_final_obs``, in the row the committed
        lengths do not name yet) to the file first, then the committed lengths, each flushed.

        :param pending_final_obs: the newest observation of the episode still running (one row,
            without the leading axis), kept so a crash still leaves its final observation
        """
        with self._guard():
            slot = self._slot
            if pending_final_obs is not None:
                batch = (
                    {k: np.asarray(v)[None] for k, v in pending_final_obs.items()}
                    if isinstance(pending_final_obs, dict)
                    else np.asarray(pending_final_obs)[None]
                )
                slot = 1 - self._slot
                self._write_all(slot, self._obs_rows("pending_final_obs", batch, 1))
            self.file.flush()  # the data is out before any length refers to it
            self._commit(slot)

    def _commit(self, slot: int) -> None:
        self.file.attrs["committed"] = np.array([self.n_steps, self.n_episodes, slot], np.int64)
        self.file.attrs["n_steps"] = self.n_steps  # for readers of files without "committed"
        self.file.attrs["n_episodes"] = self.n_episodes
        self.file.flush()
        self._slot = slot
        self._committed = (self.n_steps, self.n_episodes)

    def close(self) -> None:
        """Commit, trim the datasets to the committed lengths and close. Idempotent. After a failed
        write it only closes (the file keeps its last commit) and raises nothing."""
        if not self.file.id.valid:
            return
        try:
            if self._failure is None:
                with self._guard():
                    self._finish()
        except WriteFailedError:
            pass  # raised once already, where the write failed
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                self.file.close()
            if self._failure is None and self._replaces:
                os.replace(self._file_path, self.path)
            elif self._failure is not None and self._replaces:
                self._file_path.unlink(missing_ok=True)  # the old file stays whole
            self._lock.release()

    def _finish(self) -> None:
        self.file.flush()
        self._commit(self._slot)
        for name, length in [(n, self.n_steps) for n in STEP_FIELDS] + [(n, self.n_episodes) for n in EPISODE_FIELDS]:
            self.file[name].resize(length, axis=0)
        for field, length in (("obs", self.n_steps), ("final_obs", self.n_episodes)):
            for key in _leaf_spaces(self.observation_space):
                self.file[field if key is None else f"{field}/{key}"].resize(length, axis=0)
        for ds in self.file["infos"].values():
            ds.resize(self.n_steps, axis=0)
        self._datasets.clear()
        self.file.flush()

    def __enter__(self) -> HDF5Writer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _read_rows(ds: h5py.Dataset, index: Any) -> np.ndarray:
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


def _read_obs(group: h5py.Group | h5py.Dataset, space: spaces.Space, index: Any) -> ObsArray:
    if isinstance(space, spaces.Dict):
        return {key: _read_rows(group[key], index) for key in space.spaces}
    return _read_rows(group, index)


def close_unfinished(
    starts: np.ndarray, rewards: np.ndarray, obs: ObsArray, pending_final_obs: ObsArray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, ObsArray]:
    """Episode tables for steps that no finished episode accounts for (a writer stopped mid-episode).

    Each is truncated; its final observation is its last one, except the newest episode's, which is
    ``pending_final_obs`` (one observation, without a leading axis) when known.

    :return: ``(returns, lengths, terminated, truncated, final_obs)``
    """
    starts = starts.copy()
    starts[0] = True
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, len(starts)))
    returns = np.add.reduceat(rewards, first)
    last_rows = first + lengths - 1

    def final_of(rows: np.ndarray, pending: np.ndarray | None) -> np.ndarray:
        out = rows[last_rows]
        if pending is not None:
            out[-1] = pending
        return out

    if isinstance(obs, dict):
        final: ObsArray = {
            k: final_of(v, None if pending_final_obs is None else pending_final_obs[k]) for k, v in obs.items()
        }
    else:
        final = final_of(obs, pending_final_obs)  # type: ignore[arg-type]
    ends = np.zeros(len(lengths), np.bool_)
    return returns, lengths.astype(np.int64), ends, ~ends, final


def _committed(f: h5py.File) -> tuple[int, int, int]:
    """``(n_steps, n_episodes, pending_slot)`` as last committed."""
    if "committed" in f.attrs:
        n_steps, n_episodes, slot = (int(v) for v in f.attrs["committed"])
        return n_steps, n_episodes, slot
    return int(f.attrs["n_steps"]), int(f.attrs["n_episodes"]), 0


def _tail_episodes(
    f: h5py.File, covered: int, n_steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, ObsArray]:
    """:func:`close_unfinished` for the steps ``covered:n_steps`` of an open file."""
    obs_space = space_from_json(f.attrs["observation_space"])
    keys = list(_leaf_spaces(obs_space))
    slot = _committed(f)[2]
    pending_len = f["pending_final_obs" if keys[0] is None else f"pending_final_obs/{keys[0]}"].shape[0]
    pending = _read_obs(f["pending_final_obs"], obs_space, slot) if pending_len > slot else None
    return close_unfinished(
        f["episode_starts"][covered:n_steps],
        f["rewards"][covered:n_steps],
        _read_obs(f["obs"], obs_space, slice(covered, n_steps)),
        pending,
    )


class HDF5Reader:
    """A lazily opened ``.h5`` file: opening reads the header and per-episode tables only.

    Steps are read on demand (:meth:`get`, :meth:`load`), so a file larger than memory can serve
    random batches. Use as a context manager, or call :meth:`close`.

    :param path: the ``.h5`` file
    :param cache_mb: size of h5py's chunk cache per dataset, in MiB
    :raises DemonstrationFileNotFoundError: when ``path`` does not exist
    :raises DemonstrationFileError: when it is not an sb3-expert HDF5 file, or is corrupt
    :raises UnsupportedFormatVersionError: for a newer format version

    .. code-block:: python

        with HDF5Reader("big.h5") as reader:
            batch = reader.get(np.random.default_rng(0).integers(0, reader.n_steps, 256))
            batch["obs"], batch["actions"]
    """

    def __init__(self, path: str | os.PathLike[str], *, cache_mb: int = 64) -> None:
        self.path = check_input_path(path)
        self._padded: _PaddedFile | None = None
        try:
            # locking=False: a file being recorded opens too (read up to its committed lengths);
            # writers are kept apart by WriteLock, not by HDF5's lock
            self.file = h5py.File(self.path, "r", rdcc_nbytes=cache_mb * 2**20, locking=False)
        except OSError as e:
            if "truncated file" not in str(e):
                raise _open_error(self.path, e) from e
            # a writer stopped by a full disk or a size limit may leave a superblock that claims
            # more file than there is; what its commits refer to was written before
            self._padded = _PaddedFile(self.path)
            try:
                self.file = h5py.File(self._padded, "r", rdcc_nbytes=cache_mb * 2**20)
            except OSError as e2:
                self._padded.close()
                raise _open_error(self.path, e2) from e
        self._open: dict[str, h5py.Dataset] = {}
        try:
            with self._truncation_guard():
                self._read_header()
        except Exception:
            self.close()
            raise

    @contextlib.contextmanager
    def _truncation_guard(self) -> Iterator[None]:
        """For a file opened through :class:`_PaddedFile`: data that does not make sense (zeros where
        the commit expects data) means the file was cut short, and is reported as such."""
        try:
            yield
        except (DemonstrationError, OSError, KeyError, ValueError) as e:
            if self._padded is None or isinstance(e, DemonstrationFileError):
                raise
            raise DemonstrationFileError(
                f"{self.path}: truncated: the file is shorter than its header says, and the data its committed "
                f"lengths refer to is incomplete ({e})"
            ) from e

    def _read_header(self) -> None:
        f = self.file
        self.observation_space, self.action_space, self.metadata = _check_header(f, self.path)
        try:
            self.n_steps, n_episodes, _ = _committed(f)
            per_episode = {name: f[name][:n_episodes] for name in EPISODE_FIELDS}
            short = [name for name, values in per_episode.items() if len(values) < n_episodes]
            if short:
                raise DemonstrationFileError(
                    f"{self.path}: the header says {n_episodes} episodes, but {short[0]!r} holds "
                    f"{len(per_episode[short[0]])}: the file is corrupt"
                )
            self._final = _read_obs(f["final_obs"], self.observation_space, slice(0, n_episodes))
            covered = int(per_episode["episode_lengths"].sum())
            if covered > self.n_steps or any(f[n].shape[0] < self.n_steps for n in STEP_FIELDS):
                raise DemonstrationFileError(
                    f"{self.path}: committed lengths disagree: {self.n_steps} steps, but the episodes cover "
                    f"{covered} (or a dataset is shorter)"
                )
            if covered < self.n_steps:
                tail = _tail_episodes(f, covered, self.n_steps)
                for name, extra in zip(EPISODE_FIELDS, tail[:4]):
                    per_episode[name] = np.concatenate([per_episode[name], extra.astype(per_episode[name].dtype)])
                self._final = _concat_obs(self._final, tail[4])
                self.metadata = {**self.metadata, "recovered_unfinished_episodes": len(tail[1])}
        except (KeyError, OSError) as e:
            raise DemonstrationFileError(f"{self.path}: missing or unreadable dataset: {e}") from e
        self.episode_returns: np.ndarray = per_episode["episode_returns"]
        self.episode_lengths: np.ndarray = per_episode["episode_lengths"]
        self.terminated: np.ndarray = per_episode["terminated"]
        self.truncated: np.ndarray = per_episode["truncated"]
        self.info_keys = sorted(f["infos"].keys()) if "infos" in f else []

    @property
    def n_episodes(self) -> int:
        """Number of episodes (an unfinished one included, as truncated)."""
        return len(self.episode_lengths)

    def __len__(self) -> int:
        return self.n_steps

    def get(self, indices: Sequence[int] | np.ndarray, fields: Sequence[str] = ("obs", "actions")) -> dict[str, Any]:
        """Rows ``indices`` (any order, repeats allowed) of the per-step ``fields``.

        :param indices: step indices in ``[0, n_steps)``
        :param fields: among ``obs``, ``actions``, ``rewards``, ``episode_starts``, ``infos/<key>``
        :return: ``{field: array}`` with leading axis ``len(indices)`` (``obs`` a dict for Dict spaces)
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_steps):
            raise IndexError(f"indices: expected values in [0, {self.n_steps}), got {idx.min()}..{idx.max()}")
        unique, inverse = np.unique(idx, return_inverse=True)
        out: dict[str, Any] = {}
        for name in fields:
            if name == "obs" and isinstance(self.observation_space, spaces.Dict):
                out[name] = {k: _read_rows(self._dataset(f"obs/{k}"), unique)[inverse] for k in self.observation_space}
            else:
                out[name] = _read_rows(self._dataset(name), unique)[inverse]
        return out

    def _dataset(self, name: str) -> h5py.Dataset:
        """The open dataset ``name``, kept open: HDF5's chunk cache lives as long as the handle."""
        if name not in self._open:
            self._open[name] = self.file[name]
        return self._open[name]

    def load(self, n_episodes: int | None = None, *, first: int = 0) -> Demonstrations:
        """Read ``n_episodes`` episodes from episode ``first`` on (all of them when None) into a
        :class:`Demonstrations` in memory."""
        first = min(max(int(first), 0), self.n_episodes)
        e = self.n_episodes if n_episodes is None else min(first + int(n_episodes), self.n_episodes)
        start = int(self.episode_lengths[:first].sum())
        rows, episodes = slice(start, start + int(self.episode_lengths[first:e].sum())), slice(first, e)
        final = self._final
        final_e = {k: v[episodes] for k, v in final.items()} if isinstance(final, dict) else final[episodes]
        with self._truncation_guard():
            return self._demonstrations(self.file, rows, episodes, final_e)

    def _demonstrations(self, f: h5py.File, rows: slice, episodes: slice, final_e: ObsArray) -> Demonstrations:
        return Demonstrations(
            _read_obs(f["obs"], self.observation_space, rows),
            f["actions"][rows],
            f["rewards"][rows],
            f["episode_starts"][rows],
            observation_space=self.observation_space,
            action_space=self.action_space,
            episode_returns=self.episode_returns[episodes],
            episode_lengths=self.episode_lengths[episodes],
            terminated=self.terminated[episodes],
            truncated=self.truncated[episodes],
            final_obs=final_e,
            infos={key: f[f"infos/{key}"][rows] for key in self.info_keys},
            metadata=self.metadata,
        )

    def close(self) -> None:
        """Close the file. Idempotent."""
        if getattr(self, "file", None) is not None and self.file.id.valid:
            self.file.close()
        if self._padded is not None:
            self._padded.close()

    def __enter__(self) -> HDF5Reader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HDF5Reader({str(self.path)!r}, {self.n_steps} steps, {self.n_episodes} episodes)"


def _concat_obs(a: ObsArray, b: ObsArray) -> ObsArray:
    if isinstance(a, dict):
        return {k: np.concatenate([a[k], b[k]]) for k in a}
    return np.concatenate([a, b])


def save_hdf5(
    demos: Demonstrations,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    compression: Literal["auto", "gzip", "lzf"] | None = "auto",
) -> Path:
    """Write ``demos`` to a new ``.h5`` file, atomically (a temporary file, then one rename).

    SB2 data has no ``final_obs``: each episode's last observation stands in for it, and
    ``metadata["final_obs_estimated"]`` says so.

    :raises OutputExistsError: when ``path`` exists and ``overwrite`` is False
    """
    if not isinstance(demos, Demonstrations):
        raise TypeError(f"demos: expected a Demonstrations, got {type(demos).__name__}")
    target = check_output_path(path, overwrite=overwrite)
    if demos.final_obs is None:
        last = demos.episode_offsets[1:] - 1
        obs = demos.obs
        estimate = {k: v[last] for k, v in obs.items()} if isinstance(obs, dict) else obs[last]
        demos = Demonstrations(
            obs, demos.actions, demos.rewards, demos.episode_starts,
            observation_space=demos.observation_space, action_space=demos.action_space,
            episode_returns=demos.episode_returns, terminated=demos.terminated, truncated=demos.truncated,
            final_obs=estimate, infos=demos.infos, metadata={**demos.metadata, "final_obs_estimated": True},
        )  # fmt: skip
    with atomic_path(target) as tmp:
        writer = HDF5Writer(
            tmp, demos.observation_space, demos.action_space, overwrite=True,
            metadata=demos.metadata, compression=compression,
        )  # fmt: skip
        with writer:
            writer.write(demos)
    return target


def load_hdf5(path: str | os.PathLike[str]) -> Demonstrations:
    """Read a whole ``.h5`` file into memory (see :class:`HDF5Reader` to read lazily)."""
    with HDF5Reader(path) as reader:
        return reader.load()
