"""Bad input that used to pass silently or fail unclearly gets an error of this library naming the
field, what was expected and what was got, before anything is written."""

import gymnasium as gym
import h5py
import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert import Demonstrations, HDF5Writer, RecordDemonstrations, load_demonstrations, save_demonstrations
from sb3_expert.errors import DemonstrationError, DemonstrationFileError
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, make_demos


def rebuild(demos, **changes):
    fields = {
        "observation_space": demos.observation_space,
        "action_space": demos.action_space,
        "terminated": demos.terminated,
        "truncated": demos.truncated,
    }
    fields.update(changes)
    rewards = fields.pop("rewards", demos.rewards)
    return Demonstrations(demos.obs, demos.actions, rewards, demos.episode_starts, **fields)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_rewards_are_refused(value):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3, 4])
    rewards = demos.rewards.copy()
    rewards[5] = value
    with pytest.raises(DemonstrationError, match=r"rewards: expected finite values, got .* at index 5"):
        rebuild(demos, rewards=rewards)


@pytest.mark.parametrize("terminated, truncated", [(True, True), (False, False)])
def test_an_episode_must_end_one_way(terminated, truncated):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3, 4])
    with pytest.raises(DemonstrationError, match=r"terminated, truncated: expected each episode to end one way"):
        rebuild(demos, terminated=np.array([True, terminated]), truncated=np.array([False, truncated]))


def test_a_step_both_terminated_and_truncated_is_recorded_as_terminated(tmp_path):
    class EndsBothWays(gym.Wrapper):
        def step(self, action):
            obs, reward, _, _, info = self.env.step(action)
            return obs, reward, True, True, info

    env = RecordDemonstrations(EndsBothWays(gym.make("CartPole-v1")), tmp_path / "d.h5")
    env.reset(seed=0)
    env.step(0)
    env.close()
    demos = load_demonstrations(tmp_path / "d.h5")
    assert demos.terminated.tolist() == [True] and demos.truncated.tolist() == [False]


def test_the_writer_refuses_actions_outside_their_space_naming_the_step(tmp_path):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3, 4])
    with HDF5Writer(tmp_path / "d.h5", CARTPOLE_OBS, CARTPOLE_ACT) as writer:
        writer.append_steps(demos.obs[:3], demos.actions[:3], demos.rewards[:3], demos.episode_starts[:3])
        actions = demos.actions[3:].copy()
        actions[2] = 7
        with pytest.raises(DemonstrationError, match=r"actions: expected values in \[0, 1\] .* got 7 at step 5"):
            writer.append_steps(demos.obs[3:], actions, demos.rewards[3:], demos.episode_starts[3:])
        rewards = demos.rewards[3:].copy()
        rewards[0] = np.nan
        with pytest.raises(DemonstrationError, match=r"rewards: expected finite values, got .*nan.* at step 3"):
            writer.append_steps(demos.obs[3:], demos.actions[3:], rewards, demos.episode_starts[3:])
        assert writer.n_steps == 3  # nothing of the refused rows was written


def test_a_recorded_out_of_space_action_leaves_a_loadable_file(tmp_path):
    env = RecordDemonstrations(gym.make("CartPole-v1"), tmp_path / "d.h5", chunk_size=16)
    obs, _ = env.reset(seed=0)
    for _ in range(8):
        obs, *_ = env.step(int(obs[2] > 0))
    env.flush()
    with pytest.raises((AssertionError, ValueError)):  # CartPole itself refuses action 7
        env.step(7)
    env.close()
    assert load_demonstrations(tmp_path / "d.h5").n_steps == 8


def test_a_header_claiming_more_episodes_than_the_file_holds(tmp_path):
    path = save_demonstrations(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3, 4]), tmp_path / "d.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["committed"] = np.array([7, 5, 0], np.int64)
    with pytest.raises(DemonstrationFileError, match=r"the header says 5 episodes, but 'episode_returns' holds 2"):
        load_demonstrations(path)


def test_observations_must_be_finite():
    demos = make_demos(spaces.Box(-1, 1, (2,), np.float32), CARTPOLE_ACT, [3])
    obs = demos.obs.copy()
    obs[1, 0] = np.nan
    with pytest.raises(DemonstrationError, match=r"obs: expected finite values, got \[nan, .*\] at step 1"):
        Demonstrations(
            obs,
            demos.actions,
            demos.rewards,
            demos.episode_starts,
            observation_space=demos.observation_space,
            action_space=demos.action_space,
        )


