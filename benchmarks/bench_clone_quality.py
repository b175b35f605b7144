"""Clone quality on MuJoCo: ``pretrain`` with the default call, against a hand-written BC loop.

For each rl-zoo MuJoCo expert in ``../shared/fixtures/rl-zoo`` (SAC HalfCheetah, TQC Walker2d,
trained on the v3 environments, evaluated on v5), it records 10 deterministic episodes once
(``generate_expert_traj`` into a temporary ``.npz``), then for each seed clones

- ``SAC("MlpPolicy", env_id)``, ``TD3("MlpPolicy", env_id)``,
  ``PPO("MlpPolicy", env_id, policy_kwargs=dict(net_arch=[256, 256]))`` and ``PPO("MlpPolicy", env_id)``
  (64x64 tanh), each with only ``pretrain(model, "demos.npz", n_epochs=100)``;
- SAC with ``ensemble=0`` (plain cloning: what the default call did before the ensemble teacher)
  and with ``normalize_obs=False`` (what it did before standardisation);
- a reference: a plain torch loop (256x256 ReLU, tanh output, MSE, Adam 1e-3, 20,000 steps of
  batch 256) on observations standardised by the demonstrations' mean and std;

evaluates each clone on 10 episodes of a plain ``make_vec_env(env_id)`` and prints the return and
the normalised score ``(clone - random) / (expert - random)``, per seed and as the mean over seeds.
Jobs run in parallel worker processes (``--workers``, default the CPU count), one torch thread each.

Run: ``python benchmarks/bench_clone_quality.py [--seeds 0 1 2] [--envs HalfCheetah-v5 Walker2d-v5]``
(about an hour on 2 cores for the full table: the default call trains an ensemble teacher).
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
STUDENTS = ("SAC", "TD3", "PPO 256x256", "PPO 64x64", "SAC ensemble=0", "SAC normalize_obs=False", "reference loop")
N_DEMOS, N_EVAL = 10, 10


def record(env_id: str, folder: str) -> tuple[str, float, float]:
    """10 deterministic expert episodes into ``folder``; the expert's and a random policy's mean return."""
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert import generate_expert_traj, load_policy

    algo, run = EXPERTS[env_id]
    venv = make_vec_env(env_id, n_envs=1, seed=0)
    expert = load_policy(algo, venv, path=FIXTURES / run)
    path = f"{folder}/{env_id}.npz"
    returns = generate_expert_traj(expert, path, venv, n_episodes=N_DEMOS)["episode_returns"]
    return path, float(np.mean(returns)), random_return(make_vec_env(env_id, n_envs=1, seed=1), N_EVAL)


def clone(env_id: str, path: str, student: str, seed: int, noise: float | None) -> tuple[float, float]:
    """The clone's mean return over N_EVAL episodes, and the training time."""
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import PPO, SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_expert import pretrain

    env = make_vec_env(env_id, n_envs=1, seed=1000 + seed)
    start = time.perf_counter()
    if student == "reference loop":
        policy = reference_loop(path, seed)
        elapsed = time.perf_counter() - start
        mean, _ = evaluate_policy(policy, env, n_eval_episodes=N_EVAL, deterministic=True)
        return float(mean), elapsed
    name, _, variant = student.partition(" ")
    kwargs = {"policy_kwargs": {"net_arch": [256, 256]}} if variant == "256x256" else {}
    model = {"SAC": SAC, "TD3": TD3, "PPO": PPO}[name]("MlpPolicy", env_id, seed=seed, **kwargs)
    extra: dict = {"normalize_obs": False} if variant == "normalize_obs=False" else {}
    extra.update({"ensemble": 0} if variant == "ensemble=0" else {})
    extra.update({} if noise is None else {"ensemble_noise": noise})
    # finetune=False: the clone is evaluated as cloned (the critic fit would not change its actions)
    pretrain(model, path, n_epochs=100, seed=seed, finetune=False, **extra)
    elapsed = time.perf_counter() - start
    mean, _ = evaluate_policy(model, env, n_eval_episodes=N_EVAL, deterministic=True)
    return float(mean), elapsed


class _Reference:
    """A plain BC policy for ``evaluate_policy``: standardise, MLP, tanh (actions are in [-1, 1])."""

    def __init__(self, net: object, mean: np.ndarray, std: np.ndarray) -> None:
        self.net, self.mean, self.std = net, mean, std

    def predict(self, obs: np.ndarray, state: object = None, episode_start: object = None, deterministic: bool = True):
        import torch as th

        with th.no_grad():
            x = th.as_tensor((obs - self.mean) / self.std, dtype=th.float32)
            return self.net(x).numpy(), None  # type: ignore[operator]


def reference_loop(path: str, seed: int, steps: int = 20_000, batch_size: int = 256) -> _Reference:
    import torch as th

    th.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = np.load(path)
    obs = data["obs"].astype(np.float32)
    actions = np.clip(data["actions"], -1, 1).astype(np.float32)  # both experts' Box is [-1, 1]
    mean, std = obs.mean(0), obs.std(0) + 1e-8
    x, y = th.as_tensor((obs - mean) / std), th.as_tensor(actions)
    net = th.nn.Sequential(
        th.nn.Linear(x.shape[1], 256), th.nn.ReLU(), th.nn.Linear(256, 256), th.nn.ReLU(),
        th.nn.Linear(256, y.shape[1]), th.nn.Tanh(),
    )  # fmt: skip
    optimizer = th.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(steps):
        idx = th.as_tensor(rng.integers(0, len(x), batch_size))
        loss = ((net(x[idx]) - y[idx]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return _Reference(net, mean, std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--envs", nargs="+", default=list(EXPERTS), choices=list(EXPERTS))
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--ensemble-noise", type=float, default=None, help="pretrain's ensemble_noise (default its own)"
    )
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"needs the rl-zoo fixtures at {FIXTURES}")
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(args.workers) as pool:
        recorded = {env_id: pool.submit(record, env_id, folder) for env_id in args.envs}
        info = {env_id: future.result() for env_id, future in recorded.items()}
        jobs = {
            (env_id, student, seed): pool.submit(clone, env_id, info[env_id][0], student, seed, args.ensemble_noise)
            for env_id in args.envs
            for student in args.students
            for seed in args.seeds
        }
        print(f"{N_DEMOS} expert episodes each; clones evaluated on {N_EVAL} episodes; seeds {args.seeds}")
        for env_id in args.envs:
            _, expert, random = info[env_id]
            print(f"\n{env_id}: expert {expert:,.0f}, random {random:,.0f}")
            print(f"{'student':26s} {'return per seed':>28s} {'normalised per seed':>24s} {'mean':>6s} {'train s':>8s}")
            for student in args.students:
                results = [jobs[env_id, student, seed].result() for seed in args.seeds]
                returns = np.array([r for r, _ in results])
                scores = (returns - random) / (expert - random)
                per_seed = " ".join(f"{r:8,.0f}" for r in returns)
                per_score = " ".join(f"{s:6.2f}" for s in scores)
                seconds = np.mean([t for _, t in results])
                print(f"{student:26s} {per_seed:>28s} {per_score:>24s} {scores.mean():6.2f} {seconds:8.0f}")


if __name__ == "__main__":
    main()
