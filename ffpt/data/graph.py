"""Neighbour graphs (vesin, O(N)) and batching of frames into one disjoint graph.

Edge convention used everywhere in ffpt (model, training, deploy, LAMMPS):
full neighbour list (each pair in both directions), ``edge_index[0] = i`` (centre),
``edge_index[1] = j`` (neighbour) and ``edge_vec = pos[j] - pos[i] + shift`` where
``shift`` is the Cartesian lattice translation of the image of ``j``.
Cells smaller than twice the cutoff give several edges to images of the same atom.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from vesin import NeighborList


def neighbor_graph(
    positions: np.ndarray,
    cell: np.ndarray | None,
    pbc: np.ndarray | bool | None,
    cutoff: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Edges within ``cutoff`` (Angstrom): ``(edge_index [2,E] int64, shifts [E,3] Cartesian)``."""
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    if pbc is None:
        pbc = False
    pbc_arr = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if not pbc_arr.any() or cell is None:
        box = np.zeros((3, 3))
        pbc_arr = np.zeros(3, dtype=bool)
    else:
        box = np.asarray(cell, dtype=np.float64).reshape(3, 3)
        if abs(np.linalg.det(box)) < 1e-8:
            raise ValueError("periodic frame has a singular cell; set a valid cell or pbc=False")
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, s = nl.compute(positions, box, [bool(p) for p in pbc_arr], quantities="ijS")
    edge_index = np.stack([i, j]).astype(np.int64)
    shifts = s.astype(np.float64) @ box
    return edge_index, shifts


@dataclass
class Batch:
    """Several frames as one disjoint graph (tensors; labels optional)."""

    species: torch.Tensor  # [N] int64, index into the model's element list
    pos: torch.Tensor  # [N, 3]
    edge_index: torch.Tensor  # [2, E]
    edge_shift: torch.Tensor  # [E, 3]
    batch: torch.Tensor  # [N] frame index of each atom
    n_atoms: torch.Tensor  # [G]
    cell: torch.Tensor  # [G, 3, 3] (zeros for non-periodic)
    energy: torch.Tensor | None = None  # [G]
    forces: torch.Tensor | None = None  # [N, 3]

    @property
    def num_graphs(self) -> int:
        return int(self.n_atoms.shape[0])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        out = {}
        for f in fields(self):
            t = getattr(self, f.name)
            if t is not None:
                # reference energies stay float64: totals of ~1e4 eV lose meV in float32
                if t.is_floating_point() and dtype is not None and f.name != "energy":
                    t = t.to(dtype=dtype)
                if device is not None:
                    t = t.to(device)
            out[f.name] = t
        return Batch(**out)


class GraphSet:
    """A FrameSet with precomputed neighbour graphs, batched without per-atom Python loops."""

    def __init__(self, frames, elements: list[str], cutoff: float, progress: bool = False):
        from ase.data import chemical_symbols

        self.frames = frames
        self.elements = list(elements)
        self.cutoff = float(cutoff)
        z_to_index = np.full(119, -1, dtype=np.int64)
        for k, sym in enumerate(self.elements):
            z_to_index[chemical_symbols.index(sym)] = k
        species = z_to_index[frames.numbers]
        if np.any(species < 0):
            bad = int(np.argmax(species < 0))
            sym = chemical_symbols[frames.numbers[bad]]
            raise ValueError(
                f"frame {frames.frame_of_atom(bad)}: element {sym} is not in the model's "
                f"elements {self.elements}; train a model that includes {sym}"
            )
        self.species = species
        self.atom_ptr = frames.offsets
        edges, shifts, counts = [], [], []
        it = range(frames.n_frames)
        if progress and frames.n_frames > 2000:
            from tqdm import tqdm

            it = tqdm(it, desc="neighbour lists", unit="frame", mininterval=1.0)
        for f in it:
            s = frames.frame_slice(f)
            cell = frames.cell[f] if frames.cell is not None else None
            pbc = frames.pbc[f] if frames.pbc is not None else False
            ei, sh = neighbor_graph(frames.positions[s], cell, pbc, self.cutoff)
            edges.append(ei)
            shifts.append(sh)
            counts.append(ei.shape[1])
        self.edge_index = np.concatenate(edges, axis=1) if edges else np.zeros((2, 0), np.int64)
        self.edge_shift = np.concatenate(shifts) if shifts else np.zeros((0, 3))
        self.edge_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self) -> int:
        return self.frames.n_frames

    def batch(self, indices: np.ndarray | list[int]) -> Batch:
        """Collate frames ``indices`` into one Batch (vectorised gather)."""
        idx = np.asarray(indices, dtype=np.int64)
        fr = self.frames
        n_at = fr.n_atoms[idx]
        a0 = self.atom_ptr[idx]
        atom_idx = _ranges(a0, n_at)
        e0, e1 = self.edge_ptr[idx], self.edge_ptr[idx + 1]
        n_ed = e1 - e0
        edge_idx = _ranges(e0, n_ed)
        new_start = np.concatenate([[0], np.cumsum(n_at)[:-1]])
        # local edge indices are per frame; add the frame's new atom offset
        offset = np.repeat(new_start, n_ed)
        edge_index = self.edge_index[:, edge_idx] + offset[None, :]
        cell = fr.cell[idx] if fr.cell is not None else np.zeros((len(idx), 3, 3))
        return Batch(
            species=torch.from_numpy(self.species[atom_idx]),
            pos=torch.from_numpy(fr.positions[atom_idx]),
            edge_index=torch.from_numpy(edge_index),
            edge_shift=torch.from_numpy(self.edge_shift[edge_idx]),
            batch=torch.from_numpy(np.repeat(np.arange(len(idx)), n_at)),
            n_atoms=torch.from_numpy(n_at.copy()),
            cell=torch.from_numpy(np.ascontiguousarray(cell)),
            energy=torch.from_numpy(fr.energy[idx]) if fr.energy is not None else None,
            forces=torch.from_numpy(fr.forces[atom_idx]) if fr.forces is not None else None,
        )


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s+l)`` for each pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    rep_starts = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + rep_starts


def atoms_to_batch(atoms, elements: list[str], cutoff: float) -> Batch:
    """One ``ase.Atoms`` as a Batch (used by the ASE calculator)."""
    from ffpt.data.frames import FrameSet

    fs = FrameSet.from_atoms([atoms], energy_key=None, forces_key=None)
    return GraphSet(fs, elements, cutoff).batch([0])
