"""The stable-baselines (v2) ``.npz`` expert format, read and written file for file.

SB2's ``generate_expert_traj`` writes ``np.savez(path, actions=..., obs=..., rewards=...,
episode_returns=..., episode_starts=...)``:

=================  ====================  ===========================================
key                shape                 dtype
=================  ====================  ===========================================
actions            (N, *action_shape)    the action space's; Discrete as (N, 1) int64
obs                (N, *obs_shape)       the observations'; or (N,) str image paths
rewards            (N,)                  float64
episode_returns    (E,)                  float64
episode_starts     (N,)                  bool
=================  ====================  ===========================================

This library's extra fields go in extra keys that SB2 ignores (see
:func:`to_sb2_dict`). Files are read with ``allow_pickle=False`` and
written atomically (a temporary file, then one rename).

Image observations may be stored as files, as SB2 does: ``obs`` then holds paths (relative
to the ``.npz`` file's folder) of lossless PNG images. SB2's own files hold paths relative to
the directory it ran in; both are tried.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_expert.arguments import check_flags
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.obs import ObsArray
from sb3_expert.data.paths import WriteLock, atomic_path, check_input_path, check_output_path
from sb3_expert.data.spaces import infer_space, is_image_observation, space_from_json, space_to_json
from sb3_expert.errors import ArgumentTypeError, DemonstrationError, DemonstrationFileError

__all__ = ["SB2_KEYS", "from_sb2_dict", "load_npz", "save_npz", "to_sb2_dict"]

SB2_KEYS = ("actions", "obs", "rewards", "episode_returns", "episode_starts")
"""The keys of a stable-baselines (v2) expert dataset."""


def to_sb2_dict(demos: Demonstrations, *, extras: bool = False) -> dict[str, Any]:
    """The stable-baselines (v2) ``generate_expert_traj`` dict: its five keys, shapes and dtypes.

    ``actions`` of a Discrete space become ``(N, 1)``. With ``extras``, this library's fields
    are added under keys SB2 ignores (``episode_lengths``, ``terminated``, ``truncated``,
    ``final_obs``, ``infos.<key>``, ``metadata``; Dict observations as ``obs.<key>``).
    """
    actions = demos.actions.reshape(-1, 1) if isinstance(demos.action_space, spaces.Discrete) else demos.actions
    out: dict[str, Any] = {
        "actions": actions,
        "obs": demos.obs,
        "rewards": demos.rewards,
        "episode_returns": demos.episode_returns,
        "episode_starts": demos.episode_starts,
    }
    if not extras:
        return out
    if isinstance(demos.obs, dict):
        del out["obs"]
        out.update({f"obs.{key}": value for key, value in demos.obs.items()})
    out["episode_lengths"] = demos.episode_lengths
    out["terminated"] = demos.terminated
    out["truncated"] = demos.truncated
    if isinstance(demos.final_obs, dict):
        out.update({f"final_obs.{key}": value for key, value in demos.final_obs.items()})
    elif demos.final_obs is not None:
        out["final_obs"] = demos.final_obs
    out.update({f"infos.{key}": value for key, value in demos.infos.items()})
    out["observation_space"] = np.array(space_to_json(demos.observation_space))
    out["action_space"] = np.array(space_to_json(demos.action_space))
    out["metadata"] = np.array(json.dumps(demos.metadata))
    return out


def from_sb2_dict(
    data: Mapping[str, Any],
    *,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
    source: str = "data",
) -> Demonstrations:
    """Build from a stable-baselines (v2) dict (``np.load`` of its ``.npz``, or ``traj_data``).

    Spaces come from the arguments, else from the ``observation_space`` / ``action_space`` keys
    this library writes, else they are inferred (integer ``(N, 1)`` actions as ``Discrete``,
    anything else as an unbounded ``Box``; ``metadata["spaces_inferred"]`` is then True).

    :param source: what the dict came from (a file name), for error messages
    :raises DemonstrationError: naming ``source`` and the missing or wrong key
    """
    keys = set(data.keys())
    dict_obs = {k.split(".", 1)[1]: data[k] for k in keys if k.startswith("obs.")}
    missing = [k for k in SB2_KEYS if k not in keys and not (k == "obs" and dict_obs)]
    if missing:
        raise DemonstrationError(
            f"{source}: missing key(s) {missing}; a stable-baselines expert dataset has {list(SB2_KEYS)}, "
            f"got {sorted(keys)}"
        )
    inferred = False
    if observation_space is None and "observation_space" in keys:
        observation_space = space_from_json(str(data["observation_space"]))
    if action_space is None and "action_space" in keys:
        action_space = space_from_json(str(data["action_space"]))
    obs: ObsArray = dict_obs if dict_obs else np.asarray(data["obs"])
    if observation_space is None:
        inferred = True
        if isinstance(obs, dict):
            observation_space = spaces.Dict(
                {k: infer_space(v, name=f"{source}: obs.{k}") for k, v in sorted(obs.items())}
            )
        else:
            observation_space = infer_space(obs, name=f"{source}: obs")
    actions = np.asarray(data["actions"])
    if action_space is None:
        inferred = True
        action_space = infer_space(actions, name=f"{source}: actions", discrete_column=True)
    if isinstance(action_space, spaces.Discrete) and actions.ndim == 2 and actions.shape[1] == 1:
        actions = actions[:, 0]
    final_obs: ObsArray | None = {
        k.split(".", 1)[1]: np.asarray(data[k]) for k in keys if k.startswith("final_obs.")
    } or (np.asarray(data["final_obs"]) if "final_obs" in keys else None)
    metadata = json.loads(str(data["metadata"])) if "metadata" in keys else {}
    if inferred:
        metadata["spaces_inferred"] = True
    try:
        return Demonstrations(
            obs,
            actions,
            np.asarray(data["rewards"]),
            np.asarray(data["episode_starts"]),
            observation_space=observation_space,
            action_space=action_space,
            episode_returns=np.asarray(data["episode_returns"]),
            episode_lengths=np.asarray(data["episode_lengths"]) if "episode_lengths" in keys else None,
            terminated=np.asarray(data["terminated"]) if "terminated" in keys else None,
            truncated=np.asarray(data["truncated"]) if "truncated" in keys else None,
            final_obs=final_obs,
            infos={k.split(".", 1)[1]: np.asarray(data[k]) for k in sorted(keys) if k.startswith("infos.")},
            metadata=metadata,
        )
    except DemonstrationError as e:
        raise type(e)(f"{source}: {e}") from None


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("Image observations stored as files need Pillow: pip install 'sb3-expert[images]'") from e
    return Image


def _channels_last(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """HWC view of an image for PNG, and whether it was channel-first."""
    if image.shape[-1] not in (1, 3, 4) and image.shape[0] in (1, 3, 4):
        return np.moveaxis(image, 0, -1), True
    return image, False


def _write_images(images: np.ndarray, folder: Path, prefix: str, root: Path) -> np.ndarray:
    image_lib = _pil()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        hwc, _ = _channels_last(image)
        file = folder / f"{prefix}{i}.png"
        image_lib.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc).save(file, format="PNG")
        paths.append(os.path.relpath(file, root))
    return np.array(paths, dtype=np.str_)


def _read_images(paths: np.ndarray, root: Path, space: spaces.Space | None, file: Path) -> np.ndarray:
    image_lib = _pil()
    images = []
    for raw in paths.tolist():
        candidates = [root / raw, Path(raw)]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DemonstrationFileError(
                f"{file}: obs holds the image path {raw!r}, but no file was found at "
                f"{str(candidates[0])!r} (relative to the .npz file) nor {str(candidates[1])!r}"
            )
        with image_lib.open(found) as img:
            array = np.asarray(img)
        images.append(array[..., None] if array.ndim == 2 else array)
    out = np.stack(images) if images else np.zeros((0, 1, 1, 1), np.uint8)
    if space is not None and space.shape is not None and out.shape[1:] != space.shape:
        moved = np.moveaxis(out, -1, 1)
        if moved.shape[1:] == space.shape:
            out = np.ascontiguousarray(moved)
    return out


def save_npz(
    demos: Demonstrations,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    image_folder: str | os.PathLike[str] | None = None,
    compressed: bool = False,
    lock: WriteLock | None = None,
) -> Path:
    """Write ``demos`` as a stable-baselines (v2) ``.npz`` (plus this library's extra keys).

    :param demos: the demonstrations
    :param path: the file to write; its folder must exist
    :param overwrite: replace an existing file (atomically: the old one stays until the new is complete)
    :param image_folder: for image observations, store each as a PNG in this folder (relative to the
        ``.npz`` file's folder, as SB2's ``recorded_images``) and keep paths in ``obs``; None keeps
        the pixels in the ``.npz``
    :param compressed: use ``np.savez_compressed`` (SB2 used plain ``np.savez``)
    :param lock: the :class:`~sb3_expert.data.paths.WriteLock` of ``path`` when the caller already
        holds it (a recorder holds it from its start); else one is taken for the write
    :return: the path written
    :raises OutputExistsError: when ``path`` exists and ``overwrite`` is False
    """
    if not isinstance(demos, Demonstrations):
        raise ArgumentTypeError(f"demos: expected a Demonstrations, got {type(demos).__name__}")
    target = check_output_path(path, overwrite=overwrite)
    check_flags(compressed=compressed)
    data = to_sb2_dict(demos, extras=True)
    if image_folder is not None:
        if not is_image_observation(demos.observation_space):
            raise DemonstrationError(
                f"image_folder: only image observations (uint8 Box of 3 dims) can be stored as files, "
                f"got observation_space {demos.observation_space}"
            )
        root = target.parent
        folder = root / image_folder
        data["obs"] = _write_images(demos.obs, folder, "", root)  # type: ignore[arg-type]
        if demos.final_obs is not None:
            data["final_obs"] = _write_images(demos.final_obs, folder, "final_", root)  # type: ignore[arg-type]
    save = np.savez_compressed if compressed else np.savez
    with atomic_path(target, lock) as tmp, open(tmp, "wb") as f:
        save(f, **data)
    return target


def load_npz(
    path: str | os.PathLike[str],
    *,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
) -> Demonstrations:
    """Read a stable-baselines (v2) ``.npz`` expert dataset (or one this library wrote).

    :param path: the ``.npz`` file
    :param observation_space: the environment's, when the file does not say (SB2 files; else inferred);
        when it does, it must agree with the file's
    :param action_space: likewise; integer ``(N, 1)`` actions are otherwise read as ``Discrete``
    :raises DemonstrationFileNotFoundError: when ``path`` does not exist
    :raises SpaceMismatchError: when a space given disagrees with the one the file stores
    :raises DemonstrationFileError: when it is not a readable ``.npz`` or lacks a key, naming both
    """
    file = check_input_path(path)
    if not zipfile.is_zipfile(file):
        raise DemonstrationFileError(f"{file}: not a readable .npz file (not a zip archive, as numpy's savez writes)")
    try:
        with np.load(file, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        hint = " (it holds Python objects: re-save it with plain arrays)" if "allow_pickle" in str(e) else ""
        raise DemonstrationFileError(f"{file}: not a readable .npz file{hint}: {e}") from e
    for key in ("observation_space", "action_space", "metadata"):  # this library's JSON entries
        if key in data:
            try:
                parsed = json.loads(str(data[key]))
            except json.JSONDecodeError as e:
                raise DemonstrationFileError(f"{file}: the {key!r} entry is not valid JSON ({e})") from e
            if not isinstance(parsed, dict):
                raise DemonstrationFileError(f"{file}: the {key!r} entry: expected a JSON object, got {parsed!r}")
    from sb3_expert.data.spaces import check_given_spaces, space_from_json

    stored = {key: space_from_json(str(data[key])) for key in ("observation_space", "action_space") if key in data}
    check_given_spaces(stored, observation_space=observation_space, action_space=action_space)
    obs_space = observation_space
    if obs_space is None and "observation_space" in data:
        obs_space = space_from_json(str(data["observation_space"]))
    for key in ("obs", "final_obs"):
        if key in data and data[key].dtype.kind in "US":
            data[key] = _read_images(data[key], file.parent, obs_space, file)
    return from_sb2_dict(data, observation_space=observation_space, action_space=action_space, source=str(file))
