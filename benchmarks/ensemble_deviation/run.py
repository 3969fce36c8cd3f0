"""Does the ensemble's force deviation rise before a scratch model's MD fails?

    .venv/bin/python benchmarks/ensemble_deviation/run.py            # resumable, ~1 h CPU
    .venv/bin/python benchmarks/ensemble_deviation/run.py --seeds 1 2 --steps 2000   # smaller

The aspirin budget experiment (inputs/aspirin/paper.yaml --preset budget, run folder
runs/paper/aspirin-budget) has a from-scratch model whose 500 K MD fails within 0.5-3 ps for
most seeds. This script trains K more scratch members with exactly that model's training config
(its last.pt) but seeds 1..K (ffpt train --ensemble K: own init, data order, validation split),
deploys them, reruns the 500 K Langevin MD of the budget preset (same start, thermostat recipe,
timestep, dump and failure criteria as ffpt.analysis.stability) with the scratch model driving
and the K+1 models giving the deviation (pair_style ffpt devi_file ... devi_every N), and plots
the maximum per-atom force deviation against time with each run's failure time marked.

Stages are resumable (training resumes, finished MD runs are reused); budgets are in epochs
(the source config) and MD steps. Results: benchmarks/results/ensemble_deviation/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "ensemble_deviation"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="runs/paper/aspirin-budget",
                   help="the budget run folder (train/scratch, models/, data/md_start.extxyz)")
    p.add_argument("--run-dir", default="runs/ensemble_deviation")
    p.add_argument("--members", type=int, default=3, help="extra scratch members (seeds 1..K)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 9)))
    p.add_argument("--steps", type=int, default=10000, help="MD steps (0.5 fs)")
    p.add_argument("--temperature", type=float, default=500.0)
    p.add_argument("--devi-every", type=int, default=10)
    p.add_argument("--dump-every", type=int, default=50)
    p.add_argument("--timeout", type=float, default=3600.0, help="s per MD run")
    p.add_argument("--level", type=float, default=1.5,
                   help="fixed alarm level (eV/A) reported beside the 2x-baseline rule")
    return p.parse_args()


# ------------------------------------------------------------------------------- members
def train_members(source: Path, run_dir: Path, k: int) -> list[Path]:
    """K scratch members with the source scratch run's config, seeds 1..K; deployed float32."""
    import torch
    import yaml

    from ffpt.deploy.deploy import deploy_checkpoint
    from ffpt.train.ensemble import train_ensemble

    ck = torch.load(source / "train" / "scratch" / "last.pt", weights_only=True,
                    map_location="cpu")
    cfg = dict(ck["config"], seed=int(ck["config"]["seed"]) + 1)
    (run_dir / "member.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.perf_counter()
    best = train_ensemble(cfg, run_dir / "train", k, resume=True, progress=False)
    print(f"members trained/checked in {time.perf_counter() - t0:.0f} s")
    out = []
    for i, b in enumerate(best):
        art = run_dir / "models" / f"member{i}.pt"
        if not art.exists() or art.stat().st_mtime < b.stat().st_mtime:
            art.parent.mkdir(parents=True, exist_ok=True)
            deploy_checkpoint(b, art, dtype=cfg["model"]["dtype"])
        out.append(art)
    return out


# ------------------------------------------------------------------------------------- MD
def md_run(d: Path, atoms, driver: Path, members: list[Path], seed: int, a: argparse.Namespace,
           checker) -> dict:
    """One Langevin run with the ensemble; its failure (stability criteria on the dumps)."""
    from ase.data import atomic_numbers

    from ffpt.lammps.io import langevin_input, read_dump_frames, read_log, write_data
    from ffpt.lammps.runner import run_lammps

    rec_path = d / "record.json"
    if rec_path.is_file():
        return json.loads(rec_path.read_text())
    d.mkdir(parents=True, exist_ok=True)
    types = sorted(set(atoms.get_chemical_symbols()), key=lambda s: atomic_numbers[s])
    write_data(atoms, d / "start.data", types, rotate=True)
    text = langevin_input(driver, types, a.temperature, a.steps, 0.5, 2.0, seed, seed + 100003,
                          a.dump_every, a.dump_every, atoms.pbc, checker.c.t_factor)
    models = " ".join(str(p.resolve()) for p in [driver, *members])
    lines = []
    for line in text.splitlines():  # the same input, with the ensemble and its deviation file
        if line.startswith("pair_style"):
            line = f"pair_style      ffpt devi_file model_devi.out devi_every {a.devi_every}"
        elif line.startswith("pair_coeff"):
            line = f"pair_coeff      * * {models} {' '.join(types)}"
        elif line.startswith("dump "):  # + the per-atom deviation of the dumped steps
            lines.append(f"fix             devi all pair {a.dump_every} ffpt model_devi 1")
            line += " f_devi"
        lines.append(line)
    (d / "in.lmp").write_text("\n".join(lines) + "\n")
    lmp = run_lammps("in.lmp", d, threads=1, timeout=a.timeout, check=False, screen=False)
    log = read_log(d / "log.lammps")
    frames = read_dump_frames(d / "dump.lammpstrj") if (d / "dump.lammpstrj").is_file() else []
    completed = int(log.thermo["Step"][-1]) if log.thermo.get("Step") is not None else 0
    fail_step, reason, top = None, None, []
    for fr in frames:  # the atoms with the largest deviation, and the first failing frame
        top.append([fr.step, *np.argsort(-fr.columns["f_devi"])[:3].tolist()])
        why = checker.failure(fr.positions, fr.cell, fr.pbc)
        if why is not None:
            fail_step, reason = fr.step, why
            break
    if fail_step is None and log.halt_step is not None:
        fail_step, reason = log.halt_step, "temperature (fix halt)"
    if fail_step is None and completed < a.steps and not lmp.timed_out:
        fail_step = completed
        reason = f"LAMMPS stopped: {log.errors[0] if log.errors else '?'}"
    rec = {"seed": seed, "failed": fail_step is not None, "failure_step": fail_step,
           "failure_time_ps": None if fail_step is None else fail_step * 0.5e-3,
           "reason": reason or "stable", "steps_completed": completed, "wall_s": lmp.wall_s,
           "timed_out": lmp.timed_out,
           "top_devi_atoms": top}  # [step, 3 atoms (0-based) with the largest deviation]
    rec_path.write_text(json.dumps(rec, indent=2))
    return rec


def single_model_time(source: Path, seed: int, a: argparse.Namespace) -> float | None:
    """Failure time (ps; the run length if it survived) of the same seed in the source
    experiment's single-model stability run, when it is finished and dumped at the same
    interval (its length may differ: the trajectories agree step by step); else None."""
    d = source / "stability" / "runs" / "scratch" / f"T{a.temperature:g}" / f"seed{seed}"
    try:
        st = json.loads((d / "settings.json").read_text())
        rec = json.loads((d / "record.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if st.get("dump_every") != a.dump_every or st.get("timestep_fs") != 0.5:
        return None
    return float(rec["time_ps"])


def deviation_series(d: Path) -> np.ndarray:
    """model_devi.out: columns step, max, min, mean force deviation (eV/A), devi_e."""
    return np.loadtxt(d / "model_devi.out", ndmin=2)


def early_warning(devi: np.ndarray, t_end: float | None, baseline_ps: float = 0.25,
                  factor: float = 2.0) -> dict:
    """The alarm rule 'max deviation > factor x its median over the first baseline_ps' (usable
    during a run), up to ``t_end`` (the failure; None: the whole run): the baseline, the first
    alarm, the onset of the final rise (the last sample below the threshold before the
    failure: from then on the alarm stays on) and the fraction of samples in alarm."""
    t = devi[:, 0] * 0.5e-3
    base = float(np.median(devi[t <= baseline_ps, 1]))
    win = (t > baseline_ps) & (t <= (np.inf if t_end is None else t_end))
    alarm = win & (devi[:, 1] > factor * base)
    first = float(t[alarm][0]) if alarm.any() else None
    onset = None
    if t_end is not None and alarm.any():
        quiet = np.flatnonzero(win & ~alarm)
        onset = float(t[quiet[-1]]) if len(quiet) else None
    return {"baseline": base, "threshold": factor * base, "first_alarm_ps": first,
            "final_rise_onset_ps": onset,
            "alarm_fraction": float(alarm.sum() / max(1, win.sum()))}


# --------------------------------------------------------------------------------- report
def report(records: list[dict], series: dict[int, np.ndarray], meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True, sharey=True)
    for rec in records:
        devi = series[rec["seed"]]
        t = devi[:, 0] * 0.5e-3
        w = early_warning(devi, rec["failure_time_ps"])
        ax = axes[0] if rec["failed"] else axes[1]
        (line,) = ax.semilogy(t, devi[:, 1], lw=0.8, label=f"seed {rec['seed']}")
        ax.axhline(w["threshold"], color=line.get_color(), ls=":", lw=0.8, alpha=0.7)
        tf = rec["failure_time_ps"]
        if tf is not None:
            ax.axvline(tf, color=line.get_color(), ls="--", lw=1)
        before = devi[t <= tf] if tf is not None else devi
        above = np.flatnonzero(devi[:, 1] > meta["level"])
        t_level = float(t[above[0]]) if len(above) else None
        pair = re.search(r"(\d+)(?: and |-)(\d+)", rec["reason"]) if rec["failed"] else None
        prior = [x for x in rec.get("top_devi_atoms", [])
                 if rec["failure_step"] is not None and x[0] < rec["failure_step"]]
        rows.append({
            "seed": rec["seed"], "failed": rec["failed"], "failure_time_ps": tf,
            "reason": rec["reason"], **w,
            "max_devi_f_before_failure": float(before[:, 1].max()) if len(before) else None,
            "lead_time_first_alarm_ps": None if w["first_alarm_ps"] is None or tf is None
            else tf - w["first_alarm_ps"],
            "lead_time_final_rise_ps": None if w["final_rise_onset_ps"] is None
            else tf - w["final_rise_onset_ps"],
            "failing_atoms": [int(x) for x in pair.groups()] if pair else None,
            "level_time_ps": t_level,
            "lead_time_level_ps": None if t_level is None or tf is None else tf - t_level,
            "single_model_time_ps": rec.get("single_model_time_ps"),
            "top3_devi_atoms_frame_before_failure": prior[-1][1:] if prior else None,
            "wall_s": rec["wall_s"]})
    axes[0].set_title("failing runs (dashed: failure time from the stability criteria; "
                      "dotted: 2x baseline; dash-dot: fixed level)", fontsize=9)
    axes[1].set_title("runs that survive")
    for ax in axes:
        ax.axhline(meta["level"], color="k", ls="-.", lw=0.8)  # the fixed level (post hoc)
        ax.set_ylabel("max per-atom force deviation (eV/A)")
        ax.legend(fontsize=7, ncol=4)
    axes[1].set_xlabel("time (ps)")
    fig.suptitle(f"aspirin 500 K, scratch model + {meta['members']} scratch members "
                 "(model deviation, DeePMD definition)", fontsize=10)
    fig.tight_layout()
    fig.savefig(RESULTS / "deviation.png", dpi=120)
    summary = {**meta, "runs": rows}
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2))
    md = [
        "# Ensemble force deviation before MD failure (aspirin, scratch model, 500 K)", "",
        f"Reproduce: `{meta['command']}` (resumable).", "",
        f"Machine: {meta['machine']}; date {meta['date']}; load average at the end "
        f"{meta['load_average']}; wall time this invocation {meta['wall_s']:.0f} s (MD runs "
        f"{meta['md_wall_s']:.0f} s in all).", "",
        f"Driver: the budget experiment's scratch model ({meta['driver']}); deviation from it "
        f"and {meta['members']} more scratch members (same config, seeds 1..{meta['members']}),"
        f" every {meta['devi_every']} steps; MD {meta['steps']} x 0.5 fs at "
        f"{meta['temperature']:g} K, Langevin 2/ps (ffpt.lammps.io.langevin_input), failure "
        "= ffpt.analysis.stability criteria on frames every "
        f"{meta['dump_every']} steps.", "",
        "Alarm rule (usable during a run): max deviation > 2x its median over the first "
        "0.25 ps. Per run, up to the failure (or the end): the first alarm, the onset of the "
        "final rise (last sample below the threshold before the failure) and the fraction of "
        f"samples in alarm (every {meta['devi_every']} steps); lead times = failure time minus "
        "those. The failure time has the dump granularity "
        f"({meta['dump_every'] * 0.5:g} fs). Atoms are 0-based indices of the start "
        "structure; 'top-3 devi atoms' are those with the largest deviation in the last dumped "
        "frame before the failing one. The fixed level (--level, default 1.5 eV/A) was "
        "chosen after seeing the surviving runs' range (post hoc), not fitted in advance.", "",
        "| seed | failed | failure (ps) | reason | baseline / threshold (eV/A) | max devi "
        "before failure | first alarm (ps) | alarm fraction | lead: first alarm / final rise "
        f"(ps) | lead at {meta['level']:g} eV/A (ps) | top-3 devi atoms before failure |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    same = [r for r in rows if r["single_model_time_ps"] is not None]
    if same:
        end = meta["steps"] * 0.5e-3  # a single-model failure after our end: we survive
        agree = sum(abs(min(r["single_model_time_ps"], end) - (r["failure_time_ps"] or end))
                    < 1e-9 for r in same)
        md[-3:-3] = [f"The ensemble does not change the dynamics: {agree} of {len(same)} runs "
                     "end (fail or survive) at the same time as the same seed's single-model "
                     "run of the source experiment (its stability/ folder).", ""]

    def f(v, fmt="{:.3f}"):
        return "-" if v is None else fmt.format(v)

    for r in rows:
        md.append(f"| {r['seed']} | {'yes' if r['failed'] else 'no'} | "
                  f"{f(r['failure_time_ps'])} | {r['reason']} | "
                  f"{f(r['baseline'])} / {f(r['threshold'])} | "
                  f"{f(r['max_devi_f_before_failure'])} | {f(r['first_alarm_ps'])} | "
                  f"{f(r['alarm_fraction'], '{:.1%}')} | {f(r['lead_time_first_alarm_ps'])} / "
                  f"{f(r['lead_time_final_rise_ps'])} | {f(r['lead_time_level_ps'])} | "
                  f"{f(r['top3_devi_atoms_frame_before_failure'], '{}')} |")
    md += ["", *findings(rows, meta), "", "![deviation](deviation.png)", ""]
    (RESULTS / "summary.md").write_text("\n".join(md))


def findings(rows: list[dict], meta: dict) -> list[str]:
    """The measured answer, computed from the table (so that a rerun cannot go stale)."""
    fail = [r for r in rows if r["failed"]]
    ok = [r for r in rows if not r["failed"]]
    out = ["## Findings (computed from the table)", ""]
    if ok:
        out.append(f"- Surviving runs ({len(ok)}): max deviation over the whole run "
                   f"{min(r['max_devi_f_before_failure'] for r in ok):.2f}-"
                   f"{max(r['max_devi_f_before_failure'] for r in ok):.2f} eV/A; the "
                   "2x-baseline rule still fires in "
                   f"{sum(r['first_alarm_ps'] is not None for r in ok)} of them "
                   "(false alarms).")
    if fail:
        leads = sorted(r["lead_time_level_ps"] for r in fail if r["lead_time_level_ps"] is not None)
        rise = sorted(r["lead_time_final_rise_ps"] for r in fail
                      if r["lead_time_final_rise_ps"] is not None)
        out.append(f"- Failing runs ({len(fail)}): max deviation up to the failure "
                   f"{min(r['max_devi_f_before_failure'] for r in fail):.2f}-"
                   f"{max(r['max_devi_f_before_failure'] for r in fail):.2f} eV/A.")
        if leads and rise:
            out.append(f"- At {meta['level']:g} eV/A ({len(leads)} of {len(fail)} failing runs "
                       f"cross it, {sum(r['level_time_ps'] is not None for r in ok)} of "
                       f"{len(ok)} surviving runs) the deviation leads the failure criterion "
                       f"by {leads[0]:.3f}-{leads[-1]:.3f} ps (median "
                       f"{float(np.median(leads)):.3f} ps); the final rise above 2x baseline "
                       f"starts {rise[0]:.3f}-{rise[-1]:.3f} ps before the failure.")
        named = [r for r in fail
                 if r["failing_atoms"] and r["top3_devi_atoms_frame_before_failure"]]
        top1 = sum(r["top3_devi_atoms_frame_before_failure"][0] in r["failing_atoms"]
                   for r in named)
        top3 = sum(bool(set(r["top3_devi_atoms_frame_before_failure"]) & set(r["failing_atoms"]))
                   for r in named)
        out.append(f"- Localisation: in the frame before the failure the atom with the largest "
                   f"deviation is one of the two failing atoms in {top1} of {len(named)} runs, "
                   f"one of the top three in {top3} of {len(named)}.")
    return out


def main() -> None:
    a = _args()
    os.chdir(ROOT)
    t0 = time.perf_counter()
    from ase.io import read

    from ffpt.analysis.stability import Criteria, StabilityChecker

    source, run_dir = Path(a.source), Path(a.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    members = train_members(source, run_dir, a.members)
    driver = source / "models" / "scratch-deployed.pt"
    atoms = read(source / "data" / "md_start.extxyz")
    checker = StabilityChecker(atoms, Criteria(system="molecule"))
    tag = f"T{a.temperature:g}_steps{a.steps}_devi{a.devi_every}_dump{a.dump_every}"
    records, series = [], {}
    for seed in a.seeds:
        d = run_dir / "md" / tag / f"seed{seed}"
        rec = md_run(d, atoms, driver, members, seed, a, checker)
        records.append({**rec, "single_model_time_ps": single_model_time(source, seed, a)})
        series[seed] = deviation_series(d)
        print(f"seed {seed}: {rec['reason']} at {rec['failure_time_ps']} ps "
              f"({rec['wall_s']:.0f} s)")
    meta = {
        "command": "python benchmarks/ensemble_deviation/run.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(a).items()),
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} CPUs), 1 thread per run",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "wall_s": time.perf_counter() - t0,
        "md_wall_s": float(sum(r["wall_s"] for r in records)),
        "driver": str(driver), "members": a.members, "steps": a.steps,
        "temperature": a.temperature, "devi_every": a.devi_every, "dump_every": a.dump_every,
        "level": a.level,
    }
    report(records, series, meta)
    print(f"wrote {RESULTS}/summary.md and deviation.png")


if __name__ == "__main__":
    main()
