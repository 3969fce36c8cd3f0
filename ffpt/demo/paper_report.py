"""Results folder of a paper experiment (``paper.results_dir``): README.md with the machine,
date, wall time, load, the pipeline's table, the extra stages' tables and one measured
verdict per claim of the paper; the PNGs and ``paper_summary.json`` beside it.

``python -m ffpt.demo.paper_report --config FILE [--preset P]`` writes ``PARTIAL.md`` there from
whatever stages of an unfinished run exist (numbers so far, stages left, command to continue).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from ffpt.config import expand_path
from ffpt.data.frames import atomic_write
from ffpt.demo.report import _fmt, _load_average, ft_pairs, scratch_pairs, survival_cell

CLAIMS = {
    "aspirin": "Fig. 2: GAFF-2.11 PT + CCSD FT gives stable 500 K MD where scratch on the same "
               "frames fails, at every training-set size, at a comparable force error",
    "water": "Fig. 3: flexible-TIP3P monomer PT + liquid FT keeps water stable at 300 K with a "
             "liquid structure (O-O RDF) and diffusion close to the reference",
    "combustion": "Fig. 4: qforce PT + FT on 10 % of the 19 channels gives low per-reaction "
                  "errors and well-behaved metadynamics (no O2 dissociation artefacts)",
}


def machine() -> dict:
    from ffpt.provenance import machine_info

    return machine_info()


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]]


def survival_verdicts(pipe, stability: dict | None = None, label: str = "") -> list[str]:
    """One line per FT variant and temperature: survival against scratch. ``stability``: a
    stability result other than this run's (e.g. the ML round's), ``label`` its prefix."""
    stab = stability or pipe.results["stability"]
    st = stab["summary"]
    out = []
    for t in pipe.cfg["stability"]["temperatures"]:
        key = f"{float(t):g}"
        for v, base in ft_pairs(pipe):
            sv, sb = st.get(v, {}).get(key), st.get(base, {}).get(key)
            if not (sv and sb):
                continue
            fv, fb = sv["fraction_surviving"], sb["fraction_surviving"]
            word = "SUPPORTED" if fv > fb else "NOT SUPPORTED (tie)" if fv == fb else \
                "CONTRADICTED"
            out.append(f"{label}MD survival at {key} K, {v} vs {base}: "
                       f"{survival_cell(stab, v, t)} vs {survival_cell(stab, base, t)} -> {word}")
    return out


def error_verdicts(pipe) -> list[str]:
    ev = pipe.results["evaluate"]
    out = []
    for v, base in ft_pairs(pipe):
        fv, fb = (ev[f"{m}_on_ft_test"]["forces_mae_meV_A"] for m in (v, base))
        word = "lower" if fv < fb else "higher"
        ok = "SUPPORTED" if fv <= 1.2 * fb else "NOT SUPPORTED"
        out.append(f"held-out force MAE, {v} vs {base}: {fv:.1f} vs {fb:.1f} meV/Å ({word}; "
                   f"'comparable' = within 20 % or lower) -> {ok}")
    return out


def failure_scan_section(table: str, spec: dict, outdir: Path) -> list[str]:
    """``paper.failure_scans`` ({scans: {label: coordinate}, note}): the hole scans along a
    failure mode seen in the MD, as a table (E - E_ref at that coordinate, interpolated, and
    the lowest E - E_ref along the scan, per model) and ``failure_scans.png``."""
    from ffpt.analysis.scan_report import plot_named_scans, read_scan_csv

    scans = dict(spec["scans"])
    png = plot_named_scans(table, list(scans), outdir / "failure_scans.png",
                           title="rigid scans along the MD failure mode")
    rows = read_scan_csv(table)
    models = list(dict.fromkeys(m for m, _ in rows))
    head, body = ["model"], [[m] for m in models]
    for lb, at in scans.items():
        unit = next(d["unit"] for (_, a), d in rows.items() if a == lb)
        head += [f"{lb} at {at:g} {unit}", f"{lb} lowest"]
        for row, m in zip(body, models, strict=True):
            d = rows.get((m, lb))
            row += ["-", "-"] if d is None else [
                f"{np.interp(at, d['x'], d['rel']):+.2f}", f"{d['rel'].min():+.2f}"]
    return ["## Scans along the MD failure mode", "", spec.get("note", ""), "",
            "E − E_ref (eV) along rigid scans from the scan reference geometry:", "",
            *_table(head, body), "", f"![failure scans]({png.name})", ""]


def extra_sections(pipe) -> tuple[list[str], list[str]]:
    """Markdown of the extra stages and their verdict lines."""
    r, text, ver = pipe.results, [], []
    if "size_study" in r:
        pts = r["size_study"]["points"]
        ns = sorted(pts, key=int)
        vs = sorted({v for p in pts.values() for v in p["variants"]})
        rows = []
        for n in ns:
            for v in vs:
                p = pts[n]["variants"].get(v)
                if p:
                    rows.append([n, v, p["forces_mae_meV_A"], f"{sum(not f for f in p['failed'])}"
                                 f"/{len(p['failed'])}", p["mean_time_ps"], p["sem_time_ps"]])
        t = pts[ns[-1]]
        text += [f"## Stability against training-set size (Fig. 2d; {t['temperature_K']:g} K, "
                 f"{t['duration_ps']:g} ps per run)", "",
                 *_table(["FT frames", "model", "F MAE (meV/Å)", "survived",
                          "mean time (ps)", "± sem"], rows), "",
                 "![survival vs size](survival_vs_size.png)", ""]
        # the variants of every size (the main run may have more: paper.size_study.variants)
        common = set.intersection(*(set(pts[n]["variants"]) for n in ns)) if ns else set()
        for n in ns:
            vv = {v: x for v, x in pts[n]["variants"].items() if v in common}
            # each FT variant against the scratch variant of its own budget (ft_pairs)
            for v, base in scratch_pairs({v: x["mode"] for v, x in vv.items()},
                                         {v: tuple(x.get("budget") or ()) for v, x in vv.items()}):
                a, b = vv[v]["fraction_surviving"], vv[base]["fraction_surviving"]
                if a is None or b is None:
                    continue
                ver.append(f"size {n}: {v} survives {a:.0%} vs {base} {b:.0%} -> "
                           f"{'SUPPORTED' if a > b else 'NOT SUPPORTED'}")
    fs = pipe.cfg["paper"].get("failure_scans")
    if fs and "scan" in r:
        text += failure_scan_section(r["scan"]["table"], fs, pipe.run / "report")
    if "extra_tests" in r:
        for name, t in r["extra_tests"].items():
            rows = [[m, e["forces_mae_meV_A"], e["forces_rmse_meV_A"]]
                    for m, e in t["errors"].items()]
            text += [f"## Extra test set: {name} ({t['n_frames']} frames) {t['note']}", "",
                     *_table(["model", "F MAE (meV/Å)", "F RMSE (meV/Å)"], rows), ""]
    if "per_reaction" in r:
        per = r["per_reaction"]["per_reaction"]
        vs = pipe.variants
        rows = [[rxn, per[rxn][vs[0]]["n_frames"],
                 *[per[rxn][v]["forces_mae_meV_A"] for v in vs],
                 *[per[rxn][v]["energy_mae_meV_atom"] for v in vs]] for rxn in sorted(per)]
        text += ["## Test MAE per reaction (held-out frames of each channel)", "",
                 *_table(["rxn", "frames", *[f"F MAE {v} (meV/Å)" for v in vs],
                          *[f"E MAE {v} (meV/atom)" for v in vs]], rows), ""]
        mod = r["per_reaction"].get("moderate") or {}
        if mod:
            cap = r["per_reaction"]["moderate_max_force_eV_A"]
            rows = [[rxn, mod[rxn][vs[0]]["n_frames"],
                     *[mod[rxn][v]["forces_mae_meV_A"] for v in vs]] for rxn in sorted(mod)]
            text += [f"Without close contacts: the same frames whose largest reference force is "
                     f"at most {cap:g} eV/Å (a few frames of up to 1,000 eV/Å can decide a "
                     "reaction's MAE):", "",
                     *_table(["rxn", "frames", *[f"F MAE {v} (meV/Å)" for v in vs]], rows), ""]
        for v, base in ft_pairs(pipe):
            for name, table in (("", per), (" without close contacts", mod)):
                if not table:
                    continue
                wins = sum(table[x][v]["forces_mae_meV_A"] < table[x][base]["forces_mae_meV_A"]
                           for x in table)
                ok = "SUPPORTED" if wins > len(table) / 2 else "NOT SUPPORTED"
                ver.append(f"per-reaction force MAE{name}: {v} lower than {base} on "
                           f"{wins}/{len(table)} reactions -> {ok}")
    if "irc" in r:
        ir = r["irc"]
        rows = [[m, ir["mae_rel_kJ_mol"][m], ir["barrier_kJ_mol"][m]] for m in ir["mae_rel_kJ_mol"]]
        text += [f"## Reaction {ir['reaction']} IRC ({ir['n_points']} points; rigid cuts: the "
                 "hole scans above)", "",
                 f"Reference highest point: {ir['barrier_kJ_mol']['reference']:.1f} kJ/mol "
                 "above the IRC minimum.", "",
                 *_table(["model", "MAE of E - E_min (kJ/mol)", "highest point (kJ/mol)"], rows),
                 "", f"![irc]({Path(ir['png']).name})", ""]
        if ir.get("dissociation"):
            rows_d = ir["dissociation"]
            models = [k for k in rows_d[0] if k not in ("d_A", "n", "reference")]
            text += ["Leaving H: median E − E(IRC minimum) (kJ/mol) of the reaction's AIMD "
                     "frames by the H's distance to its nearest O; in brackets, model − "
                     "reference. Too low = the H is bound too weakly; rising with the distance "
                     "= a free H is pulled back.", "",
                     *_table(["d(H–O) (Å)", "frames", "reference", *models],
                             [[f"{a:g}–{b:g}", x["n"], x["reference"],
                               *[f"{x[m]:.1f} ({x[m] - x['reference']:+.1f})" for m in models]]
                              for x in rows_d for a, b in [x["d_A"]]]), ""]
    if "msd" in r:
        m = r["msd"]
        rows = [[v, None if p["D_cm2_s"] is None else p["D_cm2_s"] * 1e5,
                 None if p["D_err_cm2_s"] is None else p["D_err_cm2_s"] * 1e5, p["n_runs"]]
                for v, p in m["per_variant"].items()]
        text += [f"## Diffusion (O atoms, {m['temperature_K']:g} K; mean ± s.e. over surviving "
                 f"seeds; experiment {m['experiment_D_cm2_s'] * 1e5:.1f}e-5 cm²/s)", "",
                 *_table(["model", "D (1e-5 cm²/s)", "± s.e.", "runs"], rows), "",
                 "![msd](msd.png)", ""]
        rd = m.get("rdf") or {}
        if rd:
            text += [f"## O-O RDF ({m['temperature_K']:g} K) against the reference liquid "
                     "(classical flexible TIP3P, the FT sampler)", "",
                     *_table(["model", "first peak (Å)", "peak g", "mean |g - g_ref|, 2-6 Å",
                              "MD behind it (ps, all seeds)"],
                             [[k, f"{x['peak_r_A']:.2f}", f"{x['peak_g']:.2f}",
                               f"{x['mean_abs_diff_2_6A']:.3f}",
                               "-" if x.get("md_ps") is None else f"{x['md_ps']:.1f}"]
                              for k, x in rd.items()]), "", "![rdf](rdf_oo.png)", ""]
            for v, base in ft_pairs(pipe):
                if v in rd and base in rd:
                    a, b = rd[v]["mean_abs_diff_2_6A"], rd[base]["mean_abs_diff_2_6A"]
                    word = "SUPPORTED" if a < 0.9 * b else "NOT SUPPORTED" + (
                        " (within 10 %)" if a < 1.1 * b else "")
                    ver.append(f"O-O RDF closer to the reference: {v} {a:.3f} vs {base} "
                               f"{b:.3f} mean |Δg| -> {word}")
        for v, p in m["per_variant"].items():
            ver.append(f"diffusion of {v}: " + ("no surviving run to measure it" if p["D_cm2_s"]
                       is None else f"{p['D_cm2_s'] * 1e5:.2f}"
                       f" ± {_fmt(None if p['D_err_cm2_s'] is None else p['D_err_cm2_s'] * 1e5, 2)}"
                       "e-5 cm²/s (reference level GFN2-xTB: compare with the experiment only "
                       "qualitatively)"))
    if "ml_round" in r:
        m = r["ml_round"]
        rows = []
        for v in pipe.variants:
            ev = m["evaluate"].get(f"{v}_on_ft_test", {})
            cells = [f"{c['n_survived']}/{c['n_runs']}" for c in m["stability"].get(v, {}).values()]
            rows.append([v, ev.get("forces_mae_meV_A"), ", ".join(cells)])
        ver += survival_verdicts(pipe, {"summary": m["stability"]}, "round 2 (ML-driven data), ")
        text += [f"## ML-driven round 2 ({m['n_new']} frames of {', '.join(m['models'])} MD "
                 f"labelled with {m['method']} + {m['n_round1']} classical; "
                 f"{m['n_train']} train / {m['n_test']} test; report `{m['report']}`)", "",
                 *_table(["model", "F MAE, round-2 test (meV/Å)", "MD survived"], rows), ""]
    if "metad" in r:
        from ffpt.demo.paper_combustion import MIN_VISIT_PS

        rows = []
        for rxn, per in r["metad"]["runs"].items():
            for mdl, x in per.items():
                st = x.get("state_fraction", {})
                rows.append([rxn, mdl, x.get("ps_simulated"),
                             None if x.get("T_mean_K") is None else
                             f"{x['T_mean_K']:.0f} ± {x.get('T_mean_se_K', float('nan')):.0f}",
                             x.get("T_mean_second_half_K"), x.get("T_held"),
                             ", ".join(f"{k} {v:.0%}" for k, v in list(st.items())[:4]),
                             None if x.get("O2_dissociated_fraction") is None else
                             f"{x['O2_dissociated_fraction']:.1%}",
                             x.get("fes_rms_change_last_slice_kJ_mol"),
                             _visits(x.get("state_timeline"))])
                if x.get("state_changes") is not None and x["state_changes"] < 2:
                    ver.append(f"rxn {rxn} {mdl}: {x['state_changes']} change(s) of product "
                               f"state in {x.get('ps_simulated', 0):.0f} ps "
                               f"({_visits(x['state_timeline'])}) -> NOT CONVERGED: no round "
                               "trip, so its state fractions and FES record one first passage, "
                               "not free energies to compare between models")
                if x.get("T_held") is not None:
                    ver.append(f"rxn {rxn} {mdl}: mean T {x['T_mean_K']:.0f} K -> temperature "
                               f"{'held at 300 K' if x['T_held'] else 'NOT held'}; O-O > 1.6 Å "
                               f"in {x.get('O2_dissociated_fraction', 0):.1%} of frames")
        basins, bver = _basin_rows(r["metad"]["runs"])
        rew = _reweighted_rows(r["metad"]["runs"])
        ver += bver
        s = r["metad"]["settings"]
        text += ["## Well-tempered metadynamics (LAMMPS, pair_style ffpt + fix plumed)", "",
                 f"Langevin damping {s['damp_ps']} ps (friction {1 / float(s['damp_ps']):g} "
                 f"ps⁻¹; paper 0.2 ps⁻¹), hills {s.get('height')} kJ/mol every {s.get('pace')} "
                 f"steps, {s.get('sigma', 0.05)} nm wide (paper 5 kJ/mol / 100 steps / 0.05), "
                 f"bias factor {s.get('biasfactor')}, "
                 f"{s.get('timestep_fs', 0.2)} fs, {s['steps']} steps per run; Langevin "
                 "'zero no', T over all 3N dof (docs/paper_experiments.md). T held: |mean - "
                 f"300 K| <= max({s.get('t_tolerance', 30.0)} K, 2 s.e.).", "",
                 *_table(["rxn", "model", "ps", "T mean ± s.e. (K)", "T 2nd half (K)", "T held",
                          "product states (fraction of frames)", "O-O > 1.6 Å (frames)",
                          "FES RMS change, last slice (kJ/mol)",
                          f"visits (≥ {s.get('min_visit_ps', MIN_VISIT_PS)} ps)"], rows), "",
                 *(["### Basin free energies from the final FES (kJ/mol, 300 K)", "",
                    "F of each product state's region of the (dOH, dOO) grid, "
                    "−kT ln Σ exp(−F/kT), relative to the lowest; in brackets the same from the "
                    "previous FES slice (its change is the convergence). Regions: a bond is "
                    "intact below 1.2 × the covalent radii (the product-state graph's cutoff) "
                    "and broken at ≥ 2 Å; stretched bonds between the two count in no basin. "
                    "A free energy, not the energy difference of the IRC or 'Leaving H' tables: "
                    "the free fragment's volume (up to the walls) lowers it, and in reaction 9 "
                    "the O–O wall at 2.5 Å bounds 'HO + O'.", "",
                    *_table(["rxn", "model", *BASINS], basins), ""] if basins else []),
                 *(["### Product-state free energies by reweighting (kJ/mol, 300 K)", "",
                    "F of each state of the product-state graph (both O–H distances, so HO2 "
                    "with the H on either O is HO2), −kT ln Σ exp(V/kT) over the dump frames "
                    "of the second half of the run, V = −(γ − 1)/γ F of the final FES at the "
                    "frame's CVs; relative to the lowest. In brackets the same from the last "
                    "quarter: the two differ where the run is not converged. '–': no frame "
                    "of that state in that part of the run.", "",
                    *_table(["rxn", "model", *BASINS], rew), ""] if rew else []),
                 *[f"![fes rxn{rxn} {mdl}](fes_rxn{rxn}_{mdl}.png)"
                   for rxn, per in r["metad"]["runs"].items() for mdl in per
                   if per[mdl].get("fes_png")], ""]
    return text, ver


BASINS = ("HO2", "H + O2", "HO + O", "H + 2 O")
#: kJ/mol: a basin free energy that moved more than this over the last FES slice is not
#: converged
BASIN_TOLERANCE = 10.0


def _basin_rows(runs: dict) -> tuple[list[list], list[str]]:
    """Rows of the basin free-energy table and a convergence verdict per run."""
    rows, ver = [], []
    for rxn, per in runs.items():
        for mdl, x in per.items():
            last = x.get("basin_F_kJ_mol")
            if not last:
                continue
            sl = list((x.get("basin_F_slices") or {}).values())
            prev = sl[-2] if len(sl) >= 2 else {}
            rows.append([rxn, mdl, *[None if b not in last else f"{last[b]:.0f}" + (
                f" ({prev[b]:.0f})" if b in prev else "") for b in BASINS]])
            moved = max((abs(last[b] - prev[b]) for b in last if b in prev), default=None)
            if moved is not None and "HO2" in last and "H + O2" in last:
                ok = moved <= BASIN_TOLERANCE
                ver.append(f"rxn {rxn} {mdl}: F(H + O2) − F(HO2) = "
                           f"{last['H + O2'] - last['HO2']:+.0f} kJ/mol; basins moved up to "
                           f"{moved:.0f} kJ/mol over the last slice -> "
                           f"{'converged' if ok else 'NOT CONVERGED'} "
                           f"(tolerance {BASIN_TOLERANCE:g} kJ/mol)")
    return rows, ver


def _reweighted_rows(runs: dict) -> list[list]:
    """Rows of the reweighted product-state free energies: second half (last quarter)."""
    rows = []
    for rxn, per in runs.items():
        for mdl, x in per.items():
            est = x.get("state_F_reweighted") or {}
            half, quarter = est.get("0.5"), est.get("0.75") or {}
            if half:
                rows.append([rxn, mdl, *[f"{_kj(half, b)} ({_kj(quarter, b)})" for b in BASINS]])
    return rows


def _kj(free_energies: dict, state: str) -> str:
    """A state's free energy in whole kJ/mol, '–' when the state was not visited."""
    return f"{free_energies[state]:.0f}" if state in free_energies else "–"


