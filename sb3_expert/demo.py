"""The end-to-end demo: an expert, its demonstrations, a behaviour-cloned PPO, and their returns.

``sb3-expert demo`` (or ``python -m sb3_expert demo``) runs it on CartPole-v1: the small PPO expert
shipped with the package (trained by ``examples/train_demo_expert.py``), loaded with
``load_policy``, drives the environment under :class:`RecordDemonstrations`; the recording goes to
``.h5``; a fresh PPO is pretrained on it; expert, clone and a random policy are evaluated over
the same seeds; a table is printed and a plot of their returns written (with matplotlib).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_expert.data.dataset import ExpertDataset
from sb3_expert.record.wrapper import RecordDemonstrations

__all__ = ["EXPERT_PATH", "cartpole_controller", "load_demo_expert", "run_demo"]

EXPERT_PATH = Path(__file__).resolve().parent / "experts" / "assets" / "ppo-CartPole-v1.zip"
"""The shipped CartPole-v1 expert (PPO, mean return 500)."""


def cartpole_controller(obs: np.ndarray) -> int:
    """A linear CartPole-v1 controller that balances the pole for all 500 steps."""
    return int(obs[2] + 0.5 * obs[3] + 0.1 * obs[0] + 0.2 * obs[1] > 0)


def load_demo_expert() -> Callable[[Any], Any]:
    """The shipped expert as ``obs -> action``."""
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert.experts.registry import load_policy

    policy = load_policy("ppo", make_vec_env("CartPole-v1"), path=EXPERT_PATH, device="cpu")
    return lambda obs: int(policy.predict(obs, deterministic=True)[0])


def _returns(env_id: str, act: Callable[[Any], Any], n_episodes: int, seed: int) -> np.ndarray:
    env = gym.make(env_id)
    out = []
    for k in range(n_episodes):
        obs, _ = env.reset(seed=seed + k)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = terminated or truncated
        out.append(total)
    env.close()
    return np.array(out)


def run_demo(
    out_dir: str | Path = "sb3_expert_demo",
    *,
    episodes: int = 10,
    epochs: int = 20,
    eval_episodes: int = 20,
    seed: int = 0,
    plot: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """Record an expert, pretrain a fresh PPO on its demonstrations, evaluate, report.

    :param out_dir: folder for ``demos.h5``, ``ppo_clone.zip`` and ``returns.png``
    :param episodes: expert episodes to record
    :param epochs: behaviour-cloning epochs
    :param eval_episodes: evaluation episodes per policy (the same seeds for each)
    :param seed: seed of the recording, the model and the evaluation
    :param plot: write ``returns.png`` (needs matplotlib)
    :param log: where progress lines go
    :return: the evaluation returns per policy
    """
    from stable_baselines3 import PPO

    from sb3_expert.bc.pretrain import pretrain
    from sb3_expert.experts.sb3 import model_output_path, save_model

    env_id = "CartPole-v1"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    path = out / "demos.h5"
    expert = load_demo_expert()
    with RecordDemonstrations(gym.make(env_id), path, overwrite=True, metadata={"expert": "shipped PPO"}) as env:
        for k in range(episodes):
            obs, _ = env.reset(seed=seed + k)
            done = False
            while not done:
                obs, _, terminated, truncated, _ = env.step(expert(obs))
                done = terminated or truncated
    dataset = ExpertDataset(expert_path=path, verbose=0, seed=seed, train_fraction=0.8)
    log(f"recorded {dataset.num_traj} expert episodes ({dataset.num_transition} steps) to {path}")
    model = PPO("MlpPolicy", env_id, seed=seed, device="cpu")
    pretrain(model, dataset, n_epochs=epochs, seed=seed, val_interval=epochs, verbose=0)
    save_model(model, model_output_path(out / "ppo_clone", overwrite=True))  # atomically: a kill leaves the last one
    log(f"pretrained a fresh PPO for {epochs} epochs; saved to {out / 'ppo_clone.zip'}")
    eval_seed = 10_000 + seed
    rng = np.random.default_rng(seed)
    results = {
        "expert (PPO, shipped)": _returns(env_id, expert, eval_episodes, eval_seed),
        "PPO clone (pretrain)": _returns(
            env_id, lambda o: model.predict(o, deterministic=True)[0], eval_episodes, eval_seed
        ),
        "random policy": _returns(env_id, lambda o: int(rng.integers(2)), eval_episodes, eval_seed),
    }
    log(f"\n{'policy':<24} {'mean return':>12} {'std':>8} {'min':>7} {'max':>7}   ({eval_episodes} episodes)")
    for name, r in results.items():
        log(f"{name:<24} {r.mean():>12.1f} {r.std():>8.1f} {r.min():>7.0f} {r.max():>7.0f}")
    if plot:
        _plot(results, out / "returns.png", log)
    log(f"\ndone in {time.perf_counter() - start:.1f} s")
    return results


def _plot(results: dict[str, np.ndarray], path: Path, log: Callable[[str], None]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("(no plot: pip install 'sb3-expert[plot]' for matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(results)
    ax.boxplot([results[n] for n in names], tick_labels=names)
    for i, name in enumerate(names, start=1):
        ax.scatter(np.full(len(results[name]), i), results[name], alpha=0.4, s=12)
    ax.set_ylabel("episode return")
    ax.set_title("CartPole-v1: expert, behaviour-cloned PPO, random")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    log(f"plot of the returns: {path}")
