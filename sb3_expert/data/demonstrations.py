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
import datetime
import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces

from sb3_expert.data.spaces import check_space, check_spaces_match, infer_space, step_layout
from sb3_expert.errors import DemonstrationError

__all__ = ["Demonstrations", "ObsArray", "Transitions", "library_versions"]

ObsArray = np.ndarray | dict[str, np.ndarray]
"""Observations: an array ``(N, *obs_shape)``, or for Dict spaces a dict of such arrays."""

SB2_KEYS = ("actions", "obs", "rewards", "episode_returns", "episode_starts")


class Transitions(NamedTuple):
    """Per-step transitions, as a replay buffer wants them (all arrays have leading axis N).

    ``next_obs`` is ``obs[t + 1]`` inside an episode and ``final_obs[e]`` on its last step;
    ``terminated`` / ``truncated`` are True only on the last step of an episode that ended so.
    """

    obs: ObsArray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: ObsArray
    terminated: np.ndarray
    truncated: np.ndarray


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


def _map_obs(obs: ObsArray, fn: Any) -> ObsArray:
    """Apply ``fn`` to an observation array, or to each array of a dict."""
    return {key: fn(value) for key, value in obs.items()} if isinstance(obs, dict) else fn(obs)


def _arrays_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_arrays_equal(a[k], b[k]) for k in a)
        )
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=np.issubdtype(a.dtype, np.floating)))


def check_finite(name: str, array: np.ndarray, *, offset: int = 0, where: str = "step") -> None:
    """Every row of a float ``array`` must be finite; the error names the first bad row (``offset + i``).

    :raises DemonstrationError: naming the field, the value and the row
    """
    if array.size == 0:
        return
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DemonstrationError(
            f"{name}: expected finite values, got {array[i].tolist()} at {where} {offset + i} ({int(bad.sum())} in all)"
        )


def check_range(name: str, array: np.ndarray, space: spaces.Space, *, offset: int = 0) -> None:
    """Discrete-family values must lie in the space, floats must be finite (vectorised; Box bounds
    are not enforced: environments clip). The error names the first bad row (``offset + i``).

    :raises DemonstrationError: naming the field, the space, the value and the row
    """
    if array.size == 0:
        return
    rows = array.reshape(len(array), -1)
    if isinstance(space, spaces.Discrete):
        low, high = np.int64(space.start), np.int64(space.start + space.n - 1)
    elif isinstance(space, spaces.MultiDiscrete):
        low, high = space.start.reshape(-1), (space.start + space.nvec - 1).reshape(-1)
    elif isinstance(space, spaces.MultiBinary):
        low, high = np.int64(0), np.int64(1)
    elif np.issubdtype(array.dtype, np.floating):
        check_finite(name, array, offset=offset)
        return
    else:
        return
    bad = ((rows < low) | (rows > high)).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DemonstrationError(
            f"{name}: expected values in [{np.asarray(low).tolist()}, {np.asarray(high).tolist()}] for {space}, "
            f"got {array[i].tolist()} at step {offset + i} ({int(bad.sum())} step(s))"
        )


def _check_leaf(name: str, array: Any, space: spaces.Space, length: int) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise DemonstrationError(f"{name}: expected a numpy array, got {type(array).__name__}")
    shape, dtype = step_layout(space)
    if array.shape != (length, *shape):
        raise DemonstrationError(
            f"{name}: expected shape {(length, *shape)} ({length} rows of {space}), got {array.shape}"
        )
    if array.dtype != dtype:
        raise DemonstrationError(
            f"{name}: expected dtype {dtype} (the dtype of {space}), got {array.dtype}; "
            f"convert it with .astype(np.{dtype.name})"
        )
    check_range(name, array, space)
    return array


def _check_obs(name: str, obs: Any, space: spaces.Space, length: int) -> ObsArray:
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, Mapping):
            raise DemonstrationError(f"{name}: expected a dict of arrays for {space}, got {type(obs).__name__}")
        if set(obs) != set(space.spaces):
            raise DemonstrationError(
                f"{name}: expected the keys {sorted(space.spaces)} of the Dict observation space, got {sorted(obs)}"
            )
        return {key: _check_leaf(f"{name}[{key!r}]", obs[key], sub, length) for key, sub in space.spaces.items()}
    if isinstance(obs, Mapping):
        raise DemonstrationError(f"{name}: got a dict, but the observation space is not a Dict: {space}")
    return _check_leaf(name, obs, space, length)


