"""Which structures fill the CV region 'H + O2' of the combustion MetaD runs.

The region is d(O1-H) >= 2 A with O-O bonded (``cv_basins``); d(O2-H) is not a CV, so HO2 with
the H on the other O lands there too. This counts the dump frames of every finished run in
that region by d(O2-H): bonded (the isomer), apart (a free H) or stretched between.

    python benchmarks/metad_isomer.py [--run runs/paper/combustion-budget]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from ase.data import covalent_radii

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ffpt.demo.paper_combustion import APART_NM, _mic, metad_chunks  # noqa: E402
from ffpt.lammps.io import read_dump_frames  # noqa: E402

OH = 1.2 * (covalent_radii[8] + covalent_radii[1])  # bonded below (A), as product_state
OO = 1.2 * 2 * covalent_radii[8]
APART = 10 * APART_NM


def classify(d: Path) -> Counter:
    """Counts of the 'H + O2'-region frames of one run (atoms O1, O2, H) by d(O2-H)."""
    out: Counter = Counter()
    for c, _ in metad_chunks(d):
        for fr in read_dump_frames(c / "traj.lammpstrj"):
            p = fr.positions
            d1, doo, d2 = (float(np.linalg.norm(_mic(p[a] - p[b], fr.cell)))
                           for a, b in ((2, 0), (1, 0), (2, 1)))
            if d1 >= APART and doo <= OO:
                out["H on the other O" if d2 <= OH else "free H" if d2 >= APART
                    else "stretched"] += 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=str(ROOT / "runs/paper/combustion-budget"))
    a = p.parse_args()
    print("| rxn | model | frames in 'H + O2' | H on the other O | free H | stretched |")
    print("|---|---|---|---|---|---|")
    for d in sorted(Path(a.run, "metad").glob("rxn*/*")):
        if not d.is_dir() or not metad_chunks(d):
            continue
        c = classify(d)
        n = max(1, sum(c.values()))
        print(f"| {d.parent.name[3:]} | {d.name} | {sum(c.values())} | "
              + " | ".join(f"{c[k] / n:.0%}" for k in ("H on the other O", "free H", "stretched"))
              + " |")


if __name__ == "__main__":
    main()
