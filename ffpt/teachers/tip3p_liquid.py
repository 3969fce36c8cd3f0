"""Full flexible TIP3P for n water molecules: isolated clusters and periodic boxes.

E = sum over molecules of the ``tip3p-flex`` intramolecular energy (CHARMM bonds/angle)
  + Coulomb between atoms of different molecules (q_O = -0.834 e, q_H = +0.417 e)
  + Lennard-Jones between oxygens of different molecules (eps = 0.1521 kcal/mol,
    sigma = 3.1507 A); no intramolecular non-bonded terms (LAMMPS ``special_bonds 0 0 0``).

* cluster (``periodic=False``): plain Coulomb and LJ over all intermolecular pairs, no cutoff;
* periodic box (``periodic=True``, cubic at ``density`` or an explicit ``cell``): Ewald
  Coulomb (:class:`ffpt.teachers.pairs.Ewald`, real space and LJ cut at ``cutoff``, LJ
  shifted to 0 there, no tail correction: LAMMPS ``lj/cut/coul/long`` + ``pair_modify shift
  yes``); intramolecular vectors by minimum image, so wrapped molecules are fine.

Atom order O, H, H per molecule. PT frames are rattled around ``references`` structures:
random non-overlapping placements (:func:`ffpt.sampling.water.water_cluster` /
:func:`~ffpt.sampling.water.water_box`, seeds ``(seed, k)``) relaxed with this teacher, or
given geometries (e.g. frames of :func:`ffpt.sampling.liquid.sample_liquid_water`).
"""

from __future__ import annotations

import numpy as np

from ffpt.teachers.base import Teacher
from ffpt.teachers.pairs import Ewald, cluster_energy_forces
from ffpt.teachers.tip3p_flex import KCAL_MOL, TIP3PFlex

Q_O, Q_H = -0.834, 0.417  # e
EPS_OO = 0.1521 * KCAL_MOL  # eV
SIGMA_OO = 3.1507  # A


class TIP3PFlexLiquid(Teacher):
    """Flexible TIP3P for ``n_molecules`` waters, cluster or periodic; see module docstring."""

    name = "tip3p-flex-liquid"
    relax_fmax = 1e-4  # eV/A; minima of clusters/boxes only seed the rattling

    def __init__(
        self, n_molecules: int = 4, periodic: bool = False, density: float = 0.997,
        cell=None, cutoff: float = 8.0, ewald_accuracy: float = 1e-8,
        references: int | np.ndarray = 8, seed: int = 0,
    ) -> None:  # fmt: skip
        if int(n_molecules) < 1:
            raise ValueError(f"n_molecules must be >= 1, got {n_molecules}")
        m = self.n_molecules = int(n_molecules)
        self.numbers = np.tile([8, 1, 1], m)
        self.density, self.seed = float(density), int(seed)
        self.charges = np.tile([Q_O, Q_H, Q_H], m)
        mol = np.arange(3 * m) // 3
        self._exclude = mol[:, None] == mol[None, :]
        self._mono = TIP3PFlex()
        self.ewald: Ewald | None = None
        if cell is not None or periodic:
            if cell is None:
                from ffpt.sampling.water import volume_per_molecule

                cell = np.eye(3) * (m * volume_per_molecule(density)) ** (1 / 3)
            self.cell = np.array(cell, dtype=float).reshape(3, 3)
            if not cutoff > 0 or not 0 < ewald_accuracy < 1:
                raise ValueError(
                    f"need cutoff > 0 A and 0 < ewald_accuracy < 1, got {cutoff}, {ewald_accuracy}"
                )
            self.ewald = Ewald(self.cell, self.charges, self._exclude, np.arange(0, 3 * m, 3),
                               EPS_OO, SIGMA_OO, cutoff, ewald_accuracy)  # fmt: skip
        kind = "box" if self.cell is not None else "cluster"
        self.species = f"(H2O){m} {kind}" if m > 1 or self.cell is not None else "H2O"
        self._given_refs = None
        if isinstance(references, (int, np.integer)):
            if references < 1:
                raise ValueError(f"references must be >= 1, got {references}")
            self.n_references = int(references)
        else:
            refs = np.asarray(references, dtype=float)
            if refs.ndim == 2:
                refs = refs[None]
            if refs.ndim != 3 or refs.shape[1:] != (3 * m, 3):
                raise ValueError(
                    f"references must have shape (K, {3 * m}, 3) (O, H, H per molecule), "
                    f"got {refs.shape}"
                )
            self._given_refs, self.n_references = refs, len(refs)
        self.initial_positions = self._start(0)

    def _start(self, k: int) -> np.ndarray:
        """Random non-overlapping placement number ``k`` (seeds (seed, k))."""
        from ffpt.sampling.water import water_box, water_cluster

        s = int(np.random.SeedSequence([self.seed, k]).generate_state(1)[0])
        if self.cell is None:
            return water_cluster(self.n_molecules, self.density, s).positions
        box = water_box(self.n_molecules, self.density, s)
        return box.cell.scaled_positions(box.positions) @ self.cell

    @property
    def reference_positions(self) -> np.ndarray:
        """(K, N, 3): the given references, or K relaxed random placements (cached)."""
        if self._given_refs is not None:
            return self._given_refs.copy()
        if getattr(self, "_refs", None) is None:
            rest = [self.relax(self._start(k), fmax=self.relax_fmax)
                    for k in range(1, self.n_references)]  # fmt: skip
            self._refs = np.stack([self.relaxed_positions, *rest])
        return self._refs.copy()

    def describe(self) -> dict:
        info = {
            **super().describe(),
            "species": self.species,
            "n_molecules": self.n_molecules,
            "periodic": self.cell is not None,
            "n_references": self.n_references,
            "references": "given" if self._given_refs is not None else
                          f"random placements relaxed to {self.relax_fmax} eV/A, seed {self.seed}",
            "params": {**self._mono.describe()["params"], "q_O_e": Q_O, "q_H_e": Q_H,
                       "lj_eps_kcal_mol": 0.1521, "lj_sigma_A": SIGMA_OO,
                       "nonbonded": "intermolecular only"},
        }  # fmt: skip
        if self.ewald is not None:
            info["cell_A"] = self.cell.round(10).tolist()
            info["params"].update(self.ewald.describe())
        else:
            info["params"]["coulomb"] = "plain, no cutoff"
        return info

    def label(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.check_positions(positions)
        f_, m = len(x), self.n_molecules
        mol = x.reshape(f_, m, 3, 3)
        if self.cell is not None:  # make molecules whole (minimum-image O-H vectors)
            d = mol[:, :, 1:] - mol[:, :, :1]
            s = d @ np.linalg.inv(self.cell)
            mol = np.concatenate([mol[:, :, :1], mol[:, :, :1] + (s - np.round(s)) @ self.cell], 2)
        e_mono, f_mono = self._mono.label(mol.reshape(f_ * m, 3, 3))
        energy = e_mono.reshape(f_, m).sum(axis=1)
        forces = f_mono.reshape(f_, 3 * m, 3)
        if self.ewald is not None:
            e, f = self.ewald.energy_forces(x)
        elif m > 1:
            e, f = cluster_energy_forces(x, self.charges, self._exclude, np.arange(0, 3 * m, 3),
                                         EPS_OO, SIGMA_OO)  # fmt: skip
        else:
            return energy, forces
        return energy + e, forces + f
