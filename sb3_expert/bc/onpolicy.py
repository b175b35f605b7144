"""Leave a behaviour-cloned PPO or A2C with continuous actions ready for ``learn()``: :class:`PolicyAnchor`.

A PPO clone of a MuJoCo expert is destroyed by ``learn()`` as an off-policy one is, for another
reason: behaviour cloning fits the Gaussian's spread to the clone's error, so its standard deviation
ends small (0.048 on the rl-zoo HalfCheetah expert's data), and PPO's optimizer moves the mean by
about its learning rate per step whatever that spread. At that spread one update's mean shift is
worth a KL divergence of 5 to 360 between successive policies (PPO from scratch, at a spread of
1: about 0.01) and 90-99% of the samples leave the clipping range. Measured with
``benchmarks/bench_finetune.py`` (PPO 256x256, seeds 0-2, 10 evaluation episodes per point): the
HalfCheetah clones (8,214 on average) end at -212 after 20,000 steps, the Walker2d ones (3,990) at 62.

So :func:`~sb3_expert.pretrain` ties such a clone to itself: a step pre-hook on the policy's
optimizer adds ``anchor`` times the squared distance between the policy's deterministic action
(the Gaussian's mean) and a frozen copy of the clone's, on a batch of the states of the rollout
being trained on (the model's own online states; the demonstrations play no part). PPO's update then
moves the mean where the advantages say only as far as that pull lets it. Measured on the
HalfCheetah clone above, seed 0 (10 evaluation episodes every 2,000 steps, lowest point / 20k
point over the clone): pull 10: 0.83 / 0.90, with KL 0.01-0.02 per update; PPO's own ``target_kl``
(early stopping) of 0.02 instead: 0.74 / 0.87, both: 0.80 / 0.92; a spread reset to 0.3 or 0.1
alone: collapse (0.05, 0.02 at 20k).

Discrete actions (CartPole's clone keeps 500 through 20,000 steps as it is), recurrent policies and
TRPO (whose actor steps are its own line search under a KL bound, not its optimizer's) are left alone.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor

from sb3_expert.arguments import check_logger, check_number
from sb3_expert.errors import ArgumentTypeError

__all__ = ["POLICY_ANCHOR", "PolicyAnchor", "can_anchor", "prepare_policy_gradient"]

POLICY_ANCHOR = 10.0
"""Weight of the pull of a PPO/A2C clone's mean action towards the frozen clone's (squared distance in
the action space's units, beside PPO's loss on normalised advantages)."""
ANCHOR_BATCH = 256
"""States of the rollout the pull is computed on, at each optimizer step."""


def can_anchor(model: Any) -> bool:
    """Whether :func:`prepare_policy_gradient` applies: an on-policy model whose optimizer trains a
    feed-forward ``ActorCriticPolicy`` with Box actions (PPO, A2C; not TRPO, whose actor steps are
    its own, nor RecurrentPPO)."""
    policy = getattr(model, "policy", None)
    return (
        isinstance(model, OnPolicyAlgorithm)
        and isinstance(policy, ActorCriticPolicy)
        and isinstance(model.action_space, spaces.Box)
        and not hasattr(policy, "lstm_actor")  # RecurrentPPO's policy
        and not hasattr(model, "cg_max_steps")  # TRPO: conjugate-gradient steps for the actor
    )


class PolicyAnchor:
    """Adds ``anchor * mse(mean(s), clone(s))`` to the gradient of an on-policy model's every optimizer
    step, ``s`` a batch of the states in its rollout buffer, ``mean`` the policy's deterministic action
    and ``clone`` that of a frozen copy of the policy taken here.

    It is a step pre-hook on ``model.policy.optimizer`` (gone after ``save``/``load``; :meth:`remove`
    takes it off); PPO clips its own gradient before the step, so the pull is not clipped.

    :param model: PPO or A2C (see :func:`can_anchor`)
    :param anchor: the pull's weight
    :param seed: seed of the batches' draw (None: from the OS)
    """

    def __init__(self, model: Any, anchor: float, seed: int | None = None) -> None:
        self.model, self.anchor = model, float(anchor)
        policy = model.policy
        self.clone = type(policy)(**policy._get_constructor_parameters()).to(policy.device)  # as SB3's load does
        self.clone.load_state_dict(policy.state_dict())
        self.clone.requires_grad_(False).set_training_mode(False)
        self.rng = np.random.default_rng(seed)
        optimizer = policy.optimizer
        remove_anchor(optimizer)  # a second preparation replaces the first, it does not stack on it
        self.handle = optimizer.register_step_pre_hook(self)
        _ANCHORS[optimizer] = self

    def remove(self) -> None:
        """Take the hook off the optimizer."""
        self.handle.remove()
        if _ANCHORS.get(self.model.policy.optimizer) is self:
            del _ANCHORS[self.model.policy.optimizer]

    def __call__(self, optimizer: th.optim.Optimizer, args: Any, kwargs: Any) -> None:
        observations = self._states()
        if observations is None:
            return
        with th.no_grad():
            target = self.clone.get_distribution(observations).mode()
        with th.enable_grad():
            loss = self.anchor * F.mse_loss(self.model.policy.get_distribution(observations).mode(), target)
            loss.backward()

    def _states(self) -> Any:
        """A batch of the rollout buffer's observations as tensors (None before any rollout)."""
        buffer = self.model.rollout_buffer
        space = self.model.observation_space
        if not buffer.full and buffer.pos == 0:
            return None
        stored = buffer.observations  # (steps, envs, ...) while collecting, (steps * envs, ...) in train()
        index = self.rng.integers(
            0, buffer.buffer_size * buffer.n_envs if buffer.full else buffer.pos * buffer.n_envs, ANCHOR_BATCH
        )
        if isinstance(space, spaces.Dict):
            picked = {key: _rows(stored[key], sub)[index] for key, sub in space.spaces.items()}
            return obs_as_tensor(picked, self.model.device)
        return obs_as_tensor(_rows(stored, space)[index], self.model.device)


