import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger, make_output_format
from stable_baselines3.common.monitor import Monitor

from sb3_expert import (
    ArgumentTypeError,
    ArgumentValueError,
    Demonstrations,
    ExpertDataset,
    PretrainMixin,
    SpaceMismatchError,
    pretrain,
    save_demonstrations,
)
from tests.helpers import FIXTURES, expert_demos, zoo_expert_demos

SOURCES = [
    "controller",
    pytest.param("rl-zoo", marks=pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"needs the fixtures at {FIXTURES}")),
]


@pytest.fixture(scope="module")
def cartpole_demos():
    return expert_demos("CartPole-v1", 10)


@pytest.fixture(scope="module")
def pendulum_demos():
    return expert_demos("Pendulum-v1", 50)


def mean_return(model, env_id, n, seed=123):
    env = Monitor(gym.make(env_id))
    env.reset(seed=seed)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=n, deterministic=True)
    return mean


_DEMOS: dict = {}


def demos_from(source, env_id, n_episodes):
    """Expert demonstrations: a scripted controller's, or the rl-zoo fixture agent's (cached)."""
    key = (source, env_id, n_episodes)
    if key not in _DEMOS:
        make = zoo_expert_demos if source == "rl-zoo" else expert_demos
        _DEMOS[key] = make(env_id, n_episodes)
    return _DEMOS[key]


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("algo", [PPO, A2C, DQN])
def test_cartpole_clone_reaches_475(source, algo):
    demos = demos_from(source, "CartPole-v1", 10)
    assert demos.n_episodes == 10 and demos.episode_returns.mean() >= 475
    model = algo("MlpPolicy", "CartPole-v1", seed=0)
    assert pretrain(model, demos, n_epochs=20) is model
    assert mean_return(model, "CartPole-v1", 10) >= 475


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "algo, n_epochs, ensemble",
    [(SAC, 10, None), (TD3, 10, None), (DDPG, 10, None), (PPO, 30, None), (SAC, 30, 0), (PPO, 100, 0)],
    ids=["SAC", "TD3", "DDPG", "PPO", "SAC-plain", "PPO-plain"],
)
def test_pendulum_clone_reaches_minus_250(source, algo, n_epochs, ensemble):
    """The default call (an ensemble teacher) and plain cloning (``ensemble=0``), from 20 of the
    controller's episodes (every clone -133 to -139) or 50 of the rl-zoo expert's (from 20: SAC -304,
    DDPG -299). PPO's default call takes 30 rl-zoo episodes: its batches of 64 make the teacher the
    slowest step (60 s on 50 episodes; -139 on 30)."""
    n_episodes = 20 if source == "controller" else 30 if (algo, ensemble) == (PPO, None) else 50
    demos = demos_from(source, "Pendulum-v1", 50).first_episodes(n_episodes)
    model = algo("MlpPolicy", "Pendulum-v1", seed=0)
    pretrain(model, demos, n_epochs=n_epochs, finetune=False, ensemble=ensemble)
    assert mean_return(model, "Pendulum-v1", 20) >= -250


def test_targets_synced_then_learn(pendulum_demos, tmp_path):
    model = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, learning_starts=10, seed=0)
    before = [p.clone() for p in model.actor.parameters()]
    pretrain(model, pendulum_demos.first_episodes(5), n_epochs=2, finetune=False)
    assert any(not th.equal(a, b) for a, b in zip(before, model.actor.parameters()))
    for online, target in ((model.actor, model.actor_target), (model.critic, model.critic_target)):
        for p, q in zip(online.parameters(), target.parameters()):
            assert th.equal(p, q)
    model.learn(50)  # no crash
    dqn = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, learning_starts=10, seed=0)
    pretrain(dqn, expert_demos("CartPole-v1", 2), n_epochs=2)
    for p, q in zip(dqn.q_net.parameters(), dqn.q_net_target.parameters()):
        assert th.equal(p, q)
    dqn.learn(50)
    dqn.save(tmp_path / "dqn")
    DQN.load(tmp_path / "dqn")


