"""Record a hand-written Pendulum controller with generate_expert_traj, then clone it into SAC.

python examples/pid_pendulum_to_sac.py [--episodes 50] [--epochs 30] [--out pid_pendulum.h5]
"""

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_expert import generate_expert_traj, load_demonstrations, pretrain


def controller(obs: np.ndarray) -> np.ndarray:
    """Pump energy while the pendulum hangs, PD control near the top."""
    cos, sin, velocity = obs
    if cos > 0.85:
        torque = -12.0 * np.arctan2(sin, cos) - 2.5 * velocity
    else:
        energy = velocity**2 / 6 + 5.0 * (cos - 1)
        torque = 2.0 * np.sign(velocity) if energy < 0 else 0.0
    return np.clip([torque], -2.0, 2.0).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="the .h5 file (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.out or Path(tmp) / "pid_pendulum.h5"
        generate_expert_traj(
            controller, path, gym.make("Pendulum-v1"), n_episodes=args.episodes, seed=0, overwrite=True
        )
        demos = load_demonstrations(path)
        print(f"expert: {demos.n_episodes} episodes, mean return {demos.episode_returns.mean():.1f}")
        # finetune=False: only the clone is evaluated here; by default pretrain would also fit SAC's
        # critic to the demonstrations' rewards and prepare learn() (see the README)
        model = pretrain(SAC("MlpPolicy", "Pendulum-v1", seed=0), demos, n_epochs=args.epochs, finetune=False)
    env = Monitor(gym.make("Pendulum-v1"))
    env.reset(seed=123)
    mean, std = evaluate_policy(model, env, n_eval_episodes=args.eval_episodes, deterministic=True)
    print(f"SAC clone: mean return {mean:.1f} +/- {std:.1f}")


if __name__ == "__main__":
    main()
