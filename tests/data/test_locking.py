"""One writer per file: a second writer (another process, overwrite=True, HDF5 locking on or off)
never destroys the first's file; stale locks and temporary files are cleaned; modes follow the umask."""

import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

from sb3_expert import RecordDemonstrations, load_demonstrations, save_demonstrations
from sb3_expert.data.paths import WriteLock
from sb3_expert.errors import DemonstrationFileError, OutputLockedError
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, make_demos

SECOND_WRITER = textwrap.dedent(
    """
    import sys
    import gymnasium as gym
    from sb3_expert import RecordDemonstrations
    from sb3_expert.errors import OutputLockedError
    try:
        RecordDemonstrations(gym.make("CartPole-v1"), sys.argv[1], overwrite=True)
    except OutputLockedError as e:
        print("LOCKED", e)
    else:
        print("OPENED")
    """
)


@pytest.mark.parametrize("hdf5_locking", ["TRUE", "FALSE"])
@pytest.mark.parametrize("suffix", ["h5", "npz"])
def test_a_concurrent_overwrite_leaves_the_first_writers_file_intact(tmp_path, hdf5_locking, suffix):
    path = tmp_path / f"demos.{suffix}"
    env = RecordDemonstrations(gym.make("CartPole-v1"), path)
    obs, _ = env.reset(seed=0)
    for _ in range(300):
        obs, _, terminated, truncated, _ = env.step(int(obs[2] > 0))
        if terminated or truncated:
            obs, _ = env.reset()
    env.flush()
    out = subprocess.run(
        [sys.executable, "-c", SECOND_WRITER, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HDF5_USE_FILE_LOCKING": hdf5_locking},
    )
    assert out.stdout.startswith("LOCKED") and "is being written by another process" in out.stdout, out
    env.close()
    assert load_demonstrations(path).n_steps == 300  # the first writer's file, whole
    assert not (tmp_path / f".demos.{suffix}.lock").exists()


def test_overwrite_replaces_only_on_success_and_a_stale_lock_is_taken_over(tmp_path):
    path = tmp_path / "demos.h5"
    save_demonstrations(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [5, 5]), path)
    # a writer killed mid-overwrite: its lock (a dead pid) and its temporary file stay behind
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".demos.h5.lock").write_text(f"{dead.stdout.strip()}@{os.uname().nodename}")
    (tmp_path / f".demos.h5.{dead.stdout.strip()}.tmp").write_bytes(b"half a file")
    env = RecordDemonstrations(gym.make("CartPole-v1"), path, overwrite=True)
    assert not (tmp_path / f".demos.h5.{dead.stdout.strip()}.tmp").exists()  # stale temp removed
    assert load_demonstrations(path).n_steps == 10  # the old file stays until the new one is complete
    env.reset(seed=0)
    for _ in range(7):
        env.step(0)
    env.close()
    assert load_demonstrations(path).n_steps == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.h5"]


def test_a_live_lock_is_refused_naming_the_holder(tmp_path):
    path = tmp_path / "demos.npz"
    lock = WriteLock(path)
    with pytest.raises(OutputLockedError, match=r"another process \(\d+@"):
        save_demonstrations(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [2]), path)
    lock.release()
    save_demonstrations(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [2]), path)


def test_npz_recorder_checks_the_destination_at_construction(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(DemonstrationFileError, match="cannot write in the folder"):
        RecordDemonstrations(gym.make("CartPole-v1"), not_a_folder / "demos.npz")


def test_saved_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        for name in ("a.npz", "b.h5"):
            save_demonstrations(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [2]), tmp_path / name)
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
    np.testing.assert_array_equal(load_demonstrations(tmp_path / "a.npz").episode_lengths, [2])
