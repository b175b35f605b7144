"""Record a person playing CartPole with the keyboard (left/right arrows), via gymnasium.utils.play.

    python examples/keyboard_play.py [--out my_play.h5]

Needs pygame (pip install 'sb3-expert[play]'). --scripted-steps N presses the keys by itself for
N steps and quits (what the tests run, with SDL's dummy video driver).
"""

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
from gymnasium.utils.play import play

from sb3_expert import RecordDemonstrations, load_demonstrations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--scripted-steps", type=int, default=0)
    args = parser.parse_args()
    import pygame

    keys = {(pygame.K_LEFT,): 0, (pygame.K_RIGHT,): 1}
    callback = None
    if args.scripted_steps:
        steps = []

        def callback(prev_obs, obs, action, reward, terminated, truncated, info):
            steps.append(action)
            key = pygame.K_RIGHT if obs[2] > 0 else pygame.K_LEFT  # lean right: push right
            other = pygame.K_LEFT if key == pygame.K_RIGHT else pygame.K_RIGHT
            pygame.event.post(pygame.event.Event(pygame.KEYUP, key=other))
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key))
            if len(steps) >= args.scripted_steps:
                pygame.event.post(pygame.event.Event(pygame.QUIT))

    with tempfile.TemporaryDirectory() as tmp:
        path = args.out or Path(tmp) / "play.h5"
        env = RecordDemonstrations(gym.make("CartPole-v1", render_mode="rgb_array"), path, overwrite=True)
        play(env, keys_to_action=keys, noop=0, fps=1000 if args.scripted_steps else 30, seed=0, callback=callback)
        env.close()
        demos = load_demonstrations(path)
    print(f"recorded {demos.n_steps} steps in {demos.n_episodes} episodes; returns {demos.episode_returns.tolist()}")


if __name__ == "__main__":
    main()
