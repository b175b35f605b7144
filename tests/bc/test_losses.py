"""Unit tests of ``bc/losses.py``: dispatch by structure, targets, and what each loss computes."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.sac.policies import SACPolicy

from sb3_expert import UnsupportedSpaceError
from sb3_expert.bc.losses import LOSSES, BCLoss, free_beyond_bounds, loss_for

TINY = dict(net_arch=[8])


def tiny(algo, env_id, **kwargs):
    return algo("MlpPolicy", env_id, policy_kwargs=dict(TINY), device="cpu", seed=0, **kwargs)  # SB3 edits the dict


@pytest.mark.parametrize(
    ("algo", "env_id", "family"),
    [
        (PPO, "CartPole-v1", "actor-critic likelihood"),
        (A2C, "Pendulum-v1", "actor-critic likelihood"),
        (SAC, "Pendulum-v1", "actor regression (scaled actions)"),
        (TD3, "Pendulum-v1", "actor regression (scaled actions)"),
        (DDPG, "Pendulum-v1", "actor regression (scaled actions)"),
        (DQN, "CartPole-v1", "Q-values as logits"),
    ],
)
def test_family_by_structure(algo, env_id, family):
    assert loss_for(tiny(algo, env_id).policy).name == family


def test_contrib_families():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    assert loss_for(tiny(sb3_contrib.QRDQN, "CartPole-v1").policy).name == "Q-values as logits"
    assert loss_for(tiny(sb3_contrib.CrossQ, "Pendulum-v1").policy).name == "actor regression (scaled actions)"
    recurrent = sb3_contrib.RecurrentPPO("MlpLstmPolicy", "CartPole-v1", device="cpu", n_steps=8)
    assert loss_for(recurrent.policy).sequence


class MySACPolicy(SACPolicy):
    """A user's subclass: found by structure, then overridable through LOSSES along the MRO."""


def test_subclass_and_registered_losses(monkeypatch):
    model = SAC(MySACPolicy, "Pendulum-v1", policy_kwargs=dict(TINY), device="cpu")
    assert loss_for(model.policy).name == "actor regression (scaled actions)"
    mine = BCLoss("mine", model.policy.parameters, lambda a, d: th.as_tensor(a), lambda obs, t: t.sum())
    monkeypatch.setitem(LOSSES, SACPolicy, lambda policy: mine)
    assert loss_for(model.policy) is mine  # a parent class's entry applies to the subclass


class NoFamily(BasePolicy):
    def _predict(self, observation, deterministic=False):
        return th.zeros(1)


class DiscreteActor(NoFamily):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = th.nn.Linear(4, 2)


def test_unknown_policies_are_refused():
    obs_space = spaces.Box(-1, 1, (4,), np.float32)
    with pytest.raises(TypeError, match="no behaviour-cloning loss for NoFamily.*LOSSES"):
        loss_for(NoFamily(obs_space, spaces.Discrete(2)))
    with pytest.raises(UnsupportedSpaceError, match="action_space: DiscreteActor needs a Box action space"):
        loss_for(DiscreteActor(obs_space, spaces.Discrete(2)))


def test_targets():
    sac = tiny(SAC, "Pendulum-v1").policy  # actions in [-2, 2]
    got = loss_for(sac).targets(np.array([[-2.0], [1.0], [3.0]], np.float32), th.device("cpu"))
    np.testing.assert_allclose(got.numpy(), [[-1.0], [0.5], [1.0]])  # scaled, clipped to the bounds first
    a2c = tiny(A2C, "Pendulum-v1").policy  # a Gaussian without squashing: env units
    got = loss_for(a2c).targets(np.array([[-2.0], [1.5]], np.float32), th.device("cpu"))
    np.testing.assert_allclose(got.numpy(), [[-2.0], [1.5]])
    env = gym.make("CartPole-v1")
    env.action_space = spaces.Discrete(2, start=5)  # a start-shifted space: targets are 0-based
    dqn = DQN("MlpPolicy", env, policy_kwargs=dict(TINY), device="cpu")
    got = loss_for(dqn.policy).targets(np.array([5, 6, 6]), th.device("cpu"))
    assert got.dtype == th.long and got.tolist() == [0, 1, 1]


