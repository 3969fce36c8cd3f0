"""Which structures fill the CV region 'H + O2' of the combustion MetaD runs.

The region is d(O1-H) >= 2 A with O-O bonded (``cv_basins``); d(O2-H) is not a CV, so HO2 with
the H on the other O lands there too. This counts the dump frames of every finished run in
that region by their state on the product-state graph (``product_state``, both O-H
distances): HO2 (the H on the other O) or H + O2 (a free H).

    python benchmarks/metad_isomer.py [--run runs/paper/combustion-budget]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ffpt.demo.paper_combustion import (  # noqa: E402
    _cv_atoms,
    _mic,
    cv_basins,
    metad_chunks,
    product_state,
)
from ffpt.lammps.io import read_dump_frames  # noqa: E402


def classify(d: Path) -> Counter:
    """Graph states of the frames of one run whose CVs lie in the region 'H + O2'."""
    out: Counter = Counter()
    for c, _ in metad_chunks(d):
        atoms = _cv_atoms(c / "plumed.dat")
        for fr in read_dump_frames(c / "traj.lammpstrj"):
            oh, oo = (np.array([np.linalg.norm(_mic(fr.positions[atoms[n][1]]
                                                    - fr.positions[atoms[n][0]], fr.cell))
                                / 10.0]) for n in ("dOH", "dOO"))
            if cv_basins(oh, oo)["H + O2"][0, 0]:
                out[product_state(np.where(fr.types == 1, 8, 1), fr.positions, fr.cell)] += 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=str(ROOT / "runs/paper/combustion-budget"))
    a = p.parse_args()
    print("| rxn | model | frames in 'H + O2' | HO2 (H on the other O) | H + O2 |")
    print("|---|---|---|---|---|")
    for d in sorted(Path(a.run, "metad").glob("rxn*/*")):
        if not d.is_dir() or not metad_chunks(d):
            continue
        c = classify(d)
        n = max(1, sum(c.values()))
        print(f"| {d.parent.name[3:]} | {d.name} | {sum(c.values())} | "
              + " | ".join(f"{c[k] / n:.0%}" for k in ("HO2", "H + O2"))
              + " |")


if __name__ == "__main__":
    main()
