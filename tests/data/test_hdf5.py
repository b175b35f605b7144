import json
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert import (
    DemonstrationError,
    DemonstrationFileError,
    DemonstrationFileNotFoundError,
    HDF5Reader,
    HDF5Writer,
    OutputExistsError,
    SpaceMismatchError,
    UnsupportedFormatVersionError,
    load_demonstrations,
    save_demonstrations,
)
from sb3_expert.data.hdf5 import FORMAT_VERSION, load_hdf5, save_hdf5
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, FIXTURES, make_demos, needs_fixtures

IMAGE = spaces.Box(0, 255, (16, 16, 3), np.uint8)


def test_round_trip_and_layout(tmp_path):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [5, 1, 7], infos=True)
    path = save_hdf5(demos, tmp_path / "d.h5")
    assert load_hdf5(path) == demos
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "sb3-expert" and f.attrs["format_version"] == FORMAT_VERSION
        assert json.loads(f.attrs["metadata"])["env_id"] == "Test-v0"
        assert json.loads(f.attrs["action_space"]) == {"type": "Discrete", "n": 2, "start": 0}
        for name in ("obs", "actions", "rewards", "episode_starts", "infos/cost"):
            assert f[name].shape[0] == 13 and f[name].chunks is not None and f[name].maxshape[0] is None
        for name in ("episode_returns", "episode_lengths", "terminated", "truncated", "final_obs"):
            assert f[name].shape[0] == 3
        assert not any(isinstance(v, h5py.Group) and k.startswith("episode_") for k, v in f.items())


def test_images_compressed_losslessly(tmp_path):
    rng = np.random.default_rng(0)
    demos = make_demos(IMAGE, spaces.Discrete(4), [30, 20])
    flat = np.zeros_like(demos.obs)
    flat[:, 4:8] = rng.integers(0, 256, (50, 4, 16, 3), dtype=np.uint8)  # compressible pixels
    demos = demos.__class__(
        flat,
        demos.actions,
        demos.rewards,
        demos.episode_starts,
        observation_space=IMAGE,
        action_space=demos.action_space,
        final_obs=demos.final_obs,
    )
    path = save_hdf5(demos, tmp_path / "img.h5")
    with h5py.File(path, "r") as f:
        assert f["obs"].compression == "lzf"
        assert f["actions"].compression is None
        assert f["obs"].id.get_storage_size() < flat.nbytes / 2
    assert load_hdf5(path) == demos


def test_dict_observations(tmp_path):
    space = spaces.Dict({"img": IMAGE, "vec": spaces.Box(-1, 1, (3,), np.float32)})
    demos = make_demos(space, spaces.Box(-1, 1, (2,), np.float32), [3, 4], unfinished_last=True)
    path = save_demonstrations(demos, tmp_path / "d.h5")
    assert load_demonstrations(path) == demos
    with HDF5Reader(path) as reader:
        batch = reader.get([6, 0, 6])
        np.testing.assert_array_equal(batch["obs"]["vec"], demos.obs["vec"][[6, 0, 6]])


def test_lazy_reader_random_batches(tmp_path):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [400, 300, 300])
    path = save_hdf5(demos, tmp_path / "d.h5")
    idx = np.random.default_rng(1).integers(0, 1000, 256)
    with HDF5Reader(path) as reader:
        assert reader.n_steps == 1000 and reader.n_episodes == 3
        batch = reader.get(idx, ("obs", "actions", "rewards"))
        np.testing.assert_array_equal(batch["obs"], demos.obs[idx])
        np.testing.assert_array_equal(batch["actions"], demos.actions[idx])
        np.testing.assert_array_equal(batch["rewards"], demos.rewards[idx])
        assert reader.load(n_episodes=2) == demos.first_episodes(2)
        with pytest.raises(IndexError, match=r"indices: expected values in \[0, 1000\)"):
            reader.get([1000])


def test_writer_appends_in_chunks_and_reopens_for_append(tmp_path):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3, 4, 2])
    path = tmp_path / "d.h5"
    with HDF5Writer(path, CARTPOLE_OBS, CARTPOLE_ACT, metadata=demos.metadata) as w:
        w.append_steps(demos.obs[:5], demos.actions[:5], demos.rewards[:5], demos.episode_starts[:5])
        w.end_episodes(demos.episode_returns[:1], [3], demos.terminated[:1], demos.truncated[:1], demos.final_obs[:1])
        w.flush()
        w.append_steps(demos.obs[5:7], demos.actions[5:7], demos.rewards[5:7], demos.episode_starts[5:7])
        w.end_episodes(
            demos.episode_returns[1:2], [4], demos.terminated[1:2], demos.truncated[1:2], demos.final_obs[1:2]
        )
    with HDF5Writer(path, CARTPOLE_OBS, CARTPOLE_ACT, append=True) as w:
        w.write(demos.select_episodes([2]))
    assert load_hdf5(path) == demos


def test_append_closes_an_unfinished_episode_as_truncated(tmp_path):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3, 2])
    path = tmp_path / "d.h5"
    w = HDF5Writer(path, CARTPOLE_OBS, CARTPOLE_ACT)
    w.append_steps(demos.obs, demos.actions, demos.rewards, demos.episode_starts)
    w.end_episodes(demos.episode_returns[:1], [3], [True], [False], demos.final_obs[:1])
    w.flush(pending_final_obs=demos.final_obs[1])
    w.file.close()  # as if the process died: no close()
    w._lock.release()  # (a dead process's lock is stale, and taken over)
    with HDF5Reader(path) as r:
        assert r.n_episodes == 2 and r.truncated.tolist() == [False, True]
        assert r.metadata["recovered_unfinished_episodes"] == 1
        np.testing.assert_array_equal(r.load().final_obs[1], demos.final_obs[1])
    with HDF5Writer(path, CARTPOLE_OBS, CARTPOLE_ACT, append=True) as w:
        assert w.n_episodes == 2
    got = load_hdf5(path)
    assert got.n_episodes == 2 and got.terminated.tolist() == [True, False]
    np.testing.assert_allclose(got.episode_returns, demos.episode_returns)


