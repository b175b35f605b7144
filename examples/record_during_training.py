"""Record what a model's environments see while it trains, with the RecordExpert callback.

    python examples/record_during_training.py [--timesteps 20000] [--out during_training.h5]

Keeps only the episodes whose return reaches --min-return, and prints what was recorded.
"""

import argparse
import tempfile
from pathlib import Path

from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from sb3_expert import RecordExpert, load_demonstrations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--min-return", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.out or Path(tmp) / "during_training.h5"
        model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=4, seed=0), seed=0)
        with RecordExpert(path, min_return=args.min_return, overwrite=True) as recorder:
            model.learn(args.timesteps, callback=recorder)
        demos = load_demonstrations(path)
    print(f"recorded {demos.n_steps} steps in {demos.n_episodes} episodes with return >= {args.min_return}")
    if demos.n_episodes:
        print(f"returns: mean {demos.episode_returns.mean():.1f}, max {demos.episode_returns.max():.1f}")


if __name__ == "__main__":
    main()
