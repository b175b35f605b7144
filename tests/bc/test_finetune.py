"""prepare_finetuning: what it changes in a clone, what it leaves alone, and its argument checks."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.noise import NormalActionNoise

from sb3_expert import pretrain
from sb3_expert.bc.batches import discounted_returns
from sb3_expert.bc.finetune import ACTION_NOISE, ACTOR_STD, ActorHook, prepare_finetuning
from sb3_expert.bc.replay import DemoReplayBuffer
from tests.helpers import expert_demos, needs_fixtures, with_rewards

TINY = {"net_arch": [16, 16]}


@pytest.fixture(scope="module")
def demos():
    return expert_demos("Pendulum-v1", 3)


def _actions(model, obs):
    return model.predict(obs, deterministic=True)[0]


@pytest.mark.parametrize("algo", [SAC, TD3])
def test_prepare_fits_the_critic_and_keeps_the_actor(algo, demos):
    model = algo("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), buffer_size=2000, seed=0)
    pretrain(model, demos, n_epochs=2, seed=0, finetune=False)
    model.replay_buffer.add(  # online data already there is kept
        demos.obs[:1], demos.obs[1:2], np.zeros((1, 1)), np.array([5.0]), np.zeros(1), [{}]
    )
    actions = _actions(model, demos.obs)
    actor = {k: v.clone() for k, v in model.actor.state_dict().items()}
    critic_before = [p.clone() for p in model.critic.parameters()]
    hook = prepare_finetuning(model, demos, critic_steps=200, bc_weight=1.0, actor_delay=10)
    np.testing.assert_array_equal(_actions(model, demos.obs), actions)
    for key, value in model.actor.state_dict().items():
        if key.startswith("log_std."):  # SAC: the spread set to ACTOR_STD (bias log ACTOR_STD, no weights)
            assert th.equal(value, th.full_like(value, np.log(ACTOR_STD) if key.endswith("bias") else 0.0)), key
        else:
            assert th.equal(value, actor[key]), key
    if algo is TD3:  # a deterministic actor gets exploration noise, the stochastic one has its own
        assert isinstance(model.action_noise, NormalActionNoise)
        assert np.allclose(model.action_noise._sigma, ACTION_NOISE)
    else:
        assert model.action_noise is None
    assert any(not th.equal(a, b) for a, b in zip(critic_before, model.critic.parameters()))
    for online, target in zip(model.critic.parameters(), model.critic_target.parameters()):
        assert not th.equal(online, target) or model.tau == 1.0  # targets follow by polyak, as in learn()
    assert model._n_updates == 0 and model.learning_starts == 0
    buffer = model.replay_buffer
    assert isinstance(buffer, DemoReplayBuffer) and buffer.pos == 1 and buffer.rewards[0, 0] == 5.0
    assert buffer.demonstrations.size() == demos.n_steps
    assert isinstance(hook, ActorHook)
    if algo is SAC:
        assert model.log_ent_coef.exp().item() == pytest.approx(0.01)
    with pytest.raises(AttributeError):
        model._logger  # noqa: B018  (pretrain's logger was not attached: learn() configures its own)
    model.learn(30)


def test_critic_fit_learns_the_returns(demos):
    """Policy evaluation on the demonstrations: Q of the recorded actions tracks the discounted returns."""
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0, gamma=0.5, tau=0.1, batch_size=64)
    pretrain(model, demos, n_epochs=2, seed=0, finetune=False)
    obs = th.as_tensor(demos.obs)
    actions = th.as_tensor(model.policy.scale_action(demos.actions), dtype=th.float32)
    returns = discounted_returns(demos.rewards, demos.episode_starts, 0.5)

    def error() -> float:
        with th.no_grad():
            q = model.critic(obs, actions)[0].squeeze(1).numpy()
        return float(np.mean(np.abs(q - returns)))

    before = error()
    prepare_finetuning(model, demos, critic_steps=1500, demo_fraction=None, bc_weight=None, actor_delay=0)
    assert error() < 0.3 * before
    assert error() < 0.3 * np.mean(np.abs(returns))


@pytest.mark.parametrize("algo", [SAC, TD3])
def test_critic_tau_brings_the_fit_to_its_fixed_point_sooner(algo, demos):
    """At SB3's tau=0.005 a short fit makes a few Bellman backups only (TD3: one per
    ``policy_delay`` steps), so its Q stays near where it started; ``critic_tau`` moves the target
    networks faster during the fit, and the model's tau is put back. Measured by the level of the
    values (their mean over the demonstrations) against a long fit of the same clone: the clone's
    own values, which the expert's recorded returns are not."""
    obs = th.as_tensor(demos.obs)

    def fitted(steps: int, critic_tau: float | None) -> float:
        model = algo("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0, gamma=0.9, batch_size=64)
        pretrain(model, demos, n_epochs=2, seed=0, finetune=False)
        actions = th.as_tensor(model.policy.scale_action(demos.actions), dtype=th.float32)
        prepare_finetuning(model, demos, critic_steps=steps, critic_tau=critic_tau, bc_weight=None, actor_delay=0)
        assert model.tau == 0.005
        with th.no_grad():
            return float(model.critic(obs, actions)[0].mean())

    reference = fitted(4000, 0.1)
    gap = {tau: abs(fitted(600, tau) - reference) for tau in (None, 0.1)}
    assert gap[0.1] < 0.5 * gap[None], (gap, reference)


def test_actor_hook_holds_then_anchors(demos):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    pretrain(model, demos, n_epochs=5, seed=0, finetune=False)
    hook = prepare_finetuning(model, demos, critic_steps=50, bc_weight=None, actor_delay=40)
    before = [p.clone() for p in model.actor.parameters()]
    model.learn(40)
    assert all(th.equal(a, b) for a, b in zip(before, model.actor.parameters()))  # held still
    moments = [model.actor.optimizer.state[p] for p in model.actor.parameters()]
    assert all(m["step"] > 0 and m["exp_avg_sq"].any() for m in moments)  # but Adam's moments warmed up
    model.learn(20, reset_num_timesteps=False)
    assert any(not th.equal(a, b) for a, b in zip(before, model.actor.parameters()))  # then trained
    hook.remove()


@pytest.mark.parametrize("algo", [SAC, TD3])
def test_the_anchor_holds_the_actor_near_the_clone(algo, demos):
    """After the delay, the pull towards the frozen clone keeps the actor's actions closer to the
    clone's than the critic alone leaves them (same seed, same steps)."""
    drift = {}
    for anchor in (None, 100.0):
        model = algo("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0, learning_rate=3e-3)
        pretrain(model, demos, n_epochs=5, seed=0, finetune=False)
        clone = _actions(model, demos.obs)
        prepare_finetuning(model, demos, critic_steps=100, bc_weight=None, actor_delay=0, anchor=anchor)
        model.learn(300)
        drift[anchor] = np.abs(_actions(model, demos.obs) - clone).mean()
    assert drift[100.0] < 0.5 * drift[None], drift


def test_pretrain_prepares_fine_tuning_by_default_when_there_are_rewards(demos):
    quick = {"critic_steps": 10, "bc_weight": None}
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), buffer_size=500, seed=0)
    starts = model.learning_starts
    pretrain(model, demos, n_epochs=1, finetune=False)
    assert type(model.replay_buffer) is not DemoReplayBuffer and model.learning_starts == starts  # turned off
    with pytest.warns(UserWarning, match="finetune_kwargs ignored: the demonstrations have no rewards"):
        pretrain(model, with_rewards(demos, np.zeros(demos.n_steps)), n_epochs=1, finetune_kwargs=quick)
    assert type(model.replay_buffer) is not DemoReplayBuffer and model.learning_starts == starts  # nothing to fit
    pretrain(model, demos, n_epochs=1, finetune_kwargs=quick)  # the default: prepared
    assert isinstance(model.replay_buffer, DemoReplayBuffer) and model.learning_starts == 0
    assert model.log_ent_coef.exp().item() == pytest.approx(0.01)


