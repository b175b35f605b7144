import signal
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from sb3_expert import (
    ActionError,
    HDF5Reader,
    OutputExistsError,
    RecordDemonstrations,
    UnsupportedSpaceError,
    load_demonstrations,
)


def hand_loop(env_id, n_steps, seed, **make_kwargs):
    """What a user would log by hand: the reference the wrapper must equal."""
    env = gym.make(env_id, **make_kwargs)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    log = {"obs": [], "actions": [], "rewards": [], "starts": [], "lengths": [], "terminated": [], "truncated": [],
           "final": []}  # fmt: skip
    start, length = True, 0
    for _ in range(n_steps):
        action = env.action_space.sample()
        log["obs"].append(obs)
        log["actions"].append(action)
        log["starts"].append(start)
        obs, reward, terminated, truncated, _ = env.step(action)
        log["rewards"].append(reward)
        start, length = False, length + 1
        if terminated or truncated:
            log["lengths"].append(length)
            log["terminated"].append(terminated)
            log["truncated"].append(truncated)
            log["final"].append(obs)
            obs, _ = env.reset()
            start, length = True, 0
    if length:  # still running when recording stops: kept, truncated
        log["lengths"].append(length)
        log["terminated"].append(False)
        log["truncated"].append(True)
        log["final"].append(obs)
    return {k: np.array(v) for k, v in log.items()}