def test_what_each_loss_computes():
    obs = th.randn(6, 3)
    sac = tiny(SAC, "Pendulum-v1").policy
    bc = loss_for(sac)
    own = sac.actor(obs, deterministic=True).detach()
    assert bc.loss(obs, own).item() == pytest.approx(0.0, abs=1e-12)  # its own actions: zero
    shifted = (own + 0.1).clamp(-1, 1)
    assert bc.loss(obs, shifted).item() == pytest.approx(F.mse_loss(own, shifted).item(), rel=1e-5)
    assert {id(p) for p in bc.parameters()} == {id(p) for p in sac.actor.parameters()}  # never the critic

    ppo = tiny(PPO, "CartPole-v1").policy
    obs4, actions = th.randn(6, 4), th.tensor([0, 1, 1, 0, 1, 0])
    bc = loss_for(ppo)
    _, log_prob, _ = ppo.evaluate_actions(obs4, actions)
    assert bc.loss(obs4, actions).item() == pytest.approx(-log_prob.mean().item(), rel=1e-5)
    greedy = ppo.get_distribution(obs4).mode()
    assert bc.correct(obs4, greedy).item() == 6 and bc.correct(obs4, 1 - greedy).item() == 0
    assert bc.value is not None and bc.value(obs4).shape == (6,)

    dqn = tiny(DQN, "CartPole-v1").policy
    bc = loss_for(dqn)
    q = dqn.q_net(obs4)
    assert bc.loss(obs4, actions).item() == pytest.approx(F.cross_entropy(q, actions).item(), rel=1e-5)
    assert bc.correct(obs4, q.argmax(-1)).item() == 6


@pytest.mark.parametrize(("algo", "env_id"), [(PPO, "CartPole-v1"), (SAC, "Pendulum-v1"), (TD3, "Pendulum-v1")])
def test_loss_falls_under_its_optimiser(algo, env_id):
    policy = tiny(algo, env_id).policy
    bc = loss_for(policy)
    rng = np.random.default_rng(0)
    obs = th.as_tensor(rng.normal(size=(32, *policy.observation_space.shape)), dtype=th.float32)
    space = policy.action_space
    x = obs[:, 0].numpy()  # an expert that is a function of the observation
    raw = (x > 0).astype(np.int64) if isinstance(space, spaces.Discrete) else np.clip(x, -2, 2)[:, None]
    targets = bc.targets(raw, th.device("cpu"))
    optimizer = th.optim.Adam(bc.parameters(), lr=1e-2)
    before = bc.loss(obs, targets).item()
    for _ in range(50):
        optimizer.zero_grad()
        bc.loss(obs, targets).backward()
        optimizer.step()
    assert bc.loss(obs, targets).item() < 0.5 * before


def test_a_gaussian_mean_past_a_bound_costs_nothing_where_the_target_is_at_it():
    """PPO's Box actions are a Gaussian's unbounded mean, which the environment clips: the targets are
    clipped to the bounds, and a component at a bound (within BOUND_MARGIN) is free past it."""
    ppo = tiny(PPO, "Pendulum-v1").policy  # actions in [-2, 2]
    bc = loss_for(ppo)
    targets = bc.targets(np.array([[-3.0], [1.0], [2.5], [1.99]], np.float32), th.device("cpu"))
    np.testing.assert_allclose(targets.numpy(), [[-2.0], [1.0], [2.0], [1.99]])  # clipped, as executed

    mean = th.tensor([[-2.5], [1.2], [2.7], [1.5], [-1.0]])
    target = th.tensor([[-2.0], [1.0], [1.99], [2.0], [-1.99]])
    got = free_beyond_bounds(mean, target, th.tensor([-2.0]), th.tensor([2.0]))
    # past the bound the target is at: the mean itself (rows 0, 2: 1.99 is within 0.02 x 2 of 2); inside
    # the bounds (row 1), short of the bound (row 3) or past it on the wrong side (row 4): the target
    np.testing.assert_allclose(got.numpy(), [[-2.5], [1.0], [2.7], [2.0], [-1.99]])

    obs = th.randn(5, 3)
    with th.no_grad():
        ppo.action_net.weight.zero_()
        ppo.action_net.bias.fill_(5.0)  # every mean at 5, far past the upper bound
    bc.loss(obs, th.full((5, 1), 1.995)).backward()
    assert ppo.action_net.bias.grad.abs().max().item() == 0.0  # nothing to correct: the env acts at 2
    ppo.action_net.bias.grad = None
    inside = th.full((5, 1), 0.5)
    loss = bc.loss(obs, inside)
    assert loss.item() == pytest.approx(-ppo.evaluate_actions(obs, inside)[1].mean().item(), rel=1e-5)
    loss.backward()
    assert ppo.action_net.bias.grad.item() > 0  # inside the bounds: the likelihood pulls the mean to 0.5
