"""Minibatches of (observation, action): SB2's ``DataLoader``, without its thread and busy-wait.

stable-baselines (v2) prefetched batches in a background thread and polled its queue every
millisecond. Gathering a batch here is one fancy-indexing call on arrays in memory (or one
sorted read from an HDF5 file), so batches are made on demand, in the caller's thread.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sb3_expert.arguments import check_count
from sb3_expert.data.obs import ObsArray, take
from sb3_expert.data.source import StepSource
from sb3_expert.errors import ArgumentTypeError

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over minibatches of ``(obs, actions)`` drawn from ``indices``; SB2's signature.

    One pass over ``indices`` is one ``for`` loop (then ``StopIteration``); with ``infinite_loop``
    a further ``next()`` starts the next pass (as SB2's loader did), reshuffled when ``shuffle``.
    No pass ends with an empty batch. Batches are numpy arrays: ``obs`` ``(B, *obs_shape)`` (a dict
    for Dict observations), ``actions`` ``(B, *action_shape)``.

    :param indices: ``(n,)`` step indices to draw from
    :param observations: ``(N, *obs_shape)`` array, or a dict of such arrays
    :param actions: ``(N, *action_shape)`` array
    :param batch_size: steps per batch (>= 1)
    :param n_workers: ignored (kept for SB2 compatibility: gathering needs no workers)
    :param infinite_loop: start a new pass on ``next()`` after the end of one
    :param max_queue_len: ignored (SB2 compatibility)
    :param shuffle: shuffle ``indices`` at the start of each pass
    :param start_process: ignored (SB2 compatibility)
    :param backend: ignored (SB2 compatibility)
    :param sequential: ignored (SB2 compatibility: images are decoded when the file is read)
    :param partial_minibatch: keep the last, smaller batch of a pass (else drop it)
    :param seed: seed of the shuffling generator
    :param source: instead of ``observations`` / ``actions``, a
        :class:`~sb3_expert.data.source.StepSource` to read batches from (an ``.h5`` file read lazily,
        or demonstrations in memory)

    .. code-block:: python

        loader = DataLoader(np.arange(len(obs)), obs, actions, batch_size=64, shuffle=True, seed=0)
        for obs_batch, action_batch in loader:  # one pass
            ...
    """

    def __init__(
        self,
        indices: np.ndarray,
        observations: ObsArray | None,
        actions: np.ndarray | None,
        batch_size: int,
        n_workers: int = 1,
        infinite_loop: bool = True,
        max_queue_len: int = 1,
        shuffle: bool = False,
        start_process: bool = True,
        backend: str = "threading",
        sequential: bool = False,
        partial_minibatch: bool = True,
        *,
        seed: int | None = None,
        source: StepSource | None = None,
    ) -> None:
        check_count("batch_size", batch_size)
        if source is None and (observations is None or actions is None):
            raise ArgumentTypeError("observations and actions: expected arrays (or source=a StepSource), got None")
        self.original_indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.observations = observations
        self.actions = actions
        self.source = source
        self.batch_size = int(batch_size)
        self.infinite_loop = infinite_loop
        self.shuffle = shuffle
        self.partial_minibatch = partial_minibatch
        self.rng = np.random.default_rng(seed)
        n, rest = divmod(len(self.original_indices), self.batch_size)
        self.n_minibatches = n + int(partial_minibatch and rest > 0)
        self._order = self.original_indices
        self._batch = 0
        self._exhausted = False
        self._new_pass()

    def _new_pass(self) -> None:
        self._order = self.rng.permutation(self.original_indices) if self.shuffle else self.original_indices
        self._batch = 0
        self._exhausted = False

    def __len__(self) -> int:
        """Number of batches in one pass."""
        return self.n_minibatches

    def __iter__(self) -> Iterator[tuple[ObsArray, np.ndarray]]:
        self._new_pass()
        return self

    def gather(self, idx: np.ndarray) -> tuple[ObsArray, np.ndarray]:
        """The ``(obs, actions)`` rows ``idx``."""
        if self.source is not None:
            batch = self.source.get(idx, ("obs", "actions"))
            return batch["obs"], batch["actions"]
        assert self.actions is not None
        return take(self.observations, idx), self.actions[idx]

    def __next__(self) -> tuple[ObsArray, np.ndarray]:
        if self._batch >= self.n_minibatches:
            if self._exhausted and self.infinite_loop and self.n_minibatches:
                self._new_pass()
            else:
                self._exhausted = True
                raise StopIteration
        start = self._batch * self.batch_size
        self._batch += 1
        return self.gather(self._order[start : start + self.batch_size])

    def __repr__(self) -> str:
        return (
            f"DataLoader({len(self.original_indices)} steps, batch_size={self.batch_size}, "
            f"{self.n_minibatches} batches a pass, shuffle={self.shuffle})"
        )