def _visits(timeline: list | None, most: int = 4) -> str | None:
    """``H + O2 0-24 ps, HO2 24-200 ps`` (the first ``most`` visits, then a count)."""
    if timeline is None:
        return None
    txt = [f"{st} {a:.0f}–{b:.0f} ps" for st, a, b in timeline[:most]]
    more = len(timeline) - most
    return ", ".join(txt) + (f" (+{more} more)" if more > 0 else "")


def _copy_pngs(pipe, dest: Path) -> None:
    for png in (pipe.run / "report").glob("*.png"):
        shutil.copyfile(png, dest / png.name)
    for rxn, per in (pipe.results.get("metad", {}).get("runs") or {}).items():
        for mdl, x in per.items():
            if x.get("fes_png") and Path(x["fes_png"]).exists():
                shutil.copyfile(x["fes_png"], dest / f"fes_rxn{rxn}_{mdl}.png")


#: a hand-written status block of README.md (between these lines) survives a rewrite
STATUS_START = "<!-- status: written by hand, kept when the report is rewritten -->"
STATUS_END = "<!-- /status -->"


def keep_status(readme: Path, text: list[str]) -> list[str]:
    """``text`` (the new README's lines) with the status block of the existing ``readme``,
    if it has one, placed after the title line."""
    old = readme.read_text() if readme.is_file() else ""
    if STATUS_START not in old or STATUS_END not in old:
        return text
    block = old[old.index(STATUS_START):old.index(STATUS_END) + len(STATUS_END)]
    return [text[0], "", block, *text[1:]]


