"""DAgger with a privileged expert: a state-based CartPole expert teaches a student that sees pixels.

The environment renders each step as a small grayscale frame (two stacked, so that motion shows);
the true state goes to ``info["state"]``, and the expert (the PPO agent shipped with sb3-expert)
reads it through ``expert_obs="state"``. The student is a ``PPO("CnnPolicy")`` trained by DAgger on
the frames it visits, labelled by the expert.

Status: the wiring works (labels from the state, frames recorded as the env emits them), but with
``pretrain``'s defaults this CNN does not learn CartPole from these frames yet (training loss 0.67
after 9,000 labels; chance is 0.69): a recipe for CNN students is still to be found.

python examples/dagger_pixels.py [--timesteps 20000] [--rollout-steps 4000] [--epochs 10] [--out dagger_pixels.h5]
"""

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecFrameStack

from sb3_expert import DAgger, load_policy
from sb3_expert.demo import EXPERT_PATH

SIZE = 40  # frames of SIZE x SIZE pixels


class Pixels(gym.Wrapper):
    """CartPole as a SIZE x SIZE grayscale frame (block averages of the rendered image); the state
    goes to ``info["state"]``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = spaces.Box(0, 255, (SIZE, SIZE, 1), np.uint8)

    def _frame(self) -> np.ndarray:
        frame = self.env.render().mean(axis=2)  # 400 x 600
        h, w = frame.shape[0] // SIZE, frame.shape[1] // SIZE
        blocks = frame[: h * SIZE, : w * SIZE].reshape(SIZE, h, SIZE, w).mean(axis=(1, 3))
        return blocks.astype(np.uint8)[..., None]

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._frame(), {**info, "state": obs}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._frame(), reward, terminated, truncated, {**info, "state": obs}


def pixel_env(n_envs: int, seed: int) -> VecFrameStack:
    venv = make_vec_env("CartPole-v1", n_envs, seed=seed, env_kwargs={"render_mode": "rgb_array"}, wrapper_class=Pixels)
    return VecFrameStack(venv, n_stack=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000, help="expert-labelled steps")
    parser.add_argument("--rollout-steps", type=int, default=4000, help="labelled steps per round")
    parser.add_argument("--epochs", type=int, default=10, help="pretrain epochs per round")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, help="the aggregated data, .h5 (default: a temporary file)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    venv = pixel_env(4, args.seed)
    expert = load_policy("ppo", make_vec_env("CartPole-v1"), path=EXPERT_PATH, device="cpu")  # sees states
    student = PPO("CnnPolicy", venv, seed=args.seed, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "dagger_pixels.h5"
        with DAgger(
            student,
            expert,
            expert_obs="state",
            path=out,
            overwrite=True,
            rollout_steps=args.rollout_steps,
            n_epochs=args.epochs,
            seed=args.seed,
            verbose=1,
        ) as run:
            run.train(args.timesteps)
        print(f"recorded {run.labels} labelled steps in {run.round} rounds to {out}")
        mean, std = evaluate_policy(student, pixel_env(1, args.seed + 100), n_eval_episodes=args.eval_episodes)
    print(f"the pixel student's mean return: {mean:.1f} +/- {std:.1f} over {args.eval_episodes} episodes")


if __name__ == "__main__":
    main()
