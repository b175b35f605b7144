import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert import (
    DataLoader,
    DemonstrationError,
    DemonstrationFileNotFoundError,
    EmptyDatasetError,
    ExpertDataset,
    save_demonstrations,
)
from sb3_expert.data.source import StepSource
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, FIXTURES, make_demos, needs_fixtures


def demos_of(lengths, **kwargs):
    return make_demos(CARTPOLE_OBS, CARTPOLE_ACT, lengths, **kwargs)


@needs_fixtures
def test_sb2_constructor_on_sb2_file(capsys):
    dataset = ExpertDataset(
        expert_path=str(FIXTURES / "sb2" / "expert_cartpole.npz"), traj_limitation=10, batch_size=128, verbose=1
    )
    # SB2 kept a step of the 11th episode and sliced returns wrongly; exactly 10 whole episodes here
    assert dataset.num_traj == 10 and len(dataset.returns) == 10
    assert dataset.num_transition == 5000 and len(dataset.observations) == 5000 == len(dataset.actions)
    assert dataset.avg_ret == 500.0 and dataset.std_ret == 0.0
    out = capsys.readouterr().out
    assert "Total trajectories: 10" in out and "Total transitions: 5000" in out
    obs, actions = dataset.get_next_batch("train")
    assert obs.shape == (128, 4) and actions.shape == (128,)


@needs_fixtures
def test_all_trajectories_counted():
    dataset = ExpertDataset(expert_path=FIXTURES / "sb2" / "expert_cartpole.npz", verbose=0)
    assert dataset.num_traj == 100 and dataset.num_transition == 49_527


def test_nothing_printed_without_verbose(capsys):
    ExpertDataset(traj_data=demos_of([5, 5]), verbose=0)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("source", ["demos", "sb2_dict", "npz", "h5", "h5_lazy"])
def test_accepted_sources(tmp_path, source):
    demos = demos_of([4, 6, 3, 7])
    if source == "demos":
        kwargs = {"traj_data": demos}
    elif source == "sb2_dict":
        kwargs = {"traj_data": demos.to_sb2_dict()}
    else:
        path = save_demonstrations(demos, tmp_path / ("d.npz" if source == "npz" else "d.h5"))
        kwargs = {"expert_path": path, "in_memory": False if source == "h5_lazy" else None}
    dataset = ExpertDataset(**kwargs, batch_size=5, verbose=0, seed=0, traj_limitation=3)
    assert dataset.num_traj == 3 and dataset.num_transition == 13
    seen = []
    for obs, actions in dataset.train_loader:
        assert len(obs) == len(actions) > 0
        seen.append(actions)
    train_steps = np.sort(dataset.train_indices)
    assert np.sort(np.concatenate(seen)).tolist() == np.sort(demos.actions[train_steps]).tolist()
    assert (dataset.source.in_memory is None) == (source == "h5_lazy")
    assert isinstance(dataset.source, StepSource)
    dataset.close()


def test_episode_split_keeps_episodes_apart_and_is_seeded():
    demos = demos_of([10] * 10)
    a = ExpertDataset(traj_data=demos, verbose=0, seed=1)
    b = ExpertDataset(traj_data=demos, verbose=0, seed=1)
    np.testing.assert_array_equal(a.train_indices, b.train_indices)
    assert len(a.train_episodes) == 7 and len(a.val_episodes) == 3
    train_eps = set(demos.episode_index[a.train_indices])
    val_eps = set(demos.episode_index[a.val_indices])
    assert not train_eps & val_eps and len(train_eps | val_eps) == 10
    t = ExpertDataset(traj_data=demos, verbose=0, seed=1, split="transition")
    assert len(t.train_indices) == 70 and len(set(t.train_indices) | set(t.val_indices)) == 100
    assert set(demos.episode_index[t.train_indices]) & set(demos.episode_index[t.val_indices])


