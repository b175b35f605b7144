"""Fine-tuning after behaviour cloning: ``pretrain`` then ``learn()``, beside the same algorithm from scratch.

For each task it records 10 (``--demos``) deterministic episodes of the rl-zoo expert in
``../shared/fixtures/rl-zoo`` (SAC HalfCheetah and TQC Walker2d, evaluated on the v5 environments; PPO
CartPole; SAC Pendulum), then for each seed and each variant (the students: SAC, TD3, PPO with its
default network, and ``PPO 256x256``, two hidden layers of 256, on the MuJoCo tasks):

- ``finetune``: ``pretrain(model, demos, n_epochs=100)``, the default call, which for these off-policy
  models with rewarded demonstrations also prepares fine-tuning (the critic fitted to the clone,
  entropy and exploration started low, no random warm-up, demonstrations kept in the replay buffer,
  the actor held, then pulled towards a frozen copy of the clone and the demonstrations; see
  ``sb3_expert.bc.finetune``; ``--finetune-kwargs`` passes it arguments), then ``learn()``;
- ``finetune=False``: behaviour cloning only, then ``learn()``;
- for PPO: ``pretrain``, the default call, which with Box actions also ties the policy to its clone
  (``sb3_expert.bc.finetune``; ``--finetune-kwargs '{"anchor": 100}'`` sets the pull), ``finetune=False``
  (no pull) and ``pretrain value_warm_start`` (the value head fitted to the demonstrations' returns);
- ``scratch``: the same algorithm, default hyperparameters, ``learn()`` only;
- ``expert``, run only when ``--variants`` names it (any off-policy task; the task's student plays no
  part): the rl-zoo expert itself resumed with its own algorithm (SAC on HalfCheetah, TQC on Walker2d:
  its trained critics, entropy coefficient and optimizers), its replay buffer filled with 10,000 steps
  of its own stochastic actions, then ``learn()``: what RL itself gains from the expert's level in the
  same steps, the reference for a near-expert clone (its "clone" columns read "start");

evaluating the model (deterministic, ``--eval-episodes`` episodes of a plain environment) before
``learn()`` and every ``--every`` steps up to ``--steps``. Every evaluation of a run plays the same
episodes (the evaluation environment is re-seeded each time): with fresh start states at each point,
the same PPO Pendulum clone scored from -128 to -378 over successive 10-episode evaluations, and
that noise, not ``learn()``, made the lowest points. 30 episodes per point by default: a MuJoCo
clone's episode either runs like the expert or stalls (HalfCheetah) or falls (Walker2d), so 10 episodes
misjudge it (the seed-0 HalfCheetah SAC clone scores 9,016 over the first 10, 7,141 over 30, eight of
which stall below 5,000). It prints each variant's mean curve over
the seeds, the lowest ratio to the clone along it, the ratio of its mean after the clone (one point moves by
20-40% on a seed; the mean of ten is steadier), the final ratio to the clone (also per seed, with the
standard error of their mean) and to scratch, and writes the curves to ``finetune.png`` (with matplotlib).

One evaluation of a policy is a draw from its neighbourhood: with every weight multiplied by
``1 + 1e-6 N(0, 1)``, far below one update of ``learn()``, the same 30 episodes stall or fall
elsewhere (the seed-0 HalfCheetah SAC clone scores 7,141 itself and 7,618 to 8,812 as ten such
copies, mean 8,383, standard deviation 358: 9 of its 30 episodes below 7,000, 1 to 8 of the copies';
the seed-0 Walker2d TD3 clone 4,020, its copies 3,699 to 4,100, mean 3,945, standard deviation 112).
So the clone and the last point are also evaluated as ``--copies`` such copies each (4 by default;
the weights are put back and the run goes on as without them), and the ratio of the two ends, each
the mean of itself and its copies, is printed beside the plain one, with how many of each end's
episodes fail (return below ``FAILURE``, 0.8, of the demonstrations' mean, counted from random): what
moves a MuJoCo clone's mean is how many episodes stall or fall, so this count says directly whether
``learn()`` made them fewer.

Run: ``python benchmarks/bench_finetune.py [--tasks HalfCheetah-v5/SAC ...] [--seeds 0 1 2]``
(the full table: over 4 hours on 2 cores; one MuJoCo off-policy run, ``--variants finetune``, 30
evaluation episodes, 4 copies: 15-27 minutes on one of 2 busy cores, by machine, 8 of them the copies;
``--tasks 'HalfCheetah-v5/PPO 256x256' 'Walker2d-v5/PPO 256x256' --variants pretrain``: 16 minutes).
``--policy-kwargs`` gives every variant's students those ``policy_kwargs`` (``'{"n_critics": 5}'``:
SB3's ensemble of five critics, the minimum of which SAC's actor and both algorithms' targets take),
checked on each task's student before any run (PPO refuses ``n_critics``: pass ``--tasks``).
The clones, and so every figure, depend on the machine as well as the seed: with the same libraries
the expert's recorded episodes differ from one machine to another (most likely in the last bits of
the CPU's arithmetic, which a MuJoCo episode amplifies): the seed-0 HalfCheetah SAC clone's 150
neighbourhood episodes fail 22 times on one machine of this project and 11 times on another. Pair a
variant with the defaults run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from common import random_return

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "rl-zoo"
EXPERTS = {
    "HalfCheetah-v5": ("sac", "sac/HalfCheetah-v3_1"),
    "Walker2d-v5": ("tqc", "tqc/Walker2d-v3_1"),
    "CartPole-v1": ("ppo", "ppo/CartPole-v1_1"),
    "Pendulum-v1": ("sac", "sac/Pendulum-v1_1"),
}
TASKS = (
    "HalfCheetah-v5/SAC",
    "HalfCheetah-v5/TD3",
    "Walker2d-v5/SAC",
    "Walker2d-v5/TD3",
    "CartPole-v1/PPO",
    "Pendulum-v1/PPO",
    "HalfCheetah-v5/PPO 256x256",
    "Walker2d-v5/PPO 256x256",
)
OFF_POLICY_VARIANTS = ("finetune", "finetune=False", "scratch")
REFERENCES = ("expert",)
"""Variants run only when ``--variants`` names them: ``expert``, the rl-zoo expert itself resumed with
its own algorithm (see :func:`resumed_expert`), whatever the task's student."""
EXPERT_PREFILL = 10_000
"""Steps of the expert's own stochastic actions put in its replay buffer before ``learn()`` resumes it
(the saved model holds no buffer): as many as the demonstrations hold."""
PPO_VARIANTS = ("pretrain", "finetune=False", "pretrain value_warm_start", "scratch")
N_DEMOS = 10
FAILURE = 0.8
"""An evaluation episode fails when its return is below this share of the demonstrations' mean return
(both counted from a random policy's): 7,489 to 7,501 on HalfCheetah and 3,586 to 3,599 on Walker2d, as
the machine records the expert, where the seed-0 HalfCheetah SAC clone's 30 episodes either run (8,583 to
9,553) or stall (390 to 6,850)."""
PERTURBATION = 1e-6
"""Relative size of the weight perturbations of :func:`neighbourhood`: far below one update of
``learn()``, yet enough to change which evaluation episodes a MuJoCo clone stalls or falls in."""


