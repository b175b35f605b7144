import zipfile

import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert import (
    DemonstrationError,
    DemonstrationFileError,
    DemonstrationFileNotFoundError,
    OutputExistsError,
    load_demonstrations,
    save_demonstrations,
)
from sb3_expert.data.npz import load_npz, save_npz
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, FIXTURES, make_demos, needs_fixtures

SB2_KEYS = {"actions", "obs", "rewards", "episode_returns", "episode_starts"}


@needs_fixtures
def test_reads_sb2_cartpole():
    demos = load_demonstrations(FIXTURES / "sb2" / "expert_cartpole.npz")
    assert demos.n_steps == 49_527 and demos.n_episodes == 100
    assert demos.action_space == spaces.Discrete(2)
    assert demos.actions.shape == (49_527,) and demos.actions.dtype == np.int64
    assert demos.obs.shape == (49_527, 4) and demos.obs.dtype == np.float32
    # 99 episodes of 500 steps and one of 27 (the file's own returns agree with its rewards)
    assert sorted(demos.episode_lengths.tolist()) == [27] + [500] * 99
    np.testing.assert_array_equal(demos.episode_returns, demos.episode_lengths.astype(float))


@needs_fixtures
def test_reads_sb2_pendulum_with_given_spaces():
    obs_space = spaces.Box(np.array([-1, -1, -8], np.float32), np.array([1, 1, 8], np.float32))
    act_space = spaces.Box(-2, 2, (1,), np.float32)
    demos = load_npz(FIXTURES / "sb2" / "expert_pendulum.npz", observation_space=obs_space, action_space=act_space)
    assert demos.n_steps == 20_000 and demos.n_episodes == 100
    assert (demos.episode_lengths == 200).all()
    assert demos.action_space == act_space and "spaces_inferred" not in demos.metadata


@needs_fixtures
def test_sb2_file_round_trips_key_for_key(tmp_path):
    src = FIXTURES / "sb2" / "expert_cartpole.npz"
    out = save_demonstrations(load_demonstrations(src), tmp_path / "copy.npz")
    with np.load(src) as a, np.load(out) as b:
        assert set(b.files) >= SB2_KEYS
        for key in SB2_KEYS:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            np.testing.assert_array_equal(a[key], b[key])


def test_writes_sb2_keys_shapes_and_dtypes(tmp_path):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [5, 3])
    path = save_npz(demos, tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as f:
        assert set(f.files) >= SB2_KEYS
        assert f["actions"].shape == (8, 1) and f["actions"].dtype == np.int64
        assert f["obs"].shape == (8, 4) and f["obs"].dtype == np.float32
        assert f["rewards"].dtype == np.float64 and f["episode_returns"].shape == (2,)
        assert f["episode_starts"].dtype == np.bool_
    assert load_npz(path) == demos


def test_images_as_files_relative_to_the_npz(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    img = spaces.Box(0, 255, (8, 6, 3), np.uint8)
    demos = make_demos(img, spaces.Discrete(3), [2, 2])
    folder = tmp_path / "data"
    folder.mkdir()
    path = save_npz(demos, folder / "demos.npz", image_folder="recorded_images")
    assert len(list((folder / "recorded_images").glob("*.png"))) == 4 + 2
    with np.load(path) as f:
        assert f["obs"].dtype.kind == "U" and f["obs"][0] == "recorded_images/0.png"
    monkeypatch.chdir(tmp_path)  # resolution does not depend on the working directory
    assert load_npz(path) == demos


def test_sb2_style_paths_relative_to_cwd(tmp_path, monkeypatch):
    pil = pytest.importorskip("PIL.Image")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recorded_images").mkdir()
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 1), dtype=np.uint8)
    paths = []
    for i, image in enumerate(images):
        pil.fromarray(image[..., 0]).save(tmp_path / "recorded_images" / f"{i}.png")
        paths.append(f"recorded_images/{i}.png")
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    np.savez(
        sub / "sb2.npz",
        obs=np.array(paths),
        actions=np.zeros((3, 1), np.int64),
        rewards=np.ones(3),
        episode_returns=np.array([3.0]),
        episode_starts=np.array([True, False, False]),
    )
    demos = load_npz(sub / "sb2.npz")
    np.testing.assert_array_equal(demos.obs, images)
    assert demos.observation_space == spaces.Box(0, 255, (4, 4, 1), np.uint8)


def test_image_folder_needs_images(tmp_path):
    with pytest.raises(DemonstrationError, match="image_folder: only image observations"):
        save_npz(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [2]), tmp_path / "d.npz", image_folder="img")


def test_missing_image_file_named(tmp_path):
    np.savez(
        tmp_path / "d.npz",
        obs=np.array(["nope/0.png"]),
        actions=np.zeros((1, 1), np.int64),
        rewards=np.ones(1),
        episode_returns=np.ones(1),
        episode_starts=np.array([True]),
    )
    with pytest.raises(DemonstrationFileError, match="'nope/0.png'"):
        load_npz(tmp_path / "d.npz")


def test_missing_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        obs=np.zeros((2, 4), np.float32),
        actions=np.zeros((2, 1), np.int64),
        rewards=np.ones(2),
        episode_starts=np.array([True, False]),
    )
    with pytest.raises(DemonstrationError, match=r"bad.npz: missing key\(s\) \['episode_returns'\]"):
        load_npz(path)


def test_inconsistent_file_names_file_and_field(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        obs=np.zeros((2, 4), np.float32),
        actions=np.zeros((2, 1), np.int64),
        rewards=np.ones(2),
        episode_returns=np.array([5.0]),
        episode_starts=np.array([True, False]),
    )
    with pytest.raises(DemonstrationError, match="bad.npz: episode_returns"):
        load_npz(path)


def test_truncated_and_corrupt_files(tmp_path):
    good = save_npz(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [50]), tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DemonstrationFileError, match="truncated.npz: not a readable .npz"):
        load_npz(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(DemonstrationFileError, match="garbage.npz"):
        load_npz(garbage)


def test_pickled_objects_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(
        path,
        obs=np.array([{"a": 1}], dtype=object),
        actions=np.zeros((1, 1)),
        rewards=np.ones(1),
        episode_returns=np.ones(1),
        episode_starts=np.array([True]),
    )
    with pytest.raises(DemonstrationFileError, match="objects.npz.*Python objects"):
        load_npz(path)


def test_missing_path_and_bad_suffix(tmp_path):
    with pytest.raises(DemonstrationFileNotFoundError, match="no such file"):
        load_demonstrations(tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError):  # still a FileNotFoundError for callers that catch that
        load_demonstrations(tmp_path / "absent.npz")
    with pytest.raises(
        DemonstrationFileError, match=r"expected a file name ending in one of \['.h5', '.hdf5', '.npz'\]"
    ):
        load_demonstrations(tmp_path / "x.pkl")


def test_existing_output_refused_and_overwrite_is_atomic(tmp_path, monkeypatch):
    demos = make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [4])
    path = save_npz(demos, tmp_path / "d.npz")
    with pytest.raises(OutputExistsError, match="already exists; pass overwrite=True"):
        save_npz(demos, path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError):
        save_npz(make_demos(CARTPOLE_OBS, CARTPOLE_ACT, [9]), path, overwrite=True)
    assert path.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]  # no temporary file left behind
    assert zipfile.is_zipfile(path)
