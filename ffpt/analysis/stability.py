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

from ffpt.lammps.chunks import chunk_dir, chunk_records, chunk_seed, merge_by_step, remove_chunks
from ffpt.lammps.io import THERMOSTAT
from ffpt.provenance import file_sha256

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


#: steps per LAMMPS chunk of a run (``chunk_steps``); an interrupted run resumes at its chunk
DEFAULT_CHUNK_STEPS = 10_000


def _failure_monitor(dump: Path, checker: StabilityChecker,
                     offset: int = 0) -> Callable[[], bool]:
    """True once a frame appended to ``dump`` after byte ``offset`` fails the criteria (the
    run can stop there: the record is read from the frames up to the first failure either
    way)."""
    from ffpt.lammps.io import DumpTail

    tail = DumpTail(dump, offset)

    def failed() -> bool:
        return any(checker.failure(fr.positions, fr.cell, fr.pbc) is not None
                   for fr in tail.new_frames())
    return failed


def finished_chunks(run_dir: Path) -> list[dict]:
    """Records of a run's finished chunks in order, up to the first one without a record and
    up to one that ends the run (failure, timeout, last step)."""
    return chunk_records(run_dir, lambda r: r["ends_run"])


def _resume(d: Path) -> list[dict]:
    """The finished chunks of run ``d`` to continue from; later chunk folders are removed and
    the dump is cut back to the end of the last finished chunk (an interrupted chunk's
    frames go)."""
    recs = finished_chunks(d)
    dump = d / "dump.lammpstrj"
    size = recs[-1]["dump_bytes"] if recs else 0
    if size and (not dump.is_file() or dump.stat().st_size < size):
        recs, size = [], 0  # the dump lost frames of finished chunks: start again
    remove_chunks(d, len(recs))
    if dump.is_file():
        os.truncate(dump, size)
    return recs


def _run_chunk(d: Path, k: int, types: list[str], pbc, checker: StabilityChecker,
               s: dict, timeout: float | None, stop_on_failure: bool,
               find_event: bool) -> dict:
    """Chunk ``k`` of run ``d`` (steps ``k`` x ``chunk_steps`` on) in ``d/chunkNNNN``; returns
    its record (failure or event found in its frames and thermo, completed step, dump size)."""
    from ffpt.lammps.io import langevin_input, read_dump_frames, read_log
    from ffpt.lammps.runner import LammpsError, failure_message, run_lammps

    step0 = k * s["chunk_steps"]
    n = min(s["chunk_steps"], s["steps"] - step0)
    c, dump = chunk_dir(d, k), d / "dump.lammpstrj"
    c.mkdir()
    offset = dump.stat().st_size if dump.is_file() else 0
    t_halt = checker.c.t_factor * s["temperature_K"]
    (c / "in.lmp").write_text(langevin_input(
        s["artifact"], types, s["temperature_K"], n, s["timestep_fs"], s["friction_ps"],
        s["seed"], chunk_seed(s["seed"] + 100003, k), s["dump_every"], s["dump_every"], pbc,
        checker.c.t_factor, data=f"../{chunk_dir(d, k - 1).name}/final.data" if k else
        "../start.data", dump="../dump.lammpstrj", step0=step0, continued=k > 0,
        final="final.data"))
    monitor = _failure_monitor(dump, checker, offset) if stop_on_failure else None
    lmp = run_lammps("in.lmp", c, threads=1, timeout=timeout, check=False, screen=False,
                     monitor=monitor, poll_s=POLL_S)
    log = read_log(c / "log.lammps") if (c / "log.lammps").is_file() else None
    thermo = log.thermo if log else {}
    if thermo and k:  # the first line repeats the previous chunk's last
        keep = thermo["Step"] > step0
        thermo = {key: v[keep] for key, v in thermo.items()}
    error = log.errors[0] if log and log.errors else None
    if not (log and log.thermo) and not lmp.timed_out and not (
            error and any(e in error for e in _MODEL_ERRORS)):
        raise LammpsError(f"run {c} could not start: " + failure_message(lmp))
    frames = [fr for fr in (read_dump_frames(dump, offset) if dump.is_file() else [])
              if fr.step > step0 or not k]
    completed = max([int(thermo["Step"][-1])] if thermo else [step0] + [f.step for f in frames])
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
        if find_event and event is None and checker.c.system == "reactive":
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
        raise LammpsError(f"run {c}: stopped at a failure the dump does not show; rerun it")
    if fail_step is None and not lmp.timed_out and completed < step0 + n:
        fail_step = completed
        reason = f"LAMMPS stopped: {error}" if error else "MD stopped early (see log.lammps)"
    if fail_step is None and not lmp.timed_out and step0 + n < s["steps"] and not (
            c / "final.data").is_file():
        raise LammpsError(f"run {c}: no final.data to continue from: " + failure_message(lmp))
    return {
        "chunk": k, "step0": step0, "steps": n, "seed2": chunk_seed(s["seed"] + 100003, k),
        "steps_completed": int(min(completed, step0 + n)), "failure_step": fail_step,
        "reason": reason, "timed_out": lmp.timed_out, "composition_change": event,
        "event_step": event_step, "wall_s": lmp.wall_s,
        "lammps_error": None if lmp.stopped else error, "stopped_at_failure": lmp.stopped,
        "dump_bytes": dump.stat().st_size if dump.is_file() else 0,
        "ends_run": lmp.timed_out or step0 + n >= s["steps"] or (fail_step is not None and (
            stop_on_failure or not (c / "final.data").is_file())),
    }