def test_no_reinitialisation_and_repeatable(cartpole_demos):
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, seed=0)
    dataset = ExpertDataset(traj_data=cartpole_demos, verbose=0, seed=0, batch_size=256)
    obs = th.as_tensor(cartpole_demos.obs[:500])
    actions = th.as_tensor(cartpole_demos.actions[:500])

    def nll():
        with th.no_grad():
            return -model.policy.evaluate_actions(obs, actions)[1].mean().item()

    start = nll()
    pretrain(model, dataset, n_epochs=2)
    first = nll()
    pretrain(model, dataset, n_epochs=2)
    second = nll()
    assert start > first > second  # the second call continues from the first: no reset


class PretrainPPO(PretrainMixin, PPO):
    pass


def test_mixin_sb2_signature_and_load(cartpole_demos, tmp_path):
    model = PretrainPPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, seed=0)
    dataset = ExpertDataset(traj_data=cartpole_demos, verbose=0, seed=0)
    assert model.pretrain(dataset, 3, 1e-3, 1e-8, 1) is model
    model.save(tmp_path / "m")
    loaded = PretrainPPO.load(tmp_path / "m")
    obs = cartpole_demos.obs[:50]
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    loaded.pretrain(dataset, n_epochs=1)


def test_logs_through_the_model_logger(cartpole_demos, tmp_path):
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    model.set_logger(Logger(str(tmp_path), [make_output_format("csv", str(tmp_path))]))
    dataset = ExpertDataset(traj_data=cartpole_demos, verbose=0, seed=0)
    pretrain(model, dataset, n_epochs=4, val_interval=2)
    import csv

    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["pretrain/epoch"] for r in rows] == ["2", "4"]
    assert float(rows[1]["pretrain/val_loss"]) < float(rows[0]["pretrain/val_loss"])
    assert 0.5 < float(rows[1]["pretrain/val_accuracy"]) <= 1.0
    assert float(rows[1]["pretrain/train_loss"]) < float(rows[0]["pretrain/train_loss"])


def test_progress_bar_and_path_input(cartpole_demos, tmp_path):
    path = save_demonstrations(cartpole_demos.first_episodes(2), tmp_path / "d.h5")
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    pretrain(model, path, n_epochs=2, progress_bar=True)
    lazy = ExpertDataset(expert_path=path, in_memory=False, verbose=0, batch_size=32)
    pretrain(model, lazy, n_epochs=1)


def test_space_mismatch_raises_before_training(pendulum_demos):
    model = SAC("MlpPolicy", "MountainCarContinuous-v0", policy_kwargs={"net_arch": [8]}, seed=0)
    before = [p.clone() for p in model.policy.parameters()]
    with pytest.raises(
        SpaceMismatchError, match=r"observation_space: the demonstrations have Box.*\(3,\).*but the model"
    ):
        pretrain(model, pendulum_demos, n_epochs=1)
    assert all(th.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    ppo = PPO("MlpPolicy", "Acrobot-v1", policy_kwargs={"net_arch": [8]})
    with pytest.raises(SpaceMismatchError):
        pretrain(ppo, expert_demos("CartPole-v1", 1), n_epochs=1)


def test_bad_arguments(cartpole_demos):
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]})
    with pytest.raises(ValueError, match="n_epochs: expected an integer >= 1, got 0"):
        pretrain(model, cartpole_demos, n_epochs=0)
    with pytest.raises(ValueError, match="learning_rate"):
        pretrain(model, cartpole_demos, learning_rate=-1)
    with pytest.raises(TypeError, match="dataset: expected an ExpertDataset"):
        pretrain(model, [1, 2, 3])
    with pytest.raises(TypeError, match="model: expected an SB3 algorithm"):
        pretrain("PPO", cartpole_demos)
    with pytest.raises(TypeError, match="value_warm_start: only feed-forward actor-critic"):
        pretrain(DQN("MlpPolicy", "CartPole-v1"), cartpole_demos, value_warm_start=True)


def snapshot(model):
    """What pretrain may change: the policy's weights and structure, its kwargs, VecNormalize's statistics."""
    norm = model.get_vec_normalize_env()
    stats = None if norm is None else (norm.obs_rms.mean.copy(), float(norm.obs_rms.count))
    weights = {k: v.clone() for k, v in model.policy.state_dict().items()}
    return weights, repr(model.policy), dict(model.policy_kwargs), stats


