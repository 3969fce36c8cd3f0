"""Hydrogen-combustion stages of the paper experiment (``paper.h2comb``, ``paper.irc``,
``paper.metad``): FT data from all 19 channels, per-reaction test errors, the reaction-9 IRC
profile, and LAMMPS well-tempered metadynamics with a temperature check, product analysis
and FES convergence. Energies of the shared npz files are kcal/mol (converted to eV on read)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ffpt.config import REPO_ROOT, expand_path
from ffpt.data.frames import FrameSet
from ffpt.lammps.chunks import chunk_dir, chunk_records, chunk_seed, merge_by_step, remove_chunks

KCAL_PER_EV = 23.060548
KJ_PER_EV = 96.485332


def channel_files(data: Path) -> dict[str, list[Path]]:
    """Reaction -> its npz files: ``NN_{irc,aimd,nm}`` for the 19 channels (06a/06b are
    channel 6); for 12 the corrected IRC files ``12a_irc_{d,q}_corr`` replace ``12_irc``
    (shared data README); the ``*_all`` duplicates and the extra AIMD sets 20, 21 are left out."""
    out: dict[str, list[Path]] = {}
    for f in sorted(data.glob("*.npz")):
        m = re.fullmatch(r"(\d\d)([ab]?)_(irc|aimd|nm)(_all|_d_corr|_q_corr)?", f.stem)
        if not m or int(m.group(1)) > 19:
            continue
        rxn, sub, kind, suffix = m.groups()
        if suffix == "_all" or (rxn == "12" and kind == "irc" and not suffix):
            continue
        if rxn == "12" and sub and kind != "irc":
            continue
        out.setdefault(rxn, []).append(f)
    if len(out) != 19:
        raise FileNotFoundError(f"{data}: found channels {sorted(out)}, expected 01-19; point "
                                "paper.h2comb.data at the h2combustion folder")
    return out


def prepare_h2comb(pipe, spec: dict) -> dict:
    """A random ``fraction`` of every frame of the 19 channels -> ``data/h2comb_ft.npz``
    (the pipeline then holds out its test split); from the other frames up to
    ``n_test_per_reaction`` per reaction -> ``data/rxn_test/<NN>.npz``."""
    from ffpt.data.readers import read_frames

    data = Path(expand_path(spec.get("data", "${FFPT_SHARED_DATA}/h2combustion")))
    files = channel_files(data)
    rng = np.random.default_rng(int(spec.get("seed", pipe.cfg["seed"])))
    frac, n_test = float(spec["fraction"]), int(spec.get("n_test_per_reaction", 500))
    picked, tests, counts = [], {}, {}
    for rxn, paths in files.items():
        fs = FrameSet.concatenate([read_frames(p) for p in paths])
        perm = rng.permutation(fs.n_frames)
        k = round(frac * fs.n_frames)
        picked.append(fs.subset(np.sort(perm[:k])))
        rest = perm[k:]
        tests[rxn] = fs.subset(np.sort(rest[:n_test]))
        counts[rxn] = {"frames": fs.n_frames, "ft": k, "test": tests[rxn].n_frames,
                       "files": [p.name for p in paths]}
    ft = FrameSet.concatenate(picked)
    out = pipe.path("data", "h2comb_ft.npz")
    ft.save(out)
    test_files = {}
    for rxn, fs in tests.items():
        test_files[rxn] = str(fs.save(pipe.path("data", "rxn_test", f"{rxn}.npz")))
    return {"ft_file": str(out), "n_ft": ft.n_frames, "per_reaction": counts,
            "test_files": test_files, "fraction": frac, "data": str(data)}


#: eV/A: frames with an atom whose reference force is larger than this are close contacts
#: (reaction 6 holds test frames up to 1,246 eV/A and +173 eV); ``per_reaction`` also
#: reports without them
MODERATE_FORCE = 50.0


def moderate_frames(fs: FrameSet, max_force: float = MODERATE_FORCE) -> np.ndarray:
    """Indices of the frames whose largest atomic force magnitude is at most ``max_force``."""
    return np.array([i for i in range(fs.n_frames)
                     if np.linalg.norm(fs.forces[fs.frame_slice(i)], axis=1).max() <= max_force],
                    dtype=int)


def per_reaction(pipe) -> dict:
    """Energy and force MAE of every variant on each reaction's held-out frames; and on those
    whose largest reference force is at most MODERATE_FORCE (``moderate``), since a few
    close-contact frames can decide a reaction's MAE."""
    from ffpt.demo.pipeline import test_errors

    out, moderate = {}, {}
    ck = {v: pipe.results[f"train_{v}"]["best_checkpoint"] for v in pipe.variants}
    for rxn, path in pipe.results["h2comb_data"]["test_files"].items():
        fs = FrameSet.load(path)
        if fs.n_frames == 0:
            continue
        out[rxn] = {v: test_errors(c, fs) for v, c in ck.items()}
        keep = moderate_frames(fs)
        if len(keep) == fs.n_frames:  # no close contact: the same numbers
            moderate[rxn] = out[rxn]
        elif len(keep):
            sub = fs.subset(keep)
            moderate[rxn] = {v: test_errors(c, sub) for v, c in ck.items()}
    return {"per_reaction": out, "moderate": moderate, "moderate_max_force_eV_A": MODERATE_FORCE}


