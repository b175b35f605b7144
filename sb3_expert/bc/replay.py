"""``fill_replay_buffer()``: demonstrations into an off-policy model's replay buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_expert.bc.pretrain import _as_dataset, check_dataset_spaces
from sb3_expert.data.demonstrations import Demonstrations, ObsArray
from sb3_expert.errors import EmptyDatasetError

__all__ = ["fill_replay_buffer"]


def _rows(obs: ObsArray, sl: np.ndarray, transpose: bool) -> ObsArray:
    def one(array: np.ndarray) -> np.ndarray:
        part = array[sl]
        return np.moveaxis(part, -1, -3) if transpose and part.ndim == 4 else part

    return {k: one(v) for k, v in obs.items()} if isinstance(obs, dict) else one(obs)


def fill_replay_buffer(model: OffPolicyAlgorithm, dataset: Any) -> int:
    """Add every transition of ``dataset`` to ``model.replay_buffer``, as SB3 itself would store it.

    ``next_obs`` is the next step's observation inside an episode and ``final_obs`` at its end;
    ``done`` is set at every episode end, and episodes that were truncated (not terminated) are
    marked ``TimeLimit.truncated`` so that a buffer with ``handle_timeout_termination`` bootstraps
    through them. Observations are stored raw (the buffer normalises at sampling time under
    VecNormalize); Box actions are stored scaled to ``[-1, 1]``, as ``_store_transition`` does.
    Transitions go in rows of ``model.n_envs`` (the buffer's columns), in order; when their number
    is not a multiple of ``n_envs``, the last row is padded with the first transitions again (a
    partly filled row would be sampled with garbage in it).

    :param model: an off-policy algorithm (SAC, TD3, DDPG, DQN, TQC, QR-DQN) with its replay buffer set up
    :param dataset: an :class:`ExpertDataset`, a :class:`Demonstrations` or a ``.npz``/``.h5`` path
    :return: the number of demonstration transitions added (padding not counted)
    :raises TypeError: for an on-policy model
    :raises SpaceMismatchError: when the spaces do not fit the model's
    """
    if not isinstance(model, OffPolicyAlgorithm):
        raise TypeError(f"model: expected an off-policy algorithm with a replay buffer, got {type(model).__name__}")
    if model.replay_buffer is None:
        raise ValueError("model.replay_buffer: expected a replay buffer (the model sets one up on creation), got None")
    demos = (
        dataset
        if isinstance(dataset, Demonstrations)
        else _as_dataset(dataset, validate=False, seed=None).demonstrations
    )
    if demos is None:
        raise TypeError("dataset: an .h5 file read lazily cannot fill a replay buffer; load it with in_memory=True")
    if demos.n_steps == 0:
        raise EmptyDatasetError("dataset: expected at least one transition, got an empty dataset")
    data = _as_dataset(demos, validate=False, seed=None)
    transpose = check_dataset_spaces(model, data)
    tr = demos.transitions()
    actions = tr.actions
    if isinstance(model.action_space, spaces.Box):
        actions = model.policy.scale_action(np.clip(actions, model.action_space.low, model.action_space.high))
    dones = tr.terminated | tr.truncated
    timeouts = tr.truncated & ~tr.terminated
    n_envs = model.n_envs
    order = np.arange(-(-demos.n_steps // n_envs) * n_envs) % demos.n_steps  # pad the last row from the start
    buffer = model.replay_buffer
    for start in range(0, len(order), n_envs):
        rows = order[start : start + n_envs]
        buffer.add(
            _rows(tr.obs, rows, transpose),  # type: ignore[arg-type]
            _rows(tr.next_obs, rows, transpose),  # type: ignore[arg-type]
            actions[rows],
            tr.rewards[rows],
            dones[rows],
            [{"TimeLimit.truncated": bool(t)} for t in timeouts[rows]],
        )
    return demos.n_steps
