import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_expert import ActionError, OutputExistsError, generate_expert_traj, load_demonstrations
from sb3_expert.data.npz import load_npz
from tests.helpers import pendulum_expert as pid

SB2_KEYS = {"actions", "obs", "rewards", "episode_returns", "episode_starts"}


def test_with_a_model_sb2_suffix_rule(tmp_path):
    env = gym.make("CartPole-v1")
    model = PPO("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, n_steps=64, batch_size=64, seed=0)
    out = generate_expert_traj(model, str(tmp_path / "expert_cartpole"), env, n_timesteps=64, n_episodes=3, seed=0)
    assert set(out) == SB2_KEYS
    assert out["actions"].shape == (len(out["obs"]), 1) and out["episode_returns"].shape == (3,)
    demos = load_npz(tmp_path / "expert_cartpole.npz")  # no suffix: .npz appended, as SB2 did
    assert demos.n_episodes == 3 and demos.metadata["producer"]["expert"] == "PPO"
    np.testing.assert_array_equal(demos.episode_returns, out["episode_returns"])
    env.reset()
    env.step(0)  # never closes the caller's env
    with pytest.raises(OutputExistsError, match="save_path"):
        generate_expert_traj(model, str(tmp_path / "expert_cartpole"), env, n_episodes=1)


def test_with_a_callable_pid_to_h5(tmp_path):
    env = gym.make("Pendulum-v1")
    out = generate_expert_traj(pid, tmp_path / "pid.h5", env, n_episodes=4, seed=0)
    demos = load_demonstrations(tmp_path / "pid.h5")
    assert demos.n_episodes == 4 and (demos.episode_lengths == 200).all() and demos.truncated.all()
    assert demos.episode_returns.mean() > -300  # the controller swings up and balances
    np.testing.assert_array_equal(out["obs"], demos.obs)


def test_with_a_vecenv_records_every_sub_env():
    venv = DummyVecEnv([lambda: gym.make("CartPole-v1")] * 3)
    model = PPO("MlpPolicy", venv, policy_kwargs={"net_arch": [8]}, seed=0)
    out = generate_expert_traj(model, None, venv, n_episodes=7, seed=0, deterministic=False)
    assert out["episode_starts"].sum() == 7 and len(out["episode_returns"]) == 7


def test_recurrent_policy_state_is_threaded():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    env = gym.make("CartPole-v1")
    model = sb3_contrib.RecurrentPPO("MlpLstmPolicy", env, policy_kwargs={"lstm_hidden_size": 8, "net_arch": [8]})
    out = generate_expert_traj(model, None, env, n_episodes=2, seed=0)
    assert out["episode_starts"].sum() == 2


class ImageEnv(gym.Env):
    observation_space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(0, 256, (8, 8, 3), dtype=np.uint8), {}

    def step(self, action):
        self.t += 1
        return self.np_random.integers(0, 256, (8, 8, 3), dtype=np.uint8), 1.0, self.t >= 5, False, {}


def test_images_go_to_png_files(tmp_path):
    pytest.importorskip("PIL")
    out = generate_expert_traj(lambda obs: 0, tmp_path / "img", ImageEnv(), n_episodes=2, seed=0)
    pngs = sorted((tmp_path / "recorded_images").glob("*.png"))
    assert len(pngs) == 10 + 2  # every step, and each episode's final observation
    with np.load(tmp_path / "img.npz") as f:
        assert f["obs"][0] == "recorded_images/0.png"
    np.testing.assert_array_equal(load_npz(tmp_path / "img.npz").obs, out["obs"])


def test_garbage_callable_clear_error_and_partial_file_kept(tmp_path):
    env = gym.make("Pendulum-v1")
    calls = []

    def flaky(obs):
        calls.append(1)
        return pid(obs) if len(calls) <= 250 else np.zeros(5)

    with pytest.raises(ActionError, match=r"action: expected an array of shape \(1,\)"):
        generate_expert_traj(flaky, tmp_path / "flaky.h5", env, n_episodes=3, seed=0)
    kept = load_demonstrations(tmp_path / "flaky.h5")
    assert kept.n_steps == 250 and kept.episode_lengths.tolist() == [200, 50] and kept.metadata["interrupted"]
    with pytest.raises(TypeError, match="model: expected an SB3 algorithm"):
        generate_expert_traj(42, None, env, n_episodes=1)
    with pytest.raises(ValueError, match="n_episodes"):
        generate_expert_traj(pid, None, env, n_episodes=0)