def _energies(checkpoint: str, fs: FrameSet) -> np.ndarray:
    from ffpt.calculator import FFPTCalculator

    calc = FFPTCalculator(checkpoint, dtype="float64")
    e = []
    for atoms in fs.iter_atoms():
        atoms.calc = calc
        e.append(atoms.get_potential_energy())
    return np.array(e)


def irc_profile(pipe, spec: dict) -> dict:
    """Energies along a reaction's IRC (frames in file order), each curve relative to its own
    lowest point: reference (wB97X-V), PT model and every variant; MAE of the relative
    energies and a PNG against d(O1-H3) and the IRC index."""
    from ffpt.data.readers import read_frames
    from ffpt.demo.report import _plt

    rxn = str(spec.get("reaction", "09"))
    data = Path(expand_path(spec.get("data", "${FFPT_SHARED_DATA}/h2combustion")))
    fs = read_frames(data / f"{rxn}_irc.npz")
    curves = {"reference": fs.energy - fs.energy.min()}
    for m in ["pt", *pipe.variants]:
        e = _energies(pipe.results[f"train_{m}"]["best_checkpoint"], fs)
        curves[m] = e - e.min()
    pos = np.stack([fs.positions[fs.frame_slice(i)] for i in range(fs.n_frames)])
    d_oh = np.linalg.norm(pos[:, 0] - pos[:, 2], axis=1) if pos.shape[1] == 3 else None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    x = np.arange(fs.n_frames)
    for k, e in curves.items():
        ax.plot(x, e * KJ_PER_EV, "k-" if k == "reference" else "-", lw=2 if k == "reference"
                else 1, label=k)
    ax.set(xlabel="IRC point (file order)", ylabel="E - E_min (kJ/mol)",
           title=f"reaction {rxn} IRC")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = pipe.path("report", f"irc_{rxn}.png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    mae = {m: float(np.mean(np.abs(c - curves["reference"]))) * KJ_PER_EV
           for m, c in curves.items() if m != "reference"}
    out = {"reaction": rxn, "n_points": fs.n_frames, "mae_rel_kJ_mol": mae,
           "barrier_kJ_mol": {m: float(c.max()) * KJ_PER_EV for m, c in curves.items()},
           "d_OH_range_A": None if d_oh is None else [float(d_oh.min()), float(d_oh.max())],
           "png": str(png)}
    far = data / f"{rxn}_aimd.npz"
    if d_oh is not None and far.is_file():
        frames = read_frames(far)
        if len(frames.numbers) == 3 * frames.n_frames:  # the same 3-atom molecule throughout
            out["dissociation"] = dissociation_energies(
                pipe, fs, frames, spec.get("dissociation_bins_A", DISSOCIATION_BINS))
    return out


