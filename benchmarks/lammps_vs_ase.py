"""Time per MD step: LAMMPS ``pair_style ffpt`` (1 and 2 MPI ranks) vs the ASE calculator.

Water boxes of 192 and 1,536 atoms, float32 and float64, random-weight NewtonNets:
``paper`` (128 features, 20 radial, 5 A, 3 interactions: the production architecture) and
``small`` (32 features, 8 radial, 5 A, 2 interactions). One torch thread per MPI rank and
per ASE process (the machine has 2 cores).

    python benchmarks/lammps_vs_ase.py [--steps 3] [--models small,paper] [-o results.md]
    python benchmarks/lammps_vs_ase.py --formats   # model call: AOTInductor vs TorchScript vs eager
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {
    "paper": {"features": 128, "num_radial": 20, "cutoff": 5.0, "num_interactions": 3},
    "small": {"features": 32, "num_radial": 8, "cutoff": 5.0, "num_interactions": 2},
}


def water(n: int):
    from ffpt.sampling.water import water_box

    return water_box(n**3, jitter=0.15)


def ase_step_time(ckpt: Path, dtype: str, atoms, steps: int) -> float:
    """Seconds per VelocityVerlet step (0.5 fs) with FFPTCalculator, after 2 warm-up steps."""
    code = f"""
import time, torch, pickle, sys
torch.set_num_threads(1)
from ase import units
from ase.md.verlet import VelocityVerlet
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ffpt.calculator import FFPTCalculator
atoms = pickle.load(sys.stdin.buffer)
atoms.calc = FFPTCalculator({str(ckpt)!r}, dtype={dtype!r})
import numpy as np
MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
md = VelocityVerlet(atoms, 0.5 * units.fs)
md.run(2)
t = time.perf_counter(); md.run({steps}); print('STEP', (time.perf_counter() - t) / {steps})
"""
    import pickle

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(atoms), env=env,
                          capture_output=True, timeout=3600)
    out = proc.stdout.decode()
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode()[-3000:])
    return float(re.search(r"STEP (\S+)", out).group(1))


def lammps_step_time(artifact: Path, atoms, steps: int, nprocs: int, workdir: Path) -> float:
    from ffpt.lammps import read_log, run_lammps, write_data

    write_data(atoms, workdir / "w.data", ["O", "H"])
    (workdir / "in.bench").write_text(f"""units metal
