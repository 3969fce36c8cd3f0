"""Metadynamics through ASE: any ASE calculator biased by PLUMED, Langevin dynamics.

>>> from ffpt.md.metad import run_metad
>>> res = run_metad(atoms, calc, "plumed.dat", "runs/rxn09", steps=50_000,
...                 temperature_K=300, friction_per_ps=0.2, timestep_fs=0.2)
>>> res.hills, res.colvar   # PLUMED's files, written inside the output folder

The output folder holds ``plumed.dat`` (the input as run), PLUMED's own outputs (COLVAR,
HILLS, ... named in the input; PLUMED units nm, kJ/mol, ps unless the input has ``UNITS``),
``plumed.log``, ``trajectory.traj`` (ASE), ``md.log`` and ``metad.json`` (settings, progress).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from ffpt.plumed import ensure_kernel_env

# A box this large keeps PLUMED's periodic distances equal to the free-space ones for molecules.
MIN_VACUUM_BOX = 100.0  # Angstrom


@dataclass
class MetadSettings:
    """Langevin metadynamics settings (ASE route)."""

    steps: int
    temperature_K: float = 300.0
    friction_per_ps: float = 0.2
    timestep_fs: float = 0.2
    traj_every: int = 100
    log_every: int = 100
    seed: int | None = None
    restart: bool = False
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.temperature_K <= 0:
            raise ValueError(f"temperature must be positive (K), got {self.temperature_K}")
        if self.friction_per_ps < 0:
            raise ValueError(f"friction must be >= 0 (1/ps), got {self.friction_per_ps}")
        if not 0 < self.timestep_fs < 10:
            raise ValueError(f"timestep must be in fs and in (0, 10), got {self.timestep_fs}")
        if self.traj_every < 1 or self.log_every < 1:
            raise ValueError("traj_every and log_every must be >= 1 step")


@dataclass
class MetadResult:
    out_dir: Path
    plumed_input: Path
    plumed_log: Path
    trajectory: Path
    md_log: Path
    colvar: Path | None
    hills: Path | None
    steps_done: int
    wall_s: float


def read_plumed_input(path: str | os.PathLike) -> list[str]:
    """PLUMED input as one action per line (comments dropped, ``...`` continuations joined)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PLUMED input {path} not found")
    lines: list[str] = []
    pending: list[str] | None = None
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if pending is not None:
            if line.startswith("..."):
                lines.append(" ".join(pending))
                pending = None
            else:
                pending.append(line)
            continue
        if line.endswith("..."):
            pending = [line[:-3].strip()]
            continue
        lines.append(line)
    if pending is not None:
        raise ValueError(f"{path}: a '...' continuation block is not closed")
    if not lines:
        raise ValueError(f"{path} holds no PLUMED actions")
    return lines


def output_files(lines: list[str], action: str | None = None) -> list[str]:
    """FILE= targets of the PLUMED lines (optionally of one action, e.g. ``METAD``)."""
    out = []
    for line in lines:
        words = line.split()
        names = [w.rstrip(":") for w in words[:2]]
        if action is not None and action not in names:
            continue
        out += re.findall(r"\bFILE=(\S+)", line)
    return out


def check_temperature(lines: list[str], temperature_K: float) -> None:
    """Refuse a METAD/OPES TEMP= that differs from the thermostat temperature."""
    for line in lines:
        for t in re.findall(r"\bTEMP=([0-9.eE+-]+)", line):
            if abs(float(t) - temperature_K) > 1e-6 * max(1.0, temperature_K):
                raise ValueError(
                    f"PLUMED input sets TEMP={t} but the thermostat runs at {temperature_K} K; "
                    f"make them equal (or drop TEMP=: ffpt passes kT to PLUMED)"
                )