def recorded(env_id, n_steps, seed, path=None, **kwargs):
    env = RecordDemonstrations(gym.make(env_id), path, **kwargs)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(n_steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    demos = env.demonstrations()
    env.close()
    return demos


def assert_matches_hand_loop(demos, ref):
    np.testing.assert_array_equal(demos.obs, ref["obs"])
    np.testing.assert_array_equal(demos.actions, ref["actions"].reshape(demos.actions.shape))
    np.testing.assert_array_equal(demos.rewards, ref["rewards"])
    np.testing.assert_array_equal(demos.episode_starts, ref["starts"])
    np.testing.assert_array_equal(demos.episode_lengths, ref["lengths"])
    np.testing.assert_array_equal(demos.terminated, ref["terminated"])
    np.testing.assert_array_equal(demos.truncated, ref["truncated"])
    np.testing.assert_array_equal(demos.final_obs, ref["final"])


@pytest.mark.parametrize("env_id, n_steps", [("CartPole-v1", 700), ("Pendulum-v1", 450)])
@pytest.mark.parametrize("where", ["memory", "h5", "npz"])
def test_equals_hand_written_loop(tmp_path, env_id, n_steps, where):
    path = None if where == "memory" else tmp_path / f"d.{where}"
    demos = recorded(env_id, n_steps, seed=3, path=path, chunk_size=64)
    ref = hand_loop(env_id, n_steps, seed=3)
    assert_matches_hand_loop(demos, ref)
    assert demos.metadata["env_id"] == env_id
    if path is not None:
        on_disk = load_demonstrations(path)
        assert_matches_hand_loop(on_disk, ref)
        assert on_disk.metadata["producer"] == {"recorder": "RecordDemonstrations"}


def test_chunks_reach_the_file_before_close(tmp_path):
    path = tmp_path / "d.h5"
    env = RecordDemonstrations(gym.make("CartPole-v1"), path, chunk_size=32)
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(100):
        if any(env.step(env.action_space.sample())[2:4]):
            env.reset()
    with HDF5Reader(path) as reader:  # the file is readable while recording
        assert reader.n_steps == 96
    env.close()
    assert load_demonstrations(path).n_steps == 100


def test_mid_episode_reset_truncates_and_step_after_end_raises():
    env = RecordDemonstrations(gym.make("CartPole-v1"))
    with pytest.raises(ResetNeeded, match="before reset"):
        env.step(0)
    env.reset(seed=0)
    env.step(0)
    env.step(1)
    env.reset(seed=1)
    env.step(1)
    while True:
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            break
    with pytest.raises(ResetNeeded, match="after an episode ended"):
        env.step(0)
    demos = env.demonstrations()
    assert demos.episode_lengths[0] == 2 and demos.truncated[0] and not demos.terminated[0]
    assert demos.terminated[1] and not demos.truncated[1]


def test_info_keys_and_flush_every_episode(tmp_path):
    class Costly(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, terminated, truncated, {**info, "cost": float(abs(obs[0])), "pos": obs[:2]}

    path = tmp_path / "d.h5"
    env = RecordDemonstrations(Costly(gym.make("CartPole-v1")), path, info_keys=["cost", "pos"],
                               flush_every_episode=True)  # fmt: skip
    env.reset(seed=0)
    while not any(env.step(0)[2:4]):
        pass
    with HDF5Reader(path) as reader:
        assert reader.n_episodes == 1 and reader.info_keys == ["cost", "pos"]
    env.close()
    demos = load_demonstrations(path)
    np.testing.assert_allclose(demos.infos["cost"], np.abs(demos.transitions().next_obs[:, 0]), rtol=1e-6)
    assert demos.infos["pos"].shape == (demos.n_steps, 2)
    with pytest.raises(ValueError, match="info_keys: expected the key 'missing'"):
        bad = RecordDemonstrations(gym.make("CartPole-v1"), info_keys=["missing"])
        bad.reset(seed=0)
        bad.step(0)


class DictImageEnv(gym.Env):
    """A small env with Dict observations holding an image and a vector."""

    observation_space = spaces.Dict(
        {"image": spaces.Box(0, 255, (12, 10, 3), np.uint8), "vec": spaces.Box(-1, 1, (2,), np.float32)}
    )
    action_space = spaces.MultiDiscrete([3, 2])

    def _obs(self):
        return {"image": self.np_random.integers(0, 256, (12, 10, 3), dtype=np.uint8),
                "vec": self.np_random.uniform(-1, 1, 2).astype(np.float32)}  # fmt: skip

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), float(action.sum()), self.t >= 7, False, {}


def test_dict_and_image_observations(tmp_path):
    path = tmp_path / "d.h5"
    with RecordDemonstrations(DictImageEnv(), path, chunk_size=5) as env:
        obs, _ = env.reset(seed=0)
        seen, actions = [], []
        for _ in range(17):
            action = env.action_space.sample()
            seen.append(obs)
            actions.append(action)
            obs, _, terminated, _, _ = env.step(action)
            if terminated:
                obs, _ = env.reset()
    demos = load_demonstrations(path)
    assert demos.episode_lengths.tolist() == [7, 7, 3] and demos.truncated.tolist() == [False, False, True]
    np.testing.assert_array_equal(demos.obs["image"], np.stack([o["image"] for o in seen]))
    np.testing.assert_array_equal(demos.actions, np.stack(actions))
    np.testing.assert_array_equal(demos.final_obs["vec"][-1], obs["vec"])


def test_bad_input(tmp_path):
    class TupleEnv(gym.Env):
        observation_space = spaces.Tuple([spaces.Discrete(2)])
        action_space = spaces.Discrete(2)

    with pytest.raises(UnsupportedSpaceError, match="observation_space"):
        RecordDemonstrations(TupleEnv())
    path = tmp_path / "d.h5"
    path.write_bytes(b"")
    with pytest.raises(OutputExistsError, match="already exists"):
        RecordDemonstrations(gym.make("CartPole-v1"), path)
    path.unlink()
    env = RecordDemonstrations(gym.make("Pendulum-v1"), path, chunk_size=16)
    env.reset(seed=0)
    for _ in range(40):
        env.step(np.array([0.5], np.float32))
    with pytest.raises(ActionError, match=r"action: expected an array of shape \(1,\) .* got ndarray of shape \(3,\)"):
        env.step(np.zeros(3))
    with pytest.raises(ActionError, match="got str"):
        env.step("left")
    env.step(np.array([0.1], np.float32))  # recording goes on after a refused action
    del env  # no close(): the finalizer writes at garbage collection / interpreter exit
    import gc

    gc.collect()
    demos = load_demonstrations(path)
    assert demos.n_steps == 41 and demos.truncated.tolist() == [True]
    assert demos.actions[-1, 0] == np.float32(0.1)


def test_stop_recording_keeps_env_open(tmp_path):
    inner = gym.make("CartPole-v1")
    env = RecordDemonstrations(inner, tmp_path / "d.npz")
    env.reset(seed=0)
    env.step(0)
    env.stop_recording()
    env.step(1)  # passes through, unrecorded
    assert load_demonstrations(tmp_path / "d.npz").n_steps == 1
    env.close()


def test_append(tmp_path):
    path = tmp_path / "d.h5"
    recorded("CartPole-v1", 30, seed=0, path=path)
    recorded("CartPole-v1", 20, seed=1, path=path, append=True)
    assert load_demonstrations(path).n_steps == 50


def test_play_with_scripted_keys():
    pygame = pytest.importorskip("pygame")
    from gymnasium.utils.play import play

    env = RecordDemonstrations(gym.make("CartPole-v1", render_mode="rgb_array"))
    pressed = []

    def callback(prev_obs, obs, action, reward, terminated, truncated, info):
        pressed.append(action)
        step = len(pressed)
        key = pygame.K_RIGHT if step % 10 < 5 else pygame.K_LEFT
        pygame.event.post(
            pygame.event.Event(pygame.KEYUP, key=pygame.K_LEFT if key == pygame.K_RIGHT else pygame.K_RIGHT)
        )
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key))
        if step >= 60:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    play(env, keys_to_action={(pygame.K_LEFT,): 0, (pygame.K_RIGHT,): 1}, noop=0, fps=1000, seed=0, callback=callback)
    demos = env.demonstrations()
    assert demos.n_steps == len(pressed) >= 60
    np.testing.assert_array_equal(demos.actions, pressed)
    assert set(pressed) == {0, 1}
    env.close()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    import gymnasium as gym
    from sb3_expert import RecordDemonstrations

    env = RecordDemonstrations(gym.make("CartPole-v1"), sys.argv[1], chunk_size=50, flush_every_episode=True)
    env.action_space.seed(0)
    env.reset(seed=0)
    episodes = 0
    while True:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            episodes += 1
            print(episodes, flush=True)
            env.reset()
    """
)


@pytest.mark.parametrize("trial", range(2))
def test_sigkill_keeps_flushed_episodes(tmp_path, trial):
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True)
    wait_for = int(np.random.default_rng(trial + 10).integers(5, 400))
    for _ in range(wait_for):
        flushed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    demos = load_demonstrations(path)
    finished = demos.select_episodes(np.flatnonzero(~demos.truncated | demos.terminated))
    assert finished.n_episodes >= flushed
    ref = hand_loop("CartPole-v1", finished.n_steps, seed=0)
    np.testing.assert_array_equal(finished.obs, ref["obs"])
    np.testing.assert_array_equal(finished.actions, ref["actions"])
    np.testing.assert_array_equal(finished.episode_lengths, ref["lengths"][: finished.n_episodes])


@pytest.mark.parametrize("where", ["h5", "npz", "memory"])
@pytest.mark.parametrize("how", ["flush", "demonstrations"])
def test_flush_or_read_right_after_reset(tmp_path, where, how):
    """Reading or flushing between reset() and the first step() used to lose the episode's start."""
    path = None if where == "memory" else tmp_path / f"demos.{where}"
    env = RecordDemonstrations(gym.make("CartPole-v1"), path)
    lengths = []
    for episode in range(4):
        obs, _ = env.reset(seed=episode)
        if how == "flush":
            env.flush()
        else:
            assert env.demonstrations().n_episodes == episode
        done, n = False, 0
        while not done:
            obs, _, terminated, truncated, _ = env.step(int(obs[2] > 0))
            done, n = terminated or truncated, n + 1
        lengths.append(n)
    demos = env.demonstrations()
    env.close()
    np.testing.assert_array_equal(demos.episode_lengths, lengths)
    if path is not None:
        np.testing.assert_array_equal(load_demonstrations(path).episode_lengths, lengths)
