"""ffpt against the original NewtonNet and MACE small, side by side in one run.

Same sizes (NewtonNet: 128 features, 3 interactions, 20 radial, 5 A; MACE small: 128x0e,
2 interactions, max_L 0, correlation 3, 5 A), random weights, float32, energy + forces on the
same precomputed graphs (192- and 1,536-atom water), 1 and 2 threads; training frames/s on a
32-frame aspirin batch (Adam step, energy + 20 x force loss, double backward). Each model runs
in its own process and virtual environment (``benchmarks/peers/setup.sh``); timings are the
best of ``--reps`` calls after two warm-up calls. Writes ``benchmarks/results/peers.md``.

    .venv/bin/python benchmarks/peers/compare.py [--reps 3] [--quick]
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEERS = {
    "ffpt": REPO / ".venv" / "bin" / "python",
    "ffpt, glibc malloc": REPO / ".venv" / "bin" / "python",  # FFPT_MALLOC_TUNING=0
    "NewtonNet": HERE / ".venv-newtonnet" / "bin" / "python",
    "MACE small": HERE / ".venv-mace" / "bin" / "python",
}
Z_ELEMENTS = [1, 6, 8]  # H, C, O: one element list for every model


# ----------------------------------------------------------------------- systems (ffpt venv)
def build_systems(out: Path, quick: bool) -> dict:
    from ase.io import read

    from ffpt.config import shared_data_dir
    from ffpt.data.graph import neighbor_graph
    from ffpt.sampling.water import water_box

    systems = {"water 192": water_box(64, seed=0)}
    if not quick:
        systems["water 1536"] = water_box(512, seed=0)
    f = shared_data_dir() / "aspirin_ccsd" / "aspirin_ccsd-train.xyz"
    if f.exists():
        frames, asp_src = read(f, index=":32"), str(f.relative_to(f.parents[2]))
    else:  # a generated aspirin (RDKit embedding of the SMILES), rattled
        frames, asp_src = generated_aspirin(32), "generated aspirin (RDKit, rattled 0.05 A)"
    meta = {"aspirin": asp_src}
    for name, atoms in {**systems, **{f"aspirin {k}": a for k, a in enumerate(frames)}}.items():
        pbc = atoms.pbc if atoms.pbc.any() else False
        cell = atoms.cell.array if atoms.pbc.any() else None
        ei, sh = neighbor_graph(atoms.positions, cell, pbc, 5.0)
        np.savez(out / f"{name}.npz", z=atoms.numbers, pos=atoms.positions,
                 cell=atoms.cell.array, edge_index=ei, shift=sh,
                 energy=np.float64(atoms.info.get("energy", 0.0)),
                 forces=atoms.arrays.get("forces", np.zeros_like(atoms.positions)))
        meta[name] = {"atoms": len(atoms), "edges": int(ei.shape[1])}
    return meta


def generated_aspirin(n: int) -> list:
    from ase import Atoms
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from ffpt.teachers.gaff import ASPIRIN_SMILES

    mol = Chem.AddHs(Chem.MolFromSmiles(ASPIRIN_SMILES))
    AllChem.EmbedMolecule(mol, randomSeed=0)
    base = Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()],
                 positions=mol.GetConformer().GetPositions())
    out = []
    for k in range(n):
        a = base.copy()
        a.rattle(0.05, seed=k)
        out.append(a)
    return out


def load_batch(d: Path, names: list[str]):
    """Concatenated graph arrays of several systems (a training batch)."""
    import torch

    parts = [np.load(d / f"{n}.npz") for n in names]
    off = np.cumsum([0] + [len(p["z"]) for p in parts])[:-1]
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("z", "pos", "shift", "forces")}
    ei = np.concatenate([p["edge_index"] + o for p, o in zip(parts, off, strict=True)], axis=1)
    batch = np.repeat(np.arange(len(parts)), [len(p["z"]) for p in parts])
    t = {k: torch.from_numpy(v) for k, v in cat.items()}
    return (t["z"], t["pos"].float(), torch.from_numpy(ei), t["shift"].float(),
            torch.from_numpy(batch), t["forces"].float(), len(parts),
            torch.from_numpy(np.stack([p["cell"] for p in parts])).float())


def best_ms(fn, reps: int) -> tuple[float, float]:
    """(wall ms, process CPU ms): each the best of ``reps`` calls after two warm-ups. On a
    loaded machine the CPU time is the steadier measure of the work (1 thread)."""
    fn()
    fn()
    wall, cpu = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return 1e3 * min(wall), 1e3 * min(cpu)


# ----------------------------------------------------------------------------- models
def make_model(name: str):
    """(model, call(z, pos, edge_index, shift, batch, n_graphs, cell, training) -> (E, F))."""
    import torch

    torch.manual_seed(0)
    if name.startswith("ffpt"):
        from ffpt.model import batch_energy_forces, build_model

        model = build_model({"dtype": "float32"}, ["H", "C", "O"])
        lut = torch.full((119,), -1, dtype=torch.long)
        lut[torch.tensor(Z_ELEMENTS)] = torch.arange(3)

        def call(z, pos, ei, sh, batch, ng, cell, training):
            out = batch_energy_forces(model, lut[z], pos, ei, sh, batch, ng, training=training)
            return out["energy"], out["forces"]

        return model, call
    if name == "NewtonNet":
        from newtonnet.layers.representations import get_representation_by_string
        from newtonnet.models.newtonnet import NewtonNet

        reps = get_representation_by_string(5.0, "poly", "bessel", 20)
        model = NewtonNet(n_features=128, n_interactions=3, activation="swish",
                          infer_properties=["energy", "gradient_force"], representations=reps)

        def call(z, pos, ei, sh, batch, ng, cell, training):
            model.train(training)
            disp = pos[ei[1]] - pos[ei[0]] + sh  # same edge vectors as ffpt
            out = model(z, disp, ei, batch)
            return out.energy, out.gradient_force

        return model, call
    if name == "MACE small":
        # mace-torch pins e3nn 0.4.4, whose bundled constants.pt needs `slice` under
        # torch >= 2.6's weights_only default
        torch.serialization.add_safe_globals([slice])
        from e3nn import o3
        from mace import modules

        model = modules.ScaleShiftMACE(
            r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
            num_interactions=2, num_elements=3, hidden_irreps=o3.Irreps("128x0e"),
            MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(3), avg_num_neighbors=30.0,
            atomic_numbers=Z_ELEMENTS, correlation=3, gate=torch.nn.functional.silu,
            radial_MLP=[64, 64, 64], atomic_inter_scale=1.0, atomic_inter_shift=0.0,
        )
        lut = torch.full((119,), -1, dtype=torch.long)
        lut[torch.tensor(Z_ELEMENTS)] = torch.arange(3)

        def call(z, pos, ei, sh, batch, ng, cell, training):
            counts = torch.bincount(batch, minlength=ng)
            data = {
                "positions": pos, "node_attrs": torch.nn.functional.one_hot(lut[z], 3).float(),
                "edge_index": ei, "shifts": sh, "unit_shifts": torch.zeros_like(sh),
                "cell": cell.reshape(-1, 3), "batch": batch,
                "ptr": torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]),
                "head": torch.zeros(ng, dtype=torch.long),
                "weight": torch.ones(ng), "energy_weight": torch.ones(ng),
            }
            out = model(data, training=training, compute_force=True)
            return out["energy"], out["forces"]

        return model.float(), call
    raise ValueError(f"unknown model {name!r}")


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    d = Path(args.data)
    meta = json.loads((d / "meta.json").read_text())
    model, call = make_model(args.worker)
    model.float()
    res: dict = {"versions": _versions(args.worker)}
    for name in [k for k in meta if k.startswith("water")]:
        z, pos, ei, sh, batch, _, ng, cell = load_batch(d, [name])
        model.eval()
        res[name] = best_ms(lambda a=(z, pos, ei, sh, batch, ng, cell): call(*a, False),
                            args.reps)
    if args.train:
        names = [k for k in meta if k.startswith("aspirin ")]
        z, pos, ei, sh, batch, f_ref, ng, cell = load_batch(d, names)
        opt = torch.optim.Adam(model.parameters(), 1e-4)

        def step():
            opt.zero_grad()
            e, f = call(z, pos, ei, sh, batch, ng, cell, True)
            loss = (e.float() ** 2).mean() + 20 * ((f - f_ref) ** 2).mean()
            loss.backward()
            opt.step()

        model.train()
        wall, cpu = best_ms(step, args.reps)
        res["train_frames_s"], res["train_frames_cpu_s"] = ng / (wall / 1e3), ng / (cpu / 1e3)
        if args.worker == "ffpt":
            res["data_share"] = data_loading_share(d, names, args.reps)
    print("RESULT " + json.dumps(res), flush=True)


def data_loading_share(d: Path, names: list[str], reps: int) -> float:
    """Share of a training step spent building the batch from a cached GraphSet (ffpt)."""
    import torch
    from ase import Atoms

    from ffpt.data import FrameSet, GraphSet
    from ffpt.model import batch_energy_forces, build_model

    torch.manual_seed(0)
    atoms = []
    for n in names:
        p = np.load(d / f"{n}.npz")
        a = Atoms(numbers=p["z"], positions=p["pos"])
        a.info["energy"], a.arrays["forces"] = float(p["energy"]), p["forces"]
        atoms.append(a)
    fs = FrameSet.from_atoms(atoms)
    model = build_model({"dtype": "float32"}, ["H", "C", "O"])
    gs = GraphSet(fs, model.elements, model.cutoff)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    idx = np.arange(len(gs))
    t_load = best_ms(lambda: gs.batch(idx).to(dtype=torch.float32), max(reps, 5))[1]

    def step():
        b = gs.batch(idx).to(dtype=torch.float32)
        opt.zero_grad()
        out = batch_energy_forces(model, b.species, b.pos, b.edge_index, b.edge_shift, b.batch,
                                  b.num_graphs, training=True)
        ((out["forces"] - b.forces) ** 2).mean().backward()
        opt.step()

    return t_load / best_ms(step, reps)[1]


def _versions(name: str) -> str:
    import importlib.metadata as md

    import torch

    pkg = {"NewtonNet": "newtonnet", "MACE small": "mace-torch"}.get(name, "ffpt")
    return f"{pkg} {md.version(pkg)}, torch {torch.__version__}"


# ------------------------------------------------------------------------- orchestration
def run_worker(name: str, threads: int, data: Path, reps: int, train: bool) -> dict:
    py = PEERS[name]
    if not py.exists():
        return {"error": f"{py.parent.parent.name} missing: run benchmarks/peers/setup.sh"}
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if name == "ffpt, glibc malloc":
        env["FFPT_MALLOC_TUNING"] = "0"
    env["PYTHONPATH"] = str(REPO) if name.startswith("ffpt") else ""
    wname = "ffpt" if name.startswith("ffpt") else name
    cmd = [str(py), str(Path(__file__).resolve()), "--worker", wname, "--threads", str(threads),
           "--data", str(data), "--reps", str(reps)] + (["--train"] if train else [])
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    err = (p.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": err[:200]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="192-atom water only")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "peers.md"))
    ap.add_argument("--threads-list", default="1,2", help="thread counts to run, e.g. 2")
    ap.add_argument("--update", action="store_true",
                    help="keep the other thread counts' rows of the previous run (peers.json)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--train", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    load0 = os.getloadavg()
    raw = Path(args.out).with_suffix(".json")
    results: dict = {}
    if args.update and raw.exists():
        for row in json.loads(raw.read_text())["rows"]:
            results[(row.pop("name"), row.pop("threads"))] = row
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        meta = build_systems(data, args.quick)
        (data / "meta.json").write_text(json.dumps(meta))
        for threads in [int(t) for t in args.threads_list.split(",")]:
            for name in PEERS:
                train = name != "ffpt, glibc malloc"
                at = f"{datetime.datetime.now(datetime.UTC):%H:%M}"
                load = os.getloadavg()[0]
                r = run_worker(name, threads, data, args.reps, train)
                results[(name, threads)] = {**r, "at": at, "load": load}
                print(f"{name:20s} {threads} thr: {r}", flush=True)
    results = dict(sorted(results.items(), key=lambda kv: (kv[0][1], list(PEERS).index(kv[0][0]))))
    rows = [{"name": n, "threads": t, **r} for (n, t), r in results.items()]
    raw.write_text(json.dumps({"meta": meta, "reps": args.reps, "rows": rows}, indent=1))
    write_md(Path(args.out), meta, results, load0, os.getloadavg(), args.reps)


def write_md(path: Path, meta: dict, results: dict, load0, load1, reps: int) -> None:
    cpu = subprocess.run(["bash", "-c", "lscpu | grep 'Model name' | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    systems = [k for k in meta if k.startswith("water")]
    vers = sorted({r["versions"] for r in results.values() if "versions" in r})
    lines = [
        "# ffpt against the original NewtonNet and MACE small", "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: {cpu}, "
        f"{os.cpu_count()} cores (shared with other jobs), Python {platform.python_version()}",
        f"- load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, at end "
        f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; `uptime`: {uptime}",
        f"- versions: {'; '.join(vers)}",
        "- float32, random weights, energy + forces by autograd on identical precomputed graphs "
        "(5 A); " + ", ".join(f"{k}: {v['atoms']} atoms, {v['edges']} edges"
                              for k, v in meta.items() if k.startswith("water")),
        f"- training: Adam step on 32 aspirin frames ({meta['aspirin']}), energy + 20 x force "
        "loss (double backward)",
        f"- times: best of {reps} calls after 2 warm-ups, each model in its own process/venv, "
        "one after the other (the last column gives each row's start time and 1-min load); "
        "ratios are peer time / ffpt time (> 1: ffpt faster) between rows of the same thread "
        "count, which always come from one run",
        "- `ffpt, glibc malloc`: ffpt with `FFPT_MALLOC_TUNING=0` (the peers run with glibc's "
        "default allocator; ffpt raises the mmap/trim thresholds at import, ffpt/model/malloc.py)",
        "- reproduce: `bash benchmarks/peers/setup.sh && .venv/bin/python "
        "benchmarks/peers/compare.py`", "",
        "Cells: wall ms / process CPU ms (training: frames/s by wall / by CPU time).", "",
        "| model | threads | " + " | ".join(f"{s}" for s in systems)
        + " | train aspirin frames/s | run at (UTC), load |",
        "|---|---|" + "---|" * (len(systems) + 2),
    ]
    for (name, thr), r in results.items():
        if "error" in r:
            lines.append(f"| {name} | {thr} | " + " | ".join(["n/a"] * len(systems))
                         + f" | n/a ({r['error']}) | |")
            continue
        tr = (f"{r['train_frames_s']:.1f} / {r['train_frames_cpu_s']:.1f}"
              if "train_frames_s" in r else "-")
        when = (f"{r.get('at', '?')}, {r['load']:.1f}" if r.get("load") is not None
                else r.get("at", "?"))
        lines.append(f"| {name} | {thr} | "
                     + " | ".join(f"{r[s][0]:.0f} / {r[s][1]:.0f}" for s in systems)
                     + f" | {tr} | {when} |")
    lines += ["", "## Ratios (peer / ffpt; goal: NewtonNet >= 1.5, MACE small >= 2, "
              "training >= 1)", "",
              "Cells: by wall time, by CPU time. Met/not met is judged on CPU time with 1 thread "
              "(the work; wall time swings several-fold with the machine's load) and on wall "
              "time with 2 threads; a 2-thread row run at a load above the core count measures "
              "the scheduler more than the model.", "",
              "| peer | threads | " + " | ".join(systems) + " | training (ffpt/peer frames/s) |",
              "|---|---|" + "---|" * (len(systems) + 1)]
    for (name, thr), r in results.items():
        f = results.get(("ffpt", thr), {})
        if name.startswith("ffpt") or "error" in r or "error" in f:
            continue
        goal = 1.5 if name == "NewtonNet" else 2.0
        cells = []
        for s in systems:
            w, c = r[s][0] / f[s][0], r[s][1] / f[s][1]
            v = c if thr == 1 else w
            cells.append(f"{w:.2f}, {c:.2f} ({'met' if v >= goal else 'not met'})")
        tr = f["train_frames_s"] / r["train_frames_s"]
        trc = f["train_frames_cpu_s"] / r["train_frames_cpu_s"]
        v = trc if thr == 1 else tr
        cells.append(f"{tr:.2f}, {trc:.2f} ({'met' if v >= 1 else 'not met'})")
        lines.append(f"| {name} | {thr} | " + " | ".join(cells) + " |")
    share = [r["data_share"] for (n, _), r in results.items() if n == "ffpt" and "data_share" in r]
    if share:
        lines += ["", "Data loading (cached GraphSet -> batch tensors) per ffpt training step: "
                  + ", ".join(f"{100 * s:.1f} %" for s in share) + " (1, 2 threads)."]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
