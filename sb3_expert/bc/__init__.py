"""Learning from demonstrations and experts: behaviour cloning into any SB3 model, DAgger,
replay buffers that keep demonstrations, and fine-tuning preparation."""

from sb3_expert.bc.dagger import DAgger, ExponentialBetaSchedule, LinearBetaSchedule, dagger
from sb3_expert.bc.finetune import ActorHook, prepare_finetuning
from sb3_expert.bc.losses import LOSSES, BCLoss, loss_for
from sb3_expert.bc.pretrain import PretrainMixin, pretrain
from sb3_expert.bc.replay import DemoReplayBuffer, DictDemoReplayBuffer, fill_replay_buffer

__all__ = [
    "LOSSES",
    "ActorHook",
    "BCLoss",
    "DAgger",
    "DemoReplayBuffer",
    "DictDemoReplayBuffer",
    "ExponentialBetaSchedule",
    "LinearBetaSchedule",
    "PretrainMixin",
    "dagger",
    "fill_replay_buffer",
    "loss_for",
    "prepare_finetuning",
    "pretrain",
]
