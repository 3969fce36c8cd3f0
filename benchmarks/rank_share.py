"""Why 2 ranks are not 2x faster: the work share of one rank, and what sharing the machine costs.

``pair_style ffpt exchange layer`` on 2 ranks (slab decomposition along x) gives each rank its
owned half of the atoms plus one cutoff of ghosts, and runs ``interaction_owned`` on that graph.
This script rebuilds rank 0's graph in Python (owned: x < L/2; ghosts: the other atoms that
owned atoms reach) and times, in process CPU time (best of ``--repeats``, one torch thread,
float32 random-weight NewtonNets, the pair style's pieces):

- ``full``: the pieces on the whole box (1 rank: ``layered_evaluate``),
- ``rank 0``: the pieces on rank 0's graph (ghost rows stand in for the exchange),

each in a process of its own, then ``rank 0`` in two processes at the same time (what 2 ranks
do on the 2 cores). ``full`` / ``rank 0 alone`` is the speed-up the work split gives;
``rank 0 alone`` / ``rank 0, two at once`` is what the two cores' shared caches and memory
bus take from it (CPU time includes the stalls).

    python benchmarks/rank_share.py [--models small,paper] [--size 1536] [--repeats 7]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lammps_scaling import MODELS, machine, uptime, water, write_run  # noqa: E402


def rank0_graph(atoms, cutoff: float):
    """Full-box graph and rank 0's (owned x < L/2, then the ghosts they reach) as tensors."""
    import numpy as np
    import torch

    from ffpt.data.graph import neighbor_graph

    atoms = atoms.copy()
    atoms.wrap()
    ei, sh = neighbor_graph(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    pos = torch.as_tensor(atoms.positions, dtype=torch.float32)
    spec = torch.as_tensor([0 if s == "H" else 1 for s in atoms.get_chemical_symbols()])
    full = (pos, spec, torch.as_tensor(ei), torch.as_tensor(sh, dtype=torch.float32))
    owned = np.nonzero(atoms.positions[:, 0] < atoms.cell.array[0, 0] / 2)[0]
    is_owned = np.zeros(len(atoms), bool)
    is_owned[owned] = True
    keep = is_owned[ei[0]]
    i, j = ei[0][keep], ei[1][keep]
    ghosts = np.unique(j[~is_owned[j]])
    node = np.full(len(atoms), -1)
    node[owned] = np.arange(len(owned))
    node[ghosts] = len(owned) + np.arange(len(ghosts))
    nodes = torch.as_tensor(np.concatenate([owned, ghosts]))
    rank = (pos[nodes], spec[nodes], torch.as_tensor(np.stack([node[i], node[j]])),
            torch.as_tensor(sh[keep], dtype=torch.float32))
    return full, rank, len(owned)


def rank_evaluate(module, pos, species, edge_index, edge_shift, nout: int):
    """Rank 0's energy and forces from the pieces the pair style calls (``interaction_owned``);
    the ghost rows keep their inputs where the pair style would exchange them."""
    import torch

    from ffpt.model.forces import forces_from_edge_grad

    with torch.jit.optimized_execution(False):
        ev = (pos[edge_index[1]] - pos[edge_index[0]] + edge_shift).detach().requires_grad_()
        canon, expand, npaired = module.edge_pairs(edge_index, ev, pos.shape[0])
        rbf, env, sh = module.edge_features_paired(ev, canon)
        x = module.embed(species)
        for k in range(int(module.model.num_interactions)):
            xo = module.interaction_owned(k, x, rbf, env, sh, edge_index, canon, expand,
                                          npaired, nout)
            x = torch.cat([xo, x.narrow(0, nout, x.shape[0] - nout)])
        energy = module.readout(x.narrow(0, 0, nout), species.narrow(0, 0, nout)).sum()
        (g,) = torch.autograd.grad([energy], [ev])
        return energy, forces_from_edge_grad(g, edge_index, pos.shape[0])


def worker(name: str, size: int, which: str, repeats: int, go: Path | None) -> None:
    """Time one evaluation (``full`` or ``rank0``) and print a JSON line."""
    import torch

    from ffpt.deploy import deploy_model, load_deployed
    from ffpt.deploy.layered import layered_evaluate
    from ffpt.model import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        art = Path(tmp) / "m.pt"
        deploy_model(build_model({**MODELS[name], "dtype": "float32"}, ["H", "O"]), art,
                     dtype="float32")
        module = load_deployed(art).module
    full, rank, nout = rank0_graph(water(size), MODELS[name]["cutoff"])
    if which == "full":
        def fn():
            return layered_evaluate(module, *full)
    else:
        def fn():
            return rank_evaluate(module, *rank, nout)
    fn()
    if go is not None:  # start together with the other process
        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.01)
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(1e3 * (time.process_time() - t))
    info = {"ms": min(times), "nodes": int(rank[0].shape[0]), "owned": nout,
            "edges": int(rank[2].shape[1]), "full_edges": int(full[2].shape[1])}
    print(json.dumps(info), flush=True)


