import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert import DemonstrationError, Demonstrations, EmptyDatasetError, SpaceMismatchError
from sb3_expert.errors import UnsupportedSpaceError
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, make_demos

DICT_OBS = spaces.Dict(
    {"pos": spaces.Box(-1, 1, (2,), np.float32), "mode": spaces.Discrete(3), "flags": spaces.MultiBinary(4)}
)


def cartpole(lengths=(3, 1, 4), **kwargs):
    return make_demos(CARTPOLE_OBS, CARTPOLE_ACT, lengths, **kwargs)


def test_sizes_and_episode_fields():
    demos = cartpole()
    assert demos.n_steps == len(demos) == 8
    assert demos.n_episodes == 3
    assert demos.episode_lengths.tolist() == [3, 1, 4]
    assert demos.episode_offsets.tolist() == [0, 3, 4, 8]
    assert demos.episode_index.tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    np.testing.assert_allclose(
        demos.episode_returns, [demos.rewards[:3].sum(), demos.rewards[3], demos.rewards[4:].sum()]
    )
    assert demos.rewards.dtype == np.float64 and demos.episode_returns.dtype == np.float64


def test_select_first_and_episode_views():
    demos = cartpole()
    two = demos.select_episodes([2, 0])
    assert two.episode_lengths.tolist() == [4, 3]
    np.testing.assert_array_equal(two.actions, np.concatenate([demos.actions[4:], demos.actions[:3]]))
    np.testing.assert_array_equal(two.final_obs, demos.final_obs[[2, 0]])
    assert two.episode_returns.tolist() == demos.episode_returns[[2, 0]].tolist()
    assert demos.first_episodes(2) == demos.select_episodes([0, 1])
    assert demos.first_episodes(10) == demos
    assert demos.episode(1).n_steps == 1
    assert [e.n_steps for e in demos.episodes()] == [3, 1, 4]
    assert Demonstrations.concatenate(list(demos.episodes())) == demos


def test_concatenate_checks_spaces():
    other = make_demos(spaces.Box(-1, 1, (3,), np.float32), CARTPOLE_ACT, [2])
    with pytest.raises(SpaceMismatchError, match=r"parts\[1\].observation_space"):
        Demonstrations.concatenate([cartpole(), other])
    with pytest.raises(EmptyDatasetError):
        Demonstrations.concatenate([])


def test_transitions_use_final_obs_and_keep_ends_apart():
    demos = cartpole(lengths=(2, 3), seed=3)
    tr = demos.transitions()
    np.testing.assert_array_equal(tr.next_obs[0], demos.obs[1])
    np.testing.assert_array_equal(tr.next_obs[1], demos.final_obs[0])
    np.testing.assert_array_equal(tr.next_obs[4], demos.final_obs[1])
    ends = np.zeros(5, bool)
    ends[[1, 4]] = True
    np.testing.assert_array_equal(tr.terminated, ends & np.repeat(demos.terminated, [2, 3]))
    np.testing.assert_array_equal(tr.truncated, ends & np.repeat(demos.truncated, [2, 3]))


def test_transitions_dict_obs():
    demos = make_demos(DICT_OBS, spaces.Box(-1, 1, (2,), np.float32), [2, 2])
    tr = demos.transitions()
    for key in DICT_OBS.spaces:
        np.testing.assert_array_equal(tr.next_obs[key][1], demos.final_obs[key][0])
        np.testing.assert_array_equal(tr.next_obs[key][2], demos.obs[key][3])


def test_transitions_without_final_obs():
    demos = cartpole(final_obs=False)
    ok = Demonstrations(
        demos.obs,
        demos.actions,
        demos.rewards,
        demos.episode_starts,
        observation_space=CARTPOLE_OBS,
        action_space=CARTPOLE_ACT,
    )
    tr = ok.transitions()  # all terminated by default: the last obs stands in
    np.testing.assert_array_equal(tr.next_obs[2], ok.obs[2])
    cut = Demonstrations(
        demos.obs,
        demos.actions,
        demos.rewards,
        demos.episode_starts,
        observation_space=CARTPOLE_OBS,
        action_space=CARTPOLE_ACT,
        terminated=[True, False, True],
        truncated=[False, True, False],
    )
    with pytest.raises(DemonstrationError, match="final_obs: unknown, but episode 1 was truncated"):
        cut.transitions()
    known = cut.transitions(known_only=True)  # the truncated episode's last step is left out
    last = cut.episode_offsets[2] - 1
    assert len(known.actions) == cut.n_steps - 1 and known.terminated.sum() == 2 and not known.truncated.any()
    np.testing.assert_array_equal(known.obs, np.delete(cut.obs, last, axis=0))
    np.testing.assert_array_equal(known.next_obs[last], cut.obs[last + 2])  # the next episode's rows moved up


def test_sb2_dict_view_round_trip():
    demos = cartpole()
    sb2 = demos.to_sb2_dict()
    assert set(sb2) == {"actions", "obs", "rewards", "episode_returns", "episode_starts"}
    assert sb2["actions"].shape == (8, 1) and sb2["actions"].dtype == np.int64
    back = Demonstrations.from_sb2_dict(sb2, observation_space=CARTPOLE_OBS, action_space=CARTPOLE_ACT)
    np.testing.assert_array_equal(back.actions, demos.actions)
    inferred = Demonstrations.from_sb2_dict(sb2)
    assert inferred.action_space == spaces.Discrete(2)
    assert inferred.metadata["spaces_inferred"] is True
    full = Demonstrations.from_sb2_dict(demos.to_sb2_dict(extras=True))
    assert full == demos


def test_empty_demonstrations_are_valid_data():
    demos = cartpole(lengths=())
    assert demos.n_steps == 0 and demos.n_episodes == 0
    assert demos.transitions().obs.shape == (0, 4)


