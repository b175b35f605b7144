"""``generate_expert_traj``: stable-baselines (v2)'s function, for SB3 models, policies and callables."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_expert.arguments import check_count, check_flags
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.npz import save_npz
from sb3_expert.data.paths import check_output_path
from sb3_expert.data.spaces import is_image_observation
from sb3_expert.errors import ArgumentTypeError, ArgumentValueError
from sb3_expert.record.vec import VecRecordDemonstrations
from sb3_expert.record.wrapper import RecordDemonstrations

__all__ = ["actor_fn", "generate_expert_traj"]


def actor_fn(model: Any, deterministic: bool) -> Callable[[Any, Any, Any], tuple[Any, Any]]:
    """``act(obs, state, episode_start) -> (action, state)`` for an algorithm, a policy or a callable."""
    predict = getattr(model, "predict", None)
    if callable(predict):

        def act(obs: Any, state: Any, episode_start: Any) -> tuple[Any, Any]:
            return predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)

        return act
    if callable(model):
        return lambda obs, state, episode_start: (model(obs), None)
    raise ArgumentTypeError(
        f"model: expected an SB3 algorithm, a policy with predict(), or a callable obs -> action, "
        f"got {type(model).__name__}"
    )


def _resolve_path(save_path: str | os.PathLike[str] | None) -> Path | None:
    if save_path is None:
        return None
    path = Path(save_path)
    return path if path.suffix.lower() in (".npz", ".h5", ".hdf5") else path.with_name(path.name + ".npz")


class _Interrupted(Exception):
    """The expert or the env failed; ``partial`` holds what was recorded before."""

    def __init__(self, partial: Demonstrations, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.partial = partial
        self.cause = cause


def _progress(n_episodes: int, enabled: bool) -> Any:
    """A tqdm/rich bar over episodes (as SB3's ``progress_bar``), or None."""
    if not enabled:
        return None
    from tqdm.rich import tqdm

    return tqdm(total=n_episodes, desc="generate_expert_traj", unit="episode")


def _run_single(
    env: gym.Env, act: Callable[..., Any], n_episodes: int, seed: int | None, bar: Any = None
) -> Demonstrations:
    recorder = RecordDemonstrations(env, None, metadata={"generator": "generate_expert_traj"})
    try:
        for episode in range(n_episodes):
            if bar is not None:
                bar.update(1 if episode else 0)
            obs, _ = recorder.reset(seed=None if seed is None else seed + episode)
            state, start, done = None, np.ones(1, bool), False
            while not done:
                action, state = act(obs, state, start)
                obs, _, terminated, truncated, _ = recorder.step(action)
                done, start = bool(terminated or truncated), np.zeros(1, bool)
        return recorder.demonstrations()
    except Exception as e:
        raise _Interrupted(recorder.demonstrations(), e) from e
    finally:
        recorder.stop_recording()  # never closes the caller's env


def _run_vec(
    venv: VecEnv, act: Callable[..., Any], n_episodes: int, seed: int | None, bar: Any = None
) -> Demonstrations:
    recorder = VecRecordDemonstrations(venv, None, metadata={"generator": "generate_expert_traj"})
    try:
        if seed is not None:
            recorder.seed(seed)
        obs = recorder.reset()
        state, starts = None, np.ones(venv.num_envs, bool)
        while recorder.sink.n_episodes < n_episodes:
            actions, state = act(obs, state, starts)
            obs, _, dones, _ = recorder.step(actions)
            starts = dones
            if bar is not None and dones.any():
                bar.update(min(recorder.sink.n_episodes, n_episodes) - bar.n)
        demos = recorder.sink.demonstrations()  # finished episodes only
        return demos.first_episodes(n_episodes)
    except Exception as e:
        raise _Interrupted(recorder.sink.demonstrations(), e) from e
    finally:
        recorder.stop_recording()


def generate_expert_traj(
    model: BaseAlgorithm | Any,
    save_path: str | os.PathLike[str] | None = None,
    env: gym.Env | VecEnv | None = None,
    n_timesteps: int = 0,
    n_episodes: int = 100,
    image_folder: str = "recorded_images",
    *,
    deterministic: bool = True,
    seed: int | None = None,
    overwrite: bool = False,
    progress_bar: bool = False,
) -> dict[str, np.ndarray]:
    """Record ``n_episodes`` of an expert, as stable-baselines (v2)'s ``generate_expert_traj``.

    :param model: an SB3 algorithm (trained for ``n_timesteps`` first when > 0), a policy with
        ``predict`` (recurrent ones too), or any callable ``obs -> action`` (a PID controller...)
    :param save_path: where to write: no suffix writes ``save_path.npz`` as SB2 did; ``.h5`` picks
        HDF5; None writes nothing
    :param env: a gymnasium env or a VecEnv (every sub-environment is recorded); default the model's
    :param n_timesteps: train ``model`` for this many timesteps first (SB3 algorithms only)
    :param n_episodes: number of whole episodes to record (with a VecEnv: the first to finish)
    :param image_folder: for image observations written to ``.npz``: the folder (relative to the
        file) of the lossless PNG files ``obs`` points to, as SB2 did
    :param deterministic: act deterministically (``predict``'s argument)
    :param seed: seed of the first episode's reset (episode k: ``seed + k``; VecEnv: ``venv.seed(seed)``)
    :param overwrite: replace an existing file
    :param progress_bar: show a progress bar over episodes (tqdm/rich, as SB3's ``learn``)
    :return: SB2's dict: ``actions``, ``obs``, ``rewards``, ``episode_returns``, ``episode_starts``
    :raises OutputExistsError: when the file exists and ``overwrite`` is False
    :raises ActionError: when the expert returns an action that does not fit the action space;
        nothing is written then

    .. code-block:: python

        generate_expert_traj(model, "expert_cartpole", n_timesteps=0, n_episodes=10)
        generate_expert_traj(lambda obs: pid(obs), "pid_pendulum.h5", gym.make("Pendulum-v1"), n_episodes=5)
    """
    check_count("n_episodes", n_episodes)
    check_count("n_timesteps", n_timesteps, 0)
    check_flags(deterministic=deterministic, overwrite=overwrite)
    path = _resolve_path(save_path)
    if path is not None:
        check_output_path(path, overwrite=overwrite, argument="save_path")
    if n_timesteps > 0:
        if not isinstance(model, BaseAlgorithm):
            raise ArgumentTypeError(f"n_timesteps: only an SB3 algorithm can be trained, got {type(model).__name__}")
        model.learn(n_timesteps)
    if env is None:
        env = model.get_env() if isinstance(model, BaseAlgorithm) else None
        if env is None:
            raise ArgumentValueError("env: expected a gymnasium env or a VecEnv (the model has none), got None")
    act = actor_fn(model, deterministic)
    if not isinstance(env, (VecEnv, gym.Env)):
        raise ArgumentTypeError(f"env: expected a gymnasium env or an SB3 VecEnv, got {type(env).__name__}")
    producer = {"generator": "generate_expert_traj", "expert": type(model).__name__}
    bar = _progress(n_episodes, progress_bar)
    try:
        run = _run_vec if isinstance(env, VecEnv) else _run_single
        demos = run(env, act, n_episodes, seed, bar).with_metadata(producer=producer)  # type: ignore[arg-type]
    except _Interrupted as stop:  # keep what was recorded before the failure, then re-raise it
        if path is not None and stop.partial.n_steps:
            _save(stop.partial.with_metadata(producer=producer, interrupted=True), path, overwrite, image_folder)
        raise stop.cause from None
    finally:
        if bar is not None:
            bar.update(bar.total - bar.n)
            bar.close()
    if path is not None:
        _save(demos, path, overwrite, image_folder)
    return demos.to_sb2_dict()


def _save(demos: Demonstrations, path: Path, overwrite: bool, image_folder: str) -> None:
    if path.suffix.lower() == ".npz":
        folder = image_folder if is_image_observation(demos.observation_space) else None
        save_npz(demos, path, overwrite=overwrite, image_folder=folder)
    else:
        from sb3_expert.data.hdf5 import save_hdf5

        save_hdf5(demos, path, overwrite=overwrite)
