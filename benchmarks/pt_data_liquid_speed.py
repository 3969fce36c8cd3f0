"""Benchmark: PT data of rattled flexible-TIP3P water clusters and periodic boxes.

Target (issue: liquid PT data): 10,000 frames of a few-molecule cluster or an 8-16-molecule
box labelled in a few minutes on one core.
Usage: python benchmarks/pt_data_liquid_speed.py [--frames 10000] [--out FILE.md]
Timings: ``setup`` = relax the 8 reference structures; ``generate+label`` = rattling
(sigma 0.2 A) and labelling of all frames (in memory).
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

CASES = [
    ("4-molecule cluster", {"n_molecules": 4}),
    ("8-molecule periodic box (Ewald)", {"n_molecules": 8, "periodic": True}),
    ("16-molecule periodic box (Ewald)", {"n_molecules": 16, "periodic": True}),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--out", default="benchmarks/results/pt_data_liquid_speed.md")
    args = p.parse_args()
    import sys

    from ffpt.sampling import generate_pt_data
    from ffpt.teachers import get_teacher

    sys.path.insert(0, str(Path(__file__).parent))
    from pt_data_speed import machine

    rows = []
    load = os.getloadavg()
    for label, kw in CASES:
        t0 = time.perf_counter()
        t = get_teacher("tip3p-flex-liquid", **kw)
        _ = t.reference_positions
        t1 = time.perf_counter()
        fs = generate_pt_data(t, args.frames, sigma=0.2, seed=0)
        t2 = time.perf_counter()
        extra = f", {t.ewald.describe()['n_kvectors']} k, {len(t.ewald.shifts)} images" \
            if t.ewald else ""
        rows.append(f"| {label} ({t.n_atoms} atoms{extra}) | {t1 - t0:.1f} | {t2 - t1:.1f} | "
                    f"{1e6 * (t2 - t1) / fs.n_frames:.0f} |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# PT data speed: flexible-TIP3P water clusters and boxes",
        "",
        f"{datetime.date.today()}, {machine()}, one thread, load average before "
        f"{load[0]:.1f}; {args.frames} frames, sigma 0.2 A, 8 references, Ewald accuracy 1e-8, "
        "cutoff 8 A.",
        "",
        "| system | setup s | generate+label s | us/frame |",
        "|---|---|---|---|",
        *rows,
        "",
    ])
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
