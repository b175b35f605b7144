"""An ensemble teacher for behaviour cloning with continuous actions.

A clone from a few expert episodes fails where it drifts off the demonstrations' states: there its
network's output is whatever its initialisation and batch order made it, and on MuJoCo one clone
in five stalls or falls where another goes on. The mean action of several clones trained alike
from different initialisations is steadier there, and a network trained to reproduce that mean on
the demonstrations' states *and* on states near them (Gaussian noise of each observation's
spread in the demonstrations, times a scale drawn per row between 0 and twice ``noise``) carries
it over into the model's own policy.

So, for a policy with Box actions on vector observations, :func:`~sb3_expert.pretrain` first trains
a :class:`Teacher`: ``size`` MLPs (SB3's ``create_mlp``: 256x256 ReLU, tanh output, as SAC's actor)
trained together (``torch.func``: one batched call for all of them; each on its own order of the
rows, in memory) with the policy's batch size, epochs and learning rate, on the squared error of
the actions scaled to ``[-1, 1]``, on observations standardised by the demonstrations' mean and
std. Then the policy trains with its own loss on every batch as recorded and with the noise
added (:data:`PERTURBED_COPIES` perturbed copies), the targets being the teacher's mean action on
all of them. The teacher is dropped afterwards: the model is as it was, only better trained.

Measured before this module was written, with 5 clones trained separately by ``pretrain`` as the
teacher (rl-zoo experts, 10 deterministic episodes, SAC clones, ``n_epochs=100``, 3 seeds x 10
evaluation episodes; normalised: random 0, expert 1; HalfCheetah-v5 / Walker2d-v5):

- single clones 0.79 / 0.78; the mean action of 5 clones 0.92 / 0.81;
- a SAC policy trained on that mean with noise 0.1: **0.97 / 0.89**; noise 0: 0.76 / 0.82 (the
  teacher's mean on the recorded states is the expert's action: nothing is passed on); noise 0.3:
  0.92 / 0.76; a single clone as the teacher, noise 0.1: 0.88 / 0.82;
- PPO 256x256 (its default tanh network) trained from the same teacher: 0.60 / 0.77, against
  0.06 / 0.42 cloned directly.

Members trained on the same batches (one order for all) were less diverse: HalfCheetah SAC 0.83,
against 0.92 with each member on its own order (``benchmarks/bench_clone_quality.py``, seeds 0-2).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from sb3_expert.bc.losses import BCLoss
from sb3_expert.bc.normalize import Standardize, fit_obs_statistics

__all__ = [
    "ENSEMBLE_NOISE",
    "ENSEMBLE_NOISE_GAUSSIAN",
    "ENSEMBLE_SIZE",
    "PERTURBED_COPIES",
    "Teacher",
    "default_noise",
    "teacher_skipped",
]

ENSEMBLE_SIZE = 5
"""Members of the teacher: 5 clones' mean scored 0.92 / 0.81 on HalfCheetah / Walker2d, against
0.79 / 0.78 for one; 3 members 0.86 (HalfCheetah) as teacher."""
ENSEMBLE_NOISE = 0.1
"""Mean noise on the states the policy learns the teacher's actions on, in units of each
observation's standard deviation in the demonstrations, for a policy whose actions come through a
tanh (SAC, TD3, DDPG, TQC, CrossQ); each perturbed row's scale is drawn uniformly between 0 and
twice it (:meth:`Teacher.perturb`). With one scale for every row: 0.1: 0.97 / 0.89; 0.3: 0.92 /
0.76; 0: 0.76 / 0.82 (one-off runs, above); in the library (``bench_clone_quality.py``, seeds 0-2),
0.2 gave SAC 0.84 / 0.86 and TD3 0.94 / 0.95 against 0.92 / 0.83 and 0.90 / 0.97 at 0.1. The scale
drawn per row gives SAC 0.90 / 0.95 and TD3 0.89 / 0.85 (same seeds; the Walker2d cells from a
script calling ``pretrain`` with the benchmark's data and evaluation, whose HalfCheetah cells
matched the benchmark's): a tie over the four cells (3.59 against 3.62) that lifts SAC's Walker2d
clones, the weakest cell, from 0.83. On seeds 3-5 (the same script): SAC 0.90 / 0.86, TD3 0.94 /
0.90."""
ENSEMBLE_NOISE_GAUSSIAN = 0.2
"""The same noise for a policy whose actions are a Gaussian's unbounded mean, which the
environment clips (PPO, A2C, TRPO; also ARS's policy without ``squash_output``, not measured).
Measured on PPO 256x256 (its tanh network, no tanh on the output), the default call otherwise
(``bench_clone_quality.py``, seeds 0-2, HalfCheetah / Walker2d): 0.82 (0.81 0.78 0.87) / 0.71
(0.60 0.99 0.54) at 0.2, against 0.41 / 0.73 at 0.1; at 0.3 (a script calling ``pretrain`` with
``ensemble_noise=0.3`` on the benchmark's data, seeds and evaluation), 0.83 (0.68 0.85 0.96) /
0.71 (0.36 0.83 0.93). Why that network needs the wider neighbourhood was not established: at
0.1 its error on the demonstrations' own actions was twice the SAC clone's (HalfCheetah, seed 0).
All of these with one scale for every row and one perturbed copy of each batch; with the scale
drawn per row (0 to 0.4) and :data:`PERTURBED_COPIES` copies, the benchmark gives 0.87
(0.95 0.85 0.82) / 0.89 (0.86 1.00 0.80) on seeds 0-2, but 0.80 (0.94 0.61 0.86) / 0.73 (0.86 0.42
0.92) on seeds 3-5. All of these with the plain likelihood and mujoco 3; with the loss free past the
bounds (:data:`~sb3_expert.bc.losses.BOUND_MARGIN`, mujoco 4.0.1), six seeds: 0.86 / 0.87."""
PERTURBED_COPIES = 2
"""Perturbed copies of each batch that the policy learns on beside the recorded one.

Gaussian policies (PPO, A2C, TRPO; PPO 256x256, HalfCheetah / Walker2d, the scale drawn per row):
0.87 / 0.89 on seeds 0-2 with two copies (``bench_clone_quality.py``), against 0.77 / (not taken)
with one; seeds 3-5 (a script calling ``pretrain`` with the benchmark's data and evaluation): 0.80 /
0.73 with two, 0.79 / 0.69 with one. Two copies at one fixed scale of 0.2 scored 0.68 / 0.76 on
seeds 0-2 (script); with ten teacher members instead of five, 0.81 / 0.75. Twice the policy's epochs
on the teacher (script, seeds 0-5): 0.85 / 0.81 against 0.84 / 0.81, not kept; the teacher itself
scores 0.91 / 0.88 on those seeds, so the gap is the tanh network's fit. Much of that fit went to
landing exactly on the experts' near-bound actions (0.98-0.999), which the environment's clipping
makes needless: with the loss free past the bounds (:data:`~sb3_expert.bc.losses.BOUND_MARGIN`) the
clones score 0.86 / 0.87 over six seeds.

Tanh actors (SAC, TD3, DDPG, TQC, CrossQ) learned on one copy until TD3's Walker2d clones, on
gymnasium 1.4.0 / mujoco 4.0.1, scored 0.83 over seeds 0-5 (0.66 0.94 0.86 0.92 0.67 0.93; seeds
0-2 from ``bench_clone_quality.py``, 3-5 from the same script): with two copies 0.90 (0.94 0.95 0.85
0.84 0.80 1.00); with one copy at one fixed noise scale of 0.1, 0.84 (0.93 0.63 1.00 0.93 0.85 0.70).
With two copies (benchmark on seeds 0-2, script on 3-5), HalfCheetah / Walker2d: SAC 0.94 (0.97 0.97
0.88 0.86 0.97 0.98) / 0.86 (0.91 0.93 1.00 0.75 0.57 1.00), TD3 0.93 (0.89 0.87 0.99 0.97 0.98
0.89) / 0.90; with one: SAC 0.97 (0.97 0.98 0.96, seeds 0-2) / 0.875 (0.94 0.72 1.00 0.93 0.96 0.70),
TD3 0.91 (0.97 0.79 0.97, seeds 0-2) / 0.83. So SAC is the same within its seeds' spread (a Walker2d
clone that falls in some of its 10 evaluation episodes moves a seed by 0.2-0.4), and TD3 loses its
clones that fall; one number serves every policy. The second copy adds about a tenth to a tanh
actor's time (about 170 s per MuJoCo clone on one core, two at a time, against 140-190 s)."""
NET_ARCH = (256, 256)


def teacher_skipped(bc: BCLoss, observation_space: spaces.Space, action_space: spaces.Space, transpose: bool) -> str:
    """Why a teacher cannot train for this policy and data ("" when it can)."""
    if bc.teacher_space is None:
        return f"{bc.name} has no continuous (Box) actions to regress"
    if not isinstance(action_space, spaces.Box) or not np.all(np.isfinite([action_space.low, action_space.high])):
        return f"the action space has no finite bounds, got {action_space}"
    if transpose or not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        return f"the observations are no vector (a 1-D Box), got {observation_space}"
    return ""


def default_noise(bc: BCLoss) -> float:
    """``ensemble_noise``'s default for the policy family ``bc``: :data:`ENSEMBLE_NOISE` when its
    targets are in ``[-1, 1]`` (its actions come through a tanh), else :data:`ENSEMBLE_NOISE_GAUSSIAN`."""
    return ENSEMBLE_NOISE if bc.teacher_space == "scaled" else ENSEMBLE_NOISE_GAUSSIAN


class Teacher:
    """``size`` MLPs trained together: observations (as the policy's batches give them) -> actions
    in ``[-1, 1]``; their mean labels states for the policy.

    :param batches: the training batches ``(obs, (targets, ...))`` (one pass fits the input statistics)
    :param bc: the policy's loss; its ``teacher_space`` says how its targets relate to ``[-1, 1]``
    :param observation_space: the observations' space (a 1-D Box)
    :param action_space: the policy's Box action space (bounds for targets in the env's units)
    :param size: number of members
    :param device: where they train
    :param seed: seed of their initialisation, which then leaves the global RNG as it was (None:
        drawn from the global RNG)
    """

    def __init__(
        self,
        batches: Iterable[tuple[Any, tuple[th.Tensor, ...]]],
        bc: BCLoss,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        size: int,
        device: th.device,
        seed: int | None,
    ) -> None:
        assert isinstance(observation_space, spaces.Box) and isinstance(action_space, spaces.Box)  # teacher_skipped
        self.size, self.in_env_units = size, bc.teacher_space == "env"
        self.low = th.as_tensor(action_space.low, dtype=th.float32, device=device)
        self.high = th.as_tensor(action_space.high, dtype=th.float32, device=device)
        stats = fit_obs_statistics(observation_space, (obs.cpu().numpy() for obs, _ in batches))[None]
        self.standardize = Standardize(stats.mean.shape, clip_obs=10.0, epsilon=1e-8)  # VecNormalize's
        self.standardize.set_statistics(stats)
        self.standardize.to(device)
        self.spread = th.as_tensor(np.sqrt(stats.var), dtype=th.float32, device=device)

        def build() -> list[nn.Module]:
            shape = (len(stats.mean), action_space.shape[0], list(NET_ARCH))
            return [nn.Sequential(*create_mlp(*shape, squash_output=True)) for _ in range(size)]

        if seed is None:  # drawn from the global RNG, as any network's initialisation
            members = build()
        else:
            with th.random.fork_rng(devices=[]):  # a seeded initialisation leaves the global RNG as it was
                th.manual_seed(seed)
                members = build()
        self.params, self.buffers = stack_module_state([m.to(device) for m in members])
        base = copy.deepcopy(members[0]).to("meta")

        def member(params: dict[str, th.Tensor], buffers: dict[str, th.Tensor], x: th.Tensor) -> th.Tensor:
            return functional_call(base, (params, buffers), (x,))

        self.members = vmap(member, in_dims=(0, 0, None))  # the same rows for every member
        self.members_each = vmap(member)  # rows (size, B, ...): each member its own

    def parameters(self) -> list[th.Tensor]:
        return list(self.params.values())

    def actions(self, obs: th.Tensor) -> th.Tensor:
        """``(size, B, action_dim)``: every member's action in ``[-1, 1]`` on ``obs`` ``(B, obs_dim)``,
        or each member's on its own rows, ``obs`` ``(size, B, obs_dim)``."""
        members = self.members_each if obs.ndim == 3 else self.members
        return members(self.params, self.buffers, self.standardize(obs.float()))

    def loss(self, obs: th.Tensor, targets: th.Tensor) -> th.Tensor:
        """The members' squared errors on the expert's ``targets`` (the policy's; ``(size, B, ...)`` with
        ``obs`` ``(size, B, ...)``), summed over members."""
        scaled = self.scaled(targets)
        return ((self.actions(obs) - scaled) ** 2).mean(dim=(1, 2)).sum()

    def scaled(self, targets: th.Tensor) -> th.Tensor:
        """The policy's targets as actions in ``[-1, 1]`` (clipped to the bounds)."""
        if self.in_env_units:
            targets = 2.0 * (targets - self.low) / (self.high - self.low) - 1.0
        return targets.clamp(-1.0, 1.0)

    def targets(self, obs: th.Tensor) -> th.Tensor:
        """The members' mean action on ``obs``, as the policy's targets (no gradient)."""
        with th.no_grad():
            action = self.actions(obs).mean(dim=0)
        if self.in_env_units:
            action = self.low + (action + 1.0) * 0.5 * (self.high - self.low)
        return action

    def perturb(self, obs: th.Tensor, noise: float, generator: th.Generator) -> th.Tensor:
        """``obs`` (float ``(B, obs_dim)``) plus Gaussian noise of each observation's spread times a
        scale drawn per row uniformly in ``[0, 2 * noise]`` (``noise`` on average): rows near the
        demonstrations and rows further off in every batch (see :data:`ENSEMBLE_NOISE`)."""
        scale = 2.0 * noise * th.rand((len(obs), 1), generator=generator, device=obs.device)
        return obs + scale * self.spread * th.randn(obs.shape, generator=generator, device=obs.device)
