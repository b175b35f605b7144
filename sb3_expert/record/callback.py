"""``RecordExpert``: an SB3 callback recording what the training environment saw during ``learn()``."""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, VecTransposeImage

from sb3_expert.arguments import check_count, check_number
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.obs import take
from sb3_expert.errors import ArgumentTypeError
from sb3_expert.record.sinks import Sink, open_sink
from sb3_expert.record.streams import Stream, check_recorder_args
from sb3_expert.record.vec import VecStep, record_vec_step, vec_env_id
from sb3_expert.record.wrapper import buffer_rows

__all__ = ["RecordExpert"]


def _raw_chain(venv: VecEnv) -> tuple[VecNormalize | None, VecTransposeImage | None]:
    """The VecNormalize and VecTransposeImage wrappers in ``venv``'s chain, if any."""
    normalize = transpose = None
    env: Any = venv
    while env is not None:
        if isinstance(env, VecNormalize) and normalize is None:
            normalize = env
        if isinstance(env, VecTransposeImage) and transpose is None:
            transpose = env
        env = getattr(env, "venv", None)
    return normalize, transpose


class RecordExpert(BaseCallback, contextlib.AbstractContextManager):
    """Record, while a model trains, what its environment received and emitted.

    ``model.learn(100_000, callback=RecordExpert("demos.h5"))`` records every sub-environment:
    the action the environment received (on-policy: PPO's clipped or unscaled action; off-policy:
    the env-space action), the raw observations and rewards (under ``VecNormalize`` too), episode
    boundaries, truncation (``TimeLimit.truncated``) and final observations
    (``terminal_observation``). Works for PPO, A2C, SAC, TD3, DDPG, DQN and sb3-contrib's TQC,
    QR-DQN, TRPO, RecurrentPPO and MaskablePPO (not ARS, which steps its environment outside SB3's
    rollout loop: wrap its env with ``VecRecordDemonstrations`` instead).

    Writes when training ends (or another callback stops it); a second ``learn()`` with the same
    callback appends. :meth:`close` (or the interpreter's normal exit) ends running episodes as
    truncated and closes the file.

    :param path: ``.h5``, ``.npz`` (written on close) or None (in memory: :attr:`demonstrations`)
    :param start_at: start recording, in each sub-environment, at the first episode that starts once
        the model has done this many timesteps
    :param max_steps: stop recording after this many recorded steps (running episodes kept, truncated)
    :param max_episodes: stop recording after this many recorded episodes (running ones dropped)
    :param min_return: keep only episodes whose return is at least this
    :param info_keys: ``info`` keys to record per step
    :param overwrite: replace an existing file
    :param append: add to an existing file
    :param chunk_size: steps gathered between writes to the file
    :param flush_every_episode: make the file durable each time an episode ends (``.h5``)
    :param verbose: 1 prints when recording starts and stops
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        start_at: int = 0,
        max_steps: int | None = None,
        max_episodes: int | None = None,
        min_return: float | None = None,
        info_keys: Sequence[str] = (),
        overwrite: bool = False,
        append: bool = False,
        chunk_size: int = 4096,
        flush_every_episode: bool = False,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose=verbose)
        self.flush_every_episode = flush_every_episode
        check_count("max_steps", max_steps, allow_none=True)
        check_count("max_episodes", max_episodes, allow_none=True)
        check_count("start_at", start_at, 0)
        check_recorder_args(info_keys, overwrite=overwrite, append=append, flush_every_episode=flush_every_episode)
        check_number("min_return", min_return, allow_none=True)  # NaN would keep no episode, silently
        self.path = path
        self.start_at = start_at
        self.max_steps = max_steps
        self.max_episodes = max_episodes
        self.min_return = min_return
        self.info_keys = tuple(info_keys)
        self._sink_kwargs = {"overwrite": overwrite, "append": append, "chunk_size": chunk_size}
        self.sink: Sink | None = None
        self.streams: list[Stream] = []
        self.recorded_steps = 0
        self.done = False
        self._normalize: VecNormalize | None = None
        self._transpose: VecTransposeImage | None = None
        self._last_new_obs: Any = None
        self._finalizer: Any = None

    # ------------------------------------------------------------------ set-up

    def _on_training_start(self) -> None:
        model = self.model
        if not isinstance(model, (OnPolicyAlgorithm, OffPolicyAlgorithm)):
            raise ArgumentTypeError(
                f"RecordExpert: {type(model).__name__} does not step its environment in SB3's rollout loop, so "
                "a callback cannot see its steps; wrap its env with VecRecordDemonstrations instead"
            )
        venv = self.training_env
        self._normalize, self._transpose = _raw_chain(venv)
        if self.sink is None:
            self._make_sink(model, venv)
        if self.done:
            return
        # learn() resets the env unless it continues (reset_num_timesteps=False): then episodes go on
        if model._last_obs is not self._last_new_obs or not any(s.running for s in self.streams):
            obs = self._raw_obs(model._last_obs)
            armed = model.num_timesteps >= self.start_at
            for i, stream in enumerate(self.streams):
                if armed:
                    stream.begin(take(obs, i))
                else:
                    stream.drop()

    def _make_sink(self, model: BaseAlgorithm, venv: VecEnv) -> None:
        obs_space = self._transpose.venv.observation_space if self._transpose is not None else venv.observation_space
        meta: dict[str, Any] = {"producer": {"recorder": "RecordExpert", "algorithm": type(model).__name__}}
        spec_id = vec_env_id(venv)
        if spec_id:
            meta["env_id"] = spec_id
        min_return = self.min_return
        self.sink = open_sink(
            self.path,
            obs_space,
            venv.action_space,
            metadata=meta,
            episode_filter=None if min_return is None else (lambda ret, _length: ret >= min_return),
            **self._sink_kwargs,
        )
        exclusive = venv.num_envs == 1 and min_return is None
        rows = buffer_rows(obs_space, 256)
        self.streams = [
            Stream(self.sink, exclusive=exclusive, capacity=rows, info_keys=self.info_keys)
            for _ in range(venv.num_envs)
        ]
        self._finalizer = weakref.finalize(self, self.sink.close, self.streams)

    def _raw_obs(self, obs: Any) -> Any:
        if self._normalize is not None:
            obs = self._normalize.get_original_obs()
        elif self._transpose is not None:
            obs = _untranspose(obs, self._transpose)
        return obs

    # ------------------------------------------------------------------ per step

    def _on_step(self) -> bool:
        if self.done:
            return True
        loc = self.locals
        actions = loc.get("clipped_actions")
        if actions is None:
            actions = loc["actions"]
        new_obs, dones, infos = loc["new_obs"], loc["dones"], loc["infos"]
        self._last_new_obs = new_obs
        rewards = loc["rewards"]
        terminal = None
        if self._normalize is not None:
            norm = self._normalize
            rewards, new_obs = norm.get_original_reward(), norm.get_original_obs()

            def terminal(i: int) -> Any:
                final = infos[i].get("terminal_observation")
                return None if final is None else norm.unnormalize_obs(final)

        elif self._transpose is not None:
            new_obs = _untranspose(new_obs, self._transpose)
        armed = self.num_timesteps >= self.start_at
        room = np.inf if self.max_steps is None else self.max_steps - self.recorded_steps
        active = []
        for i, stream in enumerate(self.streams):
            if stream.running:  # records this step while max_steps leaves room
                active.append(room > 0)
                room -= 1
            else:  # starts recording at its next episode once start_at is reached
                active.append(armed and bool(dones[i]))
        self.recorded_steps += sum(a and s.running for a, s in zip(active, self.streams))
        budget = np.inf if self.max_episodes is None else self.max_episodes - self.recorded_episodes
        record_vec_step(
            self.streams,
            VecStep(actions, rewards, new_obs, dones, infos),
            terminal_obs=terminal,
            active=active,
            episode_budget=budget,
        )
        self._check_limits()
        if self.flush_every_episode and np.any(dones):
            self.flush()
        return True

    @property
    def recorded_episodes(self) -> int:
        """Episodes recorded so far (kept by ``min_return``), running ones not counted."""
        if self.sink is None:
            return 0
        return self.sink.n_episodes + sum(s.n_finished for s in self.streams)

    def _check_limits(self) -> None:
        assert self.sink is not None
        reached_steps = self.max_steps is not None and self.recorded_steps >= self.max_steps
        reached_episodes = self.max_episodes is not None and self.recorded_episodes >= self.max_episodes
        if not (reached_steps or reached_episodes):
            return
        for stream in self.streams:
            if reached_episodes:  # the episodes asked for are there: drop unfinished ones
                stream.drop()
            stream.end_recording()
        self.sink.write()
        self.done = True
        if self.verbose >= 1:
            print(f"RecordExpert: recorded {self.sink.n_steps} steps, {self.sink.n_episodes} episodes; stopped")

    def _on_training_end(self) -> None:
        if self.sink is None:
            return
        for stream in self.streams:
            if stream.exclusive and not self.done:
                stream.hand_over(flush=True)
        self.sink.write()

    # ------------------------------------------------------------------ results

    def demonstrations(self) -> Demonstrations:
        """Everything recorded so far (episodes still running included, as truncated), read back: from the file
        for an ``.h5`` recording, so this is a call that does I/O."""
        if self.sink is None:
            raise RuntimeError(
                "RecordExpert.demonstrations(): nothing recorded yet; pass the callback to learn() first"
            )
        return self.sink.demonstrations([] if self.sink.closed or self.done else self.streams)

    def flush(self) -> None:
        """Make every finished episode durable in the ``.h5`` file now (with one environment, the
        running episode's steps too; with several, a running episode is written when it ends)."""
        if self.sink is not None and not self.done:
            self.sink.flush(self.streams)

    def close(self) -> None:
        """End running episodes as truncated, write everything and close the file. Idempotent."""
        if self._finalizer is not None:
            self._finalizer()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _untranspose(obs: Any, transpose: VecTransposeImage) -> Any:
    """Undo VecTransposeImage (channels first -> the env's channels last)."""
    if isinstance(obs, dict):
        keys = transpose.image_space_keys or []
        return {k: (np.moveaxis(v, -3, -1) if k in keys else v) for k, v in obs.items()}
    return np.moveaxis(obs, -3, -1)