def test_no_empty_batch_and_passes_repeat():
    demos = demos_of([8, 8])
    dataset = ExpertDataset(traj_data=demos, train_fraction=1.0, batch_size=4, verbose=0, seed=0)
    assert dataset.val_loader is None
    sizes = [len(a) for _, a in dataset.train_loader]
    assert sizes == [4, 4, 4, 4]
    loader = DataLoader(np.arange(10), demos.obs, demos.actions, 4, shuffle=True, seed=0)
    assert [len(a) for _, a in loader] == [4, 4, 2] == [4, 4, 2][: len(loader)]
    dropped = DataLoader(np.arange(10), demos.obs, demos.actions, 4, partial_minibatch=False)
    assert [len(a) for _, a in dropped] == [4, 4]
    # get_next_batch wraps around passes forever, every batch non-empty
    batches = [dataset.get_next_batch("train") for _ in range(9)]
    assert all(len(a) == 4 for _, a in batches)
    _, actions = dataset.get_next_batch()  # works before init_dataloader (SB2 crashed)
    assert len(actions) == 4
    with pytest.raises(EmptyDatasetError, match="validation set is empty"):
        dataset.get_next_batch("val")


def test_loader_without_infinite_loop_stops():
    demos = demos_of([6])
    loader = DataLoader(np.arange(6), demos.obs, demos.actions, 4, infinite_loop=False)
    assert len(list(loader)) == 2
    with pytest.raises(StopIteration):
        next(loader)
    empty = DataLoader(np.arange(0), demos.obs, demos.actions, 4)
    assert list(empty) == []
    with pytest.raises(StopIteration):
        next(empty)


def test_dict_observation_batches():
    space = spaces.Dict({"a": spaces.Box(-1, 1, (2,), np.float32), "b": spaces.Discrete(3)})
    demos = make_demos(space, spaces.Box(-1, 1, (1,), np.float32), [5, 5])
    dataset = ExpertDataset(traj_data=demos, batch_size=3, verbose=0, seed=0)
    obs, actions = dataset.get_next_batch("train")
    assert set(obs) == {"a", "b"} and obs["a"].shape == (3, 2) and actions.shape == (3, 1)


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    dataset = ExpertDataset(traj_data=demos_of([3, 4, 5]), verbose=0)
    dataset.plot(tmp_path / "returns.png")
    assert (tmp_path / "returns.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_arguments(tmp_path):
    demos = demos_of([3, 3])
    with pytest.raises(
        DemonstrationError, match="traj_limitation: expected at most the 2 episodes of traj_data, got 5"
    ):
        ExpertDataset(traj_data=demos, traj_limitation=5, verbose=0)
    with pytest.raises(ValueError, match="traj_limitation: expected -1"):
        ExpertDataset(traj_data=demos, traj_limitation=0, verbose=0)
    with pytest.raises(ValueError, match="expert_path and traj_data: expected exactly one of them, got neither"):
        ExpertDataset(verbose=0)
    with pytest.raises(ValueError, match="train_fraction"):
        ExpertDataset(traj_data=demos, train_fraction=0, verbose=0)
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1"):
        ExpertDataset(traj_data=demos, batch_size=0, verbose=0)
    with pytest.raises(TypeError, match="traj_data: expected a Demonstrations or SB2's dict"):
        ExpertDataset(traj_data=[1, 2], verbose=0)
    with pytest.raises(DemonstrationFileNotFoundError, match="expert_path: no such file"):
        ExpertDataset(expert_path=tmp_path / "absent.npz", verbose=0)
    with pytest.raises(EmptyDatasetError, match="traj_data: expected at least one step"):
        ExpertDataset(traj_data=demos_of([]), verbose=0)
    with pytest.raises(ValueError, match="split"):
        ExpertDataset(traj_data=demos, split="random", verbose=0)
    with pytest.raises(DemonstrationError, match="traj_data: missing key"):
        ExpertDataset(traj_data={"obs": demos.obs}, verbose=0)


def test_empty_file(tmp_path):
    path = save_demonstrations(demos_of([]), tmp_path / "empty.h5")
    with pytest.raises(EmptyDatasetError, match="empty.h5: expected at least one step"):
        ExpertDataset(expert_path=path, verbose=0)