#: bins of the H atom's distance to its nearest O (Angstrom) for :func:`dissociation_energies`
DISSOCIATION_BINS = (1.6, 2.0, 2.5, 3.0, 3.5)


def dissociation_energies(pipe, irc, frames, bins) -> list[dict]:
    """How far up from the bound minimum each model puts the H leaving a 3-atom molecule
    (reaction 9: HO2 -> H + O2). Per bin of the H's distance to its nearest O: the median of
    E - E(lowest IRC point), reference and every model, over the reaction's AIMD frames (10 %
    of them are in the FT set; this measures the landscape, not a test error). A model that
    puts the dissociated region too low binds the H too weakly; one whose energy rises with
    the distance pulls a free H back."""
    from ffpt.analysis.scan import scan_energies_batch
    from ffpt.calculator import load_calculator

    i0 = int(np.argmin(irc.energy))
    pos = np.stack([frames.positions[frames.frame_slice(i)] for i in range(frames.n_frames)])
    numbers = frames.numbers[frames.frame_slice(0)]
    h = int(np.flatnonzero(numbers == 1)[0])
    o = np.flatnonzero(numbers == 8)
    d = np.linalg.norm(pos[:, o] - pos[:, h:h + 1], axis=2).min(axis=1)
    e_ref = (frames.energy - irc.energy[i0]) * KJ_PER_EV
    start = irc.positions[irc.frame_slice(i0)][None]
    e_mod = {}
    for m in ["pt", *pipe.variants]:
        calc = load_calculator(pipe.results[f"train_{m}"]["best_checkpoint"])
        e = scan_energies_batch(calc, numbers, np.concatenate([start, pos])) * KJ_PER_EV
        e_mod[m] = e[1:] - e[0]
    rows = []
    for lo, hi in itertools.pairwise(bins):
        k = (d >= lo) & (d < hi)
        if k.any():
            rows.append({"d_A": [float(lo), float(hi)], "n": int(k.sum()),
                         "reference": float(np.median(e_ref[k])),
                         **{m: float(np.median(e[k])) for m, e in e_mod.items()}})
    return rows


# ---------------------------------------------------------------------------- metadynamics
def _plumed_text(template: Path, spec: dict) -> str:
    text = template.read_text()
    for key, name in (("height", "HEIGHT"), ("pace", "PACE"), ("biasfactor", "BIASFACTOR")):
        if spec.get(key) is not None:
            text = re.sub(rf"{name}=[0-9.eE+-]+", f"{name}={spec[key]}", text)
    if spec.get("sigma") is not None:  # hill width (nm) on every CV, not in comments
        width = str(spec["sigma"])
        text = "\n".join(line if line.lstrip().startswith("#") else re.sub(
            r"SIGMA=[0-9.eE+-]+(?:,[0-9.eE+-]+)*",
            lambda m: "SIGMA=" + ",".join([width] * (m.group(0).count(",") + 1)), line)
            for line in text.split("\n"))
    if spec.get("colvar_every") is not None:
        text = re.sub(r"STRIDE=\d+ FILE=COLVAR", f"STRIDE={int(spec['colvar_every'])} FILE=COLVAR",
                      text)
    return text


def _lammps_text(template: Path, spec: dict) -> str:
    text = template.read_text()
    damp = float(spec["damp_ps"])
    text = re.sub(r"fix thermostat all langevin 300\.0 300\.0 [0-9.]+",
                  f"fix thermostat all langevin 300.0 300.0 {damp}", text)
    # 'zero yes' subtracts the mean random force from every atom: in a 3-atom H/O molecule the
    # H atom then gets the O atoms' (4x larger) noise and the molecule runs at ~750 K instead
    # of 300 K (measured with a Morse HO2 in LAMMPS: 746 K; with 'zero no' 298 K over all 3N
    # degrees of freedom). So: no zeroing, and the thermo temperature counts all 3N dof.
    text = re.sub(r"(fix thermostat all langevin .*) zero yes", r"\1 zero no", text)
    if "extra/dof" not in text:
        text = re.sub(r"^(fix thermostat all langevin .*)$",
                      r"\1\ncompute_modify thermo_temp extra/dof 0   # T over all 3N dof",
                      text, count=1, flags=re.M)
    text = re.sub(r"^thermo \d+", f"thermo {int(spec.get('thermo_every', 500))}", text,
                  flags=re.M)
    text = re.sub(r"dump traj all custom \d+",
                  f"dump traj all custom {int(spec.get('dump_every', 500))}", text)
    text = re.sub(r"^timestep [0-9.eE-]+", f"timestep {float(spec.get('timestep_fs', 0.2)) / 1000}",
                  text, flags=re.M)
    if f"langevin 300.0 300.0 {damp}" not in text:
        raise ValueError(f"{template}: no 'fix thermostat all langevin 300.0 300.0 ...' line to "
                         "set paper.metad.damp_ps in")
    return text


