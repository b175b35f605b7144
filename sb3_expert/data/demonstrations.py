"""The data model: :class:`Demonstrations`, validated, columnar and episode-aware.

The stable-baselines (v2) convention, extended. N steps of E episodes, concatenated in order:

- per step t: ``obs[t]`` (the observation the action was chosen on), ``actions[t]`` (as the
  environment received it), ``rewards[t]``, ``episode_starts[t]`` (True on each episode's
  first step), and optional ``infos[key][t]``;
- per episode e: ``episode_returns[e]``, ``episode_lengths[e]``, ``terminated[e]`` and
  ``truncated[e]`` (how it ended, kept apart as gymnasium's ``step`` defines them) and
  ``final_obs[e]`` (the observation after its last action: a replay buffer's ``next_obs``).

Dict observations are dicts of arrays with the same leading axis.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_expert.data.episodes import Episodes, Steps, Transitions, transitions
from sb3_expert.data.obs import ObsArray, concat, take
from sb3_expert.data.spaces import check_space, check_spaces_match
from sb3_expert.data.validation import arrays_equal, bool_vector, check_infos, check_leaf, check_obs, float_vector
from sb3_expert.errors import ArgumentValueError, DemonstrationError, IndexOutOfRangeError

__all__ = ["Demonstrations", "ObsArray", "Transitions", "library_versions"]


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the data, stored in files' metadata."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"numpy": np.__version__}
    for dist in ("sb3-expert", "gymnasium", "stable-baselines3"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Demonstrations:
    """Expert demonstrations: N steps of E whole episodes, validated on construction.

    :param obs: observations the actions were chosen on, ``(N, *obs_shape)`` in the observation
        space's dtype; a dict of such arrays for a Dict space
    :param actions: actions as the environment received them, ``(N, *action_shape)`` in the action
        space's dtype (``Discrete``: ``(N,)`` int64)
    :param rewards: ``(N,)``, stored as float64
    :param episode_starts: ``(N,)`` bool, True on the first step of each episode (so ``[0]`` is True)
    :param observation_space: the environment's observation space
    :param action_space: the environment's action space
    :param episode_returns: ``(E,)`` float64; computed from ``rewards`` when None, checked otherwise
    :param episode_lengths: ``(E,)`` int64; computed from ``episode_starts`` when None, checked otherwise
    :param terminated: ``(E,)`` bool, the episode reached a terminal state; default all True
        (what SB2 files, which do not say, are read as)
    :param truncated: ``(E,)`` bool, the episode was cut short (time limit, recording stopped);
        default all False
    :param final_obs: ``(E, *obs_shape)``, the observation after each episode's last action, or None
        when unknown (SB2 files)
    :param infos: chosen ``info`` keys, each an array ``(N, ...)``
    :param metadata: JSON-serialisable provenance: ``env_id``, ``producer``, ``created``, ``versions``...
    :raises DemonstrationError: naming the field, what was expected and what was received

    .. code-block:: python

        demos = load_demonstrations("expert_cartpole.npz")
        print(demos.n_episodes, demos.episode_returns.mean())
        best = demos.select_episodes(np.argsort(demos.episode_returns)[-10:])
        buffer_ready = best.transitions()
    """

    def __init__(
        self,
        obs: ObsArray,
        actions: np.ndarray,
        rewards: np.ndarray,
        episode_starts: np.ndarray,
        *,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        episode_returns: np.ndarray | None = None,
        episode_lengths: np.ndarray | None = None,
        terminated: np.ndarray | None = None,
        truncated: np.ndarray | None = None,
        final_obs: ObsArray | None = None,
        infos: Mapping[str, np.ndarray] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.observation_space = check_space(observation_space, name="observation_space", allow_dict=True)
        self.action_space = check_space(action_space, name="action_space", allow_dict=False)
        if not isinstance(actions, np.ndarray):
            raise DemonstrationError(f"actions: expected a numpy array, got {type(actions).__name__}")
        n = len(actions)
        self.actions = check_leaf("actions", actions, self.action_space, n)
        self.obs = check_obs("obs", obs, self.observation_space, n)
        self.rewards = float_vector("rewards", rewards, n)
        self.episode_starts = bool_vector("episode_starts", episode_starts, n)
        if n and not self.episode_starts[0]:
            raise DemonstrationError("episode_starts: expected True at index 0 (the first step starts an episode)")
        starts = np.flatnonzero(self.episode_starts)
        n_episodes = len(starts)
        lengths = np.diff(np.append(starts, n)).astype(np.int64)
        if episode_lengths is not None:
            given = np.asarray(episode_lengths)
            if given.shape != lengths.shape or not np.array_equal(given, lengths):
                raise DemonstrationError(
                    f"episode_lengths: expected {lengths.tolist()[:10]}{'...' if n_episodes > 10 else ''} "
                    f"(from episode_starts), got {given.tolist()[:10]}"
                )
        self.episode_lengths = lengths
        sums = np.add.reduceat(self.rewards, starts) if n else np.zeros(0)
        if episode_returns is None:
            self.episode_returns = sums
        else:
            self.episode_returns = float_vector("episode_returns", episode_returns, n_episodes)
            bad = ~np.isclose(self.episode_returns, sums, rtol=1e-5, atol=1e-4)
            if bad.any():
                e = int(np.flatnonzero(bad)[0])
                raise DemonstrationError(
                    f"episode_returns: expected the sum of each episode's rewards; episode {e} sums to "
                    f"{sums[e]!r}, got {self.episode_returns[e]!r} ({int(bad.sum())} episode(s) disagree)"
                )
        ones, zeros = np.ones(n_episodes, np.bool_), np.zeros(n_episodes, np.bool_)
        self.terminated = ones if terminated is None else bool_vector("terminated", terminated, n_episodes)
        self.truncated = zeros if truncated is None else bool_vector("truncated", truncated, n_episodes)
        contradictory = self.terminated == self.truncated
        if contradictory.any():
            e = int(np.flatnonzero(contradictory)[0])
            raise DemonstrationError(
                f"terminated, truncated: expected each episode to end one way (terminated, or truncated by a time "
                f"limit or the end of recording), got terminated={bool(self.terminated[e])} and "
                f"truncated={bool(self.truncated[e])} for episode {e} ({int(contradictory.sum())} episode(s))"
            )
        self.final_obs = (
            None if final_obs is None else check_obs("final_obs", final_obs, self.observation_space, n_episodes)
        )
        self.infos: dict[str, np.ndarray] = check_infos(infos or {}, n)
        try:
            self.metadata: dict[str, Any] = json.loads(json.dumps(dict(metadata or {})))
        except (TypeError, ValueError) as e:
            raise DemonstrationError(f"metadata: expected JSON-serialisable values, got {metadata!r}") from e

    # ------------------------------------------------------------------ sizes and views

    @property
    def n_steps(self) -> int:
        """Number of steps N."""
        return len(self.actions)

    @property
    def n_episodes(self) -> int:
        """Number of episodes E."""
        return len(self.episode_lengths)

    def __len__(self) -> int:
        return self.n_steps

    @cached_property
    def episode_offsets(self) -> np.ndarray:
        """``(E + 1,)`` int64: episode e covers steps ``offsets[e]:offsets[e + 1]``."""
        return np.concatenate([[0], np.cumsum(self.episode_lengths)]).astype(np.int64)

    @cached_property
    def episode_index(self) -> np.ndarray:
        """``(N,)`` int64: the episode each step belongs to."""
        return np.repeat(np.arange(self.n_episodes, dtype=np.int64), self.episode_lengths)

    def step_indices(self, episodes: Sequence[int] | np.ndarray) -> np.ndarray:
        """``(n,)`` int64: the indices of the steps of ``episodes``, in the order given."""
        episodes = np.asarray(episodes, dtype=np.int64).reshape(-1)
        if episodes.size and (episodes.min() < -self.n_episodes or episodes.max() >= self.n_episodes):
            raise IndexOutOfRangeError(f"episodes: expected indices in [0, {self.n_episodes}), got {episodes.tolist()}")
        episodes = episodes % max(self.n_episodes, 1)
        starts, lengths = self.episode_offsets[episodes], self.episode_lengths[episodes]
        if not episodes.size:
            return np.zeros(0, np.int64)
        # one arange per episode, without a Python loop
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        return np.arange(int(lengths.sum()), dtype=np.int64) + offsets

    def select_episodes(self, episodes: Sequence[int] | np.ndarray) -> Demonstrations:
        """A new :class:`Demonstrations` holding ``episodes`` (indices, in the order given)."""
        episodes = np.asarray(episodes, dtype=np.int64).reshape(-1)
        steps = self.step_indices(episodes)
        return Demonstrations(
            take(self.obs, steps),
            self.actions[steps],
            self.rewards[steps],
            self.episode_starts[steps],
            observation_space=self.observation_space,
            action_space=self.action_space,
            episode_returns=self.episode_returns[episodes],
            terminated=self.terminated[episodes],
            truncated=self.truncated[episodes],
            final_obs=None if self.final_obs is None else take(self.final_obs, episodes),
            infos={key: value[steps] for key, value in self.infos.items()},
            metadata=self.metadata,
        )

    def first_episodes(self, k: int) -> Demonstrations:
        """The first ``k`` whole episodes (all of them when ``k`` is larger)."""
        if k < 0:
            raise ArgumentValueError(f"k: expected a number of episodes >= 0, got {k}")
        return self.select_episodes(np.arange(min(k, self.n_episodes)))

    def episode(self, index: int) -> Demonstrations:
        """Episode ``index`` alone."""
        return self.select_episodes([index])

    def episodes(self) -> Iterator[Demonstrations]:
        """Iterate over the episodes, one :class:`Demonstrations` each."""
        for e in range(self.n_episodes):
            yield self.episode(e)

    @classmethod
    def concatenate(cls, parts: Sequence[Demonstrations]) -> Demonstrations:
        """Join demonstrations of the same spaces, episodes in order (metadata of the first).

        :raises EmptyDatasetError: when ``parts`` is empty
        :raises SpaceMismatchError: when the spaces differ
        """
        if not parts:
            from sb3_expert.errors import EmptyDatasetError

            raise EmptyDatasetError("parts: expected at least one Demonstrations to concatenate, got none")
        first = parts[0]
        for i, part in enumerate(parts[1:], start=1):
            for name in ("observation_space", "action_space"):
                check_spaces_match(
                    getattr(first, name), getattr(part, name), name=f"parts[{i}].{name}", what="parts[0]"
                )
        with_final = all(p.final_obs is not None for p in parts)
        info_keys = set.intersection(*(set(p.infos) for p in parts))

        return cls(
            concat([p.obs for p in parts]),
            np.concatenate([p.actions for p in parts]),
            np.concatenate([p.rewards for p in parts]),
            np.concatenate([p.episode_starts for p in parts]),
            observation_space=first.observation_space,
            action_space=first.action_space,
            episode_returns=np.concatenate([p.episode_returns for p in parts]),
            terminated=np.concatenate([p.terminated for p in parts]),
            truncated=np.concatenate([p.truncated for p in parts]),
            final_obs=concat([p.final_obs for p in parts]) if with_final else None,
            infos={key: np.concatenate([p.infos[key] for p in parts]) for key in sorted(info_keys)},
            metadata=first.metadata,
        )

    # ------------------------------------------------------------------ transitions

    def transitions(self, *, known_only: bool = False) -> Transitions:
        """Per-step ``(obs, action, reward, next_obs, terminated, truncated)`` for replay buffers
        (see :func:`sb3_expert.data.episodes.transitions`)."""
        return transitions(self, known_only=known_only)

    # ------------------------------------------------------------------ SB2 dict view

    def to_sb2_dict(self, *, extras: bool = False) -> dict[str, Any]:
        """The stable-baselines (v2) ``generate_expert_traj`` dict (see :func:`sb3_expert.data.npz.to_sb2_dict`)."""
        from sb3_expert.data.npz import to_sb2_dict

        return to_sb2_dict(self, extras=extras)

    @classmethod
    def from_sb2_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> Demonstrations:
        """Build from a stable-baselines (v2) dict (see :func:`sb3_expert.data.npz.from_sb2_dict`)."""
        from sb3_expert.data.npz import from_sb2_dict

        return from_sb2_dict(data, **kwargs)

    # ------------------------------------------------------------------ misc

    @classmethod
    def from_parts(
        cls,
        steps: Steps,
        episodes: Episodes,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        **kwargs: Any,
    ) -> Demonstrations:
        """Build from runs of :class:`~sb3_expert.data.episodes.Steps` and the
        :class:`~sb3_expert.data.episodes.Episodes` they make up; ``kwargs`` as the constructor's."""
        names = ("episode_returns", "episode_lengths", "terminated", "truncated", "final_obs")
        per_episode: dict[str, Any] = dict(zip(names, episodes), infos=steps.infos, **kwargs)
        return cls(
            steps.obs,
            steps.actions,
            steps.rewards,
            steps.starts,
            observation_space=observation_space,
            action_space=action_space,
            **per_episode,
        )

    def with_estimated_final_obs(self) -> Demonstrations:
        """Itself when ``final_obs`` is known; else a shallow copy in which each episode's last
        observation stands in for it, and ``metadata["final_obs_estimated"]`` says so (SB2 data)."""
        if self.final_obs is not None:
            return self
        estimate = take(self.obs, self.episode_offsets[1:] - 1)
        return self._copy(final_obs=estimate, metadata={**self.metadata, "final_obs_estimated": True})

    def with_metadata(self, **updates: Any) -> Demonstrations:
        """A shallow copy with ``metadata`` updated (arrays are shared, not copied)."""
        return self._copy(metadata={**self.metadata, **updates})

    def with_infos(self, infos: Mapping[str, Any]) -> Demonstrations:
        """A shallow copy with per-step ``infos`` added or replaced, each ``(n_steps, ...)``.

        :raises DemonstrationError: for an array whose length is not ``n_steps``
        """
        return self._copy(infos={**self.infos, **check_infos(infos, self.n_steps)})

    def _copy(self, **attributes: Any) -> Demonstrations:
        new = copy.copy(self)  # the arrays are shared: they are not changed in place
        new.__dict__.update(attributes)
        return new

    @staticmethod
    def default_metadata(**extra: Any) -> dict[str, Any]:
        """Provenance for new data: creation time and library versions, plus ``extra``."""
        return {"created": _now(), "versions": library_versions(), **extra}

    def __eq__(self, other: object) -> bool:
        """Exact equality of every array, space and the metadata."""
        if not isinstance(other, Demonstrations):
            return NotImplemented
        return (
            self.observation_space == other.observation_space
            and self.action_space == other.action_space
            and self.metadata == other.metadata
            and self.infos.keys() == other.infos.keys()
            and all(
                arrays_equal(getattr(self, name), getattr(other, name))
                for name in (
                    "obs",
                    "actions",
                    "rewards",
                    "episode_starts",
                    "episode_returns",
                    "episode_lengths",
                    "terminated",
                    "truncated",
                    "final_obs",
                )
            )
            and all(arrays_equal(self.infos[k], other.infos[k]) for k in self.infos)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        returns = self.episode_returns
        stats = f", return {returns.mean():.2f} +/- {returns.std():.2f}" if len(returns) else ""
        env = f", env_id={self.metadata['env_id']!r}" if self.metadata.get("env_id") else ""
        return (
            f"Demonstrations({self.n_steps} steps, {self.n_episodes} episodes{stats}{env}, "
            f"observation_space={self.observation_space}, action_space={self.action_space})"
        )
