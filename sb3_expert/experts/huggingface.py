"""Loaders from the Hugging Face Hub, through huggingface-sb3's naming scheme.

``<algo>-huggingface`` loads ``<organization>/<algo>-<EnvironmentName>`` and its file
``<algo>-<EnvironmentName>.zip`` (``ModelRepoId``, ``ModelName``), and ``vec_normalize.pkl`` when
the repository has one. ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` work as in huggingface_hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sb3_expert.arguments import check_flags, check_path
from sb3_expert.errors import ArgumentTypeError, ArgumentValueError
from sb3_expert.experts.registry import ExpertLoaderError
from sb3_expert.experts.sb3 import (
    ExpertModel,
    algorithm_class,
    check_load_args,
    expert_policy,
    load_model,
    save_model,
)

__all__ = ["download", "load_from_hub_model", "save_expert"]


def download(
    algo: str, env_name: str, organization: str = "HumanCompatibleAI", revision: str | None = None
) -> tuple[Path, Path | None]:
    """Fetch (or find in the cache) an expert's ``.zip`` and its ``vec_normalize.pkl`` (None when absent).

    :raises ExpertLoaderError: naming the repository id and the file when either is missing
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError
    from huggingface_sb3 import EnvironmentName, ModelName, ModelRepoId

    model_name = ModelName(algo, EnvironmentName(env_name))
    repo_id = str(ModelRepoId(organization, model_name))
    try:
        zip_path = hf_hub_download(repo_id, model_name.filename, revision=revision, library_name="sb3-expert")
    except RepositoryNotFoundError as e:
        raise ExpertLoaderError(f"Hub: no repository {repo_id!r} (looked for {model_name.filename})") from e
    except (EntryNotFoundError, LocalEntryNotFoundError) as e:
        raise ExpertLoaderError(f"Hub: no file {model_name.filename!r} in {repo_id!r} (or not cached offline)") from e
    try:
        norm_path: str | None = hf_hub_download(
            repo_id, "vec_normalize.pkl", revision=revision, library_name="sb3-expert"
        )
    except (EntryNotFoundError, LocalEntryNotFoundError):
        norm_path = None
    return Path(zip_path), None if norm_path is None else Path(norm_path)


def load_from_hub_model(
    algo: str,
    venv: VecEnv,
    env_name: str,
    *,
    organization: str = "HumanCompatibleAI",
    revision: str | None = None,
    device: str = "auto",
    trust_remote_code: bool = False,
) -> ExpertModel:
    """The whole algorithm and its VecNormalize statistics, from the Hub. Nothing in the downloaded
    files runs code unless ``trust_remote_code=True`` (see :mod:`sb3_expert.experts.safe_load`).
    Its arguments are checked before the Hub is asked for anything."""
    algorithm_class(algo)
    check_load_args(venv, device, trust_remote_code=trust_remote_code)
    for name, value in (("env_name", env_name), ("organization", organization)):
        if not isinstance(value, str) or not value:
            raise ArgumentTypeError(f"{name}: expected a non-empty str, got {type(value).__name__} {value!r}")
    if revision is not None and not isinstance(revision, str):
        raise ArgumentTypeError(f"revision: expected None or a str, got {type(revision).__name__}")
    zip_path, norm_path = download(algo, env_name, organization, revision)
    return load_model(
        algo, venv, zip_path, device=device, vec_normalize_path=norm_path, trust_remote_code=trust_remote_code
    )


def hub_loader(algo: str) -> Any:
    """The loader of the expert type ``<algo>-huggingface``: a model from the Hugging Face Hub."""

    def load(venv: VecEnv, env_name: str, *, normalize: bool = True, **kwargs: Any) -> BasePolicy:
        check_flags(normalize=normalize)
        return expert_policy(load_from_hub_model(algo, venv, env_name, **kwargs), normalize)

    load.__name__ = load.__qualname__ = f"load_{algo}"
    load.__doc__ = (
        f"The ``{algo}-huggingface`` expert type: ``{algo}`` from the Hugging Face Hub (``kwargs`` as "
        ":func:`load_from_hub_model` takes them), its VecNormalize statistics applied unless ``normalize=False``; "
        "nothing in the downloaded files runs code unless ``trust_remote_code=True``."
    )
    return load


def save_expert(
    model: Any,
    folder: str | Path,
    env_id: str,
    *,
    vec_normalize: Any = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` (and its VecNormalize statistics) in huggingface-sb3's layout:
    ``<folder>/<algo>-<EnvironmentName>.zip`` and ``vec_normalize.pkl``, so that huggingface-sb3's
    ``push_to_hub`` can upload the folder and ``load_policy(algo, venv, path=folder)`` (or
    ``<algo>-huggingface`` once pushed) loads it back.

    :param model: a trained SB3 / sb3-contrib algorithm
    :param folder: the folder (created when missing)
    :param env_id: the gymnasium id the model was trained on
    :param vec_normalize: statistics to save; default the model's own VecNormalize, if any
    :param overwrite: replace files already there
    :return: the model's ``.zip``
    :raises OutputExistsError: when the files exist and ``overwrite`` is False
    :raises ArgumentValueError: for an ``env_id`` that is not a gymnasium id (``[namespace/]name[-vN]``)

    Each file is written atomically (a temporary file, then one rename): a crash leaves the file
    that was there whole.
    """
    from gymnasium.envs.registration import parse_env_id
    from huggingface_sb3 import EnvironmentName, ModelName

    from sb3_expert.data.paths import atomic_path, check_output_path
    from sb3_expert.experts.registry import ALGORITHMS

    names = {cls: key for key, (_, cls) in ALGORITHMS.items()}
    algo = names.get(type(model).__name__) or next(
        (names[c.__name__] for c in type(model).__mro__ if c.__name__ in names), None
    )
    if algo is None:
        raise ArgumentTypeError(f"model: expected an SB3 or sb3-contrib algorithm, got {type(model).__name__}")
    check_path("folder", folder)
    check_flags(overwrite=overwrite)
    if not isinstance(env_id, str):
        raise ArgumentTypeError(f"env_id: expected a gymnasium id (str), got {type(env_id).__name__} {env_id!r}")
    try:
        parse_env_id(env_id)
    except gymnasium.error.Error as e:
        raise ArgumentValueError(f"env_id: expected a gymnasium id such as 'HalfCheetah-v5', got {env_id!r}") from e
    norm = vec_normalize if vec_normalize is not None else model.get_vec_normalize_env()
    if norm is not None and not isinstance(norm, VecNormalize):
        raise ArgumentTypeError(f"vec_normalize: expected a VecNormalize, got {type(norm).__name__}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    zip_path = check_output_path(out / ModelName(algo, EnvironmentName(env_id)).filename, overwrite=overwrite)
    norm_path = check_output_path(out / "vec_normalize.pkl", overwrite=overwrite) if norm is not None else None
    save_model(model, zip_path)
    if norm is not None and norm_path is not None:
        with atomic_path(norm_path) as tmp:
            norm.save(str(tmp))
    return zip_path
