"""Observation standardisation inside the policy: fitted by pretrain, saved with the model."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN, PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecNormalize

from sb3_expert import Demonstrations, pretrain
from sb3_expert.bc.normalize import NormalizedExtractor, fit_obs_statistics, normalized_keys
from tests.helpers import expert_demos


def tiny():
    return {"net_arch": [16]}  # a new dict each time: SB3 adds keys to the one it is given


@pytest.fixture(scope="module")
def pendulum_demos():
    return expert_demos("Pendulum-v1", 5)


def extractors(model):
    return [m for m in model.policy.modules() if isinstance(m, NormalizedExtractor)]


def test_statistics_are_the_demonstrations_and_every_extractor_is_wrapped(pendulum_demos):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=tiny(), seed=0)
    n_params = sum(p.numel() for p in model.policy.parameters())
    pretrain(model, pendulum_demos, n_epochs=1, finetune=False)
    wrapped = extractors(model)
    assert len(wrapped) == 3  # actor, critic, critic_target (SAC does not share them by default)
    for layer in wrapped:
        std = layer.standardize["obs"]
        np.testing.assert_allclose(std.mean.numpy(), pendulum_demos.obs.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(std.var.numpy(), pendulum_demos.obs.var(0), rtol=1e-4)
        assert isinstance(layer.extractor, FlattenExtractor)
    assert sum(p.numel() for p in model.policy.parameters()) == n_params  # statistics are buffers, not weights
    assert model.policy_kwargs["features_extractor_class"] is NormalizedExtractor
    # the actor sees standardised inputs
    obs = th.as_tensor(pendulum_demos.obs[:64])
    expected = (obs - obs.new_tensor(pendulum_demos.obs.mean(0))) / th.sqrt(
        obs.new_tensor(pendulum_demos.obs.var(0)) + 1e-8
    )
    th.testing.assert_close(model.actor.features_extractor(obs), expected, rtol=1e-4, atol=1e-4)


def test_shared_extractor_stays_shared_and_a_second_call_keeps_the_statistics(pendulum_demos):
    model = PPO("MlpPolicy", "Pendulum-v1", policy_kwargs=tiny(), seed=0)
    pretrain(model, pendulum_demos, n_epochs=1)
    policy = model.policy
    assert policy.features_extractor is policy.pi_features_extractor is policy.vf_features_extractor
    assert len(extractors(model)) == 1
    mean = policy.features_extractor.standardize["obs"].mean.clone()
    shifted = Demonstrations(
        pendulum_demos.obs + 5.0,
        pendulum_demos.actions,
        pendulum_demos.rewards,
        pendulum_demos.episode_starts,
        observation_space=spaces.Box(-np.inf, np.inf, (3,), np.float32),
        action_space=pendulum_demos.action_space,
    )
    pretrain(model, shifted, n_epochs=1)
    assert len(extractors(model)) == 1
    th.testing.assert_close(policy.features_extractor.standardize["obs"].mean, mean)


def test_turned_off_and_vecnormalize_keeps_its_own(pendulum_demos):
    model = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs=tiny(), seed=0)
    pretrain(model, pendulum_demos, n_epochs=1, normalize_obs=False, finetune=False)
    assert not extractors(model) and "features_extractor_class" not in model.policy_kwargs
    venv = VecNormalize(make_vec_env("Pendulum-v1"), norm_reward=False)
    model = TD3("MlpPolicy", venv, policy_kwargs=tiny(), seed=0)
    pretrain(model, pendulum_demos, n_epochs=1, finetune=False)
    assert not extractors(model)
    np.testing.assert_allclose(venv.obs_rms.mean, pendulum_demos.obs.mean(0), rtol=1e-4, atol=1e-5)


def test_clone_acts_on_the_raw_env_survives_save_load_in_a_new_process_and_learns(pendulum_demos, tmp_path):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [32, 32]}, learning_starts=10, seed=0)
    pretrain(model, pendulum_demos, n_epochs=3, finetune_kwargs={"critic_steps": 100})  # prepared, by default
    obs = pendulum_demos.obs[:50]
    actions = model.predict(obs, deterministic=True)[0]
    evaluate_policy(model, make_vec_env("Pendulum-v1"), n_eval_episodes=1)  # a plain env, no wrapper
    model.save(tmp_path / "clone")
    np.save(tmp_path / "obs.npy", obs)
    code = (
        "import json, sys, numpy as np; from stable_baselines3 import SAC;"
        f"m = SAC.load({str(tmp_path / 'clone')!r});"
        f"a = m.predict(np.load({str(tmp_path / 'obs.npy')!r}), deterministic=True)[0];"
        "print(json.dumps(a.tolist()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    np.testing.assert_array_equal(np.asarray(json.loads(out), np.float32), actions)
    model.learn(50)
    assert len(extractors(model)) == 3  # learn() keeps the layer and its statistics
    layer = model.actor.features_extractor.standardize["obs"]
    np.testing.assert_allclose(layer.mean.numpy(), pendulum_demos.obs.mean(0), rtol=1e-5, atol=1e-6)


class GoalPoint(gym.Env):
    """A goal-conditioned 2-D point: move towards ``desired_goal``; Dict observations as HER wants."""

    def __init__(self):
        box = spaces.Box(-10.0, 10.0, (2,), np.float32)
        self.observation_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _obs(self):
        return {"observation": self.pos.copy(), "achieved_goal": self.pos.copy(), "desired_goal": self.goal.copy()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-5, 5, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-5, 5, 2).astype(np.float32)
        self.t = 0
        return self._obs(), {}

    def compute_reward(self, achieved_goal, desired_goal, info):
        return -(np.linalg.norm(achieved_goal - desired_goal, axis=-1) > 0.5).astype(np.float32)

    def step(self, action):
        self.pos = np.clip(self.pos + 0.5 * np.asarray(action, np.float32), -10, 10).astype(np.float32)
        self.t += 1
        reward = float(self.compute_reward(self.pos, self.goal, {}))
        return self._obs(), reward, reward == 0.0, self.t >= 30, {}


def goal_expert(obs):
    return np.clip(obs["desired_goal"] - obs["observation"], -1, 1).astype(np.float32)


def goal_demos(n_steps):
    """``n_steps`` of :func:`goal_expert` on :class:`GoalPoint` (episodes cut where the step count ends)."""
    from sb3_expert import RecordDemonstrations

    env = RecordDemonstrations(GoalPoint())
    obs, _ = env.reset(seed=0)
    for _ in range(n_steps):
        obs, _, terminated, truncated, _ = env.step(goal_expert(obs))
        if terminated or truncated:
            obs, _ = env.reset()
    return env.demonstrations()


def test_her_dict_observations():
    from stable_baselines3 import HerReplayBuffer

    from sb3_expert import RecordDemonstrations

    env = RecordDemonstrations(GoalPoint())
    for k in range(30):
        obs, _ = env.reset(seed=k)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(goal_expert(obs))
            done = terminated or truncated
    demos = env.demonstrations()
    assert sorted(normalized_keys(demos.observation_space)) == ["achieved_goal", "desired_goal", "observation"]
    model = SAC(
        "MultiInputPolicy",
        GoalPoint(),
        replay_buffer_class=HerReplayBuffer,
        learning_starts=64,
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
    )
    pretrain(model, demos, n_epochs=30)
    wrapped = extractors(model)
    assert wrapped and set(wrapped[0].keys) == {"observation", "achieved_goal", "desired_goal"}
    predicted = model.predict(demos.obs, deterministic=True)[0]
    assert np.abs(predicted - demos.actions).mean() < 0.1
    model.learn(100)  # HER sampling and the standardised policy together


def test_images_are_left_to_sb3():
    image = spaces.Box(0, 255, (36, 36, 1), np.uint8)
    assert normalized_keys(image) == []
    assert normalized_keys(spaces.Dict({"image": image, "state": spaces.Box(-1, 1, (3,))})) == ["state"]
    assert normalized_keys(spaces.Discrete(3)) == []


def test_fit_is_exact_across_chunks():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 4))
    space = spaces.Box(-np.inf, np.inf, (4,))
    whole = fit_obs_statistics(space, [data])[None]
    chunked = fit_obs_statistics(space, [data[:300], data[300:700], data[700:]])[None]
    np.testing.assert_allclose(whole.mean, data.mean(0), atol=1e-3)
    np.testing.assert_allclose(chunked.mean, whole.mean)
    np.testing.assert_allclose(chunked.var, whole.var)


def test_dqn_target_network_gets_the_same_layer():
    demos = expert_demos("CartPole-v1", 2)
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=tiny(), seed=0)
    pretrain(model, demos, n_epochs=1)
    online, target = model.q_net.features_extractor, model.q_net_target.features_extractor
    assert isinstance(online, NormalizedExtractor) and isinstance(target, NormalizedExtractor)
    assert online is not target
    for name, tensor in online.state_dict().items():
        th.testing.assert_close(target.state_dict()[name], tensor)