def same(a, b):
    weights_a, *rest_a = a
    weights_b, *rest_b = b
    return (
        weights_a.keys() == weights_b.keys()
        and all(th.equal(weights_a[k], weights_b[k]) for k in weights_a)
        and (str(rest_a) == str(rest_b))
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"lr_decay": "cosine"}, "lr_decay: expected 'linear' or 'constant', got 'cosine'"),
        ({"vf_coef": -1}, "vf_coef: expected a finite number > 0, got -1"),
        ({"max_grad_norm": 0}, "max_grad_norm: expected None or a finite number > 0"),
        ({"learning_rate": float("inf")}, "learning_rate: expected a finite number > 0 or a schedule, got inf"),
        ({"adam_epsilon": float("inf")}, "adam_epsilon: expected a finite number > 0"),
        ({"seed": "0"}, "seed: expected None or an integer, got str '0'"),
        ({"verbose": "1"}, "verbose: expected None or an integer"),
        ({"normalize_obs": "no"}, "normalize_obs: expected True or False, got str 'no'"),
        ({"value_warm_start": 1}, "value_warm_start: expected True or False"),
        ({"batch_size": 0}, "batch_size: expected None or an integer >= 1"),
        ({"finetune": "yes"}, "finetune"),
        ({"value_warm_start": True, "model": "dqn"}, "value_warm_start"),
        ({"vec_normalize": True, "lr_decay": "step"}, "lr_decay"),
        ({"ensemble": 5}, "ensemble: no teacher can train here: actor-critic likelihood has no continuous"),
        ({"ensemble": -1}, "ensemble: expected None or an integer >= 0, got -1"),
        ({"ensemble": True}, "ensemble: expected None or an integer >= 0, got True"),
        ({"ensemble_noise": -0.1}, r"ensemble_noise: expected a finite number in \[0.0, inf\], got -0.1"),
        ({"ensemble_noise": float("nan")}, "ensemble_noise: expected a finite number"),
        ({"ensemble_noise": "0.1"}, "ensemble_noise: expected a number, got str"),
        ({"ensemble": 0, "ensemble_noise": 0.3}, r"ensemble_noise: given \(0.3\) with ensemble=0 \(no teacher\)"),
    ],
)
def test_a_refused_call_changes_nothing(cartpole_demos, kwargs, error):
    """Every argument is checked before the model is touched: no standardisation wrapped in, no
    VecNormalize statistics fitted, no weights moved."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    kwargs = dict(kwargs)
    env = make_vec_env("CartPole-v1", n_envs=1)
    if kwargs.pop("vec_normalize", False):
        env = VecNormalize(env, norm_reward=False)
    algo = DQN if kwargs.pop("model", "ppo") == "dqn" else PPO
    model = algo("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, seed=0)
    before = snapshot(model)
    with pytest.raises((ArgumentValueError, ArgumentTypeError), match=error):
        pretrain(model, cartpole_demos, n_epochs=1, **kwargs)
    assert same(snapshot(model), before)


def test_recurrent_ppo_clone_of_the_shipped_expert(tmp_path):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from sb3_expert import generate_expert_traj, load_demonstrations
    from sb3_expert.demo import load_demo_expert

    generate_expert_traj(load_demo_expert(), tmp_path / "demos.h5", gym.make("CartPole-v1"), n_episodes=10, seed=0)
    demos = load_demonstrations(tmp_path / "demos.h5")
    kwargs = {"lstm_hidden_size": 32, "net_arch": [32]}
    model = sb3_contrib.RecurrentPPO("MlpLstmPolicy", "CartPole-v1", policy_kwargs=kwargs, seed=0)
    pretrain(model, demos, n_epochs=40, seed=0)
    env = gym.make("CartPole-v1")
    returns = []
    for k in range(10):  # the clone acts with its LSTM state, reset at each episode's start
        obs, _ = env.reset(seed=100 + k)
        state, start, total, done = None, np.ones(1, bool), 0.0, False
        while not done:
            action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            start, total, done = np.zeros(1, bool), total + reward, terminated or truncated
        returns.append(total)
    assert np.mean(returns) >= 475


def test_recurrent_ppo_sequences_are_masked_and_need_episodes(cartpole_demos):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    model = sb3_contrib.RecurrentPPO("MlpLstmPolicy", "CartPole-v1", policy_kwargs={"lstm_hidden_size": 8}, seed=0)
    short = cartpole_demos.first_episodes(3)
    pretrain(model, short, n_epochs=1, batch_size=600)  # episodes of unequal length padded together
    fresh = sb3_contrib.RecurrentPPO("MlpLstmPolicy", "CartPole-v1", policy_kwargs={"lstm_hidden_size": 8}, seed=0)
    before = snapshot(fresh)
    with pytest.raises(TypeError, match="whole episodes"):
        pretrain(fresh, ExpertDataset(traj_data=short, split="transition", verbose=0), n_epochs=1)
    assert same(snapshot(fresh), before)  # refused before standardisation was wrapped in
    with pytest.raises(TypeError, match="value_warm_start"):
        pretrain(model, short, n_epochs=1, value_warm_start=True)


def test_crossq_and_a_users_sac_subclass_clone(pendulum_demos):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from stable_baselines3.sac.policies import SACPolicy

    class MySACPolicy(SACPolicy):  # dispatched by structure, not by its name
        pass

    kwargs = {"net_arch": {"pi": [64, 64], "qf": [64]}}
    crossq = sb3_contrib.CrossQ("MlpPolicy", "Pendulum-v1", policy_kwargs=kwargs, seed=0)
    # plain cloning: the teacher (8x the time here) is the same for every SAC-like actor, tested above
    pretrain(crossq, pendulum_demos, n_epochs=30, finetune=False, ensemble=0)
    assert mean_return(crossq, "Pendulum-v1", 10) >= -250
    mine = SAC(MySACPolicy, "Pendulum-v1", policy_kwargs={"net_arch": [32]}, seed=0)
    obs = pendulum_demos.obs[:400]
    before = np.abs(mine.predict(obs, deterministic=True)[0] - pendulum_demos.actions[:400]).mean()
    pretrain(mine, pendulum_demos.first_episodes(4), n_epochs=10, finetune=False)
    after = np.abs(mine.predict(obs, deterministic=True)[0] - pendulum_demos.actions[:400]).mean()
    assert after < before / 2


def test_a_policy_of_no_family_is_refused_with_the_families_named(cartpole_demos):
    from stable_baselines3.common.policies import BasePolicy

    from sb3_expert.bc.losses import LOSSES, loss_for

    class Odd(BasePolicy):
        def _predict(self, observation, deterministic=False):
            return th.zeros(len(observation), dtype=th.long)

    policy = Odd(cartpole_demos.observation_space, cartpole_demos.action_space)
    with pytest.raises(TypeError, match="ActorCriticPolicy.*LOSSES"):
        loss_for(policy)
    LOSSES[Odd] = lambda p: "registered"
    try:
        assert loss_for(policy) == "registered"
    finally:
        del LOSSES[Odd]


@pytest.mark.parametrize("name", ["TQC", "QRDQN", "TRPO", "ARS", "MaskablePPO"])
def test_sb3_contrib_families(cartpole_demos, pendulum_demos, name):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    continuous = name in ("TQC",)
    env_id, demos = ("Pendulum-v1", pendulum_demos) if continuous else ("CartPole-v1", cartpole_demos)
    kwargs = {"policy_kwargs": {"net_arch": [32]}}
    model = getattr(sb3_contrib, name)("MlpPolicy", env_id, seed=0, **kwargs)
    dataset = ExpertDataset(traj_data=demos.first_episodes(4), verbose=0, seed=0, batch_size=128)
    obs = demos.obs[:400]
    before = model.predict(obs, deterministic=True)[0]
    pretrain(model, dataset, n_epochs=10, learning_rate=3e-3, finetune=False)
    after = model.predict(obs, deterministic=True)[0]
    expert = demos.actions[:400]
    if name == "ARS":  # ARS's own weight vector follows, so learn() starts from the clone
        th.testing.assert_close(model.weights, th.nn.utils.parameters_to_vector(model.policy.parameters()))
    if continuous:
        assert (
            np.abs(after.reshape(expert.shape) - expert).mean() < np.abs(before.reshape(expert.shape) - expert).mean()
        )
    else:
        assert (after == expert).mean() > 0.8


def test_value_warm_start(cartpole_demos):
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [32]}, seed=0)
    obs = th.as_tensor(cartpole_demos.obs[:200])
    with th.no_grad():
        before = model.policy.predict_values(obs).mean().item()
    pretrain(model, cartpole_demos, n_epochs=10, value_warm_start=True, learning_rate=3e-3)
    with th.no_grad():
        after = model.policy.predict_values(obs).mean().item()
    assert abs(before) < 5 and after > 20  # discounted returns of 500-step episodes (gamma 0.99) near 100


class DictObsCartPole(gym.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)
        box = env.observation_space
        self.observation_space = spaces.Dict(
            {"position": spaces.Box(box.low[:2], box.high[:2]), "angle": spaces.Box(box.low[2:], box.high[2:])}
        )

    def observation(self, obs):
        return {"position": obs[:2], "angle": obs[2:]}


def test_dict_observations(cartpole_demos):
    space = DictObsCartPole(gym.make("CartPole-v1")).observation_space
    obs = {"position": cartpole_demos.obs[:, :2], "angle": cartpole_demos.obs[:, 2:]}
    demos = Demonstrations(obs, cartpole_demos.actions, cartpole_demos.rewards, cartpole_demos.episode_starts,
                           observation_space=space, action_space=cartpole_demos.action_space)  # fmt: skip
    model = PPO("MultiInputPolicy", DictObsCartPole(gym.make("CartPole-v1")), policy_kwargs={"net_arch": [32]}, seed=0)
    dataset = ExpertDataset(traj_data=demos, verbose=0, seed=0, batch_size=64)
    val = {k: th.as_tensor(v[dataset.val_indices]) for k, v in obs.items()}
    val_actions = th.as_tensor(demos.actions[dataset.val_indices])

    def val_loss():
        with th.no_grad():
            return -model.policy.evaluate_actions(val, val_actions)[1].mean().item()

    before = val_loss()
    pretrain(model, dataset, n_epochs=10)
    assert val_loss() < before
    predicted = model.predict({k: v.numpy() for k, v in val.items()}, deterministic=True)[0]
    assert (predicted == demos.actions[dataset.val_indices]).mean() > 0.85


class ImageCartPole(gym.ObservationWrapper):
    """CartPole seen as a tiny uint8 image: the state's four numbers drawn as bar heights."""

    observation_space = spaces.Box(0, 255, (36, 36, 1), np.uint8)

    def observation(self, obs):
        return encode_image(obs[None])[0]


