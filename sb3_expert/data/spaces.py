"""Gymnasium spaces: JSON serialisation, per-step array layout, image detection, inference.

Supported observation spaces: ``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary``
and a flat ``Dict`` of those (as SB3's ``MultiInputPolicy``). Supported action spaces:
the same four, without ``Dict``.

Each step of a space is stored as one row of an array whose layout is
:func:`step_layout`: ``Discrete`` as a scalar ``int64`` (the SB2 ``.npz`` writer adds
the ``(N, 1)`` column itself), the others with the space's own shape and dtype.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space

from sb3_expert.errors import SpaceMismatchError, UnsupportedSpaceError

__all__ = [
    "SUPPORTED_LEAF_SPACES",
    "check_given_spaces",
    "check_space",
    "check_spaces_match",
    "infer_space",
    "is_image_observation",
    "row_nbytes",
    "space_from_json",
    "space_to_json",
    "step_layout",
]

SUPPORTED_LEAF_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def _leaf_names() -> str:
    return ", ".join(cls.__name__ for cls in SUPPORTED_LEAF_SPACES)


def check_space(space: Any, *, name: str, allow_dict: bool) -> spaces.Space:
    """Check that ``space`` is a space this library can store.

    :param space: the space to check
    :param name: what to call it in an error message (``"observation_space"``...)
    :param allow_dict: whether a flat ``Dict`` of supported spaces is accepted
    :return: the space, unchanged
    :raises UnsupportedSpaceError: naming the space, its type and the supported ones
    """
    if allow_dict and isinstance(space, spaces.Dict):
        if not space.spaces:
            raise UnsupportedSpaceError(f"{name}: expected a Dict space with at least one key, got {space}")
        for key, sub in space.spaces.items():
            if not isinstance(key, str):
                raise UnsupportedSpaceError(f"{name}: Dict keys must be strings, got {key!r}")
            if not isinstance(sub, SUPPORTED_LEAF_SPACES):
                raise UnsupportedSpaceError(
                    f"{name}[{key!r}]: expected one of {_leaf_names()} (nested Dict or Tuple spaces are not "
                    f"supported, as in SB3's MultiInputPolicy), got {type(sub).__name__}"
                )
        return space
    if not isinstance(space, SUPPORTED_LEAF_SPACES):
        allowed = _leaf_names() + (" or a flat Dict of those" if allow_dict else "")
        raise UnsupportedSpaceError(f"{name}: expected one of {allowed}, got {type(space).__name__} ({space})")
    return space


def step_layout(space: spaces.Space) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one step of ``space`` as stored (``Discrete`` is a scalar).

    :param space: a supported leaf space (not ``Dict``)
    :return: ``(shape, dtype)``
    """
    if isinstance(space, spaces.Discrete):
        return (), np.dtype(space.dtype)
    assert space.shape is not None and space.dtype is not None, space
    return tuple(space.shape), np.dtype(space.dtype)


def row_nbytes(space: spaces.Space) -> int:
    """Bytes of one step of ``space`` as stored (all keys of a Dict)."""
    if isinstance(space, spaces.Dict):
        return sum(row_nbytes(sub) for sub in space.spaces.values())
    shape, dtype = step_layout(space)
    return max(1, int(np.prod(shape, dtype=np.int64))) * dtype.itemsize


def is_image_observation(space: spaces.Space) -> bool:
    """Whether ``space`` is an image as SB3 sees one (uint8 ``Box`` of 3 dims in [0, 255]).

    Channel order is not checked, so channel-first images (after ``VecTransposeImage``) count.
    """
    return isinstance(space, spaces.Box) and is_image_space(space, check_channels=False)


# ------------------------------------------------------------------ serialisation


def _bounds_to_json(bounds: np.ndarray) -> Any:
    """Box bounds as JSON: a single number when uniform; +-inf as strings (JSON has no inf)."""
    flat = bounds.reshape(-1)
    values = flat[:1] if flat.size and np.all(flat == flat[0]) else flat
    out = [v if np.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values.tolist()]
    return out[0] if len(out) == 1 else out


def _bounds_from_json(value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    values = value if isinstance(value, list) else [value]
    arr = np.array([float(v) for v in values], dtype=np.float64)
    if arr.size == 1:
        return np.full(shape, arr[0]).astype(dtype)
    return arr.reshape(shape).astype(dtype)


def _space_to_dict(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).str,
            "low": _bounds_to_json(space.low),
            "high": _bounds_to_json(space.high),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.tolist(),
            "dtype": np.dtype(space.dtype).str,
            "start": space.start.tolist(),
        }
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": int(n) if isinstance(n, (int, np.integer)) else [int(v) for v in n]}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: _space_to_dict(sub) for key, sub in space.spaces.items()}}
    raise UnsupportedSpaceError(f"cannot serialise a {type(space).__name__} space ({space})")


def _space_from_dict(data: dict[str, Any]) -> spaces.Space:
    kind = data.get("type")
    if kind == "Box":
        shape = tuple(int(s) for s in data["shape"])
        dtype = np.dtype(data["dtype"])
        low = _bounds_from_json(data["low"], shape, dtype)
        high = _bounds_from_json(data["high"], shape, dtype)
        return spaces.Box(low=low, high=high, shape=shape, dtype=dtype.type)
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    if kind == "MultiDiscrete":
        dtype = np.dtype(data.get("dtype", "<i8"))
        return spaces.MultiDiscrete(
            np.array(data["nvec"], dtype=dtype), dtype=dtype.type, start=np.array(data.get("start"), dtype=dtype)
        )
    if kind == "MultiBinary":
        n = data["n"]
        return spaces.MultiBinary(n if isinstance(n, int) else [int(v) for v in n])
    if kind == "Dict":
        return spaces.Dict({key: _space_from_dict(sub) for key, sub in data["spaces"].items()})
    raise UnsupportedSpaceError(f"unknown space type {kind!r} in serialised space {data}")


