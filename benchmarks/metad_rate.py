"""Which hill rate makes WT-MetaD of a 3-atom reaction converge while 300 K holds?

The paper deposits 5 kJ/mol every 100 steps with Langevin 0.2 ps^-1. The combustion budget
run deposits 1 kJ/mol every 500 steps with 20 ps^-1 to hold 300 K, and in 200 ps no run made
a round trip (one capture each: benchmarks/results/paper/combustion/README.md). This runs the
same LAMMPS + PLUMED inputs as the paper stage (``metad_job``/``run_metad_job``, thermostat
``zero no``) for each ``--setting`` and model, in resumable chunks, and tabulates mean T, the
product-state visits and the number of state changes (``analyse_metad``).

    R=runs/paper/combustion-budget
    python benchmarks/metad_rate.py --model scratch=$R/models/scratch-deployed.pt \\
        --setting paper:5:100:5 --setting paper-20:5:100:0.05 --setting budget:1:500:0.05 \\
        --steps 20000 --out runs/metad_rate --results benchmarks/results/metad_rate/README.md

A setting is LABEL:HEIGHT_kJ_mol:PACE_steps:DAMP_ps[:SIGMA_nm] (damp = 1 / friction; hill
width on both CVs, default the input's 0.05 nm).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BASE = {"timestep_fs": 0.2, "biasfactor": 30, "thermo_every": 500, "dump_every": 500,
        "t_tolerance": 30.0, "fes_slices": 5}


def spec_of(setting: str, steps: int, chunk_steps: int) -> tuple[str, dict]:
    label, height, pace, damp, *sigma = setting.split(":")
    spec = {**BASE, "height": float(height), "pace": int(pace), "damp_ps": float(damp),
            "steps": steps, "chunk_steps": min(chunk_steps, steps)}
    if sigma:  # only when given: the key is part of a chunk's settings
        spec["sigma"] = float(sigma[0])
    return label, spec


def plot_traces(runs: list[tuple[str, Path]], png: Path) -> None:
    """d(O1-H) and d(O-O) against time (COLVAR), one panel per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ffpt.demo.paper_combustion import metad_colvar

    fig, axes = plt.subplots(len(runs), 1, figsize=(7, 1.6 * len(runs) + 0.6), sharex=True,
                             squeeze=False)
    for ax, (label, d) in zip(axes[:, 0], runs, strict=True):
        c = metad_colvar(d)
        if c.size:
            ax.plot(c[:, 0], c[:, 1] * 10, lw=0.4, label="d(O1–H)")
            ax.plot(c[:, 0], c[:, 2] * 10, lw=0.4, label="d(O–O)")
        ax.set_ylabel("Å")
        ax.set_title(label, fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (ps)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> None:
    from ffpt.demo.paper_combustion import analyse_metad, metad_job, run_metad_job

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="NAME=deployed artifact")
    ap.add_argument("--setting", action="append", required=True,
                    help="LABEL:HEIGHT:PACE:DAMP_PS[:SIGMA_NM]")
    ap.add_argument("--rxn", default="09")
    ap.add_argument("--steps", type=int, default=20000, help="MD steps per run (0.2 fs)")
    ap.add_argument("--chunk-steps", type=int, default=50000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="run folder (resumable)")
    ap.add_argument("--results", type=Path, required=True, help="markdown table (+ .json)")
    a = ap.parse_args()
    models = dict(m.split("=", 1) for m in a.model)
    runs = []
    for s in a.setting:
        label, spec = spec_of(s, a.steps, a.chunk_steps)
        for name, art in models.items():
            d = a.out / f"rxn{a.rxn}" / label / name
            runs.append((label, name, spec, metad_job(d, a.rxn, Path(art), spec)))
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        list(pool.map(run_metad_job, [r[3] for r in runs if r[3]["todo"]]))
    rows = []
    for label, name, spec, job in runs:
        x = analyse_metad(job["dir"], spec)
        rows.append({"setting": label, "model": name, "height": spec["height"],
                     "pace": spec["pace"], "friction_ps": 1 / spec["damp_ps"],
                     "sigma_nm": spec.get("sigma", 0.05),
                     "deposition_kJ_mol_ps": spec["height"] / (spec["pace"] * 2e-4),
                     "ps": x.get("ps_simulated"), "T_mean_K": x.get("T_mean_K"),
                     "T_se_K": x.get("T_mean_se_K"), "T_held": x.get("T_held"),
                     "state_changes": x.get("state_changes"),
                     "visits": x.get("state_timeline"), "wall_s": x.get("wall_s")})
    lines = [f"# WT-MetaD hill rate against temperature and round trips (reaction {a.rxn})", "",
             f"- date {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; wall time of this "
             f"invocation {time.time() - t0:.0f} s; {a.jobs} LAMMPS jobs",
             "- command: `python benchmarks/metad_rate.py " + " ".join(
                 [*(f"--model {m}" for m in a.model), *(f"--setting {s}" for s in a.setting),
                  f"--rxn {a.rxn} --steps {a.steps} --out {a.out} --results {a.results}"]) + "`",
             "- inputs as the paper stage (inputs/combustion/rxn<NN>, Langevin 'zero no', T over "
             "3N dof), bias factor 30, 0.2 fs; visits last at least 0.5 ps", "",
             "| setting | model | hill (kJ/mol) / pace / width (nm) | friction (ps⁻¹) | "
             "deposition rate (kJ/mol/ps) | ps | T mean ± s.e. (K) | T held | state changes | "
             "visits |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        visits = ", ".join(f"{s} {t0_:.0f}–{t1:.0f}" for s, t0_, t1 in (r["visits"] or [])[:6])
        lines.append(f"| {r['setting']} | {r['model']} | {r['height']:g} / {r['pace']} / "
                     f"{r['sigma_nm']:g} | "
                     f"{r['friction_ps']:g} | {r['deposition_kJ_mol_ps']:g} | {r['ps']:.0f} | "
                     f"{r['T_mean_K']:.0f} ± {r['T_se_K']:.0f} | {r['T_held']} | "
                     f"{r['state_changes']} | {visits} |")
    png = a.results.with_suffix(".png")
    plot_traces([(f"{lb} / {nm}", job["dir"]) for lb, nm, _, job in runs], png)
    lines += ["", f"![d(O1-H) against time]({png.name})"]
    a.results.parent.mkdir(parents=True, exist_ok=True)
    a.results.write_text("\n".join(lines) + "\n")
    a.results.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
