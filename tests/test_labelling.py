"""Labelling: xTB labels equal tblite called directly; an interrupted run resumes."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest.importorskip("tblite")

from ase import Atoms

from ffpt.data import FrameSet
from ffpt.labelling import XTBEngine, label_frames
from ffpt.labelling.label import journal_path


def water_dimer(shift: float = 0.0) -> Atoms:
    return Atoms(
        "OHHOHH",
        positions=[
            [-1.551007, -0.114520, 0.000000],
            [-1.934259, 0.762503, 0.000000],
            [-0.599677, 0.040712, 0.000000],
            [1.350625 + shift, 0.111469, 0.000000],
            [1.680398 + shift, -0.373741, -0.758561],
            [1.680398 + shift, -0.373741, 0.758561],
        ],
    )


class CountingEngine(XTBEngine):
    """xTB engine that counts calls and can simulate an interruption after ``stop_after``."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.calls = 0
        self.stop_after = stop_after

    def compute(self, atoms):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt("simulated Ctrl-C")
        self.calls += 1
        return super().compute(atoms)


def test_xtb_dimer_matches_tblite_directly(tmp_path):
    from tblite.ase import TBLite

    atoms = water_dimer()
    ref = atoms.copy()
    ref.calc = TBLite(method="GFN2-xTB", verbosity=0)
    e_ref, f_ref = ref.get_potential_energy(), ref.get_forces()

    out = label_frames([atoms], XTBEngine(), tmp_path / "dimer.extxyz", progress=False)
    assert out.energy[0] == pytest.approx(e_ref, abs=1e-8)
    np.testing.assert_allclose(out.forces, f_ref, atol=1e-8)
    # physics: a bound dimer (binding energy of a few kcal/mol vs two monomers far apart)
    far = label_frames([water_dimer(shift=30.0)], XTBEngine(), tmp_path / "far.npz",
                       progress=False)
    binding = far.energy[0] - out.energy[0]
    assert 0.05 < binding < 0.5, binding  # eV
    np.testing.assert_allclose(out.forces.sum(axis=0), 0.0, atol=1e-6)  # no net force
    # the written file round-trips
    from ase.io import read

    back = read(tmp_path / "dimer.extxyz")
    assert back.get_potential_energy() == pytest.approx(e_ref, abs=1e-6)


def test_xtb_periodic_box(tmp_path):
    """Periodic labels: translating every atom by a lattice vector changes nothing."""
    a = water_dimer()
    a.cell = [8.0, 8.0, 8.0]
    a.pbc = True
    b = a.copy()
    b.positions[3:] += [8.0, 0.0, 0.0]  # second molecule moved to its periodic image
    out = label_frames([a, b], XTBEngine(), tmp_path / "pbc.npz", progress=False)
    assert out.pbc is not None and out.pbc.all()
    assert out.energy[0] == pytest.approx(out.energy[1], abs=1e-6)
    np.testing.assert_allclose(out.forces[:6], out.forces[6:], atol=1e-5)


def test_resume_skips_done_frames(tmp_path):
    frames = [water_dimer(shift=0.1 * k) for k in range(5)]
    out = tmp_path / "lab.npz"
    first = CountingEngine(stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        label_frames(frames, first, out, progress=False)
    assert first.calls == 3 and not out.exists()
    assert journal_path(out).exists()

    second = CountingEngine()
    fs = label_frames(frames, second, out, progress=False)
    assert second.calls == 2  # only the two missing frames were computed
    third = CountingEngine()
    again = label_frames(frames, third, out, progress=False)
    assert third.calls == 0
    np.testing.assert_array_equal(again.energy, fs.energy)

    # same labels as one uninterrupted run
    ref = label_frames(frames, XTBEngine(), tmp_path / "ref.npz", progress=False)
    np.testing.assert_allclose(FrameSet.load(out).energy, ref.energy, atol=1e-10)
    np.testing.assert_allclose(FrameSet.load(out).forces, ref.forces, atol=1e-10)

    # a changed structure at the same index is relabelled, not reused
    frames[4] = water_dimer(shift=0.77)
    fourth = CountingEngine()
    label_frames(frames, fourth, out, progress=False)
    assert fourth.calls == 1


def test_engine_mismatch_is_a_clear_error(tmp_path):
    out = tmp_path / "x.npz"
    label_frames([water_dimer()], XTBEngine(), out, progress=False)
    with pytest.raises(ValueError, match="different engine"):
        label_frames([water_dimer()], XTBEngine(method="GFN1-xTB"), out, progress=False)


def test_label_cli_on_npz(tmp_path):
    from click.testing import CliRunner

    from ffpt.cli import main

    src = tmp_path / "in.npz"
    FrameSet.from_atoms([water_dimer(), water_dimer(0.2)], energy_key=None,
                        forces_key=None).save(src)
    res = CliRunner().invoke(main, ["label", str(src), "-o", str(tmp_path / "o.npz"),
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    fs = FrameSet.load(tmp_path / "o.npz")
    assert fs.n_frames == 2 and fs.info["labels"]["method"] == "GFN2-xTB"
    bad = CliRunner().invoke(main, ["label", str(src), "-o", str(tmp_path / "p.npz"),
                                    "--basis", "x"])
    assert bad.exit_code != 0 and "no option" in bad.output


def test_pyscf_forces_are_energy_gradient(tmp_path):
    """PySCF engine: forces equal -dE/dx by central finite differences (HF/STO-3G water)."""
    pytest.importorskip("pyscf")
    from ffpt.labelling import PySCFEngine

    eng = PySCFEngine(method="HF", basis="sto-3g")
    atoms = water_dimer()[:3]
    _, forces = eng.compute(atoms)
    h = 1e-3
    for atom, axis in ((1, 0), (0, 1)):
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = -(eng.compute(plus)[0] - eng.compute(minus)[0]) / (2 * h)
        assert forces[atom, axis] == pytest.approx(fd, abs=2e-4)
    periodic = atoms.copy()
    periodic.cell, periodic.pbc = [6, 6, 6], True
    with pytest.raises(ValueError, match="molecular only"):
        eng.compute(periodic)
