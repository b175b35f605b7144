import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from sb3_expert import load_policy
from tests.experts.hub import HubServer, fill_cache

ORG = "sb3-expert-test"
REPO = f"{ORG}/ppo-Pendulum-v1"

LOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from stable_baselines3.common.env_util import make_vec_env
    from sb3_expert import ExpertLoaderError, load_policy

    venv = make_vec_env("Pendulum-v1")
    obs = np.array(json.loads(sys.argv[1]), dtype=np.float32)
    try:
        policy = load_policy(sys.argv[2], venv, env_name="Pendulum-v1", organization=sys.argv[3])
    except ExpertLoaderError as e:
        print(json.dumps({"error": str(e)}))
    else:
        print(json.dumps({"actions": policy.predict(obs, deterministic=True)[0].tolist(),
                          "normalized": type(policy).__name__}))
    """
)


def run_loader(obs, env, policy_type="ppo-huggingface", organization=ORG):
    out = subprocess.run(
        [sys.executable, "-c", LOAD, json.dumps(obs.tolist()), policy_type, organization],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_round_trip_from_folder(expert):
    folder, _, obs, expected = expert
    policy = load_policy("ppo", make_vec_env("Pendulum-v1"), path=folder)
    np.testing.assert_allclose(policy.predict(obs, deterministic=True)[0], expected, rtol=1e-6)


def test_from_a_local_hub_server(expert, tmp_path):
    _, files, obs, expected = expert
    with HubServer({REPO: files, f"{ORG}/a2c-Pendulum-v1": {"README.md": b"no model here"}}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "0"}
        got = run_loader(obs, env)
        assert any("ppo-Pendulum-v1.zip" in r for r in hub.requests)
        assert any("vec_normalize.pkl" in r for r in hub.requests)
        missing = run_loader(obs, env, organization="nobody")
        missing_file = run_loader(obs, env, policy_type="a2c-huggingface")
    np.testing.assert_allclose(got["actions"], expected, rtol=1e-6)
    assert got["normalized"] == "NormalizedPolicy"
    assert "no repository 'nobody/ppo-Pendulum-v1'" in missing["error"]
    assert "no file 'a2c-Pendulum-v1.zip' in 'sb3-expert-test/a2c-Pendulum-v1'" in missing_file["error"]


def test_offline_from_a_prefilled_cache(expert, tmp_path):
    _, files, obs, expected = expert
    fill_cache(tmp_path / "cache", REPO, files)
    env = {"HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    got = run_loader(obs, env)
    np.testing.assert_allclose(got["actions"], expected, rtol=1e-6)
    absent = run_loader(obs, env, organization="nobody")
    assert "nobody/ppo-Pendulum-v1" in absent["error"]


def test_save_expert_checks_its_arguments_before_writing(tmp_path):
    from stable_baselines3 import PPO

    from sb3_expert import ArgumentTypeError, ArgumentValueError, save_expert

    model = PPO("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, n_steps=64, seed=0)
    folder = tmp_path / "out"
    with pytest.raises(ArgumentValueError, match="env_id: expected a gymnasium id .* got '/tmp/x'"):
        save_expert(model, folder, "/tmp/x")
    with pytest.raises(ArgumentTypeError, match="env_id: expected a gymnasium id \\(str\\), got int"):
        save_expert(model, folder, 3)
    with pytest.raises(ArgumentTypeError, match="folder: expected a path"):
        save_expert(model, 3, "Pendulum-v1")
    with pytest.raises(ArgumentTypeError, match="overwrite: expected True or False"):
        save_expert(model, folder, "Pendulum-v1", overwrite="no")
    with pytest.raises(ArgumentTypeError, match="vec_normalize: expected a VecNormalize, got str"):
        save_expert(model, folder, "Pendulum-v1", vec_normalize="stats.pkl")
    assert not folder.exists()  # nothing written, not even the folder
    assert save_expert(model, folder, "ALE/Pendulum-v1").name == "ppo-ALE-Pendulum-v1.zip"  # namespaced ids


def test_save_expert_overwrite_keeps_the_old_file_whole_on_a_crash(tmp_path):
    from stable_baselines3 import PPO

    from sb3_expert import save_expert

    model = PPO("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, n_steps=64, seed=0)
    path = save_expert(model, tmp_path, "Pendulum-v1")
    before = path.read_bytes()

    def crash(target, *args, **kwargs):
        target.write(b"partial")
        raise OSError("disk full")

    model.save = crash
    with pytest.raises(OSError, match="disk full"):
        save_expert(model, tmp_path, "Pendulum-v1", overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