def _thermo_temperatures(d: Path, n: int) -> np.ndarray:
    """Temperatures of the thermo lines of a run's first ``n`` chunks as one series."""
    from ffpt.lammps.io import read_log

    logs = [read_log(chunk_dir(d, k) / "log.lammps") for k in range(n)
            if (chunk_dir(d, k) / "log.lammps").is_file()]
    return np.asarray(merge_by_step([(log.thermo["Step"], log.thermo["Temp"]) for log in logs
                                     if "Temp" in log.thermo]), float)


def run_one(run: dict, atoms, types: list[str], checker: StabilityChecker,
            timeout: float | None = None, stop_on_failure: bool = True) -> dict:
    """One MD run in ``run['dir']`` as consecutive chunks of ``chunk_steps`` (continuing after
    its last finished chunk); returns its record (see :func:`run_stability`). With
    ``stop_on_failure`` a failed chunk is the last one and LAMMPS ends soon after the first
    failing frame (same record); without it the run goes on to its full length."""
    from ffpt.lammps.io import write_data

    d = Path(run["dir"])
    s = run["settings"]
    recs = _resume(d)
    if not recs:
        write_data(atoms, d / "start.data", types, rotate=True)
    elif (recs[-1]["failure_step"] is None and not recs[-1]["timed_out"]
          and recs[-1]["step0"] + recs[-1]["steps"] < s["steps"]):
        recs[-1]["ends_run"] = False  # the run was extended (``steps`` raised): go on
    while not (recs and recs[-1]["ends_run"]):
        spent = sum(r["wall_s"] for r in recs)
        left = None if timeout is None else max(1.0, timeout - spent)
        rec = _run_chunk(d, len(recs), types, atoms.pbc, checker, s, left, stop_on_failure,
                         not any(r["composition_change"] or r["failure_step"] is not None
                                 for r in recs))
        _write_json(chunk_dir(d, len(recs)) / "record.json", rec)
        recs.append(rec)
    last = recs[-1]
    first = next((r for r in recs if r["failure_step"] is not None), last)  # past failure
    event = next((r for r in recs if r["composition_change"]), None)
    dt_ps = s["timestep_fs"] / 1000.0
    failed = first["failure_step"] is not None
    end = first["failure_step"] if failed else last["steps_completed"]
    temps = _thermo_temperatures(d, len(recs))
    return {
        "model": s["model"], "temperature_K": s["temperature_K"], "seed": s["seed"],
        "steps_requested": s["steps"], "steps_completed": last["steps_completed"],
        "failed": failed, "failure_step": first["failure_step"], "reason": first["reason"] or (
            "timed out (censored)" if last["timed_out"] else "stable"),
        "time_ps": end * dt_ps, "timed_out": last["timed_out"],
        "composition_change": event and event["composition_change"],
        "event_step": event and event["event_step"],
        "event_time_ps": None if event is None else event["event_step"] * dt_ps,
        "mean_temperature_K": float(np.nanmean(temps)) if len(temps) else None,
        "wall_s": sum(r["wall_s"] for r in recs), "lammps_error": last["lammps_error"],
        "stopped_at_failure": last["stopped_at_failure"], "chunks": len(recs),
    }


