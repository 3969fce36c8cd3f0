"""Starting geometry for the combustion metadynamics inputs (rxn09, rxn01).

    python inputs/combustion/build_geometry.py 09 [-o inputs/combustion/rxn09] [--data DIR]

Uses the transition-state geometry ``h2combustion/irc_geom/TS_<rxn>.xyz`` of the shared
reference data (``--data``, else ``$FFPT_SHARED_DATA``, else ``<repo>/../shared/data``) when it
exists; otherwise builds the reactant from the qforce-h2 teacher's relaxed fragments. Atom
order is always O1, O2, H3 (as in the TS files), which the plumed.dat files rely on.
Writes ``geometry.xyz`` (ASE route) and ``geometry.data`` (LAMMPS, types 1 = O, 2 = H) in a
30 Angstrom periodic box. Nothing from the shared data is copied into the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read, write

from ffpt.config import shared_data_dir

REPO = Path(__file__).resolve().parents[2]
BOX = 30.0  # Angstrom: molecule in vacuum, >> the 5 Angstrom model cutoff


def shared_data(arg: str | None) -> Path:
    return Path(arg) if arg else shared_data_dir()


def _teacher_fragment(species: str) -> tuple[np.ndarray, np.ndarray]:
    from ffpt.teachers import get_teacher

    t = get_teacher("qforce-h2", species=species)
    return t.numbers, t.relaxed_positions


def built_geometry(rxn: str) -> Atoms:
    """Reactant built from teacher-relaxed fragments, atoms ordered O1, O2, H3."""
    if rxn == "09":  # HO2 (teacher order H, O, O with H on the first O) -> O1(H), O2, H3
        _, pos = _teacher_fragment("HO2")
        return Atoms("OOH", positions=pos[[1, 2, 0]])
    if rxn == "01":  # OH + O: H3 on O2, O1 2.05 A from O2 on the far side (like reactant_01)
        _, pos = _teacher_fragment("OH")  # O, H
        d_oh = np.linalg.norm(pos[1] - pos[0])
        return Atoms("OOH", positions=[[2.05, 0, 0], [0, 0, 0], [-d_oh * 0.98, 0.2 * d_oh, 0]])
    raise ValueError(f"no builder for reaction {rxn}; use 09 or 01")


def geometry(rxn: str, data: str | None = None) -> tuple[Atoms, str]:
    ts = shared_data(data) / "h2combustion" / "irc_geom" / f"TS_{rxn}.xyz"
    if ts.is_file():
        atoms = read(ts)
        if atoms.get_chemical_symbols() != ["O", "O", "H"]:
            raise ValueError(f"{ts}: expected atoms O, O, H, got {atoms.get_chemical_symbols()}")
        return Atoms("OOH", positions=atoms.positions), f"transition state {ts}"
    return built_geometry(rxn), "reactant built from qforce-h2 teacher fragments"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rxn", choices=["09", "01"])
    ap.add_argument("-o", "--out", default=None, help="folder (default: rxn<NN> beside this)")
    ap.add_argument("--data", default=None, help="shared data folder")
    args = ap.parse_args()
    atoms, source = geometry(args.rxn, args.data)
    atoms.set_cell([BOX] * 3)
    atoms.pbc = True
    atoms.center()
    out = Path(args.out or Path(__file__).parent / f"rxn{args.rxn}")
    out.mkdir(parents=True, exist_ok=True)
    write(out / "geometry.xyz", atoms, format="extxyz")
    from ffpt.lammps import write_data

    write_data(atoms, out / "geometry.data", elements=["O", "H"])
    d = atoms.get_all_distances()
    print(f"rxn{args.rxn}: {source}\n  d(O1-O2) = {d[0, 1]:.3f} A, d(O1-H3) = {d[0, 2]:.3f} A, "
          f"d(O2-H3) = {d[1, 2]:.3f} A\n  wrote {out}/geometry.xyz, {out}/geometry.data")


if __name__ == "__main__":
    main()
