"""Load an expert from the Hugging Face Hub (huggingface-sb3 naming: <org>/<algo>-<EnvId>).

    python examples/load_expert_from_hub.py [--algo ppo] [--env CartPole-v1] [--organization sb3]

HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE=1 work as in huggingface_hub: the tests point them at
local files.
"""

import argparse

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_expert import load_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--organization", default="sb3")
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    venv = make_vec_env(args.env, seed=0)
    policy = load_policy(f"{args.algo}-huggingface", venv, env_name=args.env, organization=args.organization)
    mean, std = evaluate_policy(policy, venv, n_eval_episodes=args.episodes)
    print(f"{args.organization}/{args.algo}-{args.env}: mean return {mean:.1f} +/- {std:.1f}")


if __name__ == "__main__":
    main()
