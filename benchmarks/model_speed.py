"""Model speed: energy+forces inference and training throughput, eager vs TorchScript.

Systems: aspirin (21 atoms, molecule) and a 192-atom periodic water box; models: paper size
(128 features, 20 radial, 3 layers) and small (32 features, 2 layers); float32 and float64.
FLOPs are counted by ``torch.utils.flop_counter`` (matrix products only: Linear layers and
their backward passes, which dominate; element-wise ops are not counted), and compared with the
machine's measured dense-matmul rate (a practical peak) on the same threads.

    .venv/bin/python benchmarks/model_speed.py [--threads 2] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

REPO = Path(__file__).resolve().parents[1]


def systems():
    from ase.build import molecule

    from ffpt.sampling.water import water_box

    asp = molecule("CH3COOH")  # aspirin-sized stand-in when shared data is absent
    from ffpt.config import shared_data_dir

    data = shared_data_dir()
    f = data / "aspirin_ccsd" / "aspirin_ccsd-train.xyz"
    if f.exists():
        from ase.io import read

        asp = read(f, index=0)
    water = water_box(64, seed=0)  # 64 molecules = 192 atoms
    return {"aspirin (21 at.)": asp, "water (192 at.)": water}


MODELS = {
    "paper (128f, 3 layers)": {"features": 128, "num_radial": 20, "num_interactions": 3},
    "small (32f, 2 layers)": {"features": 32, "num_radial": 20, "num_interactions": 2},
}


class CountFlops(TorchDispatchMode):
    """Matrix-product FLOPs of every dispatched op (``flop_registry``), also inside
    ``autograd.grad`` (``FlopCounterMode``'s module hooks fail there)."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if packet in flop_registry:  # registry entries take tensors and map them to shapes
            self.flops += flop_registry[packet](*args, **kwargs, out_val=out)
        return out


def timeit(fn, min_time=1.0, min_reps=3):
    fn()  # warm-up
    fn()
    reps, t0 = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - t0 < min_time:
        fn()
        reps += 1
    return (time.perf_counter() - t0) / reps


def matmul_peak(dtype) -> float:
    a = torch.randn(2048, 2048, dtype=dtype)
    b = torch.randn(2048, 2048, dtype=dtype)
    t = timeit(lambda: a @ b, min_time=1.0)
    return 2 * 2048**3 / t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "model_speed.md"))
    ap.add_argument("--quick", action="store_true", help="shorter timings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from e3nn.util.jit import compile as jit_compile

    from ffpt.data import FrameSet, GraphSet
    from ffpt.data.graph import atoms_to_batch
    from ffpt.model import EnergyForces, batch_energy_forces, build_model

    min_time = 0.3 if args.quick else 1.5
    rows = []
    peaks = {d: matmul_peak(getattr(torch, d)) for d in ("float32", "float64")}
    for sname, atoms in systems().items():
        for mname, mcfg in MODELS.items():
            for dname in ("float32", "float64"):
                dtype = getattr(torch, dname)
                torch.manual_seed(0)
                model = build_model({**mcfg, "dtype": dname}, ["H", "C", "O"]).eval()
                b = atoms_to_batch(atoms, model.elements, model.cutoff).to(dtype=dtype)
                n = len(b.pos)
                args_ = (b.pos, b.species, b.edge_index, b.edge_shift, n)
                eager = EnergyForces(model)
                # e3nn's compile scripts submodules in place: script a copy
                scripted = jit_compile(EnergyForces(copy.deepcopy(model)))
                t_eager = timeit(lambda m=eager, a=args_: m(*a), min_time)
                t_script = timeit(lambda m=scripted, a=args_: m(*a), min_time)
                with CountFlops() as fc:
                    eager(*args_)
                flops = fc.flops
                # training: batch of frames (32 aspirin / 4 water), forward+double backward+Adam
                n_frames = 32 if n < 50 else 4
                fs = FrameSet.from_atoms([atoms] * n_frames, energy_key=None, forces_key=None)
                gs = GraphSet(fs, model.elements, model.cutoff)
                tb = gs.batch(np.arange(n_frames)).to(dtype=dtype)
                opt = torch.optim.Adam(model.parameters(), 1e-4)
                e_ref = torch.zeros(n_frames, dtype=dtype)
                f_ref = torch.zeros_like(tb.pos)

                def step(tb=tb, model=model, opt=opt, e_ref=e_ref, f_ref=f_ref):
                    opt.zero_grad()
                    out = batch_energy_forces(model, tb.species, tb.pos, tb.edge_index,
                                              tb.edge_shift, tb.batch, tb.num_graphs,
                                              training=True)
                    loss = ((out["energy"] - e_ref) ** 2).mean() + 20 * (
                        (out["forces"] - f_ref) ** 2).mean()
                    loss.backward()
                    opt.step()

                t_train = timeit(step, min_time, min_reps=2)
                rows.append({
                    "system": sname, "model": mname, "dtype": dname,
                    "edges": int(b.edge_index.shape[1]),
                    "params": sum(p.numel() for p in model.parameters()),
                    "eager_ms": 1e3 * t_eager, "script_ms": 1e3 * t_script,
                    "gflop": flops / 1e9, "gflops_s": flops / t_eager / 1e9,
                    "peak_frac": flops / t_eager / peaks[dname],
                    "train_frames_s": n_frames / t_train,
                })
                r = rows[-1]
                print(f"{sname:18s} {mname:24s} {dname}: eager {r['eager_ms']:.1f} ms, "
                      f"script {r['script_ms']:.1f} ms, {r['gflop']:.3f} GFLOP, "
                      f"{r['gflops_s']:.1f} GFLOP/s, train {r['train_frames_s']:.1f} frames/s",
                      flush=True)
    write_md(Path(args.out), rows, peaks, args.threads)


def write_md(path: Path, rows: list[dict], peaks: dict, threads: int) -> None:
    import subprocess

    cpu = subprocess.run(["bash", "-c", "lscpu | grep 'Model name' | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    lines = [
        "# Model speed (energy + forces) and training throughput",
        "",
        f"- date: {datetime.date.today()}  machine: {cpu}, {os.cpu_count()} cores, "
        f"{platform.python_version()}, torch {torch.__version__}, {threads} threads",
        f"- load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(other processes on the machine inflate times)",
        f"- measured dense matmul rate (practical peak): float32 {peaks['float32'] / 1e9:.1f} "
        f"GFLOP/s, float64 {peaks['float64'] / 1e9:.1f} GFLOP/s",
        "- FLOPs: matrix products counted by torch.utils.flop_counter for one energy+forces call "
        "(forward + gradient); element-wise work (activations, scatters) is not counted.",
        "- training: one Adam step on a batch (32 aspirin or 4 water frames), energy+force loss "
        "with the double backward.",
        "- scripted = `e3nn.util.jit.compile` with TorchScript's default (profiling) executor; "
        "the deployed artifact switches to the legacy executor, which is faster for changing edge "
        "counts (docs/lammps.md).",
        "- reproduce: `.venv/bin/python benchmarks/model_speed.py`",
        "",
        "| system | model | dtype | edges | params | eager ms | scripted ms | script/eager |"
        " GFLOP/call | GFLOP/s | of peak | train frames/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['model']} | {r['dtype']} | {r['edges']} | {r['params']} | "
            f"{r['eager_ms']:.1f} | {r['script_ms']:.1f} | {r['script_ms'] / r['eager_ms']:.2f} | "
            f"{r['gflop']:.3f} | {r['gflops_s']:.1f} | {100 * r['peak_frac']:.1f} % | "
            f"{r['train_frames_s']:.1f} |"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
