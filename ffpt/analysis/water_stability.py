"""Stability of a liquid-water MD run (the demo's LAMMPS runs) from its dump frames.

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

from ffpt.analysis.rdf import mic_distances
from ffpt.lammps.io import DumpFrame

CRITERION = (
    "first frame with an interatomic distance < {min_distance} A, an O-O distance < {min_oo} A, "
    "an H atom with no O "
    "within {max_oh} A, or non-finite positions; or the last completed step if MD stopped early "
    "(LAMMPS error, or temperature above 10x the target: energy blow-up)"
)


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
            d = mic_distances(fr.positions, fr.cell)
            np.fill_diagonal(d, np.inf)
            dmin = min(dmin, float(d.min()))
        if why is not None:
            return Stability(steps_requested, completed, True, fr.step, why, dmin)
    if completed < steps_requested:
        return Stability(steps_requested, completed, True, completed, stop_reason, dmin)
    return Stability(steps_requested, completed, False, None, "stable", dmin)
