"""Where recorded steps go: a :class:`Sink` backend per storage, as Minari keeps one storage class
per format. :class:`FileSink` writes an ``.h5`` file as it goes; :class:`MemorySink` keeps
everything in memory and, given an ``.npz`` path, writes it on close. :func:`open_sink` picks one
from the path.

Streams (:mod:`sb3_expert.record.streams`) push :class:`~sb3_expert.data.episodes.Steps` and the
:class:`~sb3_expert.data.episodes.Episodes` they finish; a sink may keep the arrays it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces
from gymnasium.spaces import Space

from sb3_expert.arguments import check_count
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.episodes import Episodes, Steps, close_unfinished, concat_parts
from sb3_expert.data.hdf5 import HDF5Reader, HDF5Writer
from sb3_expert.data.npz import load_npz, save_npz
from sb3_expert.data.obs import ObsArray, allocate, concat, take
from sb3_expert.data.paths import PathLike, WriteLock, check_output_path, format_of
from sb3_expert.data.spaces import check_space
from sb3_expert.errors import ArgumentTypeError

if TYPE_CHECKING:
    from sb3_expert.record.streams import Stream

__all__ = ["FileSink", "MemorySink", "Sink", "open_sink"]


class Sink:
    """What the backends share: the spaces, the metadata, the episode filter, and the steps and
    episodes received and not yet stored.

    :param observation_space: the environment's observation space
    :param action_space: the environment's action space
    :param metadata: provenance stored with the demonstrations
    :param chunk_size: steps gathered before a write to a file
    :param episode_filter: called with ``(episode_return, length)``; episodes it rejects are dropped
        (only shared streams, which hand over whole episodes, apply it)
    """

    path: Path | None = None

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        metadata: Mapping[str, Any] | None = None,
        chunk_size: int = 4096,
        episode_filter: Callable[[float, int], bool] | None = None,
    ) -> None:
        self.observation_space = check_space(observation_space, name="observation_space", allow_dict=True)
        self.action_space = check_space(action_space, name="action_space", allow_dict=False)
        check_count("chunk_size", chunk_size)
        self.metadata = {**Demonstrations.default_metadata(), **(metadata or {})}
        self.chunk_size = chunk_size
        self.episode_filter = episode_filter
        self._steps: list[Steps] = []  # received and not yet stored
        self._episodes: list[Episodes] = []
        self._pending_steps = 0
        self._pending_final_obs: ObsArray | None = None
        self.n_steps = 0
        self.n_episodes = 0
        self.closed = False

    def push(
        self,
        steps: Steps | None,
        episodes: Episodes | None,
        *,
        pending_final_obs: ObsArray | None = None,
        flush: bool = False,
    ) -> None:
        """Receive steps and the episodes they finish; a file backend writes when a chunk is full
        or ``flush``. ``pending_final_obs`` is the observation after the last step when its episode
        is still running."""
        if steps is not None and len(steps.actions):
            self._steps.append(steps)
            self._pending_steps += len(steps.actions)
            self.n_steps += len(steps.actions)
        if episodes is not None and len(episodes.lengths):
            self._episodes.append(episodes)
            self.n_episodes += len(episodes.lengths)
        self._pending_final_obs = pending_final_obs
        if flush or self._pending_steps >= self.chunk_size:
            self.write()

    def add(self, demos: Demonstrations) -> None:
        """Receive whole demonstrations (finished episodes)."""
        demos = demos.with_estimated_final_obs()
        final_obs = demos.final_obs
        assert final_obs is not None
        steps = Steps(demos.obs, demos.actions, demos.rewards, demos.episode_starts, dict(demos.infos))
        self.push(
            steps, Episodes(demos.episode_returns, demos.episode_lengths, demos.terminated, demos.truncated, final_obs)
        )

    def accepts(self, episode_return: float, length: int) -> bool:
        """Whether an episode passes ``episode_filter``."""
        return self.episode_filter is None or bool(self.episode_filter(episode_return, length))

    def flush(self, streams: Sequence[Stream]) -> None:
        """Make what the ``streams`` can hand over durable (a no-op unless a file is written as it goes)."""

    def write(self) -> None:
        """Store what was received where it is durable (a no-op unless a file is written as it goes)."""

    def demonstrations(self, running: Sequence[Stream] = ()) -> Demonstrations:
        """Everything received plus the ``running`` streams' steps (read back from a file: I/O);
        an episode still running is included as truncated."""
        snapshots = []
        for stream in running:
            if stream.exclusive:
                stream.hand_over()
            else:
                snapshots.append(stream.snapshot())
        parts = self._stored()
        parts.extend(part for part in snapshots if part is not None)
        return Demonstrations.concatenate(parts) if len(parts) > 1 else parts[0]

    def drain(self) -> Demonstrations:
        """The episodes received since the last drain (for shared streams, which hand over whole
        episodes)."""
        raise NotImplementedError

    def close(self, running: Sequence[Stream] = ()) -> None:
        """End the ``running`` streams' episodes as truncated, store everything and close. Idempotent."""
        if self.closed:
            return
        try:
            if not self.failed:
                for stream in running:
                    stream.end_recording()
                self._store_all()
        finally:
            self._release()
            self.closed = True

    @property
    def failed(self) -> bool:
        """Whether a write failed (then closing keeps only what was committed before it)."""
        return False

    def _stored(self) -> list[Demonstrations]:
        raise NotImplementedError

    def _store_all(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Let go of the file and the lock."""

    def _take_received(self) -> tuple[Steps | None, Episodes | None]:
        """The steps and episodes received and not yet stored, joined; forgotten here."""
        steps = concat_parts(self._steps) if self._steps else None
        episodes = concat_parts(self._episodes) if self._episodes else None
        self._steps.clear()
        self._episodes.clear()
        self._pending_steps = 0
        return steps, episodes


class FileSink(Sink):
    """Writes an ``.h5`` file as it goes (every ``chunk_size`` steps, and on :meth:`flush`).

    :param path: the ``.h5``/``.hdf5`` file
    :param overwrite: replace an existing file
    :param append: add to an existing file
    :param compression: the HDF5 compression (see :class:`~sb3_expert.data.hdf5.HDF5Writer`)
    """

    def __init__(self, path: PathLike, observation_space: Space, action_space: Space, **kwargs: Any) -> None:
        options = {name: kwargs.pop(name) for name in ("overwrite", "append", "compression") if name in kwargs}
        super().__init__(observation_space, action_space, **kwargs)
        self.path = Path(path)
        self.writer = HDF5Writer(
            self.path,
            observation_space,
            action_space,
            metadata=self.metadata,
            **options,
        )
        self._drained = 0  # episodes of the file already drained

    @property
    def failed(self) -> bool:
        return self.writer.failed

    def flush(self, streams: Sequence[Stream]) -> None:
        """Write the streams' finished episodes and an exclusive stream's running episode (a shared
        stream's running episode is written when it ends: episodes stay contiguous in the file)."""
        if self.closed:
            return
        for stream in streams:
            if stream.exclusive:
                stream.hand_over()
        self.write()  # one commit for all

    def write(self) -> None:
        """Write what was received to the file and commit it."""
        steps, episodes = self._take_received()
        if steps is not None:
            self.writer.append_steps(*steps)
        if episodes is not None:
            self.writer.end_episodes(*episodes)
        self.writer.flush(self._pending_final_obs)

    def add(self, demos: Demonstrations) -> None:
        self.write()
        self.writer.write(demos.with_estimated_final_obs())
        self.n_steps += demos.n_steps
        self.n_episodes += demos.n_episodes

    def _stored(self) -> list[Demonstrations]:
        self.write()
        with HDF5Reader(self.writer.path) as reader:
            return [reader.load()]

    def drain(self) -> Demonstrations:
        """The episodes written since the last drain, read back from the file."""
        self.write()
        with HDF5Reader(self.writer.path) as reader:
            part = reader.load(first=self._drained)
            self._drained = reader.n_episodes
        return part

    def _store_all(self) -> None:
        self.write()

    def _release(self) -> None:
        self.writer.close()


class MemorySink(Sink):
    """Keeps everything in memory; given an ``.npz`` path, writes it on :meth:`close`.

    :param path: the ``.npz`` file, or None
    :param overwrite: replace an existing file
    :param append: add to an existing file (read now, rewritten on close)
    """

    def __init__(self, path: PathLike | None, observation_space: Space, action_space: Space, **kwargs: Any) -> None:
        overwrite, append = kwargs.pop("overwrite", False), kwargs.pop("append", False)
        kwargs.pop("compression", None)  # an HDF5 setting
        super().__init__(observation_space, action_space, **kwargs)
        self.path = None if path is None else Path(path)
        self._previous: Demonstrations | None = None
        self._overwrite = overwrite
        self._lock: WriteLock | None = None
        if self.path is not None:  # the lock, held from now, also checks the folder is writable
            if append and self.path.exists():
                self._previous = load_npz(self.path)
                self._overwrite = True
            else:
                check_output_path(self.path, overwrite=overwrite)
            self._lock = WriteLock(self.path)

    def _stored(self) -> list[Demonstrations]:
        return [part for part in (self._previous, self._memory_part()) if part is not None]

    def drain(self) -> Demonstrations:
        """The episodes received since the last drain (memory then forgets them).

        :raises TypeError: for a sink writing ``.npz``, which is written from memory on close
        """
        if self.path is not None:
            raise ArgumentTypeError(f"path: drain() needs an .h5 file or memory, got {self.path}")
        part = self._memory_part()
        self._take_received()
        return part

    def _store_all(self) -> None:
        if self.path is not None:
            save_npz(self.demonstrations(), self.path, overwrite=self._overwrite, lock=self._lock)

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _memory_part(self) -> Demonstrations:
        steps, episodes = self._take_received()
        steps = steps or Steps(
            allocate(self.observation_space, 0),
            np.asarray(allocate(self.action_space, 0)),
            np.zeros(0),
            np.zeros(0, bool),
            {},
        )
        episodes = episodes or Episodes(
            np.zeros(0),
            np.zeros(0, np.int64),
            np.zeros(0, bool),
            np.zeros(0, bool),
            allocate(self.observation_space, 0),
        )
        self._steps, self._episodes = [steps], [episodes]  # kept: memory is the storage
        self._pending_steps = 0
        covered = int(episodes.lengths.sum())
        if covered < len(steps.starts):  # an exclusive stream's episode still running
            tail = close_unfinished(
                steps.starts[covered:],
                steps.rewards[covered:],
                take(steps.obs, slice(covered, None)),
                self._pending_final_obs,
            )
            episodes = Episodes(*(concat([a, b]) for a, b in zip(episodes, tail)))
        return Demonstrations.from_parts(
            steps, episodes, self.observation_space, self.action_space, metadata=self.metadata
        )


def open_sink(path: PathLike | None, observation_space: Space, action_space: Space, **kwargs: Any) -> Sink:
    """A :class:`FileSink` for an ``.h5``/``.hdf5`` path, else a :class:`MemorySink` (``.npz`` or None);
    ``kwargs`` as the backends take them."""
    if path is not None and format_of(path) == "hdf5":
        return FileSink(path, observation_space, action_space, **kwargs)
    return MemorySink(path, observation_space, action_space, **kwargs)
