"""DAgger: learn from an expert *policy*, for any student ``pretrain`` supports.

Behaviour cloning compounds its errors: the clone drifts into states the expert never showed it.
DAgger (Ross et al., 2011) lets the student drive, asks the expert to label every state visited,
and retrains on everything labelled so far. Each round:

1. **collect**: step the VecEnv; per step and sub-environment the expert's action is executed with
   probability ``beta`` (a schedule of the round), else the student's; the expert labels the
   state either way (one batched ``predict`` for all sub-environments);
2. **update**: :func:`~sb3_expert.bc.pretrain.pretrain` on the aggregated data (the same losses and
   observation standardisation; the student is warm-started, never re-initialised).

The aggregated data is a :class:`~sb3_expert.data.demonstrations.Demonstrations` stream written by
the recorders' own streams and writer: in memory, or to an ``.h5`` file as it goes (crash-safe,
flushed at the end of each round, resumable). Each step records the student's observation, the
expert's label as the action, the reward of the action executed, and two ``infos`` columns:
``expert_acted`` (who acted) and ``dagger_round``. ``max_rows`` caps the rows kept for training
(the oldest episodes are dropped; the file keeps everything).

Compared with ``imitation``'s ``SimpleDAggerTrainer``: any SB3 / sb3-contrib student (not only
actor-critic), Dict observations, a callable expert, a privileged expert (``expert_obs``), one
``.h5`` file instead of one file per episode, and a memory cap.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, VecTransposeImage, unwrap_vec_wrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

from sb3_expert.arguments import check_count, check_flags, check_integers
from sb3_expert.bc.dagger_config import (
    ExponentialBetaSchedule,
    LinearBetaSchedule,
    as_beta_schedule,
    check_env_fits,
    check_pretrain_kwargs,
    check_resumable,
    expert_view_fn,
)
from sb3_expert.bc.pretrain import pretrain
from sb3_expert.data.dataset import ExpertDataset
from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.io import as_demonstrations
from sb3_expert.data.obs import take
from sb3_expert.data.paths import format_of
from sb3_expert.errors import ArgumentTypeError, ArgumentValueError
from sb3_expert.record.generate import actor_fn
from sb3_expert.record.sinks import open_sink
from sb3_expert.record.streams import Stream
from sb3_expert.record.vec import VecStep, record_vec_step
from sb3_expert.record.wrapper import buffer_rows

__all__ = ["DAgger", "ExponentialBetaSchedule", "LinearBetaSchedule", "dagger"]

INFO_KEYS = ("expert_acted", "dagger_round")


class DAgger(contextlib.AbstractContextManager):
    """DAgger, step by step: :meth:`collect` a round, :meth:`update` the student, or :meth:`train`.

    :param model: the student: any SB3 / sb3-contrib algorithm :func:`pretrain` supports
    :param expert: anything :func:`~sb3_expert.experts.load_policy` returns, an SB3 model or policy,
        or a callable ``obs -> action`` taking the batch of all sub-environments' observations
    :param env: the VecEnv to collect in (default ``model.get_env()``); raw observations (a
        VecNormalize is refused: ``pretrain`` standardises inside the policy instead)
    :param path: ``.h5`` file for the aggregated data (written as it goes), or None (memory)
    :param overwrite: replace an existing file
    :param resume: continue from an existing file: its rounds and labels count, its data trains
    :param beta_schedule: ``"linear"`` (default: :class:`LinearBetaSchedule` over
        :data:`DEFAULT_RAMPDOWN` rounds), ``"exponential"`` (decay 0.5), a constant, or a callable
        ``round -> beta``; beta is the probability that the expert's action is executed
    :param rollout_steps: labelled steps per round, all sub-environments together
    :param n_epochs: ``pretrain`` epochs per round, over all the data kept
    :param demonstrations: round 0 from these (a path, :class:`Demonstrations` or in-memory
        :class:`ExpertDataset`) instead of an expert rollout; they join the aggregated data
    :param expert_obs: what the expert sees, when it differs from the student's observation: an
        ``info`` key, or a callable ``info -> observation`` (one sub-environment's info; at the
        start of an episode the reset's info)
    :param max_rows: keep at most this many rows for training: whole episodes, the oldest dropped first
        (the newest is kept even when longer); None keeps all
    :param deterministic: the student acts with its deterministic action
    :param eval_env: when given, the student is evaluated after each update (``dagger/eval_return``)
    :param n_eval_episodes: episodes per evaluation
    :param pretrain_kwargs: more arguments for :func:`pretrain` (``batch_size``, ``learning_rate``...);
        ``finetune`` is False unless given here: the rounds' rewards come from the mixed policy, not
        from the student, so a critic fitted to them each round would be wrong and slow; ``ensemble``
        is 0 unless given here: a teacher would train from scratch every round for ``n_epochs`` only
    :param seed: seed of the mixing draws, of the env's first reset and of the batch order
    :param verbose: 1 prints the logged values; default the model's ``verbose``
    :param progress_bar: a progress bar over labelled steps in :meth:`train`
    """

    def __init__(
        self,
        model: BaseAlgorithm,
        expert: Any,
        *,
        env: VecEnv | None = None,
        path: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        resume: bool = False,
        beta_schedule: str | float | Callable[[int], float] = "linear",
        rollout_steps: int = 5000,
        n_epochs: int = 10,
        demonstrations: str | os.PathLike[str] | Demonstrations | ExpertDataset | None = None,
        expert_obs: str | Callable[[Mapping[str, Any]], Any] | None = None,
        max_rows: int | None = None,
        deterministic: bool = True,
        eval_env: Any = None,
        n_eval_episodes: int = 5,
        pretrain_kwargs: Mapping[str, Any] | None = None,
        seed: int | None = None,
        verbose: int | None = None,
        progress_bar: bool = False,
    ) -> None:
        if not isinstance(model, BaseAlgorithm):
            raise ArgumentTypeError(f"model: expected an SB3 algorithm (PPO, SAC, DQN...), got {type(model).__name__}")
        if not callable(getattr(expert, "predict", None)) and not callable(expert):
            raise ArgumentTypeError(
                f"expert: expected an SB3 model or policy, or a callable obs -> action, got {type(expert).__name__}"
            )
        venv = env if env is not None else model.get_env()
        if isinstance(venv, VecTransposeImage):  # record images as the env emits them; predict transposes
            venv = venv.venv
        if not isinstance(venv, VecEnv):
            raise ArgumentTypeError(f"env: expected an SB3 VecEnv (the model has none), got {type(venv).__name__}")
        if unwrap_vec_wrapper(venv, VecNormalize) is not None:
            raise ArgumentTypeError(
                "env: DAgger collects raw observations and pretrain standardises them inside the policy; "
                "pass the env without its VecNormalize"
            )
        for name, given in (("env", env), ("eval_env", eval_env)):
            if given is not None:
                check_env_fits(model, given, name)
        check_count("rollout_steps", rollout_steps)
        check_count("n_epochs", n_epochs)
        check_count("n_eval_episodes", n_eval_episodes)
        check_count("max_rows", max_rows, allow_none=True)
        check_integers(seed=seed, verbose=verbose)
        check_flags(resume=resume, progress_bar=progress_bar, overwrite=overwrite, deterministic=deterministic)
        if path is not None and format_of(path, argument="path") != "hdf5":
            raise ArgumentValueError(f"path: expected an .h5 file (written as it goes) or None, got {path}")
        if resume and path is None:
            raise ArgumentValueError("resume: needs the path of the file to resume from, got path=None")
        check_pretrain_kwargs(pretrain_kwargs)
        self.beta_schedule = as_beta_schedule(beta_schedule)
        self.expert_view = expert_view_fn(expert_obs)
        first = None if demonstrations is None else as_demonstrations(demonstrations, "demonstrations")
        if resume and path is not None:
            check_resumable(path, first is not None)
        self.model, self.venv, self.eval_env = model, venv, eval_env
        self.rollout_steps, self.n_epochs, self.max_rows = int(rollout_steps), int(n_epochs), max_rows
        self.n_eval_episodes, self.progress_bar = n_eval_episodes, progress_bar
        self.pretrain_kwargs = dict(pretrain_kwargs or {})
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.expert_act = actor_fn(expert, deterministic=True)
        self.student_act = actor_fn(model, deterministic=deterministic)
        self.recurrent = hasattr(model.policy, "lstm_actor")
        self.logger: Logger = configure_logger(model.verbose if verbose is None else verbose, None, "dagger")
        meta = {"producer": {"recorder": "DAgger", "n_envs": venv.num_envs}}
        self.sink = open_sink(
            path, venv.observation_space, venv.action_space, overwrite=overwrite, append=resume, metadata=meta
        )
        rows = buffer_rows(venv.observation_space, 256)
        self.streams = [
            Stream(self.sink, exclusive=False, capacity=rows, info_keys=INFO_KEYS) for _ in range(venv.num_envs)
        ]
        self.round = 0
        self.labels = 0  # expert-labelled steps collected (rows of the file when resuming)
        self._data: Demonstrations | None = None
        self._stale = False  # data added since the last update
        self._obs: VecEnvObs | None = None
        self._bar: Any = None
        self.eval_returns: list[float] = []  # after each update, with eval_env
        if resume:
            self._resume()
        if first is not None:
            self._add_round_zero(first)

    # ------------------------------------------------------------------ data

    def _add_round_zero(self, demos: Demonstrations) -> None:
        """Given demonstrations are round 0, labelled by the expert that acted in them."""
        n = demos.n_steps
        demos = demos.with_infos({"expert_acted": np.ones(n, np.bool_), "dagger_round": np.zeros(n, np.int64)})
        self.sink.add(demos)
        self._keep(self.sink.drain())
        self.round = 1

    def _resume(self) -> None:
        """Take the file's data and rounds (checked by
        :func:`~sb3_expert.bc.dagger_config.check_resumable`); the next round follows the last one."""
        data = self.sink.drain()
        if data.n_steps == 0:
            return
        self.round = int(data.infos["dagger_round"].max()) + 1
        self.labels = data.n_steps
        self._keep(data)

    def _keep(self, part: Demonstrations) -> None:
        """Add ``part`` to the training data, dropping the oldest episodes beyond ``max_rows``."""
        if part.n_steps == 0:
            return
        data = part if self._data is None else Demonstrations.concatenate([self._data, part])
        if self.max_rows is not None and data.n_steps > self.max_rows:
            kept_from_end = np.cumsum(data.episode_lengths[::-1])
            n_keep = max(1, int(np.searchsorted(kept_from_end, self.max_rows, side="right")))
            data = data.select_episodes(np.arange(data.n_episodes - n_keep, data.n_episodes))
        self._data = data
        self._stale = True

    @property
    def dataset(self) -> Demonstrations | None:
        """The data the student trains on (whole episodes, capped at ``max_rows``), or None yet."""
        return self._data

    # ------------------------------------------------------------------ rounds

    def _views(self, obs: VecEnvObs, infos: list[dict[str, Any]]) -> Any:
        if self.expert_view is None:
            return obs
        return np.stack([np.asarray(self.expert_view(info)) for info in infos])

    def collect(self, n_steps: int | None = None) -> Demonstrations:
        """Run one round of ``n_steps`` labelled steps (default ``rollout_steps``), then flush.

        Episodes still running at the end of the round carry on in the environment; in the data
        they end there as truncated (their ``final_obs`` the next observation) and go on as a new
        episode in the next round, so that every round's steps are written and train at once.

        :return: the round's data
        """
        check_count("n_steps", n_steps, allow_none=True)
        venv, n_envs = self.venv, self.venv.num_envs
        beta = float(self.beta_schedule(self.round))
        if not 0.0 <= beta <= 1.0:
            raise ArgumentValueError(f"beta_schedule: expected a beta in [0, 1] for round {self.round}, got {beta}")
        if self._obs is None:
            if self.seed is not None:
                venv.seed(self.seed)
            self._obs = venv.reset()
            for i, stream in enumerate(self.streams):
                stream.begin(take(self._obs, i))
            self._infos = list(venv.unwrapped.reset_infos)
            self._starts = np.ones(n_envs, np.bool_)
            self._expert_state = self._student_state = None
        obs = self._obs
        steps = int(n_steps or self.rollout_steps)
        n_vec_steps = -(-steps // n_envs)
        expert_steps = 0
        bar = self._bar
        for _ in range(n_vec_steps):
            labels, self._expert_state = self.expert_act(
                self._views(obs, self._infos), self._expert_state, self._starts
            )
            labels = np.asarray(labels)
            expert_acts = self.rng.random(n_envs) < beta
            if self.recurrent or not expert_acts.all():
                student, self._student_state = self.student_act(obs, self._student_state, self._starts)
                shape = (n_envs,) + (1,) * (np.ndim(labels) - 1)
                actions = np.where(expert_acts.reshape(shape), labels, student)
            else:
                actions = labels
            obs, rewards, dones, infos = venv.step(actions)
            for i, info in enumerate(infos):
                info["expert_acted"] = expert_acts[i]
                info["dagger_round"] = self.round
            record_vec_step(self.streams, VecStep(labels, rewards, obs, dones, infos))
            if self.expert_view is not None:
                resets = venv.unwrapped.reset_infos
                self._infos = [resets[i] if done else info for i, (done, info) in enumerate(zip(dones, infos))]
            self._starts = dones
            expert_steps += int(expert_acts.sum())
            if bar is not None:
                bar.update(n_envs)
        self._obs = obs
        for i, stream in enumerate(self.streams):  # the round's data ends here: running episodes split
            stream.begin(take(obs, i))
        new = self.sink.drain()  # written and committed first
        self._keep(new)
        collected = n_vec_steps * n_envs
        self.labels += collected
        self.logger.record("dagger/round", self.round)
        self.logger.record("dagger/beta", beta)
        self.logger.record("dagger/labels", self.labels)
        self.logger.record("dagger/expert_acted_fraction", expert_steps / collected)
        self.round += 1
        return new

    def update(self) -> BaseAlgorithm:
        """Train the student on the data kept (``n_epochs`` of :func:`pretrain`); log and evaluate."""
        if self._data is None:
            raise RuntimeError("update: no data yet; collect() a round first")
        seed = self._round_seed()
        dataset = ExpertDataset(traj_data=self._data, train_fraction=1.0, verbose=0, seed=seed)
        self.logger.record("dagger/train_rows", self._data.n_steps)
        pretrain(
            self.model,
            dataset,
            self.n_epochs,
            val_interval=self.n_epochs,  # one log block per round
            seed=seed,
            logger=self.logger,
            # the rounds' rewards are not the student's; no ensemble teacher: it would start from
            # scratch every round, for n_epochs only, where the student is warm-started
            **{"finetune": False, "ensemble": 0, **self.pretrain_kwargs},
        )
        self._stale = False
        if self.eval_env is not None:
            returns, _ = evaluate_policy(
                self.model, self.eval_env, n_eval_episodes=self.n_eval_episodes, return_episode_rewards=True
            )
            self.eval_returns.append(float(np.mean(returns)))
            self.logger.record("dagger/eval_return", self.eval_returns[-1])
            self.logger.record("dagger/eval_return_std", float(np.std(returns)))
            self.logger.dump(self.labels)
        return self.model

    def _round_seed(self) -> int | None:
        return None if self.seed is None else self.seed + self.round

    def train(self, total_timesteps: int) -> BaseAlgorithm:
        """Rounds of :meth:`collect` and :meth:`update` until ``total_timesteps`` labelled steps
        (those of a resumed file included; given demonstrations not counted)."""
        check_count("total_timesteps", total_timesteps)
        self._bar = None
        if self.progress_bar:
            from tqdm.rich import tqdm

            self._bar = tqdm(
                total=total_timesteps, initial=min(self.labels, total_timesteps), desc="dagger", unit="step"
            )
        try:
            if self._stale:
                self.update()
            while self.labels < total_timesteps:
                self.collect(min(self.rollout_steps, total_timesteps - self.labels))
                self.update()
        finally:
            if self._bar is not None:
                self._bar.close()
            self._bar = None
        return self.model

    def close(self) -> None:
        """Write the episodes still running (as truncated) and close the file. Idempotent."""
        self.sink.close(self.streams)

    def __exit__(self, *exc: object) -> None:
        self.close()


def dagger(
    model: BaseAlgorithm, expert: Any, total_timesteps: int, *, env: VecEnv | None = None, **kwargs: Any
) -> BaseAlgorithm:
    """DAgger: train ``model`` on states it visits, labelled by ``expert``, for ``total_timesteps``
    labelled steps; returns the model. See :class:`DAgger` for the keyword arguments.

    .. code-block:: python

        expert = load_policy("sac", venv, path="rl-trained-agents/sac/HalfCheetah-v3_1")
        model = dagger(SAC("MlpPolicy", "HalfCheetah-v5"), expert, total_timesteps=50_000)
    """
    with DAgger(model, expert, env=env, **kwargs) as trainer:
        trainer.train(total_timesteps)
    return model
