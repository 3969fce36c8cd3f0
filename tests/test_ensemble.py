"""Deep ensembles: model deviation in pair_style ffpt and the ASE calculator, ffpt train --ensemble.

The deviation (DeePMD-kit's model deviation, sqrt(<|F_i - <F_i>|^2>) over the models) is
recomputed here in numpy from each member's own forces (the Python evaluation of each
artifact), on 1 and 2 MPI ranks, for a periodic box whose ghosts carry partial forces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_water_box, morse_frames
from toy_model import ToyModel

from ffpt.calculator import EnsembleCalculator, load_calculator
from ffpt.deploy import deploy_model, load_deployed
from ffpt.lammps import LammpsError, plugin_built, read_dump, run_lammps, write_data

ELEMENTS = ["H", "C", "O"]


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    """Three float64 toy models that differ only in their random weights (seed)."""
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("ens")
    paths = []
    for seed in range(3):
        p = d / f"m{seed}.pt"
        deploy_model(ToyModel(ELEMENTS, cutoff=3.5, num_interactions=2, seed=seed), p)
        paths.append(p)
    return paths


def _numpy_deviation(forces: list[np.ndarray]) -> np.ndarray:
    f = np.stack(forces)  # [K, N, 3]
    mean = f.mean(axis=0)
    return np.sqrt(np.mean(np.sum((f - mean) ** 2, axis=2), axis=0))


def _reference(atoms, paths) -> tuple[np.ndarray, list[dict]]:
    res = [load_deployed(p).evaluate(atoms) for p in paths]
    return _numpy_deviation([r["forces"] for r in res]), res


# ------------------------------------------------------------------------------------- ASE
def test_ase_identical_models_give_zero_deviation(members):
    atoms = make_water_box(2, seed=3)
    calc = load_calculator([members[0]] * 3)
    atoms.calc = calc
    dev = calc.get_property("forces_deviation", atoms)
    assert dev.shape == (len(atoms),)
    assert np.abs(dev).max() < 1e-12
    assert calc.get_property("max_forces_deviation", atoms) < 1e-12
    assert np.abs(atoms.get_forces()).max() > 1e-2  # the forces themselves are not zero


def test_ase_deviation_equals_numpy(members):
    atoms = make_water_box(2, seed=4)
    ref, res = _reference(atoms, members)
    calc = load_calculator(members)
    atoms.calc = calc
    dev = calc.get_property("forces_deviation", atoms)
    np.testing.assert_allclose(dev, ref, rtol=1e-10, atol=1e-12)
    assert calc.get_property("max_forces_deviation", atoms) == pytest.approx(ref.max())
    assert calc.get_property("mean_forces_deviation", atoms) == pytest.approx(ref.mean())
    e = np.array([r["energy"] for r in res])
    assert calc.get_property("energy_deviation", atoms) == pytest.approx(e.std() / len(atoms))
    # the first model drives: energy and forces are model 0's
    np.testing.assert_allclose(atoms.get_forces(), res[0]["forces"], atol=1e-12)
    assert ref.min() > 1e-4  # different models: a non-trivial deviation


def test_ase_mismatched_models_are_refused(members, tmp_path):
    other = tmp_path / "ho.pt"
    deploy_model(ToyModel(["H", "O"], cutoff=3.5, num_interactions=2), other)
    with pytest.raises(ValueError, match="ensemble models disagree: model 1 has elements"):
        load_calculator([members[0], other])
    wide = tmp_path / "wide.pt"
    deploy_model(ToyModel(ELEMENTS, cutoff=4.0, num_interactions=2), wide)
    with pytest.raises(ValueError, match=r"cutoff 4\.0 A but model 0 has"):
        EnsembleCalculator([load_deployed(members[0]).calculator(),
                            load_deployed(wide).calculator()])


# ----------------------------------------------------------------------------------- LAMMPS
lammps = pytest.mark.skipif(not plugin_built(), reason="plugin not built: run ffpt build-plugin")


def _lammps_deviation(atoms, paths, workdir: Path, nprocs: int, steps: int = 0,
                      extra: str = "", every: int = 1) -> dict:
    """run N with the ensemble: per-atom deviation (fix pair), thermo max/mean, devi_file."""
    workdir.mkdir(parents=True, exist_ok=True)
    elements = list(dict.fromkeys(atoms.get_chemical_symbols()))
    write_data(atoms, workdir / "system.data", elements)
    models = " ".join(str(Path(p).resolve()) for p in paths)
    (workdir / "in.ens").write_text(f"""units metal
