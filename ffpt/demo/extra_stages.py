"""Optional stages of the FFPT-FT pipeline for the paper's experiments (``paper:`` config
section; absent or empty -> none of them run and no existing stage hash changes).

* before the chain: ``h2comb_data`` (random fraction of all H2-combustion channels as the FT
  file, per-reaction held-out test files; ``paper.h2comb``);
* after the report: ``size_study`` (the same PT model, FT/scratch on fewer FT frames:
  child pipelines in ``<run>/size_<n>``; ``paper.size_study``), ``extra_tests`` (more
  labelled test sets; ``paper.extra_tests``), ``per_reaction`` (test errors per reaction),
  ``irc`` (energy profile along an IRC; ``paper.irc``), ``msd`` (water diffusion and O-O RDF
  from the stability dumps; ``paper.msd``), ``ml_round`` (water: label the models' own MD
  frames, train again in ``<run>/round2``; ``paper.ml_round``), ``metad`` (LAMMPS WT-MetaD,
  temperature check, products, FES; ``paper.metad``), then ``paper_report`` (``paper.results_dir``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from ffpt.config import expand_path
from ffpt.demo.report import train_budget

#: post-chain stages in run order, with the ``paper`` key that switches each on
POST = (("size_study", "size_study"), ("extra_tests", "extra_tests"),
        ("per_reaction", "h2comb"), ("irc", "irc"), ("msd", "msd"), ("ml_round", "ml_round"),
        ("metad", "metad"),
        ("paper_report", "results_dir"))


def paper_cfg(cfg: dict) -> dict:
    return cfg.get("paper") or {}


def extra_stage_names(cfg: dict) -> tuple[list[str], list[str]]:
    """(stages before the chain, stages after its report) switched on by ``cfg['paper']``."""
    p = paper_cfg(cfg)
    pre = ["h2comb_data"] if p.get("h2comb") else []
    return pre, [name for name, key in POST if p.get(key)]


def before(pipe) -> tuple[str, ...]:
    """Run the pre-chain stages; they may set ``ft_data.path`` before its stage hash. Returns
    the names of the stages that wrote the FT file: ``ft_structures`` lists them upstream, so
    new FT data (same path, new frames) reruns everything after it."""
    p = paper_cfg(pipe.cfg)
    if not p.get("h2comb"):
        return ()
    from ffpt.demo.paper_combustion import prepare_h2comb

    h = dict(p["h2comb"])
    res = pipe.stage("h2comb_data", [h, pipe.cfg["seed"]], (), lambda: prepare_h2comb(pipe, h))
    pipe.cfg["ft_data"]["path"] = res["ft_file"]
    return ("h2comb_data",)


def after(pipe) -> None:
    """Run the post-report stages switched on in ``paper``."""
    p = paper_cfg(pipe.cfg)
    trained = tuple(f"train_{v}" for v in pipe.variants)
    if p.get("size_study"):
        pipe.stage("size_study", [p["size_study"]], ("train_pt", "stability"),
                   lambda: size_study(pipe, p["size_study"]))
    if p.get("extra_tests"):
        pipe.stage("extra_tests", [p["extra_tests"]], ("train_pt", *trained),
                   lambda: extra_tests(pipe, p["extra_tests"]))
    if p.get("h2comb"):
        from ffpt.demo.paper_combustion import MODERATE_FORCE, per_reaction

        pipe.stage("per_reaction", [MODERATE_FORCE, "|F| per atom"],
                   ("h2comb_data", "train_pt", *trained),
                   lambda: per_reaction(pipe))
    if p.get("irc"):
        from ffpt.demo.paper_combustion import DISSOCIATION_BINS, irc_profile

        pipe.stage("irc", [p["irc"], "dissociation", DISSOCIATION_BINS], ("train_pt", *trained),
                   lambda: irc_profile(pipe, p["irc"]))
    if p.get("msd"):
        pipe.stage("msd", [p["msd"], "rdf after skip_ps"], ("stability",),
                   lambda: water_msd(pipe, p["msd"]))
    if p.get("ml_round"):
        from ffpt.demo.paper_water import ml_round

        pipe.stage("ml_round", [p["ml_round"]], ("stability", "ft_labels", "train_pt"),
                   lambda: ml_round(pipe, p["ml_round"]))
    if p.get("metad"):
        from ffpt.demo.paper_combustion import METAD_ANALYSIS, run_metad_stage

        pipe.stage("metad", [p["metad"], METAD_ANALYSIS], ("deploy",),
                   lambda: run_metad_stage(pipe, p["metad"]))
    if p.get("results_dir"):
        from ffpt.demo.paper_report import write_paper_report

        ups = tuple(n for n in pipe.stages if pipe.stages.index(n) < pipe.stages.index(
            "paper_report") and n in pipe.hashes)
        pipe.stage("paper_report", [p], ups, lambda: write_paper_report(pipe))


# ---------------------------------------------------------------------------- size study
def child_pipeline(pipe, cfg: dict, name: str, spec: dict, tag: str):
    """A child run in ``<run>/<name>`` of ``cfg`` (without ``paper``) that reuses this run's
    PT data and PT models (their stage records are copied: same deps, same hash, skipped).
    ``spec['variants']`` keeps only those training variants, ``spec['stability']`` overrides
    the child's stability settings; its messages are prefixed with ``tag``."""
    from ffpt.demo.pipeline import Pipeline, pt_stage_names

    cfg = copy.deepcopy(cfg)
    cfg.pop("paper", None)
    if spec.get("variants"):
        cfg["train"]["variants"] = {v: cfg["train"]["variants"][v] for v in spec["variants"]}
    cfg["stability"].update(spec.get("stability") or {})
    child = pipe.run / name
    (child / ".stages").mkdir(parents=True, exist_ok=True)
    for stage in pt_stage_names(pipe):
        src = pipe.run / ".stages" / f"{stage}.json"
        if src.exists():
            (child / ".stages" / f"{stage}.json").write_bytes(src.read_bytes())
    return Pipeline(cfg, child, progress=pipe.progress, echo=lambda s: pipe.echo(f"    {tag} {s}"))


