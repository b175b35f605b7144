"""DAgger against behaviour cloning on MuJoCo, per expert-labelled step; and DAgger's overhead.

For each rl-zoo MuJoCo expert in ``../shared/fixtures/rl-zoo`` (SAC HalfCheetah, TQC Walker2d,
trained on the v3 environments, evaluated on v5) and each seed:

- **DAgger**: ``dagger(SAC("MlpPolicy", env_id), expert, total_timesteps=50_000)`` with its
  defaults (rounds of 5,000 labelled steps, beta 1, 0.75, 0.5, 0.25, then 0; 10 epochs of
  ``pretrain`` per round); the student is evaluated after every round;
- **BC**: the expert's own deterministic episodes, as many labelled steps as DAgger had at each
  checkpoint (10, 20 and 50 episodes), cloned with ``pretrain(model, demos, n_epochs=100)``.

Each evaluation runs 10 episodes on a plain ``make_vec_env(env_id)``; scores are normalised
``(return - random) / (expert - random)``. Then the overhead: DAgger's collection (beta 1, so the
expert acts; labelling, mixing draws and writing to ``.h5`` included) against a plain loop of the
same expert over the same VecEnv for the same steps.

Run: ``python benchmarks/bench_dagger.py [--seeds 0 1 2] [--envs HalfCheetah-v5 Walker2d-v5]``
(about 30 minutes on 2 cores). Figures of the last run (mean of seeds 0-2, DAgger / BC):
HalfCheetah 0.76/0.80 at 10k labels, 0.97/0.88 at 20k, 1.00/0.98 at 50k; Walker2d 0.82/0.73,
0.96/0.89, 0.99/0.97; overhead 1.10x.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import random_return

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "rl-zoo"
EXPERTS = {"HalfCheetah-v5": ("sac", "sac/HalfCheetah-v3_1"), "Walker2d-v5": ("tqc", "tqc/Walker2d-v3_1")}
TOTAL, ROUND, N_EVAL = 50_000, 5_000, 10
BC_EPISODES = (10, 20, 50)  # 1,000 steps each: labelled steps 10k, 20k, 50k


def _expert(env_id: str, venv: object) -> object:
    from sb3_expert import load_policy

    algo, run = EXPERTS[env_id]
    return load_policy(algo, venv, path=FIXTURES / run)


def reference_returns(env_id: str) -> tuple[float, float]:
    """The expert's and a random policy's mean return over N_EVAL episodes."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    env = make_vec_env(env_id, n_envs=1, seed=1)
    expert_return, _ = evaluate_policy(_expert(env_id, env), env, n_eval_episodes=N_EVAL)  # type: ignore[arg-type]
    return float(expert_return), random_return(env, N_EVAL)


def run_dagger(env_id: str, seed: int) -> tuple[list[tuple[int, float]], float]:
    """``[(labelled steps, return)]`` after each round, and the wall time."""
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert import DAgger

    venv = make_vec_env(env_id, n_envs=1, seed=seed)
    model = SAC("MlpPolicy", venv, seed=seed)
    eval_env = make_vec_env(env_id, n_envs=1, seed=1000 + seed)
    start = time.perf_counter()
    curve = []
    with DAgger(model, _expert(env_id, venv), eval_env=eval_env, n_eval_episodes=N_EVAL, seed=seed, verbose=0) as run:
        while run.labels < TOTAL:
            run.collect()
            run.update()
            curve.append((run.labels, run.eval_returns[-1]))
    return curve, time.perf_counter() - start


def run_bc(env_id: str, seed: int, n_episodes: int, folder: str) -> float:
    """The return of a BC clone of ``n_episodes`` deterministic expert episodes."""
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_expert import generate_expert_traj, pretrain

    venv = make_vec_env(env_id, n_envs=1, seed=seed)
    path = f"{folder}/{env_id}-{seed}-{n_episodes}.npz"
    generate_expert_traj(_expert(env_id, venv), path, venv, n_episodes=n_episodes, seed=seed)
    model = SAC("MlpPolicy", env_id, seed=seed)
    pretrain(model, path, n_epochs=100, seed=seed, finetune=False)  # the clone only: no learn() follows
    mean, _ = evaluate_policy(model, make_vec_env(env_id, n_envs=1, seed=1000 + seed), n_eval_episodes=N_EVAL)
    return float(mean)


def overhead(env_id: str, n_steps: int = 5_000) -> tuple[float, float]:
    """Seconds for ``n_steps`` of a plain expert loop, and of DAgger's collection (beta 1) to ``.h5``."""
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert import DAgger

    venv = make_vec_env(env_id, n_envs=1, seed=0)
    expert = _expert(env_id, venv)
    obs = venv.reset()
    start = time.perf_counter()
    for _ in range(n_steps):
        actions, _ = expert.predict(obs, deterministic=True)  # type: ignore[attr-defined]
        obs, _, _, _ = venv.step(actions)
    plain = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        run = DAgger(SAC("MlpPolicy", venv), expert, path=f"{folder}/d.h5", beta_schedule=1.0, seed=0, verbose=0)
        run.collect(10)  # the reset and the file's creation, outside the timing
        start = time.perf_counter()
        run.collect(n_steps)
        timed = time.perf_counter() - start
        run.close()
    return plain, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--envs", nargs="+", default=list(EXPERTS), choices=list(EXPERTS))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-bc", action="store_true", help="DAgger only")
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"needs the rl-zoo fixtures at {FIXTURES}")
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(args.workers) as pool:
        refs = {env_id: pool.submit(reference_returns, env_id) for env_id in args.envs}
        daggers = {(e, s): pool.submit(run_dagger, e, s) for e in args.envs for s in args.seeds}
        bcs = {
            (e, s, n): pool.submit(run_bc, e, s, n, folder)
            for e in args.envs
            for s in args.seeds
            for n in ([] if args.no_bc else BC_EPISODES)
        }
        for env_id in args.envs:
            expert, random = refs[env_id].result()
            print(f"\n{env_id}: expert {expert:,.0f}, random {random:,.0f}; normalised scores, seeds {args.seeds}")
            curves = [daggers[env_id, s].result() for s in args.seeds]
            print(f"{'labelled steps':>15s} {'DAgger per seed':>24s} {'mean':>6s} {'BC per seed':>24s} {'mean':>6s}")
            for k, (labels, _) in enumerate(curves[0][0]):
                scores = np.array([(c[k][1] - random) / (expert - random) for c, _ in curves])
                bc_line = ""
                if not args.no_bc and labels // 1000 in BC_EPISODES:
                    bc = np.array(
                        [(bcs[env_id, s, labels // 1000].result() - random) / (expert - random) for s in args.seeds]
                    )
                    bc_line = f"{' '.join(f'{x:6.2f}' for x in bc):>24s} {bc.mean():6.2f}"
                print(f"{labels:15,d} {' '.join(f'{x:6.2f}' for x in scores):>24s} {scores.mean():6.2f} {bc_line}")
            print(f"DAgger wall time per run: {np.mean([t for _, t in curves]):.0f} s")
        env_id = args.envs[0]
        plain, timed = pool.submit(overhead, env_id).result()
        print(f"\noverhead on {env_id}, 5,000 steps: plain expert loop {plain:.2f} s, DAgger collection to .h5 "
              f"{timed:.2f} s: {timed / plain:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
