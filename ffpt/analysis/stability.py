"""MD stability of deployed models: seeds x temperatures x models of Langevin MD in LAMMPS.

Failure criteria, checked on every dumped frame (:class:`Criteria`, ``system``):

- all systems: non-finite positions; two atoms closer than ``min_distance`` (0.7 A; 0.5 A for
  reactive systems, where H2 vibrates down to ~0.65 A); a LAMMPS error (non-finite energy,
  lost atoms, ...); the temperature above ``t_factor`` (10) x the target (``fix halt``);
- ``molecule``: a bond (from the start structure: d < ``bond_scale`` x the sum of covalent
  radii) longer or shorter than its start length by more than ``bond_tolerance`` (0.5 A, the
  FFPT paper's aspirin criterion), or a new close contact (a pair not bonded at the start
  closer than ``contact_scale`` x the sum of covalent radii: a new bond);
- ``water``: two O closer than ``min_oo`` (2.0 A: collapse), an H with no O within
  ``max_oh`` (1.6 A: dissociation);
- ``reactive``: a change of composition (the multiset of molecular formulas of the covalent
  graph, edges d < ``fragment_scale`` (1.5) x the sum of covalent radii) is an *event*, not a
  failure; its first time is reported.

A run fails at the first broken frame or, if LAMMPS stopped early, at its last thermo step
(time resolution: ``dump_every`` steps). Survival is summarised per model and temperature by
Kaplan-Meier (:func:`kaplan_meier`); runs that reach the end (or time out) are censored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ffpt.lammps.io import THERMOSTAT

SYSTEMS = ("molecule", "water", "reactive")


# ----------------------------------------------------------------------------- Kaplan-Meier


def kaplan_meier(times: Sequence[float], failed: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival estimate from event/censoring times.

    ``failed[k]``: run k failed at ``times[k]`` (else it was censored then: survived at least
    that long). Returns ``(t, S)``: ``t`` is 0 followed by the distinct failure times, ``S[k]``
    the survival probability just after ``t[k]`` (a step function, ``S[0] = 1`` unless runs
    failed at t = 0). Censored runs count as at risk at failures at their own time.
    """
    times = np.asarray(times, dtype=float)
    failed = np.asarray(failed, dtype=bool)
    if times.shape != failed.shape:
        raise ValueError("times and failed must have the same length")
    t = np.unique(np.concatenate([[0.0], times[failed]]))
    s, surv = 1.0, []
    for ti in t:
        deaths = np.sum(failed & (times == ti))
        at_risk = np.sum(times >= ti)
        if deaths:
            s *= 1.0 - deaths / at_risk
        surv.append(s)
    return t, np.array(surv)


def km_median(t: np.ndarray, s: np.ndarray) -> float | None:
    """Median survival time: first time with S <= 0.5 (``None``: not reached)."""
    below = np.flatnonzero(s <= 0.5)
    return float(t[below[0]]) if len(below) else None


# ----------------------------------------------------------------------------- geometry


def _pairs(pos: np.ndarray, cell: np.ndarray, pbc, cutoff: float):
    """``(i, j, d)`` of pairs i < j closer than ``cutoff`` (minimum image where periodic)."""
    from ase.neighborlist import primitive_neighbor_list

    i, j, d = primitive_neighbor_list("ijd", np.asarray(pbc, bool), np.asarray(cell), pos,
                                      cutoff, self_interaction=False)
    keep = i < j
    return i[keep], j[keep], d[keep]


def _mic_norm(vec: np.ndarray, cell: np.ndarray, pbc) -> np.ndarray:
    from ase.geometry import find_mic

    if not np.any(pbc):
        return np.linalg.norm(vec, axis=1)
    return find_mic(vec, cell, pbc)[1]


def _radii(z: np.ndarray) -> np.ndarray:
    from ase.data import covalent_radii

    return covalent_radii[np.asarray(z)]


def covalent_bonds(z, pos, cell, pbc, scale: float = 1.2):
    """Bonded pairs ``(i, j, d)``: d < ``scale`` x (r_cov,i + r_cov,j)."""
    r = _radii(z)
    i, j, d = _pairs(np.asarray(pos, float), cell, pbc, scale * 2 * r.max())
    keep = d < scale * (r[i] + r[j])
    return i[keep], j[keep], d[keep]


