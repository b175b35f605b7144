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
import math
import os
import warnings
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import LinearSchedule, configure_logger, get_schedule_fn, update_learning_rate
from typing_extensions import Self

from sb3_expert.arguments import check_count, check_flags, check_integers, check_logger, check_number
from sb3_expert.bc.batches import (
    Cloner,
    as_dataset,
    check_dataset_spaces,
    check_sequence_data,
)
from sb3_expert.bc.finetune import (
    can_anchor,
    can_finetune,
    check_finetuning_args,
    check_policy_gradient_args,
    check_replay_buffer,
    mixable,
    prepare_finetuning,
    prepare_policy_gradient,
)
from sb3_expert.bc.losses import loss_for
from sb3_expert.bc.normalize import fit_obs_statistics, normalized_keys, standardize_observations, vec_normalizer
from sb3_expert.bc.replay import DEMO_FRACTION
from sb3_expert.bc.teacher import ENSEMBLE_SIZE, PERTURBED_COPIES, Teacher, default_noise, teacher_skipped
from sb3_expert.data.dataset import ExpertDataset
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.source import obs_chunks
from sb3_expert.errors import ArgumentTypeError, ArgumentValueError

__all__ = ["PretrainMixin", "pretrain"]

SelfModel = TypeVar("SelfModel", bound=BaseAlgorithm)

TARGET_PAIRS = (
    ("actor", "actor_target"),
    ("critic", "critic_target"),
    ("q_net", "q_net_target"),
    ("quantile_net", "quantile_net_target"),
)


def _standardize(model: BaseAlgorithm, data: ExpertDataset, logger: Any) -> None:
    """Fit the observation statistics on the training rows and put them inside the policy."""
    space = model.policy.observation_space
    if not normalized_keys(space):
        return
    if standardize_observations(model, fit_obs_statistics(space, obs_chunks(data.source, data.train_indices))):
        logger.record("pretrain/normalize_obs", "fitted on the demonstrations")


def _sync_targets(policy: Any) -> None:
    """Copy online networks into their target networks (TD3/DDPG actor, critics, DQN, QR-DQN)."""
    for online, target in TARGET_PAIRS:
        if hasattr(policy, online) and hasattr(policy, target):
            getattr(policy, target).load_state_dict(getattr(policy, online).state_dict())


