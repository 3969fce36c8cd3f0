"""EAM teacher: autograd forces vs finite differences (periodic), LAMMPS eam/alloy vs ffpt,
and the fit recovering a known EAM from data it labelled."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from ffpt.data.frames import FrameSet
from ffpt.teachers.eam import EAMCalculator, EAMPotential, EAMTeacher, fit_eam

KNOWN = {
    "pairs": {"Si-Si": {"D": 0.8, "alpha": 1.6, "r0": 2.4},
              "Ge-Si": {"D": 0.6, "alpha": 1.5, "r0": 2.5},
              "Ge-Ge": {"D": 0.5, "alpha": 1.4, "r0": 2.6}},
    "elements": {"Si": {"beta": 1.8, "A": 1.2, "B": 0.02, "E0": -4.0},
                 "Ge": {"beta": 1.6, "A": 1.0, "B": 0.015, "E0": -3.5}},
}


def known(elements=("Si", "Ge")) -> EAMPotential:
    return EAMPotential(list(elements), KNOWN, cutoff=4.5, smoothing=0.5, r_ref=2.4)


def cells(n: int, seed: int = 0, elements=("Si", "Ge"), rattle=0.15, strain=0.05) -> FrameSet:
    """Rattled, strained 8-atom diamond cells with random Si/Ge occupation."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        a = bulk("Si", "diamond", a=5.5, cubic=True)
        a.numbers = rng.choice([14 if e == "Si" else 32 for e in elements], len(a))
        eps = rng.uniform(-strain, strain, (3, 3))
        a.set_cell(a.cell[:] @ (np.eye(3) + (eps + eps.T) / 2), scale_atoms=True)
        a.positions += rattle * rng.standard_normal(a.positions.shape)
        images.append(a)
    return FrameSet.from_atoms(images, energy_key=None, forces_key=None)


def test_forces_are_minus_gradient_periodic_cell() -> None:
    pot = known()
    fs = cells(1, seed=3)
    e0, f = pot.evaluate(fs)
    # a small cell (5.5 A < 2 x 4.5 A cutoff): atoms see several images of themselves
    h = 1e-5
    num = np.zeros_like(f)
    for k in range(len(f)):
        for c in range(3):
            for sign in (1, -1):
                g = FrameSet(fs.numbers, fs.positions.copy(), fs.n_atoms, cell=fs.cell, pbc=fs.pbc)
                g.positions[k, c] += sign * h
                num[k, c] -= sign * pot.evaluate(g, forces=False)[0][0] / (2 * h)
    assert np.abs(f).max() > 0.1
    np.testing.assert_allclose(f, num, atol=1e-6)
    # translation invariance and zero net force
    np.testing.assert_allclose(f.sum(0), 0, atol=1e-10)
    g = FrameSet(fs.numbers, fs.positions + 0.37, fs.n_atoms, cell=fs.cell, pbc=fs.pbc)
    assert abs(pot.evaluate(g)[0][0] - e0[0]) < 1e-9


def test_teacher_and_calculator_agree_with_batched_evaluation() -> None:
    pot = known()
    fs = cells(3, seed=1)
    e, f = pot.evaluate(fs)
    atoms = fs.to_atoms(2)
    t = EAMTeacher(pot, structure=atoms)
    et, ft = t.label(np.stack([fs.positions[fs.frame_slice(k)] for k in range(3)]))
    # same cell only for frame 2: the teacher evaluates every frame in its own cell
    assert abs(et[2] - e[2]) < 1e-10
    np.testing.assert_allclose(ft[2], f[fs.frame_slice(2)], atol=1e-10)
    atoms.calc = EAMCalculator(pot)
    assert abs(atoms.get_potential_energy() - e[2]) < 1e-10
    with pytest.raises(ValueError, match="elements"):
        EAMTeacher(known(["Si"]), structure=atoms)


