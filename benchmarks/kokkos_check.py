"""pair_style ffpt/kk against pair_style ffpt in one KOKKOS LAMMPS, and its speed on water.

1. agreement: a float64 model on 1,536-atom water, ffpt/kk vs pair_style ffpt (same ``lmp``,
   the non-KOKKOS style with its host graph): energy, forces, per-atom energies, virial;
2. speed: a float32 paper-size model (128 features, 3 x 5 A) on 1,536- and 24,576-atom water
   (512 waters, replicated 2x2x4): ms/step (force calls at fixed positions, so that a random
   model cannot collapse the liquid), ns/day at 0.5 fs and us/atom/step of ffpt/kk and of
   pair_style ffpt, from LAMMPS' loop time.

    python benchmarks/kokkos_check.py --lmp LMP --kokkos "-k on g 1" [--out DIR] [--small]

``--kokkos``: the KOKKOS switches (``-k on g 1`` on a GPU, ``-k on t 2`` with OpenMP);
``--small``: 192/1,536 atoms, a small model and few steps (CPU runs, checks the script).
Results: ``DIR/kokkos_check.md`` and ``.json`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAPER = {"features": 128, "num_radial": 20, "cutoff": 5.0, "num_interactions": 3}
SMALL = {"features": 16, "num_radial": 8, "cutoff": 4.0, "num_interactions": 2}
KK_TAIL = ["-sf", "kk", "-pk", "kokkos", "newton", "on", "neigh", "full"]


def deploy(cfg: dict, dtype: str, path: Path) -> Path:
    import torch

    from ffpt.deploy import deploy_model
    from ffpt.model import build_model

    torch.manual_seed(0)
    deploy_model(build_model({**cfg, "dtype": dtype}, ["H", "O"]).eval(), path)
    return path


def agreement(lmp: str, kokkos: list[str], work: Path, cfg: dict, n_side: int) -> dict:
    from ffpt.lammps import single_point
    from ffpt.sampling.water import water_box

    atoms = water_box(n_side**3, seed=0, jitter=0.1)
    model = deploy(cfg, "float64", work / "m64.pt")
    ref = single_point(atoms, model, work / "cpu", executable=lmp)
    got = single_point(atoms, model, work / "kk", executable=lmp, args=(*kokkos, *KK_TAIL))
    assert "pair ffpt/kk" in got["stdout"], "the KOKKOS style did not run"
    n = len(atoms)
    return {"atoms": n,
            "energy_per_atom": abs(got["energy"] - ref["energy"]) / n,
            "forces": float(np.abs(got["forces"] - ref["forces"]).max()),
            "per_atom_energy": float(np.abs(got["energies"] - ref["energies"]).max()),
            "virial": float(np.abs(got["virial"] - ref["virial"]).max())}


def speed(lmp: str, kokkos: list[str] | None, work: Path, model: Path, replicate: str,
          steps: int) -> dict:
    from ffpt.lammps import run_lammps, write_data
    from ffpt.sampling.water import water_box

    work.mkdir(parents=True, exist_ok=True)
    write_data(water_box(512, seed=0, jitter=0.1), work / "w.data", ["O", "H"])
    (work / "in.md").write_text(f"""units metal
atom_style atomic
read_data w.data
replicate {replicate}
pair_style ffpt
pair_coeff * * {model} O H
timestep 0.0005
thermo 10
run 10
run {steps}
""")
    args = (*kokkos, *KK_TAIL) if kokkos else ()
    t0 = time.perf_counter()
    out = run_lammps("in.md", work, executable=lmp, args=args, timeout=900).stdout
    loops = re.findall(r"Loop time of ([\d.eE+-]+) on .* for (\d+) steps with (\d+) atoms", out)
    loop, nsteps, natoms = float(loops[-1][0]), int(loops[-1][1]), int(loops[-1][2])
    ms = 1e3 * loop / nsteps
    return {"atoms": natoms, "steps": nsteps, "ms_per_step": ms,
            "ns_per_day": 0.0005e-3 * 86400 / (loop / nsteps),
            "us_per_atom_step": 1e3 * ms / natoms, "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lmp", required=True, help="KOKKOS LAMMPS with ffpt patched in")
    ap.add_argument("--kokkos", default="-k on g 1", help="KOKKOS switches [-k on g 1]")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--small", action="store_true", help="small sizes (CPU / script check)")
    ap.add_argument("--steps", type=int, default=None)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "kokkos_check_work"
    work.mkdir(exist_ok=True)
    kokkos = a.kokkos.split()
    cfg = SMALL if a.small else PAPER
    res: dict = {"lmp": a.lmp, "kokkos": a.kokkos, "model": cfg, "errors": {}}
    try:
        res["agreement_float64"] = agreement(a.lmp, kokkos, work / "agree", cfg,
                                             4 if a.small else 8)
    except Exception as exc:  # record and go on with the timings
        res["errors"]["agreement"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    model32 = deploy(cfg, "float32", work / "m32.pt")
    sizes = {"1536": "1 1 1"} if a.small else {"1536": "1 1 1", "24576": "2 2 4"}
    steps = a.steps or (20 if a.small else 100)
    for name, rep in sizes.items():
        for style, kk in (("ffpt/kk", kokkos), ("ffpt", None)):
            key = f"{style} {name}"
            try:
                res[key] = speed(a.lmp, kk, work / key.replace("/", "_").replace(" ", "_"),
                                 model32, rep, steps)
            except Exception as exc:
                res["errors"][key] = f"{type(exc).__name__}: {str(exc)[:2000]}"
            print(key, res.get(key, res["errors"].get(key)), flush=True)
    (out / "kokkos_check.json").write_text(json.dumps(res, indent=1))
    lines = [f"# ffpt/kk check ({a.kokkos})", "", f"lmp: `{a.lmp}`, model {cfg}", ""]
    if "agreement_float64" in res:
        lines += ["float64 agreement ffpt/kk vs pair_style ffpt: " + ", ".join(
            f"{k} {v:.1e}" for k, v in res["agreement_float64"].items() if k != "atoms"), ""]
    lines += ["| style | atoms | ms/step | ns/day | us/atom/step |", "|---|---|---|---|---|"]
    for key, r in res.items():
        if isinstance(r, dict) and "ms_per_step" in r:
            lines.append(f"| {key.split()[0]} | {r['atoms']} | {r['ms_per_step']:.2f} | "
                         f"{r['ns_per_day']:.3f} | {r['us_per_atom_step']:.3f} |")
    lines += [""] + [f"- error in {k}: {v.splitlines()[0]}" for k, v in res["errors"].items()]
    (out / "kokkos_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