def prepare_atoms(atoms: Atoms) -> Atoms:
    """Copy of ``atoms`` with a cell PLUMED can use (a molecule without one gets a large box)."""
    atoms = atoms.copy()
    if atoms.cell.rank == 0:
        if atoms.pbc.any():
            raise ValueError("atoms are periodic but have no cell; set atoms.cell")
        extent = np.ptp(atoms.positions, axis=0).max() if len(atoms) else 0.0
        size = max(MIN_VACUUM_BOX, 2.0 * extent + 40.0)
        atoms.set_cell([size, size, size])
        atoms.center()
    elif atoms.cell.rank != 3:
        raise ValueError(f"atoms.cell has rank {atoms.cell.rank}; give a full 3D cell or none")
    return atoms


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_metad(
    atoms: Atoms,
    calc: Calculator,
    plumed_input: str | os.PathLike,
    out_dir: str | os.PathLike,
    steps: int,
    temperature_K: float = 300.0,
    friction_per_ps: float = 0.2,
    timestep_fs: float = 0.2,
    traj_every: int = 100,
    log_every: int = 100,
    seed: int | None = None,
    restart: bool = False,
    progress: bool = True,
) -> MetadResult:
    """Run Langevin metadynamics of ``atoms`` with ``calc`` biased by ``plumed_input``.

    ``restart=True`` continues a run in ``out_dir``: positions and momenta from the last
    trajectory frame, PLUMED in RESTART mode (HILLS appended and re-read).
    """
    from ase.calculators.plumed import Plumed
    from ase.io import Trajectory
    from ase.md import MDLogger
    from ase.md import velocitydistribution as vd
    from ase.md.langevin import Langevin
    from tqdm.auto import tqdm

    settings = MetadSettings(
        steps=int(steps),
        temperature_K=float(temperature_K),
        friction_per_ps=float(friction_per_ps),
        timestep_fs=float(timestep_fs),
        traj_every=int(traj_every),
        log_every=int(log_every),
        seed=seed,
        restart=bool(restart),
    )
    settings.check()
    lines = read_plumed_input(plumed_input)
    check_temperature(lines, settings.temperature_K)
    ensure_kernel_env()

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    state_file = out / "metad.json"
    traj_path = out / "trajectory.traj"
    atoms = prepare_atoms(atoms)
    rng = np.random.default_rng(seed)

    start_step = 0
    if settings.restart:
        if not (state_file.is_file() and traj_path.is_file()):
            raise FileNotFoundError(f"nothing to restart in {out} (no metad.json/trajectory.traj)")
        state = json.loads(state_file.read_text())
        with Trajectory(traj_path) as traj:
            last = traj[-1]
        start_step = int(state["last_frame_step"])
        atoms.set_positions(last.get_positions())
        atoms.set_momenta(last.get_momenta())
    else:
        thermalize = getattr(vd, "thermalize_momenta", vd.MaxwellBoltzmannDistribution)
        thermalize(atoms, temperature_K=settings.temperature_K, rng=rng)
        vd.Stationary(atoms)
    (out / "plumed.dat").write_text("\n".join(lines) + "\n")

    dt = settings.timestep_fs * units.fs
    kT = float(units.kB * settings.temperature_K)  # plain floats: the bindings reject numpy
    state = {"settings": asdict(settings), "steps_done": start_step,
             "last_frame_step": start_step, "plumed_input": str(Path(plumed_input).resolve())}
    t0 = time.perf_counter()
    with _cwd(out):
        bias = Plumed(calc=calc, input=lines, timestep=float(dt), atoms=atoms, kT=kT,
                      log="plumed.log", restart=settings.restart)
        bias.istep = start_step
        atoms.calc = bias
        dyn = Langevin(
            atoms,
            timestep=dt,
            temperature_K=settings.temperature_K,
            friction=settings.friction_per_ps / (1000.0 * units.fs),
            fixcm=False,  # ASE >= 3.28: fixcm=True samples NVT only approximately
            rng=rng,
        )
        mode = "a" if settings.restart else "w"
        traj = Trajectory(traj_path, mode, atoms)
        logger = MDLogger(dyn, atoms, str(out / "md.log"), header=not settings.restart,
                          peratom=False, mode=mode)
        done = {"n": start_step}

        def on_frame() -> None:
            traj.write()
            state["last_frame_step"] = done["n"]
            state["steps_done"] = done["n"]
            state_file.write_text(json.dumps(state, indent=1))

        bar = tqdm(total=settings.steps, disable=not progress, unit="step", desc="metad")

        def on_step() -> None:  # ASE also calls observers once before the first step
            done["n"] = start_step + dyn.nsteps
            if dyn.nsteps > 0:
                bar.update(1)
            elif settings.restart:
                return  # that frame is already the last one of the trajectory
            if done["n"] % settings.traj_every == 0:
                on_frame()

        dyn.attach(on_step, interval=1)
        dyn.attach(logger, interval=settings.log_every)
        try:
            dyn.run(settings.steps)
        finally:
            bar.close()
            traj.close()
            bias.plumed.finalize()  # flushes COLVAR/HILLS
            state["steps_done"] = done["n"]
            state["wall_s"] = time.perf_counter() - t0
            state_file.write_text(json.dumps(state, indent=1))

    def first(names: list[str]) -> Path | None:
        return out / names[0] if names else None

    return MetadResult(
        out_dir=out,
        plumed_input=out / "plumed.dat",
        plumed_log=out / "plumed.log",
        trajectory=traj_path,
        md_log=out / "md.log",
        colvar=first(output_files(lines, "PRINT")),
        hills=first(output_files(lines, "METAD")),
        steps_done=done["n"],
        wall_s=time.perf_counter() - t0,
    )
