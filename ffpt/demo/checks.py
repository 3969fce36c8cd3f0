"""The two instruments of the comparison, run on every model of a pipeline: hole scans
(``ffpt.analysis.scan``) and multi-seed MD survival in LAMMPS (``ffpt.analysis.stability``).
Both return plain dicts that the report and ``summary.json`` use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def run_scans(pipe) -> dict:
    """Rigid scans of the reference molecule with the teacher, the PT model and every variant."""
    from ffpt.analysis.scan import find_holes
    from ffpt.analysis.scan_report import write_report
    from ffpt.calculator import FFPTCalculator, load_calculator

    sc = pipe.cfg["scan"]
    spec = sc["teacher"] if not sc["species"] else f"{sc['teacher']}:{sc['species']}"
    atoms = _scan_reference(sc)
    calcs = {}
    if sc["teacher"]:
        calcs[f"teacher ({sc['teacher']})"] = load_calculator(spec)
    for m in ["pt", *pipe.variants]:
        calcs[m] = FFPTCalculator(pipe.results[f"train_{m}"]["best_checkpoint"], dtype="float64")
    rep = find_holes(calcs, atoms, threshold=float(sc["threshold"]), progress=pipe.progress)
    outdir = pipe.run / "scan"
    files = write_report(rep, outdir)
    per_model = {}
    for m in rep.models:
        worst = rep.worst(m)
        lowest = min(((float(np.nanmin(r)), s) for s, r in enumerate(rep.rel[m])),
                     key=lambda x: x[0])
        sc = rep.scans[lowest[1]]
        at = sc.values[int(np.nanargmin(rep.rel[m][lowest[1]]))]
        per_model[m] = {
            "n_scans": len(rep.scans),
            "n_flagged": len(rep.flagged_scans(m)),
            "lowest_e_minus_ref_eV": lowest[0],  # < 0: a geometry below the reference minimum
            "lowest_where": f"{sc.label} at {at:.3g} {sc.unit}",
            "worst": None if worst is None else {
                "depth_eV": worst["depth"], "e_minus_ref_eV": worst["e_rel"],
                "where": f"{worst['label']} at {worst['value']:.3g} {worst['unit']}",
                "flag": worst["flag"]},
        }
    kinds = sorted({s.kind for s in rep.scans})
    return {
        "description": f"{len(rep.scans)} rigid scans ({', '.join(kinds)}) of "
                       f"{rep.formula} at the reference geometry; a point is flagged when it "
                       f"falls below the reference energy or {rep.threshold:g} eV below the "
                       "running maximum along the scan (ffpt scan)",
        "per_model": per_model,
        "pngs": {Path(p).stem: str(p) for k, p in files.items() if str(p).endswith(".png")},
        "table": str(files["csv"]),
    }


def _scan_reference(sc: dict):
    """The reference geometry of the scans: a structure file or the teacher's minimum."""
    from ffpt.analysis.scan import reference_atoms

    if sc["structure"]:
        return reference_atoms(structure=sc["structure"])
    spec = sc["teacher"] if not sc["species"] else f"{sc['teacher']}:{sc['species']}"
    return reference_atoms(species=spec)


def run_survival(pipe) -> dict:
    """Langevin MD of every deployed variant: seeds x temperatures, Kaplan-Meier summary."""
    from ffpt.analysis.stability import DEFAULT_CHUNK_STEPS, run_stability

    st = pipe.cfg["stability"]
    models = {v: pipe.results["deploy"][v]["artifact"] for v in pipe.variants}
    workdir = pipe.run / "stability"
    start = pipe.results["ft_structures"]["md_start"]
    if st["start_from_scan"]:  # the scan's reference minimum (e.g. HO2), not a data frame
        from ase.io import write

        start = str(workdir / "start.extxyz")
        workdir.mkdir(parents=True, exist_ok=True)
        write(start, _scan_reference(pipe.cfg["scan"]))
    summary = run_stability(
        models, start, temperatures=st["temperatures"],
        seeds=int(st["seeds"]), steps=int(st["steps"]), timestep_fs=float(st["timestep"]),
        friction_ps=float(st["friction"]), system=st["system"], workdir=workdir,
        jobs=int(st["jobs"]), dump_every=int(st["dump_every"]), overwrite=True,
        chunk_steps=int(st.get("chunk_steps") or DEFAULT_CHUNK_STEPS),
        progress=pipe.progress, echo=pipe.echo,
    )
    duration_ps = int(st["steps"]) * float(st["timestep"]) / 1000.0
    out = {}
    for m, per_t in summary["results"].items():
        for t, c in per_t.items():
            out.setdefault(m, {})[t] = {
                "n_runs": c["runs"], "n_survived": c["runs"] - c["failed"],
                "fraction_surviving": c["fraction_surviving"],
                "median_ttf_ps": c["median_time_to_failure_ps"], "duration_ps": duration_ps,
                "failure_reasons": c["failure_reasons"],
                **({"composition_changed": c["composition_changed"]}
                   if "composition_changed" in c else {}),
            }
    rdf_frames = {}  # per variant: (dump, last good step) of each run at the lowest T
    if st["system"] == "water":
        t0 = f"{min(float(t) for t in st['temperatures']):g}"
        for v in pipe.variants:
            runs = []
            for rec in sorted((workdir / "runs" / v / f"T{t0}").glob("seed*/record.json")):
                r = json.loads(rec.read_text())
                end = r["failure_step"] if r["failed"] else r["steps_completed"]
                runs.append([str(rec.parent / "dump.lammpstrj"), int(end or 0)])
            rdf_frames[v] = runs
    return {
        "criterion": f"{summary['criteria']}",
        "summary": out,
        "pngs": {"survival": str(workdir / "survival.png")},
        "markdown": str(workdir / "summary.md"),
        "rdf_frames": rdf_frames,
    }
