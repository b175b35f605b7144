"""Steps and episodes beside the data model: :class:`Steps` and :class:`Episodes` as the recorders
hand them on, :func:`close_unfinished` for steps no finished episode accounts for (a recording
stopped, or a writer killed, mid-episode), and :func:`transitions`, the replay-buffer view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np

from sb3_expert.data.obs import ObsArray, concat, set_row, take
from sb3_expert.errors import DemonstrationError

if TYPE_CHECKING:
    from sb3_expert.data.demonstrations import Demonstrations

__all__ = ["Episodes", "Steps", "Transitions", "close_unfinished", "concat_parts", "transitions"]


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


class Transitions(NamedTuple):
    """Per-step transitions, as a replay buffer wants them (all arrays have leading axis N).

    ``next_obs`` is ``obs[t + 1]`` inside an episode and ``final_obs[e]`` on its last step;
    ``terminated`` / ``truncated`` are True only on the last step of an episode that ended so.
    """

    obs: ObsArray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: ObsArray
    terminated: np.ndarray
    truncated: np.ndarray


def transitions(demos: Demonstrations, *, known_only: bool = False) -> Transitions:
    """Per-step ``(obs, action, reward, next_obs, terminated, truncated)`` for replay buffers.

    Without ``final_obs`` (SB2 files) the last step of a terminated episode gets its own
    observation as ``next_obs`` (a terminal transition never bootstraps on it).

    :param known_only: leave out the last step of each truncated episode whose next observation
        is unknown (no ``final_obs``) instead of raising
    :raises DemonstrationError: when ``final_obs`` is unknown and an episode was truncated
        (its next observation matters and cannot be made up), unless ``known_only``
    """
    last = demos.episode_offsets[1:] - 1
    cut = demos.truncated & ~demos.terminated if demos.final_obs is None else np.zeros(demos.n_episodes, np.bool_)
    if cut.any() and not known_only:
        raise DemonstrationError(
            f"final_obs: unknown, but episode {int(np.flatnonzero(cut)[0])} was truncated and its "
            "next observation is needed; record with RecordDemonstrations to keep final_obs"
        )
    final = demos.final_obs

    def shift(obs: np.ndarray, final_part: np.ndarray | None) -> np.ndarray:
        nxt = np.empty_like(obs)
        nxt[:-1] = obs[1:]
        if len(obs):
            nxt[last] = obs[last] if final_part is None else final_part
        return nxt

    if isinstance(demos.obs, dict):
        next_obs: ObsArray = {
            key: shift(value, None if final is None else final[key]) for key, value in demos.obs.items()
        }
    else:
        next_obs = shift(demos.obs, final)  # type: ignore[arg-type]
    step_terminated = np.zeros(demos.n_steps, np.bool_)
    step_truncated = np.zeros(demos.n_steps, np.bool_)
    step_terminated[last] = demos.terminated
    step_truncated[last] = demos.truncated
    tr = Transitions(demos.obs, demos.actions, demos.rewards, next_obs, step_terminated, step_truncated)
    if not cut.any():
        return tr
    keep = np.ones(demos.n_steps, np.bool_)
    keep[last[cut]] = False
    obs, next_obs = (take(o, keep) for o in (tr.obs, tr.next_obs))
    return Transitions(obs, tr.actions[keep], tr.rewards[keep], next_obs, tr.terminated[keep], tr.truncated[keep])
