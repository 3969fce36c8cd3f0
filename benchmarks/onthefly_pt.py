"""PT quality: on-the-fly pre-training data vs a fixed 100,000-frame set, at equal steps.

Teacher: flexible TIP3P water monomers, rattled with sigma = 0.2 A. Both runs train the same
small model (32 features, 2 interactions) from the same initial weights for the same number of
optimiser steps (batch 32, lr 1e-4 as in the paper's PT, no lr decay within the budget):
``fixed`` on 100,000 frames drawn once, ``onthefly`` on ``training.pt_source`` (fresh frames
every epoch). Both validate on the same held-out set; the last checkpoints are compared on a
common test set and along the rigid O-H stretch (0.5-3 A) and H-O-H bend (60-180 deg)
against the teacher, and scanned by the hole finder (``ffpt.analysis.scan.find_holes``).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/onthefly_pt.py \\
        [--steps 3000] [--seeds 0 1 2] [--lr 1e-4] [--out benchmarks/results/onthefly_pt.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
MODEL = {"features": 32, "num_radial": 20, "num_interactions": 2, "cutoff": 5.0,
         "dtype": "float32"}
BATCH = 32
N_FIXED = 100_000
NEAR = 1.0  # eV above the minimum (teacher): scan points in the region rattling samples


def config(seed: int, steps: int, lr: float, val, train=None) -> dict:
    """One PT config; ``train=None`` means on-the-fly (one epoch = 100 steps)."""
    training = {"batch_size": BATCH, "lr": lr, "max_steps": steps, "max_epochs": 10**6,
                "plot_every": 0, "num_threads": 1}
    if train is None:
        training["pt_source"] = {"teacher": "tip3p-flex", "sigma": 0.2,
                                 "frames_per_epoch": 100 * BATCH}
    return {"mode": "pretrain", "seed": seed, "model": dict(MODEL),
            "data": {"train": train, "val": val}, "training": training}


def scan_errors(calcs: dict) -> dict:
    """Per model: E - E_ref and force MAE vs the teacher along the stretch and the bend."""
    from ffpt.analysis.scan import angle_geometries, bond_geometries, water_reference

    ref = water_reference()
    scans = {"stretch": bond_geometries(ref, 0, 1), "bend": angle_geometries(ref, 1, 0, 2)}
    out: dict = {}
    for kind, images in scans.items():
        e, f = {}, {}
        for name, calc in calcs.items():
            ei, fi = [], []
            for atoms in [ref, *images]:
                atoms = atoms.copy()
                atoms.calc = calc
                ei.append(atoms.get_potential_energy())
                fi.append(atoms.get_forces())
            e[name] = np.array(ei[1:]) - ei[0]
            f[name] = np.array(fi[1:])
        for name in calcs:
            if name == "teacher":
                continue
            near = e["teacher"] <= NEAR  # the region rattling samples
            out.setdefault(name, {})[kind] = {
                "energy_mae_eV": float(np.mean(np.abs(e[name] - e["teacher"]))),
                "forces_mae_eV_A": float(np.mean(np.abs(f[name] - f["teacher"]))),
                "near_forces_mae_eV_A": float(np.mean(np.abs(f[name] - f["teacher"])[near])),
            }
    return out


def holes(calcs: dict) -> dict:
    from ffpt.analysis.scan import find_holes, water_reference

    rep = find_holes(calcs, water_reference())
    return {m: len(rep.flagged_scans(m)) for m in rep.models}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam lr (paper PT: 1e-4)")
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/onthefly_pt.md"))
    ap.add_argument("--work", default=None, help="run folders (default: a temp folder)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    from ffpt.calculator import FFPTCalculator
    from ffpt.data.graph import GraphSet
    from ffpt.model import load_checkpoint, load_model
    from ffpt.sampling.onthefly import OnTheFlyPTData
    from ffpt.teachers import get_teacher
    from ffpt.train import evaluate, train

    load = os.getloadavg()
    work = Path(a.work or tempfile.mkdtemp(prefix="ffpt-onthefly-pt-"))
    rows = []
    t_all = time.perf_counter()
    for seed in a.seeds:
        src = OnTheFlyPTData.from_teacher("tip3p-flex", seed=10_000 + seed)
        fixed = src.sample(N_FIXED, seed=1)  # never the on-the-fly streams (SeedSequence)
        val, test = src.sample(2000, seed=2), src.sample(5000, seed=3)
        res = {}
        for name, train_data in (("fixed", fixed), ("onthefly", None)):
            t0 = time.perf_counter()
            r = train(config(seed, a.steps, a.lr, val, train_data), work / f"{name}-{seed}",
                      progress=False, overwrite=True)
            res[name] = {"wall_s": time.perf_counter() - t0, "run": r}
        calcs = {"teacher": get_teacher("tip3p-flex").as_calculator()}
        test_graphs = None
        for name, r in res.items():  # last checkpoints: both after exactly the same steps
            model = load_model(r["run"].last_checkpoint)
            test_graphs = test_graphs or GraphSet(test, model.elements, model.cutoff)
            r["test"] = evaluate(model, test_graphs, 256)
            calcs[name] = FFPTCalculator(model, dtype="float64")
        scans, n_holes = scan_errors(calcs), holes(calcs)
        for name, r in res.items():
            m = r["run"].metrics
            hist = load_checkpoint(r["run"].last_checkpoint)["history"][-10:]
            val_f = [h["val_forces_mae"] for h in hist]
            rows.append({"seed": seed, "data": name, "steps": m["steps"], "epochs": m["epochs"],
                         "val_forces_mae_last": (min(val_f), max(val_f)),
                         "test_forces_mae": r["test"]["forces_mae"],
                         "test_energy_mae": r["test"]["energy_mae"],
                         **{f"{k}_{q}": v for k, d in scans[name].items() for q, v in d.items()},
                         "holes": n_holes[name], "wall_s": r["wall_s"]})
            print(json.dumps(rows[-1]))
    write_report(Path(a.out), rows, a, load, time.perf_counter() - t_all)


def write_report(out: Path, rows: list[dict], a, load, wall: float) -> None:
    from ffpt.data.frames import atomic_write

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    summary = "| PT data | test F MAE (meV/Å) | test E MAE (meV) | near-scan F MAE (meV/Å) |\n"
    summary += "|---|---|---|---|\n"
    for data in dict.fromkeys(r["data"] for r in rows):
        sel = [r for r in rows if r["data"] == data]

        def ms(key, sel=sel):
            v = 1e3 * np.array([r[key] for r in sel])
            return f"{v.mean():.0f} ± {v.std(ddof=1) if len(v) > 1 else 0:.0f}"

        near = [0.5 * (r["stretch_near_forces_mae_eV_A"] + r["bend_near_forces_mae_eV_A"])
                for r in sel]
        for r, v in zip(sel, near, strict=True):
            r["near_forces_mae"] = v
        summary += (f"| {data} ({len(sel)} seeds) | {ms('test_forces_mae')} | "
                    f"{ms('test_energy_mae')} | {ms('near_forces_mae')} |\n")
    head = ("| seed | PT data | steps | test F MAE (meV/Å) | val F MAE, last 10 validations "
            "(meV/Å) | test E MAE (meV) | "
            "stretch F MAE (meV/Å) all / near | stretch E MAE (meV) | "
            "bend F MAE (meV/Å) all / near | bend E MAE (meV) | scans with holes | wall (s) |"
            "\n|" + "---|" * 12 + "\n")
    body = "".join(
        f"| {r['seed']} | {r['data']} | {r['steps']} | {1e3 * r['test_forces_mae']:.0f} | "
        f"{1e3 * r['val_forces_mae_last'][0]:.0f}-{1e3 * r['val_forces_mae_last'][1]:.0f} | "
        f"{1e3 * r['test_energy_mae']:.2f} | {1e3 * r['stretch_forces_mae_eV_A']:.0f} / "
        f"{1e3 * r['stretch_near_forces_mae_eV_A']:.0f} | {1e3 * r['stretch_energy_mae_eV']:.0f} | "
        f"{1e3 * r['bend_forces_mae_eV_A']:.0f} / {1e3 * r['bend_near_forces_mae_eV_A']:.0f} | "
        f"{1e3 * r['bend_energy_mae_eV']:.0f} | {r['holes']} | {r['wall_s']:.0f} |\n"
        for r in rows)
    text = f"""# On-the-fly vs fixed PT data (tip3p-flex water monomers)

