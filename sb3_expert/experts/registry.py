"""A typed, lazy registry of expert loaders: ``policy_registry`` and ``load_policy``, as in ``imitation``.

A loader takes the VecEnv first, then its own keyword arguments, and returns an SB3 policy::

    def my_policy_loader(venv, some_param: int) -> policies.BasePolicy: ...
    policy_registry.register("my-policy", my_policy_loader)
    load_policy("my-policy", venv, some_param=42)

Built-in loaders are registered by dotted path and imported on first use, so importing
``sb3_expert`` imports neither sb3-contrib nor huggingface_hub.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv

from sb3_expert.arguments import check_call
from sb3_expert.errors import ArgumentTypeError, ExpertLoaderError

__all__ = ["ALGORITHMS", "ExpertLoaderError", "PolicyLoaderFn", "Registry", "load_policy", "policy_registry"]

T = TypeVar("T")


class PolicyLoaderFn(Protocol):
    """``loader(venv, **kwargs) -> BasePolicy``."""

    def __call__(self, venv: VecEnv, **kwargs: Any) -> BasePolicy: ...


class _Indirect(NamedTuple):
    """A value to import when first looked up: ``module:attribute``, called with ``args`` if any."""

    path: str
    args: tuple[Any, ...]


class Registry(Generic[T]):
    """Names to values, registered once each; values may be given as ``"module:attribute"`` and are
    then imported when first looked up."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T | _Indirect] = {}

    def register(
        self, key: str, value: T | None = None, *, indirect: str | None = None, args: tuple[Any, ...] = ()
    ) -> None:
        """Register ``value`` (or the dotted path ``indirect``) under ``key``. An ``indirect`` value
        given ``args`` is a factory, called with them when first looked up.

        :raises ExpertLoaderError: when ``key`` is taken
        """
        if not isinstance(key, str) or not key:
            raise ArgumentTypeError(f"key: expected a non-empty string, got {key!r}")
        if (value is None) == (indirect is None):
            raise ArgumentTypeError("register: expected exactly one of value and indirect")
        if args and indirect is None:
            raise ArgumentTypeError("args: only an indirect value (a factory) takes args")
        if key in self._entries:
            raise ExpertLoaderError(f"{self.what} {key!r} is already registered; pick another name")
        if indirect is not None:
            self._entries[key] = _Indirect(indirect, tuple(args))
        elif value is not None:
            self._entries[key] = value

    def get(self, key: str) -> T:
        """The value under ``key`` (imported on first use).

        :raises ExpertLoaderError: for an unknown key, listing the known ones
        """
        if key not in self._entries:
            raise ExpertLoaderError(f"unknown {self.what} {key!r}; known: {', '.join(sorted(self._entries))}")
        value = self._entries[key]
        if isinstance(value, _Indirect):
            module, _, attribute = value.path.partition(":")
            found = getattr(importlib.import_module(module), attribute)
            value = found(*value.args) if value.args else found
            self._entries[key] = value
        return value

    def keys(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())


policy_registry: Registry[PolicyLoaderFn | Callable[..., BasePolicy]] = Registry("policy type")
"""The registry of expert types: ``ppo``, ``sac``, ..., ``ppo-huggingface``, ..., ``random``, ``zero``."""

ALGORITHMS = {
    **{name.lower(): ("stable_baselines3", name) for name in ("PPO", "A2C", "SAC", "TD3", "DDPG", "DQN")},
    **{name.lower(): ("sb3_contrib", name) for name in ("TQC", "QRDQN", "TRPO", "ARS", "RecurrentPPO", "MaskablePPO")},
}
"""The algorithms whose saved models load as experts: name -> (package, class). The one list: the
expert types ``<name>`` (a file) and ``<name>-huggingface`` (the Hub) are registered from it."""

for _algo in ALGORITHMS:
    policy_registry.register(_algo, indirect="sb3_expert.experts.sb3:file_loader", args=(_algo,))
    policy_registry.register(
        f"{_algo}-huggingface", indirect="sb3_expert.experts.huggingface:hub_loader", args=(_algo,)
    )
policy_registry.register("random", indirect="sb3_expert.experts.sb3:load_random")
policy_registry.register("zero", indirect="sb3_expert.experts.sb3:load_zero")


def load_policy(policy_type: str, venv: VecEnv, **loader_kwargs: Any) -> BasePolicy:
    """Load an expert policy of ``policy_type`` for ``venv``; ``imitation``'s signature.

    :param policy_type: a registered name (``policy_registry.keys()``)
    :param venv: the environment the expert will act in (its spaces are used to load old models)
    :param loader_kwargs: the loader's arguments (``path=...``; ``env_name=...`` for the Hub)
    :return: a policy whose ``predict`` acts on the environment's raw observations
    :raises ExpertLoaderError: for an unknown type, listing the known ones
    :raises ArgumentTypeError: for arguments the type's loader does not take, naming its signature
    """
    loader = policy_registry.get(policy_type)
    check_call(f"load_policy({policy_type!r})", loader, venv, **loader_kwargs)
    return loader(venv, **loader_kwargs)