def record(env_id: str, folder: str, n_demos: int = N_DEMOS) -> tuple[str, float, float]:
    """``n_demos`` deterministic expert episodes of ``env_id`` into an ``.npz`` in ``folder``; a random
    policy's mean return (the zero of the ratios); the return below which an episode fails."""
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert import generate_expert_traj, load_demonstrations, load_policy

    algo, run = EXPERTS[env_id]
    venv = make_vec_env(env_id, n_envs=1, seed=0)
    path = f"{folder}/{env_id}.npz"
    generate_expert_traj(load_policy(algo, venv, path=FIXTURES / run), path, venv, n_episodes=n_demos)
    zero = random_return(make_vec_env(env_id, n_envs=1, seed=1), 5)
    expert = float(load_demonstrations(path).episode_returns.mean())
    return path, zero, zero + FAILURE * (expert - zero)


def neighbourhood(model, evaluate, first: np.ndarray, copies: int, seed: int) -> np.ndarray:
    """The episode returns of ``first`` (the policy's own evaluation) and of ``copies`` evaluations of
    copies of the policy with every weight multiplied by ``1 + PERTURBATION * N(0, 1)``; the weights
    are put back exactly and the global random state is not used, so the run goes on as without it."""
    import torch as th

    parameters = list(model.policy.parameters())
    saved = [parameter.detach().clone() for parameter in parameters]
    generator = th.Generator().manual_seed(seed)
    scores = [first]
    with th.no_grad():
        for _ in range(copies):
            for parameter, weights in zip(parameters, saved, strict=True):
                noise = th.randn(weights.shape, generator=generator).to(weights.device)
                parameter.copy_(weights * (1 + PERTURBATION * noise))
            scores.append(evaluate())
        for parameter, weights in zip(parameters, saved, strict=True):
            parameter.copy_(weights)
    return np.concatenate(scores)


