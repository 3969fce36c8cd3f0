"""Write a LAMMPS ``atom_style atomic`` data file (types: 1 = O, 2 = H) of an n x n x n
lattice of randomly oriented waters at liquid density (64 = 4^3 by default); the structure
comes from :func:`ffpt.sampling.water.water_box` (a starting point for MD, not an
equilibrated liquid).

    python inputs/water/build_water.py [-n 4] [--density 0.997] [-o water64.data]
"""

from __future__ import annotations

import argparse

from ffpt.lammps import write_data
from ffpt.sampling.water import water_box


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=4, help="molecules per box edge (n^3 waters)")
    p.add_argument("--density", type=float, default=0.997, help="g/cm^3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default=None, help="data file [water<N>.data]")
    a = p.parse_args()
    atoms = water_box(a.n**3, a.density, a.seed, jitter=0.15)
    out = a.output or f"water{a.n**3}.data"
    write_data(atoms, out, ["O", "H"])
    print(f"wrote {out}: {len(atoms) // 3} waters, box {atoms.cell[0, 0]:.4f} A")


if __name__ == "__main__":
    main()