def test_setfl_in_lammps_equals_ffpt(tmp_path) -> None:
    from ffpt.lammps.runner import lammps_executable, single_point

    try:
        lammps_executable(autoload_plugins=False)
    except Exception as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"no LAMMPS executable: {exc}")
    pot = known()
    atoms = cells(1, seed=5).to_atoms(0)
    atoms.set_cell(atoms.cell.standard_form()[0], scale_atoms=True)  # LAMMPS form: a rotation
    atoms.calc = None
    fs = FrameSet.from_atoms([atoms], energy_key=None, forces_key=None)
    e, f = pot.evaluate(fs)
    setfl = pot.write_setfl(tmp_path / "SiGe.eam.alloy", rho_max=60.0)
    try:
        res = single_point(atoms, setfl, tmp_path / "lmp", pair_style="eam/alloy",
                           elements=["Si", "Ge"])
    except Exception as exc:
        if "Unrecognized pair style" in str(exc):
            pytest.skip("this LAMMPS has no pair_style eam/alloy (MANYBODY package)")
        raise
    assert abs(res["energy"] - e[0]) < 1e-6 * len(atoms)
    np.testing.assert_allclose(res["forces"], f, atol=1e-5)


def test_fit_recovers_known_eam() -> None:
    truth = known(["Si"])
    train = cells(40, seed=7, elements=("Si",))
    e, f = truth.evaluate(train)
    train.energy, train.forces = e, f
    start = {"pairs": {"Si-Si": {"D": 0.5, "alpha": 1.3, "r0": 2.3}},
             "elements": {"Si": {"beta": 2.2, "A": 0.8, "B": 0.01, "E0": -3.0}}}
    fit, stats = fit_eam(train, cutoff=4.5, smoothing=0.5, start=start, r_ref=2.4, max_iter=400)
    assert stats["forces_rmse_eV_A"] < 1e-3 * stats["forces_rms_eV_A"]
    test = cells(10, seed=8, elements=("Si",), rattle=0.25)
    et, ft = truth.evaluate(test)
    ep, fp = fit.evaluate(test)
    assert np.abs((ep - et) / test.n_atoms).max() < 1e-3
    assert np.abs(fp - ft).max() < 1e-2 * np.abs(ft).max()
    got = fit.params()
    for key, val in KNOWN["pairs"]["Si-Si"].items():
        assert abs(got["pairs"]["Si-Si"][key] - val) < 0.05 * abs(val), key


def test_json_round_trip_and_get_teacher(tmp_path) -> None:
    from ffpt.teachers import get_teacher

    pot = known()
    pot.save(tmp_path / "eam.json")
    fs = cells(1, seed=2)
    t = get_teacher(str(tmp_path / "eam.json"), structure=fs.to_atoms(0))
    e, _ = t.label(fs.positions[None])
    assert abs(e[0] - pot.evaluate(fs)[0][0]) < 1e-12
    with pytest.raises(ValueError, match="needs a structure"):
        get_teacher(str(tmp_path / "eam.json"))


def test_eam_json_names_a_teacher_in_pt_data_and_ase(tmp_path) -> None:
    from ase.io import write

    from ffpt.calculator import load_calculator
    from ffpt.sampling.spec import build_teachers

    pot = known()
    pot.save(tmp_path / "eam.json")
    atoms = cells(1, seed=9).to_atoms(0)
    atoms.calc = None
    write(tmp_path / "cell.extxyz", atoms)
    teachers, weights = build_teachers(str(tmp_path / "eam.json"),
                                       structure=[str(tmp_path / "cell.extxyz")])
    e_ref = pot.evaluate(FrameSet.from_atoms([atoms], energy_key=None, forces_key=None))[0][0]
    assert weights == [1.0] and abs(teachers[0].energy_forces(atoms.positions)[0] - e_ref) < 1e-9
    atoms.calc = load_calculator(str(tmp_path / "eam.json"))
    assert abs(atoms.get_potential_energy() - e_ref) < 1e-9