def size_study(pipe, spec: dict) -> dict:
    """FT variants and scratch on ``sizes`` FT training frames, reusing this run's PT data
    and PT model (their stage records are copied, so the child pipelines skip them); each
    size is a full child run (test errors, scans, survival) in ``<run>/size_<n>``."""
    out = {}
    for n in [int(s) for s in spec["sizes"]]:
        cfg = copy.deepcopy(pipe.cfg)
        cfg["ft_data"]["max_train_frames"] = n
        pipe.echo(f"    size study: {n} FT training frames in {pipe.run / f'size_{n}'}")
        sub = child_pipeline(pipe, cfg, f"size_{n}", spec, f"[n={n}]")
        sub.run_all()
        out[str(n)] = _size_point(sub)
    main = _size_point(pipe)
    # every point on one horizon: the main run's survival counted up to the shortest run
    # length (when paper.size_study.stability shortens the children's MD)
    horizon = min([p["duration_ps"] for p in out.values()], default=main["duration_ps"])
    if horizon < main["duration_ps"]:
        main = _size_point(pipe, horizon)
    out[str(main["n_train"])] = main
    png = plot_size_study(out, pipe.run / "report" / "survival_vs_size.png")
    return {"points": out, "png": str(png)}


def _size_point(pipe, horizon_ps: float | None = None) -> dict:
    """Test errors and per-run survival times of every variant of a finished pipeline; with
    ``horizon_ps`` the runs count as if they had stopped there (failures later survive)."""
    r = pipe.results
    st = pipe.cfg["stability"]
    duration = int(st["steps"]) * float(st["timestep"]) / 1000.0
    horizon = duration if horizon_ps is None else min(duration, horizon_ps)
    t0 = f"{min(float(t) for t in st['temperatures']):g}"
    per = {}
    for v in pipe.variants:
        times, failed = [], []
        for rec in sorted((pipe.run / "stability" / "runs" / v / f"T{t0}").glob(
                "seed*/record.json")):
            d = json.loads(rec.read_text())
            times.append(min(float(d["time_ps"]), horizon))
            failed.append(bool(d["failed"]) and float(d["time_ps"]) <= horizon)
        per[v] = {"mode": r[f"train_{v}"]["mode"],
                  "budget": list(train_budget(r[f"train_{v}"])),
                  "forces_mae_meV_A": r["evaluate"][f"{v}_on_ft_test"]["forces_mae_meV_A"],
                  "energy_mae_meV_atom": r["evaluate"][f"{v}_on_ft_test"]["energy_mae_meV_atom"],
                  "times_ps": times, "failed": failed,
                  "fraction_surviving": float(1 - np.mean(failed)) if failed else None,
                  "mean_time_ps": float(np.mean(times)) if times else None,
                  "sem_time_ps": float(np.std(times, ddof=1) / np.sqrt(len(times)))
                  if len(times) > 1 else None}
    return {"n_train": int(r["ft_labels"]["n_train"]), "temperature_K": float(t0),
            "duration_ps": horizon, "variants": per}


