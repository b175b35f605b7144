import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_expert import save_expert


@pytest.fixture(scope="module")
def expert(tmp_path_factory):
    """A tiny PPO trained under VecNormalize, saved in huggingface-sb3's layout: ``(folder, its files
    by name, observations, the expert's deterministic actions on them)``."""
    venv = VecNormalize(make_vec_env("Pendulum-v1", seed=0))
    model = PPO("MlpPolicy", venv, policy_kwargs={"net_arch": [8]}, n_steps=64, batch_size=64, seed=0)
    model.learn(128)
    folder = tmp_path_factory.mktemp("expert")
    zip_path = save_expert(model, folder, "Pendulum-v1")
    assert zip_path.name == "ppo-Pendulum-v1.zip" and (folder / "vec_normalize.pkl").exists()
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    venv.training = False
    expected = model.predict(venv.normalize_obs(obs), deterministic=True)[0]
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    return folder, files, obs, expected
