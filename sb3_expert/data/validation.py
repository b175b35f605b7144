"""Checks of demonstration arrays against their spaces, shared by the data model and the writers.

Each raises :class:`~sb3_expert.errors.DemonstrationError` naming the field, what was expected,
what it got and, for values, the first bad row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_expert.data.obs import ObsArray
from sb3_expert.data.spaces import step_layout
from sb3_expert.errors import DemonstrationError, IndexOutOfRangeError

__all__ = [
    "arrays_equal",
    "bool_vector",
    "check_finite",
    "check_infos",
    "check_leaf",
    "check_obs",
    "check_range",
    "float_vector",
    "step_indices",
]


def arrays_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(arrays_equal(a[k], b[k]) for k in a)
        )
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=np.issubdtype(a.dtype, np.floating)))


def check_finite(name: str, array: np.ndarray, *, offset: int = 0, where: str = "step") -> None:
    """Every row of a float ``array`` must be finite; the error names the first bad row (``offset + i``).

    :raises DemonstrationError: naming the field, the value and the row
    """
    if array.size == 0:
        return
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DemonstrationError(
            f"{name}: expected finite values, got {array[i].tolist()} at {where} {offset + i} ({int(bad.sum())} in all)"
        )


def check_range(name: str, array: np.ndarray, space: spaces.Space, *, offset: int = 0) -> None:
    """Discrete-family values must lie in the space, floats must be finite (vectorised; Box bounds
    are not enforced: environments clip). The error names the first bad row (``offset + i``).

    :raises DemonstrationError: naming the field, the space, the value and the row
    """
    if array.size == 0:
        return
    rows = array.reshape(len(array), -1)
    if isinstance(space, spaces.Discrete):
        low, high = np.int64(space.start), np.int64(space.start + space.n - 1)
    elif isinstance(space, spaces.MultiDiscrete):
        low, high = space.start.reshape(-1), (space.start + space.nvec - 1).reshape(-1)
    elif isinstance(space, spaces.MultiBinary):
        low, high = np.int64(0), np.int64(1)
    elif np.issubdtype(array.dtype, np.floating):
        check_finite(name, array, offset=offset)
        return
    else:
        return
    bad = ((rows < low) | (rows > high)).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DemonstrationError(
            f"{name}: expected values in [{np.asarray(low).tolist()}, {np.asarray(high).tolist()}] for {space}, "
            f"got {array[i].tolist()} at step {offset + i} ({int(bad.sum())} step(s))"
        )


def check_leaf(name: str, array: Any, space: spaces.Space, length: int) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise DemonstrationError(f"{name}: expected a numpy array, got {type(array).__name__}")
    shape, dtype = step_layout(space)
    if array.shape != (length, *shape):
        raise DemonstrationError(
            f"{name}: expected shape {(length, *shape)} ({length} rows of {space}), got {array.shape}"
        )
    if array.dtype != dtype:
        raise DemonstrationError(
            f"{name}: expected dtype {dtype} (the dtype of {space}), got {array.dtype}; "
            f"convert it with .astype(np.{dtype.name})"
        )
    check_range(name, array, space)
    return array


def check_obs(name: str, obs: Any, space: spaces.Space, length: int) -> ObsArray:
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, Mapping):
            raise DemonstrationError(f"{name}: expected a dict of arrays for {space}, got {type(obs).__name__}")
        if set(obs) != set(space.spaces):
            raise DemonstrationError(
                f"{name}: expected the keys {sorted(space.spaces)} of the Dict observation space, got {sorted(obs)}"
            )
        return {key: check_leaf(f"{name}[{key!r}]", obs[key], sub, length) for key, sub in space.spaces.items()}
    if isinstance(obs, Mapping):
        raise DemonstrationError(f"{name}: got a dict, but the observation space is not a Dict: {space}")
    return check_leaf(name, obs, space, length)


def check_infos(infos: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    out = {}
    for key, value in infos.items():
        arr = np.asarray(value)
        if arr.ndim < 1 or len(arr) != n:
            raise DemonstrationError(f"infos[{key!r}]: expected {n} rows, got shape {arr.shape}")
        out[str(key)] = arr
    return out


def bool_vector(name: str, value: Any, length: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (length,):
        raise DemonstrationError(f"{name}: expected shape ({length},), got {arr.shape}")
    if arr.dtype != np.bool_:
        if not (np.issubdtype(arr.dtype, np.integer) and np.isin(arr, (0, 1)).all()):
            raise DemonstrationError(f"{name}: expected booleans, got dtype {arr.dtype}")
        arr = arr.astype(np.bool_)
    return arr


def float_vector(name: str, value: Any, length: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (length,):
        raise DemonstrationError(f"{name}: expected shape ({length},), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DemonstrationError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    check_finite(name, arr, where="index")
    return arr


def step_indices(indices: Sequence[int] | np.ndarray, n_steps: int) -> np.ndarray:
    """``indices`` as a flat int64 array, each in ``[0, n_steps)`` (negative ones are refused, not
    counted from the end).

    :raises IndexOutOfRangeError: naming the range and the extremes given
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n_steps):
        raise IndexOutOfRangeError(f"indices: expected values in [0, {n_steps}), got {idx.min()}..{idx.max()}")
    return idx
