"""stable-baselines (v2) style: an ExpertDataset from an .npz, model.pretrain(), then learn().

    python examples/sb2_dataset_then_learn.py [--expert-path expert_cartpole.npz] [--timesteps 10000]

Without --expert-path, 10 episodes of a scripted CartPole expert are recorded first with
RecordDemonstrations, into stable-baselines (v2)'s .npz format.
"""

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_expert import ExpertDataset, PretrainMixin, RecordDemonstrations
from sb3_expert.demo import cartpole_controller


class PretrainPPO(PretrainMixin, PPO):
    """PPO with SB2's model.pretrain()."""


def record(path: Path, episodes: int) -> None:
    with RecordDemonstrations(gym.make("CartPole-v1"), path) as env:
        for k in range(episodes):
            obs, _ = env.reset(seed=k)
            done = False
            while not done:
                obs, _, terminated, truncated, _ = env.step(cartpole_controller(obs))
                done = terminated or truncated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--expert-path", type=Path, default=None)
    parser.add_argument("--traj-limitation", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--timesteps", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.expert_path
        if path is None:
            path = Path(tmp) / "expert_cartpole.npz"
            record(path, args.traj_limitation)
        dataset = ExpertDataset(expert_path=path, traj_limitation=args.traj_limitation, batch_size=64, seed=0)
        model = PretrainPPO("MlpPolicy", "CartPole-v1", seed=0)
        model.pretrain(dataset, n_epochs=args.epochs)
    env = Monitor(gym.make("CartPole-v1"))
    env.reset(seed=123)
    print(f"after pretrain: mean return {evaluate_policy(model, env, n_eval_episodes=10)[0]:.1f}")
    model.learn(args.timesteps)
    print(f"after learn():  mean return {evaluate_policy(model, env, n_eval_episodes=10)[0]:.1f}")


if __name__ == "__main__":
    main()
