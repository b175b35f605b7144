"""Demonstrations to and from Minari datasets and ``imitation`` trajectories (optional extras).

Minari and ``imitation`` keep ``T + 1`` observations per episode (the final one included) and
one ``terminal`` flag; this library keeps ``T`` plus ``final_obs``, with terminated and truncated
apart. ``imitation`` pins an old SB3, so its trajectories are converted by structure (any objects
with ``obs``, ``acts``, ``rews``, ``terminal``, ``infos``) without importing it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces

from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.obs import ObsArray, concat, map_obs, take
from sb3_expert.errors import UnsupportedSpaceError

__all__ = [
    "Trajectory",
    "from_imitation",
    "from_minari",
    "load_imitation_npz",
    "save_imitation_npz",
    "to_imitation",
    "to_minari",
]


def _episode_obs(demos: Demonstrations, e: int) -> ObsArray:
    """Episode ``e``'s ``T + 1`` observations (its final observation last)."""
    a, b = demos.episode_offsets[e], demos.episode_offsets[e + 1]
    last = take(demos.obs, slice(b - 1, b)) if demos.final_obs is None else take(demos.final_obs, slice(e, e + 1))
    return concat([take(demos.obs, slice(a, b)), last])


def _from_episodes(
    episodes: Iterable[tuple[Any, ...]],
    observation_space: spaces.Space,
    action_space: spaces.Space,
    metadata: dict[str, Any],
) -> Demonstrations:
    """Build from ``(obs (T+1), actions (T), rewards (T), terminated, truncated)`` per episode."""
    obs: list[Any] = []
    final: list[Any] = []
    acts, rews, starts, terms, truncs = [], [], [], [], []
    for ep_obs, ep_acts, ep_rews, terminated, truncated in episodes:
        n = len(ep_acts)
        ep_obs = map_obs(ep_obs, np.asarray)
        obs.append(take(ep_obs, slice(0, n)))
        final.append(take(ep_obs, slice(n, n + 1)))
        acts.append(np.asarray(ep_acts))
        rews.append(np.asarray(ep_rews, np.float64))
        starts.append(np.arange(n) == 0)
        terms.append(terminated)
        truncs.append(truncated)

    discrete = isinstance(action_space, spaces.Discrete)
    actions = concat(acts).astype(action_space.dtype)
    return Demonstrations(
        concat(obs),
        actions.reshape(-1) if discrete else actions,
        concat(rews),
        concat(starts),
        observation_space=observation_space,
        action_space=action_space,
        terminated=np.array(terms, bool),
        truncated=np.array(truncs, bool),
        final_obs=concat(final),
        metadata=metadata,
    )


def to_minari(demos: Demonstrations, dataset_id: str, *, env: Any = None, **kwargs: Any) -> Any:
    """Create the Minari dataset ``dataset_id`` (``namespace/name-v0``) from ``demos``.

    :param env: the env id or env (Minari records its spec); default ``demos.metadata["env_id"]``
    :param kwargs: passed to ``minari.create_dataset_from_buffers`` (``algorithm_name``, ``author``...)
    :return: the ``MinariDataset``
    """
    try:
        import minari
        from minari.data_collector import EpisodeBuffer
    except ImportError as err:
        raise ImportError("Minari interop needs minari: pip install 'sb3-expert[minari]'") from err
    buffers = []
    for e in range(demos.n_episodes):
        a, b = demos.episode_offsets[e], demos.episode_offsets[e + 1]
        ep_obs = _episode_obs(demos, e)
        observations: Any = map_obs(ep_obs, list)
        buffers.append(
            EpisodeBuffer(
                id=e,
                observations=observations,
                actions=list(demos.actions[a:b]),
                rewards=list(demos.rewards[a:b]),
                terminations=[False] * (b - a - 1) + [bool(demos.terminated[e])],
                truncations=[False] * (b - a - 1) + [bool(demos.truncated[e])],
            )
        )
    return minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=env if env is not None else demos.metadata.get("env_id"),
        observation_space=demos.observation_space,
        action_space=demos.action_space,
        **kwargs,
    )


def from_minari(dataset: Any) -> Demonstrations:
    """Demonstrations from a Minari dataset (a ``MinariDataset`` or a local dataset id)."""
    try:
        import minari
    except ImportError as e:
        raise ImportError("Minari interop needs minari: pip install 'sb3-expert[minari]'") from e
    if isinstance(dataset, str):
        dataset = minari.load_dataset(dataset)
    episodes = (
        (ep.observations, ep.actions, ep.rewards, bool(ep.terminations[-1]), bool(ep.truncations[-1]))
        for ep in dataset.iterate_episodes()
    )
    spec = dataset.spec
    metadata = {"producer": {"converted_from": "minari", "dataset_id": spec.dataset_id}}
    if spec.env_spec is not None:
        metadata["env_id"] = spec.env_spec.id
    return _from_episodes(episodes, dataset.observation_space, dataset.action_space, metadata)


