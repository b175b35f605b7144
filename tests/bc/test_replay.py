import numpy as np
import pytest
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.env_util import make_vec_env

from sb3_expert import Demonstrations, EmptyDatasetError, SpaceMismatchError, fill_replay_buffer
from sb3_expert.bc.replay import DemoReplayBuffer
from tests.helpers import expert_demos, with_rewards


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


def _online(model, n, reward=0.0):
    """``n`` online transitions with reward ``reward`` in ``model``'s buffer."""
    obs = np.zeros((model.n_envs, *model.observation_space.shape), np.float32)
    for _ in range(n):
        model.replay_buffer.add(obs, obs, np.zeros((model.n_envs, 1)), np.full(model.n_envs, reward), np.zeros(1), [{}])


@pytest.mark.parametrize("fraction", [0.5, 0.25, 0.0, 1.0])
def test_demo_buffer_mixing_ratio_is_exact(fraction):
    demos = expert_demos("Pendulum-v1", 2)
    marked = with_rewards(demos, np.ones(demos.n_steps))
    model = SAC(  # online rows get reward 0, demonstrations 1: the reward says where a row came from
        "MlpPolicy",
        "Pendulum-v1",
        buffer_size=500,
        replay_buffer_class=DemoReplayBuffer,
        replay_buffer_kwargs={"demonstrations": marked, "demo_fraction": fraction},
        seed=0,
    )
    buffer = model.replay_buffer
    assert isinstance(buffer, DemoReplayBuffer) and buffer.demonstrations.size() == 400
    assert buffer.sample(64).rewards.sum() == 64  # no online data yet: all from the demonstrations
    _online(model, 50)
    for batch in (256, 255, 7):
        sample = buffer.sample(batch)
        assert sample.rewards.shape == (batch, 1)
        assert sample.rewards.sum() == round(batch * fraction)
        assert sample.observations.shape == (batch, 3) and sample.actions.shape == (batch, 1)


def test_demo_buffer_stores_as_sb3_and_saves(tmp_path):
    demos = expert_demos("Pendulum-v1", 2)
    model = SAC("MlpPolicy", "Pendulum-v1", buffer_size=300, seed=0)
    reference = SAC("MlpPolicy", "Pendulum-v1", buffer_size=1000, seed=0)
    fill_replay_buffer(reference, demos)
    buffer = DemoReplayBuffer(300, model.observation_space, model.action_space, demonstrations=demos)
    stored = buffer.demonstrations
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        np.testing.assert_array_equal(getattr(stored, name)[:, 0], getattr(reference.replay_buffer, name)[:400, 0])
    model.replay_buffer = buffer
    _online(model, 5, reward=7.0)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    fresh = SAC("MlpPolicy", "Pendulum-v1", buffer_size=300, seed=0)
    fresh.load_replay_buffer(tmp_path / "buffer.pkl")
    loaded = fresh.replay_buffer
    assert isinstance(loaded, DemoReplayBuffer) and loaded.demo_fraction == 0.5 and loaded.pos == 5
    np.testing.assert_array_equal(loaded.demonstrations.observations, stored.observations)
    np.testing.assert_array_equal(loaded.rewards[:5, 0], 7.0)
    fresh.learn(20)  # trains on the mixed batches


def test_demo_buffer_dict_observations():
    from gymnasium import spaces

    from sb3_expert.bc.replay import DictDemoReplayBuffer, demo_buffer_class
    from tests.helpers import make_demos

    obs_space = spaces.Dict({"a": spaces.Box(-1, 1, (3,), np.float32), "b": spaces.Box(0, 1, (2,), np.float32)})
    act_space = spaces.Box(-2, 2, (2,), np.float32)
    demos = make_demos(obs_space, act_space, [5, 7])
    cls = demo_buffer_class(obs_space)
    assert cls is DictDemoReplayBuffer
    buffer = cls(50, obs_space, act_space, n_envs=2, demonstrations=demos, demo_fraction=0.5)
    obs = {k: np.zeros((2, *s.shape), np.float32) for k, s in obs_space.spaces.items()}
    buffer.add(obs, obs, np.zeros((2, 2)), np.zeros(2), np.zeros(2), [{}, {}])
    sample = buffer.sample(10)
    assert set(sample.observations) == {"a", "b"} and sample.observations["a"].shape == (10, 3)
    assert (sample.observations["a"][:5] != 0).any() and (sample.observations["a"][5:] == 0).all()
    np.testing.assert_allclose(buffer.demonstrations.actions[:12, 0], demos.actions.clip(-2, 2) / 2, atol=1e-6)


