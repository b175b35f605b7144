"""The native HDF5 format (through h5py): an append-only writer and a lazy reader.

:mod:`~sb3_expert.data.hdf5.layout` describes the file and its crash safety;
:mod:`~sb3_expert.data.hdf5.writer` and :mod:`~sb3_expert.data.hdf5.reader` write and read it.
"""

from sb3_expert.data.hdf5.layout import FORMAT_NAME, FORMAT_VERSION
from sb3_expert.data.hdf5.reader import HDF5Reader, load_hdf5, save_hdf5
from sb3_expert.data.hdf5.writer import HDF5Writer

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "HDF5Reader", "HDF5Writer", "load_hdf5", "save_hdf5"]