def write_paper_report(pipe) -> dict:
    p = pipe.cfg["paper"]
    system = p.get("system", "experiment")
    dest = Path(expand_path(p["results_dir"]))
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "PARTIAL.md").unlink(missing_ok=True)
    base_md = (pipe.run / "report" / "report.md").read_text().split("\n", 1)[1]
    extra, extra_ver = extra_sections(pipe)  # may draw more PNGs into <run>/report
    _copy_pngs(pipe, dest)
    wall = sum(pipe.times.values())
    child = sum(json.loads(f.read_text())["seconds"] for f in
                pipe.run.glob("size_*/.stages/*.json")) if "size_study" in pipe.results else 0
    md_note = ""  # a re-analysed metad stage times the analysis; its chunks keep the MD time
    runs = (pipe.results.get("metad") or {}).get("runs") or {}
    md_s = sum(x.get("wall_s") or 0.0 for per in runs.values() for x in per.values())
    if md_s:
        md_note = f"; MetaD LAMMPS time {md_s:.0f} s summed over the runs' chunks"
    verdicts = [*survival_verdicts(pipe), *error_verdicts(pipe), *extra_ver]
    info = {"machine": machine(), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "wall_time_s_stages": wall, "wall_time_s_note": "sum of the stage times of this "
            "run (stages reused from earlier invocations count with their original time); the "
            "size-study children are included in size_study", "child_stage_seconds": child,
            "load_average": _load_average(), "preset": pipe.cfg.get("preset"),
            "model": pipe.cfg["model"], "run_dir": str(pipe.run)}
    text = [f"# Paper experiment: {system}", "",
            f"Claim under test: {CLAIMS.get(system, '')}.", "",
            f"- command: `inputs/{system}/reproduce.sh` (config `{p.get('config', '')}`, "
            f"preset {pipe.cfg.get('preset')}); run folder `{pipe.run}`",
            f"- machine: {info['machine']['cpu']}, {info['machine']['cores']} cores, torch "
            f"{info['machine']['torch']}, GPU {info['machine']['gpu']}; date {info['date_utc']} "
            f"UTC; load average at the report {info['load_average']}",
            f"- wall time: {wall / 60:.1f} min (sum of stages; see stage times below){md_note}",
            f"- model: {pipe.cfg['model']}",
            *[f"- {n}" for n in p.get("notes", [])], "",
            "## Verdict per claim (as measured)", "", *[f"- {v}" for v in verdicts], "",
            "## FFPT-FT against scratch (pipeline report)", base_md, "", *extra]
    text = keep_status(dest / "README.md", text)
    atomic_write(dest / "README.md", lambda f: f.write(("\n".join(text) + "\n").encode()))
    summary = {"info": info, "verdicts": verdicts,
               **{k: pipe.results[k] for k in ("evaluate", "stability", "size_study",
                                               "extra_tests", "per_reaction", "irc", "msd",
                                               "ml_round", "metad") if k in pipe.results},
               "scan": pipe.results["scan"]["per_model"], "stage_seconds": dict(pipe.times)}
    atomic_write(dest / "paper_summary.json",
                 lambda f: f.write(json.dumps(summary, indent=1, default=str).encode()))
    return {"readme": str(dest / "README.md"), "verdicts": verdicts}


