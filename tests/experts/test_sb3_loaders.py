import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.policies import BasePolicy

from sb3_expert import (
    ArgumentTypeError,
    ArgumentValueError,
    ExpertLoaderError,
    SpaceMismatchError,
    load_model,
    load_policy,
    policy_registry,
)
from sb3_expert.experts.sb3 import NormalizedPolicy
from tests.helpers import FIXTURES, needs_fixtures

ZOO = FIXTURES / "rl-zoo"


def mean_return(policy, env_id, n=10, seed=0):
    venv = make_vec_env(env_id, n_envs=1, seed=seed)
    return evaluate_policy(policy, venv, n_eval_episodes=n, deterministic=True)[0]


@needs_fixtures
@pytest.mark.slow
def test_zoo_ppo_cartpole_scores_500():
    venv = make_vec_env("CartPole-v1")
    policy = load_policy("ppo", venv, path=ZOO / "ppo" / "CartPole-v1_1")
    assert isinstance(policy, BasePolicy)
    assert mean_return(policy, "CartPole-v1") == 500


@needs_fixtures
@pytest.mark.slow
def test_zoo_sac_pendulum():
    venv = make_vec_env("Pendulum-v1")
    policy = load_policy("sac", venv, path=ZOO / "sac" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    assert mean_return(policy, "Pendulum-v1") >= -200


@needs_fixtures
@pytest.mark.slow
def test_zoo_ppo_mountaincar_needs_its_vecnormalize():
    venv = make_vec_env("MountainCarContinuous-v0")
    run = ZOO / "ppo" / "MountainCarContinuous-v0_1"
    policy = load_policy("ppo", venv, path=run)
    assert isinstance(policy, NormalizedPolicy)  # the gym-era pickle was read and applied
    assert mean_return(policy, "MountainCarContinuous-v0") >= 85
    raw = load_policy("ppo", venv, path=run, normalize=False)
    assert mean_return(raw, "MountainCarContinuous-v0", n=3) < 0
    expert = load_model("ppo", venv, run)
    assert expert.vec_normalize is not None and not expert.vec_normalize.training


def test_custom_loader_as_documented():
    from stable_baselines3.common import policies

    calls = []

    def my_policy_loader(venv, some_param: int) -> policies.BasePolicy:
        calls.append(some_param)
        return load_policy("zero", venv)

    policy_registry.register("my-policy-test", my_policy_loader)
    venv = make_vec_env("CartPole-v1")
    policy = load_policy("my-policy-test", venv, some_param=42)
    assert calls == [42]
    assert (policy.predict(venv.reset())[0] == 0).all()
    with pytest.raises(ExpertLoaderError, match="'my-policy-test' is already registered"):
        policy_registry.register("my-policy-test", my_policy_loader)


def test_unknown_type_lists_known_ones():
    with pytest.raises(ExpertLoaderError, match="unknown policy type 'ppo2'; known: .*ppo-huggingface.*random"):
        load_policy("ppo2", make_vec_env("CartPole-v1"))


def test_random_and_zero():
    venv = make_vec_env("Pendulum-v1", n_envs=3)
    obs = venv.reset()
    actions, _ = load_policy("random", venv).predict(obs)
    assert actions.shape == (3, 1) and venv.action_space.contains(actions[0])
    single, _ = load_policy("zero", venv).predict(obs[0])
    assert single.shape == (1,) and single[0] == 0


def test_round_trip_from_a_saved_model(tmp_path):
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    model.save(tmp_path / "run" / "model.zip")
    venv = make_vec_env("CartPole-v1")
    obs = venv.reset()
    for path in (tmp_path / "run", tmp_path / "run" / "model.zip"):
        policy = load_policy("ppo", venv, path=path)
        np.testing.assert_array_equal(
            policy.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
        )


def test_bad_input(tmp_path):
    venv = make_vec_env("CartPole-v1")
    with pytest.raises(ExpertLoaderError, match="no such file or folder"):
        load_policy("ppo", venv, path=tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExpertLoaderError, match="expected a folder with model.zip.*found .zip files: none"):
        load_policy("ppo", venv, path=tmp_path / "empty")
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(ExpertLoaderError, match="fake.zip: not an SB3 model"):
        load_policy("ppo", venv, path=tmp_path / "fake.zip")
    PPO("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}).save(tmp_path / "pendulum.zip")
    with pytest.raises(SpaceMismatchError, match=r"observation_space: the model .* shape \(3,\), but the venv has"):
        load_policy("ppo", venv, path=tmp_path / "pendulum.zip")


def test_importing_stays_lazy():
    import subprocess
    import sys

    code = "import sys, sb3_expert; print('sb3_contrib' in sys.modules, 'huggingface_hub' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_gym_is_not_needed():
    assert gym.make("CartPole-v1")  # gymnasium only: no gym module needed anywhere
    with pytest.raises(ImportError):
        __import__("gym")


@pytest.mark.parametrize(
    "algo, env_id",
    [("a2c", "CartPole-v1"), ("td3", "Pendulum-v1"), ("ddpg", "Pendulum-v1"), ("dqn", "CartPole-v1"),
     ("tqc", "Pendulum-v1"), ("qrdqn", "CartPole-v1"), ("trpo", "CartPole-v1"), ("ars", "CartPole-v1"),
     ("recurrentppo", "CartPole-v1"), ("maskableppo", "CartPole-v1")],
)  # fmt: skip
def test_every_algorithm_from_a_file(tmp_path, algo, env_id):
    from sb3_expert.experts.sb3 import algorithm_class

    if algo in ("tqc", "qrdqn", "trpo", "ars", "recurrentppo", "maskableppo"):
        pytest.importorskip("sb3_contrib")
    cls = algorithm_class(algo)
    policy = "MlpLstmPolicy" if algo == "recurrentppo" else "MlpPolicy"
    kwargs = {"lstm_hidden_size": 8} if algo == "recurrentppo" else {}
    model = cls(policy, env_id, policy_kwargs={"net_arch": [8], **kwargs}, seed=0)
    model.save(tmp_path / f"{algo}.zip")
    venv = make_vec_env(env_id)
    loaded = load_policy(algo, venv, path=tmp_path / f"{algo}.zip")
    obs = venv.reset()
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_loader_arguments_are_checked_before_anything_loads(tmp_path, monkeypatch):
    import sb3_expert.experts.huggingface as hub

    venv = make_vec_env("CartPole-v1")
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    model.save(tmp_path / "model.zip")
    with pytest.raises(ArgumentTypeError, match="venv: expected a VecEnv .* got str"):
        load_model("ppo", "CartPole-v1", tmp_path / "model.zip")
    with pytest.raises(ArgumentValueError, match="device: expected .* got 'tpu'"):
        load_model("ppo", venv, tmp_path / "model.zip", device="tpu")
    with pytest.raises(ArgumentTypeError, match="path: expected a path"):
        load_model("ppo", venv, 3)
    with pytest.raises(ArgumentTypeError, match=r"load_policy\('ppo'\): .*'bogus'; it takes \(venv, path"):
        load_policy("ppo", venv, path=tmp_path, bogus=1)
    with pytest.raises(ArgumentTypeError, match=r"load_policy\('ppo'\): missing a required argument: 'path'"):
        load_policy("ppo", venv)
    with pytest.raises(ArgumentTypeError, match="normalize: expected True or False"):
        load_policy("ppo", venv, path=tmp_path, normalize="no")
    asked = []
    monkeypatch.setattr(hub, "download", lambda *args: asked.append(args))
    bad_hub_calls = [
        (ExpertLoaderError, "algo: unknown algorithm 'nope'", ("nope", venv, "CartPole-v1"), {}),
        (ArgumentTypeError, "env_name: expected a non-empty str, got int 3", ("ppo", venv, 3), {}),
        (ArgumentTypeError, "trust_remote_code: expected True or False", ("ppo", venv, "CartPole-v1"),
         {"trust_remote_code": "yes"}),
        (ArgumentTypeError, "revision: expected None or a str", ("ppo", venv, "CartPole-v1"), {"revision": 3}),
    ]  # fmt: skip
    for error, message, args, kwargs in bad_hub_calls:
        with pytest.raises(error, match=message):
            hub.load_from_hub_model(*args, **kwargs)
    assert asked == []  # refused before the Hub was asked for anything


def test_model_output_path_is_the_file_sb3_writes(tmp_path):
    from sb3_expert import OutputExistsError
    from sb3_expert.experts.sb3 import model_output_path, save_model

    assert model_output_path(tmp_path / "clone", overwrite=False) == tmp_path / "clone.zip"
    assert model_output_path(tmp_path / "clone.zip", overwrite=False) == tmp_path / "clone.zip"
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    save_model(model, tmp_path / "clone.zip")
    with pytest.raises(OutputExistsError, match="clone.zip' already exists"):
        model_output_path(tmp_path / "clone", overwrite=False)
    assert PPO.load(tmp_path / "clone.zip").policy.state_dict().keys() == model.policy.state_dict().keys()
