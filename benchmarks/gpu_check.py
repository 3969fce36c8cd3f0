"""One short GPU-window check (< 8 minutes): training and MD speed of ffpt on CUDA.

1. model call: float32 energy + forces (eager ``EnergyForces``) on 1,536-, 12,288- and
   24,576-atom water,
   float32 and TF32, best of 5 with CUDA synchronisation, peak memory;
2. training frames/s on aspirin (paper size, 32-frame batches; float32, tf32, bf16-autocast)
   and the data-loading share of a step (cached GraphSet -> batch -> device);
3. a 1-epoch ``ffpt.train.train`` run with ``training.device: cuda`` (the trainer's CUDA path,
   checkpoints on CPU);
4. if the plugin builds there against CUDA libtorch: float64 forces of ``pair_style ffpt`` on
   the GPU against the ASE calculator on CPU (1 rank with the ghost shell, 2 ranks sharing the
   GPU with the per-layer exchange), then float32 ms/step with the pair style's synchronised
   breakdown (``timing yes``) on 1,536- and 12,288-atom water.

Every section has a time budget and records its error instead of stopping the others.
Results: ``$OUT/gpu_check.md`` (else ``benchmarks/results/gpu_check.md``) and a JSON twin.

    python benchmarks/gpu_check.py [--budget-s 420] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAPER = {"features": 128, "num_radial": 20, "cutoff": 5.0, "num_interactions": 3}
LAMMPS_SIZES = (1536, 12288)  # water atoms of the pair_style ffpt speed runs
T0 = time.monotonic()
#: ``--dry-run``: every section on CPU at toy sizes (checks the script without a GPU)
DRY: list[bool] = [False]


def left(budget: float) -> float:
    return budget - (time.monotonic() - T0)


def cuda_time(fn, reps: int = 5) -> float:
    """Best of ``reps`` seconds after two warm-ups, synchronised."""
    import torch

    sync = (lambda: None) if DRY[0] else torch.cuda.synchronize
    for _ in range(2):
        fn()
    sync()
    best = float("inf")
    for _ in range(1 if DRY[0] else reps):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def device():
    import torch

    return torch.device("cpu" if DRY[0] else "cuda")


def model_call(res: dict, budget: float) -> None:
    import torch

    from ffpt.data.graph import atoms_to_batch
    from ffpt.model import EnergyForces, build_model
    from ffpt.sampling.water import water_box

    dev = device()
    torch.manual_seed(0)
    model = build_model({**PAPER, "dtype": "float32"}, ["H", "O"]).to(dev)
    ef = EnergyForces(model)
    for n_mol in (8,) if DRY[0] else (512, 4096, 8192):
        if left(budget) < 60:
            res[f"water {3 * n_mol}"] = "skipped (time budget)"
            continue
        t = time.perf_counter()
        b = atoms_to_batch(water_box(n_mol, seed=0), model.elements, model.cutoff)
        t_graph = time.perf_counter() - t
        b = b.to(device=dev, dtype=torch.float32)
        args = (b.pos, b.species, b.edge_index, b.edge_shift, len(b.pos))
        row = {"edges": int(b.edge_index.shape[1]), "graph_build_cpu_s": t_graph}
        for prec in ("float32",) if DRY[0] else ("float32", "tf32"):
            torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
            if not DRY[0]:
                torch.cuda.reset_peak_memory_stats()
            row[f"{prec}_ms"] = 1e3 * cuda_time(lambda a=args: ef(*a))
            if not DRY[0]:
                row[f"{prec}_peak_GiB"] = torch.cuda.max_memory_allocated() / 2**30
        torch.backends.cuda.matmul.allow_tf32 = False
        res[f"water {3 * n_mol}"] = row
        print(f"model call water {3 * n_mol}: {row}", flush=True)


def aspirin_frames(n: int):
    from ffpt.config import shared_data_dir

    f = shared_data_dir() / "aspirin_ccsd" / "aspirin_ccsd-train.xyz"
    if f.exists():
        from ffpt.data.readers import read_data

        fs = read_data(str(f))
        return fs.subset(list(range(min(n, fs.n_frames)))), str(f)
    sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))
    from compare import generated_aspirin

    from ffpt.data import FrameSet

    atoms = generated_aspirin(n)
    for a in atoms:
        a.info["energy"], a.arrays["forces"] = 0.0, 0 * a.positions
    return FrameSet.from_atoms(atoms), "generated aspirin"


def training(res: dict, budget: float) -> None:
    import torch

    fs, src = aspirin_frames(64 if DRY[0] else 256)
    res["aspirin_source"] = src
    for prec in ("float32",) if DRY[0] else ("float32", "tf32", "bf16-autocast"):
        if left(budget) < 60:
            res[f"train {prec}"] = "skipped (time budget)"
            continue
        res[f"train {prec}"] = train_speed(fs, prec)
        print(f"train {prec}: {res[f'train {prec}']}", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False


def train_speed(fs, prec: str) -> dict:
    """Adam steps on random 32-frame batches: frames/s and the data-loading share."""
    import numpy as np
    import torch

    from ffpt.data import GraphSet
    from ffpt.model import batch_energy_forces, build_model
    from ffpt.train.device import precision_context

    dev = device()
    torch.manual_seed(0)
    model = build_model({**PAPER, "dtype": "float32"}, ["H", "C", "O"]).to(dev)
    gs = GraphSet(fs, model.elements, model.cutoff)
    amp = precision_context(prec, dev)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    rng = np.random.default_rng(0)

    def load():
        return gs.batch(rng.choice(len(gs), 32, replace=False)).to(device=dev,
                                                                    dtype=torch.float32)

    def step():
        b = load()
        opt.zero_grad(set_to_none=True)
        with amp():
            out = batch_energy_forces(model, b.species, b.pos, b.edge_index, b.edge_shift,
                                      b.batch, b.num_graphs, training=True)
            loss = (((out["energy"] - b.energy) / b.n_atoms) ** 2).mean() + 20 * (
                (out["forces"] - b.forces) ** 2).mean()
        loss.backward()
        opt.step()

    t_step = cuda_time(step, reps=10)
    t_load = cuda_time(load, reps=10)
    return {"frames_s": 32 / t_step, "step_ms": 1e3 * t_step,
            "data_loading_share": t_load / t_step}


def trainer_smoke(res: dict, budget: float) -> None:
    import torch

    from ffpt.model import load_checkpoint
    from ffpt.train import train

    fs, _ = aspirin_frames(16 if DRY[0] else 128)
    with tempfile.TemporaryDirectory() as tmp:
        data = fs.save(Path(tmp) / "asp.npz")
        cfg = {"data": {"train": str(data), "val_fraction": 0.25},
               "model": {**PAPER, "dtype": "float32"},
               "training": {"max_epochs": 1, "batch_size": 32, "plot_every": 0,
                            "device": "cpu" if DRY[0] else "cuda",
                            "precision": "float32" if DRY[0] else "tf32"}}
        t = time.perf_counter()
        r = train(cfg, Path(tmp) / "run", progress=False)
        ck = load_checkpoint(r.last_checkpoint)
        on_cpu = all(v.device.type == "cpu" for v in ck["model_state"].values())
        res["trainer_cuda_epoch"] = {"seconds": time.perf_counter() - t,
                                     "val_forces_mae": r.metrics["val"]["forces_mae"],
                                     "checkpoint_on_cpu": on_cpu,
                                     "device": "cpu" if DRY[0] else torch.cuda.get_device_name()}
        print(f"trainer: {res['trainer_cuda_epoch']}", flush=True)


def lammps_md(res: dict, budget: float) -> None:
    """``pair_style ffpt`` with CUDA libtorch: float64 forces against ASE on CPU (1 rank, ghost
    shell; 2 ranks sharing the GPU, per-layer exchange), then float32 ms/step with the pair
    style's own (synchronised) breakdown on 1,536- and 12,288-atom water: ghost shell with 1
    and 8 torch threads (they build the graph), per-layer exchange with 8."""
    import numpy as np
    import torch

    from ffpt.calculator import FFPTCalculator
    from ffpt.deploy import deploy_checkpoint
    from ffpt.lammps.runner import single_point
    from ffpt.model import build_model, save_checkpoint

    if left(budget) < 150 or DRY[0]:
        res["lammps"] = "skipped (time budget or dry run)"
        return
    t = time.perf_counter()
    b = subprocess.run([sys.executable, "-m", "ffpt.cli", "build-plugin"], cwd=ROOT,
                       capture_output=True, text=True, timeout=max(30, left(budget) - 90))
    if b.returncode != 0:
        res["lammps"] = f"plugin build failed: {(b.stderr or b.stdout).strip()[-300:]}"
        return
    res["plugin_build_s"] = time.perf_counter() - t
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from lammps_scaling import PARTS, run, water

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        cfg = {**PAPER, "dtype": "float64"}
        ckpt = save_checkpoint(tmp / "m.ckpt", build_model(cfg, ["H", "O"]), cfg)
        art64, _ = deploy_checkpoint(ckpt, tmp / "m64.pt", dtype="float64")
        art32, _ = deploy_checkpoint(ckpt, tmp / "m32.pt", dtype="float32")
        atoms = water(1536)
        ref = atoms.copy()
        ref.calc = FFPTCalculator(ckpt, dtype="float64")
        e_ref, f_ref = ref.get_potential_energy(), ref.get_forces()
        check = {}
        for nprocs, ex in ((1, "shell"), (2, "layer")):
            if left(budget) < 60:
                break
            sp = single_point(atoms, art64, tmp / f"sp{nprocs}", nprocs=nprocs,
                              pair_style=f"ffpt exchange {ex}", elements=["O", "H"])
            on_gpu = "device cuda" in sp["stdout"]
            df = float(np.abs(sp["forces"] - f_ref).max())
            check[f"{nprocs} rank(s) {ex}: max |dF| eV/A"] = df
            check[f"{nprocs} rank(s) {ex}: |dE| eV"] = abs(sp["energy"] - e_ref)
            check[f"{nprocs} rank(s) {ex}: on cuda"] = on_gpu
        res["lammps float64 vs ASE (CPU), 1,536 atoms"] = check
        print(f"lammps check: {check}", flush=True)
        out = {}
        for n in LAMMPS_SIZES:
            for ex, threads in (("shell", 1), ("shell", 8), ("layer", 8)):
                if left(budget) < 45:
                    break
                name = f"water {n} {ex} t{threads}"
                r = run(art32, water(n), 1, ex, 20, tmp / f"w{n}{ex}{threads}", threads=threads)
                out[f"{name} ms/step"] = r["step_ms"]
                for part in PARTS:
                    out[f"{name}: {part} ms"] = r[part]
                out[f"{name}: peak RSS MB"] = r["rss_mb"]
                print(f"lammps {name}: {r}", flush=True)
        res["lammps float32, 1 rank"] = out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget-s", type=float, default=420)
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "benchmarks/results"))
    ap.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: test the script")
    ap.add_argument("--only", default="", help="comma-separated sections: model call, training, "
                    "trainer, lammps [default: all]")
    ap.add_argument("--plot", metavar="JSON", help="only redraw gpu_check.png from a result JSON")
    args = ap.parse_args()
    if args.plot:
        plot(json.loads(Path(args.plot).read_text()), Path(args.plot).with_suffix(".png"))
        return
    DRY[0] = args.dry_run
    import torch

    res: dict = {"date": f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
                 "torch": torch.__version__, "python": platform.python_version(),
                 "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available() or DRY[0]:
        res["gpu"] = "dry run on CPU" if DRY[0] else torch.cuda.get_device_name()
        for name, fn in (("model call", model_call), ("training", training),
                         ("trainer", trainer_smoke), ("lammps", lammps_md)):
            if args.only and name not in args.only.split(","):
                continue
            try:
                fn(res, args.budget_s)
            except Exception as exc:  # record and go on: one window, every number counts
                res[f"{name} error"] = f"{type(exc).__name__}: {exc}"[:500]
                traceback.print_exc()
    write(Path(args.out), res)


def plot(res: dict, png: Path) -> None:
    """LAMMPS step breakdown against the bare model call, and training frames/s by precision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from lammps_scaling import PARTS

    lmp = res.get("lammps float32, 1 rank")
    train = {k[6:]: v["frames_s"] for k, v in res.items()
             if k.startswith("train ") and isinstance(v, dict)}
    if not isinstance(lmp, dict) and not train:
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    if isinstance(lmp, dict):
        runs = [k[:-len(" ms/step")] for k in lmp if k.endswith(" ms/step")]
        for i, run in enumerate(runs):
            bottom = 0.0
            for j, part in enumerate(PARTS):
                v = lmp.get(f"{run}: {part} ms", 0.0)
                a.bar(i, v, bottom=bottom, color=f"C{j}", label=part if i == 0 else None)
                bottom += v
            call = res.get(f"water {run.split()[1]}", {})
            if isinstance(call, dict) and "float32_ms" in call:
                a.plot([i - 0.4, i + 0.4], [call["float32_ms"]] * 2, "k--",
                       label="bare model call (eager)" if i == 0 else None)
        a.set_xticks(range(len(runs)), [f"{int(r.split()[1]):,} atoms\n{' '.join(r.split()[2:])}"
                                        for r in runs], fontsize=8)
        a.set_ylabel("ms per MD step")
        a.set_title("pair_style ffpt on 1 GPU rank (float32, paper size)")
        a.legend(fontsize=8)
    if train:
        b.bar(range(len(train)), list(train.values()), color="C7")
        b.set_xticks(range(len(train)), list(train), fontsize=8)
        b.set_ylabel("training frames/s (aspirin, batch 32)")
        b.set_title("training step")
    fig.suptitle(f"{res.get('gpu', '')}, torch {res.get('torch', '')}, {res.get('date', '')}")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def write(out: Path, res: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(res, indent=2, default=str))
    lines = ["# GPU check (benchmarks/gpu_check.py)", ""]
    lines += [f"- {k}: {v}" for k, v in res.items() if not isinstance(v, dict)]
    for k, v in res.items():
        if isinstance(v, dict):
            lines += ["", f"## {k}", ""] + [f"- {kk}: {vv:.4g}" if isinstance(vv, float)
                                            else f"- {kk}: {vv}" for kk, vv in v.items()]
    tmp = out / "gpu_check.md.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out / "gpu_check.md")
    try:
        plot(res, out / "gpu_check.png")
    except Exception as exc:  # the numbers are written; a plot failure must not lose them
        print(f"gpu_check: no plot ({type(exc).__name__}: {exc})")
    print(f"wrote {out / 'gpu_check.md'}")


if __name__ == "__main__":
    main()
