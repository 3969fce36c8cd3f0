"""Demo report: test errors, the summary table (markdown + JSON) and the PNG figures."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from ffpt.data.frames import FrameSet, atomic_write

MODEL_KEYS = ("pt", "ft", "scratch")


def test_errors(checkpoint: str, frames: FrameSet, energies: bool = True,
                max_frames: int | None = None) -> dict:
    """Energy MAE (meV/atom) and force MAE/RMSE (meV/A) of a checkpoint on labelled frames
    (float64 evaluation through the ASE calculator)."""
    from ffpt.calculator import FFPTCalculator

    if max_frames is not None and frames.n_frames > max_frames:
        frames = frames.subset(np.arange(max_frames))
    calc = FFPTCalculator(checkpoint, dtype="float64")
    de, df = [], []
    for i in range(frames.n_frames):
        atoms = frames.to_atoms(i)
        ref_f = atoms.get_forces().copy()
        ref_e = atoms.get_potential_energy()
        atoms.calc = calc
        if energies:
            de.append((atoms.get_potential_energy() - ref_e) / len(atoms))
        df.append(atoms.get_forces() - ref_f)
    df = np.concatenate(df)
    out = {
        "n_frames": frames.n_frames,
        "forces_mae_meV_A": 1000 * float(np.abs(df).mean()),
        "forces_rmse_meV_A": 1000 * float(np.sqrt((df**2).mean())),
    }
    if energies:
        out["energy_mae_meV_atom"] = 1000 * float(np.abs(de).mean())
    return out


def _fmt(x, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def table_rows(pipe) -> list[dict]:
    r = pipe.results
    ev = r["evaluate"]
    rows = []
    spec = [
        ("PT (force field only)", "pt", "pt_on_pt_test", "PT test (TIP3P monomers)", None),
        ("PT, no fine-tuning", "pt", "pt_on_ft_test", "FT test (liquid)", None),
        ("FT (PT + fine-tune)", "ft", "ft_on_ft_test", "FT test (liquid)", "md_ft"),
        ("scratch (FT data only)", "scratch", "scratch_on_ft_test", "FT test (liquid)",
         "md_scratch"),
    ]
    for label, model, key, test_set, md_key in spec:
        e = ev[key]
        row = {
            "model": label,
            "test set": test_set,
            "E MAE (meV/atom)": e.get("energy_mae_meV_atom"),
            "F MAE (meV/A)": e["forces_mae_meV_A"],
            "F RMSE (meV/A)": e["forces_rmse_meV_A"],
            "epochs": r[f"train_{model}"]["epochs"],
        }
        if md_key:
            m = r[md_key]
            row["MD steps completed"] = f"{m['steps_completed']}/{m['steps_requested']}"
            row["MD failure step"] = m["failure_step"] if m["failed"] else "none (stable)"
        else:
            row["MD steps completed"] = "-"
            row["MD failure step"] = "-"
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [_fmt(row[k]) if isinstance(row[k], float) or row[k] is None else str(row[k])
                 for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(logs: dict[str, str], png: Path) -> Path:
    """Validation loss and force RMSE against epoch for each training run."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, path in logs.items():
        with open(path) as f:
            hist = list(csv.DictReader(f))
        if not hist:
            continue
        ep = [float(h["epoch"]) for h in hist]
        for a, key in ((ax[0], "val_loss"), (ax[1], "val_forces_rmse")):
            k = key if key in hist[0] else key.replace("val_", "train_")
            if k in hist[0]:
                a.semilogy(ep, [float(h[k]) for h in hist], label=f"{name} ({k})")
    ax[0].set(xlabel="epoch", ylabel="loss", title="learning curves")
    ax[1].set(xlabel="epoch", ylabel="force RMSE (eV/Å)", title="validation force RMSE")
    for a in ax:
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def plot_rdfs(curves: dict[str, tuple[np.ndarray, np.ndarray]], png: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, (r, g) in curves.items():
        ax.plot(r, g, label=name)
    ax.axhline(1.0, color="0.7", lw=0.8)
    ax.set(xlabel="r (Å)", ylabel="g_OO(r)", title="O-O radial distribution function")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _rdf_of_run(md: dict, n_bins: int = 80):
    """O-O g(r) over the stable part of a LAMMPS run (frames before the failure step)."""
    from ase.data import atomic_numbers

    from ffpt.md.analysis import rdf, read_lammps_dump

    frames = read_lammps_dump(md["dump"])
    if md["failed"] and md["failure_step"] is not None:
        frames = [f for f in frames if f.step < md["failure_step"]]
    frames = frames[len(frames) // 5:] or frames  # drop the first 20 % (equilibration)
    if not frames:
        return None
    z = np.array([atomic_numbers[s] for s in md["type_elements"]])
    return rdf(frames, z, 8, 8, n_bins=n_bins)


def write_report(pipe) -> dict:
    """Write ``report/report.md``, ``report/summary.json`` and the PNGs; return their paths."""
    from ffpt.md.analysis import rdf

    r = pipe.results
    out = pipe.run / "report"
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(pipe)
    pngs = {}
    pngs["learning_curves"] = plot_learning_curves(
        {m: r[f"train_{m}"]["log_csv"] for m in ("pt", "ft", "scratch")},
        out / "learning_curves.png")

    curves = {}
    ft_path = pipe.run / "data" / "ft_structures.npz"
    if ft_path.exists():  # the classical sampler's liquid, as a reference
        ref = FrameSet.load(ft_path)
        curves["TIP3P (FT sampler)"] = rdf(list(ref.iter_atoms()), n_bins=80)
    rdf_notes = {}
    for m in ("ft", "scratch"):
        res = _rdf_of_run(r[f"md_{m}"])
        if res is None:
            rdf_notes[m] = "no frames before the failure"
        else:
            curves[f"{m.upper()} model (LAMMPS)"] = res
    pngs["rdf_oo"] = plot_rdfs(curves, out / "rdf_oo.png")

    from ffpt.calculator import FFPTCalculator
    from ffpt.sampling.scan import water_scans
    from ffpt.teachers import get_teacher

    calcs = {"TIP3P-flex (PT teacher)": get_teacher("tip3p-flex").as_calculator()}
    if pipe.results["ft_labels"]["method"].startswith("xtb"):
        from tblite.ase import TBLite

        calcs["GFN2-xTB (FT labels)"] = TBLite(method="GFN2-xTB", verbosity=0)
    for m in ("pt", "ft", "scratch"):
        calcs[f"{m.upper()} model"] = FFPTCalculator(r[f"train_{m}"]["best_checkpoint"])
    scans = water_scans(calcs, out / "water_scans.png",
                        title="water monomer: O-H stretch and H-O-H bend")
    pngs["water_scans"] = out / "water_scans.png"

    md = {m: r[f"md_{m}"] for m in ("ft", "scratch")}
    summary = {
        "table": rows,
        "md": md,
        "test_errors": r["evaluate"],
        "stage_seconds": dict(pipe.times),
        "config": pipe.cfg,
        "scan_min_energy_eV": {k: float(np.min(v - scans["reference_energy"][k]))
                               for k, v in scans["angle"].items()},
        "pngs": {k: str(v) for k, v in pngs.items()},
    }
    atomic_write(out / "summary.json",
                 lambda f: f.write(json.dumps(summary, indent=1, default=str).encode()))

    lab = r["ft_labels"]
    text = [
        "# ffpt demo report: FFPT-FT on water",
        "",
        f"- PT data: {r['pt_data']['source']}; {r['pt_data']['n_train']} train / "
        f"{r['pt_data']['n_test']} test frames",
        f"- FT data: {r['ft_structures']['kind']}, labelled by {lab['method']}; "
        f"{lab['n_train']} train / {lab['n_test']} test frames",
        f"- model: {pipe.cfg['model']}",
        f"- MD: LAMMPS `pair_style ffpt`, Langevin NVT {pipe.cfg['md']['temperature']} K, "
        f"{pipe.cfg['md']['timestep']} fs, {pipe.cfg['md']['steps']} steps, same start box "
        f"({r['ft_structures']['n_atoms_start']} atoms) for both models",
        f"- stability criterion: {md['ft']['criterion']}",
        "",
        markdown_table(rows),
        "",
        "Energy errors are per atom; PT-no-FT energies are not comparable (force-field zero).",
        "Training budgets (max minutes): " + ", ".join(
            f"{m.upper()} {pipe.cfg['train'][m]['max_time_min']} (stopped: "
            f"{r[f'train_{m}']['metrics'].get('stop_reason', '?')})" for m in MODEL_KEYS)
        + ". Demo-sized runs are not converged; the paper trains each to convergence.",
        "",
    ]
    for m in ("ft", "scratch"):
        d = md[m]
        status = f"failed at step {d['failure_step']}: {d['reason']}" if d["failed"] else "stable"
        text.append(
            f"- {m.upper()} MD: {d['steps_completed']}/{d['steps_requested']} steps, {status}"
            f", mean T {_fmt(d['mean_temperature_K'])} K, min distance "
            f"{_fmt(d['min_distance'], 2)} A, {_fmt(d['ns_per_day'], 3)} ns/day"
            + (f" ({rdf_notes[m]})" if m in rdf_notes else "")
        )
    text += ["", "## Figures", ""]
    text += [f"![{k}]({Path(v).name})" for k, v in pngs.items()]
    text += ["", "Stage wall times (s): " + ", ".join(
        f"{k} {v:.0f}" for k, v in pipe.times.items())]
    (out / "report.md").write_text("\n".join(text) + "\n")
    return {"report": str(out / "report.md"), "summary": str(out / "summary.json"),
            "pngs": {k: str(v) for k, v in pngs.items()}}