def composition(z, pos, cell, pbc, scale: float = 1.2) -> Counter:
    """Multiset of molecular formulas (Hill order) of the covalent graph's fragments."""
    from ase.data import chemical_symbols
    from ase.formula import Formula
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    z = np.asarray(z)
    i, j, _ = covalent_bonds(z, pos, cell, pbc, scale)
    n = len(z)
    _, label = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)),
                                    directed=False)
    return Counter(Formula.from_list([chemical_symbols[k] for k in z[label == c]]).format("hill")
                   for c in np.unique(label))


def format_composition(comp: Counter) -> str:
    return " + ".join(f"{n} {f}" if n > 1 else f for f, n in sorted(comp.items()))


def detect_system(atoms, scale: float = 1.5) -> str:
    """``water`` (at least two fragments, at least 90 % of them intact H2O), ``molecule`` (one
    connected fragment: a molecule or a solid) or ``reactive``."""
    comp = composition(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc, scale)
    if comp["H2O"] >= max(2, 0.9 * sum(comp.values())):
        return "water"
    return "molecule" if sum(comp.values()) == 1 else "reactive"


# ----------------------------------------------------------------------------- criteria


@dataclass
class Criteria:
    """Failure thresholds (Angstrom); see the module docstring."""

    system: str = "molecule"
    min_distance: float | None = None  # None: 0.7 (0.5 for reactive)
    bond_tolerance: float = 0.5
    bond_scale: float = 1.2  # molecule bonds at the start: d < scale x (r_cov,i + r_cov,j)
    contact_scale: float = 1.0
    fragment_scale: float = 1.5  # composition graph (loose: a vibrating H2 stays one H2)
    min_oo: float = 2.0
    max_oh: float = 1.6
    t_factor: float = 10.0

    def __post_init__(self) -> None:
        if self.system not in SYSTEMS:
            raise ValueError(f"system must be one of {', '.join(SYSTEMS)} (or auto), "
                             f"got {self.system!r}")
        if self.min_distance is None:
            self.min_distance = 0.5 if self.system == "reactive" else 0.7


def water_broken(z, pos, cell, pbc=(True, True, True), min_distance: float = 0.7,
                 max_oh: float = 1.6, min_oo: float = 2.0) -> str | None:
    """Why a water frame is broken (crash, O-O collapse, dissociated H), or ``None``."""
    z, pos = np.asarray(z), np.asarray(pos, float)
    if not np.all(np.isfinite(pos)):
        return "non-finite positions"
    if why := too_close(pos, cell, pbc, min_distance):
        return why
    i, j, d = _pairs(pos, cell, pbc, max(max_oh, min_oo))
    oo = (z[i] == 8) & (z[j] == 8) & (d < min_oo)
    if oo.any():
        k = np.flatnonzero(oo)[np.argmin(d[oo])]
        return f"O atoms {i[k]} and {j[k]} at {d[k]:.2f} A (< {min_oo} A)"
    h, o = np.flatnonzero(z == 1), np.flatnonzero(z == 8)
    if len(h) and len(o):
        ho = ((z[i] == 1) & (z[j] == 8)) | ((z[i] == 8) & (z[j] == 1))
        bound = set(np.where(z[i[ho]] == 1, i[ho], j[ho])[d[ho] <= max_oh])
        lone = [a for a in h if a not in bound]
        if lone:
            near = [_mic_norm(pos[o] - pos[a], cell, pbc).min() for a in lone]
            k = int(np.argmax(near))
            return f"H atom {lone[k]} has no O within {max_oh} A (nearest {near[k]:.2f} A)"
    return None


def too_close(pos, cell, pbc, min_distance: float) -> str | None:
    """A pair closer than ``min_distance`` (the closest one), or ``None``."""
    i, j, d = _pairs(np.asarray(pos, float), cell, pbc, min_distance)
    if len(d):
        k = int(np.argmin(d))
        return f"atoms {i[k]} and {j[k]} at {d[k]:.2f} A (< {min_distance} A)"
    return None


