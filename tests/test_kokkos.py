"""pair_style ffpt/kk (KOKKOS, OpenMP) against pair_style ffpt and the Python/ASE evaluation,
and ``ffpt patch-lammps``.

The KOKKOS tests need a KOKKOS LAMMPS with ffpt patched in: ``FFPT_LMP_KOKKOS=/path/to/lmp``
or the cached build of ``scripts/build_lammps_kokkos.sh`` for the current sources (30-60 min
cold); without one they skip. The patch-lammps tests run always (a fake source tree).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from click.testing import CliRunner
from conftest import aspirin_like, make_water_box
from toy_model import ToyModel

from ffpt.cli import main
from ffpt.deploy import deploy_model, load_deployed
from ffpt.lammps import run_lammps, single_point, write_data
from ffpt.lammps.patch import BEGIN, patch_lammps

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-8  # float64: eV/atom, eV/A, eV (per-atom energies), eV (virial)


def kokkos_lmp() -> tuple[str | None, str]:
    """(path of the KOKKOS lmp, or None; why not)."""
    env = os.environ.get("FFPT_LMP_KOKKOS")
    if env:
        return (env, "") if Path(env).is_file() else (None, f"FFPT_LMP_KOKKOS={env} not found")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "build_lammps_kokkos.sh"), "--cached"],
                          capture_output=True, text=True)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip().splitlines()[-1], ""
    return None, (proc.stderr.strip() or "no KOKKOS LAMMPS build") + " (or set FFPT_LMP_KOKKOS)"


LMP, WHY = kokkos_lmp()
needs_kokkos = pytest.mark.skipif(LMP is None, reason=f"KOKKOS LAMMPS absent: {WHY}")
slow = pytest.mark.slow  # one LAMMPS process per case, ~15 s each on 2 busy cores


def kk_args(threads: int) -> tuple[str, ...]:
    return ("-k", "on", "t", str(threads), "-sf", "kk", "-pk", "kokkos", "newton", "on",
            "neigh", "full")


def _triclinic(atoms: Atoms) -> Atoms:
    """Same fractional coordinates in a sheared (LAMMPS-form, lower-triangular) cell."""
    L = atoms.cell[0, 0]
    out = atoms.copy()
    out.set_cell([[L, 0, 0], [0.23 * L, L, 0], [-0.17 * L, 0.11 * L, L]], scale_atoms=True)
    out.wrap()
    return out


SYSTEMS = {
    "aspirin": aspirin_like,
    "water64": lambda: make_water_box(4),
    "triclinic": lambda: _triclinic(make_water_box(3, seed=1)),
}


@pytest.fixture(scope="module")
def newtonnet(tmp_path_factory) -> Path:
    """A tiny random NewtonNet (2 interactions x 3.5 A, float64) with its per-layer pieces."""
    from ffpt.model.newtonnet import NewtonNet

    torch.manual_seed(3)
    model = NewtonNet(["H", "C", "O"], features=8, num_radial=6, cutoff=3.5, num_interactions=2)
    path = tmp_path_factory.mktemp("kk") / "nn.pt"
    deploy_model(model, path)
    return path


@pytest.fixture(scope="module")
def references(newtonnet, tmp_path_factory) -> dict:
    """Per system: the Python evaluation, the ASE calculator and pair_style ffpt (same lmp)."""
    from ffpt.calculator import load_calculator

    out = {}
    for name, make in SYSTEMS.items():
        atoms = make()
        py = load_deployed(newtonnet).evaluate(atoms)
        atoms.calc = load_calculator(str(newtonnet))
        ase = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        cpu = (single_point(atoms, newtonnet, tmp_path_factory.mktemp(f"cpu_{name}"),
                            executable=LMP) if LMP else None)
        out[name] = (make(), py, ase, cpu)
    return out


def _assert_close(got: dict, ref: dict, n: int, what: str) -> float:
    """Max deviation of energy/atom, forces, per-atom energies and virial (those in ref)."""
    dev = {"energy/atom": abs(got["energy"] - ref["energy"]) / n,
           "forces": np.abs(got["forces"] - ref["forces"]).max()}
    if "energies" in ref:
        dev["per-atom energies"] = np.abs(got["energies"] - ref["energies"]).max()
    if "virial" in ref and ref["virial"] is not None:
        dev["virial"] = np.abs(got["virial"] - 0.5 * (ref["virial"] + ref["virial"].T)).max()
    for key, d in dev.items():
        assert d <= TOL, f"ffpt/kk vs {what}: {key} differ by {d:.2e}"
    return max(dev.values())


@needs_kokkos
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("system", list(SYSTEMS))
def test_kk_matches_cpu_python_and_ase(references, newtonnet, tmp_path, system, threads):
    """Energy, forces, per-atom energies and virial of ffpt/kk (-k on t 1 / t 2) equal
    pair_style ffpt, the Python evaluation and the ASE calculator to 1e-8 (float64)."""
    atoms, py, ase, cpu = references[system]
    got = single_point(atoms, newtonnet, tmp_path, executable=LMP, args=kk_args(threads))
    assert "pair ffpt/kk" in got["stdout"] and "pair ffpt/kk" not in cpu["stdout"]
    periodic = atoms.pbc.all()
    n = len(atoms)
    devs = [_assert_close(got, {**cpu, "virial": cpu["virial"] if periodic else None}, n,
                          "pair_style ffpt"),
            _assert_close(got, {**py, "virial": py.get("virial") if periodic else None}, n,
                          "Python"),
            _assert_close(got, ase, n, "ASE")]
    assert np.abs(got["forces"]).max() > 1e-2  # not trivially zero
    print(f"AGREEMENT ffpt/kk t {threads} {system} ({n} atoms): max dev vs ffpt {devs[0]:.1e}, "
          f"vs Python {devs[1]:.1e}, vs ASE {devs[2]:.1e}")


@needs_kokkos
def test_kk_unfolded_ghost_shell(references, newtonnet, tmp_path):
    """fold no: every owned and ghost atom is a node (ghost shell of the receptive field),
    the same numbers as the folded periodic graph."""
    atoms, py, _, _ = references["triclinic"]
    got = single_point(atoms, newtonnet, tmp_path, pair_style="ffpt fold no", executable=LMP,
                       args=kk_args(1))
    assert "unfolded graph" in got["stdout"] and "pair ffpt/kk" in got["stdout"]
    _assert_close(got, py, len(atoms), "Python")




@needs_kokkos
@slow
def test_kk_nve_energy_conservation(tmp_path):
    """0.5 fs NVE of 64 relaxed waters at 300 K with ffpt/kk: energy drift and fluctuation."""
    from test_lammps_pair import MD_HEAD

    toy = tmp_path / "toy.pt"
    deploy_model(ToyModel(["H", "C", "O"], cutoff=3.5, num_interactions=2), toy)
    write_data(make_water_box(4), tmp_path / "w.data", ["O", "H"])
    (tmp_path / "in.min").write_text(MD_HEAD.format(data="w.data", model=toy)
                                     + "minimize 0 1e-3 100 1000\nwrite_data relaxed.data\n")
    run_lammps("in.min", tmp_path, executable=LMP)
    (tmp_path / "in.nve").write_text(MD_HEAD.format(data="relaxed.data", model=toy) + """
