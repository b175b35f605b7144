"""Train the small CartPole-v1 expert shipped with sb3-expert (used by ``sb3-expert demo``).

    python examples/train_demo_expert.py [--timesteps 100000] [--out sb3_expert/experts/assets]

PPO with rl-baselines3-zoo's CartPole-v1 hyperparameters, saved with ``save_expert`` in
huggingface-sb3's layout (``ppo-CartPole-v1.zip``). It reaches a mean return of 500.
"""

import argparse
from pathlib import Path

from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_expert import save_expert

ASSETS = Path(__file__).resolve().parents[1] / "sb3_expert" / "experts" / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ASSETS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    venv = make_vec_env("CartPole-v1", n_envs=8, seed=args.seed)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                ent_coef=0.0, learning_rate=lambda p: 1e-3 * p, clip_range=lambda p: 0.2 * p,
                policy_kwargs={"net_arch": [64, 64]}, seed=args.seed, device="cpu")  # fmt: skip
    model.learn(args.timesteps)
    mean, std = evaluate_policy(model, make_vec_env("CartPole-v1", seed=123), n_eval_episodes=20)
    print(f"mean return {mean:.1f} +/- {std:.1f}")
    path = save_expert(model, args.out, "CartPole-v1", overwrite=True)
    print(f"saved to {path}")


if __name__ == "__main__":
    main()