def write_partial(cfg: dict, run_dir: Path, command: str) -> Path:
    """PARTIAL.md in the results folder from the finished stage records of ``run_dir``."""
    dest = Path(expand_path(cfg["paper"]["results_dir"]))
    dest.mkdir(parents=True, exist_ok=True)
    from ffpt.demo.extra_stages import extra_stage_names

    pre, post = extra_stage_names(cfg)
    order = [*pre, "pt_data", "ft_structures", "ft_labels", "train_pt",
             *[f"train_{v}" for v in cfg["train"]["variants"]], "deploy", "evaluate", "scan",
             "stability", "report", *post]
    found = {f.stem: json.loads(f.read_text()) for f in (run_dir / ".stages").glob("*.json")}
    recs = {k: found[k] for k in order if k in found}
    left = [k for k in order if k not in found]
    lines = ["# PARTIAL results (the run has not finished)", "",
             f"Written {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC from the stage "
             f"records in `{run_dir}`; load average {_load_average()}. Continue with "
             f"`{command}` (finished stages are reused).", "",
             "| stage | wall (s) |", "|---|---|",
             *[f"| {k} | {v['seconds']:.0f} |" for k, v in recs.items()], "",
             f"Stages left: {', '.join(left) or 'none'} (a stage recorded earlier is "
             "rerun if its settings changed).", ""]
    if "evaluate" in recs:
        lines += ["## Held-out test errors", "",
                  *_table(["model on test set", "F MAE (meV/Å)", "E MAE (meV/atom)"],
                          [[k, v["forces_mae_meV_A"], v["energy_mae_meV_atom"]]
                           for k, v in recs["evaluate"]["result"].items()]), ""]
    for k, v in recs.items():
        if k.startswith("train_"):
            m = v["result"]["metrics"]
            lines.append(f"- {k}: {v['result']['epochs']} epochs, stop "
                         f"{m.get('stop_reason', '?')}")
    if "stability" in recs:
        lines += ["", "## Survival", ""]
        for mdl, per in recs["stability"]["result"]["summary"].items():
            for t, c in per.items():
                lines.append(f"- {mdl} {t} K: {c['n_survived']}/{c['n_runs']} survived "
                             f"{c['duration_ps']:g} ps, median {c['median_ttf_ps']}")
    for child in sorted(run_dir.glob("size_*")):
        done = sorted(f.stem for f in (child / ".stages").glob("*.json"))
        lines.append(f"- size study {child.name}: stages done {', '.join(done)}")
    stab_runs = sorted(run_dir.glob("**/stability/runs/*/T*/seed*/record.json"))
    if stab_runs:
        lines += ["", f"{len(stab_runs)} MD runs finished so far:", ""]
        for f in stab_runs:
            d = json.loads(f.read_text())
            lines.append(f"- {f.parent.relative_to(run_dir)}: {d['reason']}, "
                         f"{d['time_ps']:.2f} ps")
    pngs = sorted((run_dir / "report").glob("*.png"))
    for png in pngs:  # figures of the finished main report, if any
        shutil.copyfile(png, dest / png.name)
    if pngs:
        lines += ["", *[f"![{p.stem}]({p.name})" for p in pngs]]
    (dest / "PARTIAL.md").write_text("\n".join(lines) + "\n")
    return dest / "PARTIAL.md"


def main() -> None:
    import argparse

    from ffpt.demo.config import load_demo_config

    ap = argparse.ArgumentParser(description="PARTIAL.md of an unfinished paper experiment")
    ap.add_argument("--config", required=True)
    ap.add_argument("--preset", default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    cfg = load_demo_config(args.config, args.preset, args.sets)
    system = cfg["paper"].get("system", "")
    cmd = (f"inputs/{system}/reproduce.sh" if system else f"ffpt demo --config {args.config}") \
        + (f" --preset {args.preset}" if args.preset else "") \
        + "".join(f" --set {x}" for x in args.sets)
    print(write_partial(cfg, Path(cfg["run_dir"]), cmd))


if __name__ == "__main__":
    main()