@pytest.mark.parametrize("algo", [SAC, TD3])
def test_an_n_step_model_is_prepared_with_n_step_demonstrations(algo, demos):
    """SB3's ``n_steps=3`` gives an ``NStepReplayBuffer``, which ``pretrain`` left as it was (no
    demonstrations kept, no fine-tuning prepared); now the mixing buffer and the critic fit use the
    model's n-step returns."""
    model = algo("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), n_steps=3, gamma=0.95, seed=0)
    pretrain(model, demos, n_epochs=1, ensemble=0, finetune_kwargs={"critic_steps": 20})
    buffer = model.replay_buffer
    assert isinstance(buffer, DemoReplayBuffer) and (buffer.n_steps, buffer.gamma) == (3, 0.95)
    assert (buffer.demonstrations.n_steps, buffer.demonstrations.gamma) == (3, 0.95)
    assert model.learning_starts == 0  # prepared
    assert buffer.sample(8).discounts.max() == pytest.approx(0.95**3)
    model.learn(30)
    assert buffer.size() == 30


def test_n_step_returns_asked_of_a_one_step_model(demos):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    pretrain(model, demos, n_epochs=1, ensemble=0, finetune=False)
    weights = [p.clone() for p in model.critic.parameters()]
    for kwargs, error, message in [
        ({"n_steps": 0}, ValueError, "n_steps: expected an integer >= 1, got 0"),
        ({"n_steps": 3, "demo_fraction": None}, TypeError, "n_steps: given \\(3\\) with demo_fraction=None"),
    ]:
        with pytest.raises(error, match=message):
            prepare_finetuning(model, demos, critic_steps=20, **kwargs)
    assert all(th.equal(a, b) for a, b in zip(weights, model.critic.parameters())) and model.learning_starts == 100
    prepare_finetuning(model, demos, critic_steps=20, n_steps=3)
    buffer = model.replay_buffer
    assert model.n_steps == 3 and buffer.n_steps == 3 and buffer.demonstrations.n_steps == 3
    assert buffer.sample(8).discounts.max() == pytest.approx(model.gamma**3)
    model.learn(20)


def test_bad_finetune_arguments_change_nothing(demos):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    weights = [p.clone() for p in model.policy.parameters()]
    for kwargs, error, match in (
        ({"critic_step": 5}, TypeError, "unknown"),
        ({"demo_fraction": 1.5}, ValueError, "demo_fraction"),
        ({"critic_steps": -1}, ValueError, "critic_steps"),
        ({"actor_delay": 2.5}, ValueError, "actor_delay"),
        ({"bc_weight": "big"}, TypeError, "bc_weight"),
        ({"anchor": -1.0}, ValueError, "anchor"),
        ({"action_noise": "x"}, TypeError, "action_noise"),
        ({"actor_std": 0.0}, ValueError, "actor_std"),
        ({"actor_lr": 0.0}, ValueError, "actor_lr"),
        ({"critic_tau": 0.0}, ValueError, "critic_tau"),
        ({"critic_tau": 1.5}, ValueError, "critic_tau"),
        ({"critic_tau": "fast"}, TypeError, "critic_tau"),
        ({"critic_tau": 0.05, "critic_steps": 0}, TypeError, "critic_tau: given .* with critic_steps=0"),
        ({"critic_steps": float("inf")}, ValueError, "critic_steps"),  # not Python's OverflowError
        ({"ent_coef": float("inf")}, ValueError, "ent_coef"),
        ({"anchor": float("inf")}, ValueError, "anchor"),
    ):
        with pytest.raises(error, match=match):
            pretrain(model, demos, n_epochs=1, finetune=True, finetune_kwargs=kwargs)
    with pytest.raises(TypeError, match="finetune"):
        pretrain(PPO("MlpPolicy", "CartPole-v1"), expert_demos("CartPole-v1", 1), n_epochs=1, finetune=True)
    with pytest.raises(TypeError, match="finetune"):
        pretrain(model, demos, n_epochs=1, finetune="yes")
    with pytest.raises(TypeError, match=r"finetune_kwargs: given \(\['critic_steps'\]\) with finetune=False"):
        pretrain(model, demos, n_epochs=1, finetune=False, finetune_kwargs={"critic_steps": 5})
    assert all(th.equal(a, b) for a, b in zip(weights, model.policy.parameters()))
    with pytest.raises(TypeError, match="off-policy"):
        prepare_finetuning(PPO("MlpPolicy", "Pendulum-v1"), demos)


def test_a_second_preparation_replaces_the_hook(demos):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    pretrain(model, demos, n_epochs=1, seed=0, finetune=False)
    first = prepare_finetuning(model, demos, critic_steps=0, actor_delay=1000)
    second = prepare_finetuning(model, demos, critic_steps=0, actor_delay=0, bc_weight=None, anchor=None, actor_lr=None)
    assert first is not None and second is None
    assert not model.actor.optimizer._optimizer_step_pre_hooks  # the first hook (holding) is gone
    before = [p.clone() for p in model.actor.parameters()]
    model.learn(20)
    assert any(not th.equal(a, b) for a, b in zip(before, model.actor.parameters()))


def test_what_cannot_be_prepared_is_refused_before_training(demos, tmp_path):
    from stable_baselines3 import HerReplayBuffer

    from sb3_expert import ExpertDataset, save_demonstrations
    from tests.bc.test_normalize import GoalPoint, goal_demos

    goals = goal_demos(40)
    her = SAC("MultiInputPolicy", GoalPoint(), replay_buffer_class=HerReplayBuffer, policy_kwargs=dict(TINY))
    weights = [p.clone() for p in her.policy.parameters()]
    with pytest.raises(TypeError, match="HerReplayBuffer cannot be replaced"):
        pretrain(her, goals, n_epochs=1, finetune=True)
    assert all(th.equal(a, b) for a, b in zip(weights, her.policy.parameters()))
    pretrain(her, goals, n_epochs=1, finetune=None)  # by default: HER is kept, nothing prepared
    assert isinstance(her.replay_buffer, HerReplayBuffer)

    path = save_demonstrations(demos, tmp_path / "demos.h5")
    lazy = ExpertDataset(expert_path=path, in_memory=False, verbose=0)
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    weights = [p.clone() for p in model.policy.parameters()]
    with pytest.raises(TypeError, match="in memory"):
        pretrain(model, lazy, n_epochs=1, finetune=True)
    assert all(th.equal(a, b) for a, b in zip(weights, model.policy.parameters()))


@needs_fixtures
def test_a_pendulum_clone_keeps_its_score_while_sac_learns():
    """Issue 12's small version: a SAC clone of the zoo Pendulum expert prepared by ``finetune=True``,
    then 3,000 steps of ``learn()``: the normalised score (random 0, clone 1) stays at or above 0.8
    at every point. (The same clone without ``finetune`` falls to -0.27, 0.20, -0.02: measured.)"""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from tests.helpers import zoo_expert_demos  # reads the zoo's Pendulum expert from the fixtures

    model = SAC("MlpPolicy", make_vec_env("Pendulum-v1", seed=0), policy_kwargs={"net_arch": [64, 64]}, seed=0)
    eval_env = make_vec_env("Pendulum-v1", seed=100)
    demos = zoo_expert_demos("Pendulum-v1", 10)
    pretrain(model, demos, n_epochs=50, seed=0, finetune=True, finetune_kwargs={"critic_steps": 2000})

    def score() -> float:
        return float(evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)[0])

    random = -1200.0  # a random Pendulum policy's mean return
    clone = score()
    assert clone > -300  # a good clone to start from
    points = []

    class Every(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 1000 == 0:
                points.append((score() - random) / (clone - random))
            return True

    model.learn(3000, callback=Every())
    assert len(points) == 3 and min(points) >= 0.8, (clone, points)


def test_the_actors_learning_rate_is_capped_while_fine_tuning(demos):
    model = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)  # SB3's TD3: 1e-3
    pretrain(model, demos, n_epochs=1, finetune=False)
    prepare_finetuning(model, demos, critic_steps=0, actor_delay=0, bc_weight=None, anchor=None, actor_lr=1e-4)
    model.learn(40)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert model.critic.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)  # the critic keeps the model's