def encode_image(states):
    scales = np.array([2.4, 2.0, 0.21, 2.0])
    levels = np.clip(((states / scales) + 1) * 18, 0, 35).astype(int)  # (N, 4) in [0, 35]
    images = np.zeros((len(states), 36, 36, 1), np.uint8)
    rows = np.arange(36)[None, :, None]
    for k in range(4):
        images[:, :, 9 * k : 9 * k + 9, 0] = np.where(rows[..., 0:1] < levels[:, k, None, None], 255, 0)
    return images


def test_image_observations(cartpole_demos):
    env = ImageCartPole(gym.make("CartPole-v1"))
    demos = Demonstrations(encode_image(cartpole_demos.obs), cartpole_demos.actions, cartpole_demos.rewards,
                           cartpole_demos.episode_starts, observation_space=env.observation_space,
                           action_space=cartpole_demos.action_space)  # fmt: skip
    model = PPO("CnnPolicy", env, policy_kwargs={"net_arch": [32], "features_extractor_kwargs": {"features_dim": 32}},
                seed=0)  # fmt: skip
    assert model.observation_space.shape == (1, 36, 36)  # SB3 transposed the images: pretrain follows
    dataset = ExpertDataset(traj_data=demos, verbose=0, seed=0, batch_size=64)
    val_obs = demos.obs[dataset.val_indices]
    before = (model.predict(val_obs, deterministic=True)[0] == demos.actions[dataset.val_indices]).mean()
    pretrain(model, dataset, n_epochs=5)
    after = (model.predict(val_obs, deterministic=True)[0] == demos.actions[dataset.val_indices]).mean()
    assert after > max(before, 0.8)