timestep 0.0005
velocity all create 300.0 4928459 mom yes rot yes dist gaussian
fix nve all nve
thermo 5
run 200
""")
    out = run_lammps("in.nve", tmp_path, executable=LMP, args=kk_args(1)).stdout
    assert "pair ffpt/kk" in out
    lines = out.splitlines()
    k = max(i for i, line in enumerate(lines) if line.split()[:2] == ["Step", "Time"])
    rows = []
    for line in lines[k + 1:]:
        if len(line.split()) != 4:
            break
        rows.append([float(v) for v in line.split()])
    th = np.array(rows)
    e = th[:, 3] / 192
    slope = np.polyfit(th[:, 1], e, 1)[0]
    print(f"NVE ffpt/kk drift {slope:.2e} eV/atom/ps, fluctuation {np.std(e):.2e} eV/atom")
    assert len(th) == 41
    assert abs(slope) < 1e-3 and np.std(e) < 1e-5


BOX = """units {units}
atom_style atomic
{newton}
region b block 0 8 0 8 0 8
create_box 2 b
create_atoms 1 single 1 1 1
create_atoms 2 single 1.9 1.6 1
create_atoms 2 single 0.2 1.6 1
mass 1 15.999
mass 2 1.008
"""


def _kk_error(tmp_path: Path, setup: str, coeff: str, style: str = "ffpt") -> str:
    (tmp_path / "in.err").write_text(setup + f"pair_style {style}\n{coeff}\nrun 0\n")
    run = run_lammps("in.err", tmp_path, executable=LMP, args=kk_args(1), check=False,
                     log=None)
    text = run.stdout + run.stderr
    assert run.returncode != 0, "LAMMPS accepted the input"
    return next((ln for ln in text.splitlines() if ln.startswith("ERROR")), text[-2000:])


@needs_kokkos
@slow
def test_kk_error_messages(newtonnet, tmp_path):
    """pair_style ffpt's error messages, raised from ffpt/kk (one LAMMPS ERROR line each)."""
    from test_lammps_pair import _edit_record, _resave

    ok = BOX.format(units="metal", newton="", ntypes=2)
    art = newtonnet
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model\n")
    bad = ToyModel(["H", "C", "O"], cutoff=3.5)
    with torch.no_grad():
        bad.head.fill_(float("nan"))
    deploy_model(bad, tmp_path / "nan.pt")
    cases = [
        (BOX.format(units="real", newton=""), f"pair_coeff * * {art} O H", "ffpt",
         "requires 'units metal'"),
        (BOX.format(units="metal", newton="newton off"), f"pair_coeff * * {art} O H", "ffpt",
         "requires newton pair on"),
        (ok, f"pair_coeff * * {art} O Xx", "ffpt", "unknown element 'Xx' for atom type 2"),
        (ok, f"pair_coeff * * {art} O", "ffpt",
         "wrong number of element names: 1 given but the box has 2"),
        # LAMMPS itself checks "* *" first for one-coeff styles (older versions: its own text)
        (ok, f"pair_coeff 1 1 {art} O H", "ffpt",
         ("pair_coeff for ffpt must be", "Incorrect args for pair coefficients")),
        (ok, f"pair_coeff * * {tmp_path / 'missing.pt'} O H", "ffpt", "cannot open model file"),
        (ok, f"pair_coeff * * {art} O NULL", "ffpt",
         "atom type 2 is mapped to NULL but has 2 atoms"),
        (ok, f"pair_coeff * * {art} O H", "ffpt bogus", "unknown keyword 'bogus'"),
        (ok, f"pair_coeff * * {junk} O H", "ffpt", "is not an ffpt artifact"),
        (ok, f"pair_coeff * * {_resave(art, tmp_path / 'v.pt', {'format_version': '99'})} O H",
         "ffpt", "version mismatch"),
        (ok, f"pair_coeff * * {_resave(art, tmp_path / 'c.pt', {'cutoff': '5.0'})} O H", "ffpt",
         "artifact modified after deployment"),
        (ok, f"pair_coeff * * {_edit_record(art, tmp_path / 'w.pt', 'data/0')} O H", "ffpt",
         "do not match its recorded hash"),
        (ok, f"pair_coeff * * {tmp_path / 'nan.pt'} O H", "ffpt", "non-finite energy"),
        (ok + "create_atoms 2 single 1 1 1.000000001\n", f"pair_coeff * * {art} O H", "ffpt",
         "atoms 1 and 4 are"),
        (ok, f"pair_coeff * * {art} O H", "ffpt exchange layer",
         "'exchange layer' (per-layer ghost features) is not available in the KOKKOS style"),
    ]
    for k, (setup, coeff, style, expected) in enumerate(cases):
        d = tmp_path / f"case{k}"
        d.mkdir()
        msg = _kk_error(d, setup, coeff, style)
        alternatives = (expected,) if isinstance(expected, str) else expected
        assert any(e in msg for e in alternatives), \
            f"{style!r} / {coeff!r}: expected {expected!r} in {msg!r}"