def _rows(stored: np.ndarray, space: spaces.Space) -> np.ndarray:
    """A rollout buffer's array of observations of ``space``, one row per observation."""
    assert space.shape is not None  # a Box or a Dict's leaf
    return stored.reshape(-1, *space.shape)


_ANCHORS: weakref.WeakKeyDictionary[th.optim.Optimizer, PolicyAnchor] = weakref.WeakKeyDictionary()
"""The anchor installed on each policy optimizer."""


def remove_anchor(optimizer: th.optim.Optimizer) -> None:
    """Take off the :class:`PolicyAnchor` an earlier preparation put on ``optimizer``, if any."""
    earlier = _ANCHORS.get(optimizer)
    if earlier is not None:
        earlier.remove()


def check_policy_gradient_args(anchor: Any = POLICY_ANCHOR) -> None:
    """Raise (naming the argument) for anything :func:`prepare_policy_gradient` would refuse."""
    if anchor is not None:
        check_number("anchor", anchor, 0)


def prepare_policy_gradient(
    model: Any, *, anchor: float | None = POLICY_ANCHOR, seed: int | None = None, logger: Any = None
) -> PolicyAnchor | None:
    """Make a behaviour-cloned PPO or A2C with Box actions ready for ``learn()`` (see the module
    docstring): install a :class:`PolicyAnchor` of weight ``anchor`` (None or 0: none, and an earlier
    one is taken off).

    :param model: PPO or A2C with Box actions
    :param anchor: the pull's weight
    :param seed: seed of the anchor's batches
    :param logger: an SB3 logger recording it (``pretrain/anchor``)
    :return: the hook installed, or None
    """
    if not can_anchor(model):
        raise ArgumentTypeError(
            "model: expected PPO or A2C with a feed-forward policy and Box actions, "
            f"got {type(model).__name__} with {model.action_space}"
        )
    check_policy_gradient_args(anchor=anchor)
    check_logger(logger)
    remove_anchor(model.policy.optimizer)
    if not anchor:
        return None
    if logger is not None:
        logger.record("pretrain/anchor", float(anchor))
    return PolicyAnchor(model, float(anchor), seed)
