"""Materials example, end to end (resumable; every stage budgeted in steps, not time).

    .venv/bin/python benchmarks/materials/pipeline.py [--root runs/materials]

Stages (each skipped when its output exists, training resumed from last.pt):
  data      make_data.py: Si/Ge diamond, liquid, amorphous cells, GFN2-xTB labels, splits
  eam       ffpt teacher fit-eam Si_train.npz (and Ge) -> eam/{el}.json + LAMMPS setfl
  pt-data   ffpt pt-data --teacher eam/Si.json --from Si_train.npz --perturb two-step
  train     Si: EAM-PT -> FT (train-pt); Si scratch, then Si -> Ge (--map-elements Ge=Si)
            at 3 training-set sizes (train-scratch); Ge from scratch (train-ge); the three
            train-* stages can run at once
  md        LAMMPS Langevin MD (ffpt stability) of the Si models at high temperature
  collect   collect.py -> benchmarks/results/materials/
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FFPT = str(REPO / ".venv" / "bin" / "ffpt")
MODEL = {"features": 32, "num_interactions": 2, "num_radial": 16, "cutoff": 5.0}
BATCH = 8
STEPS = {"pretrain": 1500, "train": 800}  # optimiser steps per run
PT = {"rounds": 20, "displacement": 0.1, "strain": 0.03}
GE_SIZES = (10, 30, None)  # None: the whole Ge training pool
MD = {"temps": "2000", "seeds": 3, "steps": 1000, "timestep": 1.0, "min_distance": 1.5}


def sh(*cmd: str) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def train(run: Path, cfg: dict, *extra: str) -> Path:
    """One ``ffpt train`` run, resumed if interrupted, skipped if finished."""
    if (run / "metrics.json").exists():
        return run / "best.pt"
    run.mkdir(parents=True, exist_ok=True)
    cfg_path = run.with_suffix(".yaml")
    cfg_path.write_text(yaml.safe_dump(cfg))
    resume = ("--resume",) if (run / "last.pt").exists() else ()
    sh(FFPT, "train", str(cfg_path), "-o", str(run), "--no-progress", *resume, *extra)
    return run / "best.pt"


def config(mode: str, train_data: str, test: str, steps: int, lr: float,
           init: Path | None = None, seed: int = 0) -> dict:
    cfg = {"mode": mode, "seed": seed, "model": dict(MODEL),
           "data": {"train": train_data, "test": test, "val_fraction": 0.1},
           "training": {"lr": lr, "batch_size": BATCH, "max_epochs": 100000,
                        "max_steps": steps, "patience": 50, "plot_every": 0,
                        "num_threads": 1}}
    if init is not None:
        cfg["init_from"] = str(init)
        cfg.pop("model")
    return cfg


def subset(src: Path, n: int, out: Path, seed: int = 0) -> str:
    """``n`` frames of ``src`` (same fraction of every kind: diamond, liquid, amorphous)."""
    from ase.io import read

    from ffpt.data.frames import FrameSet

    if out.exists():
        return str(out)
    images = read(src.with_suffix(".extxyz"), ":")
    kinds = np.array([a.info.get("kind", "?") for a in images])
    rng = np.random.default_rng(seed)
    pick: list[int] = []
    for k in sorted(set(kinds)):
        idx = rng.permutation(np.flatnonzero(kinds == k))
        pick += idx[: max(1, round(n * len(idx) / len(images)))].tolist()
    FrameSet.from_atoms([images[i] for i in sorted(pick)]).save(out)
    return str(out)


def ge_subset(data: Path, n: int | None) -> str:
    if n is None:
        return str(data / "Ge_train.npz")
    return subset(data / "Ge_train.npz", n, data.parent / f"Ge_train_{n}.npz")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=REPO / "runs" / "materials")
    ap.add_argument("--stages", default="data,eam,pt-data,train,md")
    ap.add_argument("--smoke", action="store_true", help="tiny budgets (checks the chain only)")
    args = ap.parse_args()
    root, stages = args.root.resolve(), args.stages.split(",")
    if args.smoke:
        STEPS.update(pretrain=20, train=20)
        PT["rounds"] = 2
        MD.update(seeds=1, steps=100, temps="1500")
    data, eam = root / "data", root / "eam"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "data" in stages and not (data / "info.json").exists():
        sh(sys.executable, str(HERE / "make_data.py"), str(data), "--frames-per-kind", "30")
    if "eam" in stages:
        for el in ("Si", "Ge"):
            if not (eam / f"{el}.json").exists():
                sh(FFPT, "teacher", "fit-eam", str(data / f"{el}_train.npz"),
                   "-o", str(eam / f"{el}.json"))
    pt = root / "pt_Si.npz"
    if "pt-data" in stages and not pt.exists():
        sh(FFPT, "pt-data", "--teacher", str(eam / "Si.json"), "--from",
           str(data / "Si_train.npz"), "--perturb", "two-step", "--rounds", str(PT["rounds"]),
           "--displacement", str(PT["displacement"]), "--strain", str(PT["strain"]),
           "-o", str(pt))
    runs = root / "runs"
    si_train, si_test = str(data / "Si_train.npz"), str(data / "Si_test.npz")
    if "train" in stages or "train-pt" in stages:
        pt_best = train(runs / "si_pt", {**config("pretrain", str(pt), si_test,
                                                   STEPS["pretrain"], 1e-3),
                                         "data": {"train": str(pt), "test": si_test,
                                                  "val_fraction": 0.05}})
        train(runs / "si_ft", config("finetune", si_train, si_test, STEPS["train"], 1e-3,
                                     pt_best))
    if "train" in stages or "train-scratch" in stages:
        si_scratch = train(runs / "si_scratch", config("scratch", si_train, si_test,
                                                       STEPS["train"], 1e-3))
        ge_test = str(data / "Ge_test.npz")
        for n in GE_SIZES:
            tag = "all" if n is None else str(n)
            train(runs / f"ge_from_si_{tag}", config("finetune", ge_subset(data, n), ge_test,
                                                     STEPS["train"], 1e-3, si_scratch),
                  "--map-elements", "Ge=Si")
    if "train" in stages or "train-ge" in stages:
        for n in GE_SIZES:
            tag = "all" if n is None else str(n)
            train(runs / f"ge_scratch_{tag}", config("scratch", ge_subset(data, n),
                                                     str(data / "Ge_test.npz"), STEPS["train"],
                                                     1e-3))
    if "md" in stages:
        from ase.build import bulk
        from ase.io import write

        start = root / "si64.extxyz"
        if not start.exists():
            write(start, bulk("Si", "diamond", a=5.431, cubic=True).repeat(2))
        models = []
        for name in ("si_ft", "si_scratch"):
            art = runs / name / "deployed.pt"
            if not art.exists():
                sh(FFPT, "deploy", str(runs / name / "best.pt"), "-o", str(art))
            models.append(f"{name}={art}")
        sh(FFPT, "stability", *models, "--start", str(start), "--temps", MD["temps"],
           "--seeds", str(MD["seeds"]), "--steps", str(MD["steps"]), "--timestep",
           str(MD["timestep"]), "--system", "reactive", "--min-distance",
           str(MD["min_distance"]), "--jobs", "2", "--no-progress", "-o", str(root / "md"))
    if "collect" in stages:
        sh(sys.executable, str(HERE / "collect.py"), "--root", str(root))
    (root / "settings.json").write_text(json.dumps(
        {"model": MODEL, "batch": BATCH, "steps": STEPS, "pt": PT, "ge_sizes": GE_SIZES,
         "md": MD}, indent=1))


if __name__ == "__main__":
    main()