# settings that choose, schedule or analyse runs; the rest (model, inputs, thermostat, hills,
# chunk size, seed) defines a chunk, so raising ``steps`` reuses the finished chunks
_NOT_CHUNK_SETTINGS = ("models", "jobs", "steps", "reactions", "fes_slices", "t_tolerance",
                       "min_visit_ps")
DEFAULT_CHUNK_STEPS = 50_000
DEFAULT_SEED = 4928459


def chunk_plan(spec: dict) -> tuple[int, int]:
    """(number of chunks, steps per chunk) of every MetaD run of ``spec``."""
    steps, chunk = int(spec["steps"]), int(spec.get("chunk_steps") or DEFAULT_CHUNK_STEPS)
    if chunk <= 0 or steps <= 0 or steps % chunk:
        raise ValueError(f"paper.metad.steps ({steps}) is not a positive multiple of "
                         f"paper.metad.chunk_steps ({chunk}); set steps to a multiple of it")
    return steps // chunk, chunk


def metad_chunks(d: Path, n: int | None = None) -> list[tuple[Path, dict]]:
    """(folder, record) of a run's finished chunks in order: up to ``n``, up to the first
    one without a record, and up to a failed one (the run stops there)."""
    recs = chunk_records(d, lambda r: r["returncode"] != 0, n)
    return [(chunk_dir(d, k), r) for k, r in enumerate(recs)]


def _chunks_to_run(d: Path, settings: dict, n: int) -> tuple[range, Path | None]:
    """Chunks of run ``d`` still to run, and where finished chunks of other settings went.
    Chunks are never mixed with chunks of other settings: from the first finished chunk of
    other settings on, the chunks are moved to ``superseded[N]/`` (kept, not deleted); an
    unfinished chunk (no record: interrupted) is removed."""
    chunks = metad_chunks(d)
    k = next((i for i, (_, rec) in enumerate(chunks) if rec.get("settings") != settings),
             len(chunks))
    if k == len(chunks) and chunks and chunks[-1][1]["returncode"] != 0:
        return range(0), None  # a failed chunk of these settings: the run ends there
    aside = None
    if k < len(chunks):
        aside = _free_name(d, "superseded")
        aside.mkdir()
        for c in sorted(d.glob("chunk[0-9][0-9][0-9][0-9]")):
            if int(c.name[5:]) >= k:
                c.rename(aside / c.name)
    if k < n:
        remove_chunks(d, k)
    return range(k, n), aside


def _free_name(d: Path, stem: str) -> Path:
    """``d/stem``, or ``d/stem1``, ``d/stem2``, ... : the first that does not exist."""
    dest, i = d / stem, 1
    while dest.exists():
        dest, i = d / f"{stem}{i}", i + 1
    return dest


def _set_aside_unchunked(d: Path) -> None:
    """A run of the earlier all-in-one layout (``record.json`` beside the outputs) is moved
    to ``unchunked[N]/`` (it has no final state to continue from)."""
    if not (d / "record.json").is_file():
        return
    dest = _free_name(d, "unchunked")
    dest.mkdir()
    for f in d.iterdir():
        if f.is_file():
            f.rename(dest / f.name)


