"""LAMMPS files: ``atom_style atomic`` data files, text ``dump custom`` frames, logs/thermo."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: LAMMPS force->nktv2p per unit style: pressure = nktv2p * energy / volume
NKTV2P = {"metal": 1.6021765e6, "real": 68568.415}
NKTV2P_METAL = NKTV2P["metal"]  # bar per eV/A^3


# ----------------------------------------------------------------------------- data files


def lammps_cell(atoms) -> tuple[list[float], list[float]]:
    """LAMMPS box ``(lo, [xhi-xlo, yhi-ylo, zhi-zlo, xy, xz, yz])`` of a cell in LAMMPS form
    (a along x, b in the xy plane: lower-triangular cell matrix)."""
    c = np.asarray(atoms.cell.array)
    if abs(c[0, 1]) > 1e-12 or abs(c[0, 2]) > 1e-12 or abs(c[1, 2]) > 1e-12:
        raise ValueError("cell is not in LAMMPS form (lower triangular); rotate it first "
                         "(write_data(..., rotate=True) does)")
    return [0.0, 0.0, 0.0], [c[0, 0], c[1, 1], c[2, 2], c[1, 0], c[2, 0], c[2, 1]]


def to_lammps_frame(atoms):
    """A copy of periodic ``atoms`` rotated so that its cell is in LAMMPS form (same distances)."""
    out = atoms.copy()
    rcell, q = atoms.cell.standard_form()
    out.set_cell(rcell, scale_atoms=False)
    out.positions = atoms.positions @ q.T
    return out


def write_data(atoms, path: str | os.PathLike, elements: list[str], margin: float = 10.0,
               rotate: bool = False) -> None:
    """``atom_style atomic`` data file, one LAMMPS type per entry of ``elements`` (in order).

    Periodic atoms are wrapped into the cell, which must be in LAMMPS form (lower triangular)
    or, with ``rotate=True``, is rotated into it; non-periodic systems get an orthogonal box
    ``margin`` Angstrom around the atoms. The file is written atomically.
    """
    from ase.data import atomic_masses, atomic_numbers

    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise ValueError(f"atoms have elements {unknown} that are not LAMMPS types {elements}")
    if rotate and atoms.pbc.any():
        atoms = to_lammps_frame(atoms)
    pos = np.asarray(atoms.positions, dtype=np.float64)
    if atoms.pbc.any():
        lo, (lx, ly, lz, xy, xz, yz) = lammps_cell(atoms)
    else:
        lo = list(pos.min(0) - margin)
        lx, ly, lz = (pos.max(0) + margin) - np.asarray(lo)
        xy = xz = yz = 0.0
    tindex = {s: k + 1 for k, s in enumerate(elements)}
    lines = ["ffpt data file", "", f"{len(atoms)} atoms", f"{len(elements)} atom types", ""]
    lines += [f"{lo[0]:.17g} {lo[0] + lx:.17g} xlo xhi", f"{lo[1]:.17g} {lo[1] + ly:.17g} ylo yhi",
              f"{lo[2]:.17g} {lo[2] + lz:.17g} zlo zhi"]
    if atoms.pbc.any() and (xy or xz or yz):
        lines.append(f"{xy:.17g} {xz:.17g} {yz:.17g} xy xz yz")
    lines += ["", "Masses", ""]
    lines += [f"{k + 1} {atomic_masses[atomic_numbers[s]]:.6f}" for k, s in enumerate(elements)]
    lines += ["", "Atoms # atomic", ""]
    for i, (s, p) in enumerate(zip(atoms.get_chemical_symbols(), pos, strict=True)):
        lines.append(f"{i + 1} {tindex[s]} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g}")
    from ffpt.data.frames import atomic_write

    atomic_write(path, lambda f: f.write(("\n".join(lines) + "\n").encode()))


# ----------------------------------------------------------------------------- inputs

LANGEVIN_INPUT = """\
# ffpt: Langevin NVT MD with pair_style ffpt
units           metal
atom_style      atomic
boundary        {boundary}
read_data       {data}
pair_style      ffpt
pair_coeff      * * {artifact} {types}
neighbor        1.0 {neigh}
neigh_modify    every 1 delay 0 check yes
timestep        {dt_ps}
reset_timestep  {step0}
{velocity}fix             nve all nve
fix             thermostat all langevin {temperature} {temperature} {damp_ps} {seed2} zero {zero}
{temp_dof}thermo_style    custom step temp pe ke etotal press
thermo_modify   norm no flush yes
thermo          {thermo_every}
dump            traj all custom {dump_every} {dump} id type x y z
dump_modify     traj sort id{dump_more}
variable        T equal temp
fix             halt all halt {thermo_every} v_T > {t_halt} error soft
run             {steps}
{final}"""


#: The thermostat recipe of :func:`langevin_input`; it enters the stability settings, so runs
#: made with an earlier recipe are never reused. A molecule (no periodic direction) gets
#: ``zero no`` and T over all 3N degrees of freedom: ``zero yes`` takes the mean random force
#: off every atom, so the light atoms of a small molecule receive the heavy atoms' noise and
#: run hot (HO2 at a 300 K target: 746 K with ``zero yes``, 298 K with ``zero no``; aspirin's
#: H atoms ~1.3x the target). Periodic boxes keep ``zero yes`` (no centre-of-mass drift in
#: the MSD; the bias is ~2 % for 64 waters).
THERMOSTAT = "langevin/v2: molecules zero no + 3N dof; periodic zero yes"


def langevin_input(artifact: str | os.PathLike, types: list[str], temperature: float,
                   steps: int, timestep_fs: float, friction_ps: float, seed: int, seed2: int,
                   thermo_every: int, dump_every: int, pbc=(True, True, True),
                   t_factor: float = 10.0, data: str = "start.data",
                   dump: str = "dump.lammpstrj", step0: int = 0, continued: bool = False,
                   final: str | None = None) -> str:
    """LAMMPS input: ``fix nve`` + ``fix langevin`` (damping time 1/``friction_ps``) with
    ``pair_style ffpt``, velocities from ``seed``, thermo/dump every N steps, and a ``fix halt``
    when T exceeds ``t_factor`` x the target. Non-periodic directions are shrink-wrapped and,
    for a fully non-periodic system, the angular momentum is removed (see :data:`THERMOSTAT`
    for the random-force zeroing).

    Chunks of a long run (:mod:`ffpt.lammps.chunks`): the step counter starts at ``step0``;
    ``continued`` keeps the velocities of ``data`` (a previous chunk's ``final``) and appends
    to ``dump`` from the step after ``step0`` (that frame is the previous chunk's last);
    ``final`` names the ``write_data`` file of the end state (full precision, velocities and
    image flags)."""
    molecule = not any(pbc)
    rot = "no" if any(pbc) else "yes"
    return LANGEVIN_INPUT.format(
        zero="no" if molecule else "yes",
        temp_dof="compute_modify   thermo_temp extra/dof 0   # T over all 3N dof\n"
        if molecule else "",
        boundary=" ".join("p" if p else "s" for p in pbc), data=data,
        neigh="bin" if any(pbc) else "nsq",  # bins fail in a shrink-wrapped few-atom box
        artifact=Path(artifact).resolve(), types=" ".join(types), dt_ps=timestep_fs / 1000.0,
        temperature=float(temperature), seed2=int(seed2), step0=int(step0),
        velocity="" if continued else f"velocity        all create {float(temperature)} "
        f"{int(seed)} mom yes rot {rot} dist gaussian\n",
        damp_ps=1.0 / friction_ps, thermo_every=thermo_every, dump_every=dump_every, dump=dump,
        dump_more=f" append yes delay {int(step0) + 1}" if continued else "",
        t_halt=t_factor * float(temperature), steps=steps,
        final=f"write_data      {final} nocoeff\n" if final else "")


# ----------------------------------------------------------------------------- dumps


@dataclass
class DumpFrame:
    """One LAMMPS dump snapshot, rows sorted by atom id.

    ``positions`` are x y z (or xu yu zu when only those were dumped); ``cell`` rows are the
    box vectors, ``origin`` the box corner, ``pbc`` the periodic directions (``pp`` bounds);
    ``columns`` holds every dumped column by name (``id``, ``type``, ``fx``, ``ix``, ...).
    """

    step: int
    types: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    origin: np.ndarray
    pbc: np.ndarray = field(default_factory=lambda: np.ones(3, bool))
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def unwrapped(self) -> np.ndarray:
        """Unwrapped positions: ``xu yu zu`` if dumped, else ``x + image @ cell`` (needs
        ``ix iy iz``)."""
        if all(c in self.columns for c in ("xu", "yu", "zu")):
            return np.stack([self.columns[c] for c in ("xu", "yu", "zu")], 1)
        if not all(c in self.columns for c in ("ix", "iy", "iz")):
            raise ValueError("the dump has neither xu yu zu nor image flags ix iy iz; dump "
                             "'id type xu yu zu' or 'id type x y z ix iy iz'")
        image = np.stack([self.columns[c] for c in ("ix", "iy", "iz")], 1)
        return self.positions + image @ self.cell


def _box(header: str, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell, origin, pbc) from a ``ITEM: BOX BOUNDS`` header and its three lines."""
    flags = [t for t in header.split()[3:] if t not in ("xy", "xz", "yz")]
    pbc = np.array([f == "pp" for f in flags] if len(flags) == 3 else [True] * 3)
    if "xy" in header:  # triclinic: bounds include tilt; LAMMPS howto conversion
        xy, xz, yz = b[:, 2]
        xlo = b[0, 0] - min(0.0, xy, xz, xy + xz)
        xhi = b[0, 1] - max(0.0, xy, xz, xy + xz)
        ylo = b[1, 0] - min(0.0, yz)
        yhi = b[1, 1] - max(0.0, yz)
        cell = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, b[2, 1] - b[2, 0]]])
        return cell, np.array([xlo, ylo, b[2, 0]]), pbc
    return np.diag(b[:, 1] - b[:, 0]), b[:, 0].copy(), pbc