def test_existing_path_refused_unless_overwrite_or_append(tmp_path):
    path = save_hdf5(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [2]), tmp_path / "d.h5")
    with pytest.raises(OutputExistsError, match="d.h5' already exists"):
        HDF5Writer(path, CARTPOLE_OBS, CARTPOLE_ACT)
    with pytest.raises(OutputExistsError):
        save_hdf5(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [2]), path)
    with pytest.raises(SpaceMismatchError, match="action_space: the demonstrations have Discrete\\(3\\)"):
        HDF5Writer(path, CARTPOLE_OBS, spaces.Discrete(3), append=True)
    HDF5Writer(path, CARTPOLE_OBS, spaces.Discrete(3), overwrite=True).close()
    assert load_hdf5(path).n_steps == 0


def test_wrong_rows_refused_and_nothing_lost(tmp_path):
    path = tmp_path / "d.h5"
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3])
    with HDF5Writer(path, CARTPOLE_OBS, CARTPOLE_ACT, metadata=demos.metadata) as w:
        w.write(demos)
        with pytest.raises(DemonstrationError, match=r"obs: expected rows of shape \(4,\) and dtype float32"):
            w.append_steps(np.zeros((2, 3), np.float32), np.zeros(2, np.int64), np.zeros(2), np.ones(2, bool))
        with pytest.raises(DemonstrationError, match=r"actions: expected rows of shape \(\) and dtype int64"):
            w.append_steps(np.zeros((2, 4), np.float32), np.zeros(2, np.float32), np.zeros(2), np.ones(2, bool))
        with pytest.raises(DemonstrationError, match=r"rewards: expected 2 rows"):
            w.append_steps(np.zeros((2, 4), np.float32), np.zeros(2, np.int64), np.zeros(3), np.ones(2, bool))
    assert load_hdf5(path) == demos


def test_unknown_version_and_foreign_files(tmp_path):
    path = save_hdf5(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [2]), tmp_path / "d.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(
        UnsupportedFormatVersionError, match=f"d.h5: attribute 'format_version'.*got {FORMAT_VERSION + 1}"
    ):
        load_hdf5(path)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DemonstrationFileError, match="other.h5: attribute 'format': expected 'sb3-expert'"):
        load_hdf5(tmp_path / "other.h5")


def test_truncated_corrupt_and_missing_files(tmp_path):
    good = save_hdf5(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [300]), tmp_path / "good.h5")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(DemonstrationFileError, match="cut.h5"):
        load_hdf5(cut)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(DemonstrationFileError, match="junk.h5: not a readable HDF5 file"):
        load_hdf5(junk)
    with pytest.raises(DemonstrationFileNotFoundError, match="absent.h5"):
        HDF5Reader(tmp_path / "absent.h5")


@needs_fixtures
def test_sb2_file_to_hdf5(tmp_path):
    demos = load_demonstrations(FIXTURES / "sb2" / "expert_cartpole.npz")
    got = load_demonstrations(save_demonstrations(demos, tmp_path / "c.h5"))
    assert got.metadata["final_obs_estimated"] is True
    for name in ("obs", "actions", "rewards", "episode_starts", "episode_returns"):
        np.testing.assert_array_equal(getattr(got, name), getattr(demos, name))


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from gymnasium import spaces
    from sb3_expert import HDF5Writer

    obs_space, act_space = spaces.Box(-np.inf, np.inf, (4,), np.float32), spaces.Discrete(2)
    w = HDF5Writer(sys.argv[1], obs_space, act_space)
    step, episode, chunk, length = 0, 0, 37, 50
    while True:
        idx = np.arange(step, step + chunk)
        w.append_steps(np.repeat(idx[:, None], 4, 1).astype(np.float32), idx % 2, np.ones(chunk), idx % length == 0)
        step += chunk
        done = step // length - episode
        if done:
            w.end_episodes(np.full(done, float(length)), np.full(done, length), np.ones(done, bool),
                           np.zeros(done, bool), np.zeros((done, 4), np.float32))
            episode += done
        w.flush(pending_final_obs=np.full(4, step, np.float32))
        print(step, episode, flush=True)
    """
)


@pytest.mark.parametrize("trial", range(3))
def test_sigkill_leaves_every_flushed_step(tmp_path, trial):
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True)
    wait_for = int(np.random.default_rng(trial).integers(3, 60))
    last = None
    for _ in range(wait_for):
        last = proc.stdout.readline().split()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    flushed_steps, flushed_episodes = int(last[0]), int(last[1])
    with HDF5Reader(path) as reader:
        assert reader.n_steps >= flushed_steps
        demos = reader.load()
    finished = demos.select_episodes(np.flatnonzero(demos.terminated))
    assert finished.n_episodes >= flushed_episodes
    n = demos.n_steps
    np.testing.assert_array_equal(demos.obs[:, 0], np.arange(n, dtype=np.float32))
    np.testing.assert_array_equal(demos.actions, np.arange(n) % 2)
    assert (finished.episode_lengths == 50).all()
    if demos.truncated.any():  # the episode running at the kill, recovered with its newest observation
        assert demos.truncated[-1] and demos.final_obs[-1][0] == n