# ----------------------------------------------------------------------------- the study


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
              dump_every: int, overwrite: bool,
              chunk_steps: int = DEFAULT_CHUNK_STEPS) -> tuple[list[dict], list[dict]]:
    """(runs to do, finished records to reuse). Refuses changed settings unless ``overwrite``.
    A run to do is ``fresh`` unless it continues finished chunks of the same settings. A
    finished run made before runs went in chunks (settings without ``chunk_steps``, the rest
    the same) is reused."""
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
        sha = file_sha256(art)
        for temp in temperatures:
            for seed in seeds:
                settings = {
                    "model": name, "artifact": str(art), "artifact_sha256": sha,
                    "start_sha256": start_hash, "temperature_K": float(temp), "seed": int(seed),
                    "steps": int(steps), "timestep_fs": float(timestep_fs),
                    "friction_ps": float(friction_ps), "dump_every": int(dump_every),
                    "criteria": asdict(criteria), "thermostat": THERMOSTAT,
                    "chunk_steps": min(int(chunk_steps), int(steps)),
                }
                d = workdir / "runs" / name / f"T{float(temp):g}" / f"seed{int(seed)}"
                run = {"dir": str(d), "settings": settings, "fresh": True}
                old = d / "settings.json"
                if old.is_file():
                    prev = json.loads(old.read_text())
                    if "chunk_steps" not in prev:  # an unchunked run: same physics
                        prev = {**prev, "chunk_steps": settings["chunk_steps"]}
                        if prev == settings and not (d / "record.json").is_file():
                            prev = {}  # unfinished: nothing to continue from
                    rec_path = d / "record.json"
                    rec = json.loads(rec_path.read_text()) if rec_path.is_file() else None
                    longer = _longer(prev, settings)
                    if longer and rec is not None and rec["failed"]:
                        _write_json(old, settings)  # a longer run ends at the same failure
                        rec = {**rec, "steps_requested": settings["steps"]}
                        _write_json(rec_path, rec)
                        done.append(rec)
                        continue
                    if longer and _can_continue(d):  # extend the MD
                        _write_json(old, settings)
                        rec_path.unlink(missing_ok=True)
                        run["fresh"] = False
                        todo.append(run)
                        continue
                    diff = sorted(k for k in set(prev) | set(settings)
                                  if prev.get(k) != settings.get(k)) if prev else []
                    if diff and overwrite:
                        run["replaces"] = diff  # said before the old run is removed
                    if diff and not overwrite:
                        raise ValueError(f"{d} holds a run with other settings ({', '.join(diff)}"
                                         " differ); use --overwrite to replace it or another "
                                         "output folder")
                    if prev == settings and rec is not None:
                        done.append(rec)
                        continue
                    run["fresh"] = prev != settings
                todo.append(run)
    return todo, done


def _longer(prev: dict, settings: dict) -> bool:
    """``settings`` ask for the run made with ``prev`` to go on longer: only ``steps`` grew,
    and every earlier chunk was a full one, so new chunks follow the old ones exactly as in an
    uninterrupted run of the new length (same chunk seeds, same boundaries)."""
    if not prev or {**prev, "steps": settings["steps"]} != settings:
        return False
    return settings["steps"] > prev["steps"] and not prev["steps"] % prev["chunk_steps"]


def _can_continue(d: Path) -> bool:
    """The run in ``d`` has a finished chunk whose final state a new chunk can start from."""
    recs = finished_chunks(d)
    return bool(recs) and (chunk_dir(d, len(recs) - 1) / "final.data").is_file()


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
    chunk_steps: int = DEFAULT_CHUNK_STEPS,
) -> dict:
    """Langevin MD of every model x temperature x seed in LAMMPS; returns the summary.

    ``models``: name -> deployed artifact. ``start``: an ASE-readable file or ``Atoms``.
    ``seeds``: a count (seeds 1..N) or a list. ``friction_ps``: Langevin friction (1/ps; the
    damping time is its inverse). ``system``: molecule, water, reactive or auto.
    ``criteria``: overrides of :class:`Criteria` fields. ``jobs`` LAMMPS processes run at once
    (one thread each). Each run writes ``runs/<model>/T<K>/seed<n>/`` (input, log, dump,
    ``settings.json``, ``record.json``) under ``workdir``; finished runs with the same settings
    are reused, changed settings raise unless ``overwrite``. A run goes in LAMMPS chunks of
    ``chunk_steps`` (``chunkNNNN/``: input, log, final state, a record each; one dump), so an
    interrupted run resumes after its last finished chunk. ``stop_on_failure`` ends a run
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
    if chunk_steps <= 0 or (chunk_steps < steps and chunk_steps % dump_every):
        raise ValueError(f"chunk_steps ({chunk_steps}) must be a positive multiple of "
                         f"dump_every ({dump_every}); change one of them")
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
                           crit, workdir, dump_every, overwrite, chunk_steps)
    checker = StabilityChecker(atoms, crit)
    types = sorted(set(atoms.get_chemical_symbols()), key=lambda s: atomic_numbers[s])
    resumed = sum(not r["fresh"] for r in todo)
    echo(f"stability: {len(models)} model(s) x {len(temperatures)} temperature(s) x "
         f"{len(seeds)} seed(s), system {crit.system}; {len(done)} run(s) done, {len(todo)} to "
         f"run{f' ({resumed} resumed)' if resumed else ''} with {jobs} LAMMPS process(es) in "
         f"{workdir}")
    replaced = [r for r in todo if r.get("replaces")]
    if replaced:
        keys = sorted({k for r in replaced for k in r["replaces"]})
        echo(f"stability: replacing {len(replaced)} run(s) made with other settings "
             f"({', '.join(keys)} differ), e.g. {replaced[0]['dir']}")
    records = list(done)
    for run in (r for r in todo if r["fresh"]):
        d = Path(run["dir"])
        if d.exists():
            shutil.rmtree(d)  # --overwrite, or an unchunked run without a record
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
        "dump_every": dump_every, "chunk_steps": chunk_steps, "seeds": seeds,
        "models": {k: str(Path(v).resolve()) for k, v in models.items()}})
    write_report(summary, workdir)
    return summary
