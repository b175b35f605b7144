"""Per-step cost of recording, side by side: bare env, RecordDemonstrations (.h5), Minari's DataCollector.

Also ``learn()`` time of PPO on CartPole-v1 with and without ``RecordExpert``.

Run: ``python benchmarks/bench_record.py [--steps N] [--learn-steps N]``. Random actions are sampled
beforehand (the same for every recorder), so the figures compare stepping and recording alone.
Each figure is the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

from sb3_expert import RecordDemonstrations, RecordExpert


def run_steps(env: gym.Env, actions: np.ndarray) -> float:
    """Seconds per step over ``actions``, resetting at episode ends."""
    env.reset(seed=0)
    step = env.step
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            env.reset()
    return (time.perf_counter() - start) / len(actions)


def interleaved(repeats: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Best time of each run over ``repeats`` rounds, the runs taking turns (machine noise hits all)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            times[name].append(fn())
    return {name: min(t) for name, t in times.items()}


def bench_env(env_id: str, n_steps: int, repeats: int, tmp: Path) -> dict[str, float]:
    space = gym.make(env_id).action_space
    space.seed(0)
    actions = [space.sample() for _ in range(n_steps)]

    def recorded() -> float:
        env = RecordDemonstrations(gym.make(env_id), tmp / f"{env_id}.h5", overwrite=True)
        t = run_steps(env, actions)
        env.close()
        return t

    rows = interleaved(repeats, {"bare env": lambda: run_steps(gym.make(env_id), actions),
                                 "RecordDemonstrations (.h5)": recorded})  # fmt: skip
    try:
        from minari import DataCollector
    except ImportError:
        rows["minari DataCollector (not installed)"] = float("nan")
    else:
        minari_steps = min(n_steps, 20_000)  # it is slow: a shorter run gives the same per-step figure
        rows["minari DataCollector"] = run_steps(DataCollector(gym.make(env_id)), actions[:minari_steps])
    return rows


def bench_learn(n_steps: int, repeats: int, tmp: Path) -> dict[str, float]:
    from stable_baselines3 import PPO

    def learn(callback: RecordExpert | None) -> float:
        model = PPO("MlpPolicy", "CartPole-v1", seed=0, device="cpu")
        start = time.perf_counter()
        model.learn(n_steps, callback=callback)
        elapsed = time.perf_counter() - start
        if callback is not None:
            callback.close()
        return elapsed

    return interleaved(repeats, {"PPO.learn()": lambda: learn(None),
                                 "PPO.learn() + RecordExpert (.h5)":
                                     lambda: learn(RecordExpert(tmp / "learn.h5", overwrite=True))})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--learn-steps", type=int, default=20_480)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in ("CartPole-v1", "Pendulum-v1"):
            rows = bench_env(env_id, args.steps, args.repeats, Path(tmp))
            bare = rows["bare env"]
            print(f"\n{env_id}: {args.steps:,} random steps, time per step (best of {args.repeats}, interleaved)")
            for name, t in rows.items():
                print(f"  {name:<40} {t * 1e6:8.2f} us   {t / bare:6.2f}x bare")
        learn_rows = bench_learn(args.learn_steps, args.repeats, Path(tmp))
        bare = learn_rows["PPO.learn()"]
        print(f"\nPPO on CartPole-v1, learn({args.learn_steps:,}) (best of {args.repeats}, interleaved)")
        for name, t in learn_rows.items():
            print(f"  {name:<40} {t:8.2f} s    {t / bare:6.3f}x")


if __name__ == "__main__":
    main()