def space_to_json(space: spaces.Space) -> str:
    """Serialise a supported space to a JSON string (exact: bounds, dtypes, starts kept).

    >>> space_to_json(spaces.Discrete(2))
    '{"type": "Discrete", "n": 2, "start": 0}'
    """
    return json.dumps(_space_to_dict(space))


def space_from_json(text: str) -> spaces.Space:
    """Inverse of :func:`space_to_json`.

    :raises UnsupportedSpaceError: for a type this library does not know
    :raises ValueError: for text that is not JSON
    """
    return _space_from_dict(json.loads(text))


# ------------------------------------------------------------------ comparison and inference


def _leaf_matches(expected: spaces.Space, got: spaces.Space, *, exact_box: bool) -> bool:
    if type(expected) is not type(got):
        return False
    if isinstance(expected, spaces.Discrete):
        return bool(expected.n == got.n and expected.start == got.start)  # type: ignore[attr-defined]
    if isinstance(expected, spaces.MultiDiscrete) and isinstance(got, spaces.MultiDiscrete):
        same = np.array_equal(expected.nvec, got.nvec) and np.array_equal(expected.start, got.start)
        return bool(same and expected.dtype == got.dtype)
    if expected.shape != got.shape or expected.dtype != got.dtype:
        return False
    if exact_box and isinstance(expected, spaces.Box) and isinstance(got, spaces.Box):
        return bool(np.array_equal(expected.low, got.low) and np.array_equal(expected.high, got.high))
    return True


def check_spaces_match(
    expected: spaces.Space, got: spaces.Space, *, name: str, what: str, exact_box: bool = False
) -> None:
    """Raise :class:`SpaceMismatchError` when ``got`` cannot stand for ``expected``.

    Types, shapes, dtypes, ``Discrete.n`` and ``start``, ``MultiDiscrete.nvec`` and ``start`` must agree; ``Box`` bounds
    only with ``exact_box`` (SB2 files carry no bounds, so theirs are inferred as infinite).

    :param name: which space (``"observation_space"``)
    :param what: where ``expected`` came from (``"the model"``, ``"the environment"``)
    """
    ok = type(expected) is type(got)
    if ok and isinstance(expected, spaces.Dict):
        ok = set(expected.spaces) == set(got.spaces) and all(  # type: ignore[attr-defined]
            _leaf_matches(sub, got.spaces[key], exact_box=exact_box)  # type: ignore[attr-defined]
            for key, sub in expected.spaces.items()
        )
    elif ok:
        ok = _leaf_matches(expected, got, exact_box=exact_box)
    if not ok:
        raise SpaceMismatchError(f"{name}: the demonstrations have {got}, but {what} has {expected}")


def check_action_space(expected: spaces.Space, got: spaces.Space, *, inferred: bool, what: str) -> None:
    """:func:`check_spaces_match` for action spaces, lenient with a ``Discrete`` inferred from an SB2
    file (``inferred``): its ``n`` comes from the largest action seen, so any ``n`` up to the
    expected one fits."""
    if inferred and isinstance(expected, spaces.Discrete) and isinstance(got, spaces.Discrete):
        if got.n > expected.n:
            raise SpaceMismatchError(f"action_space: the demonstrations have {got}, but {what} has {expected}")
        return
    check_spaces_match(expected, got, name="action_space", what=what)


def infer_space(array: np.ndarray, *, name: str, discrete_column: bool = False) -> spaces.Space:
    """Guess a space from recorded data, for files that do not store their spaces (SB2's).

    Integer ``(N, 1)`` data with ``discrete_column`` becomes ``Discrete(max + 1)`` (how SB2 stores
    Discrete actions); uint8 data of 3 dims per step an image ``Box`` in [0, 255]; anything else
    an unbounded ``Box`` of the data's shape and dtype.

    :param array: the per-step data, shape ``(N, ...)``
    :param name: the field, for error messages
    :param discrete_column: read integer ``(N, 1)`` data as a ``Discrete`` space
    """
    if array.ndim < 1:
        raise SpaceMismatchError(f"{name}: expected an array with a leading step axis, got shape {array.shape}")
    if discrete_column and np.issubdtype(array.dtype, np.integer) and array.shape[1:] == (1,):
        high = int(array.max()) + 1 if array.size else 1
        return spaces.Discrete(max(high, 1))
    if array.dtype == np.uint8 and array.ndim == 4:
        return spaces.Box(low=0, high=255, shape=array.shape[1:], dtype=np.uint8)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise SpaceMismatchError(f"{name}: expected numeric data to infer a space from, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        return spaces.Box(low=info.min, high=info.max, shape=array.shape[1:], dtype=array.dtype.type)
    return spaces.Box(low=-np.inf, high=np.inf, shape=array.shape[1:], dtype=array.dtype.type)


def check_given_spaces(stored: Mapping[str, spaces.Space | None], **given: spaces.Space | None) -> None:
    """Spaces a caller passed (``observation_space=...``) against those a file stores (``stored``,
    by the same names; None where it stores none): each given must be a space and agree.

    :raises UnsupportedSpaceError: for a given value that is no supported space
    :raises SpaceMismatchError: naming the space, the file's and the argument's
    """
    for name, space in given.items():
        if space is not None:
            check_space(space, name=name, allow_dict=True)
            on_file = stored.get(name)
            if on_file is not None:
                check_spaces_match(space, on_file, name=name, what=f"the {name} argument")
