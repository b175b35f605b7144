"""The recording core shared by the wrapper, the VecEnv wrapper and the callback.

A :class:`Stream` holds the steps of one environment in preallocated buffers; per step the
recorders only copy into them. A :class:`Sink` receives finished runs of steps and episodes and
writes them to one open file (``.h5``), or keeps them in memory (and writes ``.npz`` on close).

An exclusive stream (a single environment) hands its buffer to the sink whenever it is full,
mid-episode included, so a crash loses at most one chunk. Streams that share a sink (the
sub-environments of a VecEnv) hand over whole episodes, which keeps each episode contiguous.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_expert.data.demonstrations import Demonstrations, ObsArray
from sb3_expert.data.hdf5 import HDF5Writer, close_unfinished
from sb3_expert.data.npz import save_npz
from sb3_expert.data.paths import WriteLock, check_output_path, format_of
from sb3_expert.data.spaces import check_space, step_layout
from sb3_expert.errors import DemonstrationError

__all__ = ["Sink", "Stream"]


def _alloc(space: spaces.Space, n: int) -> ObsArray:
    if isinstance(space, spaces.Dict):
        return {str(k): _alloc(sub, n) for k, sub in space.spaces.items()}  # type: ignore[misc]
    shape, dtype = step_layout(space)
    return np.zeros((n, *shape), dtype=dtype)


def _rows(buf: ObsArray, sl: Any, copy: bool = True) -> ObsArray:
    if isinstance(buf, dict):
        return {k: (v[sl].copy() if copy else v[sl]) for k, v in buf.items()}
    return buf[sl].copy() if copy else buf[sl]


def _set_row(buf: ObsArray, i: int, value: Any) -> None:
    if isinstance(buf, dict):
        for k, v in buf.items():
            v[i] = value[k]
    else:
        buf[i] = value


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


Episodes = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, ObsArray]
"""A batch of finished episodes: ``(returns, lengths, terminated, truncated, final_obs)``."""


class Sink:
    """Where finished steps and episodes go: an ``.h5`` file, or memory (``.npz`` written on close).

    :param path: ``.h5``/``.hdf5`` (written as it goes), ``.npz`` (written on :meth:`close`), or None
    :param observation_space: the environment's observation space
    :param action_space: the environment's action space
    :param overwrite: replace an existing file
    :param append: add to an existing file (``.npz``: read, then rewritten on close)
    :param metadata: provenance stored in the file
    :param chunk_size: steps gathered before a write to the file
    :param compression: the HDF5 compression (see :class:`~sb3_expert.data.hdf5.HDF5Writer`)
    :param episode_filter: called with ``(episode_return, length)``; episodes it rejects are dropped
        (only shared streams, which hand over whole episodes, apply it)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        overwrite: bool = False,
        append: bool = False,
        metadata: Mapping[str, Any] | None = None,
        chunk_size: int = 4096,
        compression: Any = "auto",
        episode_filter: Callable[[float, int], bool] | None = None,
    ) -> None:
        self.observation_space = check_space(observation_space, name="observation_space", allow_dict=True)
        self.action_space = check_space(action_space, name="action_space", allow_dict=False)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size: expected an integer >= 1, got {chunk_size!r}")
        self.metadata = {**Demonstrations.default_metadata(), **(metadata or {})}
        self.chunk_size = chunk_size
        self.episode_filter = episode_filter
        self.path = None if path is None else Path(path)
        self.writer: HDF5Writer | None = None
        self._lock: WriteLock | None = None
        self._previous: Demonstrations | None = None
        self._overwrite = overwrite
        if self.path is not None:
            if format_of(self.path) == "hdf5":
                self.writer = HDF5Writer(
                    self.path, observation_space, action_space, overwrite=overwrite, append=append,
                    metadata=self.metadata, compression=compression,
                )  # fmt: skip
            else:  # .npz: written by close(); the lock, held from now, also checks the folder is writable
                if append and self.path.exists():
                    from sb3_expert.data.npz import load_npz

                    self._previous = load_npz(self.path)
                    self._overwrite = True
                else:
                    check_output_path(self.path, overwrite=overwrite)
                self._lock = WriteLock(self.path)
        # received and not yet written (in memory: everything received)
        self._steps: list[tuple[ObsArray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        self._episodes: list[Episodes] = []
        self._pending_steps = 0
        self._pending_final_obs: ObsArray | None = None
        self.n_steps = 0
        self.n_episodes = 0
        self._drained = 0  # episodes of the file already drained
        self.closed = False

    def push(
        self,
        steps: tuple[ObsArray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]] | None,
        episodes: Episodes | None,
        *,
        pending_final_obs: ObsArray | None = None,
        flush: bool = False,
    ) -> None:
        """Receive steps ``(obs, actions, rewards, starts, infos)`` (arrays it may keep) and the
        episodes they finish; write to the file when a chunk is full or ``flush``."""
        if steps is not None and len(steps[1]):
            self._steps.append(steps)
            self._pending_steps += len(steps[1])
            self.n_steps += len(steps[1])
        if episodes is not None and len(episodes[1]):
            self._episodes.append(episodes)
            self.n_episodes += len(episodes[1])
        self._pending_final_obs = pending_final_obs
        if self.writer is not None and (flush or self._pending_steps >= self.chunk_size):
            self.write()

    def accepts(self, episode_return: float, length: int) -> bool:
        """Whether an episode passes ``episode_filter``."""
        return self.episode_filter is None or bool(self.episode_filter(episode_return, length))

    def flush(self, streams: Sequence[Stream]) -> None:
        """Make everything the ``streams`` can hand over durable: their finished episodes, and the
        running episode of an exclusive stream (a shared stream's running episode is written when it
        ends: episodes stay contiguous in the file). A no-op in memory and for ``.npz``."""
        if self.closed or self.writer is None:
            return
        for stream in streams:
            if stream.exclusive:
                stream.hand_over()
        self.write()  # one commit for all

    def write(self) -> None:
        """Write what was received to the ``.h5`` file and flush it (no-op in memory)."""
        if self.writer is None:
            return
        if self._steps:
            self.writer.append_steps(*self._gather_steps())
            self._steps.clear()
            self._pending_steps = 0
        if self._episodes:
            self.writer.end_episodes(*self._gather_episodes())
            self._episodes.clear()
        self.writer.flush(self._pending_final_obs)

    def _gather_steps(self) -> tuple[ObsArray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        parts = self._steps
        if len(parts) == 1:
            return parts[0]
        return (
            _concat([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([p[3] for p in parts]),
            {k: np.concatenate([p[4][k] for p in parts]) for k in parts[0][4]},
        )

    def _gather_episodes(self) -> Episodes:
        parts = self._episodes
        if len(parts) == 1:
            return parts[0]
        return tuple(_concat([p[k] for p in parts]) for k in range(5))

    def demonstrations(self, running: Sequence[Stream] = ()) -> Demonstrations:
        """Everything received (from memory, or read back from the file) plus the ``running``
        streams' steps; an episode still running is included as truncated."""
        snapshots = []
        for stream in running:
            if stream.exclusive:
                stream.hand_over()
            else:
                snapshots.append(stream.snapshot())
        parts: list[Demonstrations] = []
        if self.writer is not None:
            self.write()
            from sb3_expert.data.hdf5 import HDF5Reader

            with HDF5Reader(self.writer.path) as reader:
                parts.append(reader.load())
        else:
            if self._previous is not None:
                parts.append(self._previous)
            parts.append(self._memory_part())
        parts.extend(part for part in snapshots if part is not None)
        return Demonstrations.concatenate(parts) if len(parts) > 1 else parts[0]

    def drain(self) -> Demonstrations:
        """The episodes received since the last drain: read back from the ``.h5`` file, or taken from
        memory (which then forgets them). For shared streams (whole episodes); not for ``.npz``,
        which is written from memory on close.

        :raises TypeError: for a sink writing ``.npz``
        """
        if self.writer is not None:
            self.write()
            from sb3_expert.data.hdf5 import HDF5Reader

            with HDF5Reader(self.writer.path) as reader:
                part = reader.load(first=self._drained)
                self._drained = reader.n_episodes
            return part
        if self.path is not None:
            raise TypeError(f"path: drain() needs an .h5 file or memory, got {self.path}")
        part = self._memory_part()
        self._steps.clear()
        self._episodes.clear()
        return part

    def _memory_part(self) -> Demonstrations:
        if self._steps:
            self._steps = [self._gather_steps()]
            obs, actions, rewards, starts, infos = self._steps[0]
        else:
            obs, actions = _alloc(self.observation_space, 0), _alloc(self.action_space, 0)  # type: ignore[assignment]
            rewards, starts, infos = np.zeros(0), np.zeros(0, bool), {}
        if self._episodes:
            self._episodes = [self._gather_episodes()]
            returns, lengths, terminated, truncated, final = self._episodes[0]
        else:
            returns, lengths = np.zeros(0), np.zeros(0, np.int64)
            terminated, truncated = np.zeros(0, bool), np.zeros(0, bool)
            final = _alloc(self.observation_space, 0)
        covered = int(lengths.sum())
        if covered < len(starts):  # an exclusive stream's episode still running
            tail = close_unfinished(
                starts[covered:], rewards[covered:], _rows(obs, slice(covered, None), copy=False),
                self._pending_final_obs,
            )  # fmt: skip
            returns, lengths, terminated, truncated, final = (
                _concat([a, b]) for a, b in zip((returns, lengths, terminated, truncated, final), tail)
            )
        return Demonstrations(
            obs, actions, rewards, starts,
            observation_space=self.observation_space, action_space=self.action_space,
            episode_returns=returns, episode_lengths=lengths, terminated=terminated, truncated=truncated,
            final_obs=final, infos=infos, metadata=self.metadata,
        )  # fmt: skip

    def close(self, running: Sequence[Stream] = ()) -> None:
        """End the ``running`` streams' episodes as truncated, write everything and close. Idempotent.

        After a failed write (raised where it happened) it only closes the file, which keeps what
        was committed before the failure."""
        if self.closed:
            return
        writer = self.writer
        try:
            if writer is None or not writer.failed:
                for stream in running:
                    stream.end_recording()
                if writer is not None:
                    self.write()
                elif self.path is not None:
                    save_npz(self.demonstrations(), self.path, overwrite=self._overwrite, lock=self._lock)
        finally:
            if writer is not None:
                writer.close()
            if self._lock is not None:
                self._lock.release()
            self.closed = True


class Stream:
    """One environment's steps, copied into preallocated buffers.

    Finished episodes are noted as their end row and flags, and their final observation is copied
    into a buffer; returns and lengths are computed, vectorised, when the buffer is handed over.

    :param sink: where finished steps go
    :param exclusive: the only stream of its sink: hands over full buffers, mid-episode too; else
        hands over each episode whole when it ends (and grows its buffers for long ones)
    :param capacity: rows per buffer
    :param info_keys: ``info`` keys to record per step
    """

    def __init__(self, sink: Sink, *, exclusive: bool, capacity: int, info_keys: Sequence[str] = ()) -> None:
        self.sink = sink
        self.exclusive = exclusive
        self.capacity = capacity
        self.info_keys = tuple(info_keys)
        self.obs = _alloc(sink.observation_space, capacity)
        self.actions: np.ndarray = _alloc(sink.action_space, capacity)  # type: ignore[assignment]
        # integer actions (Discrete...) are buffered as float64, exact for whole numbers, so that a
        # fraction (0.7) is refused at hand-over instead of silently cast to 0 on the hot path
        self.action_dtype = self.actions.dtype
        if np.issubdtype(self.action_dtype, np.integer):
            self.actions = self.actions.astype(np.float64)
        self.rewards = np.zeros(capacity, np.float64)
        self.starts = np.zeros(capacity, np.bool_)
        self.final = _alloc(sink.observation_space, capacity + 1)
        self.infos: dict[str, np.ndarray] = {}
        self.i = 0  # rows used
        self.last_obs: Any = None  # the observation the next action is chosen on
        self.running = False  # an episode is under way
        self.episode_steps = 0  # steps of the current episode, handed-over ones included
        self.carried_steps = 0  # steps of the buffer's first episode handed over earlier
        self.carried_return = 0.0  # their rewards
        self.ends: list[int] = []  # end rows (exclusive) of the episodes finished in this buffer
        self.flags: list[tuple[bool, bool]] = []  # their (terminated, truncated)

    @property
    def n_finished(self) -> int:
        """Episodes finished and not yet handed over."""
        return len(self.ends)

    def begin(self, obs: Any) -> None:
        """An episode starts on ``obs`` (after a reset); one still running ends as truncated."""
        if self.running and self.episode_steps:
            self.end_episode(False, True, self.last_obs)
        self.last_obs = obs
        self.running = True
        self.episode_steps = 0
        if self.i < self.capacity:  # (record() sets it too, for streams that make room first)
            self.starts[self.i] = True

    def record(self, action: Any, reward: float) -> None:
        """Record one step: ``action`` chosen on ``last_obs``, then ``reward``. (The wrapper inlines
        this; the VecEnv recorders call it.)"""
        i = self.i
        if i == self.capacity:
            self._make_room()
            i = self.i
        self.actions[i] = action
        _set_row(self.obs, i, self.last_obs)
        self.rewards[i] = reward
        self.starts[i] = self.episode_steps == 0
        self.episode_steps += 1
        self.i = i + 1

    def actions_out(self, n: int) -> np.ndarray:
        """The first ``n`` buffered actions in the action space's dtype (a copy).

        :raises DemonstrationError: for an integer action space given a fraction, naming the step
        """
        actions = self.actions[:n]
        if actions.dtype == self.action_dtype:
            return actions.copy()
        whole = (actions == np.round(actions)).reshape(n, -1).all(axis=1) if n else np.ones(0, np.bool_)
        if not whole.all():
            i = int(np.flatnonzero(~whole)[0])
            raise DemonstrationError(
                f"actions: expected whole numbers for {self.sink.action_space}, got {actions[i].tolist()} "
                f"at step {self.sink.n_steps + i} of this recording"
            )
        return actions.astype(self.action_dtype)

    def record_infos(self, info: Mapping[str, Any]) -> None:
        """Copy the chosen ``info`` keys of the step just recorded."""
        row = self.i - 1
        for key in self.info_keys:
            if key not in self.infos:
                if key not in info:
                    raise DemonstrationError(
                        f"info_keys: expected the key {key!r} in the step's info, got the keys {sorted(info)}"
                    )
                value = np.asarray(info[key])
                self.infos[key] = np.zeros((len(self.rewards), *value.shape), value.dtype)
            self.infos[key][row] = info[key]

    def end_episode(self, terminated: bool, truncated: bool, final_obs: Any) -> None:
        """The current episode ended after its last recorded step; ``final_obs`` followed it."""
        if not self.running:
            return
        self.running = False
        _set_row(self.final, len(self.ends), final_obs)
        self.ends.append(self.i)
        self.flags.append((terminated, truncated))
        if not self.exclusive:
            self.hand_over()

    def _episode_batch(self) -> Episodes | None:
        """The finished episodes of the buffer as arrays (returns by ``np.add.reduceat``)."""
        if not self.ends:
            return None
        ends = np.array(self.ends, np.int64)
        begins = np.concatenate([[0], ends[:-1]])
        lengths = ends - begins
        returns = np.add.reduceat(self.rewards[: ends[-1]], begins) if ends[-1] else np.zeros(len(ends))
        returns[lengths == 0] = 0.0  # reduceat gives rewards[begin] for empty segments
        lengths[0] += self.carried_steps
        returns[0] += self.carried_return
        flags = np.array(self.flags, np.bool_).reshape(-1, 2)
        return returns, lengths, flags[:, 0], flags[:, 1], _rows(self.final, slice(0, len(ends)))

    def hand_over(self, *, flush: bool = False) -> None:
        """Give the sink every recorded step and finished episode (shared streams: one whole episode,
        dropped if the sink's filter rejects it)."""
        n = self.i
        episodes = self._episode_batch()
        begin = self.ends[-1] if self.ends else 0
        running_return = float(self.rewards[begin:n].sum()) if self.running else 0.0
        keep = episodes is None or self.exclusive or self.sink.accepts(float(episodes[0][0]), int(episodes[1][0]))
        if keep:
            steps = (
                _rows(self.obs, slice(0, n)), self.actions_out(n), self.rewards[:n].copy(),
                self.starts[:n].copy(), {k: v[:n].copy() for k, v in self.infos.items()},
            )  # fmt: skip
            pending = self.last_obs if self.running else None
            self.sink.push(steps, episodes, pending_final_obs=pending, flush=flush)
        if self.running:  # the running episode continues in the next buffer
            self.carried_return = (self.carried_return if not self.ends else 0.0) + running_return
            self.carried_steps = self.episode_steps
        else:
            self.carried_return, self.carried_steps = 0.0, 0
        self.starts[: n + 1] = False  # row n too: begin() marks the start of an episode with no step yet
        self.i = 0
        if self.running and self.episode_steps == 0:
            self.starts[0] = True  # that mark moves with the rows
        self.ends.clear()
        self.flags.clear()

    def _make_room(self) -> None:
        if self.exclusive:
            self.hand_over()
            return
        # a shared stream keeps whole episodes: grow the buffers
        self.capacity *= 2

        def grow(buf: np.ndarray) -> np.ndarray:
            new = np.zeros((self.capacity + 1, *buf.shape[1:]), buf.dtype)
            new[: len(buf)] = buf
            return new

        self.obs = {k: grow(v) for k, v in self.obs.items()} if isinstance(self.obs, dict) else grow(self.obs)
        self.actions, self.rewards, self.starts = grow(self.actions), grow(self.rewards), grow(self.starts)
        self.infos = {k: grow(v) for k, v in self.infos.items()}

    def drop(self) -> None:
        """Forget the running episode's steps (shared streams) and stop recording."""
        self.running = False
        if not self.exclusive:
            self.i = 0
            self.starts[:] = False

    def end_recording(self) -> None:
        """Recording stops: the running episode (if it has steps) ends as truncated; all is handed over."""
        if self.running and self.episode_steps:
            self.end_episode(False, True, self.last_obs)
        self.running = False
        if self.exclusive:
            self.hand_over(flush=True)
        else:
            self.i = 0

    def snapshot(self) -> Demonstrations | None:
        """A shared stream's running episode (its steps are all here), as one truncated episode;
        None when it has no steps or the sink's filter rejects it. The stream is left as it was."""
        n = self.i
        if not (self.running and n) or not self.sink.accepts(float(self.rewards[:n].sum()), n):
            return None
        final = _alloc(self.sink.observation_space, 1)
        _set_row(final, 0, self.last_obs)
        return Demonstrations(
            _rows(self.obs, slice(0, n)), self.actions_out(n), self.rewards[:n].copy(), self.starts[:n].copy(),
            observation_space=self.sink.observation_space, action_space=self.sink.action_space,
            terminated=np.zeros(1, bool), truncated=np.ones(1, bool), final_obs=final,
            infos={k: v[:n].copy() for k, v in self.infos.items()}, metadata=self.sink.metadata,
        )  # fmt: skip