def measure(name: str, size: int, which: str, repeats: int, copies: int) -> list[dict]:
    """Start ``copies`` workers, let them time together, return their results."""
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        cmd = [sys.executable, __file__, "--worker", name, str(size), which, str(repeats)]
        if copies > 1:
            cmd.append(str(go))
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
        if copies > 1:
            for p in procs:
                assert p.stdout.readline().strip() == "ready"
            go.touch()
        out = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        if any(p.returncode for p in procs):
            raise SystemExit(f"rank_share: a worker failed ({name}, {which})")
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        name, size, which, repeats = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
        worker(name, size, which, repeats, Path(sys.argv[6]) if len(sys.argv) > 6 else None)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="small,paper")
    p.add_argument("--size", type=int, default=1536)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("-o", "--output", default=str(ROOT / "benchmarks/results/rank_share.md"),
                   help="results file; an existing one keeps its earlier runs below the new one")
    a = p.parse_args()
    start = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, `{uptime()}`"
    head = ["model", "atoms", "rank 0 graph: % of atoms / % of edges", "full ms",
            "rank 0 alone ms", "work split speed-up", "rank 0, two at once ms",
            "sharing costs", "2-rank estimate"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in a.models.split(","):
        full = measure(name, a.size, "full", a.repeats, 1)[0]
        alone = measure(name, a.size, "rank0", a.repeats, 1)[0]
        both = measure(name, a.size, "rank0", a.repeats, 2)
        together = sum(b["ms"] for b in both) / len(both)
        cells = [name, str(a.size),
                 f"{100 * alone['nodes'] / a.size:.1f} % / "
                 f"{100 * alone['edges'] / alone['full_edges']:.1f} %",
                 f"{full['ms']:.0f}", f"{alone['ms']:.0f}", f"{full['ms'] / alone['ms']:.2f}x",
                 f"{together:.0f}", f"{together / alone['ms']:.2f}x",
                 f"{full['ms'] / together:.2f}x"]
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    end = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, `{uptime()}`"
    write_run(Path(a.output), "# One rank's share of the work, and what two ranks on one machine "
              "cost", start, [
        f"`python benchmarks/rank_share.py --models {a.models} --size {a.size} "
        f"--repeats {a.repeats}`", "",
        f"- machine: {machine()}", f"- start: {start}", f"- end: {end}",
        "- float32 random-weight NewtonNets, water, one torch thread per process, process CPU",
        f"  time per energy + forces evaluation (best of {a.repeats}); rank 0 of 2 (slab along x)",
        "  rebuilt in Python and run through the pair style's pieces (`interaction_owned`);",
        "  `2-rank estimate` = full / (rank 0, two at once).", "",
        *rows,
    ])


if __name__ == "__main__":
    main()
