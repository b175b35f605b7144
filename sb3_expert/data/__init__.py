"""The data layer: demonstrations, their formats and datasets. Imports no SB3 algorithm."""

from sb3_expert.data.dataset import ExpertDataset
from sb3_expert.data.demonstrations import Demonstrations, Transitions
from sb3_expert.data.hdf5 import HDF5Reader, HDF5Writer, load_hdf5, save_hdf5
from sb3_expert.data.io import load_demonstrations, save_demonstrations
from sb3_expert.data.loader import DataLoader
from sb3_expert.data.npz import load_npz, save_npz

__all__ = [
    "DataLoader",
    "Demonstrations",
    "ExpertDataset",
    "HDF5Reader",
    "HDF5Writer",
    "Transitions",
    "load_demonstrations",
    "load_hdf5",
    "load_npz",
    "save_demonstrations",
    "save_hdf5",
    "save_npz",
]