def run_metad_stage(pipe, spec: dict) -> dict:
    """WT-MetaD in LAMMPS (``inputs/combustion/rxn<NN>/in.metad`` + ``plumed.dat`` with the
    thermostat, hill height/pace and length of ``spec``) for each reaction x model, each run
    as consecutive chunks of ``chunk_steps`` (``<run>/chunkNNNN/``, a ``record.json`` per
    finished chunk). Chunk k > 0 starts from chunk k-1's ``final.data`` (positions,
    velocities, box) at its step, with Langevin seed :func:`chunk_seed` and PLUMED
    ``RESTART`` on a copy of its HILLS; so an interrupted run resumes at its unfinished chunk
    and a larger ``steps`` only runs the new chunks. ``jobs`` runs go at once."""
    from concurrent.futures import ThreadPoolExecutor

    models = spec.get("models") or pipe.variants
    jobs = []
    for rxn in [str(r) for r in spec["reactions"]]:
        for m in models:
            d = pipe.run / "metad" / f"rxn{rxn}" / m
            jobs.append(metad_job(d, rxn, Path(pipe.results["deploy"][m]["artifact"]), spec))
            if jobs[-1]["superseded"] is not None:
                pipe.echo(f"    {d}: settings changed; its chunks of the old settings are "
                          f"kept in {jobs[-1]['superseded']}")
    with ThreadPoolExecutor(max_workers=int(spec.get("jobs", 2))) as pool:
        list(pool.map(run_metad_job, [j for j in jobs if j["todo"]]))
    out = {}
    for rxn in [str(r) for r in spec["reactions"]]:
        for m in models:
            d = pipe.run / "metad" / f"rxn{rxn}" / m
            out.setdefault(rxn, {})[m] = analyse_metad(d, spec)
    return {"settings": spec, "runs": out}


def metad_job(d: Path, rxn: str, artifact: Path, spec: dict) -> dict:
    """One MetaD run of reaction ``rxn`` with ``artifact`` in folder ``d``: its inputs, the
    settings that define a chunk and the chunks still to run (:func:`run_metad_job`)."""
    n_chunks, chunk = chunk_plan(spec)
    seed = int(spec.get("seed") or DEFAULT_SEED)
    free = {k: v for k, v in spec.items() if k not in _NOT_CHUNK_SETTINGS}
    src = REPO_ROOT / "inputs" / "combustion" / f"rxn{rxn}"
    plumed = _plumed_text(src / "plumed.dat", spec)
    lammps = _lammps_text(src / "in.metad", spec)
    art = Path(artifact).resolve()
    settings = {"spec": free, "rxn": rxn, "chunk_steps": chunk, "seed": seed,
                "model_sha256": hashlib.sha256(art.read_bytes()).hexdigest(),
                "inputs_sha256": hashlib.sha256((plumed + lammps).encode()).hexdigest()}
    d.mkdir(parents=True, exist_ok=True)
    _set_aside_unchunked(d)
    todo, aside = _chunks_to_run(d, settings, n_chunks)
    return {"dir": d, "rxn": rxn, "artifact": art, "plumed": plumed, "lammps": lammps,
            "settings": settings, "todo": todo, "superseded": aside}