atom_style atomic
boundary p p p
read_data system.data
pair_style ffpt devi_file model_devi.out devi_every {every} {extra}
pair_coeff * * {models} {' '.join(elements)}
compute dev all pair ffpt
fix devi all pair 1 ffpt model_devi 1
thermo_style custom step pe c_dev[1] c_dev[2] c_dev[3] c_dev[4]
thermo_modify format float %.17g
dump d all custom 1 dev.dump id fx fy fz f_devi
dump_modify d format float %.17g sort id
velocity all create 300 1 loop geom
fix nve all nve
run {steps}
""")
    proc = run_lammps("in.ens", workdir, nprocs=nprocs)
    rows = [ln.split() for ln in proc.stdout.splitlines()]
    thermo = [list(map(float, r)) for r in rows if len(r) == 6 and r[0].isdigit()]
    dump = read_dump(workdir / "dev.dump")  # last frame
    devi = np.loadtxt(workdir / "model_devi.out", ndmin=2)
    return {"thermo": np.array(thermo), "dump": dump, "devi": devi, "stdout": proc.stdout}


@lammps
@pytest.mark.parametrize("nprocs", [1, 2])
def test_lammps_deviation_equals_numpy(members, tmp_path, nprocs):
    """64 waters, periodic: per-atom deviation, thermo max/mean and the file against numpy."""
    atoms = make_water_box(4, seed=5)
    out = _lammps_deviation(atoms, members, tmp_path, nprocs)
    ref, res = _reference(atoms, members)
    d = out["dump"]
    np.testing.assert_allclose(np.stack([d["fx"], d["fy"], d["fz"]], 1), res[0]["forces"],
                               atol=1e-6)  # model 1 drives
    np.testing.assert_allclose(d["f_devi"], ref, rtol=1e-6, atol=1e-8)
    step0 = out["thermo"][0]
    e = np.array([r["energy"] for r in res])
    np.testing.assert_allclose(step0[2:], [ref.max(), ref.min(), ref.mean(),
                                           e.std() / len(atoms)], rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(out["devi"][0, 1:], step0[2:], rtol=1e-5)
    assert out["devi"][0, 0] == 0
    assert ref.min() > 1e-4
    assert "ensemble of 3 models" in out["stdout"]


@lammps
def test_lammps_identical_models_zero_and_file_every_step(members, tmp_path):
    """K copies of one model: zero deviation in a short NVE run on 2 ranks; the file has the
    multiples of devi_every."""
    atoms = make_water_box(3, seed=6)
    out = _lammps_deviation(atoms, [members[1]] * 3, tmp_path, 2, steps=4, every=2)
    assert out["devi"][:, 0].tolist() == [0, 2, 4]
    assert np.abs(out["devi"][:, 1:]).max() < 1e-12
    assert np.abs(out["dump"]["f_devi"]).max() < 1e-12


@lammps
def test_lammps_mismatched_models_are_refused(members, tmp_path):
    other = tmp_path / "wide.pt"
    deploy_model(ToyModel(ELEMENTS, cutoff=4.0, num_interactions=2), other)
    atoms = make_water_box(2, seed=7)
    with pytest.raises(LammpsError, match="ensemble models disagree"):
        _lammps_deviation(atoms, [members[0], other], tmp_path / "cut", 1)
    with pytest.raises(LammpsError, match="is not a readable model file"):
        _lammps_deviation(atoms, [members[0], tmp_path / "missing.pt"], tmp_path / "miss", 1)
    with pytest.raises(LammpsError, match="exchange layer does not run ensembles"):
        _lammps_deviation(atoms, members[:2], tmp_path / "layer", 1, extra="exchange layer")


# ------------------------------------------------------------------------------------ train
def test_train_ensemble_members_are_reproducible(tmp_path):
    """ffpt train --ensemble 2: member k is exactly the run with seed + k; the members differ;
    an existing ensemble is refused (before any training) unless --resume."""
    import yaml
    from click.testing import CliRunner

    from ffpt.cli import main
    from ffpt.model import load_checkpoint
    from ffpt.train import train
    from ffpt.train.config import load_config

    morse_frames(16, seed=1).save(tmp_path / "train.npz")
    cfg = {"seed": 3, "data": {"train": "train.npz", "val_fraction": 0.25},
           "model": {"features": 8, "num_radial": 6, "num_interactions": 1, "cutoff": 4.0,
                     "dtype": "float64"},
           "training": {"max_epochs": 1, "batch_size": 4, "plot_every": 0}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run = ["train", str(tmp_path / "cfg.yaml"), "-o", str(tmp_path / "ens"), "--no-progress",
           "--ensemble", "2"]
    out = CliRunner().invoke(main, run)
    assert out.exit_code == 0, out.output
    best = [tmp_path / "ens" / f"member{k}" / "best.pt" for k in range(2)]
    alone = train(dict(load_config(tmp_path / "cfg.yaml"), seed=4), tmp_path / "alone",
                  progress=False)
    a, b = load_checkpoint(best[1]), load_checkpoint(alone.best_checkpoint)
    assert a["config"]["seed"] == 4
    for k in a["model_state"]:
        assert torch.equal(a["model_state"][k], b["model_state"][k]), k
    c = load_checkpoint(best[0])["model_state"]
    assert any(not torch.equal(c[k], a["model_state"][k]) for k in c)
    out = CliRunner().invoke(main, run)
    assert out.exit_code != 0 and "member0 already holds a training run" in out.output
    out = CliRunner().invoke(main, [*run, "--resume"])
    assert out.exit_code == 0, out.output
    assert "member1/best.pt" in out.output
