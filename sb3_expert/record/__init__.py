"""Producing demonstrations: from any controller, a VecEnv, a training run, or an expert."""

from sb3_expert.errors import ActionError
from sb3_expert.record.callback import RecordExpert
from sb3_expert.record.generate import generate_expert_traj
from sb3_expert.record.vec import VecRecordDemonstrations
from sb3_expert.record.wrapper import RecordDemonstrations

__all__ = ["ActionError", "RecordDemonstrations", "RecordExpert", "VecRecordDemonstrations", "generate_expert_traj"]
