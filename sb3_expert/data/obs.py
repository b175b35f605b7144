"""Observation batches as one array or, for ``Dict`` spaces, a dict of arrays: the one home for
mapping, indexing, concatenating and allocating them (as imitation's ``map_maybe_dict`` and
d3rlpy's ``dataset/utils.py``), built on ``gymnasium.vector.utils`` where it fits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import create_empty_array

__all__ = ["ObsArray", "allocate", "concat", "map_obs", "set_row", "take"]

ObsArray: TypeAlias = np.ndarray | dict[str, np.ndarray]
"""A batch of observations: one array, or one array per key of a ``Dict`` space."""


def map_obs(obs: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn`` applied to an observation batch, or to each of its arrays for Dict observations
    (arrays or tensors alike)."""
    return {key: fn(value) for key, value in obs.items()} if isinstance(obs, dict) else fn(obs)


def take(obs: Any, index: Any, *, copy: bool = False) -> Any:
    """``obs[index]`` of every array of ``obs``; ``copy`` makes basic slices independent of ``obs``."""
    if copy:
        return map_obs(obs, lambda value: value[index].copy())
    return map_obs(obs, lambda value: value[index])


def concat(parts: Sequence[Any]) -> Any:
    """The batches ``parts`` joined along the first axis (the keys of the first for Dict batches)."""
    if isinstance(parts[0], dict):
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)


def set_row(buffer: ObsArray, index: int, value: Any) -> None:
    """Write one observation ``value`` into row ``index`` of ``buffer``."""
    if isinstance(buffer, dict):
        for key, array in buffer.items():
            array[index] = value[key]
    else:
        buffer[index] = value


def allocate(space: spaces.Space, n: int) -> ObsArray:
    """A zeroed batch of ``n`` observations of ``space`` (``Discrete`` rows are scalars)."""
    out = create_empty_array(space, n, fn=np.zeros)
    return dict(out) if isinstance(out, dict) else np.asarray(out)
