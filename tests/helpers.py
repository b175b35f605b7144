"""Test helpers: random demonstrations for any supported space."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from sb3_expert.data.demonstrations import Demonstrations, ObsArray
from sb3_expert.data.spaces import step_layout

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason=f"needs the shared fixtures at {FIXTURES} (present beside the project's checkout, not in a user's clone)",
)


def random_rows(space: spaces.Space, n: int, rng: np.random.Generator) -> ObsArray:
    """``n`` random rows of ``space`` in its stored layout."""
    if isinstance(space, spaces.Dict):
        return {key: random_rows(sub, n, rng) for key, sub in space.spaces.items()}  # type: ignore[misc]
    shape, dtype = step_layout(space)
    if isinstance(space, spaces.Discrete):
        return rng.integers(space.start, space.start + space.n, size=n).astype(dtype)
    if isinstance(space, spaces.MultiDiscrete):
        return (space.start + rng.integers(0, space.nvec, size=(n, *shape))).astype(dtype)
    if isinstance(space, spaces.MultiBinary):
        return rng.integers(0, 2, size=(n, *shape)).astype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -1000), min(info.max, 1000), size=(n, *shape), endpoint=True).astype(dtype)
    return rng.normal(size=(n, *shape)).astype(dtype)


def make_demos(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    lengths: Sequence[int],
    *,
    seed: int = 0,
    unfinished_last: bool = False,
    final_obs: bool = True,
    infos: bool = False,
) -> Demonstrations:
    """Random demonstrations of episodes of ``lengths`` steps."""
    rng = np.random.default_rng(seed)
    n, e = int(sum(lengths)), len(lengths)
    starts = np.zeros(n, bool)
    starts[np.cumsum([0, *lengths])[:-1].astype(int)] = True
    terminated = rng.random(e) < 0.5
    truncated = ~terminated
    if unfinished_last and e:
        terminated[-1], truncated[-1] = False, True
    return Demonstrations(
        random_rows(observation_space, n, rng),
        random_rows(action_space, n, rng),  # type: ignore[arg-type]
        rng.normal(size=n),
        starts,
        observation_space=observation_space,
        action_space=action_space,
        terminated=terminated,
        truncated=truncated,
        final_obs=random_rows(observation_space, e, rng) if final_obs else None,
        infos={"cost": rng.random(n).astype(np.float32)} if infos else None,
        metadata={"env_id": "Test-v0", "seed": seed},
    )


CARTPOLE_OBS = spaces.Box(
    low=np.array([-4.8, -np.inf, -0.42, -np.inf], np.float32),
    high=np.array([4.8, np.inf, 0.42, np.inf], np.float32),
)
CARTPOLE_ACT = spaces.Discrete(2)


from sb3_expert.demo import cartpole_controller as cartpole_expert  # noqa: E402 - balances all 500 steps


def pendulum_expert(obs: np.ndarray) -> np.ndarray:
    """A Pendulum-v1 controller: pump energy while hanging, PD control near the top (about -140)."""
    cos, sin, velocity = obs
    if cos > 0.85:
        torque = -12.0 * np.arctan2(sin, cos) - 2.5 * velocity
    else:
        energy = velocity**2 / 6 + 5.0 * (cos - 1)  # 0 at rest upright
        torque = 2.0 * np.sign(velocity) if energy < 0 else 0.0
    return np.clip([torque], -2.0, 2.0).astype(np.float32)


def expert_demos(env_id: str, n_episodes: int, seed: int = 0, **make_kwargs: object) -> Demonstrations:
    """Demonstrations of the controllers above (episode k reset with ``seed + k``), recorded whole
    (final observations, truncation) with RecordDemonstrations."""
    import gymnasium as gym

    from sb3_expert import RecordDemonstrations

    env = RecordDemonstrations(gym.make(env_id, **make_kwargs))
    expert = cartpole_expert if env_id.startswith("CartPole") else pendulum_expert
    for k in range(n_episodes):
        obs, _ = env.reset(seed=seed + k)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(expert(obs))
            done = terminated or truncated
    demos = env.demonstrations()
    env.close()
    return demos


ZOO_EXPERTS = {"CartPole-v1": ("ppo", "PPO"), "Pendulum-v1": ("sac", "SAC")}


def zoo_expert_demos(env_id: str, n_episodes: int, seed: int = 0) -> Demonstrations:
    """Demonstrations of the rl-baselines3-zoo agent in the shared fixtures (trained with an older
    SB3 and gym), loaded with load_policy and recorded with generate_expert_traj."""
    import tempfile

    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert import generate_expert_traj, load_demonstrations, load_policy

    folder, _ = ZOO_EXPERTS[env_id]
    policy = load_policy(folder, make_vec_env(env_id), path=FIXTURES / "rl-zoo" / folder / f"{env_id}_1")
    with tempfile.TemporaryDirectory() as tmp:
        generate_expert_traj(policy, f"{tmp}/demos.h5", gym.make(env_id), n_episodes=n_episodes, seed=seed)
        return load_demonstrations(f"{tmp}/demos.h5")


def with_rewards(demos: Demonstrations, rewards: np.ndarray) -> Demonstrations:
    """``demos`` with its per-step rewards replaced (episode returns recomputed, the rest kept)."""
    return Demonstrations(
        demos.obs,
        demos.actions,
        rewards,
        demos.episode_starts,
        observation_space=demos.observation_space,
        action_space=demos.action_space,
        terminated=demos.terminated,
        truncated=demos.truncated,
        final_obs=demos.final_obs,
    )
