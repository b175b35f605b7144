import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert.data.interop import Trajectory, from_imitation, from_minari, to_imitation, to_minari
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, expert_demos, make_demos


def test_imitation_round_trip():
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [4, 1, 6], unfinished_last=True)
    trajs = to_imitation(demos)
    assert len(trajs) == 3 and trajs[0].obs.shape == (5, 4) and trajs[1].acts.shape == (1,)
    np.testing.assert_array_equal(trajs[0].obs[-1], demos.final_obs[0])
    back = from_imitation(trajs, CARTPOLE_OBS, CARTPOLE_ACT)
    np.testing.assert_array_equal(back.obs, demos.obs)
    np.testing.assert_array_equal(back.final_obs, demos.final_obs)
    np.testing.assert_array_equal(back.actions, demos.actions)
    np.testing.assert_allclose(back.rewards, demos.rewards, rtol=1e-6)  # imitation keeps float32 rewards
    np.testing.assert_array_equal(back.terminated, demos.terminated)
    no_rews = from_imitation([Trajectory(np.zeros((3, 4), np.float32), np.array([0, 1]), None, True, None)],
                             CARTPOLE_OBS, CARTPOLE_ACT)  # fmt: skip
    assert no_rews.n_steps == 2 and no_rews.rewards.sum() == 0


def test_minari_round_trip(tmp_path, monkeypatch):
    pytest.importorskip("minari")
    pytest.importorskip("jax")  # minari needs it to create datasets
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    demos = expert_demos("CartPole-v1", 3, max_episode_steps=40)
    dataset = to_minari(demos, "sb3expert/cartpole-test-v0", algorithm_name="scripted")
    assert dataset.total_episodes == 3 and dataset.total_steps == demos.n_steps
    back = from_minari("sb3expert/cartpole-test-v0")
    for name in ("obs", "actions", "rewards", "episode_starts", "terminated", "truncated", "final_obs"):
        np.testing.assert_array_equal(getattr(back, name), getattr(demos, name))
    assert back.metadata["env_id"] == "CartPole-v1"


def test_imitation_npz_file_round_trip(tmp_path):
    from sb3_expert.data.interop import load_imitation_npz, save_imitation_npz

    demos = expert_demos("CartPole-v1", 3, max_episode_steps=30)
    save_imitation_npz(demos, str(tmp_path / "trajs.npz"))
    with np.load(tmp_path / "trajs.npz", allow_pickle=True) as f:  # imitation's loader reads it this way
        assert set(f.files) == {"obs", "acts", "infos", "terminal", "rews", "indices"}
        assert len(f["obs"]) == demos.n_steps + 3 and f["indices"].tolist() == [30, 60]
    back = load_imitation_npz(str(tmp_path / "trajs.npz"), demos.observation_space, demos.action_space)
    for name in ("obs", "actions", "final_obs", "episode_starts", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(back, name), getattr(demos, name))
    inferred = load_imitation_npz(str(tmp_path / "trajs.npz"))
    assert inferred.action_space == spaces.Discrete(2)
