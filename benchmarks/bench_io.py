"""Write and read 1,000,000 CartPole-shaped steps in both formats; random batches from a lazy .h5.

Run: ``python benchmarks/bench_io.py [--steps N]``. Prints steps/s for each operation.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from gymnasium import spaces

from sb3_expert import Demonstrations, HDF5Reader, HDF5Writer, load_demonstrations, save_demonstrations

OBS = spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACT = spaces.Discrete(2)


def cartpole_like(n_steps: int, episode_length: int = 200, seed: int = 0) -> Demonstrations:
    rng = np.random.default_rng(seed)
    n_episodes = -(-n_steps // episode_length)
    starts = np.zeros(n_steps, bool)
    starts[::episode_length] = True
    return Demonstrations(
        rng.normal(size=(n_steps, 4)).astype(np.float32),
        rng.integers(0, 2, n_steps),
        np.ones(n_steps),
        starts,
        observation_space=OBS,
        action_space=ACT,
        terminated=np.ones(n_episodes, bool),
        truncated=np.zeros(n_episodes, bool),
        final_obs=rng.normal(size=(n_episodes, 4)).astype(np.float32),
    )


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=2000)
    args = parser.parse_args()
    n = args.steps
    demos = cartpole_like(n)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".npz", ".h5"):
            path = Path(tmp) / f"demos{suffix}"
            _, t_write = timed(lambda p=path: save_demonstrations(demos, p))
            loaded, t_read = timed(lambda p=path: load_demonstrations(p))
            assert loaded.n_steps == n
            size = path.stat().st_size / 2**20
            rows.append((f"write {suffix} (whole)", n / t_write, f"{size:.1f} MiB"))
            rows.append((f"read {suffix} (whole)", n / t_read, ""))
        # chunked appends through one open file, as the recorders do (1024 steps a chunk, flushed)
        path = Path(tmp) / "chunked.h5"
        chunk = 1024

        def chunked() -> None:
            with HDF5Writer(path, OBS, ACT) as w:
                for start in range(0, n, chunk):
                    s = slice(start, start + chunk)
                    w.append_steps(demos.obs[s], demos.actions[s], demos.rewards[s], demos.episode_starts[s])
                    w.flush()

        _, t_chunked = timed(chunked)
        rows.append((f"append .h5 ({chunk}-step chunks, flushed)", n / t_chunked, ""))
        h5 = Path(tmp) / "demos.h5"
        reader, t_open = timed(lambda: HDF5Reader(h5))
        rng = np.random.default_rng(0)
        batches = [rng.integers(0, n, args.batch_size) for _ in range(args.batches)]
        _, t_batches = timed(lambda: [reader.get(b) for b in batches])
        reader.close()
        rows.append(
            (
                f"random batches of {args.batch_size} from a lazy .h5",
                args.batches * args.batch_size / t_batches,
                f"open {t_open * 1e3:.1f} ms",
            )
        )
        in_memory = load_demonstrations(h5)
        _, t_mem = timed(lambda: [(in_memory.obs[b], in_memory.actions[b]) for b in batches])
        rows.append((f"random batches of {args.batch_size} in memory", args.batches * args.batch_size / t_mem, ""))
    print(f"\n{n:,} CartPole-shaped steps (obs float32 (4,), Discrete(2) actions)\n")
    print(f"{'operation':<48} {'steps/s':>14}  note")
    for name, rate, note in rows:
        print(f"{name:<48} {rate:>14,.0f}  {note}")


if __name__ == "__main__":
    main()
