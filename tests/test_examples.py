"""Every example runs, with small settings."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SMALL = {
    "pid_pendulum_to_sac.py": ["--episodes", "3", "--epochs", "1", "--eval-episodes", "1"],
    "sb2_dataset_then_learn.py": ["--traj-limitation", "2", "--epochs", "1", "--timesteps", "64"],
    "record_during_training.py": ["--timesteps", "512", "--min-return", "10"],
    "train_demo_expert.py": ["--timesteps", "512", "--out", "{tmp}"],
}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_example_runs(name, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in SMALL[name]]
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mean return" in result.stdout or "recorded" in result.stdout
