"""Checks of the arguments every entry point shares (counts, ``seed``, ``verbose``, on/off flags), so that
each refuses them alike: this library's error, naming the argument, before anything changes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from sb3_expert.errors import ArgumentTypeError, ArgumentValueError

__all__ = ["check_count", "check_flags", "check_integers", "check_path"]


def check_count(name: str, value: Any, low: int = 1, *, allow_none: bool = False) -> None:
    """``value`` an integer (not a bool) >= ``low``, or None when allowed.

    :raises ArgumentValueError: naming ``name``, what was expected and what was given
    """
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        expected = f"{'None or ' if allow_none else ''}an integer >= {low}"
        raise ArgumentValueError(f"{name}: expected {expected}, got {value!r}")


def check_integers(**values: Any) -> None:
    """Each value None or an integer (not a bool), as SB3 takes ``seed`` and ``verbose``.

    :raises ArgumentTypeError: naming the first argument that is not
    """
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise ArgumentTypeError(f"{name}: expected None or an integer, got {type(value).__name__} {value!r}")


def check_flags(**values: Any) -> None:
    """Each value True or False (a string such as ``"no"`` would otherwise count as True).

    :raises ArgumentTypeError: naming the first argument that is not
    """
    for name, value in values.items():
        if not isinstance(value, (bool, np.bool_)):
            raise ArgumentTypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")


def check_path(name: str, value: Any) -> None:
    """``value`` a path (``str`` or ``os.PathLike``), as ``open`` takes it.

    :raises ArgumentTypeError: naming ``name`` and the type given
    """
    if not isinstance(value, (str, os.PathLike)):
        raise ArgumentTypeError(f"{name}: expected a path (str or os.PathLike), got {type(value).__name__}")
