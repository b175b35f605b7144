"""Load and save demonstrations, the file suffix picking the format."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gymnasium import spaces

from sb3_expert.arguments import check_call
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.paths import check_input_path, format_of
from sb3_expert.errors import ArgumentTypeError

__all__ = ["as_demonstrations", "load_demonstrations", "save_demonstrations"]


def load_demonstrations(
    path: str | os.PathLike[str],
    *,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
) -> Demonstrations:
    """Read demonstrations from ``.npz`` (stable-baselines v2) or ``.h5`` (native) into memory.

    :param path: the file; its suffix picks the format
    :param observation_space: for ``.npz`` files that do not store their spaces (SB2's); a file that
        stores its spaces (``.h5``, this library's ``.npz``) must agree with it
    :param action_space: likewise
    :raises DemonstrationFileNotFoundError: when ``path`` does not exist
    :raises DemonstrationFileError: for an unknown suffix or an unreadable file
    :raises SpaceMismatchError: when a space given disagrees with the one the file stores

    .. code-block:: python

        demos = load_demonstrations("expert_cartpole.npz")
    """
    fmt = format_of(path)
    check_input_path(path)
    if fmt == "npz":
        from sb3_expert.data.npz import load_npz

        return load_npz(path, observation_space=observation_space, action_space=action_space)
    from sb3_expert.data.hdf5 import load_hdf5
    from sb3_expert.data.spaces import check_given_spaces

    demos = load_hdf5(path)
    stored = {"observation_space": demos.observation_space, "action_space": demos.action_space}
    check_given_spaces(stored, observation_space=observation_space, action_space=action_space)
    return demos


def save_demonstrations(
    demos: Demonstrations, path: str | os.PathLike[str], *, overwrite: bool = False, **kwargs: Any
) -> Path:
    """Write demonstrations to ``.npz`` or ``.h5``, the suffix picking the format; atomically.

    :param demos: the demonstrations
    :param path: the file to write
    :param overwrite: replace an existing file
    :param kwargs: passed to :func:`~sb3_expert.data.npz.save_npz` (``image_folder``, ``compressed``)
        or :func:`~sb3_expert.data.hdf5.save_hdf5` (``compression``)
    :return: the path written
    :raises OutputExistsError: when ``path`` exists and ``overwrite`` is False
    """
    save: Callable[..., Path]
    if format_of(path) == "npz":
        from sb3_expert.data.npz import save_npz as save
    else:
        from sb3_expert.data.hdf5 import save_hdf5 as save
    check_call(f"save_demonstrations to {Path(path).suffix}", save, demos, path, overwrite=overwrite, **kwargs)
    return save(demos, path, overwrite=overwrite, **kwargs)


def as_demonstrations(dataset: Any, name: str = "dataset") -> Demonstrations:
    """A :class:`Demonstrations` in memory from a path, an in-memory :class:`ExpertDataset` or itself."""
    if isinstance(dataset, Demonstrations):
        return dataset
    if isinstance(dataset, (str, os.PathLike)):
        return load_demonstrations(dataset)
    from sb3_expert.data.dataset import ExpertDataset

    if isinstance(dataset, ExpertDataset):
        if dataset.demonstrations is None:
            raise ArgumentTypeError(f"{name}: an .h5 file read lazily cannot be used here; load it with in_memory=True")
        return dataset.demonstrations
    raise ArgumentTypeError(
        f"{name}: expected a Demonstrations, an ExpertDataset or a path to a .npz/.h5 file, "
        f"got {type(dataset).__name__}"
    )
