"""Allow-listed unpickling for expert files: nothing read from a model runs code without an opt-in.

An SB3 model zip stores some of its ``data`` entries (the policy class, ``policy_kwargs``, spaces,
buffers of the last rollout...) as cloudpickle blobs, and SB3's ``load`` unpickles every one that
``custom_objects`` does not replace; a ``vec_normalize.pkl`` is a plain pickle. Unpickling runs
whatever callable the file names, so a downloaded expert could run any code on load.

Here every such blob goes through :class:`SafeUnpickler` first, which only resolves what data
needs: numpy arrays, dtypes, scalars and random generators; gymnasium spaces (``gym`` ones are
read as ``gymnasium``'s); containers of builtins; SB3 and sb3-contrib classes from the modules that
hold policies, features extractors, buffers, schedules, noise and normalisation statistics; torch
activation and optimizer classes, ``torch.device``, tensors (their storage read with
``torch.load(weights_only=True)``); this library's own classes (a clone's
:class:`~sb3_expert.bc.normalize.NormalizedExtractor`). Classes are only allowed as classes, never
arbitrary functions. Anything else is refused with :class:`UnsafeModelError`, naming the file,
the entry and what it asked for. The decoded entries are then handed to SB3 as ``custom_objects``,
so SB3's own cloudpickle never sees the file's blobs. ``trust_remote_code=True`` (on the loaders,
``--trust-remote-code`` on the CLI) restores SB3's plain loading: use it only for files whose
author you trust. The network weights (``.pth`` entries) are read by SB3 with
``torch.load(weights_only=True)``, which is safe either way.
"""

from __future__ import annotations

import base64
import io
import os
import pickle
from typing import Any, BinaryIO

import numpy as np

from sb3_expert.errors import ExpertLoaderError, UnsafeModelError

__all__ = ["TRUST_HINT", "SafeUnpickler", "UnsafeModelError", "safe_custom_objects", "safe_load_pickle"]

TRUST_HINT = (
    "if you trust the file's author, load it with trust_remote_code=True (CLI: --trust-remote-code); "
    "unpickling an untrusted file can run arbitrary code"
)

_FUNCTIONS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
}
_BUILTINS = {
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "int",
    "float",
    "bool",
    "str",
    "bytes",
    "bytearray",
    "complex",
    "slice",
    "range",
    "object",
}
_COLLECTIONS = {"deque", "OrderedDict", "defaultdict"}
_ALGOS = (
    "ppo",
    "a2c",
    "sac",
    "td3",
    "ddpg",
    "dqn",
    "her",
    "tqc",
    "qrdqn",
    "trpo",
    "ars",
    "crossq",
    "ppo_recurrent",
    "ppo_mask",
)
_CLASS_MODULES = (
    "gymnasium.spaces",
    "stable_baselines3.common.policies",
    "stable_baselines3.common.torch_layers",
    "stable_baselines3.common.buffers",
    "stable_baselines3.common.type_aliases",
    "stable_baselines3.common.running_mean_std",
    "stable_baselines3.common.vec_env.vec_normalize",
    "stable_baselines3.common.noise",
    "stable_baselines3.common.utils",
    "stable_baselines3.common.distributions",
    "stable_baselines3.her.her_replay_buffer",
    "sb3_contrib.common",
    "torch.nn.modules.activation",
    "torch.optim",
    "sb3_expert.bc.normalize",
    "sb3_expert.experts.sb3",
    *(f"{package}.{algo}.policies" for package in ("stable_baselines3", "sb3_contrib") for algo in _ALGOS),
)


def _storage_from_bytes(data: bytes) -> Any:
    """Stands for ``torch.storage._load_from_bytes`` (how a pickled tensor carries its storage),
    which would ``torch.load`` the bytes with ``weights_only=False``."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


_REPLACED = {("torch.storage", "_load_from_bytes"): _storage_from_bytes}


def _gymnasium(module: str) -> str:
    return "gymnasium" + module[3:] if module == "gym" or module.startswith("gym.") else module


def _allowed_class(module: str, obj: Any) -> bool:
    if not isinstance(obj, type):
        return False
    if module == "numpy" or module.startswith("numpy."):
        # arrays, dtypes, scalar types and random generators; not np.memmap and the like
        random = (np.random.BitGenerator, np.random.Generator, np.random.RandomState, np.random.SeedSequence)
        return obj is np.ndarray or issubclass(obj, (np.dtype, np.generic, *random))
    if module == "torch":
        return obj.__name__ == "device"
    return any(module == m or module.startswith(m + ".") for m in _CLASS_MODULES)


class SafeUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that resolves only allow-listed names (see the module docstring),
    reading ``gym`` classes as ``gymnasium``'s.

    :param file: the pickle
    :param source: the file, for messages
    :param entry: the entry inside the file (a zip's ``data`` key), for messages
    """

    def __init__(self, file: BinaryIO, *, source: str, entry: str | None = None) -> None:
        super().__init__(file)
        self.source, self.entry = source, entry

    def find_class(self, module: str, name: str) -> Any:
        module = _gymnasium(module)
        if (module, name) in _REPLACED:
            return _REPLACED[module, name]
        if (module, name) in _FUNCTIONS or (module == "builtins" and name in _BUILTINS):
            return super().find_class(module, name)
        if module == "collections" and name in _COLLECTIONS:
            return super().find_class(module, name)
        try:
            obj = super().find_class(module, name)
        except (ImportError, AttributeError):
            obj = None
        if obj is not None and _allowed_class(module, obj):
            return obj
        where = f"{self.source}, entry {self.entry!r}" if self.entry else self.source
        raise UnsafeModelError(
            f"{where}: refusing to load {module}.{name}, which is not on the allow-list; {TRUST_HINT}"
        )


def safe_load_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle a file (a ``vec_normalize.pkl``) with :class:`SafeUnpickler`."""
    with open(path, "rb") as f:
        return SafeUnpickler(f, source=str(path)).load()


def safe_custom_objects(source: str, data: dict[str, Any], custom_objects: dict[str, Any]) -> dict[str, Any]:
    """``custom_objects`` completed with every serialised entry of an SB3 zip's ``data`` (the JSON
    dict) that it does not already replace, each decoded with :class:`SafeUnpickler`.

    :raises UnsafeModelError: for an entry that names something not on the allow-list
    :raises ExpertLoaderError: for an entry that cannot be decoded (it names the entry and how to replace it)
    """
    out = dict(custom_objects)
    for key, item in data.items():
        if key in out or not (isinstance(item, dict) and ":serialized:" in item):
            continue
        try:
            blob = base64.b64decode(item[":serialized:"])
            out[key] = SafeUnpickler(io.BytesIO(blob), source=source, entry=key).load()
        except UnsafeModelError:
            raise
        except Exception as e:  # any failure of a corrupt or foreign blob: say which entry
            raise ExpertLoaderError(
                f"{source}: entry {key!r} of the model's data could not be decoded ({type(e).__name__}: {e}); "
                f"replace it with custom_objects={{{key!r}: ...}}"
            ) from e
    return out
