"""Report of an FFPT-FT comparison: the summary table (markdown + JSON), a verdict per
fine-tuned variant against scratch, and the PNG figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ffpt.data.frames import FrameSet, atomic_write


def _fmt(x, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def survival_cell(stab: dict, model: str, temperature: float) -> str:
    """``"3/4 (median > 1.0 ps)"``: runs surviving and the Kaplan-Meier median time to failure."""
    s = stab["summary"].get(model, {}).get(_tkey(temperature))
    if not s:
        return "-"
    med = s.get("median_ttf_ps")
    med_text = f"> {s['duration_ps']:g} ps" if med is None else f"{med:.2f} ps"
    return f"{s['n_survived']}/{s['n_runs']} (median {med_text})"


def _tkey(t: float) -> str:
    return f"{float(t):g}"


def table_rows(pipe) -> list[dict]:
    r = pipe.results
    ev, scan, stab = r["evaluate"], r["scan"], r["stability"]
    temps = pipe.cfg["stability"]["temperatures"]
    rows = []

    def scan_cell(model: str) -> str:
        s = scan["per_model"].get(model)
        if not s:
            return "-"
        return f"{s['n_flagged']}/{s['n_scans']}"

    def lowest_cell(model: str) -> str:
        s = scan["per_model"].get(model)
        if not s or "lowest_e_minus_ref_eV" not in s:
            return "-"
        return f"{s['lowest_e_minus_ref_eV']:+.2f} ({s['lowest_where']})"

    def row(label, model, key, test_set, md):
        e = ev[key]
        tr = r[f"train_{model}"]
        out = {
            "model": label,
            "test set": test_set,
            "E MAE (meV/atom)": e.get("energy_mae_meV_atom") if model != "pt" or
            key == "pt_on_pt_test" else None,
            "F MAE (meV/A)": e["forces_mae_meV_A"],
            "F MAE on PT test, FF labels (meV/A)": (ev.get(f"{model}_on_pt_test") or {}).get(
                "forces_mae_meV_A") if md else ev[f"{model}_on_pt_test"]["forces_mae_meV_A"],
            "epochs": tr["epochs"],
            "flagged scans": scan_cell(model),
            "lowest scan E - E_ref (eV)": lowest_cell(model),
        }
        for t in temps:
            out[f"MD {t:g} K survived"] = survival_cell(stab, model, t) if md else "-"
        return out

    teacher = [m for m in scan["per_model"] if m.startswith("teacher")]
    if teacher:
        t_row = {k: "-" for k in row("x", "pt", "pt_on_pt_test", "", False)}
        t_row.update({"model": teacher[0], "flagged scans": scan_cell(teacher[0]),
                      "lowest scan E - E_ref (eV)": lowest_cell(teacher[0])})
        rows.append(t_row)
    rows.append(row("PT (force field only)", "pt", "pt_on_pt_test", "PT test", False))
    for n in getattr(pipe, "extra_pts", []):  # more PT models (pt_extra), same PT test
        if f"pt_{n}_on_pt_test" in ev:
            rows.append(row(f"PT {n} (force field only)", f"pt_{n}", f"pt_{n}_on_pt_test",
                            "PT test", False))
    rows.append(row("PT, no fine-tuning", "pt", "pt_on_ft_test", "FT test", False))
    for v in pipe.variants:
        tr = r[f"train_{v}"]
        strategy = tr["training"].get("ft_strategy", "plain") if tr["mode"] == "finetune" \
            else "scratch"
        label = f"{v} ({'PT -> FT, ' + strategy if tr['mode'] == 'finetune' else 'FT data only'})"
        rows.append(row(label, v, f"{v}_on_ft_test", "FT test", True))
    return rows


def markdown_table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row[k]) for k in keys) + " |")
    return "\n".join(lines)


def scratch_pairs(modes: dict[str, str], budgets: dict[str, tuple]) -> list[tuple[str, str]]:
    """(fine-tuned variant, its scratch baseline) pairs of variants in order, from each one's
    mode (``scratch`` or not) and training budget: the baseline is the scratch variant of the
    same budget, else the first scratch variant; none without a scratch variant."""
    scratch = [v for v in modes if modes[v] == "scratch"]
    if not scratch:
        return []
    return [(v, next((s for s in scratch if budgets.get(s) == budgets.get(v)), scratch[0]))
            for v in modes if modes[v] != "scratch"]


def train_budget(train_result: dict) -> tuple:
    """(max_epochs, max_steps) of a training stage's result."""
    t = train_result.get("training") or {}
    return t.get("max_epochs"), t.get("max_steps")


