"""The ``sb3-expert`` command.

Subcommands: ``record`` (an expert's episodes to a file), ``pretrain`` (behaviour cloning into a
new model), ``evaluate``, ``info`` (what a demonstrations file holds), ``convert`` (between ``.npz``
and ``.h5``) and ``demo`` (the end-to-end run). Bad input gets a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from sb3_expert.cli import commands

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


TRUST_HELP = "let the model's files run code while loading (objects off the allow-list); only for files you trust"


def _int_at_least(text: str, low: int) -> int:
    """An integer >= ``low`` from ``text`` (argparse names the flag in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def _count(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


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


def _flags(*names: str) -> argparse.ArgumentParser:
    """A parent parser holding the options several commands share, by flag name."""
    parent = argparse.ArgumentParser(add_help=False)
    shared: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
        "expert": (
            ("--expert",),
            {"required": True, "help": "a registered expert type: ppo, sac-huggingface, random..."},
        ),
        "expert-kwargs": (
            ("--expert-kwargs",),
            {"nargs": "*", "default": [], "metavar": "K=V", "help": "the loader's arguments"},
        ),
        "env": (("--env",), {"required": True, "help": "a gymnasium environment id"}),
        "seed": (("--seed",), {"type": int, "default": 0}),
        "overwrite": (("--overwrite",), {"action": "store_true", "help": "replace an existing output file"}),
        "trust": (("--trust-remote-code",), {"action": "store_true", "help": TRUST_HELP}),
        "progress": (("--no-progress",), {"action": "store_true", "help": "no progress bar"}),
        "policy-kwargs": (("--policy-kwargs",), {"help": "JSON, e.g. '{\"net_arch\": [64, 64]}'"}),
    }
    for name in names:
        flags, kwargs = shared[name]
        parent.add_argument(*flags, **kwargs)
    return parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sb3-expert",
        description="Expert demonstrations for Stable-Baselines3: record, store, load, pretrain.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str, *shared: str, examples: bool = True) -> argparse.ArgumentParser:
        extra: dict[str, Any] = {"epilog": EXAMPLES, "formatter_class": argparse.RawDescriptionHelpFormatter}
        return sub.add_parser(name, help=text, parents=[_flags(*shared)], **(extra if examples else {}))

    expert_run = ("expert", "expert-kwargs", "env", "seed", "overwrite", "trust", "progress")
    record = command("record", "record an expert's episodes to .npz or .h5", *expert_run)
    record.add_argument("--episodes", type=_positive_int, default=10)
    record.add_argument("--out", required=True, help="the .npz or .h5 file to write")
    record.add_argument("--n-envs", type=_positive_int, default=1)
    record.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic ones")
    record.set_defaults(func=commands.record)
    pre = command(
        "pretrain",
        "behaviour cloning into a new model, saved as .zip",
        "env",
        "seed",
        "overwrite",
        "progress",
        "policy-kwargs",
    )
    pre.add_argument("--algo", required=True, help="ppo, a2c, sac, td3, ddpg, dqn (or sb3-contrib's)")
    pre.add_argument("--dataset", required=True, help="a .npz or .h5 file")
    pre.add_argument("--epochs", type=_positive_int, default=20)
    pre.add_argument("--batch-size", type=_positive_int, default=64)
    pre.add_argument(
        "--ensemble",
        type=_count,
        default=None,
        help="members of the ensemble teacher (default: 5 for Box actions on vector observations; 0: plain cloning)",
    )
    pre.add_argument("--out", required=True, help="the model .zip to write")
    pre.set_defaults(func=commands.pretrain_command)
    dagger_help = "DAgger: train a new model on states it visits, labelled by an expert"
    dag = command("dagger", dagger_help, *expert_run, "policy-kwargs")
    dag.add_argument("--algo", required=True, help="the student: ppo, sac, dqn... (or sb3-contrib's)")
    dag.add_argument("--timesteps", type=_positive_int, required=True, help="expert-labelled steps in all")
    dag.add_argument("--rollout-steps", type=_positive_int, default=5000, help="labelled steps per round")
    dag.add_argument("--epochs", type=_positive_int, default=10, help="pretrain epochs per round")
    dag.add_argument("--beta", type=_beta, default="linear", help="linear, exponential or a constant in [0, 1]")
    dag.add_argument("--out", required=True, help="the model .zip to write")
    dag.add_argument("--data", help="an .h5 file for the aggregated data (default: memory only)")
    dag.add_argument("--resume", action="store_true", help="continue from the rounds in --data")
    dag.add_argument("--eval-episodes", type=int, default=5, help="evaluate after each round (0: never)")
    dag.add_argument("--n-envs", type=_positive_int, default=1)
    dag.set_defaults(func=commands.dagger_command)
    ev = command("evaluate", "mean return of a saved model", "env", "seed", "trust")
    ev.add_argument("--algo", required=True)
    ev.add_argument("--model", required=True, help="a .zip, a folder or an rl-zoo run")
    ev.add_argument("--episodes", type=_positive_int, default=10)
    ev.add_argument("--stochastic", action="store_true")
    ev.set_defaults(func=commands.evaluate)
    demo = command(
        "demo", "record an expert on CartPole-v1, pretrain PPO on it, compare returns", "seed", examples=False
    )
    demo.add_argument("--out", default="sb3_expert_demo", help="output folder (default: %(default)s)")
    for flag, default, text in (
        ("--episodes", 10, "expert episodes to record"),
        ("--epochs", 20, "behaviour-cloning epochs"),
        ("--eval-episodes", 20, "evaluation episodes"),
    ):
        demo.add_argument(flag, type=_positive_int, default=default, help=f"{text} (default: %(default)s)")
    demo.add_argument("--no-plot", action="store_true", help="do not write returns.png")
    demo.set_defaults(func=commands.demo)
    info = command("info", "steps, episodes, returns, spaces and provenance of a file", examples=False)
    info.add_argument("file", help="a .npz (stable-baselines v2) or .h5 file")
    info.add_argument("--plot", metavar="PNG", help="write a histogram of the episode returns")
    info.set_defaults(func=commands.info)
    convert = command(
        "convert",
        "convert between .npz, .h5, Minari datasets (minari:<dataset_id>) and imitation trajectory files "
        "(imitation:<file>.npz)",
        "overwrite",
        examples=False,
    )
    convert.add_argument("input")
    convert.add_argument("output")
    convert.add_argument("--env", help="for imitation: inputs, the env whose spaces the data has (else inferred)")
    convert.set_defaults(func=commands.convert)
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
