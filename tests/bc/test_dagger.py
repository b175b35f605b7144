"""DAgger: mixing, labels, schedules, students of every family, the file, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from examples.dagger_pixels import Pixels
from sb3_expert import DAgger, ExponentialBetaSchedule, HDF5Reader, LinearBetaSchedule, dagger
from tests.helpers import cartpole_expert, pendulum_expert


def small() -> dict:
    """Tiny networks (a new dict each time: SB3 and pretrain add to policy_kwargs)."""
    return {"policy_kwargs": {"net_arch": [32, 32]}}


def batched(controller):
    """A one-observation controller as the batched callable DAgger queries."""
    return lambda obs: np.array([controller(o) for o in obs])


def test_beta_schedules():
    assert [LinearBetaSchedule(4)(r) for r in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert [ExponentialBetaSchedule(0.5)(r) for r in range(3)] == [1.0, 0.5, 0.25]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="rampdown_rounds"):
            LinearBetaSchedule(bad)
    for bad in (0.0, 1.0, 2, "x"):
        with pytest.raises(ValueError, match="decay"):
            ExponentialBetaSchedule(bad)


def test_labels_mixing_and_rounds_with_a_callable_expert():
    """Every recorded action is the expert's label for the student's observation, whoever acted;
    who acted follows beta per round; DQN (off-policy, discrete) learns to balance."""
    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = DQN("MlpPolicy", venv, seed=0, **small())
    with DAgger(
        model,
        batched(cartpole_expert),
        rollout_steps=1000,
        beta_schedule=lambda r: [1.0, 0.5, 0.0][r],
        seed=0,
        verbose=0,
    ) as run:
        for _ in range(3):
            run.collect()
            run.update()
        data = run.dataset
    assert run.round == 3 and run.labels == 3000 and data.n_steps == 3000
    expected = np.array([cartpole_expert(o) for o in data.obs])
    np.testing.assert_array_equal(data.actions, expected)
    rounds, acted = data.infos["dagger_round"], data.infos["expert_acted"]
    assert np.bincount(rounds).tolist() == [1000, 1000, 1000]
    assert acted[rounds == 0].all() and not acted[rounds == 2].any()
    assert 0.4 < acted[rounds == 1].mean() < 0.6
    mean, _ = evaluate_policy(model, make_vec_env("CartPole-v1", seed=1), n_eval_episodes=5)
    assert mean >= 475


def test_dagger_function_ppo_student_with_eval_env_and_file(tmp_path):
    """The one-call form: an on-policy student, the zoo-style expert as an SB3 model, written to .h5."""
    expert = PPO("MlpPolicy", "CartPole-v1", seed=0, **small())
    from sb3_expert import pretrain
    from tests.helpers import expert_demos

    pretrain(expert, expert_demos("CartPole-v1", 5), n_epochs=20, seed=0)  # an expert as an SB3 model
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=1), seed=1, **small())
    out = dagger(
        model,
        expert,
        2000,
        rollout_steps=1000,
        path=tmp_path / "d.h5",
        seed=1,
        verbose=0,
        eval_env=make_vec_env("CartPole-v1", seed=2),
    )
    assert out is model
    with HDF5Reader(tmp_path / "d.h5") as reader:
        assert reader.n_steps == 2000 and reader.info_keys == ["dagger_round", "expert_acted"]
        data = reader.load()
    labels = expert.predict(data.obs, deterministic=True)[0]
    np.testing.assert_array_equal(data.actions, labels)
    agree = (model.predict(data.obs, deterministic=True)[0] == labels).mean()
    assert agree > 0.9


def test_demonstrations_as_round_zero_and_max_rows():
    demos_venv = make_vec_env("CartPole-v1", seed=0)
    from tests.helpers import expert_demos

    demos = expert_demos("CartPole-v1", 2)
    model = PPO("MlpPolicy", demos_venv, seed=0, **small())
    with DAgger(
        model, batched(cartpole_expert), demonstrations=demos, rollout_steps=600, max_rows=1500, seed=0, verbose=0
    ) as run:
        assert run.round == 1 and run.dataset.n_steps == demos.n_steps == 1000
        assert run.dataset.infos["expert_acted"].all()
        run.train(1200)
        assert run.labels == 1200 and run.round == 3
        data = run.dataset
    # capped: the oldest episodes (the given demonstrations first) dropped, whole episodes kept
    assert data.n_steps <= 1500 and data.infos["dagger_round"].max() == 2
    assert data.n_steps + demos.n_steps > 1500
    assert np.bincount(data.infos["dagger_round"], minlength=3)[2] == 600


class DictObs(gym.ObservationWrapper):
    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = spaces.Dict({"state": env.observation_space})

    def observation(self, observation):
        return {"state": observation}


def test_dict_observations_sac_student():
    venv = make_vec_env("Pendulum-v1", n_envs=2, seed=0, wrapper_class=DictObs)
    model = SAC("MultiInputPolicy", venv, seed=0, **small())

    def expert(obs):
        return np.stack([pendulum_expert(o) for o in obs["state"]])

    with DAgger(model, expert, rollout_steps=400, n_epochs=2, seed=0, verbose=0) as run:
        run.train(800)
        data = run.dataset
    np.testing.assert_allclose(data.actions, expert(data.obs), rtol=1e-6)


def test_sb3_contrib_recurrent_student():
    from sb3_contrib import RecurrentPPO

    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = RecurrentPPO("MlpLstmPolicy", venv, seed=0, policy_kwargs={"lstm_hidden_size": 16, "net_arch": [16]})
    with DAgger(model, batched(cartpole_expert), rollout_steps=200, n_epochs=1, seed=0, verbose=0) as run:
        run.train(400)
        data = run.dataset
    assert run.round == 2 and data.n_steps == 400
    np.testing.assert_array_equal(data.actions, [cartpole_expert(o) for o in data.obs])


def test_privileged_expert_teaches_a_pixel_student():
    """The expert sees the state (from info), the student frames; labels are the expert's on the
    state behind each frame."""
    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0, env_kwargs={"render_mode": "rgb_array"}, wrapper_class=Pixels)
    model = PPO("CnnPolicy", venv, seed=0, policy_kwargs={"features_extractor_kwargs": {"features_dim": 16}})
    states: list[np.ndarray] = []

    def expert(obs):
        states.extend(obs)
        return np.array([cartpole_expert(o) for o in obs])

    with DAgger(model, expert, expert_obs="state", rollout_steps=200, n_epochs=1, seed=0, verbose=0) as run:
        run.collect()
        run.update()
        data = run.dataset
    assert data.obs.shape == (200, 36, 120, 1) and data.obs.dtype == np.uint8
    expected = np.array([cartpole_expert(s) for s in states])  # the expert's view, in step order
    assert sorted(data.actions.tolist()) == sorted(expected.tolist())
    assert len(states) == 200 and np.asarray(states).shape == (200, 4)


def test_bad_input(tmp_path):
    venv = make_vec_env("CartPole-v1", seed=0)
    model = PPO("MlpPolicy", venv, seed=0, **small())
    expert = batched(cartpole_expert)
    with pytest.raises(TypeError, match="model"):
        DAgger("PPO", expert)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expert"):
        DAgger(model, 42)
    with pytest.raises(TypeError, match="VecNormalize"):
        DAgger(model, expert, env=VecNormalize(venv))
    for kwargs, match in [
        ({"rollout_steps": 0}, "rollout_steps"),
        ({"n_epochs": -1}, "n_epochs"),
        ({"max_rows": 0}, "max_rows"),
        ({"path": tmp_path / "d.npz"}, "path"),
        ({"resume": True}, "resume"),
        ({"beta_schedule": 1.5}, "beta_schedule"),
        ({"beta_schedule": "cosine"}, "beta_schedule"),
        ({"pretrain_kwargs": {"n_epochs": 3}}, "pretrain_kwargs"),
        ({"pretrain_kwargs": {"val_interval": 1}}, "pretrain_kwargs"),
        ({"pretrain_kwargs": {"n_epoch": 3}}, r"pretrain_kwargs: \['n_epoch'\] are not arguments of pretrain"),
        ({"pretrain_kwargs": {"ensemble_noise": 0.2}}, "pretrain_kwargs: ensemble_noise without ensemble"),
    ]:
        with pytest.raises(ValueError, match=match):
            DAgger(model, expert, **kwargs)
    with pytest.raises(TypeError, match="expert_obs"):
        DAgger(model, expert, expert_obs=3)
    run = DAgger(model, expert, beta_schedule=lambda r: 2.0, verbose=0)
    with pytest.raises(ValueError, match="beta"):
        run.collect()
    with pytest.raises(RuntimeError, match="collect"):
        run.update()
    run.close()
    assert not (tmp_path / "d.npz").exists()


def test_resume_refuses_a_file_it_did_not_write_and_leaves_it_as_it_was(tmp_path):
    from sb3_expert import DemonstrationFileError, save_demonstrations
    from tests.helpers import expert_demos

    demos = expert_demos("CartPole-v1", 1)
    save_demonstrations(demos, tmp_path / "plain.h5")
    before = (tmp_path / "plain.h5").read_bytes()
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", seed=0), seed=0, **small())
    with pytest.raises(DemonstrationFileError, match="expected a DAgger file"):
        DAgger(model, batched(cartpole_expert), path=tmp_path / "plain.h5", resume=True)
    assert (tmp_path / "plain.h5").read_bytes() == before
    with DAgger(model, batched(cartpole_expert), path=tmp_path / "d.h5", demonstrations=demos, verbose=0):
        pass
    with pytest.raises(ValueError, match="demonstrations: .* already holds its rounds"):
        DAgger(model, batched(cartpole_expert), path=tmp_path / "d.h5", resume=True, demonstrations=demos)
    with DAgger(model, batched(cartpole_expert), path=tmp_path / "d.h5", resume=True, verbose=0) as run:
        assert run.round == 1 and run.dataset.n_steps == demos.n_steps


KILLED = textwrap.dedent(
    """
    import sys, time, numpy as np
    from pathlib import Path
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from sb3_expert import DAgger
    from tests.helpers import cartpole_expert
    calls = [0]
    def expert(obs):
        calls[0] += 1
        if calls[0] > 900:  # in the middle of round 1 (600 steps a round, 2 envs)
            Path(sys.argv[2]).touch()
            time.sleep(600)
        return np.array([cartpole_expert(o) for o in obs])
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), seed=0, policy_kwargs={"net_arch": [8]})
    run = DAgger(model, expert, path=sys.argv[1], rollout_steps=1200, n_epochs=1, seed=0, verbose=0)
    run.train(10_000)
    """
)


def test_resume_after_a_kill_continues_after_the_last_flushed_round(tmp_path):
    path, marker = tmp_path / "d.h5", tmp_path / "stuck"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path), str(marker)], env=env)
    try:
        deadline = time.time() + 120
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the run did not reach round 1"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), seed=0, policy_kwargs={"net_arch": [8]})
    with DAgger(
        model, batched(cartpole_expert), path=path, resume=True, rollout_steps=1200, n_epochs=1, verbose=0
    ) as run:
        assert run.round == 1 and run.labels == 1200 and run.dataset.n_steps == 1200
        run.train(2400)
        assert run.round == 2 and run.labels == 2400
    with HDF5Reader(path) as reader:
        data = reader.load()
    assert np.bincount(data.infos["dagger_round"]).tolist() == [1200, 1200]
    np.testing.assert_array_equal(data.actions, [cartpole_expert(o) for o in data.obs])