class StabilityChecker:
    """Applies :class:`Criteria` to frames of one system; the reference (bonds, composition)
    comes from the start structure (atom order = LAMMPS ids)."""

    def __init__(self, atoms, criteria: Criteria):
        self.c = criteria
        self.z = np.asarray(atoms.numbers)
        geom = (self.z, atoms.positions, atoms.cell.array, atoms.pbc)
        bi, bj, bd = covalent_bonds(*geom, criteria.bond_scale)
        self.bonds = (bi, bj, bd)
        self.bond_set = set(zip(bi.tolist(), bj.tolist(), strict=True))
        self.composition = composition(*geom, criteria.fragment_scale)

    def failure(self, pos, cell, pbc) -> str | None:
        """Why this frame fails the criteria, or ``None``."""
        c, z = self.c, self.z
        pos = np.asarray(pos, float)
        if not np.all(np.isfinite(pos)):
            return "non-finite positions"
        if c.system == "water":
            return water_broken(z, pos, cell, pbc, c.min_distance, c.max_oh, c.min_oo)
        if why := too_close(pos, cell, pbc, c.min_distance):
            return why
        if c.system != "molecule":
            return None
        from ase.data import chemical_symbols as sym

        bi, bj, d0 = self.bonds
        if len(bi):
            d = _mic_norm(pos[bj] - pos[bi], cell, pbc)
            k = int(np.argmax(np.abs(d - d0)))
            if abs(d[k] - d0[k]) > c.bond_tolerance:
                return (f"bond {bi[k]}-{bj[k]} ({sym[z[bi[k]]]}-{sym[z[bj[k]]]}) at {d[k]:.2f} "
                        f"A, start {d0[k]:.2f} A (change > {c.bond_tolerance} A)")
        r = _radii(z)
        i, j, d = _pairs(pos, cell, pbc, c.contact_scale * 2 * r.max())
        new = (d < c.contact_scale * (r[i] + r[j])) & np.array(
            [(a, b) not in self.bond_set for a, b in zip(i.tolist(), j.tolist(), strict=True)],
            dtype=bool)
        if new.any():
            k = np.flatnonzero(new)[np.argmin(d[new])]
            return (f"new close contact {i[k]}-{j[k]} ({sym[z[i[k]]]}-{sym[z[j[k]]]}) at "
                    f"{d[k]:.2f} A")
        return None

    def composition_change(self, pos, cell, pbc) -> str | None:
        """``'A -> B'`` when the fragment formulas differ from the start, else ``None``."""
        now = composition(self.z, pos, cell, pbc, self.c.fragment_scale)
        if now == self.composition:
            return None
        return f"{format_composition(self.composition)} -> {format_composition(now)}"


# ----------------------------------------------------------------------------- one run

#: seconds between two looks at a running dump for a failed frame (``stop_on_failure``)
POLL_S = 5.0

#: LAMMPS errors before the first thermo line that are the model's fault (failure at step 0)
_MODEL_ERRORS = ("non-finite", "NaN", "Lost atoms", "Out of range", "Bond atoms missing")


def _failure_monitor(dump: Path, checker: StabilityChecker) -> Callable[[], bool]:
    """True once a frame appended to ``dump`` fails the criteria (the run can stop there:
    the record is read from the frames up to the first failure either way)."""
    from ffpt.lammps.io import DumpTail

    tail = DumpTail(dump)

    def failed() -> bool:
        return any(checker.failure(fr.positions, fr.cell, fr.pbc) is not None
                   for fr in tail.new_frames())
    return failed