def _positive_number(value: Any) -> bool:
    """A finite number > 0 (not a bool): NaN and infinities are no settings."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    return number and math.isfinite(value) and bool(value > 0)


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
    vf_coef: Any,
    seed: Any,
    verbose: Any,
    logger: Any,
    flags: dict[str, Any],
    ensemble: Any,
    ensemble_noise: Any,
) -> None:
    """Every argument, before anything touches the model."""
    if not isinstance(model, BaseAlgorithm):
        raise ArgumentTypeError(f"model: expected an SB3 algorithm (PPO, SAC, DQN...), got {type(model).__name__}")
    check_count("n_epochs", n_epochs)
    check_count("batch_size", batch_size, allow_none=True)
    check_count("val_interval", val_interval, allow_none=True)
    if not callable(learning_rate):
        if not _positive_number(learning_rate):
            raise ArgumentValueError(
                f"learning_rate: expected a finite number > 0 or a schedule, got {learning_rate!r}"
            )
    else:  # SB3's schedule form: progress remaining (1 at the start) -> rate
        try:
            first = learning_rate(1.0)
        except Exception as e:
            raise ArgumentValueError(f"learning_rate: the schedule failed at progress 1.0: {e!r}") from e
        if not _positive_number(first):
            raise ArgumentValueError(f"learning_rate: expected the schedule to give a finite number > 0, got {first!r}")
    if not _positive_number(adam_epsilon):
        raise ArgumentValueError(f"adam_epsilon: expected a finite number > 0, got {adam_epsilon!r}")
    if lr_decay not in ("linear", "constant"):
        raise ArgumentValueError(f"lr_decay: expected 'linear' or 'constant', got {lr_decay!r}")
    if max_grad_norm is not None and not _positive_number(max_grad_norm):
        raise ArgumentValueError(f"max_grad_norm: expected None or a finite number > 0, got {max_grad_norm!r}")
    if not _positive_number(vf_coef):
        raise ArgumentValueError(f"vf_coef: expected a finite number > 0, got {vf_coef!r}")
    check_integers(seed=seed, verbose=verbose)
    check_flags(**flags)
    check_logger(logger)
    check_count("ensemble", ensemble, low=0, allow_none=True)
    if ensemble_noise is not None:
        check_number("ensemble_noise", ensemble_noise, 0.0)


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
    ensemble: int | None = None,
    ensemble_noise: float | None = None,
    finetune: bool | None = None,
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
    :param ensemble: for Box actions on vector observations, first train a teacher: this many MLPs
        (256x256 ReLU, tanh output), each on its own order of the rows, with the same batch size,
        epochs and learning rate; then the policy learns the teacher's mean action, on every batch
        as recorded and with noise added (two perturbed copies of each batch; see
        :mod:`sb3_expert.bc.teacher`). The teacher is then dropped; the model keeps its own
        networks. None (default): 5 where it applies, else plain cloning; 0: plain cloning; a
        number: that many (an error where it does not apply). It costs about 4x the time of plain
        cloning. Clones of the rl-zoo MuJoCo experts (HalfCheetah / Walker2d, 10 episodes, 100
        epochs, ``benchmarks/bench_clone_quality.py``, seeds 0-2, mujoco 4.0.1) score 0.94 / 0.95 of
        the expert for SAC, 0.92 / 0.91 for TD3 and 0.85 / 0.86 for PPO 256x256 (its likelihood free
        past the action bounds, which the environment clips:
        :func:`~sb3_expert.bc.losses.free_beyond_bounds`); plain cloning (``ensemble=0``, mujoco 3)
        scored 0.79 / 0.78, 0.78 / 0.69 and 0.06 / 0.44
    :param ensemble_noise: the mean noise on the states the policy learns the teacher's actions
        on, in units of each observation's standard deviation in the demonstrations (each
        perturbed row's scale is drawn uniformly between 0 and twice it); None: 0.1 for actions
        that come through a tanh (SAC, TD3, DDPG, TQC, CrossQ), 0.2 for a Gaussian's unbounded mean
        (PPO, A2C, TRPO, ARS unsquashed). Refused with ``ensemble=0``; with the default
        ``ensemble``, a warning says why it was not used when no teacher applies
    :param finetune: leave an off-policy actor-critic model (SAC, TD3, DDPG, TQC, CrossQ) ready for
        ``learn()`` (see :func:`~sb3_expert.bc.finetune.prepare_finetuning`): critic fitted to the
        clone, entropy coefficient and exploration started low, no random warm-up, demonstrations
        kept in the replay buffer, the actor held still at first and then tied to the frozen clone
        and to the demonstrations. None (default): when the model is such a model, its replay buffer
        can take the demonstrations (SB3's plain ones can, ``HerReplayBuffer`` cannot), and the
        demonstrations are in memory with rewards (not all zero); True: always (an error when it
        cannot); False: the model is left as behaviour cloning made it. The critic fit's 10,000
        gradient steps take about 2 minutes for a MuJoCo SAC on one CPU core. PPO and A2C with Box
        actions (feed-forward policies) are prepared too, by default: their optimizer's steps are
        pulled towards a frozen copy of the clone's mean action on the rollout's states
        (:func:`~sb3_expert.bc.finetune.prepare_policy_gradient`), without which PPO's first
        updates undo a MuJoCo clone (its spread, fitted by cloning, is small)
    :param finetune_kwargs: arguments of :func:`~sb3_expert.bc.finetune.prepare_finetuning`
        (``critic_steps``, ``critic_tau``, ``ent_coef``, ``actor_std``, ``action_noise``,
        ``demo_fraction``, ``bc_weight``, ``bc_decay``, ``anchor``, ``actor_delay``, ``actor_lr``,
        ``learning_starts``, ``target_entropy``, ``n_steps``), or for PPO and A2C of
        :func:`~sb3_expert.bc.finetune.prepare_policy_gradient` (``anchor``); None for a part turns it off. Refused with
        ``finetune=False``; with the default, a warning says why they were not used when the model
        is not prepared
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
        vf_coef=vf_coef,
        seed=seed,
        verbose=verbose,
        logger=logger,
        flags={"value_warm_start": value_warm_start, "normalize_obs": normalize_obs, "progress_bar": progress_bar},
        ensemble=ensemble,
        ensemble_noise=ensemble_noise,
    )
    data = as_dataset(dataset, validate=val_interval is not None, seed=seed)
    transpose = check_dataset_spaces(model, data)
    finetune = _finetune_wanted(model, finetune, finetune_kwargs, data.demonstrations)
    bc = loss_for(model.policy)
    logger = logger if logger is not None else _logger(model, verbose)
    if value_warm_start and (bc.value is None or bc.sequence):
        raise ArgumentTypeError(
            "value_warm_start: only feed-forward actor-critic policies have a value head to warm-start, "
            f"got {type(model.policy).__name__}"
        )
    check_sequence_data(bc, data)
    skipped = teacher_skipped(bc, data.observation_space, model.action_space, transpose)
    teachers = _teachers(ensemble, ensemble_noise, skipped)
    noise = default_noise(bc) if ensemble_noise is None else float(ensemble_noise)
    # everything is checked: from here on the model changes
    if bc.on_start is not None:
        bc.on_start(model)
    if normalize_obs and vec_normalizer(model) is None:
        _standardize(model, data, logger)
    cloner = Cloner(model, bc, data, transpose, int(batch_size or data.batch_size), seed, value_warm_start)
    parameters = list(model.policy.parameters() if value_warm_start else bc.parameters())
    if lr_decay == "linear" and not callable(learning_rate):
        initial = float(learning_rate)
        schedule: Schedule = LinearSchedule(initial, 0.0, 1.0)
    else:
        schedule = get_schedule_fn(learning_rate)
    if teachers:
        teacher = Teacher(cloner.train, bc, data.observation_space, model.action_space, teachers, cloner.device, seed)
        optimizer = th.optim.Adam(teacher.parameters(), lr=schedule(1.0), eps=adam_epsilon)
        for epoch in _progress(n_epochs, progress_bar, "pretrain: teacher"):
            update_learning_rate(optimizer, schedule(1.0 - epoch / n_epochs))
            teacher_loss = cloner.teacher_epoch(teacher, optimizer)
        cloner.teacher, cloner.noise = teacher, noise
        logger.record("pretrain/ensemble", f"{teachers} teachers, noise {noise}, perturbed copies {PERTURBED_COPIES}")
        logger.record("pretrain/teacher_loss", teacher_loss)
    optimizer = th.optim.Adam(parameters, lr=schedule(1.0), eps=adam_epsilon)
    interval = val_interval or max(1, n_epochs // 10)
    frozen = [p for p in parameters if not p.requires_grad]  # ARS trains without gradients
    for p in frozen:
        p.requires_grad_(True)
    try:
        for epoch in _progress(n_epochs, progress_bar, "pretrain"):
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
        _prepare_finetuning(model, data.demonstrations, finetune_kwargs or {}, seed, logger)
    return model


def _prepare_finetuning(
    model: BaseAlgorithm, demos: Demonstrations | None, kwargs: Mapping[str, Any], seed: int | None, logger: Logger
) -> None:
    """After cloning: PPO/A2C with Box actions tied to the clone, an off-policy model prepared."""
    if can_anchor(model):
        prepare_policy_gradient(model, seed=seed, logger=logger, **kwargs)
    else:
        prepare_finetuning(model, demos, logger=logger, **kwargs)
    logger.dump(model.num_timesteps)


def _teachers(ensemble: int | None, noise: float | None, skipped: str) -> int:
    """The teacher's size: ``ensemble`` (None: ENSEMBLE_SIZE where a teacher applies, else 0), after
    checking that a given ``noise`` will be used."""
    if ensemble == 0 and noise is not None:
        raise ArgumentTypeError(f"ensemble_noise: given ({noise}) with ensemble=0 (no teacher); drop one of the two")
    if ensemble is None:
        if skipped and noise is not None:
            warnings.warn(f"ensemble_noise ignored: no teacher trains here: {skipped}", stacklevel=3)
        return 0 if skipped else ENSEMBLE_SIZE
    if ensemble and skipped:
        raise ArgumentTypeError(f"ensemble: no teacher can train here: {skipped}; pass ensemble=0 or None")
    return int(ensemble)


def _progress(n_epochs: int, progress_bar: bool, desc: str) -> Any:
    """``range(n_epochs)``, under a progress bar (tqdm/rich, as SB3's ``learn``) when asked."""
    if not progress_bar:
        return range(n_epochs)
    from tqdm.rich import tqdm

    return tqdm(range(n_epochs), desc=desc, unit="epoch")


def _finetune_wanted(model: Any, finetune: Any, finetune_kwargs: Any, demos: Demonstrations | None) -> bool:
    """Whether ``pretrain`` ends with ``prepare_finetuning``; every argument of it checked first."""
    if finetune not in (None, True, False):
        raise ArgumentTypeError(f"finetune: expected None, True or False, got {finetune!r}")
    kwargs = {} if finetune_kwargs is None else finetune_kwargs
    if not isinstance(kwargs, Mapping):
        raise ArgumentTypeError(f"finetune_kwargs: expected a dict, got {type(kwargs).__name__}")
    check = check_policy_gradient_args if can_anchor(model) else check_finetuning_args
    known = set(inspect.signature(check).parameters)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ArgumentTypeError(
            f"finetune_kwargs: unknown {unknown} for {type(model).__name__}; expected some of {sorted(known)}"
        )
    check(**kwargs)
    if finetune is False:
        if kwargs:
            raise ArgumentTypeError(
                f"finetune_kwargs: given ({sorted(kwargs)}) with finetune=False; drop one of the two"
            )
        return False
    if can_anchor(model):  # PPO, A2C with Box actions: the pull needs neither rewards nor a buffer
        return True
    fraction = kwargs.get("demo_fraction", DEMO_FRACTION)
    if finetune is None:  # when it applies and there are rewards to fit a critic to
        skipped = _finetune_skipped(model, demos, fraction)
        if skipped and kwargs:
            warnings.warn(f"finetune_kwargs ignored: {skipped}; finetune=True insists", stacklevel=3)
        if not skipped:
            check_replay_buffer(model, fraction, kwargs.get("n_steps"))
        return not skipped
    if not can_finetune(model):
        raise ArgumentTypeError(
            "finetune: only off-policy models with an actor and a critic (SAC, TD3, DDPG, TQC, CrossQ) and PPO "
            "or A2C with a feed-forward policy and Box actions are prepared for fine-tuning, got "
            f"{type(model).__name__} with {model.action_space}; pass finetune=None or False"
        )
    if demos is None:
        raise ArgumentTypeError("finetune: the demonstrations must be in memory (ExpertDataset(in_memory=True))")
    check_replay_buffer(model, fraction, kwargs.get("n_steps"))
    return True


def _finetune_skipped(model: Any, demos: Demonstrations | None, fraction: Any) -> str:
    """Why ``finetune=None`` leaves the model as cloned ("" when it prepares it)."""
    if not can_finetune(model):
        return f"{type(model).__name__} is no off-policy model with an actor and a critic"
    if demos is None:
        return "the demonstrations are not in memory"
    if not np.any(demos.rewards != 0):
        return "the demonstrations have no rewards"
    if fraction is not None and not mixable(model.replay_buffer):
        return f"the model's {type(model.replay_buffer).__name__} cannot take the demonstrations"
    return ""


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
            raise ArgumentTypeError(f"PretrainMixin: mix it into an SB3 algorithm class, got {type(self).__name__}")
        pretrain(self, dataset, n_epochs, learning_rate, adam_epsilon, val_interval, **kwargs)
        return self