def plot_size_study(points: dict, png: Path) -> Path:
    """Fig. 2d: fraction of runs surviving, mean time to failure (censored at the run
    length) and test force error against the number of FT training frames, one line per
    variant of every size (a variant of the main run only is in the table, not here); each
    its own colour, scratch models dashed."""
    from ffpt.demo.report import _plt

    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
    ns = sorted(points, key=int)
    variants = sorted(set.intersection(*(set(points[n]["variants"]) for n in ns)))
    colours = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    for k, v in enumerate(variants):
        xs = [int(n) for n in ns]
        ps = [points[str(n)]["variants"][v] for n in xs]
        style = {"color": colours(k), "ls": "--" if ps[0]["mode"] == "scratch" else "-",
                 "marker": "o", "label": v}
        dy = (k - (len(variants) - 1) / 2) * 0.012  # equal curves must not hide each other
        ax[0].plot(xs, [p["fraction_surviving"] + dy for p in ps], **style)
        ax[1].errorbar(xs, [p["mean_time_ps"] + dy * 10 for p in ps],
                       yerr=[p["sem_time_ps"] or 0 for p in ps], capsize=3, **style)
        ax[2].plot(xs, [p["forces_mae_meV_A"] for p in ps], **style)
    any_p = points[ns[-1]]
    ax[0].set(xlabel="FT training frames", ylabel="fraction of runs surviving",
              title=f"{any_p['temperature_K']:g} K, {any_p['duration_ps']:g} ps runs "
                    "(lines offset slightly)",
              ylim=(-0.05, 1.05))
    ax[1].set(xlabel="FT training frames", ylabel="mean time to failure (ps, censored)")
    ax[2].set(xlabel="FT training frames", ylabel="test force MAE (meV/Å)")
    ax[2].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


# ---------------------------------------------------------------------------- extra tests
def extra_tests(pipe, spec: dict) -> dict:
    """Test errors of the PT model and every variant on extra labelled sets
    (``name: {path, energy_unit?, forces_unit?, note?}``)."""
    from ffpt.data.readers import read_data
    from ffpt.demo.pipeline import test_errors

    out = {}
    for name, entry in spec.items():
        entry = dict(entry) if isinstance(entry, dict) else {"path": entry}
        note = entry.pop("note", "")
        entry["path"] = expand_path(entry["path"])
        if not Path(entry["path"]).exists():
            raise FileNotFoundError(f"paper.extra_tests.{name}: {entry['path']} does not exist; "
                                    "set FFPT_SHARED_DATA or remove the entry")
        frames = read_data(entry, what=f"paper.extra_tests.{name}")
        errs = {m: test_errors(pipe.results[f"train_{m}"]["best_checkpoint"], frames)
                for m in ["pt", *pipe.variants]}
        out[name] = {"path": entry["path"], "n_frames": frames.n_frames, "note": note,
                     "errors": errs}
    return out