def ft_pairs(pipe) -> list[tuple[str, str]]:
    """:func:`scratch_pairs` of a pipeline's variants: each fine-tuned variant against the
    scratch variant trained for the same budget (max_epochs and max_steps)."""
    r = pipe.results
    return scratch_pairs({v: r[f"train_{v}"]["mode"] for v in pipe.variants},
                         {v: train_budget(r[f"train_{v}"]) for v in pipe.variants})


def verdicts(pipe) -> list[str]:
    """One measured sentence per fine-tuned variant: survival and force error against its
    scratch baseline (:func:`ft_pairs`)."""
    r = pipe.results
    pairs = ft_pairs(pipe)
    if not pairs:
        return ["No scratch variant: nothing to compare against."]
    stab = r["stability"]["summary"]
    out = []
    for v, b in pairs:
        parts = []
        for t in pipe.cfg["stability"]["temperatures"]:
            sv, sb = stab.get(v, {}).get(_tkey(t)), stab.get(b, {}).get(_tkey(t))
            if sv and sb:
                fv, fb = sv["n_survived"] / sv["n_runs"], sb["n_survived"] / sb["n_runs"]
                word = "more" if fv > fb else "fewer" if fv < fb else "as many"
                parts.append(f"at {t:g} K {sv['n_survived']}/{sv['n_runs']} runs survive vs "
                             f"{sb['n_survived']}/{sb['n_runs']} for {b} ({word})")
        fe = r["evaluate"][f"{v}_on_ft_test"]["forces_mae_meV_A"]
        fb = r["evaluate"][f"{b}_on_ft_test"]["forces_mae_meV_A"]
        hv = r["scan"]["per_model"].get(v, {}).get("n_flagged")
        hb = r["scan"]["per_model"].get(b, {}).get("n_flagged")
        parts.append(f"force MAE {fe:.0f} vs {fb:.0f} meV/A")
        if hv is not None and hb is not None:
            lv = r["scan"]["per_model"][v].get("lowest_e_minus_ref_eV")
            lb = r["scan"]["per_model"][b].get("lowest_e_minus_ref_eV")
            parts.append(f"{hv} vs {hb} flagged scans, lowest scan energy {lv:+.2f} vs "
                         f"{lb:+.2f} eV relative to the reference minimum")
        out.append(f"**{v}** vs {b}: " + "; ".join(parts) + ".")
    return out


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(logs: dict[str, str], png: Path) -> Path:
    """Validation loss and force RMSE against epoch for each training run."""
    from ffpt.train.plots import plot_learning_curves as plot

    return plot(logs, png, title="learning curves",
                metrics=(("loss", "validation loss"), ("forces_rmse", "force RMSE (eV/Å)")))


