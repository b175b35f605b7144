import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_expert import Demonstrations, HDF5Reader, RecordDemonstrations, RecordExpert, load_demonstrations


def tiny(**extra):
    """Tiny networks (a new dict each time: SB3 adds keys to policy_kwargs)."""
    return {"net_arch": [8], **extra}


def inner_recorded_venv(env_id, n_envs, **make_kwargs):
    """A VecEnv whose sub-envs each record themselves: the reference for the callback."""
    inner = [RecordDemonstrations(gym.make(env_id, **make_kwargs)) for _ in range(n_envs)]
    return DummyVecEnv([lambda e=e: e for e in inner]), inner


def episodes_of(demos):
    return sorted(
        (
            e.obs.round(5).tobytes(),
            e.actions.tobytes(),
            e.rewards.astype(np.float32).tobytes(),
            bool(e.terminated[0]),
            bool(e.truncated[0]),
        )
        for e in demos.episodes()
    )


def assert_same_recording(got: Demonstrations, inner_parts: list[Demonstrations], *, exact_order: bool):
    ref = Demonstrations.concatenate(inner_parts)
    assert got.n_steps == ref.n_steps and got.n_episodes == ref.n_episodes
    if exact_order:
        np.testing.assert_array_equal(got.obs, ref.obs)
        np.testing.assert_array_equal(got.actions, ref.actions)
        # SB3's DummyVecEnv keeps rewards as float32: equal at that precision
        np.testing.assert_allclose(got.rewards, ref.rewards, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got.episode_starts, ref.episode_starts)
        np.testing.assert_array_equal(got.terminated, ref.terminated)
        np.testing.assert_array_equal(got.truncated, ref.truncated)
        np.testing.assert_allclose(got.final_obs, ref.final_obs, rtol=1e-5, atol=1e-5)
    else:
        assert episodes_of(got) == episodes_of(ref)


@pytest.mark.parametrize(
    "algo, env_id, n_envs, kwargs",
    [
        (PPO, "CartPole-v1", 2, {"n_steps": 64, "batch_size": 64, "n_epochs": 1}),
        (PPO, "Pendulum-v1", 1, {"n_steps": 64, "batch_size": 64, "n_epochs": 1}),
        (A2C, "CartPole-v1", 2, {"n_steps": 8}),
        (SAC, "Pendulum-v1", 1, {"learning_starts": 50, "gradient_steps": 1}),
        (TD3, "Pendulum-v1", 1, {"learning_starts": 50}),
        (DQN, "CartPole-v1", 1, {"learning_starts": 50}),
    ],
)
def test_callback_equals_wrapper_inside_env(tmp_path, algo, env_id, n_envs, kwargs):
    venv, inner = inner_recorded_venv(env_id, n_envs)
    model = algo("MlpPolicy", venv, policy_kwargs=tiny(), seed=0, **kwargs)
    path = tmp_path / "demos.h5"
    callback = RecordExpert(path)
    model.learn(256, callback=callback)
    got = callback.demonstrations()
    assert_same_recording(got, [e.demonstrations() for e in inner], exact_order=n_envs == 1)
    assert got.metadata["producer"]["algorithm"] == algo.__name__ and got.metadata["env_id"] == env_id
    # flushed at the end of training: the file is readable before close()
    with HDF5Reader(path) as reader:
        assert reader.n_steps > 0
    callback.close()
    assert load_demonstrations(path).n_steps == got.n_steps


def test_ppo_box_records_clipped_actions():
    venv, inner = inner_recorded_venv("Pendulum-v1", 1)
    model = PPO("MlpPolicy", venv, policy_kwargs=tiny(log_std_init=2.0), n_steps=64, batch_size=64, seed=0)
    callback = RecordExpert()
    model.learn(64, callback=callback)
    actions = callback.demonstrations().actions
    assert np.abs(actions).max() <= 2.0 and (np.abs(actions) == 2.0).any()  # wide Gaussian: clipping happened
    np.testing.assert_array_equal(actions, inner[0].demonstrations().actions)


