"""Tables and PNGs of the materials example -> benchmarks/results/materials/.

    .venv/bin/python benchmarks/materials/collect.py [--root runs/materials]
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ffpt.provenance import load_average, machine_summary

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[1] / "benchmarks" / "results" / "materials"


def metrics(run: Path) -> dict | None:
    f = run / "metrics.json"
    return json.loads(f.read_text()) if f.exists() else None


def n_train(run: Path) -> int | None:
    import yaml

    from ffpt.data.frames import FrameSet

    cfg = yaml.safe_load(run.with_suffix(".yaml").read_text())
    return FrameSet.load(cfg["data"]["train"]).n_frames


def row(name: str, m: dict | None, n: int | None) -> str:
    if m is None or "test" not in m:
        return f"| {name} | {n} | (no test metrics) | |"
    t = m["test"]
    return (f"| {name} | {n} | {1000 * t['energy_per_atom_mae']:.1f} | "
            f"{1000 * t['forces_mae']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=HERE.parents[1] / "runs" / "materials")
    ap.add_argument("--wall-s", type=float, default=None, help="wall time of run.sh")
    args = ap.parse_args()
    root = args.root
    runs = root / "runs"
    OUT.mkdir(parents=True, exist_ok=True)
    info = json.loads((root / "data" / "info.json").read_text())
    lines = ["# Materials example: Si and Ge (EAM pre-training, Si -> Ge transfer)", "",
             f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: "
             f"{machine_summary()}; load average at collection {load_average()} (shared "
             "machine: timings are not meaningful, budgets are in optimiser steps)",
             "- reproduce: `benchmarks/materials/run.sh` (resumable; runs under runs/materials/)",
             f"- level of theory: {info['level_of_theory']}",
             f"- wall time of the whole chain: about {args.wall_s:.0f} s (see Findings)"
             if args.wall_s else "- wall time: not measured", ""]
    lines += ["## Data (frames labelled; dropped: SCF not converged, unphysical labels or atoms "
              "< 1.8 A)", "",
              "| set | labelled | dropped |", "|---|---|---|"]
    for k, v in info["kinds"].items():
        if "labelled" in v:
            lines.append(f"| {k} | {v['labelled']} | {v['dropped']} |")
    for el in ("Si", "Ge"):
        v = info["kinds"].get(el)
        if v:
            lines.append(f"| {el} train / test | {v['train']} / {v['test']} | |")
    eam = {}
    for el in ("Si", "Ge"):
        f = root / "eam" / f"{el}.json"
        if f.exists():
            eam[el] = json.loads(f.read_text())
    if eam:
        lines += ["", "## Fitted EAM teachers (`ffpt teacher fit-eam`, on the training pool)", "",
                  "| element | energy RMSE (meV/atom) | force RMSE (eV/A) | data force RMS |",
                  "|---|---|---|---|"]
        for el, d in eam.items():
            f = d["fit"]
            lines.append(f"| {el} | {1000 * f['energy_rmse_eV_atom']:.1f} | "
                         f"{f['forces_rmse_eV_A']:.3f} | {f['forces_rms_eV_A']:.3f} |")
    lines += ["", "## Si: EAM-PT -> FT against scratch (test set: Si diamond/liquid/amorphous)",
              "", "| model | train frames | energy MAE (meV/atom) | force MAE (meV/A) |",
              "|---|---|---|---|"]
    for name in ("si_scratch", "si_ft", "si_pt"):
        r = runs / name
        if r.exists():
            lines.append(row(name, metrics(r), n_train(r)))
    md = root / "md" / "summary.json"
    if md.exists():
        s = json.loads(md.read_text())
        lines += ["", "## Si: LAMMPS Langevin MD at high temperature (64-atom diamond start)", "",
                  f"Settings: {json.dumps(s['settings'])}; failure: atoms closer than "
                  f"{s['criteria']['min_distance']} A, LAMMPS error or T > 10x target.", "",
                  "| model | T (K) | runs | failed | surviving | median time to failure (ps) |",
                  "|---|---|---|---|---|---|"]
        for m, temps in s["results"].items():
            for t, c in temps.items():
                lines.append(f"| {m} | {t} | {c['runs']} | {c['failed']} | "
                             f"{c['fraction_surviving']:.2f} | {c['median_time_to_failure_ps']} |")
        png = root / "md" / "survival.png"
        if png.exists():
            shutil.copy(png, OUT / "si_md_survival.png")
            lines += ["", "![survival](si_md_survival.png)"]
    lines += ["", "## Ge: Si -> Ge transfer (`--map-elements Ge=Si`) against Ge from scratch", "",
              "| model | train frames | energy MAE (meV/atom) | force MAE (meV/A) |",
              "|---|---|---|---|"]
    curves: dict[str, list[tuple[int, float, float]]] = {"scratch": [], "from Si": []}
    for tag in ("10", "30", "all"):
        for kind, label in (("ge_scratch", "scratch"), ("ge_from_si", "from Si")):
            r = runs / f"{kind}_{tag}"
            if not r.exists():
                continue
            m, n = metrics(r), n_train(r)
            lines.append(row(f"{kind}_{tag}", m, n))
            if m and "test" in m:
                curves[label].append((n, 1000 * m["test"]["energy_per_atom_mae"],
                                      1000 * m["test"]["forces_mae"]))
    if any(curves.values()):
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
        for label, pts in curves.items():
            if pts:
                pts.sort()
                ax[0].plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
                ax[1].plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=label)
        for a, what in zip(ax, ("energy MAE (meV/atom)", "force MAE (meV/A)"), strict=True):
            a.set_xscale("log")
            a.set_xlabel("Ge training frames")
            a.set_ylabel(what)
            a.legend()
        fig.suptitle(f"Ge test set ({info['engine']['method']}): Si -> Ge transfer vs scratch")
        fig.tight_layout()
        fig.savefig(OUT / "ge_transfer.png", dpi=120)
        lines += ["", "![Ge transfer](ge_transfer.png)"]
    settings = root / "settings.json"
    if settings.exists():
        lines += ["", "Settings: `" + settings.read_text().replace("\n", "").replace(" ", "")
                  + "`"]
    notes = HERE / "findings.md"  # the discussion of these numbers, written by hand
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    (OUT / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
