"""Behaviour cloning's data and passes: a dataset checked against the model, served as batches of
tensors on the model's device (in memory: one index gather per batch; from a lazily read ``.h5``
file: windows of contiguous reads; RecurrentPPO: whole episodes, padded), and :class:`Cloner`'s
training and validation passes over them (``pretrain`` and DAgger drive it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecTransposeImage, unwrap_vec_wrapper

from sb3_expert.bc.losses import BCLoss, Obs
from sb3_expert.bc.normalize import vec_normalizer
from sb3_expert.bc.teacher import PERTURBED_COPIES, Teacher
from sb3_expert.data.dataset import ExpertDataset
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.obs import ObsArray, map_obs, take
from sb3_expert.data.source import StepSource, obs_chunks
from sb3_expert.data.spaces import check_action_space, check_spaces_match, row_nbytes
from sb3_expert.errors import ArgumentTypeError

__all__ = [
    "Batches",
    "Cloner",
    "LazyBatches",
    "SequenceBatches",
    "as_dataset",
    "check_dataset_spaces",
    "check_sequence_data",
    "discounted_returns",
    "obs_tensor",
]


def as_dataset(dataset: Any, *, validate: bool, seed: int | None) -> ExpertDataset:
    """``dataset`` as an :class:`ExpertDataset` (a path or :class:`Demonstrations` wrapped, 80% of it
    for training when ``validate``)."""
    if isinstance(dataset, ExpertDataset):
        return dataset
    if isinstance(dataset, Demonstrations):
        return ExpertDataset(traj_data=dataset, train_fraction=0.8 if validate else 1.0, verbose=0, seed=seed)
    if isinstance(dataset, (str, os.PathLike)):
        return ExpertDataset(expert_path=dataset, train_fraction=0.8 if validate else 1.0, verbose=0, seed=seed)
    raise ArgumentTypeError(
        "dataset: expected an ExpertDataset, a Demonstrations or a path to a .npz/.h5 file, "
        f"got {type(dataset).__name__}"
    )


def model_obs_space(model: BaseAlgorithm) -> tuple[spaces.Space, bool]:
    """The observation space the environment emits (undoing VecTransposeImage), and whether the
    model sees it transposed (channels first)."""
    env = model.get_env()
    transposer = None if env is None else unwrap_vec_wrapper(env, VecTransposeImage)
    if transposer is not None:
        return transposer.venv.observation_space, True
    return model.observation_space, False


def check_dataset_spaces(model: BaseAlgorithm, dataset: ExpertDataset) -> bool:
    """Raise :class:`SpaceMismatchError` (naming both) when the dataset does not fit the model.

    Spaces inferred from SB2 files (which store none) are checked leniently: shapes and dtypes, and
    Discrete actions within the model's range.

    :return: whether observations must be transposed to channels first for the model
    """
    env_space, transposed = model_obs_space(model)
    got_obs = dataset.observation_space
    if transposed and not isinstance(got_obs, spaces.Dict) and got_obs.shape == model.observation_space.shape:
        env_space, transposed = model.observation_space, False  # the data is already channels first
    what = f"the model ({type(model).__name__})"
    check_spaces_match(env_space, got_obs, name="observation_space", what=what)
    inferred = bool(dataset.source.metadata.get("spaces_inferred"))
    check_action_space(model.action_space, dataset.action_space, inferred=inferred, what=what)
    return transposed


def check_sequence_data(bc: BCLoss, dataset: ExpertDataset) -> None:
    """Raise TypeError when ``bc`` trains on whole episodes and ``dataset`` cannot give them (read
    lazily, or split by transition)."""
    if bc.sequence and (dataset.demonstrations is None or dataset.train_episodes is None):
        raise ArgumentTypeError(
            f"dataset: {bc.name} trains on whole episodes; load the data in memory (in_memory=True) "
            "and split it by episode (split='episode')"
        )


def obs_tensor(obs: ObsArray, device: th.device, transpose: bool) -> Obs:
    """``obs`` as tensors on ``device`` in their stored dtypes (images transposed to channels first
    when ``transpose``)."""

    def one(array: np.ndarray) -> th.Tensor:
        tensor = th.as_tensor(np.ascontiguousarray(array), device=device)
        return tensor.permute(0, 3, 1, 2).contiguous() if transpose and tensor.ndim == 4 else tensor

    return map_obs(obs, one)


def discounted_returns(rewards: np.ndarray, episode_starts: np.ndarray, gamma: float) -> np.ndarray:
    """``(N,)`` float32: the discounted return from each step to its episode's end."""
    out = np.empty(len(rewards), np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
        if episode_starts[t]:
            running = 0.0
    return out.astype(np.float32)


class Batches:
    """Rows on the device, served as shuffled index gathers: ``(obs, targets, *extras)`` per batch."""

    def __init__(self, obs: Obs, tensors: tuple[th.Tensor, ...], batch_size: int, generator: th.Generator) -> None:
        self.obs, self.tensors, self.batch_size, self.generator = obs, tensors, batch_size, generator
        self.n = len(tensors[0])

    def __iter__(self) -> Iterator[tuple[Obs, tuple[th.Tensor, ...]]]:
        order = th.randperm(self.n, device=self.tensors[0].device, generator=self.generator)
        obs = self.obs
        for start in range(0, self.n, self.batch_size):
            idx = order[start : start + self.batch_size]
            batch_obs = take(obs, idx)
            yield batch_obs, tuple(t[idx] for t in self.tensors)

    def stacked(self, k: int) -> Iterator[tuple[Obs, tuple[th.Tensor, ...]]]:
        """One pass in ``k`` independent orders at once: rows ``(k, batch, ...)`` per batch (an
        ensemble's members, each on its own order)."""
        device = self.tensors[0].device
        order = th.stack([th.randperm(self.n, device=device, generator=self.generator) for _ in range(k)])
        for start in range(0, self.n, self.batch_size):
            idx = order[:, start : start + self.batch_size]
            yield take(self.obs, idx), tuple(t[idx] for t in self.tensors)


class LazyBatches:
    """Rows read from a :class:`StepSource` (an ``.h5`` file read lazily) in windows of sorted
    indices (contiguous reads), each window shuffled on the device: memory holds one window, never
    the whole dataset."""

    def __init__(
        self,
        prepare: Any,
        source: StepSource,
        indices: np.ndarray,
        batch_size: int,
        seed: int | None,
        window_bytes: int = 64 * 2**20,
    ) -> None:
        self.prepare, self.source, self.batch_size = prepare, source, batch_size
        row_bytes = row_nbytes(source.observation_space) + row_nbytes(source.action_space)
        window = max(batch_size, window_bytes // row_bytes)
        self.windows = [indices[i : i + window] for i in range(0, len(indices), window)]
        self.rng = np.random.default_rng(seed)
        self.n = len(indices)

    def __iter__(self) -> Iterator[tuple[Obs, tuple[th.Tensor, ...]]]:
        for w in self.rng.permutation(len(self.windows)):
            rows = self.source.get(self.windows[w], ("obs", "actions"))
            obs, tensors = self.prepare(rows["obs"], rows["actions"])
            perm = th.as_tensor(self.rng.permutation(len(tensors[0])), device=tensors[0].device)
            for start in range(0, len(perm), self.batch_size):
                idx = perm[start : start + self.batch_size]
                batch_obs = take(obs, idx)
                yield batch_obs, tuple(t[idx] for t in tensors)


class SequenceBatches:
    """Whole episodes on the device, padded to the longest: ``(obs, (targets, mask))`` per batch of
    episodes, ``obs`` and ``targets`` flattened episode-major as RecurrentPPO's
    ``evaluate_actions`` takes them, ``mask`` ``(n_episodes, max_length)`` (0 on padding). A batch
    holds about ``batch_size`` steps (at least one episode)."""

    def __init__(
        self, obs: Obs, targets: th.Tensor, lengths: np.ndarray, batch_size: int, generator: th.Generator
    ) -> None:
        n, longest, device = len(lengths), int(lengths.max()), targets.device
        mask = th.arange(longest, device=device)[None, :] < th.as_tensor(lengths, device=device)[:, None]
        self.mask = mask.float()
        self.obs = map_obs(obs, lambda x: pad(x, mask))
        self.targets = pad(targets, mask)
        self.n, self.generator = n, generator
        self.per_batch = max(1, round(batch_size / float(np.mean(lengths))))

    def __iter__(self) -> Iterator[tuple[Obs, tuple[th.Tensor, ...]]]:
        order = th.randperm(self.n, device=self.mask.device, generator=self.generator)
        for start in range(0, self.n, self.per_batch):
            idx = order[start : start + self.per_batch]
            obs = map_obs(take(self.obs, idx), lambda x: x.flatten(0, 1))
            yield obs, (self.targets[idx].flatten(0, 1), self.mask[idx])


def pad(rows: th.Tensor, mask: th.Tensor) -> th.Tensor:
    """``(N, ...)`` rows of consecutive episodes -> ``(n_episodes, max_length, ...)``, zeros as padding."""
    out = rows.new_zeros((*mask.shape, *rows.shape[1:]))
    out[mask] = rows
    return out


class Cloner:
    """The data of one ``pretrain()`` call on the device, and its training and validation passes."""

    def __init__(
        self,
        model: BaseAlgorithm,
        bc: BCLoss,
        data: ExpertDataset,
        transpose: bool,
        batch_size: int,
        seed: int | None,
        warm: bool,
    ) -> None:
        self.model, self.bc, self.data, self.transpose = model, bc, data, transpose
        self.policy = model.policy
        self.device = model.policy.device
        self.batch_size, self.seed, self.warm = batch_size, seed, warm
        self.generator = th.Generator(device=self.device)
        self.generator.manual_seed(int(np.random.default_rng(seed).integers(2**62)))
        self.normalizer = vec_normalizer(model, obs_chunks(data.source, np.arange(data.num_transition)))
        self.train = self.batches(data.train_indices)
        self.val = self.batches(data.val_indices) if len(data.val_indices) else None
        self.teacher: Teacher | None = None  # set: the policy learns the teacher's actions
        self.noise = 0.0

    def prepare(
        self, obs: ObsArray, actions: np.ndarray, returns: np.ndarray | None = None
    ) -> tuple[Obs, tuple[th.Tensor, ...]]:
        """Observations (normalised, transposed) and targets as tensors on the device."""
        if self.normalizer is not None:
            obs = self.normalizer.normalize_obs(obs)
        tensors: tuple[th.Tensor, ...] = (self.bc.targets(actions, self.device),)
        if returns is not None:
            tensors += (th.as_tensor(returns, device=self.device),)
        return obs_tensor(obs, self.device, self.transpose), tensors

    def batches(self, idx: np.ndarray) -> Any:
        demos = self.data.demonstrations
        if self.bc.sequence:
            return self.sequences(idx)
        if demos is None:
            return LazyBatches(self.prepare, self.data.source, idx, self.batch_size, self.seed)
        returns = None
        if self.warm:
            gamma = float(getattr(self.model, "gamma", 0.99))
            returns = discounted_returns(demos.rewards, demos.episode_starts, gamma)[idx]
        obs, tensors = self.prepare(take(demos.obs, idx), demos.actions[idx], returns)
        return Batches(obs, tensors, self.batch_size, self.generator)

    def sequences(self, idx: np.ndarray) -> SequenceBatches:
        """Whole episodes for a sequence loss; ``idx`` holds whole episodes, in order."""
        demos = self.data.demonstrations
        assert demos is not None  # pretrain ran check_sequence_data before changing the model
        lengths = np.bincount(demos.episode_index[idx], minlength=demos.n_episodes)
        obs, tensors = self.prepare(take(demos.obs, idx), demos.actions[idx])
        return SequenceBatches(obs, tensors[0], lengths[lengths > 0], self.batch_size, self.generator)

    def epoch(
        self,
        optimizer: th.optim.Optimizer,
        parameters: list[th.nn.Parameter],
        vf_coef: float,
        max_grad_norm: float | None,
    ) -> float:
        """One pass over the training set; the mean loss (one device sync per epoch). With a
        teacher, each batch trains as recorded and with ``PERTURBED_COPIES`` perturbed copies, on the
        teacher's actions."""
        self.policy.set_training_mode(True)
        losses, sizes = [], []
        for obs, tensors in self.train:
            if self.teacher is not None:
                assert isinstance(obs, th.Tensor)  # teacher_skipped: vector observations only
                clean = obs.float()
                perturbed = [self.teacher.perturb(clean, self.noise, self.generator) for _ in range(PERTURBED_COPIES)]
                rows = th.cat([clean, *perturbed])
                loss = self.bc.loss(rows, self.teacher.targets(rows))
            else:
                loss = batch_loss(self.bc, obs, tensors)
            if self.warm:
                assert self.bc.value is not None
                loss = loss + vf_coef * th.nn.functional.mse_loss(self.bc.value(obs), tensors[1])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                th.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
            optimizer.step()
            losses.append(loss.detach())
            sizes.append(len(tensors[0]))
        if not losses:
            return float("nan")
        weights = th.as_tensor(sizes, dtype=th.float32, device=self.device)
        return float((th.stack(losses) * weights).sum() / weights.sum())

    def teacher_epoch(self, teacher: Teacher, optimizer: th.optim.Optimizer) -> float:
        """One pass of ``teacher`` over the training set, each member in its own order when the data
        is in memory (the same batches for all from a lazily read file); its members' mean loss."""
        losses = []
        batches = self.train.stacked(teacher.size) if isinstance(self.train, Batches) else self.train
        for obs, tensors in batches:
            assert isinstance(obs, th.Tensor)
            loss = teacher.loss(obs, tensors[0])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        return float(th.stack(losses).mean()) / teacher.size if losses else float("nan")

    def validate(self) -> tuple[float, float | None]:
        """Validation loss, and accuracy of the greedy action for discrete actions."""
        self.policy.set_training_mode(False)
        return evaluate(self.bc, self.val, self.device)


def batch_loss(bc: BCLoss, obs: Obs, tensors: tuple[th.Tensor, ...]) -> th.Tensor:
    """The batch's loss: sequence losses take ``(targets, mask)``, the others the targets alone."""
    return bc.loss(obs, *tensors[:2]) if bc.sequence else bc.loss(obs, tensors[0])


def evaluate(bc: BCLoss, batches: Any, device: th.device) -> tuple[float, float | None]:
    total, correct, count = th.zeros((), device=device), th.zeros((), device=device), 0
    with th.no_grad():
        for obs, tensors in batches:
            n = int(tensors[1].sum()) if bc.sequence else len(tensors[0])
            total += batch_loss(bc, obs, tensors) * n
            if bc.correct is not None:
                correct += bc.correct(obs, tensors[0])
            count += n
    count = max(count, 1)
    return float(total) / count, (float(correct) / count if bc.correct is not None else None)
