"""Observation standardisation inside the policy, fitted on demonstrations and saved with the model.

Behaviour cloning on raw MuJoCo observations fails: their scales differ by orders of magnitude
(positions ~1, joint velocities ~10), and a clone from 10 rl-zoo HalfCheetah episodes scores 0.13
of its expert, against 0.86 with the inputs standardised (see ``benchmarks/bench_clone_quality.py``).
VecNormalize would fix it, but then the clone only works inside that wrapper and its pickle.
Here the statistics live in the policy instead: :class:`NormalizedExtractor` wraps the policy's
own features extractor, standardises the vector observations (``(obs - mean) / sqrt(var + eps)``,
clipped to ``[-clip_obs, clip_obs]`` as VecNormalize does) and passes the rest on unchanged. The
mean and variance are buffers in the policy's ``state_dict``, and the model's ``policy_kwargs``
name the wrapper, so ``model.save()`` then a plain ``SAC.load()`` / ``PPO.load()`` rebuilds the
same policy with the same statistics: no extra wrapper or file. The statistics are fixed once
fitted (``learn()`` does not move them), so the clone and its fine-tuning see the same inputs.

Standardised: :class:`gymnasium.spaces.Box` observations and the Box leaves of a Dict that are not
images. Images are left to SB3's own scaling (``normalize_images``); Discrete, MultiDiscrete and
MultiBinary observations (one-hot or binary already) pass through.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from torch import nn

from sb3_expert.data.obs import ObsArray

__all__ = [
    "NormalizedExtractor",
    "fit_obs_statistics",
    "normalized_keys",
    "standardize_observations",
    "vec_normalizer",
]


def _vector_leaves(space: spaces.Space) -> dict[str | None, spaces.Box]:
    """The leaves of ``space`` that are standardised, by key (None for a space that is no Dict)."""
    leaves: dict[str | None, spaces.Space] = {None: space}
    if isinstance(space, spaces.Dict):
        leaves = {key: leaf for key, leaf in space.spaces.items()}
    return {
        key: leaf
        for key, leaf in leaves.items()
        if isinstance(leaf, spaces.Box) and not is_image_space(leaf, check_channels=False)
    }


def normalized_keys(space: spaces.Space) -> list[str | None]:
    """The leaves of ``space`` that are standardised: ``[None]`` for a vector Box, the keys of the
    vector Box leaves of a Dict, ``[]`` when there is nothing to standardise (images, discrete)."""
    return list(_vector_leaves(space))


class Standardize(nn.Module):
    """``(x - mean) / sqrt(var + epsilon)``, clipped; ``mean`` and ``var`` are saved buffers."""

    mean: th.Tensor
    var: th.Tensor

    def __init__(self, shape: tuple[int, ...], clip_obs: float, epsilon: float) -> None:
        super().__init__()
        self.register_buffer("mean", th.zeros(shape))
        self.register_buffer("var", th.ones(shape))
        self.clip_obs, self.epsilon = clip_obs, epsilon

    def set_statistics(self, statistics: RunningMeanStd) -> None:
        """Copy a fitted mean and variance into the buffers."""
        for name in ("mean", "var"):
            buffer = getattr(self, name)
            buffer.copy_(th.as_tensor(getattr(statistics, name), dtype=buffer.dtype))

    def forward(self, x: th.Tensor) -> th.Tensor:
        return th.clamp((x - self.mean) / th.sqrt(self.var + self.epsilon), -self.clip_obs, self.clip_obs)


def _slot(key: str | None) -> str:
    """A module name for a leaf (``nn.ModuleDict`` names may not contain dots)."""
    return "obs" if key is None else "obs_" + key.replace(".", "_")


class NormalizedExtractor(BaseFeaturesExtractor):
    """A features extractor that standardises vector observations, then runs the wrapped extractor.

    Used through ``policy_kwargs`` (which is how a saved model rebuilds it):
    ``features_extractor_class=NormalizedExtractor`` and ``features_extractor_kwargs=
    {"extractor_class": FlattenExtractor, "extractor_kwargs": {}}``. :func:`pretrain` installs it
    (and fits the statistics) by itself; the statistics start at mean 0, variance 1.

    :param observation_space: the policy's observation space
    :param extractor_class: the features extractor that receives the standardised observations
    :param extractor_kwargs: its keyword arguments
    :param clip_obs: standardised values are clipped to ``[-clip_obs, clip_obs]`` (VecNormalize's default)
    :param epsilon: added to the variance (VecNormalize's default)
    :param extractor: an existing extractor to wrap (keeping its weights) instead of building one
        from ``extractor_class``; how :func:`standardize_observations` wraps a model's policy
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        extractor_kwargs: dict[str, Any] | None = None,
        clip_obs: float = 10.0,
        epsilon: float = 1e-8,
        *,
        extractor: BaseFeaturesExtractor | None = None,
    ) -> None:
        if extractor is None:
            extractor = extractor_class(observation_space, **(extractor_kwargs or {}))
        super().__init__(observation_space, extractor.features_dim)
        self.extractor = extractor
        leaves = _vector_leaves(observation_space)
        self.keys = list(leaves)
        self.standardize = nn.ModuleDict(
            {_slot(key): Standardize(leaf.shape, clip_obs, epsilon) for key, leaf in leaves.items()}
        )

    def set_statistics(self, statistics: dict[str | None, RunningMeanStd]) -> None:
        """Copy fitted mean and variance (one :class:`RunningMeanStd` per leaf) into the buffers."""
        for key in self.keys:
            layer = self.standardize[_slot(key)]
            assert isinstance(layer, Standardize)
            layer.set_statistics(statistics[key])

    def normalize(self, obs: th.Tensor | dict[str, th.Tensor]) -> th.Tensor | dict[str, th.Tensor]:
        """The observations (already preprocessed by SB3) with the vector leaves standardised."""
        if isinstance(obs, dict):
            return {key: self.standardize[_slot(key)](x) if key in self.keys else x for key, x in obs.items()}
        return self.standardize[_slot(None)](obs) if self.keys else obs

    def forward(self, observations: Any) -> th.Tensor:
        return self.extractor(self.normalize(observations))


def fit_obs_statistics(space: spaces.Space, chunks: Iterable[ObsArray]) -> dict[str | None, RunningMeanStd]:
    """Mean and variance of the vector leaves of ``space`` over ``chunks`` of observations (arrays,
    or dicts of arrays, with a leading batch axis), with SB3's :class:`RunningMeanStd` (exact for
    one chunk, merged exactly across chunks)."""
    stats = {key: RunningMeanStd(shape=leaf.shape) for key, leaf in _vector_leaves(space).items()}
    for chunk in chunks:
        for key, rms in stats.items():
            rows = chunk[key] if isinstance(chunk, dict) and key is not None else chunk
            rms.update(np.asarray(rows, dtype=np.float64))
    return stats


def _wrapped(policy: nn.Module) -> list[NormalizedExtractor]:
    return [m for m in policy.modules() if isinstance(m, NormalizedExtractor)]


def standardize_observations(model: BaseAlgorithm, statistics: dict[str | None, RunningMeanStd]) -> bool:
    """Put a :class:`NormalizedExtractor` with ``statistics`` around every features extractor of
    ``model.policy`` (actor, critics, target networks; shared extractors stay shared), and record it
    in ``model.policy_kwargs`` so that ``save``/``load`` rebuild it. The wrapped extractors keep
    their weights (the optimizers' parameters are unchanged).

    A policy that is already standardised keeps its statistics (a second ``pretrain`` call must not
    move the inputs the network has learnt on).

    :return: whether the policy was wrapped now (False: already standardised, or nothing to do)
    """
    policy = model.policy
    if _wrapped(policy) or not normalized_keys(policy.observation_space):
        return False
    inner_kwargs = {
        "extractor_class": policy.features_extractor_class,
        "extractor_kwargs": dict(policy.features_extractor_kwargs),
    }
    wrappers: dict[int, NormalizedExtractor] = {}
    for parent in list(policy.modules()):
        for name, child in list(parent._modules.items()):  # not named_children(): it skips aliases
            if not isinstance(child, BaseFeaturesExtractor) or isinstance(parent, NormalizedExtractor):
                continue
            if id(child) not in wrappers:
                wrapper = NormalizedExtractor(policy.observation_space, extractor=child)
                wrapper.set_statistics(statistics)
                wrappers[id(child)] = wrapper.to(policy.device)
            setattr(parent, name, wrappers[id(child)])
    policy.features_extractor_class = NormalizedExtractor
    policy.features_extractor_kwargs = inner_kwargs
    model.policy_kwargs = {
        **model.policy_kwargs,
        "features_extractor_class": NormalizedExtractor,
        "features_extractor_kwargs": inner_kwargs,
    }
    return bool(wrappers)


def fresh_statistics(rms: Any) -> bool:
    """Whether VecNormalize statistics have seen no data yet."""
    return bool(np.all(np.asarray(rms.count) <= 1.0))


def vec_normalizer(model: BaseAlgorithm, observations: Iterable[ObsArray] = ()) -> Any:
    """The model's VecNormalize when it normalises observations, else None. Statistics still fresh
    (a model that has not trained) are first fitted to ``observations`` (chunks of demonstration
    observations, read once), so that the clone and a later ``learn()`` see observations
    normalised alike."""
    norm = model.get_vec_normalize_env()
    if norm is None or not norm.norm_obs:
        return None
    fresh = {
        key: rms
        for key, rms in (norm.obs_rms.items() if isinstance(norm.obs_rms, dict) else [(None, norm.obs_rms)])
        if fresh_statistics(rms)
    }
    for chunk in observations if fresh else ():
        for key, rms in fresh.items():
            rms.update(np.asarray(chunk[key] if isinstance(chunk, dict) and key is not None else chunk))
    return norm