def plot_rdfs(curves: dict[str, tuple[np.ndarray, np.ndarray]], png: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, (r, g) in curves.items():
        ax.plot(r, g, label=name)
    ax.axhline(1.0, color="0.7", lw=0.8)
    ax.set(xlabel="r (Å)", ylabel="g_OO(r)", title="O-O radial distribution function")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _water_rdfs(pipe, png: Path) -> Path | None:
    """O-O g(r) of the classical reference liquid and of every variant's MD at the lowest
    temperature: all seeds pooled, frames before each run's failure, first 20 % dropped."""
    from ase.data import atomic_numbers
    from ase.io import read

    from ffpt.analysis.rdf import rdf
    from ffpt.lammps.io import read_dump_frames

    curves = {}
    ref = pipe.run / "data" / "ft_structures.npz"
    if ref.exists():
        curves["TIP3P (FT sampler)"] = rdf(list(FrameSet.load(ref).iter_atoms()), n_bins=80)
    start = read(pipe.results["ft_structures"]["md_start"])
    types = sorted(set(start.get_chemical_symbols()), key=lambda s: atomic_numbers[s])
    z_of_type = np.array([atomic_numbers[s] for s in types])
    for v, runs in pipe.results["stability"].get("rdf_frames", {}).items():
        frames = []
        for dump, end in runs:
            if Path(dump).exists():
                good = [f for f in read_dump_frames(dump) if f.step < end]
                frames += good[len(good) // 5:]
        if frames:
            curves[f"{v} (LAMMPS)"] = rdf(frames, z_of_type, 8, 8, n_bins=80)
    if len(curves) < 2:
        return None
    return plot_rdfs(curves, png)


def _load_average() -> str:
    from ffpt.provenance import load_average

    return load_average()


def write_report(pipe) -> dict:
    """Write ``report/report.md``, ``report/summary.json`` and the PNGs; return their paths."""
    r = pipe.results
    cfg = pipe.cfg
    out = pipe.run / "report"
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(pipe)
    pngs = {"learning_curves": plot_learning_curves(
        {m: r[f"train_{m}"]["log_csv"] for m in ["pt", *pipe.variants]},
        out / "learning_curves.png")}
    for key in ("scan", "stability"):
        for name, src in (r[key].get("pngs") or {}).items():
            dst = out / Path(src).name
            if Path(src).exists() and Path(src).resolve() != dst.resolve():
                dst.write_bytes(Path(src).read_bytes())
            pngs[name] = dst
    if cfg["stability"]["system"] == "water":
        rdf_png = _water_rdfs(pipe, out / "rdf_oo.png")
        if rdf_png:
            pngs["rdf_oo"] = rdf_png
    verdict = verdicts(pipe)
    summary = {
        "table": rows,
        "verdicts": verdict,
        "test_errors": r["evaluate"],
        "scan": r["scan"]["per_model"],
        "stability": r["stability"]["summary"],
        "training": {m: {k: r[f"train_{m}"][k] for k in ("epochs", "metrics", "training")}
                     for m in ["pt", *pipe.variants]},
        "stage_seconds": dict(pipe.times),
        "load_average_at_report": _load_average(),
        "config": cfg,
        "pngs": {k: str(v) for k, v in pngs.items()},
    }
    atomic_write(out / "summary.json",
                 lambda f: f.write(json.dumps(summary, indent=1, default=str).encode()))

    lab, st = r["ft_labels"], cfg["stability"]
    budgets = []
    for m in ["pt", *pipe.variants]:
        met = r[f"train_{m}"]["metrics"]
        budgets.append(f"{m} {r[f'train_{m}']['epochs']} epochs"
                       f" (stop: {met.get('stop_reason', '?')})")
    text = [
        f"# ffpt report: FFPT-FT against scratch ({pipe.run.name})",
        "",
        f"- PT data: {r['pt_data']['source']}; {r['pt_data']['n_train']} train / "
        f"{r['pt_data']['n_test']} test frames" + (f"; {r['pt_data']['filter']}"
                                                   if r["pt_data"].get("filter") else "")
        + (f"; the PT test column: {r['evaluate']['pt_on_pt_test']['n_frames']} PT test frames "
           "held out from every PT model" if getattr(pipe, "extra_pts", None) else ""),
        f"- FT data: {r['ft_structures']['kind']}, labels {lab['method']}; "
        f"{lab['n_train']} train / {lab['n_test']} test frames",
        f"- model: {cfg['model']}",
        f"- training budgets (epochs, not minutes): {'; '.join(budgets)}",
        f"- MD: LAMMPS `pair_style ffpt` ({st['deploy_dtype']}), Langevin {st['friction']} ps^-1,"
        f" {st['timestep']} fs, {st['steps']} steps ({st['steps'] * st['timestep'] / 1000:g} ps)"
        f" x {st['seeds']} seeds x {', '.join(f'{t:g}' for t in st['temperatures'])} K, same "
        f"start structure ({r['ft_structures']['n_atoms_start']} atoms) for every model",
        f"- failure criterion ({st['system']}): {r['stability'].get('criterion', '')}",
        f"- hole scans: {r['scan'].get('description', '')}",
        "",
        markdown_table(rows),
        "",
        "Energies per atom; the PT model's energies on FT frames are not comparable (force-field "
        "zero) and are left out. MD cells: runs that survived / runs, and the Kaplan-Meier "
        "median time to failure.",
        "",
        "## Verdict (as measured)",
        "",
        *[f"- {v}" for v in verdict],
        "",
        "## Figures",
        "",
        *[f"![{k}]({Path(v).name})" for k, v in pngs.items()],
        "",
        "Stage wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in pipe.times.items())
        + f"; load average at the report: {_load_average()}.",
    ]
    (out / "report.md").write_text("\n".join(text) + "\n")
    return {"report": str(out / "report.md"), "summary": str(out / "summary.json"),
            "pngs": {k: str(v) for k, v in pngs.items()}}