`benchmarks/onthefly_pt.py`: the same model ({MODEL['features']} features,
{MODEL['num_interactions']} interactions, {MODEL['num_radial']} radial functions,
{MODEL['cutoff']} Å cutoff, float32), the same initial weights and {a.steps} optimiser
steps of {BATCH} frames (Adam, lr {a.lr:g}, constant within this budget), trained on either
a fixed set of {N_FIXED:,} rattled frames (σ = 0.2 Å) or on `training.pt_source` (fresh
frames every epoch of {100 * BATCH} frames); the last checkpoints are compared. Test: 5,000
held-out rattled frames; scans: rigid O-H stretch 0.5-3 Å (126 points) and H-O-H bend
60-180° (121 points) from the TIP3P minimum, errors against the teacher (energies relative
to the minimum; "near": the points where the teacher is at most {NEAR:g} eV above the
minimum, the region rattling samples); holes: scans flagged by `ffpt.analysis.scan.find_holes`.

Mean ± standard deviation over seeds (near-scan: stretch and bend averaged):

{summary}
Per seed (the validation column shows how much a model moves between validations, every
{100 * BATCH} frames, at this constant lr: the on-the-fly run validates 30 times, the fixed
run once, at the end):

{head}{body}
- machine: {platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores
  (shared with other jobs), 1 torch thread, under `nice`; torch {torch.__version__}
- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; load average at start
  {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; at the end: `{uptime}`; total {wall:.0f} s
- command: `OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/onthefly_pt.py --steps
  {a.steps} --seeds {' '.join(map(str, a.seeds))} --lr {a.lr:g}`
"""
    atomic_write(out, lambda f: f.write(text.encode()))
    print(text)


if __name__ == "__main__":
    main()
