"""Getting an expert: ``load_policy`` / ``policy_registry`` (``imitation``'s interface) for every SB3
algorithm, from files, rl-zoo runs and the Hugging Face Hub."""

from sb3_expert.experts.huggingface import load_from_hub_model, save_expert
from sb3_expert.experts.registry import ExpertLoaderError, PolicyLoaderFn, Registry, load_policy, policy_registry
from sb3_expert.experts.sb3 import ExpertModel, NormalizedPolicy, load_model, load_vec_normalize

__all__ = [
    "ExpertLoaderError",
    "ExpertModel",
    "NormalizedPolicy",
    "PolicyLoaderFn",
    "Registry",
    "load_from_hub_model",
    "load_model",
    "load_policy",
    "load_vec_normalize",
    "policy_registry",
    "save_expert",
]
