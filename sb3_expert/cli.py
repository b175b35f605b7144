"""The ``sb3-expert`` command.

Subcommands: ``record`` (an expert's episodes to a file), ``pretrain`` (behaviour cloning into a
new model), ``evaluate``, ``info`` (what a demonstrations file holds), ``convert`` (between ``.npz``
and ``.h5``) and ``demo`` (the end-to-end run). Bad input gets a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["main"]

EXAMPLES = """examples:
  sb3-expert demo
  sb3-expert record --expert ppo --expert-kwargs path=rl-trained-agents/ppo/CartPole-v1_1 \\
      --env CartPole-v1 --episodes 10 --out expert_cartpole.h5
  sb3-expert record --expert sac-huggingface --env Pendulum-v1 --episodes 50 --out pendulum.npz --n-envs 4
  sb3-expert pretrain --algo ppo --env CartPole-v1 --dataset expert_cartpole.h5 --epochs 20 --out ppo_bc.zip
  sb3-expert dagger --expert sac --expert-kwargs path=rl-trained-agents/sac/HalfCheetah-v3_1 \\
      --env HalfCheetah-v5 --algo sac --timesteps 50000 --data dagger.h5 --out sac_dagger.zip
  sb3-expert evaluate --algo ppo --model ppo_bc.zip --env CartPole-v1 --episodes 10
  sb3-expert info expert_cartpole.npz
  sb3-expert info demos.h5 --plot returns.png
  sb3-expert convert expert_cartpole.npz expert_cartpole.h5
  sb3-expert convert demos.h5 minari:sb3expert/cartpole-expert-v0
  sb3-expert convert demos.h5 imitation:rollouts.npz
  sb3-expert convert imitation:rollouts.npz demos.h5 --env CartPole-v1
"""


def _kwargs(pairs: Sequence[str]) -> dict[str, object]:
    """``k=v`` pairs; values read as JSON when they parse (numbers, booleans, lists), else strings."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--expert-kwargs: expected key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _venv(env_id: str, n_envs: int = 1, seed: int | None = None) -> Any:
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env(env_id, n_envs=n_envs, seed=seed)


TRUST_HELP = "let the model's files run code while loading (objects off the allow-list); only for files you trust"


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the flag in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _json_object(flag: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{flag}: expected a JSON object such as '{{\"net_arch\": [64, 64]}}', got {text!r} ({e})"
        ) from e
    if not isinstance(value, dict):
        raise ValueError(f"{flag}: expected a JSON object, got {type(value).__name__} {text!r}")
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


def _record(args: argparse.Namespace) -> None:
    from sb3_expert.data.paths import check_output_path, format_of
    from sb3_expert.record.generate import generate_expert_traj

    format_of(args.out, argument="--out")  # .npz or .h5: SB2's rule would silently append .npz
    check_output_path(args.out, overwrite=args.overwrite, argument="--out")
    venv = _venv(args.env, args.n_envs, args.seed)
    policy = _load_expert(args, venv)
    data = generate_expert_traj(policy, args.out, venv, n_episodes=args.episodes, seed=args.seed,
                                deterministic=not args.stochastic, overwrite=args.overwrite,
                                progress_bar=not args.no_progress)  # fmt: skip
    returns = data["episode_returns"]
    print(f"recorded {len(returns)} episodes, {len(data['rewards'])} steps, return {returns.mean():.2f} "
          f"+/- {returns.std():.2f} to {args.out}")  # fmt: skip


