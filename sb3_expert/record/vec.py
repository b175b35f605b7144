"""``VecRecordDemonstrations``: record every sub-environment of an SB3 VecEnv."""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.obs import take
from sb3_expert.errors import ArgumentTypeError
from sb3_expert.record.sinks import open_sink
from sb3_expert.record.streams import Stream, check_recorder_args
from sb3_expert.record.wrapper import buffer_rows

__all__ = ["VecRecordDemonstrations", "VecStep", "record_vec_step", "vec_env_id"]


class VecStep(NamedTuple):
    """What one ``VecEnv.step`` gave, with the actions that were sent."""

    actions: np.ndarray
    rewards: np.ndarray
    new_obs: Any
    dones: np.ndarray
    infos: Sequence[dict[str, Any]]


def record_vec_step(
    streams: Sequence[Stream],
    step: VecStep,
    *,
    terminal_obs: Any = None,
    active: Sequence[bool] | None = None,
    episode_budget: float = np.inf,
) -> int:
    """Record one VecEnv step in every (active) sub-environment's stream, SB3's auto-reset handled.

    A finished episode's final observation is ``infos[i]["terminal_observation"]`` (or
    ``terminal_obs(i)`` when given, e.g. to undo VecNormalize); it was truncated when
    ``infos[i]["TimeLimit.truncated"]``; the next episode starts on ``new_obs[i]``.

    :param episode_budget: keep at most this many more episodes; episodes ending past it are dropped
    :return: number of episodes kept
    """
    actions, rewards, new_obs, dones, infos = step
    ended = 0
    for i, stream in enumerate(streams):
        if active is not None and not active[i]:
            continue
        if not stream.running:
            stream.begin(take(new_obs, i))
            continue
        stream.record(actions[i], rewards[i])
        if stream.info_keys:
            stream.record_infos(infos[i])
        if dones[i]:
            truncated = bool(infos[i].get("TimeLimit.truncated", False))
            final = terminal_obs(i) if terminal_obs is not None else infos[i].get("terminal_observation")
            if final is None:
                final = take(new_obs, i)
            if ended < episode_budget:
                kept = stream.sink.n_episodes + stream.n_finished
                stream.end_episode(not truncated, truncated, final)
                ended += stream.sink.n_episodes + stream.n_finished - kept
            else:
                stream.drop()
            stream.begin(take(new_obs, i))
        else:
            stream.last_obs = take(new_obs, i)
    return ended


class VecRecordDemonstrations(VecEnvWrapper):
    """Record every sub-environment of a VecEnv, each as its own stream of whole episodes.

    SB3's auto-reset is handled: an episode's final observation is taken from
    ``info["terminal_observation"]`` and truncation from ``info["TimeLimit.truncated"]``. Episodes
    are written whole, in the order they end. Works with ``DummyVecEnv`` and ``SubprocVecEnv``;
    place it below ``VecNormalize`` to record raw observations and rewards.

    :param venv: the VecEnv
    :param path: ``.h5``, ``.npz`` (written on close) or None (in memory: :attr:`demonstrations`)
    :param overwrite: replace an existing file
    :param append: add to an existing file
    :param info_keys: ``info`` keys to record per step
    :param chunk_size: steps gathered between writes to the file
    :param metadata: extra provenance stored in the file
    :param flush_every_episode: make the file durable each time an episode ends (``.h5``)

    .. code-block:: python

        venv = VecRecordDemonstrations(make_vec_env("CartPole-v1", n_envs=4), "demos.h5")
        model = PPO("MlpPolicy", venv).learn(10_000)
        venv.close()
    """

    def __init__(
        self,
        venv: VecEnv,
        path: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
        append: bool = False,
        info_keys: Sequence[str] = (),
        chunk_size: int = 4096,
        metadata: Mapping[str, Any] | None = None,
        flush_every_episode: bool = False,
    ) -> None:
        if not isinstance(venv, VecEnv):
            raise ArgumentTypeError(
                f"venv: expected an SB3 VecEnv (e.g. make_vec_env(...) or DummyVecEnv([...])), got "
                f"{type(venv).__name__}; for a single gymnasium env use RecordDemonstrations"
            )
        check_recorder_args(info_keys, overwrite=overwrite, append=append, flush_every_episode=flush_every_episode)
        super().__init__(venv)
        self.flush_every_episode = flush_every_episode
        env_id = vec_env_id(venv)
        meta: dict[str, Any] = {"producer": {"recorder": "VecRecordDemonstrations", "n_envs": venv.num_envs}}
        if env_id:
            meta["env_id"] = env_id
        meta.update(metadata or {})
        spaces = (venv.observation_space, venv.action_space)
        self.sink = open_sink(path, *spaces, overwrite=overwrite, append=append, metadata=meta, chunk_size=chunk_size)
        rows = buffer_rows(venv.observation_space, 256)
        exclusive = venv.num_envs == 1
        self.streams = [
            Stream(self.sink, exclusive=exclusive, capacity=rows, info_keys=info_keys) for _ in range(venv.num_envs)
        ]
        self._actions: np.ndarray | None = None
        self.recording = True
        self._finalizer = weakref.finalize(self, self.sink.close, self.streams)

    def reset(self) -> VecEnvObs:
        """Reset every sub-environment; episodes still running end as truncated."""
        obs = self.venv.reset()
        if self.recording:
            for i, stream in enumerate(self.streams):
                stream.begin(take(obs, i))
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        if self.recording:
            assert self._actions is not None
            record_vec_step(self.streams, VecStep(self._actions, rewards, obs, dones, infos))
            if self.flush_every_episode and dones.any():
                self.flush()
        return obs, rewards, dones, infos

    def flush(self) -> None:
        """Make every finished episode durable in the ``.h5`` file now (with one sub-environment, the
        running episode's steps too; with several, a running episode is written when it ends)."""
        self.sink.flush(self.streams)

    def demonstrations(self) -> Demonstrations:
        """Everything recorded so far (episodes still running included, as truncated), read back: from the file
        for an ``.h5`` recording, so this is a call that does I/O."""
        return self.sink.demonstrations([] if self.sink.closed else self.streams)

    def stop_recording(self) -> None:
        """Write everything and close the file, leaving the VecEnv open. Idempotent."""
        self.recording = False
        self._finalizer()

    def close(self) -> None:
        """Stop recording and close the VecEnv."""
        self.stop_recording()
        self.venv.close()


def vec_env_id(venv: VecEnv) -> str | None:
    """The gymnasium id of the first sub-environment, when it has a spec."""
    try:
        spec = venv.get_attr("spec", indices=[0])[0]
    except Exception:
        return None
    return getattr(spec, "id", None)
