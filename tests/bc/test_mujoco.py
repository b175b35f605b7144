"""The one MuJoCo test of the test command: a few hundred steps of the rl-zoo HalfCheetah expert,
cloned with the default call (quality on MuJoCo is measured by benchmarks/bench_clone_quality.py)."""

import numpy as np
import pytest
from stable_baselines3 import TD3
from stable_baselines3.common.env_util import make_vec_env

from sb3_expert import generate_expert_traj, load_demonstrations, load_policy, pretrain
from sb3_expert.bc.normalize import NormalizedExtractor
from tests.helpers import FIXTURES, needs_fixtures

pytest.importorskip("mujoco", reason="needs gymnasium's MuJoCo environments: pip install 'sb3-expert[mujoco]'")


@needs_fixtures
def test_halfcheetah_clone_is_standardised_and_fits_the_expert(tmp_path):
    venv = make_vec_env("HalfCheetah-v5", env_kwargs={"max_episode_steps": 150}, seed=0)
    expert = load_policy("sac", venv, path=FIXTURES / "rl-zoo" / "sac" / "HalfCheetah-v3_1")
    generate_expert_traj(expert, tmp_path / "demos.npz", venv, n_episodes=2)
    demos = load_demonstrations(tmp_path / "demos.npz")
    assert demos.n_steps == 300
    model = TD3("MlpPolicy", "HalfCheetah-v5", policy_kwargs={"net_arch": [64, 64]}, seed=0)
    before = np.abs(model.predict(demos.obs, deterministic=True)[0] - demos.actions).mean()
    pretrain(model, tmp_path / "demos.npz", n_epochs=30, finetune=False)
    after = np.abs(model.predict(demos.obs, deterministic=True)[0] - demos.actions).mean()
    assert isinstance(model.actor.features_extractor, NormalizedExtractor)
    # raw HalfCheetah velocities reach +-20: standardised, the clone fits the expert's actions closely
    assert after < 0.15 < before