def run_one(run: dict, atoms, types: list[str], checker: StabilityChecker,
            timeout: float | None = None, stop_on_failure: bool = True) -> dict:
    """One MD run in ``run['dir']``; returns its record (see :func:`run_stability`).
    ``stop_on_failure`` ends LAMMPS soon after the first failing frame (same record)."""
    from ffpt.lammps.io import langevin_input, read_dump_frames, read_log, write_data
    from ffpt.lammps.runner import LammpsError, failure_message, run_lammps

    d = Path(run["dir"])
    s = run["settings"]
    write_data(atoms, d / "start.data", types, rotate=True)
    t_halt = checker.c.t_factor * s["temperature_K"]
    (d / "in.lmp").write_text(langevin_input(
        s["artifact"], types, s["temperature_K"], s["steps"], s["timestep_fs"], s["friction_ps"],
        s["seed"], s["seed"] + 100003, s["dump_every"], s["dump_every"], atoms.pbc,
        checker.c.t_factor))
    monitor = _failure_monitor(d / "dump.lammpstrj", checker) if stop_on_failure else None
    lmp = run_lammps("in.lmp", d, threads=1, timeout=timeout, check=False, screen=False,
                     monitor=monitor, poll_s=POLL_S)
    log = read_log(d / "log.lammps") if (d / "log.lammps").is_file() else None
    thermo = log.thermo if log else {}
    error = log.errors[0] if log and log.errors else None
    if not thermo and not lmp.timed_out and not (
            error and any(k in error for k in _MODEL_ERRORS)):
        raise LammpsError(f"run {d} could not start: " + failure_message(lmp))
    frames = read_dump_frames(d / "dump.lammpstrj") if (d / "dump.lammpstrj").is_file() else []
    completed = max([int(thermo["Step"][-1])] if thermo else [0] + [f.step for f in frames])
    if lmp.stopped and frames:  # the log may not be flushed up to the dump's last frame
        completed = max(completed, frames[-1].step)
    if log and log.halt_step is not None:
        completed = min(completed, log.halt_step)
    fail_step, reason, event_step, event = None, None, None, None
    for fr in frames:
        if fr.step > completed:
            break
        why = checker.failure(fr.positions, fr.cell, fr.pbc)
        if why is not None:
            fail_step, reason = fr.step, why
            break
        if event is None and checker.c.system == "reactive":
            event = checker.composition_change(fr.positions, fr.cell, fr.pbc)
            event_step = fr.step if event else None
    if thermo and "Temp" in thermo:
        hot = np.flatnonzero(~np.isfinite(thermo["Temp"]) | (thermo["Temp"] > t_halt))
        if len(hot) and (fail_step is None or thermo["Step"][hot[0]] < fail_step):
            fail_step = int(thermo["Step"][hot[0]])
            reason = f"temperature {thermo['Temp'][hot[0]]:.0f} K > {t_halt:.0f} K"
    if fail_step is None and log and log.halt_step is not None:
        fail_step = log.halt_step
        reason = f"temperature {log.halt_value:.0f} K > {t_halt:.0f} K (fix halt)"
    if fail_step is None and lmp.stopped:  # the last frames were not flushed: read them again
        raise LammpsError(f"run {d}: stopped at a failure the dump does not show; rerun it")
    if fail_step is None and not lmp.timed_out and completed < s["steps"]:
        fail_step = completed
        reason = f"LAMMPS stopped: {error}" if error else "MD stopped early (see log.lammps)"
    dt_ps = s["timestep_fs"] / 1000.0
    failed = fail_step is not None
    end = fail_step if failed else completed
    return {
        "model": s["model"], "temperature_K": s["temperature_K"], "seed": s["seed"],
        "steps_requested": s["steps"], "steps_completed": int(min(completed, s["steps"])),
        "failed": failed, "failure_step": fail_step, "reason": reason or (
            "timed out (censored)" if lmp.timed_out else "stable"),
        "time_ps": end * dt_ps, "timed_out": lmp.timed_out,
        "composition_change": event, "event_step": event_step,
        "event_time_ps": None if event_step is None else event_step * dt_ps,
        "mean_temperature_K": float(np.nanmean(thermo["Temp"])) if thermo else None,
        "wall_s": lmp.wall_s, "lammps_error": None if lmp.stopped else error,
        "stopped_at_failure": lmp.stopped,
    }


# ----------------------------------------------------------------------------- the study


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atoms_hash(atoms) -> str:
    h = hashlib.sha256()
    for arr in (atoms.numbers, np.round(atoms.positions, 8), np.round(atoms.cell.array, 8),
                atoms.pbc):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _model_elements(artifact: Path) -> list[str]:
    from ffpt.deploy.artifact import read_metadata

    return list(read_metadata(artifact).elements)


def plan_runs(models: dict[str, str | os.PathLike], atoms, temperatures, seeds, steps: int,
              timestep_fs: float, friction_ps: float, criteria: Criteria, workdir: Path,
              dump_every: int, overwrite: bool) -> tuple[list[dict], list[dict]]:
    """(runs to do, finished records to reuse). Refuses changed settings unless ``overwrite``."""
    start_hash = _atoms_hash(atoms)
    present = set(atoms.get_chemical_symbols())
    todo, done = [], []
    for name, path in models.items():
        art = Path(path).resolve()
        if not art.is_file():
            raise FileNotFoundError(f"model {name}: artifact {art} does not exist")
        missing = sorted(present - set(_model_elements(art)))
        if missing:
            raise ValueError(f"model {name} ({art.name}) does not know elements {missing} of "
                             "the start structure; pick a model trained on them")
        sha = _sha256(art)
        for temp in temperatures:
            for seed in seeds:
                settings = {
                    "model": name, "artifact": str(art), "artifact_sha256": sha,
                    "start_sha256": start_hash, "temperature_K": float(temp), "seed": int(seed),
                    "steps": int(steps), "timestep_fs": float(timestep_fs),
                    "friction_ps": float(friction_ps), "dump_every": int(dump_every),
                    "criteria": asdict(criteria), "thermostat": THERMOSTAT,
                }
                d = workdir / "runs" / name / f"T{float(temp):g}" / f"seed{int(seed)}"
                run = {"dir": str(d), "settings": settings}
                old = d / "settings.json"
                if old.is_file():
                    prev = json.loads(old.read_text())
                    if prev != settings and not overwrite:
                        diff = sorted(k for k in set(prev) | set(settings)
                                      if prev.get(k) != settings.get(k))
                        raise ValueError(f"{d} holds a run with other settings ({', '.join(diff)}"
                                         " differ); use --overwrite to replace it or another "
                                         "output folder")
                    if prev == settings and (d / "record.json").is_file():
                        done.append(json.loads((d / "record.json").read_text()))
                        continue
                todo.append(run)
    return todo, done