def read_dump_frames(path: str | os.PathLike, offset: int = 0) -> list[DumpFrame]:
    """All frames of a text ``dump custom`` (columns include ``id``; sorted by id), from byte
    ``offset`` on (a frame's start). A truncated last frame (crashed run) is dropped."""
    with open(path, "rb") as f:
        f.seek(offset)
        return parse_dump_text(f.read().decode(errors="replace"))


class DumpTail:
    """Reads the frames a running LAMMPS has appended to a text dump since the last call.

    A frame counts once the next frame's header has started (the last frame of a finished run
    is read by :func:`read_dump_frames`), so a frame being written is never half-parsed.
    """

    _HEAD = b"ITEM: TIMESTEP"

    def __init__(self, path: str | os.PathLike, offset: int = 0):
        self.path = Path(path)
        self.offset = offset  # a frame's start: frames before it are not read

    def new_frames(self) -> list[DumpFrame]:
        """Complete frames written since the previous call (``[]`` before the dump exists)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(self._HEAD)
        if end <= 0:
            return []
        self.offset += end
        return parse_dump_text(data[:end].decode(errors="replace"))


def parse_dump_text(text: str) -> list[DumpFrame]:
    """The complete frames of a text ``dump custom`` held in ``text``."""
    frames: list[DumpFrame] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("ITEM: TIMESTEP"):
            i += 1
            continue
        try:
            step = int(lines[i + 1])
            n = int(lines[i + 3])
            b = np.array([[float(v) for v in lines[i + 5 + k].split()] for k in range(3)])
            cols = lines[i + 8].split()[2:]
            data = np.array([lines[i + 9 + k].split() for k in range(n)], dtype=float)
        except (IndexError, ValueError):
            break  # truncated
        if data.shape != (n, len(cols)):
            break
        cell, origin, pbc = _box(lines[i + 4], b)
        if "id" in cols:
            data = data[np.argsort(data[:, cols.index("id")], kind="stable")]
        columns = {c: data[:, k] for k, c in enumerate(cols)}
        xyz = [c for c in ("x", "y", "z") if c in cols] or [c for c in ("xu", "yu", "zu")
                                                             if c in cols]
        pos = data[:, [cols.index(c) for c in xyz]] if len(xyz) == 3 else np.zeros((n, 0))
        types = columns["type"].astype(int) if "type" in columns else np.ones(n, int)
        frames.append(DumpFrame(step, types, pos, cell, origin, pbc, columns))
        i += 9 + n
    return frames


read_lammps_dump = read_dump_frames  # the name ffpt.md.analysis used


def read_dump(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Last complete frame of a text ``dump custom`` as a dict of columns sorted by ``id``."""
    frames = read_dump_frames(path)
    if not frames:
        raise ValueError(f"{path}: no complete dump frame")
    return frames[-1].columns