class Trajectory(NamedTuple):
    """``imitation``'s ``TrajectoryWithRew`` by structure: ``obs`` (T+1), ``acts`` (T), ``infos``,
    ``terminal`` (the episode terminated rather than was truncated), ``rews`` (T)."""

    obs: np.ndarray
    acts: np.ndarray
    infos: np.ndarray | None
    terminal: bool
    rews: np.ndarray


def to_imitation(demos: Demonstrations) -> list[Any]:
    """One trajectory per episode: ``imitation.data.types.TrajectoryWithRew`` when imitation is
    installed, else :class:`Trajectory` (same fields), which imitation's code accepts by structure."""
    try:
        from imitation.data.types import TrajectoryWithRew as cls
    except ImportError:
        cls = Trajectory
    out = []
    for e in range(demos.n_episodes):
        a, b = demos.episode_offsets[e], demos.episode_offsets[e + 1]
        out.append(
            cls(
                obs=_episode_obs(demos, e),
                acts=demos.actions[a:b],
                infos=None,
                terminal=bool(demos.terminated[e]),
                rews=demos.rewards[a:b].astype(np.float32),
            )
        )
    return out


def from_imitation(
    trajectories: Sequence[Any], observation_space: spaces.Space, action_space: spaces.Space
) -> Demonstrations:
    """Demonstrations from ``imitation`` trajectories (anything with ``obs``, ``acts``, ``terminal``,
    and ``rews`` when known: zeros otherwise). ``terminal=False`` is read as truncated."""
    episodes = (
        (
            t.obs,
            t.acts,
            getattr(t, "rews", None) if getattr(t, "rews", None) is not None else np.zeros(len(t.acts)),
            bool(t.terminal),
            not bool(t.terminal),
        )
        for t in trajectories
    )
    return _from_episodes(episodes, observation_space, action_space, {"producer": {"converted_from": "imitation"}})


def save_imitation_npz(demos: Demonstrations, path: str) -> None:
    """Write ``imitation``'s ``.npz`` trajectory file (``obs`` with each episode's final observation,
    ``acts``, ``infos``, ``terminal``, ``rews``, ``indices``), which ``imitation.data.serialize.load``
    reads in every version (recent ones with a deprecation warning, their own format being a HF
    ``datasets`` folder). Dict observations are not supported by that format."""
    if isinstance(demos.obs, dict):
        raise UnsupportedSpaceError("demos: imitation's .npz trajectories cannot hold Dict observations")
    trajs = to_imitation(demos)
    infos = np.empty(demos.n_steps, dtype=object)
    infos[:] = [{} for _ in range(demos.n_steps)]
    from pathlib import Path

    from sb3_expert.data.paths import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:  # a kill leaves the old file whole
        np.savez_compressed(
            f,
            obs=np.concatenate([t.obs for t in trajs]),
            acts=demos.actions,
            infos=infos,
            terminal=demos.terminated.copy(),
            rews=demos.rewards.astype(np.float32),
            indices=demos.episode_offsets[1:-1],
        )


def load_imitation_npz(
    path: str, observation_space: spaces.Space | None = None, action_space: spaces.Space | None = None
) -> Demonstrations:
    """Read ``imitation``'s ``.npz`` trajectory file (its ``infos`` are not read: they need pickle).
    Spaces are inferred when not given (integer 1-D actions as ``Discrete``)."""
    import zipfile

    from sb3_expert.data.paths import check_input_path
    from sb3_expert.data.spaces import infer_space
    from sb3_expert.errors import DemonstrationFileError

    file = check_input_path(path)
    try:
        with np.load(file, allow_pickle=False) as data:
            obs, acts, terminal, indices = data["obs"], data["acts"], data["terminal"], data["indices"]
            rews = data["rews"] if "rews" in data.files else np.zeros(len(acts))
    except KeyError as e:
        raise DemonstrationFileError(
            f"{file}: not an imitation trajectory file: expected the keys obs, acts, terminal, indices ({e})"
        ) from e
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise DemonstrationFileError(f"{file}: not a readable imitation .npz file: {e}") from e
    n = len(terminal)
    bounds = np.concatenate([[0], indices, [len(acts)]])
    if len(indices) != n - 1 or len(obs) != len(acts) + n or np.any(np.diff(bounds) <= 0):
        raise DemonstrationFileError(
            f"{file}: inconsistent imitation trajectories: {n} episodes, {len(indices)} split indices "
            f"(expected {n - 1}, increasing inside the actions), {len(acts)} actions and {len(obs)} observations "
            f"(expected {len(acts) + n})"
        )
    obs_parts = np.split(obs, indices + np.arange(n)[: len(indices)] + 1)
    act_parts, rew_parts = np.split(acts, indices), np.split(rews, indices)
    if observation_space is None:
        observation_space = infer_space(obs, name=f"{path}: obs")
    if action_space is None:
        column = acts.reshape(-1, 1) if acts.ndim == 1 else acts
        action_space = infer_space(column, name=f"{path}: acts", discrete_column=acts.ndim == 1)
    trajs = [Trajectory(o, a, None, bool(t), r) for o, a, t, r in zip(obs_parts, act_parts, terminal, rew_parts)]
    return from_imitation(trajs, observation_space, action_space)