def student(task: str, seed: int, policy_kwargs: dict | None = None):
    """The task's student, untrained, with SB3's default hyperparameters and ``policy_kwargs`` (every
    variant's, scratch included) on top of the task's own network shape; one torch thread."""
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import PPO, SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env

    env_id, name = task.split("/")
    algo, *shape = name.split()  # "PPO 256x256": PPO with two hidden layers of 256
    kwargs = {"net_arch": [int(n) for n in shape[0].split("x")]} if shape else {}
    algorithm = {"SAC": SAC, "TD3": TD3, "PPO": PPO}[algo]
    return algorithm(
        "MlpPolicy", make_vec_env(env_id, seed=seed), seed=seed, policy_kwargs={**kwargs, **(policy_kwargs or {})}
    )


def resumed_expert(env_id: str, seed: int) -> Any:
    """The task's rl-zoo expert as a model to resume (SAC on HalfCheetah, TQC on Walker2d): its trained
    actor, critics, entropy coefficient and optimizers, its algorithm's default learning rate (rl-zoo
    trained these with the defaults), ``learning_starts=0``, and a replay buffer holding
    :data:`EXPERT_PREFILL` steps of its own stochastic actions. What its own algorithm does from the
    expert's level in ``learn()``'s steps is the reference for what fine-tuning a clone can gain."""
    import inspect

    import torch as th

    th.set_num_threads(1)
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_expert.experts.sb3 import load_model

    algo, run = EXPERTS[env_id]
    venv = make_vec_env(env_id, seed=seed)
    model: Any = load_model(algo, venv, FIXTURES / run).model  # loaded with a learning rate of 0
    model.set_env(venv)
    model.set_random_seed(seed)
    model.learning_rate = inspect.signature(type(model)).parameters["learning_rate"].default
    model._setup_lr_schedule()
    model.learning_starts, model.verbose = 0, 0
    model._last_obs = venv.reset()
    for _ in range(EXPERT_PREFILL):
        actions, _ = model.predict(model._last_obs, deterministic=False)
        new_obs, rewards, dones, infos = venv.step(actions)
        model._store_transition(model.replay_buffer, model.policy.scale_action(actions), new_obs, rewards, dones, infos)
    return model


def task_variants(task: str, named: list[str] | None) -> list[str]:
    """The variants run for ``task``: those of its algorithm that ``--variants`` names, or all of them
    but the :data:`REFERENCES` when it names none."""
    variants = PPO_VARIANTS if "/PPO" in task else OFF_POLICY_VARIANTS + REFERENCES
    return [v for v in variants if (v not in REFERENCES if named is None else v in named)]


