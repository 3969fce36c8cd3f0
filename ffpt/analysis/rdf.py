"""Radial distribution functions g_ab(r) of periodic frames (ASE atoms or LAMMPS dump
frames, :mod:`ffpt.lammps.io`), minimum-image distances in any cell."""

from __future__ import annotations

import numpy as np

from ffpt.lammps.io import DumpFrame


def mic_distances(pos: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """All pair distance vectors under the minimum-image convention (general cell)."""
    from ase.geometry import find_mic

    d = pos[None, :, :] - pos[:, None, :]
    vec, _ = find_mic(d.reshape(-1, 3), cell, pbc=True)
    return np.linalg.norm(vec, axis=1).reshape(len(pos), len(pos))


def rdf(
    frames: list, numbers_or_types: np.ndarray | None = None, a: int = 8, b: int = 8,
    r_max: float | None = None, n_bins: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Partial radial distribution function g_ab(r) averaged over frames.

    ``frames``: ``ase.Atoms`` (``a``/``b`` are atomic numbers) or :class:`DumpFrame` (pass
    ``numbers_or_types`` mapping LAMMPS types to atomic numbers, index 0 = type 1).
    ``r_max`` defaults to half the shortest cell height. Returns (r bin centres, g)."""
    hist = None
    n_used = 0
    for fr in frames:
        if isinstance(fr, DumpFrame):
            if numbers_or_types is None:
                raise ValueError("pass numbers_or_types (atomic number of each LAMMPS type)")
            z = np.asarray(numbers_or_types)[fr.types - 1]
            pos, cell = fr.positions, fr.cell
        else:
            z, pos, cell = fr.numbers, fr.positions, np.asarray(fr.cell[:])
        vol = abs(np.linalg.det(cell))
        heights = vol / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
        rm = r_max if r_max is not None else 0.5 * heights.min()
        if hist is None:
            edges = np.linspace(0.0, rm, n_bins + 1)
            hist = np.zeros(n_bins)
        ia, ib = np.flatnonzero(z == a), np.flatnonzero(z == b)
        if len(ia) == 0 or len(ib) == 0:
            raise ValueError(f"no atoms with atomic number {a} or {b} in the frames")
        d = mic_distances(pos, cell)[np.ix_(ia, ib)]
        if a == b:
            d = d[~np.eye(len(ia), dtype=bool)]
        counts, _ = np.histogram(d.ravel(), bins=edges)
        shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
        pairs = len(ia) * (len(ib) - 1 if a == b else len(ib))
        hist += counts / (shell * pairs / vol)
        n_used += 1
    if not n_used:
        raise ValueError("rdf needs at least one frame")
    return 0.5 * (edges[1:] + edges[:-1]), hist / n_used
