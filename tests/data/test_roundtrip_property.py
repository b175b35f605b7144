"""Property tests: memory -> file -> memory is exact for every supported space and episode layout."""

import tempfile
from pathlib import Path

import numpy as np
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sb3_expert import load_demonstrations, save_demonstrations
from sb3_expert.data.spaces import space_from_json, space_to_json
from tests.helpers import make_demos

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def boxes(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64, np.uint8, np.int32, np.int64]))
    if dtype == np.uint8 and draw(st.booleans()):
        return spaces.Box(
            0, 255, (draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.sampled_from([1, 3]))), dtype
        )
    shape = draw(shapes)
    if np.issubdtype(dtype, np.floating):
        low = draw(st.sampled_from([-np.inf, -1.0, -2.5]))
        high = draw(st.sampled_from([np.inf, 1.0, 3.0]))
    else:
        low, high = 0, 100
    return spaces.Box(low, high, shape, dtype)


leaf_spaces = st.one_of(
    boxes(),
    st.builds(lambda n, start: spaces.Discrete(n, start=start), st.integers(1, 10), st.integers(-3, 3)),
    st.builds(lambda nvec: spaces.MultiDiscrete(nvec), st.lists(st.integers(1, 5), min_size=1, max_size=4)),
    st.builds(
        lambda n: spaces.MultiBinary(n),
        st.one_of(st.integers(1, 6), st.lists(st.integers(1, 3), min_size=2, max_size=2)),
    ),
)
obs_spaces = st.one_of(
    leaf_spaces,
    st.dictionaries(st.sampled_from(["a", "b", "pixels", "state"]), leaf_spaces, min_size=1, max_size=3).map(
        spaces.Dict
    ),
)


@st.composite
def demonstrations(draw):
    obs_space, action_space = draw(obs_spaces), draw(leaf_spaces)
    lengths = draw(st.lists(st.integers(1, 8), min_size=0, max_size=6))
    return make_demos(
        obs_space,
        action_space,
        lengths,
        seed=draw(st.integers(0, 2**16)),
        unfinished_last=draw(st.booleans()),
        infos=draw(st.booleans()),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=st.one_of(obs_spaces))
def test_space_json_round_trip(space):
    assert space_from_json(space_to_json(space)) == space


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(demos=demonstrations(), suffix=st.sampled_from([".npz", ".h5"]))
def test_file_round_trip_is_exact(demos, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = save_demonstrations(demos, Path(tmp) / f"demos{suffix}")
        loaded = load_demonstrations(path)
    assert loaded == demos
    for name in ("actions", "rewards", "episode_returns", "terminated", "truncated"):
        assert getattr(loaded, name).dtype == getattr(demos, name).dtype