# ------------------------------------------------------------------- ffpt patch-lammps (always)


def _fake_tree(root: Path, kokkos: bool = True) -> Path:
    (root / "src" / ("KOKKOS" if kokkos else "")).mkdir(parents=True)
    (root / "cmake").mkdir()
    (root / "src" / "version.h").write_text('#define LAMMPS_VERSION "29 Sep 2021"\n')
    (root / "cmake" / "CMakeLists.txt").write_text("project(lammps CXX)\n")
    return root


def test_patch_lammps_copies_styles_and_is_idempotent(tmp_path):
    tree = _fake_tree(tmp_path / "lammps")
    changed = patch_lammps(tree)
    assert {"src/pair_ffpt.cpp", "src/KOKKOS/pair_ffpt_kokkos.cpp", "src/KOKKOS/pair_ffpt_kokkos.h",
            "src/ffpt_lammps_compat.h", "cmake/CMakeLists.txt"} <= set(changed)
    assert not (tree / "src" / "ffpt_plugin.cpp").exists()  # the PLUGIN loader stays out
    header = (tree / "src" / "pair_ffpt.h").read_text()
    assert header.startswith("#ifdef PAIR_CLASS") and "PairStyle(ffpt,PairFFPT)" in header
    assert "PairStyle(ffpt/kk," in (tree / "src" / "KOKKOS" / "pair_ffpt_kokkos.h").read_text()
    # the tree's version selects the old neighbour/comm API
    assert "#define FFPT_LAMMPS_VERSION 20210929" in (tree / "src" / "ffpt_lammps_compat.h"
                                                      ).read_text()
    cmake = (tree / "cmake" / "CMakeLists.txt").read_text()
    assert cmake.startswith("project(lammps CXX)") and "find_package(Torch REQUIRED)" in cmake
    stamp = (tree / "src" / "pair_ffpt.cpp").stat().st_mtime_ns
    assert patch_lammps(tree) == []  # nothing to do: time stamps kept for incremental builds
    assert (tree / "src" / "pair_ffpt.cpp").stat().st_mtime_ns == stamp
    assert (tree / "cmake" / "CMakeLists.txt").read_text().count(BEGIN) == 1
    (tree / "src" / "pair_ffpt.cpp").write_text("stale\n")
    assert patch_lammps(tree) == ["src/pair_ffpt.cpp"]


def test_patch_lammps_without_kokkos_and_refusals(tmp_path):
    tree = _fake_tree(tmp_path / "plain", kokkos=False)
    changed = patch_lammps(tree)
    assert "src/pair_ffpt.cpp" in changed and not any("KOKKOS" in c for c in changed)
    res = CliRunner().invoke(main, ["patch-lammps", str(tmp_path)])
    assert res.exit_code == 1
    assert "is not a LAMMPS source tree" in res.output and "src/ and cmake/" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(main, ["patch-lammps", str(tree)])
    assert res.exit_code == 0 and "already up to date" in res.output
