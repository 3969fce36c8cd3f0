"""``ffpt-deploy``: the artifact in Python equals the checkpoint model; metadata; CLI errors."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from click.testing import CliRunner
from toy_model import ToyEnergyForces, ToyModel

from ffpt.deploy import deploy_model, load_deployed, read_metadata
from ffpt.deploy.cli import deploy
from ffpt.deploy.deploy import weights_sha256

torch.set_num_threads(1)


def _water(seed: int = 0) -> Atoms:
    rng = np.random.default_rng(seed)
    L = 7.0
    centres = (np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
               + 0.5) * L / 2
    mol = np.array([[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]])
    pos = np.concatenate([c + mol + rng.normal(0, 0.05, (3, 3)) for c in centres])
    cell = np.array([[L, 0, 0], [1.1, L, 0], [-0.7, 0.5, L]])
    return Atoms("OH2" * 8, positions=pos, cell=cell, pbc=True)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from ffpt.model import build_model, save_checkpoint

    cfg = {"features": 16, "num_radial": 8, "cutoff": 4.0, "num_interactions": 2,
           "dtype": "float64"}
    torch.manual_seed(0)
    model = build_model(cfg, ["H", "C", "O"])
    with torch.no_grad():  # non-trivial weights everywhere (fresh heads may start at zero)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt", model, cfg)


def test_toy_roundtrip(tmp_path):
    model = ToyModel(["H", "O"], cutoff=3.0, num_interactions=3).double()
    meta = deploy_model(model, tmp_path / "toy.pt")
    assert read_metadata(tmp_path / "toy.pt") == meta
    assert meta.receptive_field == pytest.approx(9.0)
    d = load_deployed(tmp_path / "toy.pt")
    atoms = _water()
    got = d.evaluate(atoms)
    from ffpt.data.graph import neighbor_graph

    ei, sh = neighbor_graph(atoms.positions, atoms.cell.array, atoms.pbc, 3.0)
    ref = ToyEnergyForces(model)(torch.tensor(atoms.positions), torch.tensor(
        d.species(atoms.get_chemical_symbols())), torch.tensor(ei), torch.tensor(sh), len(atoms))
    for a, b in zip((got["energy"], got["energies"], got["forces"], got["virial"]), ref,
                    strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("atoms", [molecule("CH3COOH"), _water()], ids=["molecule", "triclinic"])
def test_checkpoint_roundtrip_cli(checkpoint, tmp_path, atoms):
    """`ffpt deploy` artifact == checkpoint model in the ASE calculator (energy, forces, stress)."""
    from ffpt.calculator import FFPTCalculator
    from ffpt.model import load_model

    out = tmp_path / "deployed.pt"
    res = CliRunner().invoke(deploy, [str(checkpoint), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "pair_coeff * *" in res.output
    meta = read_metadata(out)
    assert meta.elements == ["H", "C", "O"] and meta.cutoff == 4.0
    assert meta.num_interactions == 2 and meta.dtype == "float64"
    assert meta.weights_sha256 == weights_sha256(load_model(checkpoint, dtype=torch.float64))
    calc = load_deployed(out).calculator()
    ref = FFPTCalculator(str(checkpoint), dtype="float64")
    a1, a2 = atoms.copy(), atoms.copy()
    a1.calc, a2.calc = calc, ref
    assert abs(a1.get_potential_energy() - a2.get_potential_energy()) < 1e-10
    assert np.abs(a1.get_forces() - a2.get_forces()).max() < 1e-10
    assert np.abs(a1.get_forces()).max() > 1e-3
    if atoms.pbc.all():
        np.testing.assert_allclose(a1.get_stress(), a2.get_stress(), rtol=0, atol=1e-10)


def test_float32_artifact(checkpoint, tmp_path):
    out = tmp_path / "f32.pt"
    res = CliRunner().invoke(deploy, [str(checkpoint), "-o", str(out), "--dtype", "float32"])
    assert res.exit_code == 0, res.output
    d32 = load_deployed(out)
    assert d32.metadata.dtype == "float32"
    assert all(p.dtype == torch.float32 for p in d32.module.parameters())
    CliRunner().invoke(deploy, [str(checkpoint), "-o", str(tmp_path / "f64.pt")])
    atoms = _water()
    e32 = d32.evaluate(atoms)
    e64 = load_deployed(tmp_path / "f64.pt").evaluate(atoms)
    assert abs(e32["energy"] - e64["energy"]) / len(atoms) < 1e-5
    assert np.abs(e32["forces"] - e64["forces"]).max() < 1e-4


def test_stress_is_strain_derivative(tmp_path):
    """Deployed virial/stress: finite-difference strain derivative of the energy."""
    deploy_model(ToyModel(["H", "O"], cutoff=3.0), tmp_path / "toy.pt")
    calc = load_deployed(tmp_path / "toy.pt").calculator()
    atoms = _water(1)
    atoms.calc = calc
    stress = atoms.get_stress(voigt=False)
    h, vol = 1e-5, atoms.get_volume()
    fd = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            es = []
            for s in (h, -h):
                eps = np.eye(3)
                eps[a, b] += s
                x = atoms.copy()
                x.set_cell(atoms.cell.array @ eps, scale_atoms=True)
                x.calc = calc
                es.append(x.get_potential_energy())
            fd[a, b] = (es[0] - es[1]) / (2 * h) / vol
    fd = 0.5 * (fd + fd.T)
    np.testing.assert_allclose(stress, fd, rtol=0, atol=1e-7)


def test_cli_errors(checkpoint, tmp_path):
    runner = CliRunner()
    res = runner.invoke(deploy, [str(tmp_path / "nope.ckpt")])
    assert res.exit_code != 0 and "does not exist" in res.output
    res = runner.invoke(deploy, [str(checkpoint), "--format", "aotinductor", "-o", "x.pt"])
    assert res.exit_code != 0 and "must end in .pt2" in res.output
    art = tmp_path / "a.pt"
    assert runner.invoke(deploy, [str(checkpoint), "-o", str(art)]).exit_code == 0
    res = runner.invoke(deploy, [str(art), "-o", str(tmp_path / "b.pt")])
    assert res.exit_code != 0 and "deployed TorchScript artifact" in res.output
    res = runner.invoke(deploy, [str(checkpoint), "-o", str(checkpoint)])
    assert res.exit_code != 0 and "overwrite the checkpoint" in res.output
    with pytest.raises(ValueError, match="not an ffpt artifact"):
        (tmp_path / "junk.pt").write_text("junk")
        load_deployed(tmp_path / "junk.pt")


def test_console_script(checkpoint, tmp_path):
    exe = Path(sysconfig.get_paths()["scripts"]) / "ffpt-deploy"
    if not exe.exists():
        pytest.skip("ffpt is not pip-installed (no ffpt-deploy console script)")
    shutil.copy(checkpoint, tmp_path / "m.ckpt")
    proc = subprocess.run([str(exe), str(tmp_path / "m.ckpt")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_metadata(tmp_path / "m-deployed.pt").elements == ["H", "C", "O"]


def test_aotinductor_roundtrip(tmp_path):
    """--format aotinductor (.pt2) gives the TorchScript numbers (toy model, float64)."""
    model = ToyModel(["H", "O"], cutoff=3.0, num_interactions=2)
    meta = deploy_model(model, tmp_path / "toy.pt2", fmt="aotinductor")
    deploy_model(model, tmp_path / "toy.pt")
    assert read_metadata(tmp_path / "toy.pt2").weights_sha256 == meta.weights_sha256
    atoms = _water(2)
    a = load_deployed(tmp_path / "toy.pt2").evaluate(atoms)
    b = load_deployed(tmp_path / "toy.pt").evaluate(atoms)
    assert abs(a["energy"] - b["energy"]) < 1e-10
    for key in ("energies", "forces", "virial"):
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-10)


def test_redeploying_an_unchanged_checkpoint_keeps_the_artifact(checkpoint, tmp_path):
    """Two deployments of one checkpoint differ in bytes (TorchScript's serialization id),
    so the pipeline keeps the artifact it has when the model is the same (MD runs are keyed
    to the file's hash), and replaces it when the weights under the same path changed."""
    from ffpt.demo.pipeline import deploy_keeping_same
    from ffpt.deploy import deploy_checkpoint
    from ffpt.model import load_model, save_checkpoint
    from ffpt.provenance import file_sha256

    ckpt = tmp_path / "model.ckpt"
    shutil.copyfile(checkpoint, ckpt)
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    deploy_checkpoint(ckpt, a)
    deploy_checkpoint(ckpt, b)
    assert file_sha256(a) != file_sha256(b)  # why the pipeline needs the keep
    out = tmp_path / "m.pt"
    deploy_keeping_same(ckpt, out, "float64")
    sha = file_sha256(out)
    _, meta = deploy_keeping_same(ckpt, out, "float64")
    assert file_sha256(out) == sha and meta.artifact_sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt", "m.pt", "model.ckpt"]
    # an artifact whose weights were edited after deployment (metadata intact) is not kept
    import zipfile

    from ffpt.deploy.artifact import verify_artifact

    with zipfile.ZipFile(out) as zin:
        records = {n: zin.read(n) for n in zin.namelist()}
    name = next(n for n in records if "/data/" in n and len(records[n]) >= 8)
    records[name] = bytes(b ^ 0xFF for b in records[name][:8]) + records[name][8:]
    with zipfile.ZipFile(out, "w") as zout:
        for n, data in records.items():
            zout.writestr(n, data)
    edited = file_sha256(out)
    deploy_keeping_same(ckpt, out, "float64")
    assert file_sha256(out) not in (edited, sha)
    verify_artifact(out)  # the replacement passes verification
    sha = file_sha256(out)
    model = load_model(ckpt)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    save_checkpoint(ckpt, model, {"features": 16, "num_radial": 8, "cutoff": 4.0,
                                  "num_interactions": 2, "dtype": "float64"})
    _, new = deploy_keeping_same(ckpt, out, "float64")
    assert file_sha256(out) != sha and new.weights_sha256 != meta.weights_sha256
