"""Register your own expert loader, then use it like any built-in expert type.

python examples/custom_loader.py [--episodes 5]
"""

import argparse

import numpy as np
from stable_baselines3.common import policies
from stable_baselines3.common.env_util import make_vec_env

from sb3_expert import generate_expert_traj, load_policy, policy_registry
from sb3_expert.experts.sb3 import HardCodedPolicy


class LinearCartPolePolicy(HardCodedPolicy):
    """A hand-written controller as an SB3 policy: push toward where the pole leans."""

    def __init__(self, venv, gain: float) -> None:
        super().__init__(venv)
        self.gain = gain

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = np.asarray(observation).reshape(-1, 4)
        actions = (obs[:, 2] + self.gain * obs[:, 3] + 0.1 * obs[:, 0] + 0.2 * obs[:, 1] > 0).astype(np.int64)
        return (actions if np.ndim(observation) > 1 else actions[0]), state


def my_policy_loader(venv, gain: float) -> policies.BasePolicy:
    return LinearCartPolePolicy(venv, gain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=5)
    args = parser.parse_args()
    policy_registry.register("linear-cartpole", my_policy_loader)
    venv = make_vec_env("CartPole-v1", seed=0)
    expert = load_policy("linear-cartpole", venv, gain=0.5)
    data = generate_expert_traj(expert, None, venv, n_episodes=args.episodes, seed=0)
    print(f"linear-cartpole: mean return {data['episode_returns'].mean():.1f} over {args.episodes} episodes")


if __name__ == "__main__":
    main()
