"""Benchmark: generate + label 100,000 rattled PT frames per teacher (sigma 0.2 A).

Targets (issue 3): water and combustion species well under 10 s; aspirin under 2 min.
Usage: python benchmarks/pt_data_speed.py [--frames 100000] [--out FILE.md]
Timings: ``setup`` = build the teacher + relax (GAFF: AM1-BCC charges, atom typing);
``generate+label`` = rattling and teacher labelling of all frames (in memory);
``save`` = compressed .npz write.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ffpt.sampling import generate_pt_data
from ffpt.teachers import get_teacher

CASES = [
    ("water (tip3p-flex)", "tip3p-flex", {}, 10.0),
    ("HO2 (qforce-h2)", "qforce-h2", {"species": "HO2"}, 10.0),
    ("H2O2 (qforce-h2)", "qforce-h2", {"species": "H2O2"}, 10.0),
    ("8 combustion species (qforce-h2)", "qforce-h2", {"species": "all"}, 10.0),
    ("aspirin (gaff-2.11, AM1-BCC)", "gaff", {"smiles": "CC(=O)Oc1ccccc1C(=O)O"}, 120.0),
]


def machine() -> str:
    from ffpt.provenance import machine_summary

    return machine_summary()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--out", default="benchmarks/results/pt_data_speed.md")
    args = p.parse_args()
    from ffpt.sampling.spec import build_teachers

    rows = []
    load_before = os.getloadavg()
    for label, name, kw, target in CASES:
        t0 = time.perf_counter()
        if kw.get("species") == "all":
            teachers, weights = build_teachers(name, species="all")
        else:
            teachers, weights = [get_teacher(name, **kw)], None
        for t in teachers:
            _ = t.relaxed_positions
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        fs = generate_pt_data(teachers, args.frames, sigma=0.2, seed=0, proportions=weights)
        gen = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            fs.save(Path(tmp) / "pt.npz")
            save = time.perf_counter() - t0
        ok = "yes" if gen < target else "NO"
        rows.append((label, fs.n_frames, setup, gen, save, target, ok))
        print(f"{label:36s} setup {setup:6.2f} s  generate+label {gen:6.2f} s  save {save:5.2f} s")
    load_after = os.getloadavg()
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        uptime = "?"
    lines = [
        "# PT data generation speed (`benchmarks/pt_data_speed.py`)",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- load average before/after (1 min): {load_before[0]:.2f} / {load_after[0]:.2f} "
        f"(`uptime`: {uptime}); the machine is shared, so timings are noisy",
        f"- command: `python benchmarks/pt_data_speed.py --frames {args.frames}`",
        "- sigma 0.2 Å, seed 0; OMP_NUM_THREADS=1; GAFF on OpenMM's Reference platform with "
        "one reused Context",
        "",
        "| teacher | frames | setup (build + relax) s | generate + label s | save .npz s "
        "| total s | target (generate + label) s | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, n, setup, gen, save, target, ok in rows:
        total = setup + gen + save
        lines.append(
            f"| {label} | {n} | {setup:.2f} | {gen:.2f} | {save:.2f} | {total:.2f} "
            f"| < {target:g} | {ok} |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
