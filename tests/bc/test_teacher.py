"""The ensemble teacher of ``pretrain`` (continuous actions, vector observations)."""

import csv

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.logger import Logger, make_output_format

from sb3_expert import ArgumentTypeError, pretrain
from sb3_expert.bc.losses import loss_for
from sb3_expert.bc.teacher import Teacher, default_noise, teacher_skipped
from tests.helpers import expert_demos


@pytest.fixture(scope="module")
def pendulum_demos():
    return expert_demos("Pendulum-v1", 5)


def logged(model, tmp_path):
    model.set_logger(Logger(str(tmp_path), [make_output_format("csv", str(tmp_path))]))
    return tmp_path / "progress.csv"


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_default_call_trains_a_teacher_and_keeps_the_models_networks(pendulum_demos, tmp_path):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, seed=0)
    plain = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, seed=0)
    log = logged(model, tmp_path / "a")
    plain_log = logged(plain, tmp_path / "b")
    rng_state = th.get_rng_state()
    pretrain(model, pendulum_demos, n_epochs=2, seed=0, finetune=False)
    assert th.equal(th.get_rng_state(), rng_state)  # the teacher's initialisation leaves the global RNG alone
    pretrain(plain, pendulum_demos, n_epochs=2, seed=0, finetune=False, ensemble=0)
    assert rows(log)[0]["pretrain/ensemble"] == "5 teachers, noise 0.1, perturbed copies 2"
    assert float(rows(log)[0]["pretrain/teacher_loss"]) > 0
    assert "pretrain/ensemble" not in rows(plain_log)[0]
    # the same networks, trained differently; nothing of the teacher stays in the model
    assert model.policy.state_dict().keys() == plain.policy.state_dict().keys()
    assert repr(model.policy) == repr(plain.policy) and model.policy_kwargs == plain.policy_kwargs
    assert not th.equal(model.actor.mu.weight, plain.actor.mu.weight)


def test_a_gaussian_policy_learns_the_teacher_with_more_noise(pendulum_demos, tmp_path):
    model = PPO("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, seed=0)
    log = logged(model, tmp_path)
    pretrain(model, pendulum_demos, n_epochs=1, seed=0, ensemble=2)
    assert rows(log)[0]["pretrain/ensemble"] == "2 teachers, noise 0.2, perturbed copies 2"


def test_repeatable_with_a_seed(pendulum_demos):
    weights = []
    for _ in range(2):
        model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, seed=0)
        pretrain(model, pendulum_demos, n_epochs=1, seed=3, finetune=False, ensemble=2)
        weights.append(th.nn.utils.parameters_to_vector(model.actor.parameters()))
    assert th.equal(*weights)


def test_seeded_members_repeat_unseeded_ones_differ():
    obs = th.zeros(4, 3)
    batches = [(obs, (th.zeros(4, 1),))]
    policy = SAC("MlpPolicy", "Pendulum-v1").policy
    bc = loss_for(policy)

    def teacher(seed):
        made = Teacher(batches, bc, policy.observation_space, policy.action_space, 2, th.device("cpu"), seed)
        return th.cat([p.flatten() for p in made.parameters()])

    assert th.equal(teacher(1), teacher(1))
    assert not th.equal(teacher(None), teacher(None))  # drawn from the global RNG, which moves on


def test_skipped_where_it_cannot_apply_and_refused_when_insisted(tmp_path):
    cartpole = expert_demos("CartPole-v1", 2)
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    log = logged(model, tmp_path)
    pretrain(model, cartpole, n_epochs=1)  # Discrete actions: plain cloning
    assert "pretrain/ensemble" not in rows(log)[0]
    with pytest.raises(ArgumentTypeError, match="ensemble: no teacher can train here: .* no continuous"):
        pretrain(model, cartpole, n_epochs=1, ensemble=3)
    with pytest.warns(UserWarning, match="ensemble_noise ignored: no teacher trains here: .* no continuous"):
        pretrain(model, cartpole, n_epochs=1, ensemble_noise=0.2)
    bc = loss_for(SAC("MlpPolicy", "Pendulum-v1").policy)
    box = spaces.Box(-1, 1, (2,))
    assert "no vector" in teacher_skipped(bc, spaces.Box(0, 255, (8, 8, 3), np.uint8), box, False)
    assert "no finite bounds" in teacher_skipped(bc, spaces.Box(-1, 1, (3,)), spaces.Box(-np.inf, np.inf, (2,)), False)
    assert teacher_skipped(bc, spaces.Box(-1, 1, (3,)), box, False) == ""


@pytest.mark.parametrize("squash", [False, True])
def test_targets_in_the_policys_units(squash):
    """A PPO policy regresses env-unit actions (Pendulum: [-2, 2]), SAC and a squashing PPO scaled
    ones: the teacher learns from either and labels in the same units."""
    policy = PPO("MlpPolicy", "Pendulum-v1", use_sde=squash, policy_kwargs={"squash_output": squash} if squash else {})
    bc = loss_for(policy.policy)
    assert bc.teacher_space == ("scaled" if squash else "env")
    assert default_noise(bc) == (0.1 if squash else 0.2)  # a Gaussian's unbounded mean learns wider
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(256, 3)), dtype=th.float32)
    action = 1.5  # in env units
    expert = np.full((256, 1), action, np.float32)
    targets = bc.targets(expert, th.device("cpu"))
    batches = [(obs, (targets,))]
    teacher = Teacher(batches, bc, policy.observation_space, policy.action_space, 2, th.device("cpu"), seed=0)
    optimizer = th.optim.Adam(teacher.parameters(), lr=1e-3)
    for _ in range(300):
        loss = teacher.loss(obs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    np.testing.assert_allclose(teacher.targets(obs).numpy(), targets.numpy(), atol=0.02)
    noisy = teacher.perturb(obs, 0.1, th.Generator().manual_seed(0))
    assert 0.05 < (noisy - obs).std().item() < 0.15  # 0.1 of the observations' spread (about 1 here)


def test_perturbed_rows_range_from_near_to_twice_the_noise():
    """Each perturbed row gets its own scale, uniform in [0, 2 * noise] of each observation's
    spread: rows close to the demonstrations and rows further off in every batch."""
    policy = PPO("MlpPolicy", "Pendulum-v1")
    space = spaces.Box(-np.inf, np.inf, (64,))
    spread = np.linspace(0.5, 5.0, 64, dtype=np.float32)  # observations of mixed scales
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(2000, 64)) * spread, dtype=th.float32)
    bc = loss_for(policy.policy)
    teacher = Teacher([(obs, (obs[:, :1],))], bc, space, policy.action_space, 2, th.device("cpu"), seed=0)
    noisy = teacher.perturb(obs, 0.1, th.Generator().manual_seed(0))
    scale = ((noisy - obs) / th.as_tensor(spread)).pow(2).mean(dim=1).sqrt()  # per row, in units of spread
    assert 0.09 < scale.mean().item() < 0.11  # the noise on average
    assert scale.min().item() < 0.02 and 0.18 < scale.max().item() < 0.26  # from near 0 to twice it
