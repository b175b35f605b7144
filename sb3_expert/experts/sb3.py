"""Loaders for saved SB3 / sb3-contrib models: a ``.zip``, a folder, an rl-baselines3-zoo run.

Models saved by older SB3 and ``gym`` versions load without ``gym`` installed: the spaces are
taken from the VecEnv (after checking the shapes the file records), learning-rate and clip-range
schedules are replaced (they only matter to train), and VecNormalize pickles that reference
``gym`` classes are read with ``gymnasium`` in their place.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.utils import ConstantSchedule, get_device
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sb3_expert.arguments import check_flags, check_path
from sb3_expert.errors import ArgumentTypeError, ArgumentValueError, SpaceMismatchError
from sb3_expert.experts.registry import ALGORITHMS, ExpertLoaderError
from sb3_expert.experts.safe_load import safe_custom_objects, safe_load_pickle

__all__ = [
    "ALGORITHMS",
    "ExpertModel",
    "HardCodedPolicy",
    "NormalizedPolicy",
    "algorithm_class",
    "check_load_args",
    "expert_policy",
    "find_model_files",
    "load_model",
    "load_vec_normalize",
    "model_output_path",
    "save_model",
]

VEC_NORMALIZE_NAMES = ("vec_normalize.pkl", "vecnormalize.pkl")
POLICY_MODULES = {
    # the module of a saved model's policy class -> the algorithms whose models have it
    "stable_baselines3.common.policies": ("ppo", "a2c", "trpo"),
    "stable_baselines3.sac.policies": ("sac",),
    "stable_baselines3.td3.policies": ("td3", "ddpg"),
    "stable_baselines3.dqn.policies": ("dqn",),
    "sb3_contrib.tqc.policies": ("tqc",),
    "sb3_contrib.qrdqn.policies": ("qrdqn",),
    "sb3_contrib.ars.policies": ("ars",),
    "sb3_contrib.common.recurrent.policies": ("recurrentppo",),
    "sb3_contrib.common.maskable.policies": ("maskableppo",),
}


class ExpertModel(NamedTuple):
    """A loaded algorithm and the VecNormalize statistics it was trained with (or None)."""

    model: BaseAlgorithm
    vec_normalize: VecNormalize | None


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """The class of ``algo`` (``"ppo"``, ``"tqc"``...), imported lazily.

    :raises ExpertLoaderError: for an unknown name; ImportError naming the extra for sb3-contrib
    """
    if not isinstance(algo, str) or algo not in ALGORITHMS:
        raise ExpertLoaderError(f"algo: unknown algorithm {algo!r}; known: {', '.join(ALGORITHMS)}")
    module, name = ALGORITHMS[algo]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ImportError(f"{name} needs sb3-contrib: pip install 'sb3-expert[contrib]'") from e


def check_load_args(venv: Any, device: Any = "auto", **flags: Any) -> None:
    """Refuse, naming the argument, what a loader cannot use: a ``venv`` without gymnasium spaces
    (None is allowed), a ``device`` torch does not know, a flag that is not a bool (a
    ``trust_remote_code="no"`` would otherwise count as the opt-in)."""
    if venv is not None and not all(
        isinstance(getattr(venv, name, None), spaces.Space) for name in ("observation_space", "action_space")
    ):
        raise ArgumentTypeError(
            f"venv: expected a VecEnv (or an env with gymnasium observation and action spaces), "
            f"got {type(venv).__name__}"
        )
    try:
        get_device(device)
    except (RuntimeError, TypeError) as e:
        raise ArgumentValueError(f"device: expected 'auto', 'cpu', 'cuda' or a torch.device, got {device!r}") from e
    check_flags(**flags)


def find_model_files(path: str | os.PathLike[str], algo: str | None = None) -> tuple[Path, Path | None]:
    """The model ``.zip`` and the VecNormalize pickle (if any) that ``path`` points to.

    ``path`` may be a ``.zip``; a folder holding ``model.zip`` or a single ``.zip`` (huggingface-sb3's
    ``<algo>-<EnvId>.zip``); or an rl-baselines3-zoo run folder (``<EnvId>.zip`` beside
    ``<EnvId>/vecnormalize.pkl``). Statistics are looked for beside the model (``vec_normalize.pkl``)
    and in the zoo's ``<EnvId>/`` folder.

    :raises ExpertLoaderError: naming the path and what was looked for
    """
    check_path("path", path)
    p = Path(path)
    if not p.exists():
        raise ExpertLoaderError(f"path: no such file or folder: {str(p)!r}")
    if p.is_dir():
        zips = sorted(p.glob("*.zip"))
        named = [z for z in zips if z.name == "model.zip" or (algo and z.stem.lower().startswith(f"{algo}-"))]
        if named:
            zips = named[:1]
        if len(zips) != 1:
            found = ", ".join(z.name for z in zips) or "none"
            raise ExpertLoaderError(
                f"path: expected a folder with model.zip, <algo>-<EnvId>.zip or one <EnvId>.zip (an rl-zoo run), "
                f"in {str(p)!r}; found .zip files: {found}"
            )
        p = zips[0]
    candidates = [p.parent / name for name in VEC_NORMALIZE_NAMES] + [
        p.parent / p.stem / n for n in VEC_NORMALIZE_NAMES
    ]
    return p, next((c for c in candidates if c.is_file()), None)


def _recorded_space_shape(data: dict[str, Any], key: str) -> tuple[Any, ...] | None:
    """The shape an SB3 ``data`` entry records for a space, without unpickling it."""
    entry = data.get(key)
    if not isinstance(entry, dict):
        return None
    shape = entry.get("_shape", entry.get("shape"))
    return None if shape is None else tuple(shape)


def _check_zip(path: Path, venv: VecEnv | None, algo: str) -> dict[str, Any]:
    """The zip's ``data`` entry (JSON, nothing unpickled), after checking that it is an SB3 model of
    ``algo`` whose spaces fit ``venv``."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "data" not in archive.namelist():
                raise ExpertLoaderError(f"{path}: not an SB3 model (a .zip without the 'data' entry SB3 writes)")
            data = json.loads(archive.read("data"))
    except zipfile.BadZipFile as e:
        raise ExpertLoaderError(f"{path}: not an SB3 model (not a .zip archive)") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExpertLoaderError(f"{path}: not an SB3 model (its 'data' entry is not JSON: {e})") from e
    if not isinstance(data, dict):
        raise ExpertLoaderError(f"{path}: not an SB3 model (its 'data' entry is not a JSON object)")
    policy = data.get("policy_class")
    module = policy.get("__module__") if isinstance(policy, dict) else None
    if module in POLICY_MODULES and algo not in POLICY_MODULES[module]:
        raise ExpertLoaderError(
            f"{path}: expected a {ALGORITHMS[algo][1]} model, got one whose policy comes from {module} "
            f"(a model of {' or '.join(a.upper() for a in POLICY_MODULES[module])}): load it as that type"
        )
    if venv is None:
        return data
    for key, space in (("observation_space", venv.observation_space), ("action_space", venv.action_space)):
        recorded = _recorded_space_shape(data, key)
        expected = () if isinstance(space, spaces.Discrete) else tuple(space.shape or ())
        if recorded is not None and recorded != expected:
            raise SpaceMismatchError(
                f"{key}: the model {str(path)!r} was trained with shape {recorded}, but the venv has {space}"
            )
    return data


