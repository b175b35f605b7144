"""Demonstrations in SB3 replay buffers: ``fill_replay_buffer()``, and :class:`DemoReplayBuffer`,
which keeps them apart from the online data and samples a fixed share of every batch from them.

Both store a demonstration as SB3 stores a transition of its own: observations raw (a VecNormalize
normalises at sampling time), Box actions scaled to ``[-1, 1]`` (``policy.scale_action``, what
``_store_transition`` keeps), ``done`` at every episode end and ``TimeLimit.truncated`` timeouts for
episodes that were truncated rather than terminated, so that a buffer with
``handle_timeout_termination`` (SB3's default) bootstraps through them. Image observations are
stored channels first when the buffer's space is (as under ``VecTransposeImage``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import VecNormalize, VecTransposeImage

from sb3_expert.arguments import check_count, check_number
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.io import as_demonstrations
from sb3_expert.data.obs import ObsArray, take
from sb3_expert.data.spaces import check_action_space, check_spaces_match
from sb3_expert.errors import ArgumentTypeError, ArgumentValueError, EmptyDatasetError, SpaceMismatchError

__all__ = ["DEMO_FRACTION", "DemoReplayBuffer", "DictDemoReplayBuffer", "demo_buffer_class", "fill_replay_buffer"]

DEMO_FRACTION = 0.5
"""Share of each batch that :class:`DemoReplayBuffer` draws from the demonstrations (RLPD's
symmetric sampling)."""


class BufferRows(NamedTuple):
    """Demonstration transitions as an SB3 replay buffer stores them (one row per transition)."""

    obs: ObsArray
    next_obs: ObsArray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    timeouts: np.ndarray


def _transposed(space: spaces.Space) -> spaces.Space:
    """``space`` with its images channels first, as ``VecTransposeImage`` shows them."""
    if isinstance(space, spaces.Dict):
        return spaces.Dict({key: _transposed(leaf) for key, leaf in space.spaces.items()})
    if isinstance(space, spaces.Box) and is_image_space(space, check_channels=False):
        return VecTransposeImage.transpose_space(space)
    return space


def _channels_first(obs: ObsArray, observation_space: spaces.Space) -> ObsArray:
    """Move image channels first where the buffer's space has them first and the data last."""

    def one(array: np.ndarray, space: spaces.Space) -> np.ndarray:
        if array.ndim == 4 and array.shape[1:] != space.shape and np.moveaxis(array, -1, 1).shape[1:] == space.shape:
            return np.moveaxis(array, -1, 1)
        return array

    if isinstance(obs, dict):
        assert isinstance(observation_space, spaces.Dict)
        return {key: one(value, observation_space[key]) for key, value in obs.items()}
    return one(obs, observation_space)


def buffer_rows(demos: Demonstrations, observation_space: spaces.Space, action_space: spaces.Space) -> BufferRows:
    """``demos`` as replay-buffer rows for a buffer over these spaces.

    Without ``final_obs`` (SB2 files), the last step of a truncated episode has no known next
    observation: it is left out (terminated episodes need none).

    :raises EmptyDatasetError: when no transition is left
    :raises SpaceMismatchError: when the spaces do not fit
    """
    what = "the replay buffer"
    try:
        check_spaces_match(observation_space, demos.observation_space, name="observation_space", what=what)
    except SpaceMismatchError:  # images channels last in the data, channels first in the buffer
        check_spaces_match(observation_space, _transposed(demos.observation_space), name="observation_space", what=what)
    inferred = bool(demos.metadata.get("spaces_inferred"))
    check_action_space(action_space, demos.action_space, inferred=inferred, what=what)
    rows = demos.transitions(known_only=True)
    if not len(rows.actions):
        raise EmptyDatasetError("dataset: expected at least one transition with a known next observation, got none")
    obs, next_obs = (_channels_first(o, observation_space) for o in (rows.obs, rows.next_obs))
    actions = rows.actions
    if isinstance(action_space, spaces.Box):  # as BasePolicy.scale_action, on the clipped action
        low, high = action_space.low, action_space.high
        actions = 2.0 * ((np.clip(actions, low, high) - low) / (high - low)) - 1.0
    return BufferRows(
        obs, next_obs, actions, rows.rewards, rows.terminated | rows.truncated, rows.truncated & ~rows.terminated
    )


