"""One behaviour-cloning loss per policy family, picked by what the policy is.

Each :class:`BCLoss` knows which parameters it trains, how to turn the expert's env-space actions
into the policy's targets (once, for the whole dataset), and the per-batch loss:

- actor-critic policies (PPO, A2C, TRPO, MaskablePPO; gSDE too; any ``ActorCriticPolicy``):
  negative log-likelihood of the expert action, ``policy.evaluate_actions``; with Box actions
  (``policy.get_distribution``) the Gaussian's mean is unbounded and the environment clips it, so
  the targets are clipped to the bounds and a mean past a bound where the target is at it costs
  nothing (:func:`free_beyond_bounds`);
- recurrent actor-critic policies (RecurrentPPO): the same likelihood over whole episodes as
  sequences, the LSTM states starting at zero at each episode's start (padded steps masked out);
- stochastic actors with ``action_log_prob`` (SAC, TQC, CrossQ, a user's SAC-like policy) and
  deterministic actors (TD3, DDPG): mean squared error between the actor's deterministic action
  and the expert action, both in the policy's scaled ``[-1, 1]`` action space;
- Q-networks (DQN) and quantile networks (QR-DQN): cross-entropy with the Q-values (QR-DQN: mean
  quantiles) as logits;
- ARS: regression (continuous) or cross-entropy on its action network's logits (discrete).

The family is found from the policy's structure (an ``ActorCriticPolicy`` or ``evaluate_actions``, an
``actor`` with or without ``action_log_prob``, a ``q_net``, a ``quantile_net``...), so subclasses
and new algorithms of the same shape work without registration. :data:`LOSSES` lets a user give a
policy class (and its subclasses) a loss of their own; it is looked up first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy

from sb3_expert.errors import ArgumentTypeError, UnsupportedSpaceError

__all__ = ["BOUND_MARGIN", "BCLoss", "LOSSES", "free_beyond_bounds", "loss_for"]

Obs = th.Tensor | dict[str, th.Tensor]


@dataclass
class BCLoss:
    """How to clone an expert into one policy family.

    :param name: the family, for messages and logs
    :param parameters: the parameters the loss trains
    :param targets: expert actions ``(N, ...)`` (env space, numpy) -> the tensor the loss compares with
    :param loss: ``(obs, targets) -> loss``, the batch's mean loss
    :param correct: discrete actions: ``(obs, targets) ->`` the number of rows whose greedy action is
        the expert's (computed for validation only)
    :param value: ``obs -> values (B,)`` for the optional value warm start (actor-critic only)
    :param on_start: called with the model before training (e.g. ARS's all-zero start)
    :param on_end: called with the model after training (e.g. ARS's weight vector)
    :param sequence: the loss takes whole episodes: ``loss(obs, targets, mask)`` with ``obs`` and
        ``targets`` flattened from ``(n_episodes, max_length, ...)`` and ``mask`` ``(n_episodes,
        max_length)`` float, 1 on real steps, 0 on padding
    :param teacher_space: for Box actions, the units of the targets, so that an ensemble teacher
        (:mod:`sb3_expert.bc.teacher`) can learn from them and label states for the policy:
        ``"scaled"`` (``[-1, 1]``) or ``"env"`` (the space's own bounds); None: no teacher
    """

    name: str
    parameters: Callable[[], Iterable[th.nn.Parameter]]
    targets: Callable[[np.ndarray, th.device], th.Tensor]
    loss: Callable[..., th.Tensor]
    correct: Callable[[Obs, th.Tensor], th.Tensor] | None = None
    value: Callable[[Obs], th.Tensor] | None = None
    on_start: Callable[[Any], None] | None = None
    on_end: Callable[[Any], None] | None = None
    sequence: bool = False
    teacher_space: str | None = None


def _env_actions(policy: BasePolicy) -> Callable[[np.ndarray, th.device], th.Tensor]:
    """Targets for likelihood losses: Discrete as long ``(N,)``, MultiDiscrete long, the rest float;
    Box actions clipped to the bounds (as the environment executes them), then scaled to ``[-1, 1]``
    when the policy squashes its output."""
    space = policy.action_space

    def convert(actions: np.ndarray, device: th.device) -> th.Tensor:
        if isinstance(space, spaces.Discrete):
            return th.as_tensor(actions.reshape(-1) - space.start, dtype=th.long, device=device)
        if isinstance(space, spaces.MultiDiscrete):
            return th.as_tensor(actions - space.start, dtype=th.long, device=device)
        if isinstance(space, spaces.Box):
            actions = np.clip(actions, space.low, space.high)
            if policy.squash_output:
                actions = policy.scale_action(actions)
        return th.as_tensor(actions, dtype=th.float32, device=device)

    return convert


def _box_units(policy: BasePolicy) -> str | None:
    """``teacher_space`` for a policy whose targets come from ``_env_actions`` or ``_scaled_box``."""
    if not isinstance(policy.action_space, spaces.Box):
        return None
    return "scaled" if policy.squash_output else "env"


def _scaled_box(policy: BasePolicy) -> Callable[[np.ndarray, th.device], th.Tensor]:
    """Targets for actors that act in ``[-1, 1]``: expert actions through ``policy.scale_action``
    (clipped to the bounds first, as the environment would have)."""
    space = policy.action_space
    assert isinstance(space, spaces.Box)

    def convert(actions: np.ndarray, device: th.device) -> th.Tensor:
        clipped = np.clip(actions, space.low, space.high)
        return th.as_tensor(policy.scale_action(clipped), dtype=th.float32, device=device)

    return convert


BOUND_MARGIN = 0.02
"""How close to a bound (in the scaled ``[-1, 1]`` units: 0.98 and above counts as 1) a target of a
Gaussian policy's unbounded mean (PPO, A2C, TRPO) is taken to be at that bound, so that a mean past it
costs nothing (:func:`free_beyond_bounds`). The experts' tanh actions come close to their bounds without
reaching them (rl-zoo HalfCheetah SAC: 2.2% of the action components above 0.98; Walker2d TQC: 5.7%).
Measured on PPO 256x256 clones, the default call (``bench_clone_quality.py``, HalfCheetah / Walker2d,
mujoco 4.0.1): seeds 0-2 0.85 (0.97 0.86 0.73) / 0.86 (1.00 0.82 0.77); seeds 3-5 (a script calling
``pretrain`` with the benchmark's data and evaluation, whose seeds 0-2 matched the benchmark's to the
digit) 0.88 / 0.89; over six seeds 0.86 / 0.87, against 0.85 / 0.78 with the plain likelihood (same
script and seeds), under which every Walker2d seed scored as low or lower (by 0.00 to 0.22). The means
do not run away past the bounds: on the Walker2d demonstrations (seed 0) 6% of the components lie past
a bound, the 99th percentile of ``|mean|`` is 1.13 and the largest 1.68. A2C and TRPO get the same loss,
not measured."""


def free_beyond_bounds(mean: th.Tensor, targets: th.Tensor, low: th.Tensor, high: th.Tensor) -> th.Tensor:
    """``targets`` with each component at a bound (within :data:`BOUND_MARGIN` of it) replaced by
    ``mean``'s (no gradient) where ``mean`` lies past it: the environment clips such an action to the
    bound, which the target asks for, so the loss has nothing to correct there. A Gaussian policy's
    linear output would otherwise spend its fit on landing exactly on 0.98-0.999 where any larger value
    acts the same."""
    margin = BOUND_MARGIN * (high - low) / 2
    past = ((targets >= high - margin) & (mean > targets)) | ((targets <= low + margin) & (mean < targets))
    return th.where(past, mean.detach(), targets)


def _actor_critic(policy: Any) -> BCLoss:
    def likelihood(obs: Obs, targets: th.Tensor) -> th.Tensor:
        return -policy.evaluate_actions(obs, targets)[1].mean()

    space = policy.action_space
    gaussian = isinstance(space, spaces.Box) and not policy.squash_output
    loss = _bounded_likelihood(policy, space) if gaussian and hasattr(policy, "get_distribution") else likelihood

    def correct(obs: Obs, targets: th.Tensor) -> th.Tensor:
        return (policy.get_distribution(obs).mode() == targets).sum()

    discrete = isinstance(space, spaces.Discrete)
    return BCLoss(
        "actor-critic likelihood",
        policy.parameters,
        _env_actions(policy),
        loss,
        correct=correct if discrete else None,
        value=lambda obs: policy.predict_values(obs).flatten(),
        teacher_space=_box_units(policy),
    )


def _bounded_likelihood(policy: Any, space: spaces.Box) -> Callable[[Obs, th.Tensor], th.Tensor]:
    """The loss of an actor-critic policy whose Box actions are a Gaussian's unbounded mean (PPO, A2C,
    TRPO without ``squash_output``): the likelihood of the (clipped) expert action, free past the bounds."""
    low = th.as_tensor(space.low, dtype=th.float32, device=policy.device)
    high = th.as_tensor(space.high, dtype=th.float32, device=policy.device)

    def loss(obs: Obs, targets: th.Tensor) -> th.Tensor:
        distribution = policy.get_distribution(obs)  # the value head plays no part
        return -distribution.log_prob(free_beyond_bounds(distribution.mode(), targets, low, high)).mean()

    return loss


def _recurrent_actor_critic(policy: Any) -> BCLoss:
    """RecurrentPPO: likelihood of whole episodes, LSTM states zero at each episode's start."""
    from sb3_contrib.common.recurrent.type_aliases import RNNStates

    def loss(obs: Obs, targets: th.Tensor, mask: th.Tensor) -> th.Tensor:
        n_seq = mask.shape[0]
        layers, _, hidden = policy.lstm_hidden_state_shape
        zeros = th.zeros(layers, n_seq, hidden, device=mask.device)
        states = RNNStates((zeros, zeros), (zeros, zeros))
        # all-zero episode starts: one LSTM call over the whole sequence (the states start at zero)
        log_prob = policy.evaluate_actions(obs, targets, states, th.zeros(mask.numel(), device=mask.device))[1]
        return -(log_prob * mask.reshape(-1)).sum() / mask.sum()

    return BCLoss("recurrent actor-critic likelihood", policy.parameters, _env_actions(policy), loss, sequence=True)


def _squashed_actor(policy: Any) -> BCLoss:  # SAC, TQC, CrossQ
    def loss(obs: Obs, targets: th.Tensor) -> th.Tensor:
        return F.mse_loss(policy.actor(obs, deterministic=True), targets)

    return BCLoss(
        "actor regression (scaled actions)", policy.actor.parameters, _scaled_box(policy), loss, teacher_space="scaled"
    )


def _deterministic_actor(policy: Any) -> BCLoss:  # TD3, DDPG
    def loss(obs: Obs, targets: th.Tensor) -> th.Tensor:
        return F.mse_loss(policy.actor(obs), targets)

    return BCLoss(
        "actor regression (scaled actions)", policy.actor.parameters, _scaled_box(policy), loss, teacher_space="scaled"
    )


def _logits_loss(name: str, logits: Callable[[Obs], th.Tensor], parameters: Any, targets: Any) -> BCLoss:
    """Cross-entropy on ``logits(obs)``; the greedy action is their argmax."""
    return BCLoss(
        name,
        parameters,
        targets,
        lambda obs, target: F.cross_entropy(logits(obs), target),
        correct=lambda obs, target: (logits(obs).argmax(dim=-1) == target).sum(),
    )


def _dqn(policy: Any) -> BCLoss:
    return _logits_loss("Q-values as logits", policy.q_net, policy.q_net.parameters, _env_actions(policy))


def _qrdqn(policy: Any) -> BCLoss:
    def q_values(obs: Obs) -> th.Tensor:
        return policy.quantile_net(obs).mean(dim=1)

    return _logits_loss("Q-values as logits", q_values, policy.quantile_net.parameters, _env_actions(policy))


def _ars_start(model: Any) -> None:
    """ARS may start from all-zero weights (``zero_policy``), where gradients vanish: give such a
    network PyTorch's default initialisation first (a network with any non-zero weight is kept)."""
    if all(not p.any() for p in model.policy.parameters()):
        for module in model.policy.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


def _ars_end(model: Any) -> None:
    """ARS keeps its weights as a vector that ``learn()`` loads into the policy: update it."""
    model.weights = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach()


def _ars(policy: Any) -> BCLoss:
    if isinstance(policy.action_space, spaces.Discrete):
        start = int(policy.action_space.start)

        def logits(obs: Obs) -> th.Tensor:
            return policy.action_net(policy.extract_features(obs, policy.features_extractor))

        def discrete_targets(actions: np.ndarray, device: th.device) -> th.Tensor:
            return th.as_tensor(actions.reshape(-1) - start, dtype=th.long, device=device)

        bc = _logits_loss("ARS logits", logits, policy.parameters, discrete_targets)
    else:
        targets = _scaled_box(policy) if policy.squash_output else _env_actions(policy)
        bc = BCLoss(
            "ARS regression",
            policy.parameters,
            targets,
            lambda obs, target: F.mse_loss(policy(obs), target),
            teacher_space=_box_units(policy),
        )
    bc.on_start, bc.on_end = _ars_start, _ars_end
    return bc


LOSSES: dict[type, Callable[[Any], BCLoss]] = {}
"""A user's own losses: policy class -> factory ``policy -> BCLoss``, looked up along the policy's
MRO before the built-in families (``LOSSES[MyPolicy] = my_factory``)."""


def stochastic_actor(actor: Any) -> bool:
    """Whether an off-policy actor samples its actions (SAC, TQC, CrossQ, a user's SAC-like actor:
    it has ``action_log_prob`` and takes ``deterministic=``) rather than being deterministic (TD3, DDPG)."""
    return hasattr(actor, "action_log_prob")


def _family(policy: BasePolicy) -> Callable[[Any], BCLoss] | None:
    """The built-in loss factory for ``policy``'s structure, or None."""
    if isinstance(policy, ActorCriticPolicy) or callable(getattr(policy, "evaluate_actions", None)):
        # MaskablePPO's policy is no ActorCriticPolicy subclass, but has its evaluate_actions
        return _recurrent_actor_critic if hasattr(policy, "lstm_actor") else _actor_critic
    actor = getattr(policy, "actor", None)
    if isinstance(actor, th.nn.Module):
        return _squashed_actor if stochastic_actor(actor) else _deterministic_actor
    if isinstance(getattr(policy, "q_net", None), th.nn.Module):
        return _dqn
    if isinstance(getattr(policy, "quantile_net", None), th.nn.Module):
        return _qrdqn
    if isinstance(getattr(policy, "action_net", None), th.nn.Module):
        return _ars
    return None


def loss_for(policy: BasePolicy) -> BCLoss:
    """The :class:`BCLoss` for ``policy``: a user's entry in :data:`LOSSES` (along the MRO), else
    the built-in family its structure matches.

    :raises TypeError: for a policy that matches no family
    :raises UnsupportedSpaceError: for an action space the family cannot clone
    """
    factory = next((LOSSES[cls] for cls in type(policy).__mro__ if cls in LOSSES), None) or _family(policy)
    if factory is None:
        raise ArgumentTypeError(
            f"pretrain: no behaviour-cloning loss for {type(policy).__name__}: it is none of an ActorCriticPolicy "
            "(or a policy with `evaluate_actions`), "
            "a policy with an `actor` (SAC/TD3-like), a `q_net` (DQN-like), a `quantile_net` (QR-DQN-like) or an "
            "`action_net` (ARS-like); register one with sb3_expert.bc.losses.LOSSES[YourPolicy] = factory"
        )
    space = policy.action_space
    if factory in (_squashed_actor, _deterministic_actor) and not isinstance(space, spaces.Box):
        raise UnsupportedSpaceError(f"action_space: {type(policy).__name__} needs a Box action space, got {space}")
    return factory(policy)
