"""The recording core shared by the wrapper, the VecEnv wrapper, the callback and DAgger.

A :class:`Stream` holds the steps of one environment in preallocated buffers; per step the
recorders only copy into them. It hands runs of steps and the episodes they finish to a
:class:`~sb3_expert.record.sinks.Sink`, which writes them to a file or keeps them in memory.

An exclusive stream (a single environment) hands its buffer to the sink whenever it is full,
mid-episode included, so a crash loses at most one chunk. Streams that share a sink (the
sub-environments of a VecEnv) hand over whole episodes, which keeps each episode contiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_expert.arguments import check_flags
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.episodes import Episodes, Steps
from sb3_expert.data.obs import allocate, map_obs, set_row, take
from sb3_expert.errors import ActionError, ArgumentTypeError, DemonstrationError
from sb3_expert.record.sinks import Sink

__all__ = ["Stream", "action_error", "check_recorder_args"]


def check_recorder_args(info_keys: Any, **flags: Any) -> None:
    """What every recorder takes alike: ``info_keys`` a sequence of str (a lone str would be read as
    its letters) and its on/off flags (``overwrite``, ``append``, ``flush_every_episode``) bools.

    :raises ArgumentTypeError: naming the argument
    """
    if isinstance(info_keys, str) or not all(isinstance(key, str) for key in info_keys):
        raise ArgumentTypeError(
            f"info_keys: expected a sequence of str (('is_success',), not 'is_success'), got {info_keys!r}"
        )
    check_flags(**flags)


def action_error(action: Any, space: spaces.Space, e: Exception) -> ActionError:
    """The error for an ``action`` that does not fit ``space`` (``e``: why it did not)."""
    shape = getattr(action, "shape", None)
    got = f"{type(action).__name__}" + (f" of shape {shape}" if shape is not None else f" {action!r}")
    expected = "a scalar integer" if isinstance(space, spaces.Discrete) else f"an array of shape {space.shape}"
    return ActionError(f"action: expected {expected} for {space}, got {got} ({e})")


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
        self.obs = allocate(sink.observation_space, capacity)
        self.actions = np.asarray(allocate(sink.action_space, capacity))
        # integer actions (Discrete...) are buffered as float64, exact for whole numbers, so that a
        # fraction (0.7) is refused at hand-over instead of silently cast to 0 on the hot path
        self.action_dtype = self.actions.dtype
        if np.issubdtype(self.action_dtype, np.integer):
            self.actions = self.actions.astype(np.float64)
        self.rewards = np.zeros(capacity, np.float64)
        self.starts = np.zeros(capacity, np.bool_)
        self.final = allocate(sink.observation_space, capacity + 1)
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
        """Record one step: ``action`` chosen on ``last_obs``, then ``reward`` (the VecEnv recorders'
        path; the wrapper's is :meth:`record_step`)."""
        if self.i == self.capacity:
            self._make_room()
        i = self._put(action)
        self.rewards[i] = reward
        self.starts[i] = self.episode_steps == 0
        self.episode_steps += 1
        self.i = i + 1

    def record_step(self, action: Any, env_step: Callable[[Any], Any], *, flush_every_episode: bool = False) -> Any:
        """One step of an exclusive stream's environment, recorded: ``action`` is stored (an
        :class:`~sb3_expert.errors.ActionError` before the environment steps when it does not fit),
        ``env_step(action)`` runs, its reward and observation are kept; an episode that ends is
        closed (written at once with ``flush_every_episode``), a full buffer handed over.

        :return: what ``env_step`` returned
        """
        i = self._put(action)
        result = env_step(action)
        next_obs, reward, terminated, truncated, info = result
        self.rewards[i] = reward  # episode starts: begin() marks them, hand_over() moves the mark
        self.episode_steps += 1
        self.i = i + 1
        self.last_obs = next_obs
        if self.info_keys:
            self.record_infos(info)
        if terminated or truncated:
            self.end_episode(bool(terminated), bool(truncated and not terminated), next_obs)  # terminated wins (SB3)
            if flush_every_episode:
                self.hand_over(flush=True)
        if self.i == self.capacity:
            self.hand_over()
        return result

    def _put(self, action: Any) -> int:
        """Store ``action`` and the observation it was chosen on in the next row; return the row."""
        i = self.i
        try:
            self.actions[i] = action
        except (ValueError, TypeError) as e:
            raise action_error(action, self.sink.action_space, e) from None
        obs = self.obs
        if isinstance(obs, dict):  # set_row, inlined: both recorders' hot path
            for key, rows in obs.items():
                rows[i] = self.last_obs[key]
        else:
            obs[i] = self.last_obs
        return i

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
        set_row(self.final, len(self.ends), final_obs)
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
        return Episodes(returns, lengths, flags[:, 0], flags[:, 1], take(self.final, slice(0, len(ends)), copy=True))

    def hand_over(self, *, flush: bool = False) -> None:
        """Give the sink every recorded step and finished episode (shared streams: one whole episode,
        dropped if the sink's filter rejects it)."""
        n = self.i
        episodes = self._episode_batch()
        begin = self.ends[-1] if self.ends else 0
        running_return = float(self.rewards[begin:n].sum()) if self.running else 0.0
        keep = (
            episodes is None
            or self.exclusive
            or self.sink.accepts(float(episodes.returns[0]), int(episodes.lengths[0]))
        )
        if keep:
            steps = Steps(
                take(self.obs, slice(0, n), copy=True),
                self.actions_out(n),
                self.rewards[:n].copy(),
                self.starts[:n].copy(),
                take(self.infos, slice(0, n), copy=True),
            )
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

        self.obs = map_obs(self.obs, grow)
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
        final = allocate(self.sink.observation_space, 1)
        set_row(final, 0, self.last_obs)
        return Demonstrations(
            take(self.obs, slice(0, n), copy=True),
            self.actions_out(n),
            self.rewards[:n].copy(),
            self.starts[:n].copy(),
            observation_space=self.sink.observation_space,
            action_space=self.sink.action_space,
            terminated=np.zeros(1, bool),
            truncated=np.ones(1, bool),
            final_obs=final,
            infos=take(self.infos, slice(0, n), copy=True),
            metadata=self.sink.metadata,
        )
