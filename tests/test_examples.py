"""Every example runs, with small settings."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# what each example must print (a figure, not just a word): the last line of its work
EXPECTED = {
    "pid_pendulum_to_sac.py": r"SAC clone: mean return -?\d+\.\d",
    "sb2_dataset_then_learn.py": r"after learn\(\):\s+mean return -?\d+\.\d",
    "record_during_training.py": r"recorded \d+ steps in \d+ episodes with return >= 10",
    "train_demo_expert.py": r"saved to \S+",
    "load_expert_from_file.py": r"generate_expert_traj: 2 episodes, keys \[",
    "load_expert_from_hub.py": r"sb3-expert-test/ppo-CartPole-v1: mean return \d+\.\d",
    "custom_loader.py": r"linear-cartpole: mean return \d+\.\d over 2 episodes",
    "keyboard_play.py": r"recorded 80 steps in \d+ episodes",
    "dagger_pixels.py": r"the pixel student's mean return: \d+\.\d",
}

SMALL = {
    "pid_pendulum_to_sac.py": ["--episodes", "3", "--epochs", "1", "--eval-episodes", "1"],
    "sb2_dataset_then_learn.py": ["--traj-limitation", "2", "--epochs", "1", "--timesteps", "64"],
    "record_during_training.py": ["--timesteps", "512", "--min-return", "10"],
    "train_demo_expert.py": ["--timesteps", "512", "--out", "{tmp}"],
    "load_expert_from_file.py": ["--episodes", "2"],
    "load_expert_from_hub.py": ["--organization", "sb3-expert-test", "--episodes", "2"],
    "custom_loader.py": ["--episodes", "2"],
    "keyboard_play.py": ["--scripted-steps", "80"],
    "dagger_pixels.py": ["--timesteps", "400", "--rollout-steps", "200", "--epochs", "1", "--eval-episodes", "1"],
}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SMALL) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_example_runs(name, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in SMALL[name]]
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    if name == "load_expert_from_hub.py":  # the Hub, pointed at local files: a pre-filled cache, offline
        from sb3_expert.demo import EXPERT_PATH
        from tests.experts.hub import fill_cache

        fill_cache(tmp_path / "hf", "sb3-expert-test/ppo-CartPole-v1", {EXPERT_PATH.name: EXPERT_PATH.read_bytes()})
        env.update(HF_HUB_CACHE=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    command = [sys.executable, str(EXAMPLES / name), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(EXPECTED[name], result.stdout), result.stdout[-2000:]
