import subprocess
import sys
from pathlib import Path

import pytest

from sb3_expert import load_demonstrations
from tests.helpers import FIXTURES, needs_fixtures

SCRIPT = Path(sys.executable).parent / "sb3-expert"


def run(*args, cwd=None):
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "sb3_expert"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_demo_table_plot_and_clone_quality(tmp_path):
    result = run("demo", "--out", str(tmp_path / "out"), "--eval-episodes", "10")
    assert result.returncode == 0, result.stderr
    lines = {line.split("  ")[0].strip(): line.split() for line in result.stdout.splitlines() if "  " in line}
    expert = float(lines["expert (PPO, shipped)"][3])
    clone = float(lines["PPO clone (pretrain)"][3])
    assert clone >= 0.9 * expert
    assert (tmp_path / "out" / "returns.png").read_bytes()[:4] == b"\x89PNG"
    assert load_demonstrations(tmp_path / "out" / "demos.h5").n_episodes == 10


@needs_fixtures
def test_info_and_convert(tmp_path):
    src = FIXTURES / "sb2" / "expert_cartpole.npz"
    info = run("info", str(src), "--plot", str(tmp_path / "hist.png"))
    assert info.returncode == 0, info.stderr
    assert "steps:             49527" in info.stdout and "episodes:          100" in info.stdout
    assert (tmp_path / "hist.png").exists()
    conv = run("convert", str(src), str(tmp_path / "c.h5"))
    assert conv.returncode == 0 and load_demonstrations(tmp_path / "c.h5").n_steps == 49527
    again = run("convert", str(src), str(tmp_path / "c.h5"))
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_bad_input_one_line_exit_2(tmp_path):
    result = run("info", str(tmp_path / "missing.npz"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr
    assert run("frobnicate").returncode == 2
    help_text = run("--help").stdout
    assert "sb3-expert demo" in help_text and "examples:" in help_text


@pytest.mark.slow
def test_record_pretrain_evaluate_end_to_end(tmp_path):
    demos = tmp_path / "demos.h5"
    rec = run("record", "--expert", "random", "--env", "Pendulum-v1", "--episodes", "3", "--out", str(demos),
              "--n-envs", "2", "--seed", "1")  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    assert load_demonstrations(demos).n_episodes == 3 and "recorded 3 episodes" in rec.stdout
    model = tmp_path / "bc.zip"
    pre = run("pretrain", "--algo", "td3", "--env", "Pendulum-v1", "--dataset", str(demos), "--epochs", "2",
              "--out", str(model), "--policy-kwargs", '{"net_arch": [8]}', "--no-progress",
              "--ensemble", "2")  # fmt: skip
    assert pre.returncode == 0, pre.stderr
    assert model.exists() and "train_loss" in pre.stdout and "2 teachers" in pre.stdout
    ev = run("evaluate", "--algo", "td3", "--model", str(model), "--env", "Pendulum-v1", "--episodes", "2")
    assert ev.returncode == 0, ev.stderr
    assert "mean return" in ev.stdout and "over 2 episodes" in ev.stdout


def test_dagger_end_to_end_and_resume(tmp_path):
    from sb3_expert import HDF5Reader
    from sb3_expert.demo import EXPERT_PATH

    common = ["dagger", "--expert", "ppo", "--expert-kwargs", f"path={EXPERT_PATH}", "--algo", "dqn",
              "--env", "CartPole-v1", "--rollout-steps", "200", "--epochs", "1", "--data", str(tmp_path / "d.h5"),
              "--policy-kwargs", '{"net_arch": [8]}', "--eval-episodes", "1", "--no-progress"]  # fmt: skip
    first = run(*common, "--timesteps", "400", "--out", str(tmp_path / "m.zip"))
    assert first.returncode == 0, first.stderr
    assert "dagger/" in first.stdout and "400 labelled steps, 2 rounds" in first.stdout
    more = run(*common, "--timesteps", "600", "--resume", "--out", str(tmp_path / "m2.zip"))
    assert more.returncode == 0, more.stderr
    assert "600 labelled steps, 3 rounds" in more.stdout and (tmp_path / "m2.zip").exists()
    with HDF5Reader(tmp_path / "d.h5") as reader:
        assert reader.n_steps == 600 and reader.info_keys == ["dagger_round", "expert_acted"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["record", "--expert", "random", "--env", "NoSuchEnv-v0", "--out", "x.h5"], "NoSuchEnv"),
        (["record", "--expert", "ppo3", "--env", "CartPole-v1", "--out", "x.h5"], "unknown policy type 'ppo3'"),
        (["record", "--expert", "ppo", "--expert-kwargs", "path", "--env", "CartPole-v1", "--out", "x.h5"],
         "expected key=value"),
        (["pretrain", "--algo", "ppo", "--env", "CartPole-v1", "--dataset", "missing.h5", "--out", "m.zip"],
         "no such file"),
        (["record", "--expert", "random", "--env", "CartPole-v1", "--out", "exists.h5"], "already exists"),
        (["evaluate", "--algo", "ppo", "--model", "missing.zip", "--env", "CartPole-v1"], "no such file"),
        (["record", "--expert", "random", "--env", "CartPole-v1", "--out", "x.csv"],
         "--out: expected a file name ending in one of ['.h5', '.hdf5', '.npz'], got 'x.csv'"),
        (["pretrain", "--algo", "ppo", "--env", "CartPole-v1", "--dataset", "exists.h5", "--out", "m.zip",
          "--policy-kwargs", "{net_arch: [8]}"], "--policy-kwargs: expected a JSON object"),
        (["pretrain", "--algo", "ppo", "--env", "CartPole-v1", "--dataset", "exists.h5", "--out", "m.zip",
          "--policy-kwargs", "[8]"], "--policy-kwargs: expected a JSON object, got list"),
        (["dagger", "--expert", "random", "--algo", "ppo", "--env", "CartPole-v1", "--timesteps", "10",
          "--out", "m.zip", "--data", "d.npz"], "--data: expected a file name ending in"),
        (["pretrain", "--algo", "ppo", "--env", "CartPole-v1", "--dataset", "exists.h5", "--out", "model"],
         "--out: 'model.zip' already exists"),  # SB3's save("model") writes model.zip
    ],
)  # fmt: skip
def test_subcommand_bad_input(tmp_path, args, message):
    (tmp_path / "exists.h5").write_bytes(b"")
    (tmp_path / "model.zip").write_bytes(b"an earlier model")
    result = run(*args, cwd=tmp_path)
    assert (tmp_path / "model.zip").read_bytes() == b"an earlier model"
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["record", "--expert", "random", "--env", "CartPole-v1", "--out", "x.h5", "--n-envs", "0"],
        ["record", "--expert", "random", "--env", "CartPole-v1", "--out", "x.h5", "--episodes", "0"],
        ["evaluate", "--algo", "ppo", "--model", "m.zip", "--env", "CartPole-v1", "--episodes", "0"],
        ["pretrain", "--algo", "ppo", "--env", "CartPole-v1", "--dataset", "d.h5", "--out", "m.zip", "--epochs", "-1"],
        ["dagger", "--expert", "random", "--algo", "ppo", "--env", "CartPole-v1", "--timesteps", "0", "--out", "m.zip"],
    ],
)
def test_counts_must_be_positive(tmp_path, args):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2 and "expected an integer >= 1" in result.stderr
    assert "Traceback" not in result.stderr and "nan" not in result.stdout
    assert not list(tmp_path.iterdir())