def run_metad_job(job: dict) -> None:
    """Run the chunks ``job["todo"]`` of a :func:`metad_job`, each from the last one's state."""
    from ffpt.data.frames import atomic_write
    from ffpt.lammps.runner import run_lammps

    d, rxn, art, settings = job["dir"], job["rxn"], job["artifact"], job["settings"]
    seed, chunk = settings["seed"], settings["chunk_steps"]
    for k in job["todo"]:
        c = chunk_dir(d, k)
        if c.exists():
            shutil.rmtree(c)
        c.mkdir()
        # RESTART: the bias from the HILLS copy (with the hill of the boundary step, which
        # a run without a break would apply from the next force call on), hills appended
        (c / "plumed.dat").write_text(("RESTART\n" if k else "") + job["plumed"])
        (c / "in.metad").write_text(job["lammps"])
        args = ["-var", "model", str(art), "-var", "steps", str(chunk), "-var", "seed",
                str(chunk_seed(seed, k)), "-var", "step0", str(k * chunk), "-var",
                "chunk", str(k)]
        if k == 0:
            subprocess.run([sys.executable, str(REPO_ROOT / "inputs" / "combustion" /
                                                "build_geometry.py"), rxn, "-o", str(c)],
                           check=True, capture_output=True, text=True)
        else:
            prev = chunk_dir(d, k - 1)
            if (prev / "HILLS").is_file():
                shutil.copyfile(prev / "HILLS", c / "HILLS")  # RESTART appends to it
            args += ["-var", "data", f"../{prev.name}/final.data"]
        run = run_lammps("in.metad", c, timeout=None, check=False, screen=False,
                         args=tuple(args))
        rc = run.returncode if run.returncode or (c / "final.data").is_file() else -1
        rec = {"settings": settings, "chunk": k, "step0": k * chunk, "steps": chunk,
               "seed": chunk_seed(seed, k), "model": str(art), "returncode": rc,
               "wall_s": run.wall_s}
        atomic_write(c / "record.json", lambda f, r=rec: f.write(json.dumps(r).encode()))
        if rc != 0:
            break


def metad_colvar(d: Path, n: int | None = None) -> np.ndarray:
    """COLVAR rows of a run's finished chunks as one series (a continued chunk's first row,
    the restart step, repeats the previous chunk's last and is dropped)."""
    parts = []
    for c, _ in metad_chunks(d, n):
        if (c / "COLVAR").is_file():
            a = np.loadtxt(c / "COLVAR", ndmin=2)
            parts.append((a[:, 0], list(a)))
    rows = merge_by_step(parts)
    return np.array(rows) if rows else np.zeros((0, 0))