# ---------------------------------------------------------------------------- water MSD
def water_msd(pipe, spec: dict) -> dict:
    """Diffusion coefficient of O atoms per variant from the stability runs at the lowest
    temperature: D per surviving seed (MSD slope, ``ffpt.analysis.msd``), mean +- standard
    error over seeds; the first ``skip_ps`` of each run are dropped (equilibration)."""
    from ase.data import atomic_numbers
    from ase.io import read

    from ffpt.analysis.msd import diffusion_coefficient, load_trajectory
    from ffpt.demo.report import _plt

    st = pipe.cfg["stability"]
    t0 = f"{min(float(t) for t in st['temperatures']):g}"
    start = read(pipe.results["ft_structures"]["md_start"])
    types = sorted(set(start.get_chemical_symbols()), key=lambda s: atomic_numbers[s])
    o_type = types.index(spec.get("element", "O")) + 1
    fit = tuple(spec.get("fit", (0.1, 0.5)))
    skip = float(spec.get("skip_ps", 0.0))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    out = {}
    for v in pipe.variants:
        ds, notes = [], []
        for rec in sorted((pipe.run / "stability" / "runs" / v / f"T{t0}").glob(
                "seed*/record.json")):
            r = json.loads(rec.read_text())
            if r["failed"]:
                notes.append(f"{rec.parent.name} failed, skipped")
                continue
            try:
                t, pos = load_trajectory(rec.parent / "dump.lammpstrj", float(st["timestep"]),
                                         element=str(o_type))
                keep = t >= skip
                res, msd = diffusion_coefficient(t[keep] - t[keep][0], pos[keep], fit=fit,
                                                 blocks=int(spec.get("blocks", 1)))
            except ValueError as exc:
                notes.append(f"{rec.parent.name}: {exc}")
                continue
            ds.append(res.D_cm2_per_s)
            lag = t[keep] - t[keep][0]
            ax.plot(lag, msd, lw=0.8, label=v if len(ds) == 1 else None,
                    color=f"C{pipe.variants.index(v)}")
        out[v] = {"D_cm2_s": float(np.mean(ds)) if ds else None,
                  "D_err_cm2_s": float(np.std(ds, ddof=1) / np.sqrt(len(ds)))
                  if len(ds) > 1 else None,
                  "n_runs": len(ds), "per_seed": ds, "notes": notes}
    ax.set(xlabel="lag (ps)", ylabel="MSD of O (Å²)", title=f"water MSD, {t0} K")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = pipe.path("report", "msd.png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return {"temperature_K": float(t0), "fit_fraction": list(fit), "skip_ps": skip,
            "experiment_D_cm2_s": 2.3e-5, "per_variant": out, "png": str(png),
            "rdf": rdf_numbers(pipe, types, t0, skip, float(st["timestep"]))}


def rdf_numbers(pipe, types: list[str], t0: str, skip_ps: float, timestep_fs: float) -> dict:
    """O-O g(r) of each variant's MD (all seeds, frames after ``skip_ps`` and before failure,
    as for the MSD) against the FT sampler's reference liquid: first-peak position and height,
    the mean |g - g_ref| over 2-6 A, and the ps of MD behind it (a model whose runs all fail
    before ``skip_ps`` gets no row: its start structure is not its liquid)."""
    from ase.data import atomic_numbers

    from ffpt.analysis.rdf import rdf
    from ffpt.data.frames import FrameSet
    from ffpt.lammps.io import read_dump_frames

    ref_file = pipe.run / "data" / "ft_structures.npz"
    if not ref_file.exists():
        return {}
    r, g_ref = rdf(list(FrameSet.load(ref_file).iter_atoms()), n_bins=80)
    z_of_type = np.array([atomic_numbers[s] for s in types])
    curves = {"reference": g_ref}
    used: dict[str, float] = {}
    for v in pipe.variants:
        frames = []
        for rec in sorted((pipe.run / "stability" / "runs" / v / f"T{t0}").glob(
                "seed*/record.json")):
            d = json.loads(rec.read_text())
            end = d.get("failure_step") if d.get("failed") else None
            good = [f for f in read_dump_frames(rec.parent / "dump.lammpstrj")
                    if f.step * timestep_fs / 1000.0 >= skip_ps and (end is None or f.step < end)]
            frames += good
            if good:
                used[v] = used.get(v, 0.0) + (good[-1].step - good[0].step) * timestep_fs / 1e3
        if frames:
            rv, gv = rdf(frames, z_of_type, 8, 8, r_max=float(r[-1] + (r[1] - r[0]) / 2),
                         n_bins=80)
            curves[v] = np.interp(r, rv, gv)
    shell = (r >= 2.0) & (r <= 6.0)
    return {k: {"peak_r_A": float(r[np.argmax(g)]), "peak_g": float(g.max()),
                "mean_abs_diff_2_6A": float(np.mean(np.abs(g - g_ref)[shell])),
                "md_ps": used.get(k)}
            for k, g in curves.items()}