def _pretrain(args: argparse.Namespace) -> None:
    from gymnasium import spaces

    from sb3_expert.bc.pretrain import pretrain
    from sb3_expert.data.dataset import ExpertDataset
    from sb3_expert.data.paths import check_output_path
    from sb3_expert.experts.sb3 import algorithm_class

    policy_kwargs = _json_object("--policy-kwargs", args.policy_kwargs)  # before anything is loaded
    out = check_output_path(args.out, overwrite=args.overwrite, argument="--out")
    cls: Any = algorithm_class(args.algo)
    dataset = ExpertDataset(expert_path=args.dataset, verbose=0, seed=args.seed, batch_size=args.batch_size)
    venv = _venv(args.env, seed=args.seed)
    policy = "MultiInputPolicy" if isinstance(venv.observation_space, spaces.Dict) else "MlpPolicy"
    model = cls(policy, venv, policy_kwargs=policy_kwargs, seed=args.seed, verbose=0)
    pretrain(model, dataset, n_epochs=args.epochs, seed=args.seed, val_interval=max(1, args.epochs // 10),
             progress_bar=not args.no_progress, verbose=1)  # fmt: skip
    model.save(out)
    print(f"saved the pretrained {cls.__name__} to {out}")


def _beta(text: str) -> str | float:
    if text in ("linear", "exponential"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected linear, exponential or a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _dagger(args: argparse.Namespace) -> None:
    from gymnasium import spaces
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert.bc.dagger import DAgger
    from sb3_expert.data.paths import check_output_path, format_of
    from sb3_expert.experts.sb3 import algorithm_class

    policy_kwargs = _json_object("--policy-kwargs", args.policy_kwargs)  # before anything is loaded
    out = check_output_path(args.out, overwrite=args.overwrite, argument="--out")
    if args.eval_episodes < 0:
        raise ValueError(f"--eval-episodes: expected an integer >= 0 (0: no evaluation), got {args.eval_episodes}")
    if args.data is not None and format_of(args.data, argument="--data") != "hdf5":
        raise ValueError(f"--data: expected a file name ending in .h5 (written as it goes), got {args.data!r}")
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
    model.save(out)
    print(f"saved the DAgger-trained {cls.__name__} ({run.labels} labelled steps, {run.round} rounds) to {out}")


def _evaluate(args: argparse.Namespace) -> None:
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_expert.experts.registry import load_policy

    venv = _venv(args.env, seed=args.seed)
    policy = load_policy(args.algo, venv, path=args.model, trust_remote_code=args.trust_remote_code)
    result: Any = evaluate_policy(policy, venv, n_eval_episodes=args.episodes, deterministic=not args.stochastic,
                                  return_episode_rewards=True)  # fmt: skip
    returns, lengths = result
    print(f"{args.algo} {args.model} on {args.env}: mean return {np.mean(returns):.2f} +/- {np.std(returns):.2f} "
          f"over {np.size(returns)} episodes (mean length {np.mean(lengths):.1f})")  # fmt: skip


def _info(args: argparse.Namespace) -> None:
    from sb3_expert.data.dataset import ExpertDataset
    from sb3_expert.data.io import load_demonstrations

    demos = load_demonstrations(args.file)
    returns, lengths = demos.episode_returns, demos.episode_lengths
    print(f"file:              {args.file}")
    print(f"steps:             {demos.n_steps}")
    print(f"episodes:          {demos.n_episodes} ({int(demos.terminated.sum())} terminated, "
          f"{int((demos.truncated & ~demos.terminated).sum())} truncated)")  # fmt: skip
    if demos.n_episodes:
        print(f"returns:           mean {returns.mean():.2f}, std {returns.std():.2f}, "
              f"min {returns.min():.2f}, max {returns.max():.2f}")  # fmt: skip
        print(f"episode lengths:   mean {lengths.mean():.1f}, min {lengths.min()}, max {lengths.max()}")
    print(f"observation space: {demos.observation_space}")
    print(f"action space:      {demos.action_space}")
    for key in ("env_id", "producer", "created", "versions", "spaces_inferred"):
        if key in demos.metadata:
            print(f"{key + ':':<19}{demos.metadata[key]}")
    if args.plot:
        ExpertDataset(traj_data=demos, verbose=0).plot(args.plot)
        print(f"plot:              {args.plot}")


def _convert(args: argparse.Namespace) -> None:
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

        interop.save_imitation_npz(demos, str(check_output_path(args.output.removeprefix("imitation:"),
                                                                overwrite=args.overwrite, argument="OUT")))  # fmt: skip
    else:
        save_demonstrations(demos, args.output, overwrite=args.overwrite)
    print(f"wrote {demos.n_steps} steps, {demos.n_episodes} episodes to {args.output}")


def _demo(args: argparse.Namespace) -> None:
    from sb3_expert.demo import run_demo

    run_demo(args.out, episodes=args.episodes, epochs=args.epochs, eval_episodes=args.eval_episodes,
             seed=args.seed, plot=not args.no_plot)  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sb3-expert",
        description="Expert demonstrations for Stable-Baselines3: record, store, load, pretrain.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    record = sub.add_parser("record", help="record an expert's episodes to .npz or .h5",
                            epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    record.add_argument("--expert", required=True, help="a registered expert type: ppo, sac-huggingface, random...")
    record.add_argument("--expert-kwargs", nargs="*", default=[], metavar="K=V", help="the loader's arguments")
    record.add_argument("--env", required=True, help="a gymnasium environment id")
    record.add_argument("--episodes", type=_positive_int, default=10)
    record.add_argument("--out", required=True, help="the .npz or .h5 file to write")
    record.add_argument("--n-envs", type=_positive_int, default=1)
    record.add_argument("--seed", type=int, default=0)
    record.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic ones")
    record.add_argument("--overwrite", action="store_true")
    record.add_argument(
        "--trust-remote-code",
        action="store_true",
        help=TRUST_HELP,
    )
    record.add_argument("--no-progress", action="store_true", help="no progress bar")
    record.set_defaults(func=_record)
    pre = sub.add_parser("pretrain", help="behaviour cloning into a new model, saved as .zip",
                         epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    pre.add_argument("--algo", required=True, help="ppo, a2c, sac, td3, ddpg, dqn (or sb3-contrib's)")
    pre.add_argument("--env", required=True)
    pre.add_argument("--dataset", required=True, help="a .npz or .h5 file")
    pre.add_argument("--epochs", type=_positive_int, default=20)
    pre.add_argument("--batch-size", type=_positive_int, default=64)
    pre.add_argument("--out", required=True, help="the model .zip to write")
    pre.add_argument("--policy-kwargs", help="JSON, e.g. '{\"net_arch\": [64, 64]}'")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--no-progress", action="store_true", help="no progress bar")
    pre.add_argument("--overwrite", action="store_true")
    pre.set_defaults(func=_pretrain)
    dag = sub.add_parser("dagger", help="DAgger: train a new model on states it visits, labelled by an expert",
                         epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    dag.add_argument("--expert", required=True, help="a registered expert type: ppo, sac-huggingface, random...")
    dag.add_argument("--expert-kwargs", nargs="*", default=[], metavar="K=V", help="the loader's arguments")
    dag.add_argument("--algo", required=True, help="the student: ppo, sac, dqn... (or sb3-contrib's)")
    dag.add_argument("--env", required=True, help="a gymnasium environment id")
    dag.add_argument("--timesteps", type=_positive_int, required=True, help="expert-labelled steps in all")
    dag.add_argument("--rollout-steps", type=_positive_int, default=5000, help="labelled steps per round")
    dag.add_argument("--epochs", type=_positive_int, default=10, help="pretrain epochs per round")
    dag.add_argument("--beta", type=_beta, default="linear", help="linear, exponential or a constant in [0, 1]")
    dag.add_argument("--out", required=True, help="the model .zip to write")
    dag.add_argument("--data", help="an .h5 file for the aggregated data (default: memory only)")
    dag.add_argument("--resume", action="store_true", help="continue from the rounds in --data")
    dag.add_argument("--eval-episodes", type=int, default=5, help="evaluate after each round (0: never)")
    dag.add_argument("--n-envs", type=_positive_int, default=1)
    dag.add_argument("--policy-kwargs", help="JSON, e.g. '{\"net_arch\": [64, 64]}'")
    dag.add_argument("--seed", type=int, default=0)
    dag.add_argument("--overwrite", action="store_true")
    dag.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    dag.add_argument("--no-progress", action="store_true", help="no progress bar")
    dag.set_defaults(func=_dagger)
    ev = sub.add_parser("evaluate", help="mean return of a saved model", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ev.add_argument("--algo", required=True)
    ev.add_argument("--model", required=True, help="a .zip, a folder or an rl-zoo run")
    ev.add_argument("--env", required=True)
    ev.add_argument("--episodes", type=_positive_int, default=10)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--stochastic", action="store_true")
    ev.add_argument(
        "--trust-remote-code",
        action="store_true",
        help=TRUST_HELP,
    )
    ev.set_defaults(func=_evaluate)
    demo = sub.add_parser("demo", help="record an expert on CartPole-v1, pretrain PPO on it, compare returns")
    demo.add_argument("--out", default="sb3_expert_demo", help="output folder (default: %(default)s)")
    demo.add_argument(
        "--episodes", type=_positive_int, default=10, help="expert episodes to record (default: %(default)s)"
    )
    demo.add_argument(
        "--epochs", type=_positive_int, default=20, help="behaviour-cloning epochs (default: %(default)s)"
    )
    demo.add_argument(
        "--eval-episodes", type=_positive_int, default=20, help="evaluation episodes (default: %(default)s)"
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-plot", action="store_true", help="do not write returns.png")
    demo.set_defaults(func=_demo)
    info = sub.add_parser("info", help="steps, episodes, returns, spaces and provenance of a file")
    info.add_argument("file", help="a .npz (stable-baselines v2) or .h5 file")
    info.add_argument("--plot", metavar="PNG", help="write a histogram of the episode returns")
    info.set_defaults(func=_info)
    convert = sub.add_parser(
        "convert",
        help="convert between .npz, .h5, Minari datasets (minari:<dataset_id>) and imitation trajectory "
        "files (imitation:<file>.npz)",
    )
    convert.add_argument("input")
    convert.add_argument("output")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    convert.add_argument("--env", help="for imitation: inputs, the env whose spaces the data has (else inferred)")
    convert.set_defaults(func=_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status (2 for bad input, with a one-line message)."""
    parser = _parser()
    args = parser.parse_args(argv)
    from gymnasium.error import Error as GymnasiumError

    try:
        args.func(args)
    except (ValueError, TypeError, OSError, ImportError, KeyError, GymnasiumError) as e:
        message = " ".join(str(e).split())  # one line
        print(f"sb3-expert {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