atom_style atomic
read_data w.data
pair_style ffpt
pair_coeff * * {artifact} O H
velocity all create 300.0 4928459 mom yes rot yes dist gaussian
timestep 0.0005
fix nve all nve
thermo 100
run 2
run {steps}
""")
    proc = run_lammps("in.bench", workdir, nprocs=nprocs, threads=1, timeout=3600)
    log = read_log(proc.stdout, text=True)
    return log.loop_time_s / log.steps


def _bind_nlocal(ef, n: int):
    def fn(pos, sp, ei, sh):
        return ef(pos, sp, ei, sh, n)

    return fn


def formats_table(repeats: int = 10) -> str:
    """Model-call time, paper model, 192-atom water: AOTInductor vs TorchScript vs eager."""
    import torch
    from e3nn.util.jit import compile as e3nn_compile
    from torch.fx.experimental.proxy_tensor import make_fx

    from ffpt.data.graph import neighbor_graph
    from ffpt.model import EnergyForces, build_model

    torch.set_num_threads(1)
    torch._C._jit_set_profiling_executor(False)
    rows = ["| dtype | AOTInductor ms | TorchScript ms | eager ms | AOTI compile s |",
            "|---|---|---|---|---|"]
    atoms = water(4)
    n = len(atoms)
    for dt in ("float32", "float64"):
        dtype = getattr(torch, dt)
        torch.manual_seed(0)
        model = build_model({**MODELS["paper"], "dtype": dt}, ["H", "O"]).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        ef = EnergyForces(model)

        def inputs(k, dtype=dtype):
            atoms.rattle(0.01, seed=k)
            ei, sh = neighbor_graph(atoms.positions, atoms.cell.array, atoms.pbc, 5.0)
            sp = torch.tensor([0 if s == "H" else 1 for s in atoms.get_chemical_symbols()])
            return (torch.tensor(atoms.positions, dtype=dtype), sp, torch.tensor(ei),
                    torch.tensor(sh, dtype=dtype))

        t0 = time.perf_counter()
        args = inputs(0)
        gm = make_fx(_bind_nlocal(ef, n), tracing_mode="symbolic",
                     _allow_non_fake_inputs=True)(*args)
        dim_n = torch.export.Dim("N", min=n, max=100000)  # nlocal = n is baked in
        dim_e = torch.export.Dim("E", min=2, max=10000000)
        ep = torch.export.export(gm, args, dynamic_shapes=({0: dim_n}, {0: dim_n}, {1: dim_e},
                                                             {0: dim_e}))
        with tempfile.TemporaryDirectory() as tmp:
            pkg = torch._inductor.aoti_compile_and_package(ep, package_path=f"{tmp}/m.pt2")
            compile_s = time.perf_counter() - t0
            aoti = torch._inductor.aoti_load_package(pkg)
            ts = e3nn_compile(EnergyForces(model))
            res = {}
            calls = {"aoti": lambda x, m=aoti: m(*x), "ts": lambda x, m=ts: m(*x, n),
                     "eager": lambda x, m=ef: m(*x, n)}
            for name, f in calls.items():
                times = []
                for k in range(repeats):
                    x = inputs(k)
                    t = time.perf_counter()
                    f(x)
                    times.append(time.perf_counter() - t)
                res[name] = sorted(times[3:])[len(times[3:]) // 2]
        rows.append(f"| {dt} | {1e3 * res['aoti']:.0f} | {1e3 * res['ts']:.0f} | "
                    f"{1e3 * res['eager']:.0f} | {compile_s:.0f} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--models", default="small,paper")
    p.add_argument("--formats", action="store_true",
                   help="only time the model call: AOTInductor vs TorchScript vs eager")
    p.add_argument("-o", "--output", default=str(ROOT / "benchmarks/results/lammps_vs_ase.md"))
    a = p.parse_args()
    if a.formats:
        print(f"load average {os.getloadavg()[0]:.2f}")
        print(formats_table())
        return

    import torch

    from ffpt.deploy import deploy_checkpoint
    from ffpt.model import build_model, save_checkpoint

    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in a.models.split(","):
            for dtype in ("float32", "float64"):
                cfg = {**MODELS[name], "dtype": dtype}
                torch.manual_seed(0)
                model = build_model(cfg, ["H", "O"])
                ckpt = save_checkpoint(tmp / f"{name}-{dtype}.ckpt", model, cfg)
                art, _ = deploy_checkpoint(ckpt, tmp / f"{name}-{dtype}.pt", dtype=dtype)
                pt2, _ = deploy_checkpoint(ckpt, tmp / f"{name}-{dtype}.pt2", dtype=dtype,
                                           fmt="aotinductor")
                for n in (4, 8):
                    atoms = water(n)
                    res = {"model": name, "dtype": dtype, "atoms": len(atoms)}
                    res["ase"] = ase_step_time(ckpt, dtype, atoms, a.steps)
                    for nprocs in (1, 2):
                        wd = tmp / f"{name}-{dtype}-{n}-{nprocs}"
                        wd.mkdir()
                        res[f"lmp{nprocs}"] = lammps_step_time(art, atoms, a.steps, nprocs, wd)
                    wd = tmp / f"{name}-{dtype}-{n}-aoti"
                    wd.mkdir()
                    res["aoti1"] = lammps_step_time(pt2, atoms, a.steps, 1, wd)
                    print(res, flush=True)
                    rows.append(res)
    load_after = os.getloadavg()

    def ms(x):
        return "skipped" if x is None else f"{1e3 * x:.0f}"

    lines = [
        "# LAMMPS `pair_style ffpt` vs ASE `FFPTCalculator`: time per MD step",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}; machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.platform()}",
        f"- load average before/after (1 min): {load_before[0]:.2f} / {load_after[0]:.2f} "
        "(shared machine: other jobs ran at the same time, expect +-30 % noise)",
        f"- torch {torch.__version__}, 1 torch thread per process/rank, {a.steps} timed steps "
        "after 2 warm-up steps; ASE: VelocityVerlet 0.5 fs; LAMMPS: fix nve 0.5 fs, Loop time",
        "- models (random weights): " + "; ".join(f"`{k}` {v}" for k, v in MODELS.items()),
        "",
        "LAMMPS columns: TorchScript artifact (`.pt`) on 1 and 2 ranks, AOTInductor (`.pt2`) on "
        "1 rank; ratios are LAMMPS time / ASE time.",
        "",
        "| model | dtype | atoms | ASE ms/step | LAMMPS 1 rank | LAMMPS 2 ranks | "
        "LAMMPS AOTI 1 rank | TS/ASE | AOTI/ASE | 2 ranks speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sp = "-" if r["lmp2"] is None else f"{r['lmp1'] / r['lmp2']:.2f}x"
        lines.append(
            f"| {r['model']} | {r['dtype']} | {r['atoms']} | {ms(r['ase'])} | {ms(r['lmp1'])} | "
            f"{ms(r['lmp2'])} | {ms(r['aoti1'])} | {r['lmp1'] / r['ase']:.2f} | "
            f"{r['aoti1'] / r['ase']:.2f} | {sp} |"
        )
    Path(a.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