@pytest.mark.parametrize("algo", [PPO, SAC])
def test_vecnormalize_raw_obs_and_rewards(algo):
    venv, inner = inner_recorded_venv("Pendulum-v1", 1)
    norm = VecNormalize(venv, norm_obs=True, norm_reward=True)
    kwargs = {"n_steps": 64, "batch_size": 64} if algo is PPO else {"learning_starts": 50}
    model = algo("MlpPolicy", norm, policy_kwargs=tiny(), seed=0, **kwargs)
    callback = RecordExpert()
    model.learn(256, callback=callback)
    got = callback.demonstrations()
    assert_same_recording(got, [inner[0].demonstrations()], exact_order=True)
    assert np.abs(got.obs).max() > 1.5  # raw (Pendulum's angular velocity reaches beyond normalised scale)


def test_second_learn_appends_and_limits(tmp_path):
    venv, inner = inner_recorded_venv("CartPole-v1", 1)
    model = PPO("MlpPolicy", venv, policy_kwargs=tiny(), n_steps=64, batch_size=64, n_epochs=1, seed=0)
    path = tmp_path / "d.h5"
    with RecordExpert(path) as callback:
        model.learn(64, callback=callback)
        first = callback.demonstrations().n_steps
        model.learn(64, callback=callback, reset_num_timesteps=False)
        assert callback.demonstrations().n_steps == first + 64
    demos = load_demonstrations(path)
    assert_same_recording(demos, [inner[0].demonstrations()], exact_order=True)


def test_max_steps_max_episodes_min_return_start_at():
    venv, _ = inner_recorded_venv("CartPole-v1", 3)
    model = PPO("MlpPolicy", venv, policy_kwargs=tiny(), n_steps=64, batch_size=64, n_epochs=1, seed=0)
    steps = RecordExpert(max_steps=100)
    model.learn(256, callback=steps)
    assert steps.demonstrations().n_steps == 100 and steps.done
    episodes = RecordExpert(max_episodes=5)
    model.learn(512, callback=episodes)
    demos = episodes.demonstrations()
    assert demos.n_episodes == 5 and demos.terminated.all()  # the episodes still running were dropped
    good = RecordExpert(min_return=20)
    model.learn(512, callback=good)
    assert good.demonstrations().n_episodes > 0 and (good.demonstrations().episode_returns >= 20).all()
    late = RecordExpert(start_at=model.num_timesteps + 200)
    model.learn(512, callback=late, reset_num_timesteps=False)
    d = late.demonstrations()
    assert 0 < d.n_steps < 3 * 512 - 3 * 200 + 3


def test_ars_refused():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    model = sb3_contrib.ARS("MlpPolicy", "Pendulum-v1", n_delta=1, policy_kwargs={"net_arch": []}, seed=0)
    with pytest.raises(TypeError, match="ARS does not step its environment"):
        model.learn(200, callback=RecordExpert())


@pytest.mark.parametrize(
    "name, env_id, kwargs",
    [
        ("TQC", "Pendulum-v1", {"learning_starts": 50}),
        ("QRDQN", "CartPole-v1", {"learning_starts": 50}),
        ("TRPO", "CartPole-v1", {"n_steps": 64, "batch_size": 64}),
        ("RecurrentPPO", "CartPole-v1", {"n_steps": 64, "batch_size": 64, "n_epochs": 1}),
    ],
)
def test_sb3_contrib_algorithms(name, env_id, kwargs):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    venv, inner = inner_recorded_venv(env_id, 1)
    policy = "MlpLstmPolicy" if name == "RecurrentPPO" else "MlpPolicy"
    extra = {"lstm_hidden_size": 8} if name == "RecurrentPPO" else {}
    model = getattr(sb3_contrib, name)(policy, venv, policy_kwargs=tiny(**extra), seed=0, **kwargs)
    callback = RecordExpert()
    model.learn(128, callback=callback)
    assert_same_recording(callback.demonstrations(), [inner[0].demonstrations()], exact_order=True)


def test_maskable_ppo():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.envs import InvalidActionEnvDiscrete

    inner = [RecordDemonstrations(InvalidActionEnvDiscrete(dim=10, n_invalid_actions=3)) for _ in range(2)]
    venv = DummyVecEnv([lambda e=e: e for e in inner])
    model = sb3_contrib.MaskablePPO("MlpPolicy", venv, policy_kwargs=tiny(), n_steps=32, batch_size=32, seed=0)
    callback = RecordExpert()
    model.learn(64, callback=callback)
    assert_same_recording(callback.demonstrations(), [e.demonstrations() for e in inner], exact_order=False)