class MultiActionEnv(gym.Env):
    """A tiny env whose expert action is a function of the observation, for MultiDiscrete and
    MultiBinary action spaces."""

    observation_space = spaces.Box(-1, 1, (4,), np.float32)

    def __init__(self, action_space):
        self.action_space = action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def expert_action(obs, space):
    if isinstance(space, spaces.MultiDiscrete):
        return np.stack([(obs[:, 0] > 0) * 2, (obs[:, 1] > 0).astype(int)], axis=1).astype(space.dtype)
    return (obs[:, :3] > 0).astype(space.dtype)


@pytest.mark.parametrize("space", [spaces.MultiDiscrete([3, 2]), spaces.MultiBinary(3)], ids=str)
def test_multidiscrete_and_multibinary(space):
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (2000, 4)).astype(np.float32)
    starts = np.zeros(2000, bool)
    starts[::100] = True
    demos = Demonstrations(obs, expert_action(obs, space), np.zeros(2000), starts,
                           observation_space=MultiActionEnv.observation_space, action_space=space)  # fmt: skip
    model = PPO("MlpPolicy", MultiActionEnv(space), policy_kwargs={"net_arch": [32]}, seed=0)
    pretrain(model, demos, n_epochs=10, learning_rate=3e-3)
    test_obs = rng.uniform(-1, 1, (500, 4)).astype(np.float32)
    predicted = model.predict(test_obs, deterministic=True)[0]
    assert (predicted == expert_action(test_obs, space)).all(axis=1).mean() > 0.9