class _GymToGymnasium(pickle.Unpickler):
    """Unpickle objects that reference ``gym`` classes, with ``gymnasium``'s in their place."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "gym" or module.startswith("gym."):
            module = "gymnasium" + module[3:]
        return super().find_class(module, name)


def load_vec_normalize(path: str | os.PathLike[str], venv: VecEnv, *, trust_remote_code: bool = False) -> VecNormalize:
    """Load VecNormalize statistics around ``venv``, in evaluation mode (statistics frozen, rewards raw).

    Pickles made with ``gym`` are read with ``gymnasium`` in its place; the spaces become ``venv``'s.
    The pickle is read with the allow-list of :mod:`sb3_expert.experts.safe_load` unless
    ``trust_remote_code=True``.

    :raises UnsafeModelError: when the pickle names something off the allow-list
    """
    check_path("vec_normalize_path", path)
    check_load_args(venv, trust_remote_code=trust_remote_code)
    try:
        if trust_remote_code:
            with open(path, "rb") as f:
                norm = _GymToGymnasium(f).load()
        else:
            norm = safe_load_pickle(path)
    except ExpertLoaderError:
        raise
    except Exception as e:  # a corrupt or foreign pickle fails in many ways: say which file
        raise ExpertLoaderError(f"{path}: not a readable VecNormalize pickle ({type(e).__name__}: {e})") from e
    if not isinstance(norm, VecNormalize):
        raise ExpertLoaderError(f"{path}: expected a pickled VecNormalize, got {type(norm).__name__}")
    stats_shape = np.shape(norm.obs_rms.mean) if not isinstance(norm.obs_rms, dict) else None
    if stats_shape is not None and stats_shape != venv.observation_space.shape:
        raise SpaceMismatchError(
            f"observation_space: the statistics in {str(path)!r} have shape {stats_shape}, "
            f"but the venv has {venv.observation_space}"
        )
    norm.observation_space, norm.action_space = venv.observation_space, venv.action_space
    norm.set_venv(venv)
    norm.training = False
    norm.norm_reward = False
    return norm


def load_model(
    algo: str,
    venv: VecEnv | None,
    path: str | os.PathLike[str],
    *,
    device: str = "auto",
    custom_objects: dict[str, Any] | None = None,
    vec_normalize_path: str | os.PathLike[str] | None = None,
    trust_remote_code: bool = False,
) -> ExpertModel:
    """Load a saved model (and its VecNormalize statistics) from a file, a folder or an rl-zoo run.

    :param algo: ``"ppo"``, ``"sac"``, ... (see :data:`ALGORITHMS`)
    :param venv: the environment; its spaces stand in for those pickled in old files
    :param path: see :func:`find_model_files`
    :param device: where the networks go
    :param custom_objects: more of SB3's ``custom_objects``
    :param vec_normalize_path: the statistics' pickle, when not beside the model
    :param trust_remote_code: unpickle the model's data and statistics as SB3 does, running whatever
        code they name; by default they go through the allow-list of
        :mod:`sb3_expert.experts.safe_load` (see there)
    :raises ExpertLoaderError: for a missing path, a folder without a model, a file that is not an SB3
        model, or a model of another algorithm
    :raises UnsafeModelError: when the file names something off the allow-list (without the opt-in)
    :raises SpaceMismatchError: when the model's spaces do not fit ``venv``
    :raises ArgumentTypeError: for a ``venv`` without spaces or a ``trust_remote_code`` that is not a bool
    """
    cls = algorithm_class(algo)
    check_load_args(venv, device, trust_remote_code=trust_remote_code)
    if vec_normalize_path is not None:
        check_path("vec_normalize_path", vec_normalize_path)
    zip_path, norm_path = find_model_files(path, algo)
    norm_path = Path(vec_normalize_path) if vec_normalize_path is not None else norm_path
    data = _check_zip(zip_path, venv, algo)
    zero = ConstantSchedule(0.0)
    objects: dict[str, Any] = {
        "lr_schedule": zero,
        "learning_rate": 0.0,
        "clip_range": zero,
        "clip_range_vf": None,
        "exploration_schedule": zero,
    }
    if venv is not None:
        objects.update(observation_space=venv.observation_space, action_space=venv.action_space)
    objects.update(custom_objects or {})
    if not trust_remote_code:
        objects = safe_custom_objects(str(zip_path), data, objects)
    try:
        model = cls.load(zip_path, env=None, device=device, custom_objects=objects)
    except (RuntimeError, KeyError, ValueError, pickle.UnpicklingError) as e:
        raise ExpertLoaderError(f"{zip_path}: could not load it as a {cls.__name__} model: {e}") from e
    norm = None
    if norm_path is not None and venv is not None:
        norm = load_vec_normalize(norm_path, venv, trust_remote_code=trust_remote_code)
    return ExpertModel(model, norm)


def model_output_path(path: str | os.PathLike[str], *, overwrite: bool, argument: str = "path") -> Path:
    """The file SB3's ``save(path)`` writes (``.zip`` appended to a name without a suffix), checked
    as :func:`~sb3_expert.data.paths.check_output_path` checks it: absent, or ``overwrite``.

    Checking ``path`` itself would miss that ``save("clone")`` replaces ``clone.zip``.
    """
    from sb3_expert.data.paths import check_output_path

    check_path(argument, path)
    p = Path(path)
    if p.suffix == "":
        p = p.with_name(p.name + ".zip")
    return check_output_path(p, overwrite=overwrite, argument=argument)


def save_model(model: BaseAlgorithm, path: Path) -> Path:
    """``model.save`` into ``path`` atomically (a temporary file, then one rename): a crash or a full
    disk leaves the file that was there whole. ``path`` as :func:`model_output_path` gives it."""
    from sb3_expert.data.paths import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        model.save(f)
    return path


class NormalizedPolicy(BasePolicy):
    """A policy that normalises raw observations with frozen VecNormalize statistics before acting.

    :param policy: the expert's policy, trained on normalised observations
    :param vec_normalize: its statistics
    """

    def __init__(self, policy: BasePolicy, vec_normalize: VecNormalize) -> None:
        super().__init__(policy.observation_space, policy.action_space, squash_output=policy.squash_output)
        self.policy = policy
        self.vec_normalize = vec_normalize

    def _predict(self, observation: Any, deterministic: bool = False) -> Any:
        return self.policy._predict(observation, deterministic)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        normalized = self.vec_normalize.normalize_obs(observation)
        return self.policy.predict(normalized, state, episode_start, deterministic)


class HardCodedPolicy(BasePolicy):
    """A policy with no network: ``self.act(n)`` actions for a batch of ``n`` observations; SB3's own
    ``BasePolicy.predict`` batches, reshapes and clips (as imitation's ``NonTrainablePolicy``)."""

    def __init__(self, venv: VecEnv) -> None:
        if not isinstance(venv, VecEnv):
            raise ExpertLoaderError(
                f"venv: the {type(self).__name__} expert acts in a VecEnv's spaces; expected an SB3 VecEnv "
                f"(e.g. make_vec_env(env_id)), got {type(venv).__name__}"
            )
        super().__init__(venv.observation_space, venv.action_space)

    def act(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def _predict(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        first = next(iter(observation.values())) if isinstance(observation, dict) else observation
        return th.as_tensor(self.act(len(first)))


class RandomPolicy(HardCodedPolicy):
    """Uniformly random actions from the action space."""

    def act(self, n: int) -> np.ndarray:
        return np.stack([self.action_space.sample() for _ in range(n)])


class ZeroPolicy(HardCodedPolicy):
    """All-zero actions (the space's lowest for spaces without zero)."""

    def act(self, n: int) -> np.ndarray:
        space = self.action_space
        zero = np.zeros(space.shape or (), dtype=space.dtype)
        if isinstance(space, spaces.Discrete):
            zero = np.asarray(space.start, dtype=space.dtype)
        return np.stack([zero] * n)


def load_random(venv: VecEnv) -> BasePolicy:
    """The ``random`` expert type."""
    return RandomPolicy(venv)


def load_zero(venv: VecEnv) -> BasePolicy:
    """The ``zero`` expert type."""
    return ZeroPolicy(venv)


def expert_policy(expert: ExpertModel, normalize: bool = True) -> BasePolicy:
    """The policy of a loaded expert, acting on raw observations (its VecNormalize statistics applied)."""
    model, norm = expert
    return NormalizedPolicy(model.policy, norm) if norm is not None and normalize and norm.norm_obs else model.policy


def file_loader(algo: str) -> Any:
    """The loader of the expert type ``algo``: a saved model from a file."""

    def load(
        venv: VecEnv,
        path: str | os.PathLike[str],
        *,
        device: str = "auto",
        normalize: bool = True,
        trust_remote_code: bool = False,
    ) -> BasePolicy:
        check_flags(normalize=normalize)
        return expert_policy(
            load_model(algo, venv, path, device=device, trust_remote_code=trust_remote_code), normalize
        )

    load.__name__ = load.__qualname__ = f"load_{algo}"
    load.__doc__ = (
        f"The ``{algo}`` expert type: a saved {ALGORITHMS[algo][1]} model from ``path`` (a .zip, a folder, an "
        "rl-zoo run), its VecNormalize statistics applied unless ``normalize=False``; nothing in the file runs "
        "code unless ``trust_remote_code=True``."
    )
    return load
