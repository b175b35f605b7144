"""The lazy ``.h5`` reader, and whole-file save and load (layout: :mod:`sb3_expert.data.hdf5.layout`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
from gymnasium import spaces

from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.hdf5.layout import (
    EPISODE_FIELDS,
    STEP_FIELDS,
    PaddedFile,
    check_header,
    committed_lengths,
    open_error,
    read_obs,
    read_rows,
    tail_episodes,
)
from sb3_expert.data.hdf5.writer import HDF5Writer
from sb3_expert.data.obs import ObsArray, concat, take
from sb3_expert.data.paths import atomic_path, check_input_path, check_output_path
from sb3_expert.data.validation import step_indices
from sb3_expert.errors import ArgumentTypeError, DemonstrationError, DemonstrationFileError

__all__ = ["HDF5Reader", "load_hdf5", "save_hdf5"]


class HDF5Reader(contextlib.AbstractContextManager):
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
        self._padded: PaddedFile | None = None
        try:
            # locking=False: a file being recorded opens too (read up to its committed lengths);
            # writers are kept apart by WriteLock, not by HDF5's lock
            self.file = h5py.File(self.path, "r", rdcc_nbytes=cache_mb * 2**20, locking=False)
        except OSError as e:
            if "truncated file" not in str(e):
                raise open_error(self.path, e) from e
            # a writer stopped by a full disk or a size limit may leave a superblock that claims
            # more file than there is; what its commits refer to was written before
            self._padded = PaddedFile(self.path)
            try:
                self.file = h5py.File(self._padded, "r", rdcc_nbytes=cache_mb * 2**20)
            except OSError as e2:
                self._padded.close()
                raise open_error(self.path, e2) from e
        self._open: dict[str, h5py.Dataset] = {}
        try:
            with self._truncation_guard():
                self._read_header()
        except Exception:
            self.close()
            raise

    @contextlib.contextmanager
    def _truncation_guard(self) -> Iterator[None]:
        """For a file opened through :class:`PaddedFile`: data that does not make sense (zeros where
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
        self.observation_space, self.action_space, self.metadata = check_header(f, self.path)
        try:
            self.n_steps, n_episodes, _ = committed_lengths(f)
            per_episode = {name: f[name][:n_episodes] for name in EPISODE_FIELDS}
            short = [name for name, values in per_episode.items() if len(values) < n_episodes]
            if short:
                raise DemonstrationFileError(
                    f"{self.path}: the header says {n_episodes} episodes, but {short[0]!r} holds "
                    f"{len(per_episode[short[0]])}: the file is corrupt"
                )
            self._final = read_obs(f["final_obs"], self.observation_space, slice(0, n_episodes))
            covered = int(per_episode["episode_lengths"].sum())
            if covered > self.n_steps or any(f[n].shape[0] < self.n_steps for n in STEP_FIELDS):
                raise DemonstrationFileError(
                    f"{self.path}: committed lengths disagree: {self.n_steps} steps, but the episodes cover "
                    f"{covered} (or a dataset is shorter)"
                )
            if covered < self.n_steps:
                tail = tail_episodes(f, covered, self.n_steps)
                for name, extra in zip(EPISODE_FIELDS, tail[:4], strict=True):
                    per_episode[name] = np.concatenate([per_episode[name], extra.astype(per_episode[name].dtype)])
                self._final = concat([self._final, tail.final_obs])
                self.metadata = {**self.metadata, "recovered_unfinished_episodes": len(tail.lengths)}
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

    @property
    def in_memory(self) -> None:
        """None: rows are read from the file on demand (a :class:`~sb3_expert.data.source.StepSource`)."""
        return None

    def get(self, indices: Sequence[int] | np.ndarray, fields: Sequence[str] = ("obs", "actions")) -> dict[str, Any]:
        """Rows ``indices`` (any order, repeats allowed) of the per-step ``fields``.

        :param indices: step indices in ``[0, n_steps)``
        :param fields: among ``obs``, ``actions``, ``rewards``, ``episode_starts``, ``infos/<key>``
        :return: ``{field: array}`` with leading axis ``len(indices)`` (``obs`` a dict for Dict spaces)
        """
        idx = step_indices(indices, self.n_steps)
        unique, inverse = np.unique(idx, return_inverse=True)
        out: dict[str, Any] = {}
        for name in fields:
            if name == "obs" and isinstance(self.observation_space, spaces.Dict):
                out[name] = {k: read_rows(self._dataset(f"obs/{k}"), unique)[inverse] for k in self.observation_space}
            else:
                out[name] = read_rows(self._dataset(name), unique)[inverse]
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
        final_e = take(final, episodes)
        with self._truncation_guard():
            return self._demonstrations(self.file, rows, episodes, final_e)

    def _demonstrations(self, f: h5py.File, rows: slice, episodes: slice, final_e: ObsArray) -> Demonstrations:
        return Demonstrations(
            read_obs(f["obs"], self.observation_space, rows),
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

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HDF5Reader({str(self.path)!r}, {self.n_steps} steps, {self.n_episodes} episodes)"


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
        raise ArgumentTypeError(f"demos: expected a Demonstrations, got {type(demos).__name__}")
    target = check_output_path(path, overwrite=overwrite)
    demos = demos.with_estimated_final_obs()
    with atomic_path(target) as tmp:
        writer = HDF5Writer(
            tmp,
            demos.observation_space,
            demos.action_space,
            overwrite=True,
            metadata=demos.metadata,
            compression=compression,
        )
        with writer:
            writer.write(demos)
    return target


def load_hdf5(path: str | os.PathLike[str]) -> Demonstrations:
    """Read a whole ``.h5`` file into memory (see :class:`HDF5Reader` to read lazily)."""
    with HDF5Reader(path) as reader:
        return reader.load()