def test_demo_buffer_bad_input():
    demos = expert_demos("CartPole-v1", 1)
    model = SAC("MlpPolicy", "Pendulum-v1", buffer_size=10)
    with pytest.raises(ValueError, match="demo_fraction"):
        DemoReplayBuffer(10, model.observation_space, model.action_space, demonstrations=demos, demo_fraction=1.5)
    with pytest.raises(SpaceMismatchError, match="observation_space"):
        DemoReplayBuffer(10, model.observation_space, model.action_space, demonstrations=demos)
    with pytest.raises(TypeError, match="demonstrations"):
        DemoReplayBuffer(10, model.observation_space, model.action_space, demonstrations=[1, 2])


def test_demo_buffer_n_step_returns_as_sb3():
    """With ``n_steps`` (what ``SAC(..., n_steps=3)`` sets up) both parts sample as SB3's
    ``NStepReplayBuffer``: returns over 3 steps, cut at the episodes' ends."""
    demos = expert_demos("Pendulum-v1", 2)  # 2 x 200 steps, truncated
    reference = SAC("MlpPolicy", "Pendulum-v1", buffer_size=1000, n_steps=3, gamma=0.9, seed=0)
    fill_replay_buffer(reference, demos)
    kwargs = {"demonstrations": demos, "n_steps": 3, "gamma": 0.9}
    model = SAC(
        "MlpPolicy",
        "Pendulum-v1",
        buffer_size=1000,
        replay_buffer_class=DemoReplayBuffer,
        seed=0,
        replay_buffer_kwargs=kwargs,
        gamma=0.9,
    )
    fill_replay_buffer(model, demos)  # the same rows as online data too
    buffer, rows = model.replay_buffer, np.arange(400)
    expected = reference.replay_buffer._get_samples(rows)
    for part in (buffer.demonstrations, buffer):
        got = part._get_samples(rows)
        for name in ("observations", "actions", "next_observations", "dones", "rewards", "discounts"):
            np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-6, err_msg=name)
    r = demos.rewards
    np.testing.assert_allclose(
        expected.rewards[[0, 198, 199], 0], [r[0] + 0.9 * r[1] + 0.81 * r[2], r[198] + 0.9 * r[199], r[199]], rtol=1e-5
    )
    np.testing.assert_allclose(expected.discounts[[0, 198, 199], 0], [0.729, 0.81, 0.9], rtol=1e-6)
    assert expected.dones.sum() == 0  # truncations bootstrap
    sample = buffer.sample(64)
    assert sample.discounts.shape == (64, 1) and sample.rewards.shape == (64, 1)
    model.learn(10)


def test_demo_buffer_n_step_bad_input():
    from gymnasium import spaces

    from sb3_expert.bc.replay import DictDemoReplayBuffer, demonstration_buffer
    from tests.helpers import make_demos

    demos = expert_demos("Pendulum-v1", 1)
    model = SAC("MlpPolicy", "Pendulum-v1", buffer_size=10)
    space, actions = model.observation_space, model.action_space
    with pytest.raises(ValueError, match="n_steps: expected an integer >= 1, got 0"):
        DemoReplayBuffer(10, space, actions, demonstrations=demos, n_steps=0)
    with pytest.raises(ValueError, match="gamma: expected"):
        DemoReplayBuffer(10, space, actions, demonstrations=demos, n_steps=3, gamma=1.5)
    with pytest.raises(ValueError, match="n_steps: SB3's n-step returns do not support optimize_memory_usage"):
        DemoReplayBuffer(10, space, actions, demonstrations=demos, n_steps=3, optimize_memory_usage=True)
    one_step = demonstration_buffer(demos, space, actions)
    with pytest.raises(ValueError, match="demonstrations: a ReplayBuffer with n_steps=1.*expected n_steps=3"):
        DemoReplayBuffer(10, space, actions, demonstrations=one_step, n_steps=3)
    obs_space = spaces.Dict({"a": spaces.Box(-1, 1, (3,), np.float32)})
    act_space = spaces.Box(-2, 2, (2,), np.float32)
    with pytest.raises(ValueError, match="n_steps: SB3's n-step returns do not support Dict observations"):
        DictDemoReplayBuffer(10, obs_space, act_space, demonstrations=make_demos(obs_space, act_space, [5]), n_steps=2)
