"""What each ``sb3-expert`` subcommand does, given its parsed arguments (the parser:
:mod:`sb3_expert.cli`). Heavy imports happen inside each command, so ``--help`` stays fast."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from sb3_expert.errors import ArgumentValueError

__all__ = ["convert", "dagger_command", "demo", "evaluate", "info", "pretrain_command", "record"]


def _kwargs(pairs: Sequence[str]) -> dict[str, object]:
    """``k=v`` pairs; values read as JSON when they parse (numbers, booleans, lists), else strings."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ArgumentValueError(f"--expert-kwargs: expected key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _venv(env_id: str, n_envs: int = 1, seed: int | None = None) -> Any:
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env(env_id, n_envs=n_envs, seed=seed)


def _json_object(flag: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ArgumentValueError(
            f"{flag}: expected a JSON object such as '{{\"net_arch\": [64, 64]}}', got {text!r} ({e})"
        ) from e
    if not isinstance(value, dict):
        raise ArgumentValueError(f"{flag}: expected a JSON object, got {type(value).__name__} {text!r}")
    return value


def _load_expert(args: argparse.Namespace, venv: Any) -> Any:
    """The ``--expert`` of ``--expert-kwargs`` for ``venv`` (the Hub's env name defaults to ``--env``)."""
    from sb3_expert.experts.registry import load_policy

    kwargs = _kwargs(args.expert_kwargs)
    if args.expert.endswith("-huggingface"):
        kwargs.setdefault("env_name", args.env)
    if args.trust_remote_code:
        kwargs["trust_remote_code"] = True
    return load_policy(args.expert, venv, **kwargs)


def record(args: argparse.Namespace) -> None:
    from sb3_expert.data.paths import check_output_path, format_of
    from sb3_expert.record.generate import generate_expert_traj

    format_of(args.out, argument="--out")  # .npz or .h5: SB2's rule would silently append .npz
    check_output_path(args.out, overwrite=args.overwrite, argument="--out")
    venv = _venv(args.env, args.n_envs, args.seed)
    policy = _load_expert(args, venv)
    data = generate_expert_traj(
        policy,
        args.out,
        venv,
        n_episodes=args.episodes,
        seed=args.seed,
        deterministic=not args.stochastic,
        overwrite=args.overwrite,
        progress_bar=not args.no_progress,
    )
    returns = data["episode_returns"]
    print(
        f"recorded {len(returns)} episodes, {len(data['rewards'])} steps, return {returns.mean():.2f} "
        f"+/- {returns.std():.2f} to {args.out}"
    )


def pretrain_command(args: argparse.Namespace) -> None:
    from gymnasium import spaces

    from sb3_expert.bc.pretrain import pretrain
    from sb3_expert.data.dataset import ExpertDataset
    from sb3_expert.experts.sb3 import algorithm_class, model_output_path, save_model

    policy_kwargs = _json_object("--policy-kwargs", args.policy_kwargs)  # before anything is loaded
    out = model_output_path(args.out, overwrite=args.overwrite, argument="--out")
    cls: Any = algorithm_class(args.algo)
    dataset = ExpertDataset(expert_path=args.dataset, verbose=0, seed=args.seed, batch_size=args.batch_size)
    venv = _venv(args.env, seed=args.seed)
    policy = "MultiInputPolicy" if isinstance(venv.observation_space, spaces.Dict) else "MlpPolicy"
    model = cls(policy, venv, policy_kwargs=policy_kwargs, seed=args.seed, verbose=0)
    pretrain(
        model,
        dataset,
        n_epochs=args.epochs,
        seed=args.seed,
        val_interval=max(1, args.epochs // 10),
        ensemble=args.ensemble,
        progress_bar=not args.no_progress,
        verbose=1,
        finetune=False,  # what it prepares (demonstration buffer, actor hook) does not survive save()
    )
    save_model(model, out)
    print(f"saved the pretrained {cls.__name__} to {out}")


def dagger_command(args: argparse.Namespace) -> None:
    from gymnasium import spaces
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert.bc.dagger import DAgger
    from sb3_expert.data.paths import format_of
    from sb3_expert.experts.sb3 import algorithm_class, model_output_path, save_model

    policy_kwargs = _json_object("--policy-kwargs", args.policy_kwargs)  # before anything is loaded
    out = model_output_path(args.out, overwrite=args.overwrite, argument="--out")
    if args.eval_episodes < 0:
        raise ArgumentValueError(
            f"--eval-episodes: expected an integer >= 0 (0: no evaluation), got {args.eval_episodes}"
        )
    if args.data is not None and format_of(args.data, argument="--data") != "hdf5":
        raise ArgumentValueError(f"--data: expected a file name ending in .h5 (written as it goes), got {args.data!r}")
    cls: Any = algorithm_class(args.algo)
    venv = _venv(args.env, args.n_envs, args.seed)
    expert = _load_expert(args, venv)
    policy = "MultiInputPolicy" if isinstance(venv.observation_space, spaces.Dict) else "MlpPolicy"
    model = cls(policy, venv, policy_kwargs=policy_kwargs, seed=args.seed, verbose=0)
    eval_env = make_vec_env(args.env, seed=args.seed + 1000) if args.eval_episodes else None
    with DAgger(
        model,
        expert,
        path=args.data,
        overwrite=args.overwrite,
        resume=args.resume,
        beta_schedule=args.beta,
        rollout_steps=args.rollout_steps,
        n_epochs=args.epochs,
        eval_env=eval_env,
        n_eval_episodes=args.eval_episodes or 1,
        seed=args.seed,
        verbose=1,
        progress_bar=not args.no_progress,
    ) as run:
        run.train(args.timesteps)
    save_model(model, out)
    print(f"saved the DAgger-trained {cls.__name__} ({run.labels} labelled steps, {run.round} rounds) to {out}")


def evaluate(args: argparse.Namespace) -> None:
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_expert.experts.registry import load_policy

    venv = _venv(args.env, seed=args.seed)
    policy = load_policy(args.algo, venv, path=args.model, trust_remote_code=args.trust_remote_code)
    result: Any = evaluate_policy(
        policy, venv, n_eval_episodes=args.episodes, deterministic=not args.stochastic, return_episode_rewards=True
    )
    returns, lengths = result
    print(
        f"{args.algo} {args.model} on {args.env}: mean return {np.mean(returns):.2f} +/- {np.std(returns):.2f} "
        f"over {np.size(returns)} episodes (mean length {np.mean(lengths):.1f})"
    )


def info(args: argparse.Namespace) -> None:
    from sb3_expert.data.dataset import ExpertDataset
    from sb3_expert.data.io import load_demonstrations

    demos = load_demonstrations(args.file)
    returns, lengths = demos.episode_returns, demos.episode_lengths
    print(f"file:              {args.file}")
    print(f"steps:             {demos.n_steps}")
    print(
        f"episodes:          {demos.n_episodes} ({int(demos.terminated.sum())} terminated, "
        f"{int((demos.truncated & ~demos.terminated).sum())} truncated)"
    )
    if demos.n_episodes:
        print(
            f"returns:           mean {returns.mean():.2f}, std {returns.std():.2f}, "
            f"min {returns.min():.2f}, max {returns.max():.2f}"
        )
        print(f"episode lengths:   mean {lengths.mean():.1f}, min {lengths.min()}, max {lengths.max()}")
    print(f"observation space: {demos.observation_space}")
    print(f"action space:      {demos.action_space}")
    for key in ("env_id", "producer", "created", "versions", "spaces_inferred"):
        if key in demos.metadata:
            print(f"{key + ':':<19}{demos.metadata[key]}")
    if args.plot:
        ExpertDataset(traj_data=demos, verbose=0).plot(args.plot)
        print(f"plot:              {args.plot}")


def convert(args: argparse.Namespace) -> None:
    from sb3_expert.data import interop
    from sb3_expert.data.io import load_demonstrations, save_demonstrations

    if args.input.startswith("minari:"):
        demos = interop.from_minari(args.input.removeprefix("minari:"))
    elif args.input.startswith("imitation:"):
        spaces_ = {}
        if args.env:
            import gymnasium as gym

            env = gym.make(args.env)
            spaces_ = {"observation_space": env.observation_space, "action_space": env.action_space}
        demos = interop.load_imitation_npz(args.input.removeprefix("imitation:"), **spaces_)
    else:
        demos = load_demonstrations(args.input)
    if args.output.startswith("minari:"):
        interop.to_minari(demos, args.output.removeprefix("minari:"), algorithm_name="sb3-expert convert")
    elif args.output.startswith("imitation:"):
        from sb3_expert.data.paths import check_output_path

        interop.save_imitation_npz(
            demos,
            str(check_output_path(args.output.removeprefix("imitation:"), overwrite=args.overwrite, argument="OUT")),
        )
    else:
        save_demonstrations(demos, args.output, overwrite=args.overwrite)
    print(f"wrote {demos.n_steps} steps, {demos.n_episodes} episodes to {args.output}")


def demo(args: argparse.Namespace) -> None:
    from sb3_expert.demo import run_demo

    run_demo(
        args.out,
        episodes=args.episodes,
        epochs=args.epochs,
        eval_episodes=args.eval_episodes,
        seed=args.seed,
        plot=not args.no_plot,
    )