# ----------------------------------------------------------------------------- logs


def read_thermo(log_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Thermo table(s) of a LAMMPS log as columns: all ``run`` blocks with the same columns as
    the last block, concatenated; ``{}`` when no row was written."""
    return read_log(log_path).thermo


@dataclass
class LammpsLog:
    """What :func:`read_log` finds in a LAMMPS log (or screen output)."""

    thermo: dict[str, np.ndarray]
    errors: list[str]
    warnings: list[str]
    halt_step: int | None = None  # a ``fix halt`` condition met (step)
    halt_value: float | None = None
    loop_time_s: float | None = None  # of the last run
    procs: int | None = None
    steps: int | None = None
    ns_per_day: float | None = None
    steps_per_s: float | None = None

    @property
    def last_step(self) -> int:
        """Last thermo step written (0 if none)."""
        return int(self.thermo["Step"][-1]) if self.thermo.get("Step") is not None else 0


_HALT = re.compile(r"Fix halt condition for fix-id \S+ met on step (\d+) with value (\S+)")
_LOOP = re.compile(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps")
_PERF = re.compile(r"Performance: ([\d.eE+-]+) ns/day.*?([\d.eE+-]+) timesteps/s")


def read_log(path_or_text: str | os.PathLike, text: bool = False) -> LammpsLog:
    """Parse a LAMMPS log file (or, with ``text=True``, log/screen text)."""
    src = str(path_or_text) if text else Path(path_or_text).read_text(errors="replace")
    blocks: list[tuple[list[str], list[list[float]]]] = []
    errors, warnings = [], []
    in_table = False
    for line in src.splitlines():
        if line.startswith("ERROR"):
            errors.append(line.strip())
        elif line.startswith("WARNING"):
            warnings.append(line.strip())
        parts = line.split()
        if parts[:1] == ["Step"]:
            blocks.append((parts, []))
            in_table = True
            continue
        if in_table:
            if line.startswith("Loop time"):
                in_table = False
                continue
            try:
                vals = [float(v) for v in parts]
            except ValueError:
                continue  # a message inside the table (warning, fix halt, ...)
            if len(vals) == len(blocks[-1][0]):
                blocks[-1][1].append(vals)
    thermo: dict[str, np.ndarray] = {}
    if blocks:
        cols = blocks[-1][0]
        rows = [r for c, rs in blocks if c == cols for r in rs]
        if rows:
            arr = np.array(rows)
            thermo = {c: arr[:, k] for k, c in enumerate(cols)}
    out = LammpsLog(thermo, errors, warnings)
    if m := _HALT.search(src):
        out.halt_step, out.halt_value = int(m.group(1)), float(m.group(2))
    if loops := _LOOP.findall(src):
        t, p, n = loops[-1]
        out.loop_time_s, out.procs, out.steps = float(t), int(p), int(n)
    if perf := _PERF.findall(src):
        out.ns_per_day, out.steps_per_s = float(perf[-1][0]), float(perf[-1][1])
    return out
