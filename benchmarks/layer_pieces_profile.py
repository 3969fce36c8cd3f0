"""CPU cost of the per-layer pieces (``ffpt.deploy.layered``) against the one-call model.

``pair_style ffpt exchange layer`` evaluates the model as TorchScript pieces with autograd piece
by piece; this script does the same in Python on one water box (``layered_evaluate``: no
ghosts, so no exchange) and times, in process CPU time (best of ``--repeats``, one torch
thread, float32 random-weight NewtonNets, the legacy graph executor as in the pair style):

- ``one call``: the deployed ``forward`` (energy + forces + virial in one TorchScript call),
- ``pieces, before``: the plain pieces as the pair style ran them before (graph executor
  optimisation on: inputs that require grad get symbolic-autodiff graphs),
- ``no symbolic autodiff``: the plain pieces with ``torch.jit.optimized_execution(False)``,
- ``paired pieces`` (now): also one message and one set of edge MLPs per edge pair, as the
  one-call model does on a full graph.

    python benchmarks/layer_pieces_profile.py [--sizes 192,1536] [--models small,paper]
        [--repeats 3] [--ops] [-o benchmarks/results/layer_pieces_profile.md]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lammps_scaling import MODELS, machine, uptime  # noqa: E402


def cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    """Best process CPU time of ``fn`` (ms) over ``repeats`` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return 1e3 * best


def op_table(fn: Callable[[], object], rows: int) -> list[str]:
    """Top ``rows`` operators by self CPU time of one call (markdown rows: op, ms, calls)."""
    from torch.profiler import profile

    fn()
    with profile() as prof:
        fn()
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:rows]
    return [f"| {e.key} | {e.self_cpu_time_total / 1e3:.1f} | {e.count} |" for e in ops]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="192,1536", help="atoms (water, multiples of 3)")
    p.add_argument("--models", default="small,paper")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ops", action="store_true",
                   help="add operator tables (paper model, smallest size)")
    p.add_argument("-o", "--output",
                   default=str(ROOT / "benchmarks/results/layer_pieces_profile.md"))
    a = p.parse_args()

    import torch

    from ffpt.data.graph import neighbor_graph
    from ffpt.deploy import deploy_model, load_deployed
    from ffpt.deploy.layered import _layered_evaluate, layered_evaluate
    from ffpt.model import build_model
    from ffpt.sampling.water import water_box

    torch.set_num_threads(1)
    start = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, `{uptime()}`"
    head = ["model", "atoms", "edges", "one call ms", "pieces, before", "no symbolic autodiff",
            "paired pieces (now)", "max |dF| now vs one call (eV/A)"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ops: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            torch.manual_seed(0)
            art = Path(tmp) / f"{name}.pt"
            deploy_model(build_model({**MODELS[name], "dtype": "float32"}, ["H", "O"]), art,
                         dtype="float32")
            module = load_deployed(art).module  # sets the legacy executor, as the pair style
            for size in (int(s) for s in a.sizes.split(",")):
                atoms = water_box(size // 3, seed=0, jitter=0.15)
                ei, sh = neighbor_graph(atoms.positions, atoms.cell.array, atoms.pbc,
                                        MODELS[name]["cutoff"])
                pos = torch.as_tensor(atoms.positions, dtype=torch.float32)
                spec = torch.as_tensor([0 if s == "H" else 1
                                        for s in atoms.get_chemical_symbols()])
                ei, sh = torch.as_tensor(ei), torch.as_tensor(sh, dtype=torch.float32)
                graph = (pos, spec, ei, sh)
                runs = {
                    "one": lambda g=graph, m=module: m(*g, len(g[0])),
                    "before": lambda g=graph, m=module: _layered_evaluate(m, *g, False, False),
                    "no_opt": lambda g=graph, m=module: layered_evaluate(m, *g, paired=False),
                    "paired": lambda g=graph, m=module: layered_evaluate(m, *g),
                }
                ms = {k: cpu_ms(fn, a.repeats) for k, fn in runs.items()}
                df = float((runs["one"]()[2] - runs["paired"]()[1]).abs().max())
                cells = [name, str(len(atoms)), str(ei.shape[1]), f"{ms['one']:.0f}",
                         *(f"{ms[k]:.0f} ({ms[k] / ms['one']:.2f}x)"
                           for k in ("before", "no_opt", "paired")), f"{df:.1e}"]
                rows.append("| " + " | ".join(cells) + " |")
                print(rows[-1], flush=True)
                if a.ops and name == "paper" and not ops:
                    for label, key in (("one call", "one"), ("pieces, before", "before"),
                                       ("paired pieces (now)", "paired")):
                        ops += ["", f"Operators by self CPU time, {label} ({len(atoms)} atoms, "
                                    "one call under torch.profiler):", "",
                                "| op | self CPU ms | calls |", "|---|---|---|",
                                *op_table(runs[key], 10)]
    end = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, `{uptime()}`"
    text = "\n".join([
        "# Per-layer pieces vs the one-call model (CPU time, Python)", "",
        f"`python benchmarks/layer_pieces_profile.py --sizes {a.sizes} --models {a.models} "
        f"--repeats {a.repeats}{' --ops' if a.ops else ''}`", "",
        f"- machine: {machine()}", f"- start: {start}", f"- end: {end}",
        "- float32 random-weight NewtonNets (paper: 128 features x 3 interactions; small: 32 x 2),",
        "  water, one torch thread, process CPU time per energy+forces+virial evaluation, best",
        f"  of {a.repeats}; ratios are to the one call.", "",
        *rows, *ops, "",
    ])
    from ffpt.data.frames import atomic_write

    atomic_write(Path(a.output), lambda f: f.write(text.encode()))
    print(text)


if __name__ == "__main__":
    main()