def test_gsde_policy(pendulum_demos):
    model = PPO("MlpPolicy", "Pendulum-v1", use_sde=True, policy_kwargs={"net_arch": [32]}, seed=0)
    obs, expert = pendulum_demos.obs[-2000:], pendulum_demos.actions[-2000:]  # held-out episodes

    def error():
        return np.abs(np.clip(model.predict(obs, deterministic=True)[0], -2, 2) - expert).mean()

    before = error()
    pretrain(model, pendulum_demos.first_episodes(20), n_epochs=20)  # 10 episodes: too few steps
    assert error() < 0.75 * before
    model.learn(64)


def test_vecnormalize_statistics_fitted_then_used(pendulum_demos):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    venv = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]))
    model = SAC("MlpPolicy", venv, policy_kwargs={"net_arch": [32]}, seed=0)
    pretrain(model, pendulum_demos.first_episodes(20), n_epochs=10, learning_rate=3e-3, finetune=False)
    np.testing.assert_allclose(
        venv.obs_rms.mean, pendulum_demos.first_episodes(20).obs.mean(axis=0), rtol=1e-4, atol=1e-4
    )
    # the clone acts on normalised observations: predict through the same statistics
    obs = pendulum_demos.obs[-2000:]
    actions = model.predict(venv.normalize_obs(obs), deterministic=True)[0]
    assert np.abs(actions - pendulum_demos.actions[-2000:]).mean() < 0.2


def test_arguments_checked_before_the_model_changes(cartpole_demos):
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    before = [p.clone() for p in model.policy.parameters()]
    for kwargs, message in [
        ({"learning_rate": "abc"}, "learning_rate: expected a finite number > 0 or a schedule, got 'abc'"),
        ({"adam_epsilon": -1}, "adam_epsilon: expected a finite number > 0, got -1"),
        ({"lr_decay": "cosine"}, "lr_decay: expected 'linear' or 'constant', got 'cosine'"),
        ({"max_grad_norm": 0}, "max_grad_norm: expected None or a finite number > 0, got 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            pretrain(model, cartpole_demos, n_epochs=1, **kwargs)
    assert "features_extractor_class" not in model.policy_kwargs  # not standardised either
    assert all(th.equal(a, b) for a, b in zip(before, model.policy.parameters()))
