"""What several benchmarks share: the return of a random policy, the zero of their normalised scores."""

from __future__ import annotations

from typing import Any

import numpy as np


class RandomPolicy:
    """Uniform random actions of ``env``'s action space, for SB3's ``evaluate_policy``."""

    def __init__(self, env: Any) -> None:
        self.action_space = env.action_space

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> Any:
        return np.array([self.action_space.sample() for _ in range(len(obs))]), None


def random_return(env: Any, n_episodes: int) -> float:
    """A random policy's mean return over ``n_episodes`` of the VecEnv ``env``."""
    from stable_baselines3.common.evaluation import evaluate_policy

    mean, _ = evaluate_policy(RandomPolicy(env), env, n_eval_episodes=n_episodes)  # type: ignore[arg-type]
    return float(mean)