def test_ensemble_size_may_be_zero_not_negative(tmp_path):
    args = ["pretrain", "--algo", "sac", "--env", "Pendulum-v1", "--dataset", "d.h5", "--out", "m.zip"]
    result = run(*args, "--ensemble", "-1", cwd=tmp_path)
    assert result.returncode == 2 and "--ensemble: expected an integer >= 0, got -1" in result.stderr
    assert not list(tmp_path.iterdir())


def test_dagger_beta_must_be_a_schedule_or_in_0_1(tmp_path):
    result = run("dagger", "--expert", "random", "--algo", "ppo", "--env", "CartPole-v1", "--timesteps", "10",
                 "--out", "m.zip", "--beta", "2", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "--beta: expected a number in [0, 1], got '2'" in result.stderr
    assert not list(tmp_path.iterdir())
    result = run("dagger", "--expert", "random", "--algo", "ppo", "--env", "CartPole-v1", "--timesteps", "10",
                 "--out", "m.zip", "--eval-episodes", "-1", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "--eval-episodes: expected an integer >= 0" in result.stderr
    assert not list(tmp_path.iterdir())


def test_convert_to_and_from_minari(tmp_path):
    pytest.importorskip("minari")
    pytest.importorskip("jax")
    import os

    demos = tmp_path / "d.h5"
    assert (
        run("record", "--expert", "random", "--env", "CartPole-v1", "--episodes", "2", "--out", str(demos)).returncode
        == 0
    )
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "minari")}
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "sb3_expert"]
    to = subprocess.run([*cmd, "convert", str(demos), "minari:sb3expert/cli-test-v0"], capture_output=True, text=True,
                        env=env, timeout=300)  # fmt: skip
    assert to.returncode == 0, to.stderr
    back = subprocess.run([*cmd, "convert", "minari:sb3expert/cli-test-v0", str(tmp_path / "back.npz")],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert back.returncode == 0, back.stderr
    a, b = load_demonstrations(demos), load_demonstrations(tmp_path / "back.npz")
    assert a.n_steps == b.n_steps and (a.actions == b.actions).all() and (a.final_obs == b.final_obs).all()
