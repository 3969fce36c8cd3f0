"""Physics of the NewtonNet model: symmetry, energy/force/stress consistency, periodicity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from conftest import aspirin_like, make_water_box, small_model
from scipy.spatial.transform import Rotation

from ffpt.calculator import FFPTCalculator

VARIANTS = [{"displacement": False}, {"displacement": True}]


def calc_for(**kw):
    return FFPTCalculator(small_model(("H", "C", "O"), **kw))


@pytest.mark.parametrize("kw", VARIANTS)
def test_rotation_translation_permutation(kw):
    calc = calc_for(**kw)
    atoms = aspirin_like()
    atoms.calc = calc
    e0, f0 = atoms.get_potential_energy(), atoms.get_forces()
    assert np.abs(f0).max() > 1e-3  # non-trivial
    rot = Rotation.random(random_state=3).as_matrix()
    r = atoms.copy()
    r.positions = atoms.positions @ rot.T + np.array([1.3, -2.0, 0.7])
    r.calc = calc
    assert r.get_potential_energy() == pytest.approx(e0, abs=1e-10)
    np.testing.assert_allclose(r.get_forces(), f0 @ rot.T, atol=1e-10)
    perm = np.random.default_rng(0).permutation(len(atoms))
    p = atoms[perm]
    p.calc = calc
    assert p.get_potential_energy() == pytest.approx(e0, abs=1e-10)
    np.testing.assert_allclose(p.get_forces(), f0[perm], atol=1e-10)


@pytest.mark.parametrize("kw", VARIANTS)
def test_forces_are_minus_energy_gradient(kw):
    atoms = aspirin_like()
    atoms.calc = calc_for(**kw)
    f = atoms.get_forces()
    h = 1e-5
    rng = np.random.default_rng(1)
    for a in rng.choice(len(atoms), 5, replace=False):
        for c in range(3):
            p, m = atoms.copy(), atoms.copy()
            p.positions[a, c] += h
            m.positions[a, c] -= h
            p.calc = m.calc = atoms.calc
            fd = -(p.get_potential_energy() - m.get_potential_energy()) / (2 * h)
            assert f[a, c] == pytest.approx(fd, abs=1e-7)


def test_stress_is_strain_derivative():
    atoms = make_water_box(2, seed=2)
    atoms.set_cell(atoms.cell[:] + np.array([[0, 0.3, 0.1], [0.2, 0, 0], [0, -0.4, 0]]),
                   scale_atoms=False)  # triclinic
    atoms.calc = FFPTCalculator(small_model())
    stress = atoms.get_stress(voigt=False)
    v = atoms.get_volume()
    h = 1e-6
    for i, j in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2)]:
        e = []
        for sgn in (1, -1):
            eps = np.zeros((3, 3))
            eps[i, j] = eps[j, i] = sgn * h / (1 if i == j else 2)
            s = atoms.copy()
            s.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
            s.calc = atoms.calc
            e.append(s.get_potential_energy())
        fd = (e[0] - e[1]) / (2 * h) / v
        assert stress[i, j] == pytest.approx(fd, abs=1e-8)


def test_supercell_is_extensive():
    atoms = make_water_box(2, seed=3)
    calc = FFPTCalculator(small_model())
    atoms.calc = calc
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    sc = atoms.repeat((2, 2, 2))
    sc.calc = calc
    assert sc.get_potential_energy() == pytest.approx(8 * e, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(sc.get_forces(), np.tile(f, (8, 1)), atol=1e-10)
    np.testing.assert_allclose(sc.get_stress(), atoms.get_stress(), atol=1e-10)


def test_cell_smaller_than_cutoff_uses_all_images():
    """A 2-atom cell of 2.5 Angstrom (cutoff 4) equals its 3x3x3 supercell per atom."""
    from ase import Atoms

    atoms = Atoms("OH", positions=[[0, 0, 0], [0.9, 0.3, 0.2]], cell=[2.5, 2.7, 2.6], pbc=True)
    calc = FFPTCalculator(small_model())
    atoms.calc = calc
    sc = atoms.repeat(3)
    sc.calc = calc
    assert sc.get_potential_energy() == pytest.approx(27 * atoms.get_potential_energy(), rel=1e-12)
    np.testing.assert_allclose(sc.get_forces()[:2], atoms.get_forces(), atol=1e-10)


@pytest.mark.parametrize("kw", VARIANTS)
def test_smooth_at_cutoff(kw):
    """Energy and force are continuous as a third atom crosses the cutoff of the others."""
    from ase import Atoms

    calc = FFPTCalculator(small_model(**kw))
    rc = 4.0
    es, fs = [], []
    for d in (rc - 1e-4, rc + 1e-4):
        a = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [0.96 + d, 0, 0]])
        a.calc = calc
        es.append(a.get_potential_energy())
        fs.append(a.get_forces())
    assert abs(es[0] - es[1]) < 1e-9
    assert np.abs(fs[0] - fs[1]).max() < 1e-6
    # ...and the isolated-atom limit is exactly reached beyond the cutoff
    far = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [0.96 + rc + 0.5, 0, 0]])
    far.calc = calc
    near_pair = Atoms("OH", positions=[[0, 0, 0], [0.96, 0, 0]])
    near_pair.calc = calc
    h_alone = Atoms("H", positions=[[0, 0, 0]])
    h_alone.calc = calc
    assert far.get_potential_energy() == pytest.approx(
        near_pair.get_potential_energy() + h_alone.get_potential_energy(), abs=1e-10
    )


@pytest.mark.parametrize("kw", VARIANTS)
def test_scripted_matches_eager(kw):
    from e3nn.util.jit import compile as jit_compile

    from ffpt.data.graph import atoms_to_batch
    from ffpt.model import EnergyForces

    model = small_model(("H", "C", "O"), **kw)
    b = atoms_to_batch(aspirin_like(), model.elements, model.cutoff)
    eager = EnergyForces(model)(b.pos, b.species, b.edge_index, b.edge_shift, len(b.pos))
    scripted = jit_compile(EnergyForces(model))
    out = scripted(b.pos, b.species, b.edge_index, b.edge_shift, len(b.pos))
    for x, y in zip(eager, out, strict=True):
        torch.testing.assert_close(x, y, atol=1e-12, rtol=0)


def test_energy_forces_nlocal_and_virial_match_batched():
    """The deploy wrapper (nlocal = N) agrees with the batched path used in training."""
    from ffpt.data.graph import atoms_to_batch
    from ffpt.model import EnergyForces, batch_energy_forces

    model = small_model()
    atoms = make_water_box(2, seed=5)
    b = atoms_to_batch(atoms, model.elements, model.cutoff)
    e, ae, f, w = EnergyForces(model)(b.pos, b.species, b.edge_index, b.edge_shift, len(b.pos))
    ref = batch_energy_forces(model, b.species, b.pos, b.edge_index, b.edge_shift, b.batch, 1,
                              compute_virial=True)
    torch.testing.assert_close(e, ref["energy"][0])
    torch.testing.assert_close(f, ref["forces"])
    torch.testing.assert_close(w, ref["virial"][0])
    # energy of a subset of atoms: partial sum, gradient still flows through all atoms
    e5 = EnergyForces(model)(b.pos, b.species, b.edge_index, b.edge_shift, 5)[0]
    torch.testing.assert_close(e5, ae[:5].sum())


def test_float32_close_to_float64():
    atoms = aspirin_like()
    m64 = small_model(("H", "C", "O"))
    e64 = FFPTCalculator(m64).get_potential_energy(atoms)
    e32 = FFPTCalculator(m64, dtype="float32").get_potential_energy(atoms)
    assert e32 == pytest.approx(e64, abs=1e-4)


def test_unknown_element_is_a_clear_error():
    atoms = molecule("NH3")
    atoms.calc = FFPTCalculator(small_model())
    with pytest.raises(ValueError, match=r"element\(s\) \['N'\] not in the model"):
        atoms.get_potential_energy()


def test_exportable_with_dynamic_sizes():
    """make_fx -> torch.export with dynamic atom/edge counts (the AOTInductor route)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from ffpt.data.graph import atoms_to_batch
    from ffpt.model import EnergyForces

    ef = EnergyForces(small_model())
    model = ef.model
    b = atoms_to_batch(make_water_box(2), model.elements, model.cutoff)

    def fn(pos, species, edge_index, edge_shift):
        return ef(pos, species, edge_index, edge_shift, pos.shape[0])

    args = (b.pos, b.species, b.edge_index, b.edge_shift)
    gm = make_fx(fn, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*args)
    n, e = torch.export.Dim("N", min=2), torch.export.Dim("E", min=2)
    ep = torch.export.export(gm, args, dynamic_shapes=({0: n}, {0: n}, {1: e}, {0: e}))
    big = atoms_to_batch(make_water_box(3, seed=1), model.elements, model.cutoff)
    args = (big.pos, big.species, big.edge_index, big.edge_shift)
    for x, y in zip(ep.module()(*args), ef(*args, len(big.pos)), strict=True):
        torch.testing.assert_close(x, y, atol=1e-12, rtol=0)
