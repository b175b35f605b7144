"""Leave a behaviour-cloned off-policy model ready for ``learn()``: :func:`prepare_finetuning`.

A clone handed to SAC or TD3 as it is collapses within a few thousand steps (measured: a SAC
HalfCheetah clone at 5,517 scored -78 after 2,000 steps of ``learn()``). The critic is random when
the actor starts following it, SAC's entropy coefficient starts at 1.0, the first
``learning_starts`` steps act at random, and the demonstrations leave the replay buffer's sampling as
online data grows. :func:`prepare_finetuning` addresses each; ``pretrain`` calls it after behaviour
cloning by default when the demonstrations have rewards (``finetune=False`` turns it off):

1. **Critic fitted to the clone** (policy evaluation): the algorithm's own ``train()`` runs on the
   demonstrations with the actor and the entropy coefficient held still, so the targets come from
   the recorded rewards and the clone's own next actions (bootstrapping through truncations only,
   as SB3's buffers do); the target networks follow as in ``learn()``.
2. **Entropy coefficient** (SAC, TQC, CrossQ with ``ent_coef="auto"``): started at ``ent_coef``
   rather than SB3's 1.0, the stochastic actor's spread (its ``log_std`` layer, which behaviour
   cloning does not train) set to ``actor_std``, and the entropy target set to the clone's own
   entropy (``target_entropy``), so that the tuning does not drive the coefficient back up to 1;
   a deterministic actor (TD3, DDPG) without exploration noise gets ``action_noise``, so that the
   online data varies the clone's actions.
3. **No random warm-up**: ``learning_starts`` set to 0, so ``learn()`` acts with the clone from its
   first step.
4. **Demonstrations kept**: the replay buffer becomes a :class:`~sb3_expert.bc.replay.DemoReplayBuffer`
   that draws ``demo_fraction`` of every batch from them (with SB3's n-step returns when the model
   has them, ``SAC(..., n_steps=3)``: the critic fit too).
5. **Actor held, then tied** (:class:`ActorHook`): the actor's first ``actor_delay`` updates run at
   a learning rate of 0 (its optimizer's moments warm up, nothing moves); two terms join its
   gradient, both scaled by the critic's mean ``|Q|`` as TD3+BC does: ``anchor`` times the squared
   distance to a frozen copy of the clone's actions on the replay buffer's states (online states
   included), and ``bc_weight`` times the behaviour-cloning loss on a batch of demonstrations (a
   number decays linearly to 0 over ``bc_decay`` actor updates after the hold, or give an SB3
   schedule of ``learn()``'s remaining progress); its learning rate can be capped (``actor_lr``).

Everything it changes is logged under ``pretrain/`` and each part can be turned off.

PPO and A2C clones with Box actions get :func:`prepare_policy_gradient` instead: a pull of the
policy's mean action towards a frozen copy of the clone on the rollout's states
(:class:`PolicyAnchor`, which says why and what was measured).
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import obs_as_tensor

from sb3_expert.arguments import check_count, check_logger, check_number
from sb3_expert.bc.losses import loss_for, stochastic_actor
from sb3_expert.bc.replay import (
    DEMO_FRACTION,
    DemoReplayBuffer,
    check_n_steps,
    demo_buffer_class,
    demonstration_buffer,
)
from sb3_expert.errors import ArgumentTypeError

__all__ = ["ActorHook", "PolicyAnchor", "can_anchor", "can_finetune", "prepare_finetuning", "prepare_policy_gradient"]

CRITIC_STEPS = 10_000
"""Gradient steps of the critic fit (batches of the model's ``batch_size``)."""
CRITIC_TAU: float | None = None
"""Soft update coefficient of the target networks during the critic fit only; None: the model's
``tau`` (SB3's 0.005). See :func:`fit_critic` for why a fit at 0.005 stops far short of the
clone's values. 0.05 brings it to them (seed-0 clones, mean Q over the demonstrations against their
discounted return: 0.90 on HalfCheetah SAC and 0.57, the fixed point, on Walker2d TD3, against 0.37
and 0.19) but measured no better with ``bench_finetune.py`` (the four off-policy tasks, seeds 0-1:
the mean of the points after the held one over the clone 0.98 against 0.98 at SB3's tau, 20k over
the clone as neighbourhoods 0.98 against 0.99), so it is off by default. Nor does the model's own
``tau`` at 0.02 in ``learn()`` help (with this at 0.05; HalfCheetah SAC and TD3 seeds 0-2: the mean
after the clone unchanged, 1.01 and 0.96; Walker2d seed 0: 20k over the clone as neighbourhoods 0.97
and 0.95 against 1.00 and 1.03; docs/FINETUNING.md)."""
BC_WEIGHT = 1.0
"""Starting weight of the behaviour-cloning term, relative to the critic's mean ``|Q|`` (TD3+BC's
``1 / alpha``: 0.4)."""
ACTOR_DELAY = 2000
"""Actor updates held (at a learning rate of 0) at the start of fine-tuning, while the critic learns
the clone's own data. 5,000 measured with ``bench_finetune.py``, when the held updates were still
skipped (lowest point / 20k point, over the clone, mean of seeds 0-2): HalfCheetah SAC 0.86 / 1.10
against 0.77 / 1.03 with 2,000; HalfCheetah TD3 0.82 / 0.82 against 0.80 / 0.94; Walker2d SAC (seeds
0-1) 0.81 / 0.81 against 0.95 / 0.96. It helps one task and not the others, so 2,000 stays. With the
held updates warming Adam's moments, 2,000 gives 0.79 / 1.08, 0.83 / 1.03, 0.90 / 1.01 and, on
Walker2d TD3, 0.90 / 1.01 (seeds 0-2; the SAC figures with SB3's entropy target, see
``TARGET_ENTROPY``)."""
BC_DECAY = 100_000
"""Actor updates over which the behaviour-cloning term's weight decays to 0."""
ENT_COEF = 0.01
"""Starting entropy coefficient of a clone with ``ent_coef="auto"``."""
ANCHOR_WEIGHT = 10.0
"""Weight of the pull towards the frozen clone's actions, relative to the critic's mean ``|Q|``
(measured on HalfCheetah TD3, seed 0, 6,000 steps: 9,157 / 7,939 / 8,818 / 9,141 every 2,000 steps
at 10; 7,939 / 6,081 / 3,336 at 1; 7,939 / -518 / -297 without). Two ways of letting ``learn()``
improve on the clone were measured on HalfCheetah SAC with ``bench_finetune.py`` and not kept: the
anchor decaying linearly to 0 over the 20,000 actor updates after the hold made the clones worse
(seed 0 from 6,580 to 4,325 at 20,000 steps, seed 1 from 8,343 to 7,367: the critic's
action-gradient still leads away from the clone's behaviour); the anchor pulling towards the
expert's actions on the batch's demonstration rows (the clone's on the online rows), which keeps
behaviour cloning going, gave 0.85 / 0.96 of the clone (lowest / 20k, seeds 0-2) against 0.87 /
1.00. Also measured and not kept (20 evaluation episodes per point): the anchor on the
demonstrations' states only (seeds 0-1 collapsed: 3,671 and 2,490 at 20k from clones of 6,680 and
7,899), an advantage-weighted pull towards the replay buffer's actions after the hold (AWAC's loss,
10 x the mean ``|Q|``: 2,201 and 3,601), and the anchor extended to the actor's ``log_std`` (seeds
0-3: 0.90 / 0.96 against 1.00 at 20k for the defaults on the same seeds). With today's clones
(seed 0, mean of the ten points after the clone over the clone; docs/FINETUNING.md): 3
gives 0.87 on HalfCheetah SAC against 0.94 at 10; 30 gives 0.95 there and 0.88 on Walker2d TD3
against 0.99. A conservative critic in place of a firmer pull (CQL's penalty on the actor's own
actions against the stored ones, weight 5, every critic step; seed 0, on later clones where the
defaults were not rerun) gave 0.94 on HalfCheetah SAC and 0.82 on Walker2d TD3 (0.52 at its lowest
point), so it is not offered. Nor is the pull let go of the states the critic rates below every
demonstration of a batch (HalfCheetah TD3, seeds 0-4: 20k over the clone as neighbourhoods 1.02
against 0.96, but the lowest point 0.84 against 0.92; Walker2d seed 0: 0.95 and 0.91 against 1.00
and 1.03; docs/FINETUNING.md)."""
ACTOR_STD = 0.1
"""Starting standard deviation (before the tanh) of a stochastic clone's actions (SAC, TQC,
CrossQ). Behaviour cloning trains the deterministic action only; the untrained ``log_std`` head of
a HalfCheetah SAC clone gives 0.72-1.85 (5%-95%), so its online data would be close to random.
0.2 was measured with ``ACTION_NOISE`` (see there) and not kept."""
ACTION_NOISE = 0.1
"""Standard deviation of the Gaussian exploration noise given to a deterministic actor (TD3, DDPG)
that has none: without it the clone's online data never varies its actions for the critic.
A deterministic expert's demonstrations never vary them either, so the critic's action-gradient,
which moves the actor, is learnt from this exploration alone; the benchmark's evaluation is
deterministic, so wider exploration costs it nothing directly. Measured with ``bench_finetune.py``
(seeds 0-2, 30 evaluation episodes per point; lowest point / mean of the points after the clone /
20k point, over the clone): this noise and ``ACTOR_STD`` both at 0.2 give HalfCheetah SAC 0.94 /
1.01 / 1.07, HalfCheetah TD3 0.92 / 0.97 / 0.97, Walker2d SAC 0.84 / 0.96 / 0.97 and Walker2d TD3
0.91 / 1.00 / 0.98, against 0.98 / 1.01 / 0.99, 0.93 / 0.96 / 0.94, 0.88 / 0.96 / 0.98 and 0.88 /
0.98 / 1.10 at 0.1: the mean after the clone moves by 0.02 at most, the 20k point up on HalfCheetah
and down on Walker2d TD3 (a single point's noise), so 0.1 stays."""
TARGET_ENTROPY: float | str | None = "clone"
"""Entropy target of a clone with ``ent_coef="auto"`` (SAC, TQC, CrossQ): ``"clone"``, its own
entropy on the demonstrations once its spread is set to ``ACTOR_STD``. SB3's target, minus the action
dimension (-6 on HalfCheetah), is far above a clone of an expert whose actions sit at the tanh's
bounds (-14 on HalfCheetah), so the coefficient doubled every 2,000 steps of ``learn()`` (0.01 to
0.48 by 14,000 steps, seeds 0 and 2; 0.64 by 16,000, seed 2) towards the 1.0 that destroys
clones. With the clone's target it peaks at 0.11-0.17 around 12,000 steps, then falls. Measured
with ``bench_finetune.py`` (seeds 0-2, lowest point / 20k point over the clone): HalfCheetah SAC
0.87 / 1.00 (7,410 against the clone's 7,417) against 0.79 / 1.08 with SB3's target; Walker2d SAC
0.99 / 1.12 against 0.90 / 1.01."""
ACTOR_LR: float | None = None
"""Cap on the actor's learning rate while fine-tuning; None: the model's own. Measured on HalfCheetah
TD3 (SB3's rate 1e-3) with ``actor_delay=5000`` and the held updates skipped, seeds 0-2 of
``bench_finetune.py``: a cap of 3e-4 (SAC's rate) gives a lowest point of 0.87 of the clone and 0.92
at 20k, against 0.82 and 0.82 without; Walker2d TD3 seed 0: 0.88 and 0.97. HalfCheetah SAC (SB3's
rate 3e-4) capped at 1e-4, with SB3's entropy target and the held updates warming Adam, seeds 0-2:
0.83 and 0.99, against 0.79 and 1.08 without (within the noise). With today's clones (seed 0, mean
of the ten points after the clone over the clone), a cap of 3e-5: 0.92 on HalfCheetah SAC and 0.86
on Walker2d TD3, against 0.94 and 0.99 without. Not the default."""


def can_finetune(model: Any) -> bool:
    """Whether :func:`prepare_finetuning` applies: an off-policy model with an actor and a critic."""
    policy = getattr(model, "policy", None)
    return isinstance(model, OffPolicyAlgorithm) and all(
        isinstance(getattr(policy, name, None), th.nn.Module) for name in ("actor", "critic")
    )


def _inert() -> th.optim.Optimizer:
    """An optimizer that updates nothing (it owns a dummy parameter only)."""
    return th.optim.SGD([th.zeros(1, requires_grad=True)], lr=0.0)


@contextlib.contextmanager
def _policy_evaluation(model: Any, demonstrations: ReplayBuffer, tau: float | None = None) -> Iterator[Logger]:
    """While inside, ``model.train()`` fits the critic(s) on ``demonstrations`` only: the actor's and
    the entropy coefficient's optimizers update nothing, the target networks move by ``tau`` (None:
    the model's), and what ``train()`` logs goes to the yielded logger. Everything is put back on
    exit (the actor's gradients cleared)."""
    saved = {
        name: getattr(model, name, None)
        for name in ("replay_buffer", "ent_coef_optimizer", "_logger", "_n_updates", "tau")
    }
    if tau is not None:
        model.tau = float(tau)
    actor_optimizer = model.actor.optimizer
    logger = Logger(folder=None, output_formats=[])
    model.replay_buffer = demonstrations
    model._logger = logger
    model.actor.optimizer = _inert()
    if saved["ent_coef_optimizer"] is not None:
        model.ent_coef_optimizer = _inert()
    try:
        yield logger
    finally:
        model.actor.optimizer = actor_optimizer
        for name, value in saved.items():
            if value is None and name == "_logger":
                del model._logger
            else:
                setattr(model, name, value)
        for parameter in model.actor.parameters():
            parameter.grad = None
        if getattr(model, "log_ent_coef", None) is not None:
            model.log_ent_coef.grad = None


def fit_critic(model: Any, demonstrations: ReplayBuffer, gradient_steps: int, tau: float | None = None) -> float:
    """Policy evaluation of the clone on the demonstrations, with the algorithm's own ``train()``.

    Each target update moves the target networks ``tau`` of the way, so ``gradient_steps`` steps
    make about ``gradient_steps * tau / target_interval`` Bellman backups (``target_interval``:
    TD3's ``policy_delay``, 2; SAC's ``target_update_interval``, 1), and the values reach about
    ``1 - gamma ** backups`` of the clone's. At SB3's 0.005, 10,000 steps give SAC 50 backups
    (0.39 of the values at ``gamma=0.99``) and TD3 25 (0.22): measured on the seed-0 clones,
    the mean ``Q`` of the evaluation episodes' steps was 310 against a discounted return of 739 on
    HalfCheetah SAC, 87 against 440 on Walker2d TD3.

    :param tau: the target networks' soft update coefficient while fitting (the model's ``tau``
        is put back after); None: the model's
    :return: the critic loss of the last 1,000 steps (mean)
    """
    loss = math.nan
    with _policy_evaluation(model, demonstrations, tau) as logger:
        done = 0
        while done < gradient_steps:
            chunk = min(1000, gradient_steps - done)
            model.train(gradient_steps=chunk, batch_size=model.batch_size)
            loss = float(logger.name_to_value.get("train/critic_loss", math.nan))
            done += chunk
    return loss


class _StepHook:
    """A step pre-hook on one optimizer, the only one of this module there (see :func:`_remove_hook`)."""

    def _install(self, optimizer: th.optim.Optimizer) -> None:
        _remove_hook(optimizer)  # a second preparation replaces the first, it does not stack on it
        self.optimizer = optimizer
        self.handle = optimizer.register_step_pre_hook(self)
        _HOOKS[optimizer] = self

    def __call__(self, optimizer: th.optim.Optimizer, args: Any, kwargs: Any) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        """Take the hook off the optimizer."""
        self.handle.remove()
        if _HOOKS.get(self.optimizer) is self:
            del _HOOKS[self.optimizer]


class ActorHook(_StepHook):
    """Holds an off-policy actor still for its first ``actor_delay`` updates (the critic learns
    from the clone's own online data first), and adds to its gradient

    - TD3+BC's behaviour-cloning term: ``weight(progress) * mean|Q(s, a)| * bc_loss(s, a)`` on a
      batch ``(s, a)`` of demonstrations, ``bc_loss`` the one :func:`~sb3_expert.pretrain` used;
    - a pull towards the clone: ``anchor * mean|Q(s, c(s))| * mse(actor(s), c(s))`` on a batch of
      states ``s`` from the replay buffer (demonstrations and online data), ``c`` a frozen copy of
      the actor taken here and the actions deterministic. The demonstrations alone tie the actor
      down on the expert's states only; online, the critic's action-gradient is least right on
      the states the clone drifts to, and this holds the actor there too.

    While held, the actor's optimizer steps at a learning rate of 0 on the full gradient (these
    terms included): nothing moves, but Adam's moment estimates are warm when the actor is let go.
    From empty moments, Adam's first steps move every weight by about the whole learning rate
    whatever its gradient, which is what a clone let go at once suffers.

    It is a step pre-hook on the actor's optimizer (gone after ``save``/``load``; :meth:`remove`
    takes it off).

    :param model: the off-policy model
    :param demonstrations: an SB3 replay buffer holding the demonstrations
    :param actor_delay: actor updates at a learning rate of 0, counted from now
    :param weight: a number, decayed linearly to 0 over ``decay`` actor updates after the delay, or an
        SB3 schedule of ``learn()``'s remaining progress (1 to 0), or None for no BC term
    :param decay: actor updates over which a number ``weight`` decays
    :param anchor: weight of the pull towards the clone (see above); None or 0: none
    :param actor_lr: cap on the actor optimizer's learning rate (set on each step, after SB3's
        schedule has set it); None: the model's own
    """

    def __init__(
        self,
        model: Any,
        demonstrations: ReplayBuffer,
        actor_delay: int,
        weight: float | Schedule | None,
        decay: int = BC_DECAY,
        anchor: float | None = ANCHOR_WEIGHT,
        actor_lr: float | None = ACTOR_LR,
    ) -> None:
        self.model, self.demonstrations = model, demonstrations
        self.actor_lr = actor_lr
        self.until = model._n_updates + int(actor_delay)
        self.weight, self.decay = weight, int(decay)
        self.anchor = float(anchor or 0.0)
        self.clone = _frozen_copy(model) if self.anchor else None
        self.bc = loss_for(model.policy)
        self._install(model.actor.optimizer)

    def __call__(self, optimizer: th.optim.Optimizer, args: Any, kwargs: Any) -> None:
        held = self.model._n_updates < self.until
        for group in optimizer.param_groups:
            if held:  # the step runs at rate 0: Adam's moments learn the gradients, nothing moves
                group["lr"] = 0.0
            elif self.actor_lr is not None:
                group["lr"] = min(group["lr"], self.actor_lr)
        if self.clone is not None:
            self._anchor()
        if self.weight is None:
            return
        if callable(self.weight):
            weight = float(self.weight(self.model._current_progress_remaining))
        else:
            after_hold = max(0, self.model._n_updates - self.until)
            weight = float(self.weight) * max(0.0, 1.0 - after_hold / self.decay)
        if weight <= 0.0:
            return
        data = self.demonstrations.sample(self.model.batch_size, env=self.model._vec_normalize_env)
        (
            weight * self._mean_abs_q(data.observations, data.actions) * self.bc.loss(data.observations, data.actions)
        ).backward()

    def _mean_abs_q(self, observations: Any, actions: th.Tensor) -> th.Tensor:
        """The critic's mean ``|Q|`` over a batch (all critics), no gradient: TD3+BC's scale."""
        with th.no_grad():
            q = self.model.critic(observations, actions)
            return (th.cat(q, dim=1) if isinstance(q, tuple) else q).abs().mean()

    def _anchor(self) -> None:
        """Add the pull towards the frozen clone on a batch of the replay buffer's states."""
        model = self.model
        observations = model.replay_buffer.sample(model.batch_size, env=model._vec_normalize_env).observations
        with th.no_grad():
            target = _deterministic(self.clone, observations)
        scale = self._mean_abs_q(observations, target)
        (self.anchor * scale * F.mse_loss(_deterministic(model.actor, observations), target)).backward()


def _frozen_copy(model: Any) -> th.nn.Module:
    """A copy of the model's actor that trains no more, built as SB3 builds TD3's target actor
    (``policy.make_actor`` then ``load_state_dict``)."""
    clone = model.policy.make_actor(features_extractor=None).to(model.device)
    clone.load_state_dict(model.actor.state_dict())
    return clone.requires_grad_(False).eval()


def _deterministic(actor: Any, observations: Any) -> th.Tensor:
    """An actor's deterministic action: SAC-like actors take ``deterministic=True``, TD3-like ones
    are deterministic already."""
    return actor(observations, deterministic=True) if stochastic_actor(actor) else actor(observations)


_HOOKS: weakref.WeakKeyDictionary[th.optim.Optimizer, _StepHook] = weakref.WeakKeyDictionary()
"""The hook installed on each actor (off-policy) or policy (PPO, A2C) optimizer."""


def _remove_hook(optimizer: th.optim.Optimizer) -> None:
    """Take off the :class:`ActorHook` or :class:`PolicyAnchor` an earlier preparation put on
    ``optimizer``, if any."""
    earlier = _HOOKS.get(optimizer)
    if earlier is not None:
        earlier.remove()


def check_finetuning_args(
    critic_steps: Any = CRITIC_STEPS,
    critic_tau: Any = CRITIC_TAU,
    ent_coef: Any = ENT_COEF,
    demo_fraction: Any = DEMO_FRACTION,
    bc_weight: Any = BC_WEIGHT,
    bc_decay: Any = BC_DECAY,
    actor_delay: Any = ACTOR_DELAY,
    learning_starts: Any = 0,
    anchor: Any = ANCHOR_WEIGHT,
    action_noise: Any = ACTION_NOISE,
    actor_std: Any = ACTOR_STD,
    actor_lr: Any = ACTOR_LR,
    target_entropy: Any = TARGET_ENTROPY,
    n_steps: Any = None,
) -> None:
    """Raise (naming the argument) for anything :func:`prepare_finetuning` would refuse."""
    if n_steps is not None:
        check_count("n_steps", n_steps)
        if demo_fraction is None:
            raise ArgumentTypeError(
                f"n_steps: given ({n_steps}) with demo_fraction=None; the n-step returns come from the "
                "DemoReplayBuffer that demo_fraction installs"
            )
    if isinstance(target_entropy, str):
        if target_entropy != "clone":
            raise ArgumentTypeError(f"target_entropy: expected a number, 'clone' or None, got {target_entropy!r}")
    elif target_entropy is not None:
        check_number("target_entropy", target_entropy, -math.inf)
    check_number("critic_steps", critic_steps, 0, whole=True)
    check_number("critic_tau", critic_tau, 1e-12, 1, allow_none=True)
    if critic_tau is not None and not critic_steps:
        raise ArgumentTypeError(
            f"critic_tau: given ({critic_tau}) with critic_steps=0; it sets the critic fit's target "
            "updates, and there is no fit"
        )
    check_number("bc_decay", bc_decay, 1, whole=True)
    check_number("actor_delay", actor_delay, 0, whole=True)
    check_number("learning_starts", learning_starts, 0, whole=True, allow_none=True)
    check_number("ent_coef", ent_coef, 0, allow_none=True)
    check_number("demo_fraction", demo_fraction, 0, 1, allow_none=True)
    if not callable(bc_weight):
        check_number("bc_weight", bc_weight, 0, allow_none=True)
    check_number("anchor", anchor, 0, allow_none=True)
    check_number("action_noise", action_noise, 0, allow_none=True)
    check_number("actor_std", actor_std, 1e-6, allow_none=True)
    check_number("actor_lr", actor_lr, 1e-12, allow_none=True)


def mixable(buffer: Any) -> bool:
    """Whether a :class:`~sb3_expert.bc.replay.DemoReplayBuffer` can stand for ``buffer``: SB3's plain
    and n-step buffers can, ``HerReplayBuffer`` or a user's own class cannot."""
    return type(buffer) in (ReplayBuffer, DictReplayBuffer, NStepReplayBuffer) or isinstance(buffer, DemoReplayBuffer)


def check_replay_buffer(model: Any, demo_fraction: Any, n_steps: Any = None) -> None:
    """Raise when ``demo_fraction`` asks for a demonstration buffer in place of one it cannot stand
    for, or ``n_steps`` for n-step returns the model's buffer cannot give."""
    buffer = model.replay_buffer
    if n_steps is not None:
        check_n_steps(
            n_steps, getattr(buffer, "gamma", model.gamma), buffer.observation_space, buffer.optimize_memory_usage
        )
    if demo_fraction is not None and not mixable(buffer):
        raise ArgumentTypeError(
            f"demo_fraction: the model's {type(buffer).__name__} cannot be replaced by a DemoReplayBuffer "
            "without losing what it does; pass demo_fraction=None to keep it"
        )


def prepare_finetuning(
    model: Any,
    dataset: Any,
    *,
    critic_steps: int = CRITIC_STEPS,
    critic_tau: float | None = CRITIC_TAU,
    ent_coef: float | None = ENT_COEF,
    demo_fraction: float | None = DEMO_FRACTION,
    bc_weight: float | Schedule | None = BC_WEIGHT,
    bc_decay: int = BC_DECAY,
    actor_delay: int = ACTOR_DELAY,
    learning_starts: int | None = 0,
    anchor: float | None = ANCHOR_WEIGHT,
    action_noise: float | None = ACTION_NOISE,
    actor_std: float | None = ACTOR_STD,
    actor_lr: float | None = ACTOR_LR,
    target_entropy: float | str | None = TARGET_ENTROPY,
    n_steps: int | None = None,
    logger: Any = None,
) -> ActorHook | None:
    """Make a behaviour-cloned off-policy model ready for ``learn()`` (see the module docstring).

    :param model: SAC, TD3, DDPG, TQC, CrossQ (any off-policy model with ``actor`` and ``critic``)
    :param dataset: the demonstrations (a path, :class:`Demonstrations` or in-memory ``ExpertDataset``)
    :param critic_steps: gradient steps of the critic fit; 0 skips it
    :param critic_tau: the target networks' soft update coefficient during the critic fit (see
        :func:`fit_critic`); None: the model's ``tau``
    :param ent_coef: starting entropy coefficient for ``ent_coef="auto"`` models; None keeps SB3's
    :param demo_fraction: install a :class:`~sb3_expert.bc.replay.DemoReplayBuffer` drawing this share
        of each batch from the demonstrations (the online data already in the buffer is kept); None
        keeps the model's buffer
    :param bc_weight: weight of the behaviour-cloning term (see :class:`ActorHook`); None: none
    :param actor_delay: actor updates skipped at the start of fine-tuning
    :param learning_starts: the model's new ``learning_starts``; None keeps it
    :param anchor: weight of the pull towards the clone (see :class:`ActorHook`); None: none
    :param action_noise: a deterministic actor (TD3, DDPG) with no ``action_noise`` gets SB3's
        ``NormalActionNoise`` of this standard deviation (in the scaled ``[-1, 1]`` action space);
        None leaves the model's noise as it is
    :param actor_std: a stochastic actor whose ``log_std`` is a layer (SAC, TQC, CrossQ without gSDE)
        gets that layer set to this constant standard deviation (zero weights, bias ``log(actor_std)``;
        ``learn()`` trains it from there); None leaves it
    :param actor_lr: cap on the actor's learning rate during ``learn()`` (see :class:`ActorHook`);
        None keeps the model's
    :param target_entropy: the entropy target of a model with ``ent_coef="auto"``: ``"clone"``, the
        clone's own entropy on the demonstrations (``-log pi`` of its sampled actions, after
        ``actor_std``), or a number; None keeps the model's (SB3's: minus the action dimension)
    :param n_steps: n-step returns for the critic from now on (its fit included), as SB3's
        ``NStepReplayBuffer`` computes them (discounted by the model's ``gamma``), for the online data
        and the demonstrations; the model's ``n_steps`` is set to it. None keeps the model's (1
        unless it was made with ``n_steps``)
    :param logger: an SB3 logger recording what changed (``pretrain/...``)
    :return: the :class:`ActorHook` installed, or None
    """
    if not can_finetune(model):
        raise ArgumentTypeError(
            f"model: expected an off-policy model with an actor and a critic (SAC, TD3...), got {type(model).__name__}"
        )
    check_finetuning_args(  # by keyword: a dozen arguments in a row are easy to misorder
        critic_steps=critic_steps,
        critic_tau=critic_tau,
        ent_coef=ent_coef,
        demo_fraction=demo_fraction,
        bc_weight=bc_weight,
        bc_decay=bc_decay,
        actor_delay=actor_delay,
        learning_starts=learning_starts,
        anchor=anchor,
        action_noise=action_noise,
        actor_std=actor_std,
        actor_lr=actor_lr,
        target_entropy=target_entropy,
        n_steps=n_steps,
    )
    check_replay_buffer(model, demo_fraction, n_steps)
    check_logger(logger)
    record: Callable[[str, Any], None] = logger.record if logger is not None else (lambda key, value: None)
    buffer = model.replay_buffer
    n_steps, gamma = _returns(model, n_steps)
    demonstrations = demonstration_buffer(
        dataset, buffer.observation_space, buffer.action_space, model.device, n_steps, gamma
    )
    if n_steps != getattr(model, "n_steps", 1) or n_steps > 1:
        model.n_steps = int(n_steps)
        record("pretrain/n_steps", int(n_steps))
    if ent_coef is not None and getattr(model, "log_ent_coef", None) is not None:
        with th.no_grad():
            model.log_ent_coef.fill_(math.log(max(float(ent_coef), 1e-8)))
        model.ent_coef_optimizer.state.clear()
        record("pretrain/ent_coef", float(ent_coef))
    log_std = getattr(model.actor, "log_std", None)
    if actor_std is not None and isinstance(log_std, th.nn.Linear):
        with th.no_grad():
            log_std.weight.zero_()
            log_std.bias.fill_(math.log(float(actor_std)))
        record("pretrain/actor_std", float(actor_std))
    if target_entropy is not None and getattr(model, "log_ent_coef", None) is not None:
        if isinstance(target_entropy, str):  # "clone", the only string the check lets through
            target_entropy = _clone_entropy(model, demonstrations)
        model.target_entropy = float(target_entropy)
        record("pretrain/target_entropy", float(target_entropy))
    if critic_steps:  # after the spread is set: SAC's targets sample the clone's next actions
        record("pretrain/critic_loss", fit_critic(model, demonstrations, int(critic_steps), critic_tau))
        record("pretrain/critic_steps", int(critic_steps))
        record("pretrain/critic_tau", float(model.tau if critic_tau is None else critic_tau))
    if learning_starts is not None:
        model.learning_starts = int(learning_starts)
        record("pretrain/learning_starts", int(learning_starts))
    if action_noise is not None and not stochastic_actor(model.actor) and model.action_noise is None:
        n_actions = int(np.prod(model.action_space.shape))
        model.action_noise = NormalActionNoise(np.zeros(n_actions), float(action_noise) * np.ones(n_actions))
        record("pretrain/action_noise", float(action_noise))
    if demo_fraction is not None:
        mixing = demo_buffer_class(buffer.observation_space)(
            buffer.buffer_size,
            buffer.observation_space,
            buffer.action_space,
            device=buffer.device,
            n_envs=buffer.n_envs,
            optimize_memory_usage=buffer.optimize_memory_usage,
            handle_timeout_termination=buffer.handle_timeout_termination,
            demonstrations=demonstrations,
            demo_fraction=float(demo_fraction),
            n_steps=n_steps,
            gamma=gamma,
        )
        _copy_online(buffer, mixing)
        model.replay_buffer = mixing
        record("pretrain/demo_fraction", float(demo_fraction))
    if bc_weight is None and not actor_delay and not anchor and actor_lr is None:
        _remove_hook(model.actor.optimizer)
        return None
    if bc_weight is not None:
        record("pretrain/bc_weight", repr(bc_weight) if callable(bc_weight) else float(bc_weight))
    if anchor:
        record("pretrain/anchor", float(anchor))
    if actor_lr is not None:
        record("pretrain/actor_lr", float(actor_lr))
    record("pretrain/actor_delay", int(actor_delay))
    return ActorHook(model, demonstrations, int(actor_delay), bc_weight, int(bc_decay), anchor, actor_lr)


def _returns(model: Any, n_steps: int | None) -> tuple[int, float]:
    """The n-step returns' ``n_steps`` and ``gamma`` for the critic fit and the mixing buffer: those
    asked for (checked by :func:`check_replay_buffer`), or the buffer's own (SB3's
    ``NStepReplayBuffer``; 1 for its one-step buffers)."""
    buffer = model.replay_buffer
    return getattr(buffer, "n_steps", 1) if n_steps is None else n_steps, getattr(buffer, "gamma", model.gamma)


def _clone_entropy(model: Any, demonstrations: ReplayBuffer) -> float:
    """The stochastic clone's entropy on the demonstrations: ``-log pi(a|s)`` of its own sampled
    actions, what SAC's entropy tuning compares with its target. The actor runs in evaluation mode,
    so that batch-norm statistics (CrossQ's) are read, not updated."""
    data = demonstrations.sample(min(demonstrations.size(), 10_000), env=model._vec_normalize_env)
    training = model.actor.training
    model.actor.set_training_mode(False)
    try:
        with th.no_grad():
            return -float(model.actor.action_log_prob(data.observations)[1].mean())
    finally:
        model.actor.set_training_mode(training)


def _copy_online(source: Any, target: Any) -> None:
    """The online data of ``source`` into ``target`` (same size and spaces): the filled rows only."""
    n = source.size()
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        value = getattr(source, name, None)  # next_observations is None with optimize_memory_usage
        if isinstance(value, dict):
            for key, leaf in value.items():
                getattr(target, name)[key][:n] = leaf[:n]
        elif isinstance(value, np.ndarray):
            getattr(target, name)[:n] = value[:n]
    target.pos, target.full = source.pos, source.full


POLICY_ANCHOR = 10.0
"""Weight of the pull of a PPO/A2C clone's mean action towards the frozen clone's (squared distance in
the action space's units, beside PPO's loss on normalised advantages). Chosen on PPO (see
:class:`PolicyAnchor`); A2C gets the same, not measured."""
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


class PolicyAnchor(_StepHook):
    """Adds ``anchor * mse(mean(s), clone(s))`` to the gradient of an on-policy model's every optimizer
    step, ``s`` a batch of the states in its rollout buffer, ``mean`` the policy's deterministic action
    and ``clone`` that of a frozen copy of the policy taken here.

    It is a step pre-hook on ``model.policy.optimizer`` (gone after ``save``/``load``; :meth:`remove`
    takes it off); PPO clips its own gradient before the step, so the pull is not clipped.

    A PPO clone of a MuJoCo expert is destroyed by ``learn()`` as an off-policy one is, for another
    reason: behaviour cloning fits the Gaussian's spread to the clone's error, so its standard deviation
    ends small (0.048 on the rl-zoo HalfCheetah expert's data), and PPO's optimizer (Adam) moves each
    weight by about its learning rate per step, whatever that spread. At that spread one update's mean shift is
    worth a KL divergence of 4 to 360 between successive policies (PPO's ``approx_kl``) and 85-99% of
    the samples leave the clipping range. Measured with
    ``benchmarks/bench_finetune.py`` (PPO 256x256, seeds 0-2, 10 evaluation episodes per point): the
    HalfCheetah clones (8,214 on average) end at -212 after 20,000 steps, the Walker2d ones (3,990) at 62.

    So :func:`~sb3_expert.pretrain` ties such a clone to itself (:func:`prepare_policy_gradient`):
    this hook adds ``anchor`` times the squared distance between the policy's deterministic action
    (the Gaussian's mean) and a frozen copy of the clone's, on a batch of the states of the rollout
    being trained on (the model's own online states; the demonstrations play no part). PPO's update then
    moves the mean where the advantages say only as far as that pull lets it. Measured on the
    HalfCheetah clone above, seed 0 (10 evaluation episodes every 2,000 steps, lowest point / 20k
    point over the clone): pull 10: 0.83 / 0.90, with KL 0.01-0.02 per update; 30: 0.78 / 0.99; 100:
    0.85 / 0.85; PPO's own ``target_kl`` (early stopping) of 0.02 instead: 0.74 / 0.87, both: 0.80 /
    0.92; a spread reset to 0.3 or 0.1 alone: collapse (0.05, 0.02 at 20k). With the benchmark, seeds
    0-2: pull 10: HalfCheetah 0.89 / 1.01, Walker2d 0.78 / 0.83; pull 100: 0.86 / 0.86 and 0.81 / 0.96,
    a tie within the noise (even at 100, where an update's KL is 0.001-0.015, a seed's 10-episode
    score moves by 10-50% between points: a Walker2d episode more or less that falls), so 10 stays.
    With 30 evaluation episodes per point, pull 10: HalfCheetah 0.94 / 1.03, Walker2d 0.90 / 0.96 (every
    point at least 0.9 of the clone).

    Discrete actions (CartPole's clone keeps 500 through 20,000 steps as it is), recurrent policies and
    TRPO (whose actor steps are its own line search under a KL bound, not its optimizer's) are left alone.

    :param model: PPO or A2C (see :func:`can_anchor`)
    :param anchor: the pull's weight
    :param seed: seed of the batches' draw (None: from the OS)
    """

    def __init__(self, model: Any, anchor: float, seed: int | None = None) -> None:
        self.model, self.anchor = model, float(anchor)
        policy = model.policy
        with th.random.fork_rng(devices=[]):  # its initialisation, overwritten below, leaves the global RNG alone
            self.clone = type(policy)(**policy._get_constructor_parameters()).to(policy.device)  # as SB3's load does
        self.clone.load_state_dict(policy.state_dict())
        self.clone.requires_grad_(False).set_training_mode(False)
        self.rng = np.random.default_rng(seed)
        self._install(policy.optimizer)

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


def check_policy_gradient_args(anchor: Any = POLICY_ANCHOR) -> None:
    """Raise (naming the argument) for anything :func:`prepare_policy_gradient` would refuse."""
    if anchor is not None:
        check_number("anchor", anchor, 0)


def prepare_policy_gradient(
    model: Any, *, anchor: float | None = POLICY_ANCHOR, seed: int | None = None, logger: Any = None
) -> PolicyAnchor | None:
    """Make a behaviour-cloned PPO or A2C with Box actions ready for ``learn()`` (see
    :class:`PolicyAnchor`): install a :class:`PolicyAnchor` of weight ``anchor`` (None or 0: none, and an earlier
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
            f"got {type(model).__name__} with {getattr(model, 'action_space', None)}"
        )
    check_policy_gradient_args(anchor=anchor)
    check_logger(logger)
    _remove_hook(model.policy.optimizer)
    if not anchor:
        return None
    if logger is not None:
        logger.record("pretrain/anchor", float(anchor))
    return PolicyAnchor(model, float(anchor), seed)
