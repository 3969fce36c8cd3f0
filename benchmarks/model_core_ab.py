"""Model core before/after: the NewtonNet code at a git revision against the working tree.

Same weights (the old module loads the new state_dict), float32 energy + forces
(``EnergyForces``, eager), paper size, water boxes; calls interleaved old/new in one process,
best of ``--reps`` (wall and process CPU time), with glibc's default allocator and with ffpt's
malloc tuning (two processes). Writes ``benchmarks/results/model_core_ab.md``.

    .venv/bin/python benchmarks/model_core_ab.py [--rev 4628a60] [--threads 1] [--reps 3]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = {"water 192": 64, "water 1536": 512}


def measure(rev: str, threads: int, reps: int, sizes: list[str]) -> dict:
    import torch

    sys.path.insert(0, str(REPO))
    from ffpt.data.graph import atoms_to_batch
    from ffpt.model.forces import EnergyForces
    from ffpt.model.newtonnet import NewtonNet
    from ffpt.sampling.water import water_box

    torch.set_num_threads(threads)
    src = subprocess.run(["git", "show", f"{rev}:ffpt/model/newtonnet.py"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "newtonnet_old.py"
        f.write_text(src)
        spec = importlib.util.spec_from_file_location("newtonnet_old", f)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
    torch.manual_seed(0)
    new = NewtonNet(["H", "O"])
    ref = old.NewtonNet(["H", "O"])
    ref.load_state_dict(new.state_dict())
    out = {}
    for name in sizes:
        b = atoms_to_batch(water_box(SIZES[name], seed=0), new.elements, new.cutoff)
        args = (b.pos.float(), b.species, b.edge_index, b.edge_shift.float(), len(b.pos))
        res = {"before": [], "after": []}
        models = {"before": EnergyForces(ref), "after": EnergyForces(new)}
        for m in models.values():
            m(*args)
        for _ in range(reps):
            for key, m in models.items():
                t, c = time.perf_counter(), time.process_time()
                m(*args)
                res[key].append((time.perf_counter() - t, time.process_time() - c))
        out[name] = {k: [1e3 * min(x[0] for x in v), 1e3 * min(x[1] for x in v)]
                     for k, v in res.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rev", default="4628a60", help="git revision of the 'before' model code")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="water 192,water 1536")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "model_core_ab.md"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = args.sizes.split(",")
    if args.child:
        print("RESULT " + json.dumps(measure(args.rev, args.threads, args.reps, sizes)))
        return
    load0 = os.getloadavg()
    runs = {}
    for tuning in ("0", "1"):
        env = {**os.environ, "FFPT_MALLOC_TUNING": tuning, "OMP_NUM_THREADS": str(args.threads)}
        p = subprocess.run([sys.executable, __file__, "--child", "--rev", args.rev, "--threads",
                            str(args.threads), "--reps", str(args.reps), "--sizes", args.sizes],
                           env=env, capture_output=True, text=True, cwd=REPO)
        line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
        if not line:
            raise SystemExit(f"measurement failed: {p.stderr.strip().splitlines()[-1:]}")
        runs[tuning] = json.loads(line[0][7:])
    load1 = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Model core before/after (energy + forces, float32, paper size)", "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} "
        f"cores shared with other jobs; {args.threads} thread(s); load {load0[0]:.1f} -> "
        f"{load1[0]:.1f}; `uptime`: {uptime}",
        f"- before: `ffpt/model/newtonnet.py` at {args.rev}; after: working tree; same weights, "
        f"calls interleaved, best of {args.reps}; cells: wall ms / process CPU ms",
        "- malloc: glibc default (`FFPT_MALLOC_TUNING=0`) or ffpt's raised mmap/trim "
        "thresholds (the default since this change)",
        "- reproduce: `.venv/bin/python benchmarks/model_core_ab.py`", "",
        "| system | before, glibc malloc | after, glibc malloc | after, tuned malloc "
        "| speed-up (CPU time, before glibc -> after tuned) |",
        "|---|---|---|---|---|",
    ]
    for name in sizes:
        b0, a0, a1 = runs["0"][name]["before"], runs["0"][name]["after"], runs["1"][name]["after"]
        lines.append(f"| {name} | {b0[0]:.0f} / {b0[1]:.0f} | {a0[0]:.0f} / {a0[1]:.0f} | "
                     f"{a1[0]:.0f} / {a1[1]:.0f} | {b0[1] / a1[1]:.2f}x |")
    path = Path(args.out)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
