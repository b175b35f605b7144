"""Unit tests of ``record/streams.py``: one environment's steps into buffers, handed to a sink."""

import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert import ActionError
from sb3_expert.record.sinks import open_sink
from sb3_expert.record.streams import Stream

OBS = spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACT = spaces.Discrete(3)


class Counter:
    """An environment step: observation (t, t), reward t, episodes of ``lengths`` steps."""

    def __init__(self, lengths):
        self.ends = set(np.cumsum(lengths).tolist())
        self.t = 0
        self.calls = 0

    def __call__(self, action):
        self.calls += 1
        self.t += 1
        done = self.t in self.ends
        return np.full(2, self.t, np.float32), float(self.t), done, False, {"t": self.t}


def run(stream, env, n_episodes):
    for _ in range(n_episodes):
        stream.begin(np.full(2, env.t, np.float32))
        done = False
        while not done:
            *_, terminated, truncated, _ = stream.record_step(env.t % 3, env)
            done = terminated or truncated


@pytest.mark.parametrize("capacity", [2, 3, 64])  # buffers handed over mid-episode, or not
def test_exclusive_stream_keeps_episodes_whole_across_buffers(capacity):
    sink = open_sink(None, OBS, ACT)
    stream = Stream(sink, exclusive=True, capacity=capacity, info_keys=["t"])
    env = Counter([4, 1, 3])
    run(stream, env, 3)
    demos = sink.demonstrations([stream])
    np.testing.assert_array_equal(demos.episode_lengths, [4, 1, 3])
    np.testing.assert_array_equal(demos.episode_returns, [1 + 2 + 3 + 4, 5, 6 + 7 + 8])
    np.testing.assert_array_equal(demos.episode_starts, [1, 0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(demos.obs[:, 0], np.arange(8))  # the observation each action was chosen on
    np.testing.assert_array_equal(demos.actions, np.arange(8) % 3)
    np.testing.assert_array_equal(demos.final_obs[:, 0], [4, 5, 8])
    np.testing.assert_array_equal(demos.infos["t"], np.arange(1, 9))
    assert demos.terminated.all()


def test_a_bad_action_is_refused_before_the_environment_steps():
    stream = Stream(open_sink(None, OBS, ACT), exclusive=True, capacity=8)
    env = Counter([5])
    stream.begin(np.zeros(2, np.float32))
    with pytest.raises(ActionError, match=r"action: expected a scalar integer for Discrete\(3\)"):
        stream.record_step(np.zeros(4), env)
    assert env.calls == 0 and stream.i == 0


def test_a_reset_mid_episode_ends_it_as_truncated_and_an_unfinished_one_is_included():
    sink = open_sink(None, OBS, ACT)
    stream = Stream(sink, exclusive=True, capacity=8)
    env = Counter([100])
    stream.begin(np.zeros(2, np.float32))
    for _ in range(3):
        stream.record_step(0, env)
    stream.begin(np.full(2, 9, np.float32))  # reset before the episode ended
    stream.record_step(1, env)
    demos = sink.demonstrations([stream])
    np.testing.assert_array_equal(demos.episode_lengths, [3, 1])
    assert demos.truncated.all() and not demos.terminated.any()
    np.testing.assert_array_equal(demos.episode_starts, [1, 0, 0, 1])
    assert demos.obs[3, 0] == 9


def test_shared_stream_grows_and_hands_over_only_whole_episodes():
    sink = open_sink(None, OBS, ACT)
    stream = Stream(sink, exclusive=False, capacity=2)
    stream.begin(np.zeros(2, np.float32))
    for t in range(5):  # longer than the buffer: it grows instead of splitting the episode
        stream.record(t % 3, reward=1.0)
        stream.last_obs = np.full(2, t + 1, np.float32)
    assert stream.capacity >= 5
    snapshot = stream.snapshot()  # the running episode, as one truncated episode; the stream untouched
    assert snapshot.n_steps == 5 and snapshot.truncated.all() and stream.i == 5
    stream.end_episode(True, False, np.full(2, 5, np.float32))
    demos = sink.demonstrations()
    np.testing.assert_array_equal(demos.episode_lengths, [5])
    np.testing.assert_array_equal(demos.obs[:, 0], np.arange(5))
    assert demos.terminated.all() and demos.final_obs[0, 0] == 5
    stream.begin(np.zeros(2, np.float32))
    stream.record(0, reward=1.0)
    stream.drop()  # the running episode is forgotten
    assert stream.i == 0 and not stream.starts.any()
    assert sink.demonstrations().n_episodes == 1
