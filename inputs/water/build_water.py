"""Build an n x n x n lattice of randomly oriented water molecules (64 = 4^3 by default) at
liquid density and write a LAMMPS ``atom_style atomic`` data file (types: 1 = O, 2 = H).

    python inputs/water/build_water.py [-n 4] [--density 0.997] [-o water64.data]

Also importable: ``water_box(n=4, density=0.997, seed=0) -> ase.Atoms`` (orthogonal, periodic).
The structure is a starting point for MD (equilibrate first), not an equilibrated liquid.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from scipy.spatial.transform import Rotation

WATER_MASS_AMU = 18.01528
AMU_PER_G = 6.02214076e23


def water_box(n: int = 4, density: float = 0.997, seed: int = 0) -> Atoms:
    """``n**3`` rigid-geometry waters (O-H 0.9572 A, H-O-H 104.52 deg) on a jittered grid."""
    rng = np.random.default_rng(seed)
    nmol = n**3
    volume_a3 = nmol * WATER_MASS_AMU / AMU_PER_G / density * 1e24
    box = volume_a3 ** (1.0 / 3.0)
    r, theta = 0.9572, np.deg2rad(104.52)
    mol = np.array([[0.0, 0.0, 0.0],
                    [r * np.sin(theta / 2), r * np.cos(theta / 2), 0.0],
                    [-r * np.sin(theta / 2), r * np.cos(theta / 2), 0.0]])
    mol -= mol.mean(0)
    spacing = box / n
    grid = (np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5)
    centres = grid * spacing + rng.uniform(-0.15, 0.15, size=(nmol, 3))
    rots = Rotation.random(nmol, random_state=seed)
    pos = np.concatenate([c + rot.apply(mol) for c, rot in zip(centres, rots, strict=True)])
    atoms = Atoms("OH2" * nmol, positions=pos, cell=np.eye(3) * box, pbc=True)
    atoms.wrap()
    return atoms


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from ffpt.lammps import write_data

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=4, help="molecules per box edge (n^3 waters)")
    p.add_argument("--density", type=float, default=0.997, help="g/cm^3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default=None, help="data file [water<N>.data]")
    a = p.parse_args()
    atoms = water_box(a.n, a.density, a.seed)
    out = a.output or f"water{a.n**3}.data"
    write_data(atoms, out, ["O", "H"])
    print(f"wrote {out}: {len(atoms) // 3} waters, box {atoms.cell[0, 0]:.4f} A")


if __name__ == "__main__":
    main()
