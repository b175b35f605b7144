"""What a DAgger run is set up with: the beta schedules (the probability, per round, that the
expert acts; ``imitation``'s), the expert's view of the environment, and checks of the arguments
and of a file to resume."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import ConstantSchedule, check_for_correct_spaces
from stable_baselines3.common.vec_env import VecEnv

from sb3_expert.arguments import check_count
from sb3_expert.data.hdf5 import HDF5Reader
from sb3_expert.errors import (
    ArgumentTypeError,
    ArgumentValueError,
    DemonstrationError,
    DemonstrationFileError,
    SpaceMismatchError,
)

__all__ = [
    "DEFAULT_RAMPDOWN",
    "ExponentialBetaSchedule",
    "LinearBetaSchedule",
    "as_beta_schedule",
    "check_env_fits",
    "check_pretrain_kwargs",
    "check_resumable",
    "expert_view_fn",
]

DEFAULT_RAMPDOWN = 4
"""Rounds of the default ``"linear"`` schedule (beta 1, 0.75, 0.5, 0.25, then 0)."""


class LinearBetaSchedule:
    """``beta`` falls linearly from 1 at round 0 to 0 at round ``rampdown_rounds`` (``imitation``'s).

    :param rampdown_rounds: rounds until the student acts alone
    """

    def __init__(self, rampdown_rounds: int) -> None:
        check_count("rampdown_rounds", rampdown_rounds)
        self.rampdown_rounds = int(rampdown_rounds)

    def __call__(self, round_: int) -> float:
        return min(1.0, max(0.0, (self.rampdown_rounds - round_) / self.rampdown_rounds))

    def __repr__(self) -> str:
        return f"LinearBetaSchedule({self.rampdown_rounds})"


class ExponentialBetaSchedule:
    """``beta = decay ** round`` (``imitation``'s).

    :param decay: in (0, 1)
    """

    def __init__(self, decay: float) -> None:
        if isinstance(decay, bool) or not isinstance(decay, (int, float, np.number)) or not 0.0 < decay < 1.0:
            raise ArgumentValueError(f"decay: expected a number in (0, 1), got {decay!r}")
        self.decay = float(decay)

    def __call__(self, round_: int) -> float:
        return self.decay**round_

    def __repr__(self) -> str:
        return f"ExponentialBetaSchedule({self.decay})"


def as_beta_schedule(value: Any) -> Callable[[int], float]:
    if value == "linear":
        return LinearBetaSchedule(DEFAULT_RAMPDOWN)
    if value == "exponential":
        return ExponentialBetaSchedule(0.5)
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        if not 0.0 <= value <= 1.0:
            raise ArgumentValueError(f"beta_schedule: expected a constant beta in [0, 1], got {value!r}")
        return ConstantSchedule(float(value))
    if callable(value):
        return value
    raise ArgumentValueError(
        "beta_schedule: expected 'linear', 'exponential', a constant in [0, 1] or a callable round -> beta, "
        f"got {value!r}"
    )


def expert_view_fn(expert_obs: Any) -> Callable[[Mapping[str, Any]], Any] | None:
    """``info -> the expert's observation`` for one sub-environment (None: the student's view)."""
    if expert_obs is None:
        return None
    if isinstance(expert_obs, str):
        key = expert_obs

        def from_info(info: Mapping[str, Any]) -> Any:
            if key not in info:
                raise DemonstrationError(
                    f"expert_obs: expected the key {key!r} in the step's info, got the keys {sorted(info)}"
                )
            return info[key]

        return from_info
    if callable(expert_obs):
        return expert_obs
    raise ArgumentTypeError(
        f"expert_obs: expected None, an info key or a callable info -> obs, got {type(expert_obs).__name__}"
    )


def check_resumable(path: str | os.PathLike[str], given_round_zero: bool) -> None:
    """Before the file is opened for writing: it must be a DAgger file, and holds its own round 0."""
    if not os.path.exists(path):
        return
    with HDF5Reader(path) as reader:
        if reader.n_steps == 0:
            return
        if "dagger_round" not in reader.info_keys:
            raise DemonstrationFileError(
                f"{path}: resume: expected a DAgger file (per-step 'dagger_round'), got infos {reader.info_keys}"
            )
    if given_round_zero:
        raise ArgumentValueError(
            f"demonstrations: {path} already holds its rounds, round 0 included; pass demonstrations=None to resume"
        )


def check_env_fits(model: BaseAlgorithm, env: Any, name: str) -> None:
    """``env`` (a VecEnv or a gymnasium env) has the model's spaces, once wrapped as SB3's ``set_env``
    wraps it (images transposed to channels first), checked with SB3's ``check_for_correct_spaces``.

    :raises ArgumentTypeError: when ``env`` is no environment
    :raises SpaceMismatchError: when its spaces are not the model's
    """
    if not isinstance(env, (VecEnv, gym.Env)):
        raise ArgumentTypeError(f"{name}: expected an SB3 VecEnv or a gymnasium env, got {type(env).__name__}")
    try:
        check_for_correct_spaces(model._wrap_env(env, verbose=0), model.observation_space, model.action_space)
    except ValueError as e:
        raise SpaceMismatchError(f"{name}: its spaces are not the model's: {e}") from e


def check_pretrain_kwargs(pretrain_kwargs: Any) -> None:
    """``pretrain_kwargs`` a dict of :func:`~sb3_expert.pretrain`'s arguments, none of those DAgger sets itself."""
    from sb3_expert.bc.pretrain import pretrain

    if not isinstance(pretrain_kwargs, (Mapping, type(None))):
        raise ArgumentTypeError(f"pretrain_kwargs: expected a dict, got {type(pretrain_kwargs).__name__}")
    kwargs = pretrain_kwargs or {}
    reserved = {"model", "dataset", "n_epochs", "seed", "logger", "val_interval"} & set(kwargs)
    if reserved:
        raise ArgumentValueError(f"pretrain_kwargs: {sorted(reserved)} are set by DAgger itself")
    unknown = set(kwargs) - set(inspect.signature(pretrain).parameters)
    if unknown:
        raise ArgumentValueError(f"pretrain_kwargs: {sorted(unknown)} are not arguments of pretrain")
    if "ensemble_noise" in kwargs and not kwargs.get("ensemble"):
        raise ArgumentValueError(
            "pretrain_kwargs: ensemble_noise without ensemble; DAgger's rounds train no teacher unless "
            "ensemble is given (e.g. ensemble=5)"
        )
