"""Learning from demonstrations and experts: behaviour cloning into any SB3 model, DAgger, and
replay-buffer filling."""

from sb3_expert.bc.dagger import DAgger, ExponentialBetaSchedule, LinearBetaSchedule, dagger
from sb3_expert.bc.losses import LOSSES, BCLoss, loss_for
from sb3_expert.bc.pretrain import PretrainMixin, pretrain
from sb3_expert.bc.replay import fill_replay_buffer

__all__ = [
    "LOSSES",
    "BCLoss",
    "DAgger",
    "ExponentialBetaSchedule",
    "LinearBetaSchedule",
    "PretrainMixin",
    "dagger",
    "fill_replay_buffer",
    "loss_for",
    "pretrain",
]
