"""Checks of the arguments every entry point shares (counts, ``seed``, ``verbose``, on/off flags), so that
each refuses them alike: this library's error, naming the argument, before anything changes."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from sb3_expert.errors import ArgumentTypeError, ArgumentValueError

__all__ = ["check_call", "check_count", "check_flags", "check_integers", "check_logger", "check_number", "check_path"]


def check_count(name: str, value: Any, low: int = 1, *, allow_none: bool = False) -> None:
    """``value`` an integer (not a bool) >= ``low``, or None when allowed.

    :raises ArgumentValueError: naming ``name``, what was expected and what was given
    """
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        expected = f"{'None or ' if allow_none else ''}an integer >= {low}"
        raise ArgumentValueError(f"{name}: expected {expected}, got {value!r}")


def check_number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    whole: bool = False,
    allow_none: bool = False,
) -> None:
    """``value`` a finite number (not a bool) in ``[low, high]``, whole when asked, or None when
    allowed: NaN and infinities are no settings.

    :raises ArgumentTypeError: for a value that is no number
    :raises ArgumentValueError: for one out of range, not finite, or not whole when asked
    """
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        expected = f"{'None or ' if allow_none else ''}a number"
        raise ArgumentTypeError(f"{name}: expected {expected}, got {type(value).__name__}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ArgumentValueError(f"{name}: expected a finite number in [{low}, {high}], got {value!r}")
    if whole and int(value) != value:
        raise ArgumentValueError(f"{name}: expected a whole number, got {value!r}")


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


def check_call(what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """That ``function(*args, **kwargs)`` binds to its signature, before it is called: an argument
    it does not take, or one missing, is named with the signature (without annotations).

    :param what: the call as the user wrote it (``"load_policy('ppo')"``), for the message
    :raises ArgumentTypeError: when the arguments do not bind
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # no introspectable signature: let the call itself check
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as e:
        plain = signature.replace(
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
        raise ArgumentTypeError(f"{what}: {e}; it takes {plain}") from e


def check_logger(logger: Any) -> None:
    """``logger`` None or an SB3 ``Logger`` (a file name would fail at the first ``record``).

    :raises ArgumentTypeError: naming it
    """
    from stable_baselines3.common.logger import Logger

    if logger is not None and not isinstance(logger, Logger):
        raise ArgumentTypeError(f"logger: expected None or an SB3 Logger, got {type(logger).__name__}")
