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
    HDF5Writer,
    RecordDemonstrations,
    RecordExpert,
    VecRecordDemonstrations,
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
        ({"overwrite": "no"}, "overwrite: expected True or False"),
        ({"deterministic": "no"}, "deterministic: expected True or False"),
        ({"eval_env": "Pendulum-v1"}, "eval_env: expected an SB3 VecEnv or a gymnasium env, got str"),
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


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda env, vec, path: RecordDemonstrations("Pendulum-v1", path), "env: expected a gymnasium.Env, got str"),
        (lambda env, vec, path: RecordDemonstrations(env, path, info_keys="is_success"), "info_keys: expected a seq"),
        (lambda env, vec, path: RecordDemonstrations(env, path, overwrite="no"), "overwrite: expected True or False"),
        (lambda env, vec, path: VecRecordDemonstrations(vec, path, append=1), "append: expected True or False"),
        (lambda env, vec, path: VecRecordDemonstrations(vec, path, info_keys=[1]), "info_keys: expected a seq"),
        (lambda env, vec, path: RecordExpert(path, flush_every_episode="y"), "flush_every_episode: expected True"),
        (lambda env, vec, path: RecordExpert(path, min_return="100"), "min_return: expected None or a number"),
        (lambda env, vec, path: RecordExpert(path, info_keys="is_success"), "info_keys: expected a seq"),
        (lambda env, vec, path: HDF5Writer(path, env.observation_space, env.action_space, append="yes"),
         "append: expected True or False"),
        (lambda env, vec, path: generate_expert_traj(load_policy("zero", vec), path, vec, deterministic="no"),
         "deterministic: expected True or False"),
    ],
)  # fmt: skip
def test_recorders_refuse_bad_arguments_before_writing(tmp_path, make, message):
    """A lone str as ``info_keys`` was read as its letters; a flag of ``"no"`` counted as True."""
    with pytest.raises(ArgumentTypeError, match=message):
        make(gym.make("Pendulum-v1"), make_vec_env("Pendulum-v1", n_envs=1), str(tmp_path / "demos.h5"))
    assert list(tmp_path.iterdir()) == []


def test_learning_entry_points_refuse_bad_arguments(demos_path):
    from stable_baselines3.common.logger import configure

    from sb3_expert import DemoReplayBuffer, prepare_finetuning, pretrain

    venv = make_vec_env("Pendulum-v1", n_envs=1)
    model = SAC("MlpPolicy", venv, policy_kwargs={"net_arch": [8]}, seed=0)
    with pytest.raises(ArgumentTypeError, match="logger: expected None or an SB3 Logger, got str"):
        pretrain(model, demos_path, n_epochs=1, logger="log.txt")
    with pytest.raises(ArgumentTypeError, match="logger: expected None or an SB3 Logger, got str"):
        prepare_finetuning(model, demos_path, logger="log.txt")
    with pytest.raises(ArgumentValueError, match="learning_rate: expected the schedule to give a finite number > 0"):
        pretrain(model, demos_path, n_epochs=1, learning_rate=lambda progress: -1.0)
    with pytest.raises(ArgumentValueError, match="learning_rate: the schedule failed at progress 1.0"):
        pretrain(model, demos_path, n_epochs=1, learning_rate=lambda progress: 1 / 0)
    with pytest.raises(
        ArgumentTypeError, match=r"demonstrations: required .*replay_buffer_kwargs=dict\(demonstrations"
    ):
        SAC("MlpPolicy", venv, replay_buffer_class=DemoReplayBuffer)
    with pytest.raises(ArgumentValueError, match="n_envs: expected an integer >= 1, got 0"):
        DemoReplayBuffer(100, venv.observation_space, venv.action_space, n_envs=0, demonstrations=demos_path)
    # an SB3 logger is taken (a short critic fit: its 10,000 default steps took 40 s here)
    pretrain(model, demos_path, n_epochs=1, logger=configure(None, []), finetune_kwargs={"critic_steps": 100})


@pytest.mark.parametrize("name", ["env", "eval_env"])
def test_dagger_refuses_an_env_that_is_not_the_models(name):
    """An env of another task was taken, and failed (or trained on the wrong data) after the first round."""
    from sb3_expert import SpaceMismatchError

    venv = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    student = SAC("MlpPolicy", venv, policy_kwargs={"net_arch": [8]})
    other = {"env": make_vec_env("MountainCarContinuous-v0", n_envs=1), "eval_env": gym.make("CartPole-v1")}[name]
    with pytest.raises(SpaceMismatchError, match=f"{name}: its spaces are not the model's"):
        DAgger(student, load_policy("zero", venv), **{name: other})
    DAgger(student, load_policy("zero", venv), **{name: make_vec_env("Pendulum-v1", n_envs=1)})  # the same task


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_save_demonstrations_refuses_a_non_bool_overwrite_and_keeps_the_file(tmp_path, demos_path, suffix):
    """``overwrite="no"`` counted as True and replaced the file; an argument the format's writer does
    not take raised Python's TypeError from inside it."""
    from sb3_expert import load_demonstrations

    demos = load_demonstrations(demos_path)
    path = tmp_path / f"demos{suffix}"
    save_demonstrations(demos, path)
    before = path.read_bytes()
    with pytest.raises(ArgumentTypeError, match="overwrite: expected True or False, got str 'no'"):
        save_demonstrations(demos, path, overwrite="no")
    with pytest.raises(ArgumentTypeError, match=f"save_demonstrations to {suffix}: got an unexpected keyword argument"):
        save_demonstrations(demos, tmp_path / f"other{suffix}", bogus=1)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_load_demonstrations_checks_given_spaces_against_the_files(tmp_path, demos_path, suffix):
    """A space given for a file that stores its own was used (``.npz``: "actions: expected dtype
    int64", a misleading message) or silently ignored (``.h5``)."""
    from gymnasium import spaces

    from sb3_expert import SpaceMismatchError, UnsupportedSpaceError, load_demonstrations

    demos = load_demonstrations(demos_path)
    path = save_demonstrations(demos, tmp_path / f"demos{suffix}")
    with pytest.raises(SpaceMismatchError, match=r"action_space: the demonstrations have Box.*argument has Discrete"):
        load_demonstrations(path, action_space=spaces.Discrete(3))
    with pytest.raises(UnsupportedSpaceError, match="observation_space: expected one of Box"):
        load_demonstrations(path, observation_space="Box(3,)")
    same = load_demonstrations(path, observation_space=demos.observation_space, action_space=demos.action_space)
    assert same.n_steps == demos.n_steps


def test_record_expert_refuses_a_min_return_that_keeps_nothing(tmp_path):
    """``min_return=float("nan")`` was accepted: every episode compares False with it, so none was kept."""
    with pytest.raises(ArgumentValueError, match="min_return: expected a finite number"):
        RecordExpert(str(tmp_path / "demos.h5"), min_return=float("nan"))
    RecordExpert(str(tmp_path / "demos.h5"), min_return=-100)  # a number is taken
