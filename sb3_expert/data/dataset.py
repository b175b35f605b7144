"""``ExpertDataset``: stable-baselines (v2)'s constructor and methods, without its bugs.

Fixed against SB2: ``traj_limitation=k`` keeps exactly the first k whole episodes and their k
returns (SB2 cut one step into the next episode and mis-sliced the returns); ``num_traj`` is right
with ``traj_limitation=-1``; no pass ends with an empty batch; no busy-waiting thread;
``get_next_batch()`` without a split works before ``init_dataloader``; nothing is printed unless
``verbose``. The split into training and validation sets is by episode by default (no episode
leaks into both), seeded, and ``.h5`` files larger than memory are read lazily.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from sb3_expert.arguments import check_flags, check_integers
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.loader import DataLoader
from sb3_expert.data.obs import ObsArray
from sb3_expert.data.paths import check_input_path, format_of
from sb3_expert.data.source import MemorySource, StepSource
from sb3_expert.data.spaces import row_nbytes
from sb3_expert.errors import ArgumentTypeError, ArgumentValueError, DemonstrationError, EmptyDatasetError

__all__ = ["ExpertDataset"]

Split = Literal["train", "val"] | None


def _memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


class ExpertDataset:
    """Expert demonstrations split into training and validation loaders, as stable-baselines (v2).

    :param expert_path: a ``.npz`` (SB2's format) or ``.h5`` file
    :param traj_data: instead of a file: a :class:`Demonstrations`, or SB2's dict (keys ``actions``,
        ``obs``, ``rewards``, ``episode_returns``, ``episode_starts``)
    :param train_fraction: fraction of the episodes (or steps, with ``split="transition"``) used for
        training, in (0, 1]; the rest is the validation set
    :param batch_size: steps per batch of ``train_loader`` / ``val_loader``
    :param traj_limitation: keep only the first ``traj_limitation`` whole episodes; -1 keeps all
    :param randomize: shuffle the batches of each pass
    :param verbose: 1 prints a summary (:meth:`log_info`), 0 prints nothing
    :param sequential_preprocessing: ignored (SB2 compatibility: images are decoded when the file is read)
    :param seed: seed of the split and of the shuffling
    :param split: ``"episode"`` keeps whole episodes apart (default); ``"transition"`` splits steps,
        as SB2 did
    :param observation_space: for files that do not store their spaces (SB2's ``.npz``); else inferred
    :param action_space: likewise
    :param in_memory: for ``.h5`` files: True loads everything, False reads batches from the file;
        None (default) loads files whose data fits in a quarter of the machine's memory
    :raises DemonstrationFileError: for a missing or unreadable file
    :raises EmptyDatasetError: for a dataset without steps
    :raises ValueError: for ``traj_limitation`` beyond the dataset's episodes, or a bad argument

    .. code-block:: python

        dataset = ExpertDataset(expert_path="expert_cartpole.npz", traj_limitation=10, batch_size=128)
        obs, actions = dataset.get_next_batch("train")
        pretrain(model, dataset, n_epochs=20)
    """

    def __init__(
        self,
        expert_path: str | os.PathLike[str] | None = None,
        traj_data: Demonstrations | Mapping[str, Any] | None = None,
        train_fraction: float = 0.7,
        batch_size: int = 64,
        traj_limitation: int = -1,
        randomize: bool = True,
        verbose: int = 1,
        sequential_preprocessing: bool = False,
        *,
        seed: int | None = None,
        split: Literal["episode", "transition"] = "episode",
        observation_space: spaces.Space | None = None,
        action_space: spaces.Space | None = None,
        in_memory: bool | None = None,
    ) -> None:
        if (expert_path is None) == (traj_data is None):
            raise ArgumentValueError(
                "expert_path and traj_data: expected exactly one of them, got "
                + ("both" if expert_path is not None else "neither")
            )
        if (
            isinstance(train_fraction, bool)
            or not isinstance(train_fraction, (int, float, np.integer, np.floating))
            or not 0.0 < float(train_fraction) <= 1.0
        ):
            raise ArgumentValueError(f"train_fraction: expected a number in (0, 1], got {train_fraction!r}")
        if split not in ("episode", "transition"):
            raise ArgumentValueError(f"split: expected 'episode' or 'transition', got {split!r}")
        if (
            isinstance(traj_limitation, bool)
            or not isinstance(traj_limitation, (int, np.integer))
            or (traj_limitation < 1 and traj_limitation != -1)
        ):
            raise ArgumentValueError(
                f"traj_limitation: expected -1 (all episodes) or an integer >= 1, got {traj_limitation!r}"
            )
        check_integers(seed=seed, verbose=verbose)
        check_flags(randomize=randomize)
        self.expert_path = None if expert_path is None else Path(expert_path)
        self.train_fraction = float(train_fraction)
        self.batch_size = batch_size
        self.traj_limitation = int(traj_limitation)
        self.randomize = randomize
        self.verbose = verbose
        self.sequential_preprocessing = sequential_preprocessing
        self.seed = seed
        self.split = split
        self.train_episodes: np.ndarray | None = None
        self.val_episodes: np.ndarray | None = None
        self.source: StepSource = self._open(expert_path, traj_data, observation_space, action_space, in_memory)
        self._limit()
        self.returns: np.ndarray = self.source.episode_returns[: self.num_traj]
        self.avg_ret = float(self.returns.mean())
        self.std_ret = float(self.returns.std())
        self.observation_space: spaces.Space = self.source.observation_space
        self.action_space: spaces.Space = self.source.action_space
        rng = np.random.default_rng(seed)
        self.train_indices, self.val_indices = self._split_indices(rng)
        self._loader_seed = int(rng.integers(2**31))
        self.train_loader = self._loader(self.train_indices, batch_size, 0)
        self.val_loader = self._loader(self.val_indices, batch_size, 1) if len(self.val_indices) else None
        self.dataloader: DataLoader | None = None
        if self.verbose >= 1:
            self.log_info()

    # ------------------------------------------------------------------ construction

    @staticmethod
    def _open(
        expert_path: str | os.PathLike[str] | None,
        traj_data: Demonstrations | Mapping[str, Any] | None,
        observation_space: spaces.Space | None,
        action_space: spaces.Space | None,
        in_memory: bool | None,
    ) -> StepSource:
        if traj_data is not None:
            if isinstance(traj_data, Demonstrations):
                return MemorySource(traj_data)
            if isinstance(traj_data, Mapping):
                return MemorySource(
                    Demonstrations.from_sb2_dict(
                        traj_data, observation_space=observation_space, action_space=action_space, source="traj_data"
                    )
                )
            raise ArgumentTypeError(
                f"traj_data: expected a Demonstrations or SB2's dict of arrays, got {type(traj_data).__name__}"
            )
        assert expert_path is not None
        fmt = format_of(expert_path, argument="expert_path")
        check_input_path(expert_path, argument="expert_path")
        if fmt == "npz":
            from sb3_expert.data.npz import load_npz

            return MemorySource(load_npz(expert_path, observation_space=observation_space, action_space=action_space))
        from sb3_expert.data.hdf5 import HDF5Reader

        reader = HDF5Reader(expert_path)
        if in_memory is None:
            in_memory = reader.n_steps * row_nbytes(reader.observation_space) < _memory_bytes() // 4
        if not in_memory:
            return reader
        with reader:
            return MemorySource(reader.load())

    def _limit(self) -> None:
        source = self.source
        name = str(self.expert_path) if self.expert_path is not None else "traj_data"
        total = len(source.episode_lengths)
        if source.n_steps == 0 or total == 0:
            raise EmptyDatasetError(f"{name}: expected at least one step of demonstrations, got an empty dataset")
        if self.traj_limitation > total:
            raise DemonstrationError(
                f"traj_limitation: expected at most the {total} episodes of {name}, got {self.traj_limitation}; "
                "pass -1 to use them all"
            )
        self.num_traj = total if self.traj_limitation == -1 else self.traj_limitation
        self.num_transition = int(source.episode_lengths[: self.num_traj].sum())
        self._episode_lengths = np.asarray(source.episode_lengths[: self.num_traj], dtype=np.int64)
        demos = source.in_memory
        if demos is not None and self.num_traj < total:
            self.source = MemorySource(demos.first_episodes(self.num_traj))

    def _split_indices(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.split == "transition":
            self.train_episodes = self.val_episodes = None
            order = rng.permutation(self.num_transition)
            n_train = max(1, int(self.train_fraction * self.num_transition))
            return np.sort(order[:n_train]), np.sort(order[n_train:])
        episodes = rng.permutation(self.num_traj)
        n_train = int(self.train_fraction * self.num_traj)
        n_train = max(1, min(n_train, self.num_traj - 1) if self.train_fraction < 1 and self.num_traj > 1 else n_train)
        self.train_episodes = np.sort(episodes[:n_train])
        self.val_episodes = np.sort(episodes[n_train:])
        offsets = np.concatenate([[0], np.cumsum(self._episode_lengths)])

        def steps(eps: np.ndarray) -> np.ndarray:
            parts = [np.arange(offsets[e], offsets[e + 1]) for e in eps]
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

        return steps(self.train_episodes), steps(self.val_episodes)

    def _loader(self, indices: np.ndarray, batch_size: int, stream: int) -> DataLoader:
        seed = None if self.seed is None else self._loader_seed + stream
        return DataLoader(indices, None, None, batch_size, shuffle=self.randomize, seed=seed, source=self.source)

    # ------------------------------------------------------------------ SB2 API

    @property
    def demonstrations(self) -> Demonstrations | None:
        """The kept demonstrations in memory (None when read lazily from ``.h5``: see :attr:`source`)."""
        return self.source.in_memory

    @property
    def observations(self) -> ObsArray | None:
        """All kept observations ``(num_transition, *obs_shape)`` (None when read lazily from ``.h5``)."""
        return None if self.demonstrations is None else self.demonstrations.obs

    @property
    def actions(self) -> np.ndarray | None:
        """All kept actions ``(num_transition, *action_shape)`` (None when read lazily from ``.h5``)."""
        return None if self.demonstrations is None else self.demonstrations.actions

    def init_dataloader(self, batch_size: int) -> None:
        """Make ``dataloader``: batches of ``batch_size`` over every kept step (SB2's, for GAIL)."""
        self.dataloader = self._loader(np.arange(self.num_transition, dtype=np.int64), batch_size, 2)

    def get_next_batch(self, split: Split = None) -> tuple[ObsArray, np.ndarray]:
        """The next batch ``(obs, actions)`` of a split: None (every step), ``"train"`` or ``"val"``.

        A pass that ends starts the next one, reshuffled.
        """
        if split not in (None, "train", "val"):
            raise ArgumentValueError(f"split: expected None, 'train' or 'val', got {split!r}")
        if split is None and self.dataloader is None:
            self.init_dataloader(self.batch_size)
        loader = {None: self.dataloader, "train": self.train_loader, "val": self.val_loader}[split]
        if loader is None:
            raise EmptyDatasetError(
                "split='val': the validation set is empty (train_fraction=1.0, or a single episode)"
            )
        try:
            return next(loader)
        except StopIteration:
            return next(iter(loader))

    def log_info(self) -> None:
        """Print the number of trajectories and transitions and the returns' mean and std."""
        print(f"Total trajectories: {self.num_traj}")
        print(f"Total transitions: {self.num_transition}")
        print(f"Average returns: {self.avg_ret}")
        print(f"Std for returns: {self.std_ret}")

    def plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Histogram of the episode returns: saved to ``path`` (PNG...), or shown when None.

        :return: the matplotlib ``Figure``
        """
        try:
            import matplotlib

            if path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("ExpertDataset.plot() needs matplotlib: pip install 'sb3-expert[plot]'") from e
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(self.returns, bins=min(30, max(5, len(self.returns) // 2)))
        ax.set_xlabel("episode return")
        ax.set_ylabel("episodes")
        ax.set_title(f"{self.num_traj} expert episodes: {self.avg_ret:.1f} +/- {self.std_ret:.1f}")
        fig.tight_layout()
        if path is None:
            plt.show()
        else:
            fig.savefig(path)
            plt.close(fig)
        return fig

    def close(self) -> None:
        """Close the ``.h5`` file read lazily, if any."""
        self.source.close()

    def __len__(self) -> int:
        return self.num_transition

    def __repr__(self) -> str:
        source = str(self.expert_path) if self.expert_path is not None else "traj_data"
        return (
            f"ExpertDataset({source!r}, {self.num_traj} trajectories, {self.num_transition} transitions, "
            f"{len(self.train_indices)} train / {len(self.val_indices)} val steps)"
        )
