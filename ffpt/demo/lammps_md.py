"""NVT MD of a deployed model in LAMMPS (``pair_style ffpt``), run as a separate ``lmp``
process so that a blown-up or crashing run cannot take the demo down with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ffpt.analysis.water_stability import CRITERION, check_stability
from ffpt.lammps.io import langevin_input, read_dump_frames, read_log, write_data
from ffpt.lammps.runner import LammpsError, failure_message, run_lammps


def run_nvt(artifact: str, elements: list[str], start: str, workdir: Path, md: dict,
            stability: dict, echo: Callable[[str], None] = print,
            progress: bool = False) -> dict:
    """Run ``md['steps']`` steps of Langevin NVT from ``start``; returns the stability record
    (steps completed, failure step and reason by
    :data:`ffpt.analysis.water_stability.CRITERION`)."""
    from ase.data import atomic_numbers
    from ase.io import read

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    atoms = read(start)
    present = sorted(set(atoms.get_chemical_symbols()), key=lambda s: atomic_numbers[s])
    missing = [s for s in present if s not in elements]
    if missing:
        raise ValueError(f"the start box has elements {missing} that the model does not know")
    types = present
    write_data(atoms, workdir / "start.data", types, rotate=True)
    steps = int(md["steps"])
    text = langevin_input(
        artifact, types, float(md["temperature"]), steps, float(md["timestep"]),
        float(md["friction"]), int(md["seed"]), int(md["seed"]) + 1, int(md["thermo_every"]),
        int(md["dump_every"]))
    (workdir / "in.nvt.lmp").write_text(text)
    for f in ("dump.lammpstrj", "log.lammps"):
        (workdir / f).unlink(missing_ok=True)
    echo(f"    LAMMPS: lmp -in in.nvt.lmp (in {workdir})")
    run = run_lammps("in.nvt.lmp", workdir, threads=int(md.get("num_threads", 1)),
                     timeout=float(md.get("timeout_s", 600)), check=False, steps=steps,
                     progress=progress, desc=f"MD {Path(artifact).stem}", screen=False)
    rc, wall = run.returncode, run.wall_s
    log = read_log(workdir / "log.lammps") if (workdir / "log.lammps").exists() else None
    thermo = log.thermo if log else {}
    frames = read_dump_frames(workdir / "dump.lammpstrj") if (
        workdir / "dump.lammpstrj").exists() else []
    completed = max([int(thermo["Step"].max())] if thermo else [0]
                    + [f.step for f in frames])
    if (rc != 0 or run.timed_out) and not thermo:
        raise LammpsError("LAMMPS failed before the first step: " + failure_message(run))
    error_line = log.errors[0] if log and log.errors else None
    if log and log.halt_step is not None:
        stop = (f"temperature {log.halt_value:.0f} K > {10 * float(md['temperature']):.0f}"
                f" K at step {log.halt_step} (energy blow-up, run stopped)")
    elif run.timed_out:
        stop = f"timed out after {float(md.get('timeout_s', 600)):.0f} s"
    elif error_line:
        stop = f"LAMMPS stopped: {error_line}"
    else:
        stop = "MD stopped early (see the LAMMPS log)"
    z_of_type = np.array([atomic_numbers[s] for s in types])
    st = check_stability(frames, z_of_type, steps, completed,
                         min_distance=float(stability["min_distance"]),
                         max_oh=float(stability["max_oh"]),
                         min_oo=float(stability["min_oo"]), stop_reason=stop)
    ns_day = None
    if completed > 0 and wall > 0:
        ns_day = completed * float(md["timestep"]) * 1e-6 / (wall / 86400.0)
    rec = {
        **asdict(st),
        "criterion": CRITERION.format(**stability),
        "returncode": rc,
        "lammps_error": error_line,
        "wall_s": wall,
        "ns_per_day": ns_day,
        "mean_temperature_K": float(np.mean(thermo["Temp"])) if thermo else None,
        "dump": str(workdir / "dump.lammpstrj"),
        "log": str(workdir / "log.lammps"),
        "type_elements": types,
    }
    status = (f"FAILED at step {st.failure_step} ({st.reason})" if st.failed else "stable")
    echo(f"    {completed}/{steps} steps in {wall:.0f} s: {status}")
    return rec