# ------------------------------------------------------------------ invariants: each names its field


def kwargs_of(demos):
    return dict(
        obs=demos.obs,
        actions=demos.actions,
        rewards=demos.rewards,
        episode_starts=demos.episode_starts,
        observation_space=demos.observation_space,
        action_space=demos.action_space,
        episode_returns=demos.episode_returns,
        terminated=demos.terminated,
        truncated=demos.truncated,
        final_obs=demos.final_obs,
    )


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda k: k.update(rewards=k["rewards"][:-1]), r"rewards: expected shape \(8,\), got \(7,\)"),
        (lambda k: k.update(obs=k["obs"][:-1]), r"obs: expected shape \(8, 4\)"),
        (
            lambda k: k.update(episode_starts=np.r_[False, k["episode_starts"][1:]]),
            "episode_starts: expected True at index 0",
        ),
        (lambda k: k.update(episode_returns=k["episode_returns"] + [0, 1, 0]), "episode_returns: .*episode 1 sums to"),
        (lambda k: k.update(episode_returns=k["episode_returns"][:2]), r"episode_returns: expected shape \(3,\)"),
        (lambda k: k.update(obs=k["obs"].astype(np.float64)), "obs: expected dtype float32 .* got float64"),
        (lambda k: k.update(actions=k["actions"].astype(np.int32)), "actions: expected dtype int64"),
        (lambda k: k.update(actions=k["actions"].reshape(-1, 1)), r"actions: expected shape \(8,\)"),
        (lambda k: k.update(actions=k["actions"] + 2), r"actions: expected values in \[0, 1\]"),
        (lambda k: k.update(terminated=[1, 0]), r"terminated: expected shape \(3,\)"),
        (lambda k: k.update(final_obs=k["final_obs"][:2]), r"final_obs: expected shape \(3, 4\)"),
        (lambda k: k.update(obs={"x": k["obs"]}), "obs: got a dict, but the observation space is not a Dict"),
        (lambda k: k.update(actions=[0] * 8), "actions: expected a numpy array, got list"),
        (lambda k: k.update(episode_starts=np.ones(8, np.float32)), "episode_starts: expected booleans"),
    ],
)
def test_invariants_name_the_field(change, match):
    k = kwargs_of(cartpole())
    change(k)
    obs, actions, rewards, starts = k.pop("obs"), k.pop("actions"), k.pop("rewards"), k.pop("episode_starts")
    with pytest.raises(DemonstrationError, match=match):
        Demonstrations(obs, actions, rewards, starts, **k)


def test_episode_lengths_must_agree():
    k = kwargs_of(cartpole())
    obs, actions, rewards, starts = k.pop("obs"), k.pop("actions"), k.pop("rewards"), k.pop("episode_starts")
    with pytest.raises(DemonstrationError, match="episode_lengths: expected"):
        Demonstrations(obs, actions, rewards, starts, episode_lengths=[4, 1, 3], **k)


def test_dict_obs_keys_and_ranges_checked():
    demos = make_demos(DICT_OBS, spaces.MultiDiscrete([3, 4]), [2, 3])
    k = kwargs_of(demos)
    obs, actions, rewards, starts = k.pop("obs"), k.pop("actions"), k.pop("rewards"), k.pop("episode_starts")
    with pytest.raises(DemonstrationError, match=r"obs: expected the keys \['flags', 'mode', 'pos'\]"):
        Demonstrations({"pos": obs["pos"]}, actions, rewards, starts, **k)
    bad = dict(obs, flags=obs["flags"] * 2)
    bad["flags"][0, 0] = 2
    with pytest.raises(DemonstrationError, match=r"obs\['flags'\]: expected values in \[0, 1\]"):
        Demonstrations(bad, actions, rewards, starts, **k)
    with pytest.raises(DemonstrationError, match="actions: expected values in"):
        Demonstrations(obs, actions + 3, rewards, starts, **k)


def test_unsupported_spaces_are_refused():
    demos = cartpole()

    def build(obs_space, act_space):
        Demonstrations(
            demos.obs,
            demos.actions,
            demos.rewards,
            demos.episode_starts,
            observation_space=obs_space,
            action_space=act_space,
        )

    with pytest.raises(UnsupportedSpaceError, match="action_space: expected one of Box, Discrete"):
        build(CARTPOLE_OBS, spaces.Tuple([spaces.Discrete(2)]))
    with pytest.raises(UnsupportedSpaceError, match="action_space"):
        build(CARTPOLE_OBS, DICT_OBS)
    nested = spaces.Dict({"a": spaces.Dict({"b": spaces.Discrete(2)})})
    with pytest.raises(UnsupportedSpaceError, match=r"observation_space\['a'\]"):
        build(nested, CARTPOLE_ACT)


def test_metadata_must_be_json():
    demos = cartpole()
    with pytest.raises(DemonstrationError, match="metadata"):
        demos.__class__(
            demos.obs,
            demos.actions,
            demos.rewards,
            demos.episode_starts,
            observation_space=CARTPOLE_OBS,
            action_space=CARTPOLE_ACT,
            metadata={"x": object()},
        )


def test_with_infos_adds_columns_and_checks_their_length():
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [3, 2])
    flagged = demos.with_infos({"flag": np.arange(5)})
    np.testing.assert_array_equal(flagged.infos["flag"], np.arange(5))
    assert flagged.obs is demos.obs and "flag" not in demos.infos
    np.testing.assert_array_equal(flagged.select_episodes([1]).infos["flag"], [3, 4])
    with pytest.raises(DemonstrationError, match=r"infos\['flag'\]: expected 5 rows"):
        demos.with_infos({"flag": np.arange(4)})