def fill_replay_buffer(model: OffPolicyAlgorithm, dataset: Any) -> int:
    """Add every transition of ``dataset`` to ``model.replay_buffer``, as SB3 itself would store it.

    Transitions go in rows of ``model.n_envs`` (the buffer's columns), in order; when their number
    is not a multiple of ``n_envs``, the last row is padded with the first transitions again (a
    partly filled row would be sampled with garbage in it). To keep demonstrations from being
    overwritten by online data and to sample them at a fixed rate, use :class:`DemoReplayBuffer`.

    :param model: an off-policy algorithm (SAC, TD3, DDPG, DQN, TQC, QR-DQN) with its replay buffer set up
    :param dataset: an :class:`ExpertDataset`, a :class:`Demonstrations` or a ``.npz``/``.h5`` path
    :return: the number of demonstration transitions added (padding not counted)
    :raises TypeError: for an on-policy model
    :raises SpaceMismatchError: when the spaces do not fit the model's
    """
    if not isinstance(model, OffPolicyAlgorithm):
        raise ArgumentTypeError(
            f"model: expected an off-policy algorithm with a replay buffer, got {type(model).__name__}"
        )
    if model.replay_buffer is None:
        raise ArgumentValueError(
            "model.replay_buffer: expected a replay buffer (the model sets one up on creation), got None"
        )
    demos = as_demonstrations(dataset)
    if demos.n_steps == 0:
        raise EmptyDatasetError("dataset: expected at least one transition, got an empty dataset")
    buffer = model.replay_buffer
    rows = buffer_rows(demos, buffer.observation_space, buffer.action_space)
    n, n_envs = len(rows.actions), model.n_envs
    order = np.arange(-(-n // n_envs) * n_envs) % n  # pad the last row from the start
    for start in range(0, len(order), n_envs):
        idx = order[start : start + n_envs]
        buffer.add(
            take(rows.obs, idx),
            take(rows.next_obs, idx),
            rows.actions[idx],
            rows.rewards[idx],
            rows.dones[idx],
            [{"TimeLimit.truncated": bool(t)} for t in rows.timeouts[idx]],
        )
    return n


def check_n_steps(
    n_steps: Any, gamma: Any, observation_space: spaces.Space, optimize_memory_usage: bool = False
) -> None:
    """``n_steps`` and ``gamma`` as SB3's ``NStepReplayBuffer`` takes them, for this buffer.

    :raises ArgumentValueError: naming the argument, what was expected and what was given
    """
    check_count("n_steps", n_steps)
    check_number("gamma", gamma, 0.0, 1.0)
    if n_steps > 1 and isinstance(observation_space, spaces.Dict):
        raise ArgumentValueError(
            f"n_steps: SB3's n-step returns do not support Dict observations, got n_steps={n_steps}"
        )
    if n_steps > 1 and optimize_memory_usage:
        raise ArgumentValueError(
            f"n_steps: SB3's n-step returns do not support optimize_memory_usage=True, got n_steps={n_steps}"
        )


def demonstration_buffer(
    dataset: Any,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    device: th.device | str = "auto",
    n_steps: int = 1,
    gamma: float = 0.99,
) -> ReplayBuffer | DictReplayBuffer:
    """An SB3 replay buffer (one env column) holding exactly the transitions of ``dataset``, full;
    SB3's ``NStepReplayBuffer`` (returns over ``n_steps`` rewards discounted by ``gamma``) when
    ``n_steps > 1``."""
    check_n_steps(n_steps, gamma, observation_space)
    rows = buffer_rows(as_demonstrations(dataset, "demonstrations"), observation_space, action_space)
    n = len(rows.actions)
    buffer: ReplayBuffer | DictReplayBuffer
    if n_steps > 1:
        buffer = NStepReplayBuffer(n, observation_space, action_space, device=device, n_steps=n_steps, gamma=gamma)
    else:
        cls = DictReplayBuffer if isinstance(observation_space, spaces.Dict) else ReplayBuffer
        buffer = cls(n, observation_space, action_space, device=device, n_envs=1)  # type: ignore[arg-type]
    for field, value in (("observations", rows.obs), ("next_observations", rows.next_obs)):
        if isinstance(value, dict):
            for key, leaf in value.items():
                getattr(buffer, field)[key][:, 0] = leaf.reshape(getattr(buffer, field)[key][:, 0].shape)
        else:
            getattr(buffer, field)[:, 0] = value.reshape(getattr(buffer, field)[:, 0].shape)
    buffer.actions[:, 0] = rows.actions.reshape(buffer.actions[:, 0].shape)
    buffer.rewards[:, 0] = rows.rewards
    buffer.dones[:, 0] = rows.dones
    buffer.timeouts[:, 0] = rows.timeouts
    buffer.full, buffer.pos = True, 0
    return buffer


def _cat(parts: list[Any]) -> Any:
    if parts[0] is None:
        return None
    if isinstance(parts[0], dict):
        return {key: th.cat([p[key] for p in parts]) for key in parts[0]}
    return th.cat(parts)


class DemoReplayBuffer(ReplayBuffer):
    """SB3's ``ReplayBuffer`` for online data, plus demonstrations kept apart (never overwritten)
    and sampled at a fixed share of every batch (RLPD's symmetric sampling): ``demo_fraction`` of
    each batch (rounded to whole rows) from the demonstrations, the rest from the online data (all
    from the demonstrations while there is no online data yet).

    Use it as ``SAC(..., replay_buffer_class=DemoReplayBuffer, replay_buffer_kwargs=dict(
    demonstrations="demos.h5"))``, or let :func:`~sb3_expert.pretrain` install it. It pickles with
    its demonstrations, so ``save_replay_buffer`` / ``load_replay_buffer`` keep them.

    With ``n_steps > 1`` it samples as SB3's ``NStepReplayBuffer`` does (what ``SAC(..., n_steps=3)``
    sets up), online rows and demonstrations alike: the reward is the return over up to ``n_steps``
    steps discounted by ``gamma``, cut at an episode's end, and the batch's ``discounts`` say how far
    to discount the bootstrap.

    :param demonstrations: a path (``.npz``/``.h5``), a :class:`Demonstrations`, an in-memory
        :class:`ExpertDataset`, or an SB3 replay buffer already holding them (an ``NStepReplayBuffer``
        of the same ``n_steps`` and ``gamma`` when ``n_steps > 1``)
    :param demo_fraction: share of each batch from the demonstrations; 0.5 by default, as RLPD
    :param n_steps: steps of the n-step returns, as SB3's ``NStepReplayBuffer``; 1: one-step
        transitions, as SB3's ``ReplayBuffer``
    :param gamma: the discount of the n-step returns (the model's ``gamma``)
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        demonstrations: Any = None,
        demo_fraction: float = DEMO_FRACTION,
        n_steps: int = 1,
        gamma: float = 0.99,
    ) -> None:
        if demonstrations is None:
            raise ArgumentTypeError(
                "demonstrations: required (with replay_buffer_class=DemoReplayBuffer, pass "
                "replay_buffer_kwargs=dict(demonstrations=path_or_dataset))"
            )
        check_count("n_envs", n_envs)
        if (
            isinstance(demo_fraction, bool)
            or not isinstance(demo_fraction, (int, float))
            or not 0 <= demo_fraction <= 1
        ):
            raise ArgumentValueError(f"demo_fraction: expected a number in [0, 1], got {demo_fraction!r}")
        check_n_steps(n_steps, gamma, observation_space, optimize_memory_usage)
        if isinstance(demonstrations, ReplayBuffer) and (
            getattr(demonstrations, "n_steps", 1),
            getattr(demonstrations, "gamma", gamma),
        ) != (n_steps, gamma):
            raise ArgumentValueError(
                f"demonstrations: a {type(demonstrations).__name__} with n_steps="
                f"{getattr(demonstrations, 'n_steps', 1)}, gamma={getattr(demonstrations, 'gamma', None)}; "
                f"expected n_steps={n_steps}, gamma={gamma} as given here"
            )
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        self.demo_fraction = float(demo_fraction)
        self.n_steps, self.gamma = int(n_steps), float(gamma)
        if isinstance(demonstrations, ReplayBuffer):
            self.demonstrations = demonstrations
        else:
            self.demonstrations = demonstration_buffer(
                demonstrations, observation_space, action_space, self.device, self.n_steps, self.gamma
            )

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> Any:
        if self.n_steps == 1:
            return super()._get_samples(batch_inds, env)
        return _N_STEP_SAMPLES(self, batch_inds, env)

    def n_demo(self, batch_size: int) -> int:
        """How many of ``batch_size`` rows come from the demonstrations."""
        return batch_size if self.size() == 0 else round(batch_size * self.demo_fraction)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> Any:
        n_demo = self.n_demo(batch_size)
        parts = []
        if n_demo:
            parts.append(self.demonstrations.sample(n_demo, env))
        if batch_size - n_demo:
            parts.append(super().sample(batch_size - n_demo, env))
        if len(parts) == 1:
            return parts[0]
        return type(parts[0])(*(_cat(list(fields)) for fields in zip(*parts)))


_N_STEP_SAMPLES: Callable[..., Any] = NStepReplayBuffer._get_samples
"""SB3's n-step sampling: it reads only what every ``ReplayBuffer`` has, and ``n_steps``, ``gamma``."""


class DictDemoReplayBuffer(DemoReplayBuffer, DictReplayBuffer):
    """:class:`DemoReplayBuffer` for Dict observations (SB3's ``DictReplayBuffer`` underneath)."""


def demo_buffer_class(observation_space: spaces.Space) -> type[DemoReplayBuffer] | type[DictDemoReplayBuffer]:
    """The demonstration-mixing buffer class for an observation space."""
    return DictDemoReplayBuffer if isinstance(observation_space, spaces.Dict) else DemoReplayBuffer
