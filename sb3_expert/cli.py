"""The ``sb3-expert`` command.

Subcommands so far: ``demo`` (the end-to-end run), ``info`` (what a demonstrations file holds) and
``convert`` (between ``.npz`` and ``.h5``). Bad input gets a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

__all__ = ["main"]

EXAMPLES = """examples:
  sb3-expert demo
  sb3-expert info expert_cartpole.npz
  sb3-expert info demos.h5 --plot returns.png
  sb3-expert convert expert_cartpole.npz expert_cartpole.h5
"""


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
    from sb3_expert.data.io import load_demonstrations, save_demonstrations

    demos = load_demonstrations(args.input)
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
    demo = sub.add_parser("demo", help="record an expert on CartPole-v1, pretrain PPO on it, compare returns")
    demo.add_argument("--out", default="sb3_expert_demo", help="output folder (default: %(default)s)")
    demo.add_argument("--episodes", type=int, default=10, help="expert episodes to record (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=20, help="behaviour-cloning epochs (default: %(default)s)")
    demo.add_argument("--eval-episodes", type=int, default=20, help="evaluation episodes (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-plot", action="store_true", help="do not write returns.png")
    demo.set_defaults(func=_demo)
    info = sub.add_parser("info", help="steps, episodes, returns, spaces and provenance of a file")
    info.add_argument("file", help="a .npz (stable-baselines v2) or .h5 file")
    info.add_argument("--plot", metavar="PNG", help="write a histogram of the episode returns")
    info.set_defaults(func=_info)
    convert = sub.add_parser("convert", help="convert between .npz and .h5 (the suffixes pick the formats)")
    convert.add_argument("input")
    convert.add_argument("output")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    convert.set_defaults(func=_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status (2 for bad input, with a one-line message)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"sb3-expert {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    np.set_printoptions(precision=4)
    sys.exit(main())
