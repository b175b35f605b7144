"""Where an :class:`~sb3_expert.data.dataset.ExpertDataset` reads its rows: one typed interface,
:class:`StepSource`, with two implementations: :class:`MemorySource` (a :class:`Demonstrations`
in memory) and :class:`~sb3_expert.data.hdf5.HDF5Reader` (an ``.h5`` file read lazily). Callers
read rows with :meth:`StepSource.get` and the episode table from the attributes, whichever the
source; only the ones that need every row at once ask for :attr:`StepSource.in_memory`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.obs import ObsArray, take
from sb3_expert.data.spaces import row_nbytes
from sb3_expert.data.validation import step_indices

__all__ = ["MemorySource", "StepSource", "obs_chunks"]


@runtime_checkable
class StepSource(Protocol):
    """Demonstrations read by row: the episode table in memory, per-step fields on demand."""

    observation_space: spaces.Space
    action_space: spaces.Space
    episode_lengths: np.ndarray
    episode_returns: np.ndarray
    metadata: dict[str, Any]

    @property
    def n_steps(self) -> int:
        """Number of steps."""
        ...

    @property
    def in_memory(self) -> Demonstrations | None:
        """Every row as a :class:`Demonstrations`, when the source holds them in memory; else None."""
        ...

    def get(self, indices: Sequence[int] | np.ndarray, fields: Sequence[str] = ("obs", "actions")) -> dict[str, Any]:
        """Rows ``indices`` (any order, repeats allowed) of the per-step ``fields``."""
        ...

    def close(self) -> None:
        """Release what the source holds open (idempotent)."""
        ...


class MemorySource:
    """A :class:`StepSource` over a :class:`Demonstrations` in memory."""

    def __init__(self, demonstrations: Demonstrations) -> None:
        self.demonstrations = demonstrations
        self.observation_space = demonstrations.observation_space
        self.action_space = demonstrations.action_space
        self.episode_lengths = demonstrations.episode_lengths
        self.episode_returns = demonstrations.episode_returns
        self.metadata = demonstrations.metadata

    @property
    def n_steps(self) -> int:
        return self.demonstrations.n_steps

    @property
    def in_memory(self) -> Demonstrations:
        return self.demonstrations

    def get(self, indices: Sequence[int] | np.ndarray, fields: Sequence[str] = ("obs", "actions")) -> dict[str, Any]:
        """Rows ``indices`` of ``fields`` (``obs``, ``actions``, ``rewards``, ``episode_starts``,
        ``infos/<key>``), as :meth:`HDF5Reader.get <sb3_expert.data.hdf5.HDF5Reader.get>` returns them."""
        idx = step_indices(indices, self.n_steps)
        demos = self.demonstrations
        out: dict[str, Any] = {}
        for name in fields:
            if name == "obs":
                out[name] = take(demos.obs, idx)
            elif name.startswith("infos/"):
                out[name] = demos.infos[name.removeprefix("infos/")][idx]
            else:
                out[name] = getattr(demos, name)[idx]
        return out

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemorySource({self.demonstrations!r})"


def obs_chunks(source: StepSource, indices: np.ndarray, *, window_bytes: int = 64 * 2**20) -> Iterator[ObsArray]:
    """The observations of rows ``indices``, in windows of at most ``window_bytes`` (one window for
    a source in memory): what statistics are fitted on without holding a lazy file in memory."""
    demos = source.in_memory
    if demos is not None:
        yield take(demos.obs, indices)
        return
    window = max(1, window_bytes // max(1, row_nbytes(source.observation_space)))
    for start in range(0, len(indices), window):
        yield source.get(indices[start : start + window], ("obs",))["obs"]
