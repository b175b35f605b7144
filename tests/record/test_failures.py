"""Recording survives failures: a SIGKILL at a random moment loses no committed step and never
gives a wrong final observation; a file-size limit (a full disk) leaves a file that loads with
everything committed, a clear error, a clean close and no crash at exit."""

import re
import signal
import subprocess
import sys
import textwrap
import time

import gymnasium as gym
import numpy as np
import pytest

from sb3_expert import load_demonstrations

RECORD = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import gymnasium as gym
    from sb3_expert import RecordDemonstrations, VecRecordDemonstrations
    from stable_baselines3.common.vec_env import DummyVecEnv

    path, chunk, limit, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if limit:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    rng = np.random.default_rng(0)
    if kind == "wrapper":
        env = RecordDemonstrations(gym.make("Pendulum-v1"), path, chunk_size=chunk)
        env.reset(seed=0)
        print("ready", flush=True)
        try:
            while True:
                _, _, terminated, truncated, _ = env.step(rng.uniform(-2, 2, size=1).astype(np.float32))
                if terminated or truncated:
                    env.reset()
        except Exception as e:
            print(type(e).__name__, e, flush=True)
        env.close()
    else:
        venv = VecRecordDemonstrations(DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 2), path, chunk_size=chunk)
        venv.seed(0)
        venv.reset()
        print("ready", flush=True)
        try:
            while True:
                venv.step(rng.uniform(-2, 2, size=(2, 1)).astype(np.float32))
        except Exception as e:
            print(type(e).__name__, e, flush=True)
        venv.close()
    print("closed", flush=True)
    """
)


def replay(n_steps):
    """The wrapper child's run, by hand: ``obs`` of each step, and each episode's final observation
    (for an episode cut after ``n_steps``, the observation that followed its last step)."""
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    steps, finals = [], []
    for _ in range(n_steps):
        steps.append(obs)
        obs, _, terminated, truncated, _ = env.step(rng.uniform(-2, 2, size=1).astype(np.float32))
        if terminated or truncated:
            finals.append(obs)
            obs, _ = env.reset()
    if len(finals) * 200 < n_steps:
        finals.append(obs)
    return np.array(steps), np.array(finals)


@pytest.mark.parametrize("trial", range(20))
def test_sigkill_at_a_random_moment(tmp_path, trial):
    rng = np.random.default_rng(trial)
    path = tmp_path / "killed.h5"
    chunk = int(rng.integers(7, 300))  # mid-episode commits, with a pending final observation
    proc = subprocess.Popen(
        [sys.executable, "-c", RECORD, str(path), str(chunk), "0", "wrapper"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(float(rng.uniform(0.0, 0.6)))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    demos = load_demonstrations(path)
    steps, finals = replay(demos.n_steps)
    np.testing.assert_array_equal(demos.obs, steps)  # every committed step, exactly
    np.testing.assert_array_equal(demos.final_obs, finals)  # the unfinished episode's too


@pytest.mark.parametrize("kind", ["wrapper", "vec"])
def test_a_file_size_limit_leaves_a_loadable_file(tmp_path, kind):
    path = tmp_path / "limited.h5"
    out = subprocess.run(
        [sys.executable, "-c", RECORD, str(path), "1024", str(600_000), kind],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]  # no crash at exit
    assert "Traceback" not in out.stderr and "Segmentation" not in out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "closed"  # close() after the failure closes, without raising again
    error = lines[-2]
    assert error.startswith("WriteFailedError") and str(path) in error
    committed = int(re.search(r"keeps the (\d+) steps", error).group(1))
    assert committed > 0
    demos = load_demonstrations(path)
    assert demos.n_steps == committed
    if kind == "wrapper":
        steps, finals = replay(committed)
        np.testing.assert_array_equal(demos.obs, steps)
        np.testing.assert_array_equal(demos.final_obs, finals)
    assert not list(tmp_path.glob(".limited.h5*"))  # lock released, no temp file left


KILL_VEC = textwrap.dedent(
    """
    import sys
    import numpy as np
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from sb3_expert import RecordExpert, VecRecordDemonstrations

    path, kind = sys.argv[1], sys.argv[2]
    if kind == "vec":
        venv = VecRecordDemonstrations(make_vec_env("CartPole-v1", n_envs=3, seed=0), path, flush_every_episode=True)
        venv.reset()
        episodes = 0
        while True:
            _, _, dones, _ = venv.step(np.array([venv.action_space.sample() for _ in range(3)]))
            if dones.any():
                episodes += int(dones.sum())
                print(episodes, flush=True)
    else:
        class Tell(RecordExpert):
            def _on_step(self):
                result = super()._on_step()
                if np.any(self.locals["dones"]):
                    print(self.sink.n_episodes + sum(s.n_finished for s in self.streams), flush=True)
                return result

        model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), n_steps=64, seed=0)
        model.learn(10**7, callback=Tell(path, flush_every_episode=True))
    """
)


@pytest.mark.parametrize("kind", ["vec", "callback"])
def test_vec_recorder_and_callback_flush_every_episode(tmp_path, kind):
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-c", KILL_VEC, str(path), kind], stdout=subprocess.PIPE, text=True)
    for _ in range(30):
        finished = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    demos = load_demonstrations(path)
    assert demos.n_episodes >= finished >= 30  # every episode that had ended is in the file
    assert not demos.truncated[:finished].any() or kind == "vec"  # CartPole episodes end by termination


def test_flush_on_every_recorder(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert import RecordExpert, VecRecordDemonstrations

    venv = VecRecordDemonstrations(make_vec_env("CartPole-v1", n_envs=1, seed=0), tmp_path / "v.h5")
    venv.reset()
    for _ in range(30):
        venv.step(np.array([0]))
    venv.flush()  # one sub-environment: the running episode's steps are made durable too
    assert load_demonstrations(tmp_path / "v.h5").n_steps == 30
    venv.close()
    callback = RecordExpert(tmp_path / "c.h5")
    PPO("MlpPolicy", "CartPole-v1", n_steps=64, seed=0).learn(64, callback=callback)
    callback.flush()
    assert load_demonstrations(tmp_path / "c.h5").n_steps > 0
    callback.close()


LIVE = textwrap.dedent(
    """
    import sys, time
    import gymnasium as gym
    from sb3_expert import RecordDemonstrations
    from sb3_expert.demo import cartpole_controller

    env = RecordDemonstrations(gym.make("CartPole-v1"), sys.argv[1])
    obs, _ = env.reset(seed=0)
    for _ in range(120):
        obs, *_ = env.step(cartpole_controller(obs))
    env.flush()
    print("flushed", flush=True)
    for _ in range(5):
        obs, *_ = env.step(cartpole_controller(obs))  # recorded, not committed
    time.sleep(60)
    """
)


def test_a_file_being_recorded_can_be_read(tmp_path):
    path = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, "-c", LIVE, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "flushed"
        time.sleep(0.2)
        demos = load_demonstrations(path)  # HDF5's own lock would refuse this
        assert demos.n_steps == 120 and demos.truncated.tolist() == [True]  # the running episode, so far
    finally:
        proc.kill()
        proc.wait()
