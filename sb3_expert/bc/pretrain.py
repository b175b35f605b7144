"""``pretrain()``: behaviour cloning into any SB3 model's own networks, and ``PretrainMixin``.

stable-baselines (v2) had ``model.pretrain(dataset, n_epochs)``; it re-initialised the model's
weights and handled few algorithms. Here the model's networks are trained in place (never
re-initialised; call it again to train more), for on- and off-policy algorithms (see
:mod:`sb3_expert.bc.losses`), and the model stays ready for ``learn()``, ``save()`` and ``load()``.

Speed: the training data goes to the model's device once, as tensors in their stored dtypes
(images stay uint8); a batch is one index gather on the device. Datasets read lazily from a large
``.h5`` file are streamed in windows of contiguous reads instead.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import configure_logger, get_schedule_fn, update_learning_rate
from typing_extensions import Self

from sb3_expert.bc.finetune import (
    can_finetune,
    check_finetuning_args,
    check_replay_buffer,
    mixable,
    prepare_finetuning,
)
from sb3_expert.bc.losses import BCLoss, Obs, loss_for
from sb3_expert.bc.normalize import fit_obs_statistics, normalized_keys, standardize_observations
from sb3_expert.bc.replay import DEMO_FRACTION
from sb3_expert.data.dataset import ExpertDataset
from sb3_expert.data.demonstrations import Demonstrations, ObsArray
from sb3_expert.data.spaces import check_action_space, check_spaces_match, row_nbytes

__all__ = ["PretrainMixin", "pretrain"]

SelfModel = TypeVar("SelfModel", bound=BaseAlgorithm)

TARGET_PAIRS = (("actor", "actor_target"), ("critic", "critic_target"), ("q_net", "q_net_target"),
                ("quantile_net", "quantile_net_target"))  # fmt: skip


def _as_dataset(dataset: Any, *, validate: bool, seed: int | None) -> ExpertDataset:
    if isinstance(dataset, ExpertDataset):
        return dataset
    if isinstance(dataset, Demonstrations):
        return ExpertDataset(traj_data=dataset, train_fraction=0.8 if validate else 1.0, verbose=0, seed=seed)
    if isinstance(dataset, (str, os.PathLike)):
        return ExpertDataset(expert_path=dataset, train_fraction=0.8 if validate else 1.0, verbose=0, seed=seed)
    raise TypeError(
        "dataset: expected an ExpertDataset, a Demonstrations or a path to a .npz/.h5 file, "
        f"got {type(dataset).__name__}"
    )


def _model_obs_space(model: BaseAlgorithm) -> tuple[spaces.Space, bool]:
    """The observation space the environment emits (undoing VecTransposeImage), and whether the
    model sees it transposed (channels first)."""
    space = model.observation_space
    env = model.get_env()
    inner: Any = env
    while inner is not None:
        if type(inner).__name__ == "VecTransposeImage":
            return inner.venv.observation_space, True
        inner = getattr(inner, "venv", None)
    return space, False


def check_dataset_spaces(model: BaseAlgorithm, dataset: ExpertDataset) -> bool:
    """Raise :class:`SpaceMismatchError` (naming both) when the dataset does not fit the model.

    Spaces inferred from SB2 files (which store none) are checked leniently: shapes and dtypes, and
    Discrete actions within the model's range.

    :return: whether observations must be transposed to channels first for the model
    """
    env_space, transposed = _model_obs_space(model)
    got_obs = dataset.observation_space
    if transposed and not isinstance(got_obs, spaces.Dict) and got_obs.shape == model.observation_space.shape:
        env_space, transposed = model.observation_space, False  # the data is already channels first
    what = f"the model ({type(model).__name__})"
    check_spaces_match(env_space, got_obs, name="observation_space", what=what)
    demos = dataset.demonstrations
    inferred = demos is not None and bool(demos.metadata.get("spaces_inferred"))
    check_action_space(model.action_space, dataset.action_space, inferred=inferred, what=what)
    return transposed


def _obs_tensor(obs: ObsArray, device: th.device, transpose: bool) -> Obs:
    def one(array: np.ndarray) -> th.Tensor:
        tensor = th.as_tensor(np.ascontiguousarray(array), device=device)
        return tensor.permute(0, 3, 1, 2).contiguous() if transpose and tensor.ndim == 4 else tensor

    return {k: one(v) for k, v in obs.items()} if isinstance(obs, dict) else one(obs)


def _fresh(rms: Any) -> bool:
    return bool(np.all(np.asarray(rms.count) <= 1.0))


def _normalizer(model: BaseAlgorithm, demos: Demonstrations | None) -> Any:
    """The model's VecNormalize when it normalises observations, else None. Statistics still fresh
    (a model that has not trained) are first fitted to the demonstrations, so that the clone and a
    later ``learn()`` see observations normalised alike."""
    norm = model.get_vec_normalize_env()
    if norm is None or not norm.norm_obs:
        return None
    if demos is not None:
        if isinstance(norm.obs_rms, dict):
            for key, rms in norm.obs_rms.items():
                if _fresh(rms):
                    rms.update(demos.obs[key])
        elif _fresh(norm.obs_rms):
            norm.obs_rms.update(demos.obs)
    return norm


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


class _Batches:
    """Rows on the device, served as shuffled index gathers: ``(obs, targets, *extras)`` per batch."""

    def __init__(self, obs: Obs, tensors: tuple[th.Tensor, ...], batch_size: int, generator: th.Generator) -> None:
        self.obs, self.tensors, self.batch_size, self.generator = obs, tensors, batch_size, generator
        self.n = len(tensors[0])

    def __iter__(self) -> Iterator[tuple[Obs, tuple[th.Tensor, ...]]]:
        order = th.randperm(self.n, device=self.tensors[0].device, generator=self.generator)
        obs = self.obs
        for start in range(0, self.n, self.batch_size):
            idx = order[start : start + self.batch_size]
            batch_obs = {k: v[idx] for k, v in obs.items()} if isinstance(obs, dict) else obs[idx]
            yield batch_obs, tuple(t[idx] for t in self.tensors)


class _LazyBatches:
    """Rows read from an ``.h5`` file in windows of sorted indices (contiguous reads), each window
    shuffled on the device: memory holds one window, never the whole dataset."""

    def __init__(self, prepare: Any, reader: Any, indices: np.ndarray, batch_size: int, seed: int | None,
                 window_bytes: int = 64 * 2**20) -> None:  # fmt: skip
        self.prepare, self.reader, self.batch_size = prepare, reader, batch_size
        row_bytes = row_nbytes(reader.observation_space) + row_nbytes(reader.action_space)
        window = max(batch_size, window_bytes // row_bytes)
        self.windows = [indices[i : i + window] for i in range(0, len(indices), window)]
        self.rng = np.random.default_rng(seed)
        self.n = len(indices)

    def __iter__(self) -> Iterator[tuple[Obs, tuple[th.Tensor, ...]]]:
        for w in self.rng.permutation(len(self.windows)):
            rows = self.reader.get(self.windows[w], ("obs", "actions"))
            obs, tensors = self.prepare(rows["obs"], rows["actions"])
            perm = th.as_tensor(self.rng.permutation(len(tensors[0])), device=tensors[0].device)
            for start in range(0, len(perm), self.batch_size):
                idx = perm[start : start + self.batch_size]
                batch_obs = {k: v[idx] for k, v in obs.items()} if isinstance(obs, dict) else obs[idx]
                yield batch_obs, tuple(t[idx] for t in tensors)


class _SequenceBatches:
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
        self.obs = _map_obs(obs, lambda x: _pad(x, mask))
        self.targets = _pad(targets, mask)
        self.n, self.generator = n, generator
        self.per_batch = max(1, round(batch_size / float(np.mean(lengths))))

    def __iter__(self) -> Iterator[tuple[Obs, tuple[th.Tensor, ...]]]:
        order = th.randperm(self.n, device=self.mask.device, generator=self.generator)
        for start in range(0, self.n, self.per_batch):
            idx = order[start : start + self.per_batch]
            obs = _map_obs(self.obs, lambda x, i=idx: x[i].flatten(0, 1))
            yield obs, (self.targets[idx].flatten(0, 1), self.mask[idx])


def _pad(rows: th.Tensor, mask: th.Tensor) -> th.Tensor:
    """``(N, ...)`` rows of consecutive episodes -> ``(n_episodes, max_length, ...)``, zeros as padding."""
    out = rows.new_zeros((*mask.shape, *rows.shape[1:]))
    out[mask] = rows
    return out


def _map_obs(obs: Any, fn: Any) -> Any:
    """``fn`` applied to an observation batch, or to each of its leaves for Dict observations."""
    return {k: fn(v) for k, v in obs.items()} if isinstance(obs, dict) else fn(obs)


def _take(obs: ObsArray, idx: np.ndarray) -> ObsArray:
    return _map_obs(obs, lambda v: v[idx])


def _standardize(model: BaseAlgorithm, data: ExpertDataset, logger: Any) -> None:
    """Fit the observation statistics on the training rows and put them inside the policy."""
    space = model.policy.observation_space
    if not normalized_keys(space):
        return
    idx = data.train_indices
    if data.demonstrations is not None:
        chunks: Any = [_take(data.demonstrations.obs, idx)]
    else:
        window = max(1, (64 * 2**20) // max(1, row_nbytes(space)))
        chunks = (data.reader.get(idx[i : i + window], ("obs",))["obs"] for i in range(0, len(idx), window))
    if standardize_observations(model, fit_obs_statistics(space, chunks)):
        logger.record("pretrain/normalize_obs", "fitted on the demonstrations")


def _sync_targets(policy: Any) -> None:
    """Copy online networks into their target networks (TD3/DDPG actor, critics, DQN, QR-DQN)."""
    for online, target in TARGET_PAIRS:
        if hasattr(policy, online) and hasattr(policy, target):
            getattr(policy, target).load_state_dict(getattr(policy, online).state_dict())


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and bool(value > 0)


def _check_args(
    model: Any,
    n_epochs: Any,
    learning_rate: Any,
    batch_size: Any,
    val_interval: Any,
    *,
    adam_epsilon: Any,
    lr_decay: Any,
    max_grad_norm: Any,
) -> None:
    """Every argument, before anything touches the model."""
    if not isinstance(model, BaseAlgorithm):
        raise TypeError(f"model: expected an SB3 algorithm (PPO, SAC, DQN...), got {type(model).__name__}")
    for name, value in (("n_epochs", n_epochs), ("batch_size", batch_size), ("val_interval", val_interval)):
        if value is None and name != "n_epochs":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if not callable(learning_rate) and not _positive_number(learning_rate):
        raise ValueError(f"learning_rate: expected a number > 0 or a schedule, got {learning_rate!r}")
    if not _positive_number(adam_epsilon):
        raise ValueError(f"adam_epsilon: expected a number > 0, got {adam_epsilon!r}")
    if lr_decay not in ("linear", "constant"):
        raise ValueError(f"lr_decay: expected 'linear' or 'constant', got {lr_decay!r}")
    if max_grad_norm is not None and not _positive_number(max_grad_norm):
        raise ValueError(f"max_grad_norm: expected None or a number > 0, got {max_grad_norm!r}")


def pretrain(
    model: SelfModel,
    dataset: ExpertDataset | Demonstrations | str | os.PathLike[str],
    n_epochs: int = 10,
    learning_rate: float | Schedule = 3e-3,
    adam_epsilon: float = 1e-8,
    val_interval: int | None = None,
    *,
    batch_size: int | None = None,
    seed: int | None = None,
    lr_decay: str = "linear",
    value_warm_start: bool = False,
    vf_coef: float = 0.5,
    max_grad_norm: float | None = None,
    normalize_obs: bool = True,
    finetune: bool | None = False,
    finetune_kwargs: Mapping[str, Any] | None = None,
    progress_bar: bool = False,
    verbose: int | None = None,
    logger: Logger | None = None,
) -> SelfModel:
    """Behaviour cloning: train ``model``'s own networks on expert demonstrations, in place.

    The loss depends on the policy family (see :mod:`sb3_expert.bc.losses`). Weights are never
    re-initialised; calling it again trains further. Target networks are synced at the end, and
    the model is left ready for ``learn()`` and ``save()``.

    :param model: any SB3 (or sb3-contrib) algorithm: PPO, A2C, SAC, TD3, DDPG, DQN, TQC, QR-DQN,
        CrossQ, TRPO, MaskablePPO, ARS, RecurrentPPO (whole episodes as sequences, LSTM states reset
        at each episode's start; the clone then acts with ``predict(obs, state, episode_start)``),
        and subclasses of their policies
    :param dataset: an :class:`ExpertDataset` (its train/validation split and batch size are used),
        a :class:`Demonstrations`, or a ``.npz``/``.h5`` path (then 20% of the episodes are held out
        for validation when ``val_interval`` is given, else everything trains)
    :param n_epochs: passes over the training set
    :param learning_rate: Adam's learning rate (a new Adam, as SB2 did; the model's optimizer is
        untouched), or an SB3 schedule of the remaining progress (1 to 0), applied per epoch
    :param lr_decay: for a number ``learning_rate``: ``"linear"`` (default) decays it to zero over the
        epochs, which makes the clone's quality much less dependent on the batch order than
        ``"constant"`` (measured on 50 rl-zoo SAC episodes, four batch-order seeds, 30 epochs: Pendulum
        SAC clones scored -152 to -307 at a constant 1e-3, -140 to -146 with 3e-3 decaying linearly)
    :param adam_epsilon: Adam's epsilon
    :param val_interval: log train and validation loss (and accuracy, for discrete actions) every
        this many epochs; None: every ``n_epochs // 10`` (at least 1)
    :param batch_size: rows per gradient step; default the dataset's (``ExpertDataset.batch_size``)
    :param seed: seed of the batch order (and of the split, for a path or a Demonstrations)
    :param value_warm_start: actor-critic policies: also fit the value head to the demonstrations'
        discounted returns (``model.gamma``), so that PPO fine-tuning starts from a sensible critic
    :param vf_coef: weight of the value loss with ``value_warm_start``
    :param max_grad_norm: clip the gradients' norm (None: no clipping)
    :param normalize_obs: standardise vector observations inside the policy with the mean and
        variance of the training demonstrations (see :mod:`sb3_expert.bc.normalize`), unless the
        model already normalises them with a VecNormalize (then its statistics are used, fitted to
        the demonstrations when still fresh). This changes the model: every features extractor of
        its policy is wrapped in a :class:`~sb3_expert.bc.normalize.NormalizedExtractor` (and
        ``model.policy_kwargs`` says so, so ``save``/``load`` rebuild it), whose statistics stay
        fixed during ``learn()``. A policy standardised by an earlier call keeps its statistics.
        Without it, clones on MuJoCo tasks are useless (0.01-0.13 of the expert, measured).
    :param finetune: leave an off-policy actor-critic model (SAC, TD3, DDPG, TQC, CrossQ) ready for
        ``learn()`` (see :func:`~sb3_expert.bc.finetune.prepare_finetuning`): critic fitted to the
        clone, entropy coefficient started low, no random warm-up, demonstrations kept in the replay
        buffer, the actor held still at first and then tied to the demonstrations by a decaying BC
        term. None: when the model is such a model and the demonstrations have rewards (not all
        zero) and are in memory; False (default, until its defaults hold on the MuJoCo benchmark):
        the model is left as behaviour cloning made it
    :param finetune_kwargs: arguments of :func:`~sb3_expert.bc.finetune.prepare_finetuning`
        (``critic_steps``, ``ent_coef``, ``demo_fraction``, ``bc_weight``, ``bc_decay``,
        ``actor_delay``, ``learning_starts``); None for a part turns it off
    :param progress_bar: show a progress bar over epochs (tqdm/rich, as SB3's ``learn``)
    :param verbose: 1 prints the logged values; default the model's ``verbose``
    :param logger: the SB3 ``Logger`` to record to (``pretrain/...`` keys); default the model's when it
        has one, else a new one configured as ``learn()`` would
    :return: the model, trained
    :raises SpaceMismatchError: when the dataset's spaces do not fit the model's (before any training)
    :raises TypeError: for a policy with no behaviour-cloning loss, or bad arguments

    .. code-block:: python

        model = PPO("MlpPolicy", "CartPole-v1")
        pretrain(model, ExpertDataset("expert_cartpole.npz", traj_limitation=10, verbose=0), n_epochs=20)
        model.learn(10_000)
    """
    _check_args(
        model,
        n_epochs,
        learning_rate,
        batch_size,
        val_interval,
        adam_epsilon=adam_epsilon,
        lr_decay=lr_decay,
        max_grad_norm=max_grad_norm,
    )
    data = _as_dataset(dataset, validate=val_interval is not None, seed=seed)
    transpose = check_dataset_spaces(model, data)
    finetune = _finetune_wanted(model, finetune, finetune_kwargs, data.demonstrations)
    bc = loss_for(model.policy)
    logger = logger if logger is not None else _logger(model, verbose)
    if value_warm_start and (bc.value is None or bc.sequence):
        raise TypeError(
            "value_warm_start: only feed-forward actor-critic policies have a value head to warm-start, "
            f"got {type(model.policy).__name__}"
        )
    if bc.on_start is not None:
        bc.on_start(model)
    if normalize_obs and _normalizer(model, None) is None:
        _standardize(model, data, logger)
    cloner = _Cloner(model, bc, data, transpose, int(batch_size or data.batch_size), seed, value_warm_start)
    parameters = list(model.policy.parameters() if value_warm_start else bc.parameters())
    if lr_decay == "linear" and not callable(learning_rate):
        initial = float(learning_rate)
        schedule: Schedule = lambda progress: initial * progress  # noqa: E731
    else:
        schedule = get_schedule_fn(learning_rate)
    optimizer = th.optim.Adam(parameters, lr=schedule(1.0), eps=adam_epsilon)
    interval = val_interval or max(1, n_epochs // 10)
    epochs: Any = range(n_epochs)
    if progress_bar:
        from tqdm.rich import tqdm

        epochs = tqdm(epochs, desc="pretrain", unit="epoch")
    frozen = [p for p in parameters if not p.requires_grad]  # ARS trains without gradients
    for p in frozen:
        p.requires_grad_(True)
    try:
        for epoch in epochs:
            update_learning_rate(optimizer, schedule(1.0 - epoch / n_epochs))
            train_loss = cloner.epoch(optimizer, parameters, vf_coef, max_grad_norm)
            if (epoch + 1) % interval == 0 or epoch + 1 == n_epochs:
                logger.record("pretrain/epoch", epoch + 1)
                logger.record("pretrain/train_loss", train_loss)
                logger.record("pretrain/learning_rate", optimizer.param_groups[0]["lr"])
                if cloner.val is not None:
                    val_loss, accuracy = cloner.validate()
                    logger.record("pretrain/val_loss", val_loss)
                    if accuracy is not None:
                        logger.record("pretrain/val_accuracy", accuracy)
                logger.dump(epoch + 1)
    finally:
        model.policy.set_training_mode(False)
        for p in frozen:
            p.requires_grad_(False)
    _sync_targets(model.policy)
    if bc.on_end is not None:
        bc.on_end(model)
    if finetune:
        prepare_finetuning(model, data.demonstrations, logger=logger, **(finetune_kwargs or {}))
        logger.dump(model.num_timesteps)
    return model


def _finetune_wanted(model: Any, finetune: Any, finetune_kwargs: Any, demos: Demonstrations | None) -> bool:
    """Whether ``pretrain`` ends with ``prepare_finetuning``; every argument of it checked first."""
    if finetune not in (None, True, False):
        raise TypeError(f"finetune: expected None, True or False, got {finetune!r}")
    kwargs = {} if finetune_kwargs is None else finetune_kwargs
    if not isinstance(kwargs, Mapping):
        raise TypeError(f"finetune_kwargs: expected a dict, got {type(kwargs).__name__}")
    known = set(inspect.signature(check_finetuning_args).parameters)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"finetune_kwargs: unknown {unknown}; expected some of {sorted(known)}")
    check_finetuning_args(**kwargs)
    if finetune is False:
        return False
    fraction = kwargs.get("demo_fraction", DEMO_FRACTION)
    if finetune is None:  # when it applies and there are rewards to fit a critic to
        return (
            demos is not None
            and can_finetune(model)
            and bool(np.any(demos.rewards != 0))
            and (fraction is None or mixable(model.replay_buffer))
        )
    if not can_finetune(model):
        raise TypeError(
            "finetune: only off-policy models with an actor and a critic (SAC, TD3, DDPG, TQC, CrossQ) are "
            f"prepared for fine-tuning, got {type(model).__name__}"
        )
    if demos is None:
        raise TypeError("finetune: the demonstrations must be in memory (ExpertDataset(in_memory=True))")
    check_replay_buffer(model, fraction)
    return True


class _Cloner:
    """The data of one ``pretrain()`` call on the device, and its training and validation passes."""

    def __init__(
        self, model: BaseAlgorithm, bc: BCLoss, data: ExpertDataset, transpose: bool, batch_size: int,
        seed: int | None, warm: bool,
    ) -> None:  # fmt: skip
        self.model, self.bc, self.data, self.transpose = model, bc, data, transpose
        self.policy = model.policy
        self.device = model.policy.device
        self.batch_size, self.seed, self.warm = batch_size, seed, warm
        self.generator = th.Generator(device=self.device)
        self.generator.manual_seed(int(np.random.default_rng(seed).integers(2**62)))
        self.normalizer = _normalizer(model, data.demonstrations)
        self.train = self.batches(data.train_indices)
        self.val = self.batches(data.val_indices) if len(data.val_indices) else None

    def prepare(
        self, obs: ObsArray, actions: np.ndarray, returns: np.ndarray | None = None
    ) -> tuple[Obs, tuple[th.Tensor, ...]]:
        """Observations (normalised, transposed) and targets as tensors on the device."""
        if self.normalizer is not None:
            obs = self.normalizer.normalize_obs(obs)
        tensors: tuple[th.Tensor, ...] = (self.bc.targets(actions, self.device),)
        if returns is not None:
            tensors += (th.as_tensor(returns, device=self.device),)
        return _obs_tensor(obs, self.device, self.transpose), tensors

    def batches(self, idx: np.ndarray) -> Any:
        demos = self.data.demonstrations
        if self.bc.sequence:
            return self.sequences(idx)
        if demos is None:
            return _LazyBatches(self.prepare, self.data.reader, idx, self.batch_size, self.seed)
        returns = None
        if self.warm:
            gamma = float(getattr(self.model, "gamma", 0.99))
            returns = discounted_returns(demos.rewards, demos.episode_starts, gamma)[idx]
        obs, tensors = self.prepare(_take(demos.obs, idx), demos.actions[idx], returns)
        return _Batches(obs, tensors, self.batch_size, self.generator)

    def sequences(self, idx: np.ndarray) -> _SequenceBatches:
        """Whole episodes for a sequence loss; ``idx`` holds whole episodes, in order."""
        demos = self.data.demonstrations
        if demos is None or self.data.train_episodes is None:
            raise TypeError(
                f"dataset: {self.bc.name} trains on whole episodes; load the data in memory (in_memory=True) "
                "and split it by episode (split='episode')"
            )
        lengths = np.bincount(demos.episode_index[idx], minlength=demos.n_episodes)
        obs, tensors = self.prepare(_take(demos.obs, idx), demos.actions[idx])
        return _SequenceBatches(obs, tensors[0], lengths[lengths > 0], self.batch_size, self.generator)

    def epoch(
        self, optimizer: th.optim.Optimizer, parameters: list[th.nn.Parameter], vf_coef: float,
        max_grad_norm: float | None,
    ) -> float:  # fmt: skip
        """One pass over the training set; the mean loss (one device sync per epoch)."""
        self.policy.set_training_mode(True)
        losses, sizes = [], []
        for obs, tensors in self.train:
            loss = _batch_loss(self.bc, obs, tensors)
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

    def validate(self) -> tuple[float, float | None]:
        """Validation loss, and accuracy of the greedy action for discrete actions."""
        self.policy.set_training_mode(False)
        return _evaluate(self.bc, self.val, self.device)


def _batch_loss(bc: BCLoss, obs: Obs, tensors: tuple[th.Tensor, ...]) -> th.Tensor:
    """The batch's loss: sequence losses take ``(targets, mask)``, the others the targets alone."""
    return bc.loss(obs, *tensors[:2]) if bc.sequence else bc.loss(obs, tensors[0])


def _evaluate(bc: BCLoss, batches: Any, device: th.device) -> tuple[float, float | None]:
    total, correct, count = th.zeros((), device=device), th.zeros((), device=device), 0
    with th.no_grad():
        for obs, tensors in batches:
            n = int(tensors[1].sum()) if bc.sequence else len(tensors[0])
            total += _batch_loss(bc, obs, tensors) * n
            if bc.correct is not None:
                correct += bc.correct(obs, tensors[0])
            count += n
    count = max(count, 1)
    return float(total) / count, (float(correct) / count if bc.correct is not None else None)


def _logger(model: BaseAlgorithm, verbose: int | None) -> Any:
    """The model's SB3 logger when it has one (a custom one, or from an earlier ``learn()``); else a
    new one configured as ``learn()`` would (stdout per ``verbose``, TensorBoard when configured),
    left unattached so that ``learn()`` still configures its own."""
    existing = getattr(model, "_logger", None)
    if existing is not None:
        return existing
    return configure_logger(model.verbose if verbose is None else verbose, model.tensorboard_log, "pretrain")


class PretrainMixin:
    """Gives an SB3 algorithm class stable-baselines (v2)'s ``pretrain()`` method.

    .. code-block:: python

        class PretrainPPO(PretrainMixin, PPO):
            pass

        model = PretrainPPO("MlpPolicy", "CartPole-v1").pretrain(dataset, n_epochs=20)
        model.save("ppo_cloned")
        PretrainPPO.load("ppo_cloned")
    """

    def pretrain(
        self,
        dataset: ExpertDataset | Demonstrations | str | os.PathLike[str],
        n_epochs: int = 10,
        learning_rate: float | Schedule = 3e-3,
        adam_epsilon: float = 1e-8,
        val_interval: int | None = None,
        **kwargs: Any,
    ) -> Self:
        """SB2's ``model.pretrain(dataset, n_epochs, learning_rate, adam_epsilon, val_interval)``;
        see :func:`pretrain` for the keyword-only extras."""
        if not isinstance(self, BaseAlgorithm):
            raise TypeError(f"PretrainMixin: mix it into an SB3 algorithm class, got {type(self).__name__}")
        pretrain(self, dataset, n_epochs, learning_rate, adam_epsilon, val_interval, **kwargs)
        return self