def run_stability(
    models: dict[str, str | os.PathLike],
    start,
    temperatures: Sequence[float],
    seeds: int | Sequence[int],
    steps: int,
    timestep_fs: float = 0.5,
    friction_ps: float = 2.0,
    system: str = "auto",
    workdir: str | os.PathLike = "stability",
    jobs: int = 2,
    dump_every: int = 20,
    criteria: dict | None = None,
    overwrite: bool = False,
    timeout: float | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    stop_on_failure: bool = True,
) -> dict:
    """Langevin MD of every model x temperature x seed in LAMMPS; returns the summary.

    ``models``: name -> deployed artifact. ``start``: an ASE-readable file or ``Atoms``.
    ``seeds``: a count (seeds 1..N) or a list. ``friction_ps``: Langevin friction (1/ps; the
    damping time is its inverse). ``system``: molecule, water, reactive or auto.
    ``criteria``: overrides of :class:`Criteria` fields. ``jobs`` LAMMPS processes run at once
    (one thread each). Each run writes ``runs/<model>/T<K>/seed<n>/`` (input, log, dump,
    ``settings.json``, ``record.json``) under ``workdir``; finished runs with the same settings
    are reused, changed settings raise unless ``overwrite``. ``stop_on_failure`` ends a run
    soon after its first failing frame (the record is the same; the dump is shorter). Writes
    ``summary.json``, ``summary.md`` and ``survival.png``.
    """
    from ase.data import atomic_numbers
    from ase.io import read

    from ffpt.analysis.stability_report import summarize, write_report

    atoms = read(start) if isinstance(start, str | os.PathLike) else start.copy()
    if not models:
        raise ValueError("give at least one model (NAME=ARTIFACT)")
    if steps <= 0 or dump_every <= 0 or timestep_fs <= 0 or friction_ps <= 0:
        raise ValueError("steps, dump_every, timestep and friction must be positive")
    temperatures = [float(t) for t in temperatures]
    if not temperatures or min(temperatures) <= 0:
        raise ValueError("give at least one positive temperature (K)")
    seeds = list(range(1, int(seeds) + 1)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seeds or min(seeds) <= 0:
        raise ValueError("seeds must be a positive count or positive integers (LAMMPS seeds)")
    crit = dict(criteria or {})
    crit["system"] = detect_system(atoms, crit.get("fragment_scale", 1.5)) if system == "auto" \
        else system
    crit = Criteria(**crit)
    workdir = Path(workdir)
    todo, done = plan_runs(models, atoms, temperatures, seeds, steps, timestep_fs, friction_ps,
                           crit, workdir, dump_every, overwrite)
    checker = StabilityChecker(atoms, crit)
    types = sorted(set(atoms.get_chemical_symbols()), key=lambda s: atomic_numbers[s])
    echo(f"stability: {len(models)} model(s) x {len(temperatures)} temperature(s) x "
         f"{len(seeds)} seed(s), system {crit.system}; {len(done)} run(s) done, {len(todo)} to "
         f"run with {jobs} LAMMPS process(es) in {workdir}")
    records = list(done)
    for run in todo:
        d = Path(run["dir"])
        if d.exists():
            shutil.rmtree(d)  # an interrupted run with these settings, or --overwrite
        d.mkdir(parents=True)
        _write_json(d / "settings.json", run["settings"])

    def one(run: dict) -> dict:
        rec = run_one(run, atoms, types, checker, timeout, stop_on_failure)
        _write_json(Path(run["dir"]) / "record.json", rec)
        return rec

    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(todo), unit="run", desc="stability", disable=not progress) as bar:
        futures = [pool.submit(one, r) for r in todo]
        try:
            for fut in as_completed(futures):
                records.append(fut.result())
                bar.update()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    summary = summarize(records, list(models), temperatures, crit, {
        "start": str(start) if isinstance(start, str | os.PathLike) else "Atoms",
        "steps": steps, "timestep_fs": timestep_fs, "friction_ps": friction_ps,
        "dump_every": dump_every, "seeds": seeds,
        "models": {k: str(Path(v).resolve()) for k, v in models.items()}})
    write_report(summary, workdir)
    return summary
