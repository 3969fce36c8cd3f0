"""Si and Ge target data for the materials example: diamond, liquid and amorphous cells
labelled with GFN1-xTB (tblite), resumable (per-frame cache), then train/test splits.

    .venv/bin/python benchmarks/materials/make_data.py OUT_DIR [--frames-per-kind 40]

1. diamond: the 8-atom cubic cell, two-step perturbed (0.1 A displacements, 3 % strains);
2. a bootstrap EAM fitted to the labelled diamond frames drives short hot Langevin MD
   (ASE, 2500 K, 8-atom cells at 92 % of the crystal volume, random non-overlapping start):
   snapshots = liquid;
3. amorphous: liquid snapshots quenched by an EAM relaxation (FIRE, fixed cell), plus
   rattled (0.05 A) copies;
4. every frame labelled with GFN1-xTB (tblite, Gamma point only, electronic temperature 300 K).
   GFN2-xTB was tried first: its SCF did not converge for 6 of 40 8-atom diamond cells at
   300 K electronic temperature (fewer at 1000 K), and for most 16-atom liquid cells even at
   3000 K, where GFN1-xTB converges;
   frames whose SCF fails, whose labels are unphysical (max |F| > 30 eV/A or energy > 2 eV/atom
   below the diamond frames: GFN1 SCF solutions of some cells) or with atoms closer than 1.8 A
   are dropped (counted in info.json);
5. per element a test set (25 % of each kind) and the rest as the training pool.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

from ffpt.data.frames import FrameSet
from ffpt.labelling.engines import XTBEngine
from ffpt.sampling.perturb import two_step_perturb
from ffpt.teachers.eam import EAMCalculator, fit_eam

LATTICE = {"Si": 5.431, "Ge": 5.658}  # A, diamond
MIN_DIST = 1.8  # A
MAX_FORCE, MAX_DROP = 30.0, 2.0  # eV/A, eV/atom: beyond these an xTB label is unphysical
N_CELL = 8  # atoms per liquid/amorphous cell (16 doubles the xTB cost on this busy machine)


def diamond(el: str, n: int, seed: int) -> FrameSet:
    src = FrameSet.from_atoms([bulk(el, "diamond", a=LATTICE[el], cubic=True)],
                              energy_key=None, forces_key=None)
    return two_step_perturb(src, rounds=n, displacement=0.1, strain=0.03, seed=seed)


def random_cell(el: str, n_atoms: int, rng: np.random.Generator) -> Atoms:
    vol = 0.92 * n_atoms * LATTICE[el] ** 3 / 8
    side = vol ** (1 / 3)
    pos: list[np.ndarray] = []
    while len(pos) < n_atoms:
        x = rng.uniform(0, side, 3)
        d = [np.linalg.norm((x - p) - side * np.round((x - p) / side)) for p in pos]
        if not d or min(d) > 2.2:
            pos.append(x)
    return Atoms(el * n_atoms, positions=pos, cell=[side] * 3, pbc=True)


def min_distance(a: Atoms) -> float:
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", a, 3.0)
    return float(d.min()) if len(d) else 9.0


def liquid_and_amorphous(el: str, eam, n: int, seed: int) -> tuple[list[Atoms], list[Atoms]]:
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.optimize import FIRE

    rng = np.random.default_rng(seed)
    liquid, amorphous = [], []
    n_traj = 3
    per = -(-n // n_traj)
    for t in range(n_traj):
        a = random_cell(el, N_CELL, rng)
        a.calc = EAMCalculator(eam)
        MaxwellBoltzmannDistribution(a, temperature_K=2500, rng=rng)
        md = Langevin(a, 1.0 * units.fs, temperature_K=2500, friction=0.02,
                      rng=np.random.RandomState(seed + t))
        md.run(300)  # equilibrate
        for _ in range(per):
            md.run(40)
            snap = a.copy()
            snap.calc = None
            liquid.append(snap)
    for snap in liquid[::3]:
        q = snap.copy()
        q.calc = EAMCalculator(eam)
        FIRE(q, logfile=None).run(fmax=0.05, steps=200)
        q.calc = None
        amorphous.append(q)
        for _ in range(2):
            r = q.copy()
            r.positions += 0.05 * rng.standard_normal(r.positions.shape)
            amorphous.append(r)
    return liquid[:n], amorphous[:n]


def label(frames: list[Atoms], cache: Path, engine: XTBEngine,
          e_ref: float | None = None) -> tuple[list[Atoms], int]:
    """xTB labels with a per-frame cache (npz per frame: resumable). Dropped: failed SCF and
    unphysical SCF solutions (max |F| > MAX_FORCE, or energy per atom more than MAX_DROP below
    ``e_ref``, the median of the element's diamond frames)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    cache.mkdir(parents=True, exist_ok=True)
    out, dropped = [], 0
    for k, a in enumerate(frames):
        f = cache / f"{k:04d}.npz"
        if not f.exists():
            if min_distance(a) < MIN_DIST:
                np.savez(f, ok=False)
            else:
                try:
                    e, frc = engine.compute(a)
                    np.savez(f, ok=True, energy=e, forces=frc, positions=a.positions)
                except Exception as exc:  # SCF failures are dropped, and counted
                    print(f"  frame {k}: {exc}")
                    np.savez(f, ok=False)
        d = np.load(f)
        bad = bool(d["ok"]) and (np.abs(d["forces"]).max() > MAX_FORCE or (
            e_ref is not None and float(d["energy"]) / len(a) < e_ref - MAX_DROP))
        if not bool(d["ok"]) or bad:
            dropped += 1
            continue
        b = a.copy()
        b.calc = SinglePointCalculator(b, energy=float(d["energy"]), forces=d["forces"])
        out.append(b)
    return out, dropped


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--frames-per-kind", type=int, default=40)
    ap.add_argument("--elements", default="Si,Ge")
    args = ap.parse_args()
    engine = XTBEngine(method="GFN1-xTB", electronic_temperature=300.0, max_iterations=300)
    info = {"level_of_theory": "GFN1-xTB (tblite), Gamma point only, electronic temperature "
                               "300 K, periodic cells (GFN2-xTB: SCF not converged for most "
                               "liquid cells, even at 3000 K electronic temperature)",
            "engine": engine.describe(), "kinds": {}}
    n = args.frames_per_kind
    for s, el in enumerate(args.elements.split(",")):
        t0 = time.time()
        kinds: dict[str, list[Atoms]] = {}
        dia = diamond(el, n, seed=10 + s)
        kinds["diamond"], drop = label(list(dia.iter_atoms()), args.out / "cache" / el / "diamond",
                                       engine)
        info["kinds"][f"{el}/diamond"] = {"labelled": len(kinds["diamond"]), "dropped": drop}
        e_ref = float(np.median([a.get_potential_energy() / len(a) for a in kinds["diamond"]]))
        boot = FrameSet.from_atoms(kinds["diamond"])
        eam, stats = fit_eam(boot, cutoff=5.0, max_iter=300)
        eam.save(args.out / f"{el}_bootstrap_eam.json", {"fit": stats})
        liq, amo = liquid_and_amorphous(el, eam, n, seed=20 + s)
        for kind, frames in (("liquid", liq), ("amorphous", amo)):
            kinds[kind], drop = label(frames, args.out / "cache" / el / kind, engine, e_ref)
            info["kinds"][f"{el}/{kind}"] = {"labelled": len(kinds[kind]), "dropped": drop}
        rng = np.random.default_rng(100 + s)
        train, test = [], []
        for kind, frames in kinds.items():
            for a in frames:
                a.info["kind"] = kind
            perm = rng.permutation(len(frames))
            n_test = len(frames) // 4
            test += [frames[i] for i in perm[:n_test]]
            train += [frames[i] for i in perm[n_test:]]
        FrameSet.from_atoms(train).save(args.out / f"{el}_train.npz")
        FrameSet.from_atoms(test).save(args.out / f"{el}_test.npz")
        from ase.io import write

        write(args.out / f"{el}_train.extxyz", train)  # keeps info["kind"] for subsets
        info["kinds"][el] = {"train": len(train), "test": len(test),
                             "seconds": round(time.time() - t0, 1)}
        print(el, info["kinds"][el], flush=True)
    (args.out / "info.json").write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
