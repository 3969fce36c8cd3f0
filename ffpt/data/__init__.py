"""Data stage: frame containers, readers, neighbour graphs, batching and splits."""

from ffpt.data.frames import FrameSet, atomic_write
from ffpt.data.graph import Batch, GraphSet, atoms_to_batch, neighbor_graph
from ffpt.data.readers import read_frames, read_many, split_indices

__all__ = [
    "Batch",
    "FrameSet",
    "GraphSet",
    "atomic_write",
    "atoms_to_batch",
    "neighbor_graph",
    "read_frames",
    "read_many",
    "split_indices",
]
