"""MD analysis: radial distribution function, water stability check (LAMMPS dump/log readers
live in :mod:`ffpt.lammps.io`; re-exported here).

Stability criterion (:data:`CRITERION`): a frame is *broken* when two atoms come closer
than ``min_distance`` (0.7 A: atoms crashing together; a water O-H bond is 0.96 A, the
closest H...H about 1.5 A), or two oxygens closer than ``min_oo`` (2.0 A; liquid water has
none below about 2.4 A), or a hydrogen has no oxygen within ``max_oh`` (1.6 A: a water
molecule fell apart), or positions are not finite. A run *fails* at the first broken frame,
or at its last completed step if it stopped early (a LAMMPS error such as lost atoms, or
the temperature passing 10x its target: energy blow-up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ffpt.lammps.io import DumpFrame, read_lammps_dump, read_thermo

__all__ = ["CRITERION", "DumpFrame", "Stability", "check_stability", "frame_broken", "rdf",
           "read_lammps_dump", "read_thermo"]

CRITERION = (
    "first frame with an interatomic distance < {min_distance} A, an O-O distance < {min_oo} A, "
    "an H atom with no O "
    "within {max_oh} A, or non-finite positions; or the last completed step if MD stopped early "
    "(LAMMPS error, or temperature above 10x the target: energy blow-up)"
)


def _mic_distances(pos: np.ndarray, cell: np.ndarray) -> np.ndarray:
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
        d = _mic_distances(pos, cell)[np.ix_(ia, ib)]
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


@dataclass
class Stability:
    """Outcome of :func:`check_stability`."""

    steps_requested: int
    steps_completed: int
    failed: bool
    failure_step: int | None
    reason: str
    min_distance: float  # over all frames analysed, Angstrom


def frame_broken(z: np.ndarray, pos: np.ndarray, cell: np.ndarray,
                 min_distance: float = 0.7, max_oh: float = 1.6,
                 min_oo: float = 2.0) -> str | None:
    """Why this periodic water frame breaks the stability criterion, or ``None`` (the
    criteria live in :func:`ffpt.analysis.stability.water_broken`)."""
    from ffpt.analysis.stability import water_broken

    return water_broken(z, pos, np.asarray(cell), (True, True, True), min_distance, max_oh,
                        min_oo)


def check_stability(
    frames: list[DumpFrame], type_numbers: np.ndarray, steps_requested: int,
    steps_completed: int | None = None, min_distance: float = 0.7, max_oh: float = 1.6,
    min_oo: float = 2.0, stop_reason: str = "MD stopped early (see the LAMMPS log)",
) -> Stability:
    """Apply the stability criterion (module docstring) to a run's dump frames."""
    z_of_type = np.asarray(type_numbers)
    dmin = np.inf
    last = frames[-1].step if frames else 0
    completed = last if steps_completed is None else steps_completed
    for fr in frames:
        z = z_of_type[fr.types - 1]
        why = frame_broken(z, fr.positions, fr.cell, min_distance, max_oh, min_oo)
        if np.all(np.isfinite(fr.positions)):
            d = _mic_distances(fr.positions, fr.cell)
            np.fill_diagonal(d, np.inf)
            dmin = min(dmin, float(d.min()))
        if why is not None:
            return Stability(steps_requested, completed, True, fr.step, why, dmin)
    if completed < steps_requested:
        return Stability(steps_requested, completed, True, completed, stop_reason, dmin)
    return Stability(steps_requested, completed, False, None, "stable", dmin)