def test_npz_with_bad_json_or_random_bytes(tmp_path):
    path = save_demonstrations(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3]), tmp_path / "d.npz")
    data = dict(np.load(path))
    for key in ("observation_space", "metadata"):
        broken = {**data, key: np.array("{not json")}
        np.savez(tmp_path / "b.npz", **broken)
        with pytest.raises(DemonstrationFileError, match=f"b.npz: the '{key}' entry is not valid JSON"):
            load_demonstrations(tmp_path / "b.npz")
    (tmp_path / "junk.npz").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(DemonstrationFileError, match=r"junk.npz: not a readable .npz file \(not a zip archive"):
        load_demonstrations(tmp_path / "junk.npz")


def test_dataset_and_writer_arguments(tmp_path):
    from sb3_expert import ExpertDataset

    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3, 4])
    with pytest.raises(ValueError, match=r"train_fraction: expected a number in \(0, 1\], got 'abc'"):
        ExpertDataset(traj_data=demos, train_fraction="abc", verbose=0)
    with pytest.raises(ValueError, match=r"compression: expected 'auto', 'gzip', 'lzf' or None, got 'zstd'"):
        HDF5Writer(tmp_path / "d.h5", CARTPOLE_OBS, CARTPOLE_ACT, compression="zstd")
    assert not (tmp_path / "d.h5").exists() and not list(tmp_path.iterdir())  # nothing written, no lock left


def test_imitation_files_corrupt_input_and_atomic_save(tmp_path):
    from sb3_expert.data.interop import load_imitation_npz, save_imitation_npz

    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3, 4])
    path = tmp_path / "t.npz"
    save_imitation_npz(demos, str(path))
    assert load_imitation_npz(str(path)).n_steps == 7
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DemonstrationFileError, match="junk.npz: not a readable imitation .npz file"):
        load_imitation_npz(str(tmp_path / "junk.npz"))
    np.savez(tmp_path / "other.npz", obs=np.zeros((3, 4)))
    with pytest.raises(DemonstrationFileError, match="other.npz: not an imitation trajectory file"):
        load_imitation_npz(str(tmp_path / "other.npz"))
    data = dict(np.load(path, allow_pickle=True))
    np.savez(tmp_path / "bad.npz", **{**data, "indices": np.array([9])})
    with pytest.raises(DemonstrationFileError, match="bad.npz: inconsistent imitation trajectories"):
        load_imitation_npz(str(tmp_path / "bad.npz"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "junk.npz", "other.npz", "t.npz"]


def test_hard_coded_experts_need_a_vecenv():
    from sb3_expert import ExpertLoaderError, load_policy

    with pytest.raises(
        ExpertLoaderError, match=r"venv: the RandomPolicy expert acts in a VecEnv's spaces.*got NoneType"
    ):
        load_policy("random", None)


def test_vec_recorder_needs_a_vecenv():
    from sb3_expert import VecRecordDemonstrations

    with pytest.raises(TypeError, match=r"venv: expected an SB3 VecEnv .* got TimeLimit; .* use RecordDemonstrations"):
        VecRecordDemonstrations(gym.make("CartPole-v1"))


@pytest.mark.parametrize("where", ["h5", "memory"])
def test_a_fractional_discrete_action_is_refused_not_cast(tmp_path, where):
    class Lenient(gym.ActionWrapper):  # an env that rounds what it is given
        def action(self, action):
            return round(action)

    env = RecordDemonstrations(Lenient(gym.make("CartPole-v1")), tmp_path / "d.h5" if where == "h5" else None)
    env.reset(seed=0)
    env.step(1)
    env.step(0.7)  # the env takes it; the recording must not store it as 0
    with pytest.raises(
        DemonstrationError, match=r"actions: expected whole numbers for Discrete\(2\), got 0.7 at step 1"
    ):
        env.demonstrations()  # reading hands the buffer over
    with pytest.raises(DemonstrationError, match="expected whole numbers"):
        env.close()  # the step cannot be written as it is: said again, and the file is closed
    assert not list(tmp_path.glob(".d.h5*"))  # no lock left behind
