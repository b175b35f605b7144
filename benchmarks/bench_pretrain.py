"""Behaviour-cloning speed: ``pretrain()`` against a hand-written torch loop, and memory on a large .h5.

Part 1 prints samples/s of ``pretrain`` and of a hand-written loop over tensors already on the
device (same CartPole MLP policy, same loss: the policy's negative log-likelihood, same Adam, same
batch size) for batch sizes 64, 256 and 1024, and their ratio. It uses the GPU when there is one
(``--device``), with the data moved there once.

Part 2 (``--memory``) writes an .h5 dataset larger than a memory cap, trains from it lazily
(``ExpertDataset(..., in_memory=False)``) and prints the peak RSS next to the cap.

Run: ``python benchmarks/bench_pretrain.py [--device cuda] [--memory]``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO

from sb3_expert import Demonstrations, ExpertDataset, HDF5Writer, pretrain

OBS = spaces.Box(-np.inf, np.inf, (4,), np.float32)


def cartpole_like(n: int, seed: int = 0) -> Demonstrations:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 4)).astype(np.float32)
    starts = np.zeros(n, bool)
    starts[::500] = True
    return Demonstrations(
        obs,
        (obs[:, 2] > 0).astype(np.int64),
        np.ones(n),
        starts,
        observation_space=OBS,
        action_space=spaces.Discrete(2),
    )


def hand_loop(model: PPO, demos: Demonstrations, batch_size: int, n_epochs: int) -> float:
    """The reference: tensors on the device, a permutation, index gathers, Adam. Seconds per epoch."""
    policy, device = model.policy, model.device
    obs = th.as_tensor(demos.obs, device=device)
    actions = th.as_tensor(demos.actions, device=device)
    optimizer = th.optim.Adam(policy.parameters(), lr=1e-3, eps=1e-8)
    policy.set_training_mode(True)
    sync()
    start = time.perf_counter()
    for _ in range(n_epochs):
        order = th.randperm(len(actions), device=device)
        for i in range(0, len(actions), batch_size):
            idx = order[i : i + batch_size]
            _, log_prob, _ = policy.evaluate_actions(obs[idx], actions[idx])
            loss = -log_prob.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    sync()
    return (time.perf_counter() - start) / n_epochs


def sync() -> None:
    if th.cuda.is_available():
        th.cuda.synchronize()


def ours(model: PPO, dataset: ExpertDataset, batch_size: int, n_epochs: int) -> float:
    sync()
    start = time.perf_counter()
    pretrain(model, dataset, n_epochs=n_epochs, batch_size=batch_size, verbose=0)
    sync()
    return (time.perf_counter() - start) / n_epochs


def speed(device: str, n: int, n_epochs: int, repeats: int) -> None:
    demos = cartpole_like(n)
    dataset = ExpertDataset(traj_data=demos, train_fraction=1.0, verbose=0, seed=0)
    print(f"\npretrain vs a hand-written loop: CartPole MLP policy (64x64), {n:,} samples, "
          f"{n_epochs} epochs, device={device} (best of {repeats}, interleaved)")  # fmt: skip
    print(f"  {'batch':>6} {'hand loop (samples/s)':>22} {'pretrain (samples/s)':>21} {'ratio':>7}")
    for batch_size in (64, 256, 1024):
        t_hand, t_ours = [], []
        for _ in range(repeats):
            t_hand.append(
                hand_loop(PPO("MlpPolicy", "CartPole-v1", device=device, seed=0), demos, batch_size, n_epochs)
            )
            t_ours.append(ours(PPO("MlpPolicy", "CartPole-v1", device=device, seed=0), dataset, batch_size, n_epochs))
        hand, mine = n / min(t_hand), n / min(t_ours)
        print(f"  {batch_size:>6} {hand:>22,.0f} {mine:>21,.0f} {mine / hand:>7.2f}x")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(cap_mb: int, dataset_mb: int) -> None:
    obs_space = spaces.Box(-np.inf, np.inf, (256,), np.float32)
    rows = dataset_mb * 2**20 // (256 * 4 + 8)
    base = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.h5"
        rng = np.random.default_rng(0)
        chunk = 50_000
        with HDF5Writer(path, obs_space, spaces.Discrete(4), compression=None) as writer:
            for start in range(0, rows, chunk):
                n = min(chunk, rows - start)
                obs = rng.normal(size=(n, 256)).astype(np.float32)
                starts = np.zeros(n, bool)
                starts[::1000] = True
                writer.append_steps(obs, (obs[:, 0] > 0).astype(np.int64) + 2 * (obs[:, 1] > 0), np.ones(n), starts)
                ends = np.flatnonzero(starts)
                lengths = np.diff(np.append(ends, n))
                writer.end_episodes(lengths.astype(float), lengths, np.ones(len(ends), bool),
                                    np.zeros(len(ends), bool), obs[ends])  # fmt: skip
                writer.flush()
        size_mb = path.stat().st_size / 2**20
        from gymnasium.envs.registration import register

        register("BigObs-v0", entry_point=_BigObsEnv, max_episode_steps=1000)
        model = PPO("MlpPolicy", "BigObs-v0", seed=0, device="cpu")
        dataset = ExpertDataset(expert_path=path, in_memory=False, verbose=0, seed=0, batch_size=1024)
        start = time.perf_counter()
        pretrain(model, dataset, n_epochs=1, verbose=0)
        elapsed = time.perf_counter() - start
        dataset.close()
    peak = peak_rss_mb()
    print(f"\nlazy .h5 training: dataset {size_mb:,.0f} MiB ({rows:,} steps of 256 float32), memory cap {cap_mb} MiB")
    print(f"  RSS before: {base:,.0f} MiB; peak RSS while training: {peak:,.0f} MiB "
          f"({'under' if peak < cap_mb else 'OVER'} the cap); 1 epoch in {elapsed:.1f} s "
          f"({rows / elapsed:,.0f} samples/s)")  # fmt: skip


class _BigObsEnv:
    def __new__(cls):  # a gymnasium env with the benchmark's spaces, for PPO's constructor
        import gymnasium as gym

        class BigObs(gym.Env):
            observation_space = spaces.Box(-np.inf, np.inf, (256,), np.float32)
            action_space = spaces.Discrete(4)

            def reset(self, *, seed=None, options=None):
                return np.zeros(256, np.float32), {}

            def step(self, action):
                return np.zeros(256, np.float32), 0.0, False, False, {}

        return BigObs()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if th.cuda.is_available() else "cpu")
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also run the memory-capped .h5 benchmark")
    parser.add_argument("--cap-mb", type=int, default=1024)
    parser.add_argument("--dataset-mb", type=int, default=1536)
    args = parser.parse_args()
    th.set_num_threads(max(1, th.get_num_threads()))
    speed(args.device, args.samples, args.epochs, args.repeats)
    if args.memory:
        memory(args.cap_mb, args.dataset_mb)


if __name__ == "__main__":
    main()
