import numpy as np
import pytest
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.env_util import make_vec_env

from sb3_expert import Demonstrations, EmptyDatasetError, SpaceMismatchError, fill_replay_buffer
from tests.helpers import expert_demos


def test_round_trip_sac_with_timeouts():
    demos = expert_demos("Pendulum-v1", 3)  # 200-step episodes, all truncated by the time limit
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, buffer_size=1000, seed=0)
    assert fill_replay_buffer(model, demos) == 600
    buf = model.replay_buffer
    tr = demos.transitions()
    assert buf.pos == 600 and not buf.full
    np.testing.assert_array_equal(buf.observations[:600, 0], tr.obs)
    np.testing.assert_array_equal(buf.next_observations[:600, 0], tr.next_obs)
    np.testing.assert_allclose(buf.actions[:600, 0], model.policy.scale_action(tr.actions), rtol=1e-6)
    np.testing.assert_allclose(buf.rewards[:600, 0], tr.rewards, rtol=1e-6, atol=1e-30)  # float32 storage
    ends = np.zeros(600, bool)
    ends[[199, 399, 599]] = True
    np.testing.assert_array_equal(buf.dones[:600, 0], ends)
    np.testing.assert_array_equal(buf.timeouts[:600, 0], ends)  # truncated: bootstrapped through
    np.testing.assert_array_equal(buf.next_observations[199, 0], demos.final_obs[0])
    sample = buf.sample(64)  # SB3 folds timeouts into dones at sampling time
    assert sample.dones.sum() == 0
    model.learn(10)


def test_round_trip_dqn_terminated_and_n_envs():
    short = expert_demos("CartPole-v1", 2, max_episode_steps=30)
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, buffer_size=1000, seed=0)
    assert fill_replay_buffer(model, short) == 60
    np.testing.assert_array_equal(model.replay_buffer.actions[:60, 0, 0], short.actions)
    assert model.replay_buffer.timeouts[[29, 59], 0].all()
    falling = Demonstrations(  # a terminated episode: done, and no timeout
        short.obs[:5], short.actions[:5], short.rewards[:5], np.r_[True, False, False, False, False],
        observation_space=short.observation_space, action_space=short.action_space,
        terminated=[True], truncated=[False], final_obs=short.obs[5:6],
    )  # fmt: skip
    two = DQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2), policy_kwargs={"net_arch": [8]}, buffer_size=100)
    assert fill_replay_buffer(two, falling) == 5
    buf = two.replay_buffer
    assert buf.pos == 3  # rows of n_envs transitions; the last row padded with the first transition
    assert buf.dones[2, 0] and not buf.timeouts[2, 0]
    np.testing.assert_array_equal(buf.observations[2, 1], falling.obs[0])


def test_bad_input():
    demos = expert_demos("CartPole-v1", 1)
    with pytest.raises(TypeError, match="off-policy"):
        fill_replay_buffer(PPO("MlpPolicy", "CartPole-v1"), demos)
    with pytest.raises(SpaceMismatchError):
        fill_replay_buffer(SAC("MlpPolicy", "Pendulum-v1", buffer_size=10), demos)
    with pytest.raises(EmptyDatasetError):
        fill_replay_buffer(DQN("MlpPolicy", "CartPole-v1", buffer_size=10), demos.first_episodes(0))