def test_the_entropy_target_is_the_clones_own(demos):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    pretrain(model, demos, n_epochs=1, finetune=False)
    assert model.target_entropy == -1.0  # SB3's: minus the action dimension
    prepare_finetuning(model, demos, critic_steps=0)  # by default, target_entropy="clone"
    obs = th.as_tensor(demos.obs, dtype=th.float32)
    with th.no_grad():  # -log pi of the clone's own actions, its spread set to 0.1
        entropy = -np.mean([model.actor.action_log_prob(obs)[1].mean().item() for _ in range(20)])
    assert abs(entropy + 1.0) > 0.05  # not SB3's target
    assert model.target_entropy == pytest.approx(entropy, abs=0.1)
    prepare_finetuning(model, demos, critic_steps=0, target_entropy=-2.5)
    assert model.target_entropy == -2.5
    prepare_finetuning(model, demos, critic_steps=0, target_entropy=None)
    assert model.target_entropy == -2.5  # None: left as it is
    for value, error in (
        ("auto", TypeError),
        (float("nan"), ValueError),
        (-float("inf"), ValueError),
        ([1.0], TypeError),
    ):
        with pytest.raises(error, match="target_entropy"):
            prepare_finetuning(model, demos, critic_steps=0, target_entropy=value)
    assert model.target_entropy == -2.5
    td3 = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    prepare_finetuning(td3, demos, critic_steps=0, target_entropy="clone")  # no entropy to tune: nothing to do
    assert not hasattr(td3, "target_entropy")


def test_the_clones_entropy_is_read_without_touching_batch_norm(demos):
    from sb3_contrib import CrossQ

    model = CrossQ("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    pretrain(model, demos, n_epochs=1, finetune=False)
    model.actor.set_training_mode(True)  # as SB3 leaves it after train()
    before = {k: v.clone() for k, v in model.actor.state_dict().items()}
    prepare_finetuning(model, demos, critic_steps=0, actor_std=None)
    assert model.target_entropy != -1.0 and model.actor.training
    for key, value in model.actor.state_dict().items():  # running statistics and step counts included
        assert th.equal(value, before[key]), key
