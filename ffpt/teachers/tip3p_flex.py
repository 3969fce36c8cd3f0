"""Flexible TIP3P water monomer (intramolecular terms only).

Parameters: CHARMM flexible TIP3P, as distributed in CHARMM's ``toppar_water_ions.str``
(CHARMM22 force field, MacKerell et al., J. Phys. Chem. B 102, 3586 (1998); flexible
TIP3P as used by Neria, Fischer & Karplus, J. Chem. Phys. 105, 1902 (1996)):

* bond  OT-HT : K_b = 450.0 kcal/mol/A^2, b0 = 0.9572 A
* angle HT-OT-HT : K_theta = 55.0 kcal/mol/rad^2, theta0 = 104.52 deg

Energy convention (CHARMM, **no factor 1/2**)::

    E = K_b (r1 - b0)^2 + K_b (r2 - b0)^2 + K_theta (theta - theta0)^2

so the harmonic force constants in the k/2 convention are 2 K_b and 2 K_theta.
No Urey-Bradley H-H term (CHARMM's HT-HT entry only serves SHAKE) and, for an isolated
monomer, no intramolecular Coulomb/LJ. Atom order: O, H, H. Minimum energy 0 eV at
(b0, b0, theta0).
"""

from __future__ import annotations

import numpy as np
from ase import units

from ffpt.teachers import terms
from ffpt.teachers.base import Teacher

KCAL_MOL = units.kcal / units.mol  # eV per kcal/mol
KB = 450.0 * KCAL_MOL  # eV/A^2, E = KB (r - R0)^2
R0 = 0.9572  # A
KTHETA = 55.0 * KCAL_MOL  # eV/rad^2, E = KTHETA (theta - THETA0)^2
THETA0 = np.deg2rad(104.52)


class TIP3PFlex(Teacher):
    """CHARMM flexible TIP3P water monomer (O, H, H); see module docstring."""

    name = "tip3p-flex"

    def __init__(self, species: str | None = None) -> None:
        if species not in (None, "H2O", "water", "OH2"):
            raise ValueError(f"tip3p-flex describes water only (species H2O), not '{species}'")
        self.numbers = np.array([8, 1, 1])
        half = THETA0 / 2
        self.initial_positions = np.array(
            [
                [0.0, 0.0, 0.0],
                [R0 * np.sin(half), 0.0, R0 * np.cos(half)],
                [-R0 * np.sin(half), 0.0, R0 * np.cos(half)],
            ]
        )
        self._relaxed = self.initial_positions.copy()  # exact minimum by construction

    def describe(self) -> dict:
        return {
            **super().describe(),
            "params": {
                "K_b_kcal_mol_A2": 450.0,
                "b0_A": R0,
                "K_theta_kcal_mol_rad2": 55.0,
                "theta0_deg": 104.52,
                "convention": "E = K (x - x0)^2 (CHARMM)",
            },
        }

    def label(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.check_positions(positions)
        grad = np.zeros_like(x)
        energy = np.zeros(len(x))
        for h in (1, 2):
            r, u = terms.bond(x, 0, h)
            energy += KB * (r - R0) ** 2
            dE = 2 * KB * (r - R0)
            grad[:, h] += dE[:, None] * u
            grad[:, 0] -= dE[:, None] * u
        theta, parts = terms.angle(x, 1, 0, 2)
        energy += KTHETA * (theta - THETA0) ** 2
        terms.scatter(grad, (1, 0, 2), parts, 2 * KTHETA * (theta - THETA0))
        return energy, -grad
