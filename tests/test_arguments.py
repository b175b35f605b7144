"""The arguments every entry point shares (``seed``, ``verbose``, flags, paths) are refused alike:
this library's error, naming the argument, before anything is built or written."""

from __future__ import annotations

import gymnasium as gym
import pytest
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env

from sb3_expert import (
    ArgumentTypeError,
    ArgumentValueError,
    DAgger,
    ExpertDataset,
    RecordDemonstrations,
    generate_expert_traj,
    load_policy,
    save_demonstrations,
)
from tests.helpers import expert_demos


@pytest.fixture(scope="module")
def demos_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("demos") / "pendulum.npz"
    save_demonstrations(expert_demos("Pendulum-v1", 2), path)
    return path


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": "0"}, "seed: expected None or an integer, got str '0'"),
        ({"seed": 1.5}, "seed: expected None or an integer"),
        ({"verbose": "1"}, "verbose: expected None or an integer, got str '1'"),
        ({"randomize": "no"}, "randomize: expected True or False, got str 'no'"),
    ],
)
def test_expert_dataset_refuses_bad_shared_arguments(demos_path, kwargs, message):
    with pytest.raises(ArgumentTypeError, match=message):
        ExpertDataset(demos_path, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": "0"}, "seed: expected None or an integer, got str '0'"),
        ({"verbose": "x"}, "verbose: expected None or an integer"),
        ({"progress_bar": "yes"}, "progress_bar: expected True or False"),
        ({"resume": 1}, "resume: expected True or False, got int 1"),
    ],
)
def test_dagger_refuses_bad_shared_arguments(kwargs, message):
    venv = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    student = SAC("MlpPolicy", venv, policy_kwargs={"net_arch": [8]})
    with pytest.raises(ArgumentTypeError, match=message):
        DAgger(student, load_policy("zero", venv), **kwargs)


def test_a_recorder_refuses_a_path_that_is_no_path():
    env = gym.make("Pendulum-v1")
    with pytest.raises(ArgumentTypeError, match="path: expected a path"):
        RecordDemonstrations(env, 3)


@pytest.mark.parametrize("n_timesteps", ["100", 1.5, -1])
def test_generate_expert_traj_refuses_a_count_that_is_no_count(tmp_path, n_timesteps):
    """``n_timesteps="100"`` used to fail in Python's comparison, 1.5 passed the check."""
    env = make_vec_env("Pendulum-v1", n_envs=1)
    with pytest.raises(ArgumentValueError, match="n_timesteps: expected an integer >= 0"):
        generate_expert_traj(load_policy("zero", env), str(tmp_path / "x.npz"), env, n_timesteps=n_timesteps)
    assert list(tmp_path.iterdir()) == []
