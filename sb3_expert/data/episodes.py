"""Runs of steps and the episodes they finish, as the recorders hand them on: :class:`Steps`,
:class:`Episodes`, and :func:`close_unfinished` for steps no finished episode accounts for (a
recording stopped, or a writer killed, mid-episode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypeVar

import numpy as np

from sb3_expert.data.obs import ObsArray, concat, set_row, take

__all__ = ["Episodes", "Steps", "close_unfinished", "concat_parts"]


class Steps(NamedTuple):
    """Consecutive steps: the observation each action was chosen on, the action, the reward, whether
    the step starts an episode, and recorded ``info`` keys (one array each)."""

    obs: ObsArray
    actions: np.ndarray
    rewards: np.ndarray
    starts: np.ndarray
    infos: dict[str, np.ndarray]


class Episodes(NamedTuple):
    """Finished episodes: return, length, how each ended, and the observation that followed its last
    step."""

    returns: np.ndarray
    lengths: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: ObsArray


Part = TypeVar("Part", Steps, Episodes)


def concat_parts(parts: Sequence[Part]) -> Part:
    """``parts`` (all :class:`Steps` or all :class:`Episodes`) joined, field by field."""
    if len(parts) == 1:
        return parts[0]
    return type(parts[0])(*(concat([part[i] for part in parts]) for i in range(len(parts[0]))))


def close_unfinished(
    starts: np.ndarray, rewards: np.ndarray, obs: ObsArray, pending_final_obs: ObsArray | None
) -> Episodes:
    """Episodes for steps that no finished episode accounts for (a writer stopped mid-episode).

    Each is truncated; its final observation is its last one, except the newest episode's, which is
    ``pending_final_obs`` (one observation, without a leading axis) when known.
    """
    starts = starts.copy()
    starts[0] = True
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, len(starts)))
    returns = np.add.reduceat(rewards, first)
    last_rows = first + lengths - 1
    final = take(obs, last_rows)
    if pending_final_obs is not None:
        set_row(final, -1, pending_final_obs)
    ends = np.zeros(len(lengths), np.bool_)
    return Episodes(returns, lengths.astype(np.int64), ends, ~ends, final)
