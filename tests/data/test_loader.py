"""Unit tests of ``data/loader.py`` (SB2's DataLoader) and ``data/source.py`` (the dataset's rows)."""

import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert import DataLoader, ExpertDataset, IndexOutOfRangeError, save_demonstrations
from sb3_expert.data.hdf5 import HDF5Reader
from sb3_expert.data.source import MemorySource, StepSource, obs_chunks
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, make_demos

DICT_OBS = spaces.Dict({"pos": spaces.Box(-1, 1, (3,), np.float32), "mode": spaces.Discrete(4)})


def rows_seen(loader):
    """The action rows of one pass, joined."""
    return np.concatenate([actions for _, actions in loader])


@pytest.mark.parametrize("shuffle", [False, True])
def test_one_pass_covers_each_index_once(shuffle):
    demos = make_demos(CARTPOLE_OBS, spaces.Box(-1, 1, (1,), np.float32), [7, 6])
    demos.actions[:, 0] = np.arange(13)  # each row's action names it
    indices = np.array([11, 0, 3, 5, 8, 9, 12])
    loader = DataLoader(indices, demos.obs, demos.actions, 3, shuffle=shuffle, seed=1)
    seen = rows_seen(loader)[:, 0].astype(int)
    assert sorted(seen) == sorted(indices)
    if not shuffle:
        np.testing.assert_array_equal(seen, indices)  # the given order
    for obs, actions in DataLoader(indices, demos.obs, demos.actions, 3):
        np.testing.assert_array_equal(obs, demos.obs[actions[:, 0].astype(int)])  # rows stay paired


def test_shuffle_is_seeded_and_reshuffles_each_pass():
    demos = make_demos(CARTPOLE_OBS, spaces.Box(-1, 1, (1,), np.float32), [40])
    demos.actions[:, 0] = np.arange(40)

    def passes(seed):
        loader = DataLoader(np.arange(40), demos.obs, demos.actions, 8, shuffle=True, seed=seed)
        return [rows_seen(loader)[:, 0] for _ in range(2)]

    first, second = passes(3)
    same_first, same_second = passes(3)
    np.testing.assert_array_equal(first, same_first)
    np.testing.assert_array_equal(second, same_second)
    assert not np.array_equal(first, second)  # a new order each pass
    assert not np.array_equal(first, passes(4)[0])


def test_infinite_loop_continues_after_a_pass():
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [5])
    loader = DataLoader(np.arange(5), demos.obs, demos.actions, 2)
    sizes = [len(next(loader)[1]) for _ in range(3)]
    assert sizes == [2, 2, 1]
    with pytest.raises(StopIteration):  # the end of a pass is still seen once
        next(loader)
    assert len(next(loader)[1]) == 2  # then the next pass starts


def test_bad_arguments():
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [5])
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="batch_size: expected an integer >= 1"):
            DataLoader(np.arange(5), demos.obs, demos.actions, bad)
    with pytest.raises(TypeError, match="observations and actions: expected arrays"):
        DataLoader(np.arange(5), None, None, 2)


def test_dict_observations_by_key():
    demos = make_demos(DICT_OBS, CARTPOLE_ACT, [4, 3])
    obs, actions = next(iter(DataLoader(np.array([6, 2]), demos.obs, demos.actions, 2)))
    assert set(obs) == {"pos", "mode"}
    np.testing.assert_array_equal(obs["pos"], demos.obs["pos"][[6, 2]])
    np.testing.assert_array_equal(obs["mode"], demos.obs["mode"][[6, 2]])
    np.testing.assert_array_equal(actions, demos.actions[[6, 2]])


@pytest.mark.parametrize("space", [CARTPOLE_OBS, DICT_OBS], ids=["box", "dict"])
def test_memory_and_file_sources_agree(tmp_path, space):
    demos = make_demos(space, CARTPOLE_ACT, [5, 9, 4], infos=True)
    save_demonstrations(demos, tmp_path / "d.h5")
    idx = np.array([17, 0, 5, 5, 12])
    fields = ("obs", "actions", "rewards", "episode_starts", "infos/cost")
    with HDF5Reader(tmp_path / "d.h5") as reader:
        memory = MemorySource(demos)
        for source in (memory, reader):
            assert isinstance(source, StepSource)
        assert memory.in_memory is demos and reader.in_memory is None
        assert memory.n_steps == reader.n_steps == 18
        np.testing.assert_array_equal(memory.episode_lengths, reader.episode_lengths)
        got, want = reader.get(idx, fields), memory.get(idx, fields)
        for name in fields:
            if name == "obs" and isinstance(space, spaces.Dict):
                for key in space:
                    np.testing.assert_array_equal(got[name][key], want[name][key])
            else:
                np.testing.assert_array_equal(got[name], want[name])
        for source in (memory, reader):
            with pytest.raises(IndexOutOfRangeError, match=r"indices: expected values in \[0, 18\), got 0..18"):
                source.get([0, 18])
            # chunks of any size join to the same observations
            chunks = list(obs_chunks(source, idx, window_bytes=1))
            assert len(chunks) == (1 if source.in_memory is not None else len(idx))
            key = "pos" if isinstance(space, spaces.Dict) else None
            joined = np.concatenate([c[key] if key else c for c in chunks])
            np.testing.assert_array_equal(joined, want["obs"][key] if key else want["obs"])


def test_lazy_dataset_batches_match_memory(tmp_path):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [30, 20, 10])
    save_demonstrations(demos, tmp_path / "d.h5")
    kwargs = dict(batch_size=16, verbose=0, seed=5, traj_limitation=2)
    lazy = ExpertDataset(tmp_path / "d.h5", in_memory=False, **kwargs)
    memory = ExpertDataset(tmp_path / "d.h5", in_memory=True, **kwargs)
    assert lazy.demonstrations is None and memory.demonstrations is not None
    assert lazy.num_transition == memory.num_transition == 50
    for (lazy_obs, lazy_act), (obs, act) in zip(lazy.train_loader, memory.train_loader, strict=True):
        np.testing.assert_array_equal(lazy_obs, obs)
        np.testing.assert_array_equal(lazy_act, act)
    lazy.close()
    lazy.close()  # idempotent