def _check_infos(infos: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    out = {}
    for key, value in infos.items():
        arr = np.asarray(value)
        if arr.ndim < 1 or len(arr) != n:
            raise DemonstrationError(f"infos[{key!r}]: expected {n} rows, got shape {arr.shape}")
        out[str(key)] = arr
    return out


def _bool_vector(name: str, value: Any, length: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (length,):
        raise DemonstrationError(f"{name}: expected shape ({length},), got {arr.shape}")
    if arr.dtype != np.bool_:
        if not (np.issubdtype(arr.dtype, np.integer) and np.isin(arr, (0, 1)).all()):
            raise DemonstrationError(f"{name}: expected booleans, got dtype {arr.dtype}")
        arr = arr.astype(np.bool_)
    return arr


def _float_vector(name: str, value: Any, length: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (length,):
        raise DemonstrationError(f"{name}: expected shape ({length},), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DemonstrationError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    check_finite(name, arr, where="index")
    return arr


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
        self.actions = _check_leaf("actions", actions, self.action_space, n)
        self.obs = _check_obs("obs", obs, self.observation_space, n)
        self.rewards = _float_vector("rewards", rewards, n)
        self.episode_starts = _bool_vector("episode_starts", episode_starts, n)
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
            self.episode_returns = _float_vector("episode_returns", episode_returns, n_episodes)
            bad = ~np.isclose(self.episode_returns, sums, rtol=1e-5, atol=1e-4)
            if bad.any():
                e = int(np.flatnonzero(bad)[0])
                raise DemonstrationError(
                    f"episode_returns: expected the sum of each episode's rewards; episode {e} sums to "
                    f"{sums[e]!r}, got {self.episode_returns[e]!r} ({int(bad.sum())} episode(s) disagree)"
                )
        ones, zeros = np.ones(n_episodes, np.bool_), np.zeros(n_episodes, np.bool_)
        self.terminated = ones if terminated is None else _bool_vector("terminated", terminated, n_episodes)
        self.truncated = zeros if truncated is None else _bool_vector("truncated", truncated, n_episodes)
        contradictory = self.terminated == self.truncated
        if contradictory.any():
            e = int(np.flatnonzero(contradictory)[0])
            raise DemonstrationError(
                f"terminated, truncated: expected each episode to end one way (terminated, or truncated by a time "
                f"limit or the end of recording), got terminated={bool(self.terminated[e])} and "
                f"truncated={bool(self.truncated[e])} for episode {e} ({int(contradictory.sum())} episode(s))"
            )
        self.final_obs = (
            None if final_obs is None else _check_obs("final_obs", final_obs, self.observation_space, n_episodes)
        )
        self.infos: dict[str, np.ndarray] = _check_infos(infos or {}, n)
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
            raise IndexError(f"episodes: expected indices in [0, {self.n_episodes}), got {episodes.tolist()}")
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
            _map_obs(self.obs, lambda a: a[steps]),
            self.actions[steps],
            self.rewards[steps],
            self.episode_starts[steps],
            observation_space=self.observation_space,
            action_space=self.action_space,
            episode_returns=self.episode_returns[episodes],
            terminated=self.terminated[episodes],
            truncated=self.truncated[episodes],
            final_obs=None if self.final_obs is None else _map_obs(self.final_obs, lambda a: a[episodes]),
            infos={key: value[steps] for key, value in self.infos.items()},
            metadata=self.metadata,
        )

    def first_episodes(self, k: int) -> Demonstrations:
        """The first ``k`` whole episodes (all of them when ``k`` is larger)."""
        if k < 0:
            raise ValueError(f"k: expected a number of episodes >= 0, got {k}")
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

        def cat(arrays: list[Any]) -> Any:
            if isinstance(arrays[0], dict):
                return {key: np.concatenate([a[key] for a in arrays]) for key in arrays[0]}
            return np.concatenate(arrays)

        return cls(
            cat([p.obs for p in parts]),
            np.concatenate([p.actions for p in parts]),
            np.concatenate([p.rewards for p in parts]),
            np.concatenate([p.episode_starts for p in parts]),
            observation_space=first.observation_space,
            action_space=first.action_space,
            episode_returns=np.concatenate([p.episode_returns for p in parts]),
            terminated=np.concatenate([p.terminated for p in parts]),
            truncated=np.concatenate([p.truncated for p in parts]),
            final_obs=cat([p.final_obs for p in parts]) if with_final else None,
            infos={key: np.concatenate([p.infos[key] for p in parts]) for key in sorted(info_keys)},
            metadata=first.metadata,
        )

    # ------------------------------------------------------------------ transitions

    def transitions(self, *, known_only: bool = False) -> Transitions:
        """Per-step ``(obs, action, reward, next_obs, terminated, truncated)`` for replay buffers.

        Without ``final_obs`` (SB2 files) the last step of a terminated episode gets its own
        observation as ``next_obs`` (a terminal transition never bootstraps on it).

        :param known_only: leave out the last step of each truncated episode whose next observation
            is unknown (no ``final_obs``) instead of raising
        :raises DemonstrationError: when ``final_obs`` is unknown and an episode was truncated
            (its next observation matters and cannot be made up), unless ``known_only``
        """
        last = self.episode_offsets[1:] - 1
        cut = self.truncated & ~self.terminated if self.final_obs is None else np.zeros(self.n_episodes, np.bool_)
        if cut.any() and not known_only:
            raise DemonstrationError(
                f"final_obs: unknown, but episode {int(np.flatnonzero(cut)[0])} was truncated and its "
                "next observation is needed; record with RecordDemonstrations to keep final_obs"
            )
        final = self.final_obs

        def shift(obs: np.ndarray, final_part: np.ndarray | None) -> np.ndarray:
            nxt = np.empty_like(obs)
            nxt[:-1] = obs[1:]
            if len(obs):
                nxt[last] = obs[last] if final_part is None else final_part
            return nxt

        if isinstance(self.obs, dict):
            next_obs: ObsArray = {
                key: shift(value, None if final is None else final[key]) for key, value in self.obs.items()
            }
        else:
            next_obs = shift(self.obs, final)  # type: ignore[arg-type]
        step_terminated = np.zeros(self.n_steps, np.bool_)
        step_truncated = np.zeros(self.n_steps, np.bool_)
        step_terminated[last] = self.terminated
        step_truncated[last] = self.truncated
        tr = Transitions(self.obs, self.actions, self.rewards, next_obs, step_terminated, step_truncated)
        if not cut.any():
            return tr
        keep = np.ones(self.n_steps, np.bool_)
        keep[last[cut]] = False
        obs, next_obs = (_map_obs(o, lambda array: array[keep]) for o in (tr.obs, tr.next_obs))
        return Transitions(obs, tr.actions[keep], tr.rewards[keep], next_obs, tr.terminated[keep], tr.truncated[keep])

    # ------------------------------------------------------------------ SB2 dict view

    def to_sb2_dict(self, *, extras: bool = False) -> dict[str, Any]:
        """The stable-baselines (v2) ``generate_expert_traj`` dict: its five keys, shapes and dtypes.

        ``actions`` of a Discrete space become ``(N, 1)``. With ``extras``, this library's fields
        are added under keys SB2 ignores (``episode_lengths``, ``terminated``, ``truncated``,
        ``final_obs``, ``infos.<key>``, ``metadata``; Dict observations as ``obs.<key>``).
        """
        actions = self.actions.reshape(-1, 1) if isinstance(self.action_space, spaces.Discrete) else self.actions
        out: dict[str, Any] = {
            "actions": actions,
            "obs": self.obs,
            "rewards": self.rewards,
            "episode_returns": self.episode_returns,
            "episode_starts": self.episode_starts,
        }
        if not extras:
            return out
        from sb3_expert.data.spaces import space_to_json

        if isinstance(self.obs, dict):
            del out["obs"]
            out.update({f"obs.{key}": value for key, value in self.obs.items()})
        out["episode_lengths"] = self.episode_lengths
        out["terminated"] = self.terminated
        out["truncated"] = self.truncated
        if isinstance(self.final_obs, dict):
            out.update({f"final_obs.{key}": value for key, value in self.final_obs.items()})
        elif self.final_obs is not None:
            out["final_obs"] = self.final_obs
        out.update({f"infos.{key}": value for key, value in self.infos.items()})
        out["observation_space"] = np.array(space_to_json(self.observation_space))
        out["action_space"] = np.array(space_to_json(self.action_space))
        out["metadata"] = np.array(json.dumps(self.metadata))
        return out

    @classmethod
    def from_sb2_dict(
        cls,
        data: Mapping[str, Any],
        *,
        observation_space: spaces.Space | None = None,
        action_space: spaces.Space | None = None,
        source: str = "data",
    ) -> Demonstrations:
        """Build from a stable-baselines (v2) dict (``np.load`` of its ``.npz``, or ``traj_data``).

        Spaces come from the arguments, else from the ``observation_space`` / ``action_space`` keys
        this library writes, else they are inferred (integer ``(N, 1)`` actions as ``Discrete``,
        anything else as an unbounded ``Box``; ``metadata["spaces_inferred"]`` is then True).

        :param source: what the dict came from (a file name), for error messages
        :raises DemonstrationError: naming ``source`` and the missing or wrong key
        """
        from sb3_expert.data.spaces import space_from_json

        keys = set(data.keys())
        dict_obs = {k.split(".", 1)[1]: data[k] for k in keys if k.startswith("obs.")}
        missing = [k for k in SB2_KEYS if k not in keys and not (k == "obs" and dict_obs)]
        if missing:
            raise DemonstrationError(
                f"{source}: missing key(s) {missing}; a stable-baselines expert dataset has {list(SB2_KEYS)}, "
                f"got {sorted(keys)}"
            )
        inferred = False
        if observation_space is None and "observation_space" in keys:
            observation_space = space_from_json(str(data["observation_space"]))
        if action_space is None and "action_space" in keys:
            action_space = space_from_json(str(data["action_space"]))
        obs: ObsArray = dict_obs if dict_obs else np.asarray(data["obs"])
        if observation_space is None:
            inferred = True
            if isinstance(obs, dict):
                observation_space = spaces.Dict(
                    {k: infer_space(v, name=f"{source}: obs.{k}") for k, v in sorted(obs.items())}
                )
            else:
                observation_space = infer_space(obs, name=f"{source}: obs")
        actions = np.asarray(data["actions"])
        if action_space is None:
            inferred = True
            action_space = infer_space(actions, name=f"{source}: actions", discrete_column=True)
        if isinstance(action_space, spaces.Discrete) and actions.ndim == 2 and actions.shape[1] == 1:
            actions = actions[:, 0]
        final_obs: ObsArray | None = {
            k.split(".", 1)[1]: np.asarray(data[k]) for k in keys if k.startswith("final_obs.")
        } or (np.asarray(data["final_obs"]) if "final_obs" in keys else None)
        metadata = json.loads(str(data["metadata"])) if "metadata" in keys else {}
        if inferred:
            metadata["spaces_inferred"] = True
        try:
            return cls(
                obs,
                actions,
                np.asarray(data["rewards"]),
                np.asarray(data["episode_starts"]),
                observation_space=observation_space,
                action_space=action_space,
                episode_returns=np.asarray(data["episode_returns"]),
                episode_lengths=np.asarray(data["episode_lengths"]) if "episode_lengths" in keys else None,
                terminated=np.asarray(data["terminated"]) if "terminated" in keys else None,
                truncated=np.asarray(data["truncated"]) if "truncated" in keys else None,
                final_obs=final_obs,
                infos={k.split(".", 1)[1]: np.asarray(data[k]) for k in sorted(keys) if k.startswith("infos.")},
                metadata=metadata,
            )
        except DemonstrationError as e:
            raise type(e)(f"{source}: {e}") from None

    # ------------------------------------------------------------------ misc

    def with_metadata(self, **updates: Any) -> Demonstrations:
        """A shallow copy with ``metadata`` updated (arrays are shared, not copied)."""
        return self._copy(metadata={**self.metadata, **updates})

    def with_infos(self, infos: Mapping[str, Any]) -> Demonstrations:
        """A shallow copy with per-step ``infos`` added or replaced, each ``(n_steps, ...)``.

        :raises DemonstrationError: for an array whose length is not ``n_steps``
        """
        return self._copy(infos={**self.infos, **_check_infos(infos, self.n_steps)})

    def _copy(self, **attributes: Any) -> Demonstrations:
        new = object.__new__(Demonstrations)
        new.__dict__.update(self.__dict__, **attributes)
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
                _arrays_equal(getattr(self, name), getattr(other, name))
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
            and all(_arrays_equal(self.infos[k], other.infos[k]) for k in self.infos)
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
