"""Load a pre-trained expert from a file, evaluate it, and record its demonstrations (SB2-style).

    python examples/load_expert_from_file.py [--algo ppo] [--path RUN_OR_ZIP] [--env CartPole-v1] [--episodes 10]

--path may be a .zip, a folder holding one, or an rl-baselines3-zoo run (VecNormalize statistics
are applied). The default is the small CartPole expert shipped with sb3-expert.
"""

import argparse
import tempfile
from pathlib import Path

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_expert import generate_expert_traj, load_model, load_policy
from sb3_expert.demo import EXPERT_PATH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--path", type=Path, default=EXPERT_PATH)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    venv = make_vec_env(args.env, seed=0)
    policy = load_policy(args.algo, venv, path=args.path)  # acts on raw observations
    mean, std = evaluate_policy(policy, venv, n_eval_episodes=args.episodes)
    print(f"expert from {args.path}: mean return {mean:.1f} +/- {std:.1f}")
    expert = load_model(args.algo, venv, args.path)  # the whole algorithm, and its VecNormalize if any
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_expert_traj(expert.model, Path(tmp) / "expert", venv, n_episodes=args.episodes, seed=0)
    print(f"generate_expert_traj: {len(data['episode_returns'])} episodes, keys {sorted(data)}")


if __name__ == "__main__":
    main()