def analyse_metad(d: Path, spec: dict) -> dict:
    """Temperature from the logs, product states from the dumps, FES (+ convergence PNG) from
    the last HILLS, over the run's finished chunks (up to ``steps``) as one trajectory."""
    from ffpt.lammps.io import read_dump_frames, read_log

    chunks = metad_chunks(d, chunk_plan(spec)[0])
    rcs = [rec["returncode"] for _, rec in chunks]
    res: dict = {"returncode": next((r for r in rcs if r != 0), 0) if rcs else None,
                 "wall_s": sum(rec["wall_s"] for _, rec in chunks), "n_chunks": len(chunks)}
    logs = [read_log(c / "log.lammps") for c, _ in chunks if (c / "log.lammps").exists()]
    if logs:
        res["errors"] = [e for log in logs for e in log.errors][:3]
        loop = sum(log.loop_time_s or 0.0 for log in logs)
        res["steps_per_s"] = sum(log.steps or 0 for log in logs) / loop if loop else None
    rows = merge_by_step([(log.thermo["Step"], list(log.thermo["Temp"])) for log in logs
                           if "Step" in log.thermo and "Temp" in log.thermo])
    if rows:
        t = np.asarray(rows, float)
        half = t[len(t) // 2:]
        res["T_mean_K"] = float(t.mean())
        res["T_mean_second_half_K"] = float(half.mean())
        res["T_median_K"] = float(np.median(t))
        res["T_max_K"] = float(t.max())
        blocks = np.array_split(t, 10)  # standard error of the mean from 10 blocks
        se = float(np.std([b.mean() for b in blocks], ddof=1) / np.sqrt(10)) if len(t) >= 20 \
            else float("nan")
        res["T_mean_se_K"] = se
        tol = max(float(spec.get("t_tolerance", 30.0)), 2 * se if np.isfinite(se) else 0.0)
        res["T_held"] = bool(abs(t.mean() - 300.0) <= tol)
    dumps = [read_dump_frames(c / "traj.lammpstrj") for c, _ in chunks
             if (c / "traj.lammpstrj").exists()]
    frames = merge_by_step([([fr.step for fr in fs], fs) for fs in dumps])
    oo_broken = 0
    dt_ps = float(spec.get("timestep_fs", 0.2)) / 1000.0
    if frames:
        res["ps_simulated"] = float(frames[-1].step * dt_ps)
    seq = []
    for fr in frames:
        z = np.where(fr.types == 1, 8, 1)
        seq.append(product_state(z, fr.positions, fr.cell))
        if np.linalg.norm(_mic(fr.positions[0] - fr.positions[1], fr.cell)) > 1.6:
            oo_broken += 1
    states = Counter(seq)
    n = max(1, sum(states.values()))
    res["state_fraction"] = {k: v / n for k, v in states.most_common()}
    res["n_frames"] = sum(states.values())
    timeline = state_timeline(seq, [fr.step * dt_ps for fr in frames],
                              float(spec.get("min_visit_ps", MIN_VISIT_PS)))
    res["state_timeline"] = [list(s) for s in timeline]
    res["state_changes"] = max(0, len(timeline) - 1)
    res["O2_dissociated_fraction"] = oo_broken / n
    hills = chunks[-1][0] / "HILLS" if chunks else d / "HILLS"  # the last holds every hill
    if hills.exists() and hills.stat().st_size > 0:
        res.update(fes_convergence(hills, d, int(spec.get("fes_slices", 5))))
        if frames:
            res["state_F_reweighted"] = state_free_energies(
                hills, frames, seq, float(spec.get("biasfactor", 30)))
    return res


def _cv_atoms(plumed: Path) -> dict[str, tuple[int, int]]:
    """``name: (i, j)`` (0-based) of the DISTANCE CVs of a plumed.dat."""
    found = re.findall(r"^(\w+):\s*DISTANCE\s+ATOMS=(\d+),(\d+)", plumed.read_text(), re.M)
    return {n: (int(i) - 1, int(j) - 1) for n, i, j in found}


def state_free_energies(hills: Path, frames: list, states: list[str], biasfactor: float,
                        parts: tuple[float, ...] = (0.5, 0.75)) -> dict:
    """Free energy of each product state of the graph (both O-H distances, so HO2 with the H
    on either O is HO2) by reweighting the dump frames with the final bias: V = -(gamma - 1) /
    gamma F of the final FES at each frame's CVs, frames from ``part`` of the run onwards
    (``'0.5'``: the second half, where the bias changes least). A run whose two estimates
    differ is not converged."""
    from ffpt.analysis.fes import compute_fes, fes_at, reweighted_state_free_energies

    fes = compute_fes(hills)
    atoms = _cv_atoms(hills.parent / "plumed.dat")
    if fes.names != ["dOH", "dOO"] or set(atoms) < {"dOH", "dOO"}:
        return {}
    cv = np.array([[np.linalg.norm(_mic(fr.positions[atoms[n][1]] - fr.positions[atoms[n][0]],
                                        fr.cell)) / 10.0 for n in ("dOH", "dOO")]
                   for fr in frames])
    bias = -(biasfactor - 1.0) / biasfactor * fes_at(fes, cv)
    out = {}
    for part in parts:
        first = int(part * len(frames))
        out[f"{part:g}"] = reweighted_state_free_energies(states[first:], bias[first:],
                                                          KT_300_KJ_MOL)
    return out


#: the version of :func:`analyse_metad`'s output, part of the metad stage's hash: a new
#: version re-analyses finished runs (their chunks are reused, no MD reruns)
METAD_ANALYSIS = 4
#: a product state has to last this long to count as a visit (shorter ones are flicker)
MIN_VISIT_PS = 0.5


def state_timeline(states: list[str], times_ps: list[float], min_visit_ps: float = MIN_VISIT_PS
                   ) -> list[tuple[str, float, float]]:
    """The visits ``(state, from ps, to ps)`` of a per-frame state sequence, in order; a visit
    lasts until the next one begins. A visit shorter than ``min_visit_ps`` is thermal flicker
    and joins its longer neighbour, shortest first. A run with fewer than two changes made no
    round trip: its state fractions are a first passage, not a converged population."""
    visits = [[s, i] for i, s in enumerate(states) if not i or s != states[i - 1]]

    def end(k: int) -> int:  # a visit lasts until the next one begins
        return visits[k + 1][1] if k + 1 < len(visits) else len(states) - 1

    def length(k: int) -> float:
        return times_ps[end(k)] - times_ps[visits[k][1]]

    while len(visits) > 1:
        k = min(range(len(visits)), key=length)
        if length(k) >= min_visit_ps:
            break
        host = max((j for j in (k - 1, k + 1) if 0 <= j < len(visits)), key=length)
        if host > k:  # the later neighbour takes over from this visit's start
            visits[host][1] = visits[k][1]
        del visits[k]
        visits = [v for i, v in enumerate(visits) if not i or v[0] != visits[i - 1][0]]
    return [(st, float(times_ps[i]), float(times_ps[end(k)]))
            for k, (st, i) in enumerate(visits)]


def _mic(v: np.ndarray, cell: np.ndarray) -> np.ndarray:
    frac = np.linalg.solve(cell.T, v)
    return cell.T @ (frac - np.round(frac))


def product_state(z: np.ndarray, pos: np.ndarray, cell: np.ndarray) -> str:
    """Fragments of the covalent graph (1.2 x covalent radii), e.g. ``HO2`` or ``H + O2``."""
    from ffpt.analysis.stability import composition, format_composition

    return format_composition(composition(z, pos, cell, (True, True, True)))


def fes_convergence(hills: Path, d: Path, slices: int) -> dict:
    """``ffpt fes HILLS --slices N`` (``d``/fes.dat, fes.png with the convergence panel), the RMS
    change of the FES between the last two slices in the region below 100 kJ/mol, and the
    basin free energies (:func:`cv_basins`) of every slice."""
    from ffpt.analysis.fes import basin_free_energies, compute_fes, plot_fes, write_fes

    fes = compute_fes(hills, n_slices=slices)
    write_fes(fes, d / "fes.dat")
    plot_fes(fes, d / "fes.png")
    out = {"fes_png": str(d / "fes.png"), "F_max_kJ_mol": float(fes.free_energy.max())}
    sl = getattr(fes, "slices", None)
    if sl is not None and len(sl) >= 2:
        a, b = np.asarray(sl[-2]), np.asarray(sl[-1])
        a, b = a - a.min(), b - b.min()
        low = b < 100.0
        out["fes_rms_change_last_slice_kJ_mol"] = float(np.sqrt(np.mean((a - b)[low] ** 2)))
    if fes.names == ["dOH", "dOO"]:
        regions = cv_basins(*fes.axes)
        out["basin_F_kJ_mol"] = basin_free_energies(fes.free_energy, regions, KT_300_KJ_MOL)
        if sl is not None:
            out["basin_F_slices"] = {
                f"{t:g}": basin_free_energies(s, regions, KT_300_KJ_MOL)
                for t, s in zip(fes.times, sl, strict=True)}
    return out


#: kT at 300 K in kJ/mol (the MetaD temperature; PLUMED's units)
KT_300_KJ_MOL = 8.314462618e-3 * 300.0


#: nm: a distance this long is a broken bond in the basin free energies (:func:`cv_basins`)
APART_NM = 0.2


def cv_basins(d_oh: np.ndarray, d_oo: np.ndarray) -> dict[str, np.ndarray]:
    """The product states of :func:`product_state` as regions of the (dOH, dOO) grid in nm.
    Bonded: below 1.2 x the sum of covalent radii (the graph's own cutoff); apart: at least
    :data:`APART_NM`. Stretched bonds between the two are in no basin, so a basin's free
    energy is that of the broken bond, not of the first stretch past the cutoff. The H's
    distance to the other O is not a CV, so an H bound to it counts as 'H + O2' here."""
    from ase.data import covalent_radii

    oh = 1.2 * (covalent_radii[8] + covalent_radii[1]) / 10.0
    oo = 1.2 * 2 * covalent_radii[8] / 10.0
    a, b = np.meshgrid(d_oh, d_oo, indexing="ij")
    return {"HO2": (a <= oh) & (b <= oo), "H + O2": (a >= APART_NM) & (b <= oo),
            "HO + O": (a <= oh) & (b >= APART_NM), "H + 2 O": (a >= APART_NM) & (b >= APART_NM)}
