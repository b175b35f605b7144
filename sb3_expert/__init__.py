"""sb3-expert: expert demonstrations for Stable-Baselines3.

Record demonstrations from any controller, store them (stable-baselines v2 ``.npz`` or HDF5),
load pre-trained experts, and pretrain any SB3 algorithm on them with behaviour cloning.
"""

from importlib.metadata import PackageNotFoundError, version

from sb3_expert.bc import (
    DAgger,
    DemoReplayBuffer,
    DictDemoReplayBuffer,
    ExponentialBetaSchedule,
    LinearBetaSchedule,
    PretrainMixin,
    dagger,
    fill_replay_buffer,
    prepare_finetuning,
    pretrain,
)
from sb3_expert.data import (
    DataLoader,
    Demonstrations,
    ExpertDataset,
    HDF5Reader,
    HDF5Writer,
    Transitions,
    load_demonstrations,
    save_demonstrations,
)
from sb3_expert.errors import (
    ActionError,
    ArgumentTypeError,
    ArgumentValueError,
    DemonstrationError,
    DemonstrationFileError,
    DemonstrationFileNotFoundError,
    EmptyDatasetError,
    ExpertLoaderError,
    IndexOutOfRangeError,
    OutputExistsError,
    OutputLockedError,
    SpaceMismatchError,
    UnsafeModelError,
    UnsupportedFormatVersionError,
    UnsupportedSpaceError,
    WriteFailedError,
)
from sb3_expert.experts import (
    load_from_hub_model,
    load_model,
    load_policy,
    policy_registry,
    save_expert,
)
from sb3_expert.record import (
    RecordDemonstrations,
    RecordExpert,
    VecRecordDemonstrations,
    generate_expert_traj,
)

try:
    __version__ = version("sb3-expert")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    # data
    "DataLoader",
    "Demonstrations",
    "ExpertDataset",
    "HDF5Reader",
    "HDF5Writer",
    "Transitions",
    "load_demonstrations",
    "save_demonstrations",
    # recording
    "RecordDemonstrations",
    "RecordExpert",
    "VecRecordDemonstrations",
    "generate_expert_traj",
    # experts
    "load_from_hub_model",
    "load_model",
    "load_policy",
    "policy_registry",
    "save_expert",
    # behaviour cloning and DAgger
    "DAgger",
    "DemoReplayBuffer",
    "DictDemoReplayBuffer",
    "ExponentialBetaSchedule",
    "LinearBetaSchedule",
    "PretrainMixin",
    "dagger",
    "fill_replay_buffer",
    "prepare_finetuning",
    "pretrain",
    # errors
    "ActionError",
    "ArgumentTypeError",
    "ArgumentValueError",
    "DemonstrationError",
    "DemonstrationFileError",
    "DemonstrationFileNotFoundError",
    "EmptyDatasetError",
    "ExpertLoaderError",
    "IndexOutOfRangeError",
    "OutputExistsError",
    "OutputLockedError",
    "SpaceMismatchError",
    "UnsafeModelError",
    "UnsupportedFormatVersionError",
    "UnsupportedSpaceError",
    "WriteFailedError",
]
