"""Which models have the hole a failed MD run fell into?

For every failed run of a stability study (``<runs>/<model>/T<K>/seed<N>/record.json`` +
``dump.lammpstrj``), the energy of each given model at the frames just before the failure,
relative to the same model's energy at the start structure. A model with a wall there rises;
a model with the hole falls.

    R=runs/paper/aspirin-budget
    python benchmarks/failure_energies.py --runs $R/size_500/stability/runs \\
        --variant plain-paper --start $R/size_500/data/md_start.extxyz \\
        --model pt=$R/train/pt/best.pt --model ... --focus NAME --out OUT.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def failure_energies(runs: Path, variant: str, start, calcs: dict, back: tuple[int, ...]
                     ) -> list[dict]:
    """One row per (failed run, frame ``back`` frames before its last): E - E(start) per model."""
    from ffpt.analysis.scan import scan_energies_batch
    from ffpt.lammps.io import read_dump_frames

    rows, positions = [], [start.positions]
    for rec_path in sorted(runs.glob(f"{variant}/T*/seed*/record.json"),
                           key=lambda p: int(p.parent.name[4:])):
        rec = json.loads(rec_path.read_text())
        if not rec.get("failed"):
            continue
        frames = read_dump_frames(rec_path.parent / "dump.lammpstrj")
        for b in back:
            if b <= len(frames):
                rows.append({"run": rec_path.parent.name, "step": frames[-b].step,
                             "reason": rec.get("reason", "")})
                positions.append(frames[-b].positions)
    pos = np.stack(positions)
    for name, calc in calcs.items():
        e = scan_energies_batch(calc, start.numbers, pos)
        for row, ei in zip(rows, e[1:] - e[0], strict=True):
            row[name] = float(ei)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, required=True, help="stability runs folder")
    ap.add_argument("--variant", required=True, help="model whose failed runs are read")
    ap.add_argument("--start", required=True, help="the runs' start structure")
    ap.add_argument("--model", action="append", required=True, help="NAME=checkpoint")
    ap.add_argument("--teacher", help="a teacher as one more column (e.g. gaff: the PT "
                    "labels' own energy there), built on the start structure's atom order")
    ap.add_argument("--back", default="40,10,2,1", help="frames before the last one")
    ap.add_argument("--focus", help="plot, per run, the frame where this model is lowest "
                    "(default: the first model)")
    ap.add_argument("--out", type=Path, required=True, help="markdown table (+ .png)")
    a = ap.parse_args()
    import torch
    from ase.io import read

    from ffpt.calculator import load_calculator
    from ffpt.provenance import load_average, machine_summary

    torch.set_num_threads(1)
    calcs = {m.split("=", 1)[0]: load_calculator(m.split("=", 1)[1]) for m in a.model}
    if a.teacher:
        from ffpt.teachers import TeacherCalculator, get_teacher

        calcs[f"{a.teacher} (teacher)"] = TeacherCalculator(
            get_teacher(a.teacher, structure=a.start))
    rows = failure_energies(a.runs, a.variant, read(a.start),
                            calcs, tuple(int(b) for b in a.back.split(",")))
    names = list(calcs)
    lines = [f"# Energies along the failed {a.variant} runs of `{a.runs}`", "",
             "E − E(start structure) in eV, each model against itself; frames read every "
             "dump interval before the failure (the last row of each run is the failure "
             "frame).", "", f"Models: {', '.join(f'{m}' for m in a.model)}", "",
             *([f"Teacher: {a.teacher} on the start structure's atom order.", ""] if a.teacher
               else []),
             f"Machine: {machine_summary()}; load {load_average()}.", "",
             "| run | step | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    lines += [f"| {r['run']} | {r['step']} | " + " | ".join(f"{r[n]:+.2f}" for n in names)
              + " |" for r in rows]
    reasons = dict((r["run"], r["reason"]) for r in rows)
    lines += ["", "Failures: " + "; ".join(f"{k}: {v}" for k, v in reasons.items()) + "."]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    focus = a.focus or names[0]
    low = {}
    for r in rows:  # per run: the frame where the focus model's energy is lowest
        if r["run"] not in low or r[focus] < low[r["run"]][focus]:
            low[r["run"]] = r
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(names), 4.4))
    for r in low.values():
        ax.plot(names, [np.sign(r[n]) * np.log10(1 + abs(r[n])) for n in names], "o-",
                label=f"{r['run']} (step {r['step']})")
    ax.axhline(0, color="k", lw=0.6)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.set_ylabel("sign · log10(1 + |E − E_start| / eV)")
    ax.set_title(f"{a.variant} runs before failure, where {focus} is lowest: "
                 "hole (<0) or wall (>0)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(a.out.with_suffix(".png"), dpi=120)
    print(a.out)


if __name__ == "__main__":
    main()
