"""The on-policy preparation: PPO and A2C clones with Box actions tied to themselves while they learn."""

import csv

import numpy as np
import pytest
import torch as th
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.logger import configure

from sb3_expert import pretrain
from sb3_expert.bc.finetune import PolicyAnchor, can_anchor, prepare_policy_gradient
from tests.helpers import expert_demos

TINY = {"net_arch": [16, 16]}


@pytest.fixture(scope="module")
def demos():
    return expert_demos("Pendulum-v1", 3)


def _ppo(seed=0):
    return PPO("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), n_steps=128, batch_size=64, seed=seed)


def _hooks(model):
    return list(model.policy.optimizer._optimizer_step_pre_hooks.values())


def _mean_actions(policy, obs):
    with th.no_grad():
        return policy.get_distribution(th.as_tensor(obs)).mode().numpy()


def test_a_ppo_clone_is_anchored_by_default_and_logged(demos, tmp_path):
    model = _ppo()
    pretrain(model, demos, n_epochs=1, seed=0, ensemble=0, finetune=False)
    rng = th.get_rng_state()
    prepare_policy_gradient(model)
    assert th.equal(th.get_rng_state(), rng)  # the frozen copy's construction leaves the global RNG alone
    pretrain(model, demos, n_epochs=1, seed=0, ensemble=0, logger=configure(str(tmp_path), ["csv"]))
    hooks = _hooks(model)
    assert len(hooks) == 1 and isinstance(hooks[0], PolicyAnchor) and hooks[0].anchor == 10.0
    with open(tmp_path / "progress.csv") as f:
        assert float(list(csv.DictReader(f))[-1]["pretrain/anchor"]) == 10.0
    clone = _mean_actions(model.policy, demos.obs)
    np.testing.assert_array_equal(_mean_actions(hooks[0].clone, demos.obs), clone)  # the frozen copy is the clone
    assert not any(p.requires_grad for p in hooks[0].clone.parameters())


def test_what_turns_it_off(demos):
    for kwargs in ({"finetune": False}, {"finetune_kwargs": {"anchor": None}}, {"finetune_kwargs": {"anchor": 0}}):
        model = _ppo()
        pretrain(model, demos, n_epochs=1, seed=0, ensemble=0, **kwargs)
        assert not _hooks(model), kwargs
    model = _ppo()
    pretrain(model, demos, n_epochs=1, seed=0, ensemble=0)
    prepare_policy_gradient(model, anchor=None)  # takes the earlier one off
    assert not _hooks(model)
    pretrain(model, demos, n_epochs=1, seed=0, ensemble=0)
    pretrain(model, demos, n_epochs=1, seed=0, ensemble=0)  # a second preparation replaces the first
    assert len(_hooks(model)) == 1


def test_the_anchor_holds_the_mean_action_while_ppo_learns(demos):
    """Same clone, same seeds: with the default pull the mean action moves at least 100 times less
    (squared) over four PPO updates than without it (measured: about 2,000 times)."""
    drift = {}
    for finetune in (False, None):
        model = _ppo()
        pretrain(model, demos, n_epochs=3, seed=0, ensemble=0, finetune=finetune)
        before = _mean_actions(model.policy, demos.obs)
        model.learn(512)
        drift[finetune] = float(np.mean((_mean_actions(model.policy, demos.obs) - before) ** 2))
    assert drift[None] < drift[False] / 100, drift


def test_a2c_and_dict_observations_learn_with_it():
    from tests.bc.test_normalize import GoalPoint, goal_demos

    model = PPO("MultiInputPolicy", GoalPoint(), policy_kwargs=dict(TINY), n_steps=32, batch_size=16, seed=0)
    pretrain(model, goal_demos(60), n_epochs=1, seed=0)
    assert isinstance(_hooks(model)[0], PolicyAnchor)
    model.learn(64)
    a2c = A2C("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), n_steps=8, seed=0)
    pretrain(a2c, expert_demos("Pendulum-v1", 1), n_epochs=1, seed=0, ensemble=0)
    assert isinstance(_hooks(a2c)[0], PolicyAnchor)
    a2c.learn(32)


def test_the_hook_is_not_saved(demos, tmp_path):
    model = _ppo()
    pretrain(model, demos, n_epochs=1, seed=0, ensemble=0)
    model.save(tmp_path / "clone.zip")
    assert not _hooks(PPO.load(tmp_path / "clone.zip"))


def test_what_is_left_alone_and_bad_arguments(demos):
    cartpole = PPO("MlpPolicy", "CartPole-v1", policy_kwargs=dict(TINY))
    assert not can_anchor(cartpole)  # discrete actions: the clone keeps 500 as it is
    model = _ppo()
    weights = [p.clone() for p in model.policy.parameters()]
    with pytest.raises(TypeError, match=r"unknown \['critic_steps'\] for PPO; expected some of \['anchor'\]"):
        pretrain(model, demos, n_epochs=1, finetune_kwargs={"critic_steps": 5})
    with pytest.raises(ValueError, match="anchor"):
        pretrain(model, demos, n_epochs=1, finetune_kwargs={"anchor": -1.0})
    with pytest.raises(TypeError, match="anchor"):
        pretrain(model, demos, n_epochs=1, finetune_kwargs={"anchor": "strong"})
    assert all(th.equal(a, b) for a, b in zip(weights, model.policy.parameters()))
    assert not _hooks(model)
    with pytest.raises(TypeError, match="PPO or A2C"):
        prepare_policy_gradient(cartpole)
    with pytest.raises(TypeError, match="got str with None"):
        prepare_policy_gradient("PPO")
