import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_expert import ActionError, RecordDemonstrations, VecRecordDemonstrations, load_demonstrations


def policy(obs):
    """A deterministic CartPole controller (balances for a while, then fails)."""
    return (obs[..., 2] + 0.3 * obs[..., 3] + 0.05 * obs[..., 0] > 0).astype(np.int64)


def episodes_of(demos):
    """Episodes as hashable byte strings, for comparing as multisets."""
    return sorted(
        (
            e.obs.tobytes(),
            e.actions.tobytes(),
            e.rewards.tobytes(),
            bool(e.terminated[0]),
            bool(e.truncated[0]),
            e.final_obs.tobytes(),
        )
        for e in demos.episodes()
    )


def single_env_episodes(seed, n_steps):
    env = RecordDemonstrations(gym.make("CartPole-v1", max_episode_steps=60))
    obs, _ = env.reset(seed=seed)
    for _ in range(n_steps):
        obs, _, terminated, truncated, _ = env.step(policy(obs)[()])
        if terminated or truncated:
            obs, _ = env.reset()
    demos = env.demonstrations()
    env.close()
    return demos


@pytest.mark.parametrize("vec_cls", [DummyVecEnv, SubprocVecEnv])
def test_vec_equals_single_envs(tmp_path, vec_cls):
    n_envs, n_steps, seed = 4, 150, 7
    kwargs = {"start_method": "fork"} if vec_cls is SubprocVecEnv else {}
    venv = vec_cls([lambda: gym.make("CartPole-v1", max_episode_steps=60) for _ in range(n_envs)], **kwargs)
    path = tmp_path / "vec.h5"
    rec = VecRecordDemonstrations(venv, path, chunk_size=50)
    rec.seed(seed)  # env i gets seed + i, as the single envs below
    obs = rec.reset()
    for _ in range(n_steps):
        obs, _, _, _ = rec.step(policy(obs))
    in_memory = rec.demonstrations()
    rec.close()
    on_disk = load_demonstrations(path)
    singles = [single_env_episodes(seed + i, n_steps) for i in range(n_envs)]
    expected = sorted(ep for d in singles for ep in episodes_of(d))
    assert episodes_of(on_disk) == expected
    assert episodes_of(in_memory) == expected
    assert on_disk.n_steps == n_envs * n_steps
    assert on_disk.truncated.sum() >= n_envs  # time limits and the episodes running at the end
    assert on_disk.metadata["producer"] == {"recorder": "VecRecordDemonstrations", "n_envs": 4}


def test_single_env_vec_and_reset_mid_episode():
    rec = VecRecordDemonstrations(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    rec.seed(0)
    obs = rec.reset()
    for _ in range(5):
        obs, *_ = rec.step(policy(obs))
    rec.reset()
    for _ in range(3):
        obs, *_ = rec.step(policy(obs))
    demos = rec.demonstrations()
    assert demos.episode_lengths.tolist() == [5, 3] and demos.truncated.all()
    rec.close()


def test_wrong_action_shape():
    rec = VecRecordDemonstrations(DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 2))
    rec.reset()
    with pytest.raises(ActionError, match=r"action: expected an array of shape \(1,\)"):
        rec.step(np.zeros((2, 3), np.float32))
    rec.close()
