"""Nothing read from a model file runs code unless trust_remote_code=True: local files, rl-zoo runs,
a local Hub server, an offline cache and the CLI, against a stealthy payload that returns the real
object (so a working expert would hide it)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.env_util import make_vec_env

from sb3_expert import ArgumentTypeError, ExpertLoaderError, load_policy, pretrain
from sb3_expert.experts.safe_load import UnsafeModelError
from tests.experts.hub import HubServer, fill_cache
from tests.experts.payload import poison_pickle, poison_zip
from tests.helpers import FIXTURES, expert_demos, needs_fixtures

ORG = "sb3-expert-test"
REPO = f"{ORG}/ppo-Pendulum-v1"


@pytest.fixture(scope="module")
def expert_folder(expert):
    return expert[0]


def poisoned_copy(folder, tmp_path, what, marker):
    target = tmp_path / "poisoned"
    shutil.copytree(folder, target)
    if what == "vec_normalize.pkl":
        poison_pickle(target / "vec_normalize.pkl", marker)
    else:
        poison_zip(target / "ppo-Pendulum-v1.zip", what, marker)
    return target


@pytest.mark.parametrize("what", ["vec_normalize.pkl", "policy_kwargs", "policy_class", "an_extra_key"])
def test_a_local_file_runs_nothing_without_the_opt_in(expert_folder, tmp_path, what):
    marker = tmp_path / "marker"
    folder = poisoned_copy(expert_folder, tmp_path, what, marker)
    venv = make_vec_env("Pendulum-v1")
    for normalize in (True, False):
        with pytest.raises(UnsafeModelError, match=r"refusing to load tests\.experts\.payload\.touch_then_"):
            load_policy("ppo", venv, path=folder, normalize=normalize)
        assert not marker.exists()
    policy = load_policy("ppo", venv, path=folder, trust_remote_code=True)
    assert marker.exists()  # the opt-in runs it, and the expert works
    assert policy.predict(np.zeros(3, np.float32), deterministic=True)[0].shape == (1,)


def test_the_error_names_file_entry_class_and_the_opt_in(expert_folder, tmp_path):
    folder = poisoned_copy(expert_folder, tmp_path, "policy_kwargs", tmp_path / "marker")
    with pytest.raises(UnsafeModelError) as info:
        load_policy("ppo", make_vec_env("Pendulum-v1"), path=folder)
    message = str(info.value)
    assert "ppo-Pendulum-v1.zip" in message and "'policy_kwargs'" in message
    assert "touch_then_return" in message and "trust_remote_code=True" in message
    assert isinstance(info.value, ValueError)


@needs_fixtures
def test_an_rl_zoo_run_with_a_poisoned_vecnormalize(tmp_path):
    run = tmp_path / "MountainCarContinuous-v0_1"
    shutil.copytree(FIXTURES / "rl-zoo" / "ppo" / "MountainCarContinuous-v0_1", run)
    marker = tmp_path / "marker"
    poison_pickle(run / "MountainCarContinuous-v0" / "vecnormalize.pkl", marker)
    venv = make_vec_env("MountainCarContinuous-v0")
    with pytest.raises(UnsafeModelError, match="vecnormalize.pkl"):
        load_policy("ppo", venv, path=run)
    assert not marker.exists()
    load_policy("ppo", venv, path=run, trust_remote_code=True)
    assert marker.exists()


LOAD = textwrap.dedent(
    """
    import json, sys
    from stable_baselines3.common.env_util import make_vec_env
    from sb3_expert import ExpertLoaderError, load_policy

    try:
        load_policy("ppo-huggingface", make_vec_env("Pendulum-v1"), env_name="Pendulum-v1",
                    organization=sys.argv[1], trust_remote_code=sys.argv[2] == "trust")
    except ExpertLoaderError as e:
        print(json.dumps({"error": str(e)}))
    else:
        print(json.dumps({"loaded": True}))
    """
)


def load_from_hub(env, trust):
    out = subprocess.run(
        [sys.executable, "-c", LOAD, ORG, "trust" if trust else "safe"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("what", ["vec_normalize.pkl", "an_extra_key"])
def test_the_hub_local_server_and_offline_cache(expert_folder, tmp_path, what):
    marker = tmp_path / "marker"
    folder = poisoned_copy(expert_folder, tmp_path, what, marker)
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    with HubServer({REPO: files}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "0"}
        assert "refusing to load" in load_from_hub(env, trust=False)["error"]
        assert not marker.exists()
    fill_cache(tmp_path / "offline", REPO, files)
    offline = {"HF_HUB_CACHE": str(tmp_path / "offline"), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    assert "refusing to load" in load_from_hub(offline, trust=False)["error"]
    assert not marker.exists()
    assert load_from_hub(offline, trust=True) == {"loaded": True}
    assert marker.exists()


def test_cli_evaluate_and_record(expert_folder, tmp_path):
    marker = tmp_path / "marker"
    folder = poisoned_copy(expert_folder, tmp_path, "vec_normalize.pkl", marker)
    cli = [sys.executable, "-m", "sb3_expert"]
    evaluate = [*cli, "evaluate", "--algo", "ppo", "--model", str(folder), "--env", "Pendulum-v1", "--episodes", "1"]
    refused = subprocess.run(evaluate, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "--trust-remote-code" in refused.stderr and not marker.exists()
    record = [*cli, "record", "--expert", "ppo", "--expert-kwargs", f"path={folder}", "--env", "Pendulum-v1",
              "--episodes", "1", "--out", str(tmp_path / "demos.npz"), "--no-progress"]  # fmt: skip
    refused = subprocess.run(record, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and not marker.exists() and not (tmp_path / "demos.npz").exists()
    trusted = subprocess.run([*evaluate, "--trust-remote-code"], capture_output=True, text=True, timeout=120)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert marker.exists()


def test_algorithm_mismatch_is_named(tmp_path):
    DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}).save(tmp_path / "dqn")
    with pytest.raises(ExpertLoaderError, match=r"expected a PPO model, got one whose policy comes from .*dqn"):
        load_policy("ppo", make_vec_env("CartPole-v1"), path=tmp_path / "dqn.zip")


def test_a_standardised_clone_loads_safely(tmp_path):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, seed=0)
    pretrain(model, expert_demos("Pendulum-v1", 2), n_epochs=1, finetune=False)
    model.save(tmp_path / "clone")
    obs = np.zeros((2, 3), np.float32)
    policy = load_policy("sac", make_vec_env("Pendulum-v1"), path=tmp_path / "clone.zip")
    np.testing.assert_allclose(
        policy.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0], rtol=1e-6
    )


def test_a_zip_whose_data_is_not_json(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.zip", "w") as archive:
        archive.writestr("data", "{not json")
    with pytest.raises(ExpertLoaderError, match=r"m.zip: not an SB3 model \(its 'data' entry is not JSON"):
        load_policy("ppo", make_vec_env("CartPole-v1"), path=tmp_path / "m.zip")


@pytest.mark.parametrize("value", ["yes", "False", 1, None])
def test_only_true_opts_in(expert_folder, tmp_path, value):
    """A truthy non-bool (``trust_remote_code="False"`` from a config file) is refused, not taken as the opt-in."""
    marker = tmp_path / "marker"
    folder = poisoned_copy(expert_folder, tmp_path, "policy_kwargs", marker)
    with pytest.raises(ArgumentTypeError, match=f"trust_remote_code: expected True or False, got .*{value!r}"):
        load_policy("ppo", make_vec_env("Pendulum-v1"), path=folder, trust_remote_code=value)
    assert not marker.exists()
