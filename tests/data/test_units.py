"""Unit tests of the small data modules: obs, episodes, spaces, paths, and the sink backends."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert.data.episodes import Episodes, Steps, close_unfinished, concat_parts
from sb3_expert.data.obs import allocate, concat, map_obs, set_row, take
from sb3_expert.data.paths import check_input_path, check_output_path, format_of
from sb3_expert.data.spaces import check_spaces_match, infer_space, space_from_json, space_to_json, step_layout
from sb3_expert.errors import (
    DemonstrationFileError,
    DemonstrationFileNotFoundError,
    OutputExistsError,
    SpaceMismatchError,
    UnsupportedSpaceError,
)
from sb3_expert.record.sinks import FileSink, MemorySink, open_sink

DICT = spaces.Dict({"a": spaces.Box(-1, 1, (2,), np.float32), "b": spaces.Discrete(3)})


# ------------------------------------------------------------------ obs


def test_allocate_follows_the_space_and_dict_helpers_map_every_key():
    buf = allocate(DICT, 4)
    assert buf["a"].shape == (4, 2) and buf["a"].dtype == np.float32
    assert buf["b"].shape == (4,) and buf["b"].dtype == np.int64
    set_row(buf, 1, {"a": np.ones(2), "b": 2})
    assert buf["a"][1].tolist() == [1, 1] and buf["b"][1] == 2
    rows = take(buf, slice(1, 3), copy=True)
    rows["a"][0] = 5
    assert buf["a"][1, 0] == 1  # a copy
    joined = concat([rows, rows])
    assert joined["b"].tolist() == [2, 0, 2, 0]
    assert map_obs(np.arange(3), lambda v: v * 2).tolist() == [0, 2, 4]
    assert take(np.arange(5), [0, 4]).tolist() == [0, 4]


# ------------------------------------------------------------------ episodes


def test_close_unfinished_splits_on_starts_and_uses_the_pending_observation():
    starts = np.array([False, False, True, False])  # a tail starting mid-episode, then a new episode
    rewards = np.array([1.0, 2.0, 3.0, 4.0])
    obs = np.arange(4.0)[:, None]
    out = close_unfinished(starts, rewards, obs, np.array([9.0]))
    assert out.lengths.tolist() == [2, 2] and out.returns.tolist() == [3.0, 7.0]
    assert out.truncated.all() and not out.terminated.any()
    assert out.final_obs[:, 0].tolist() == [1.0, 9.0]  # last observation, then the pending one
    without = close_unfinished(starts, rewards, obs, None)
    assert without.final_obs[:, 0].tolist() == [1.0, 3.0]
    assert starts.tolist() == [False, False, True, False]  # not changed in place


def test_concat_parts_joins_field_by_field():
    a = Steps(np.zeros((2, 1)), np.zeros(2), np.ones(2), np.array([True, False]), {"k": np.arange(2)})
    joined = concat_parts([a, a])
    assert isinstance(joined, Steps) and len(joined.actions) == 4 and joined.infos["k"].tolist() == [0, 1, 0, 1]
    e = Episodes(np.ones(1), np.ones(1, np.int64), np.ones(1, bool), np.zeros(1, bool), np.zeros((1, 1)))
    assert concat_parts([e]) is e


# ------------------------------------------------------------------ spaces


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(-1, 1, (3,), np.float32),
        spaces.Discrete(4, start=1),
        spaces.MultiDiscrete([2, 3], start=[1, 0]),
        spaces.MultiBinary(5),
        DICT,
    ],
)
def test_spaces_round_trip_through_json_and_match_themselves(space):
    back = space_from_json(space_to_json(space))
    assert back == space
    check_spaces_match(space, back, name="observation_space", what="the model", exact_box=True)


def test_space_mismatches_name_both_sides():
    with pytest.raises(SpaceMismatchError, match=r"action_space: the demonstrations have Discrete\(4\), but the model"):
        check_spaces_match(spaces.Discrete(3), spaces.Discrete(4), name="action_space", what="the model")
    shifted = spaces.MultiDiscrete([2, 3], start=[1, 1])
    with pytest.raises(SpaceMismatchError):  # a start-shifted dataset would train wrong targets
        check_spaces_match(spaces.MultiDiscrete([2, 3]), shifted, name="action_space", what="the model")
    with pytest.raises(SpaceMismatchError):
        check_spaces_match(DICT, spaces.Dict({"a": DICT["a"]}), name="observation_space", what="the model")


def test_step_layout_and_inference():
    assert step_layout(spaces.Discrete(3)) == ((), np.dtype(np.int64))
    assert step_layout(spaces.Box(0, 1, (2, 3), np.float32)) == ((2, 3), np.dtype(np.float32))
    assert infer_space(np.array([[0], [2]]), name="actions", discrete_column=True) == spaces.Discrete(3)
    assert isinstance(infer_space(np.zeros((2, 3), np.float32), name="obs"), spaces.Box)


# ------------------------------------------------------------------ paths


def test_paths_are_checked_by_suffix_and_existence(tmp_path):
    assert format_of("a.h5") == "hdf5" and format_of("a.hdf5") == "hdf5" and format_of("a.npz") == "npz"
    with pytest.raises(DemonstrationFileError, match=r"path: expected a file name ending in one of"):
        format_of(tmp_path / "a.csv")
    with pytest.raises(DemonstrationFileNotFoundError):
        check_input_path(tmp_path / "missing.h5")
    existing = tmp_path / "x.npz"
    existing.write_bytes(b"")
    with pytest.raises(OutputExistsError):
        check_output_path(existing, overwrite=False)
    assert check_output_path(existing, overwrite=True) == existing


# ------------------------------------------------------------------ sinks


def _steps(n: int, start: bool = True) -> Steps:
    starts = np.zeros(n, bool)
    starts[0] = start
    return Steps(np.arange(n, dtype=np.float32)[:, None], np.zeros((n, 1), np.float32), np.ones(n), starts, {})


@pytest.mark.parametrize("suffix", [None, ".h5"])
def test_both_backends_give_the_same_demonstrations(tmp_path, suffix):
    obs_space, act_space = spaces.Box(-np.inf, np.inf, (1,), np.float32), spaces.Box(-1, 1, (1,), np.float32)
    path = None if suffix is None else tmp_path / f"d{suffix}"
    sink = open_sink(path, obs_space, act_space, chunk_size=2)
    assert isinstance(sink, FileSink if suffix else MemorySink)
    ends = Episodes(np.array([3.0]), np.array([3]), np.array([True]), np.array([False]), np.array([[7.0]], np.float32))
    sink.push(_steps(3), ends)
    sink.push(_steps(2), None, pending_final_obs=np.array([8.0], np.float32))  # an episode still running
    demos = sink.demonstrations()
    assert demos.n_steps == 5 and demos.episode_lengths.tolist() == [3, 2]
    assert demos.terminated.tolist() == [True, False] and demos.truncated.tolist() == [False, True]
    assert demos.final_obs[:, 0].tolist() == [7.0, 8.0]
    sink.close()
    assert sink.closed


def test_a_sink_refuses_bad_spaces_and_chunk_sizes_before_opening_a_file(tmp_path):
    with pytest.raises(UnsupportedSpaceError):
        open_sink(tmp_path / "a.h5", spaces.Text(5), spaces.Discrete(2))
    with pytest.raises(ValueError, match="chunk_size"):
        open_sink(tmp_path / "a.h5", spaces.Discrete(2), spaces.Discrete(2), chunk_size=0)
    assert not (tmp_path / "a.h5").exists()


@pytest.mark.parametrize("suffix", [None, ".h5"])
def test_whole_demonstrations_without_final_obs_are_added_alike_by_both_backends(tmp_path, suffix):
    from sb3_expert import Demonstrations

    obs_space, act_space = spaces.Box(-np.inf, np.inf, (1,), np.float32), spaces.Discrete(2)
    steps = _steps(4)
    demos = Demonstrations(  # SB2 data: no final_obs
        steps.obs,
        np.zeros(4, np.int64),
        steps.rewards,
        steps.starts,
        observation_space=obs_space,
        action_space=act_space,
    )
    sink = open_sink(None if suffix is None else tmp_path / f"d{suffix}", obs_space, act_space)
    sink.add(demos)
    back = sink.drain()
    assert back.n_steps == 4 and back.final_obs[:, 0].tolist() == [3.0]  # the last observation stands in
    sink.close()


def test_registry_refuses_args_without_a_factory():
    from sb3_expert.experts.registry import Registry

    registry: Registry[object] = Registry("thing")
    with pytest.raises(TypeError, match="args: only an indirect value"):
        registry.register("x", object(), args=(1,))
    registry.register("y", indirect="builtins:dict", args=((("a", 1),),))
    assert registry.get("y") == {"a": 1}