def check_student(task: str, policy_kwargs: dict) -> str | None:
    """Why ``--policy-kwargs`` cannot build the task's student, or None; run before the recordings."""
    try:
        student(task, 0, policy_kwargs)
    except (TypeError, ValueError) as error:
        return f"{task}: {type(error).__name__}: {error}"
    return None


def curve(
    task: str,
    variant: str,
    seed: int,
    path: str,
    steps: int,
    every: int,
    n_eval: int,
    finetune_kwargs: dict,
    copies: int = 0,
    failure: float = -np.inf,
    policy_kwargs: dict | None = None,
) -> tuple[list[float], list[float], list[int]]:
    """Mean evaluation returns: before ``learn()``, then every ``every`` steps; with ``copies`` (not for
    ``scratch``), the clone's and the last point's :func:`neighbourhood` means and how many of their
    episodes return less than ``failure``."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_expert import pretrain

    model = resumed_expert(task.split("/")[0], seed) if variant == "expert" else student(task, seed, policy_kwargs)
    eval_env = make_vec_env(task.split("/")[0], n_envs=1, seed=1000 + seed)
    if variant not in ("scratch", "expert"):
        options = {
            "finetune": {"finetune_kwargs": finetune_kwargs},
            "pretrain": {"finetune_kwargs": finetune_kwargs},  # PPO: the pull towards the clone
            "finetune=False": {"finetune": False},
            "pretrain value_warm_start": {"value_warm_start": True},
        }
        pretrain(model, path, n_epochs=100, seed=seed, verbose=0, **options.get(variant, {}))

    def episodes() -> np.ndarray:
        eval_env.seed(1000 + seed)  # the same episodes at every point: the curve moves with the policy only
        drawn, _ = evaluate_policy(model, eval_env, n_eval, deterministic=True, return_episode_rewards=True)
        return np.asarray(drawn, dtype=float)

    first = episodes()
    returns = [float(first.mean())]
    ends: list[float] = []
    failed: list[int] = []

    def end(own: np.ndarray, offset: int) -> None:
        drawn = neighbourhood(model, episodes, own, copies, seed + offset)
        ends.append(float(drawn.mean()))
        failed.append(int((drawn < failure).sum()))

    if copies and variant != "scratch":
        end(first, 0)

    class Every(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every == 0 and self.num_timesteps <= steps:
                own = episodes()
                returns.append(float(own.mean()))
                if ends and self.num_timesteps == steps:  # here: learn() updates once more before it returns
                    end(own, 1)
            return True

    model.learn(steps, callback=Every())
    return returns, ends, failed


def plot(curves: dict[tuple[str, str], np.ndarray], every: int, out: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return
    tasks = sorted({task for task, _ in curves}, key=TASKS.index)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for (t, variant), returns in curves.items():
            if t == task:
                x = np.arange(returns.shape[1]) * every
                ax.plot(x, returns.mean(0), label=variant)
                ax.fill_between(x, returns.min(0), returns.max(0), alpha=0.15)
        ax.set_title(task)
        ax.set_xlabel("steps of learn()")
        ax.set_ylabel("return")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    print(f"curves written to {out}")


def report(
    tasks: list[str],
    recorded: dict,
    curves: dict[tuple[str, str], np.ndarray],
    hoods: dict[tuple[str, str], list[list[float]]],
    fails: dict[tuple[str, str], list[list[int]]],
    checkpoints: np.ndarray,
    copies: int,
    n_eval: int,
) -> None:
    """Print each task's mean curves, their ratios to the clone and, with ``copies``, the ratio of the
    neighbourhoods and how many of their episodes failed (below :data:`FAILURE` of the demonstrations)."""
    for task in tasks:
        env_id = task.split("/")[0]
        zero = recorded[env_id][1]
        print(
            f"\n{task} (random {zero:,.0f}): return at steps of learn() " + " ".join(f"{c:>7,d}" for c in checkpoints)
        )
        scratch = curves.get((task, "scratch"))
        for (t, variant), returns in curves.items():
            if t != task:
                continue
            mean = returns.mean(0) - zero
            line = f"  {variant:26s}" + " ".join(f"{v + zero:7,.0f}" for v in mean)
            if variant != "scratch":
                line += f"   min/clone {mean[1:].min() / mean[0]:5.2f}  mean/clone {mean[1:].mean() / mean[0]:5.2f}"
                line += f"  final/clone {mean[-1] / mean[0]:5.2f}"
                if scratch is not None:
                    above = scratch.mean(0)[-1] - zero
                    line += f"  final/scratch {mean[-1] / above:5.2f}" if above > 0 else "  scratch below random"
            print(line)
            per_seed = "; ".join(" ".join(f"{v:,.0f}" for v in run) for run in returns)
            print(f"  {'':26s}per seed: {per_seed}")
            if variant != "scratch" and len(returns) > 1:  # how far the mean ratio can be trusted
                ratios = (returns[:, -1] - zero) / (returns[:, 0] - zero)
                error = ratios.std(ddof=1) / np.sqrt(len(ratios))
                listed = " ".join(f"{r:.2f}" for r in ratios)
                print(f"  {'':26s}final/clone per seed: {listed} (standard error of their mean {error:.2f})")
            if (task, variant) in hoods:  # the same ratio, each end the mean of itself and its perturbed copies
                ends = np.array(hoods[task, variant]) - zero
                ratios = ends[:, 1] / ends[:, 0]
                error = ratios.std(ddof=1) / np.sqrt(len(ratios)) if len(ratios) > 1 else float("nan")
                print(
                    f"  {'':26s}neighbourhoods ({copies} copies): clone {ends[:, 0].mean() + zero:,.0f}, last "
                    f"{ends[:, 1].mean() + zero:,.0f}, last/clone {ends[:, 1].mean() / ends[:, 0].mean():.2f}; "
                    f"per seed {' '.join(f'{r:.2f}' for r in ratios)} (standard error {error:.2f})"
                )
                failed = np.array(fails[task, variant])
                drawn = n_eval * (copies + 1)
                print(
                    f"  {'':26s}failed episodes (below {recorded[env_id][2]:,.0f}) of {drawn} per seed: clone "
                    f"{' '.join(map(str, failed[:, 0]))}, last {' '.join(map(str, failed[:, 1]))} (over the seeds "
                    f"{failed[:, 0].mean() / drawn:.1%} and {failed[:, 1].mean() / drawn:.1%})"
                )


def json_object(text: str) -> dict:
    """``--policy-kwargs``: a JSON object (the students' ``policy_kwargs``)."""
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as error:  # argparse would only say "invalid value"
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {error}") from error
    if not isinstance(kwargs, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return kwargs


def finetune_kwargs(text: str) -> dict:
    """``--finetune-kwargs``: a JSON object of ``prepare_finetuning``'s arguments, checked before any run."""
    from sb3_expert.bc.finetune import check_finetuning_args

    kwargs = json_object(text)
    try:
        check_finetuning_args(**kwargs)
    except (TypeError, ValueError) as error:  # argparse would only say "invalid value"
        raise argparse.ArgumentTypeError(str(error)) from error
    return kwargs


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stop (naming the option) on what argparse's types and choices let through."""
    if args.demos < 1:
        parser.error(f"--demos: expected at least 1 episode, got {args.demos}")
    idle = [task for task in args.tasks if not task_variants(task, args.variants)]
    if idle:  # e.g. --variants expert with a PPO task: nothing would run for it, silently
        parser.error(f"--variants {' '.join(args.variants)}: none applies to {', '.join(idle)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        choices=sorted(set(OFF_POLICY_VARIANTS + REFERENCES + PPO_VARIANTS)),
        help='default: all of the task\'s algorithm but the reference "expert"',
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--demos", type=int, default=N_DEMOS, help="expert episodes recorded and cloned")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=2_000)
    parser.add_argument("--eval-episodes", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--plot", default="finetune.png")
    parser.add_argument(
        "--copies",
        type=int,
        default=4,
        help="perturbed copies (weights x (1 + 1e-6 N(0, 1))) evaluated beside the clone and the last point",
    )
    parser.add_argument(
        "--finetune-kwargs",
        type=finetune_kwargs,
        default={},
        help="for the finetune variant, e.g. '{\"actor_delay\": 5000}'",
    )
    parser.add_argument(
        "--policy-kwargs",
        type=json_object,
        default={},
        help="the students' policy_kwargs (every variant), e.g. '{\"n_critics\": 5}'",
    )
    args = parser.parse_args()
    check_args(parser, args)
    if not FIXTURES.is_dir():
        raise SystemExit(f"needs the rl-zoo fixtures at {FIXTURES}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(args.workers) as pool:
        if args.policy_kwargs:  # in the workers: torch is not started in this process before they fork
            refused = [e for e in pool.map(check_student, args.tasks, [args.policy_kwargs] * len(args.tasks)) if e]
            if refused:
                parser.error("--policy-kwargs: " + "; ".join(refused))
        env_ids = sorted({task.split("/")[0] for task in args.tasks})
        recordings = pool.map(record, env_ids, [folder] * len(env_ids), [args.demos] * len(env_ids))
        recorded = dict(zip(env_ids, recordings, strict=True))
        jobs = {}
        for task in args.tasks:
            path, _, failure = recorded[task.split("/")[0]]
            for variant in task_variants(task, args.variants):
                for seed in args.seeds:
                    job = (task, variant, seed, path, args.steps, args.every, args.eval_episodes, args.finetune_kwargs)
                    jobs[task, variant, seed] = pool.submit(curve, *job, args.copies, failure, args.policy_kwargs)
        for future in as_completed(jobs.values()):  # each curve as it comes (a long run can be stopped)
            key = next(k for k, f in jobs.items() if f is future)
            returns, ends, failed = future.result()
            line = f"{key[0]} {key[1]} seed {key[2]}: " + " ".join(f"{v:,.0f}" for v in returns)
            if ends:
                line += f" (neighbourhoods: clone {ends[0]:,.0f}, last {ends[1]:,.0f};"
                line += f" failed episodes {failed[0]}, {failed[1]})"
            print(line, flush=True)
        runs: dict[tuple[str, str], list[list[float]]] = {}
        hoods: dict[tuple[str, str], list[list[float]]] = {}
        fails: dict[tuple[str, str], list[list[int]]] = {}
        for (task, variant, _), future in jobs.items():
            returns, ends, failed = future.result()
            runs.setdefault((task, variant), []).append(returns)
            if ends:
                hoods.setdefault((task, variant), []).append(ends)
                fails.setdefault((task, variant), []).append(failed)
    curves = {key: np.array(returns) for key, returns in runs.items()}
    checkpoints = np.arange(args.steps // args.every + 1) * args.every
    print(f"{args.demos} expert episodes; pretrain(n_epochs=100); {args.eval_episodes} evaluation episodes per point;")
    if args.finetune_kwargs:
        print(f"finetune_kwargs {args.finetune_kwargs}")
    if args.policy_kwargs:
        print(f"policy_kwargs {args.policy_kwargs}")
    print(f"seeds {args.seeds}; mean over seeds. Ratios count from a random policy's return (its zero):")
    print("'min/clone' is the lowest point after the clone over the clone, 'mean/clone' the mean of the points")
    print("after the clone over the clone (steadier than one point), 'final/...' the last point")
    report(args.tasks, recorded, curves, hoods, fails, checkpoints, args.copies, args.eval_episodes)
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.plot:
        plot(curves, args.every, args.plot)


if __name__ == "__main__":
    main()
