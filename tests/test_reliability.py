"""Reliability regressions (issue 14): chunked labelling merges, per-file units, bad data named
by file/frame/atoms, one-line CLI errors, a start notice, atomic writes that clean up."""

from __future__ import annotations

import errno
import os
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import yaml
from ase import units
from ase.calculators.morse import MorsePotential
from click.testing import CliRunner
from conftest import morse_frames

from ffpt.cli import main
from ffpt.data import FrameSet, read_frames
from ffpt.data.frames import atomic_write
from ffpt.labelling.engines import ENGINES, Engine

KCAL = units.kcal / units.mol  # eV per kcal/mol


# ------------------------------------------------------------------------ labelling
@dataclass
class MorseEngine(Engine):
    """A cheap deterministic engine standing in for xTB; counts its calls."""

    method: str = "morse"
    charge: int = 0
    multiplicity: int = 1
    name: ClassVar[str] = "xtb"
    calls: ClassVar[int] = 0

    def compute(self, atoms):
        MorseEngine.calls += 1
        a = atoms.copy()
        a.calc = MorsePotential(epsilon=0.5, r0=1.2, rho0=4.0, rcut1=4.0, rcut2=5.0)
        return a.get_potential_energy(), a.get_forces()


@pytest.fixture
def morse_engine(monkeypatch):
    monkeypatch.setitem(ENGINES, "xtb", MorseEngine)
    MorseEngine.calls = 0
    return MorseEngine


def label(*args: str):
    return CliRunner().invoke(main, ["label", *args, "--no-progress"])


def test_label_chunks_merge_and_full_run_reuses_them(tmp_path, morse_engine):
    ref = morse_frames(5, seed=11)  # reference labels, computed independently
    src = tmp_path / "in.npz"
    FrameSet(numbers=ref.numbers, positions=ref.positions, n_atoms=ref.n_atoms).save(src)
    out = tmp_path / "out.extxyz"

    assert label(str(src), "-o", str(out), "--index", "0:2").exit_code == 0
    assert morse_engine.calls == 2
    res = label(str(src), "-o", str(out), "--index", "2:4")
    assert res.exit_code == 0, res.output
    assert morse_engine.calls == 4
    chunks = read_frames(out)
    assert chunks.n_frames == 4  # both chunks, in global order
    np.testing.assert_allclose(chunks.energy, ref.energy[:4], atol=1e-8)
    np.testing.assert_allclose(chunks.forces, ref.forces[:24], atol=1e-6)

    res = label(str(src), "-o", str(out))  # a full run computes only the missing frame
    assert res.exit_code == 0, res.output
    assert morse_engine.calls == 5
    full = read_frames(out)
    np.testing.assert_allclose(full.energy, ref.energy, atol=1e-8)
    np.testing.assert_allclose(full.forces, ref.forces, atol=1e-6)
    # an out-of-order chunk lands at its global position too
    out2 = tmp_path / "o2.npz"
    assert label(str(src), "-o", str(out2), "--index", "3").exit_code == 0
    assert label(str(src), "-o", str(out2), "--index", "0").exit_code == 0
    np.testing.assert_allclose(FrameSet.load(out2).energy, ref.energy[[0, 3]], atol=1e-8)


def test_label_bad_index_and_output_fail_before_any_work(tmp_path, morse_engine):
    src = tmp_path / "in.npz"
    morse_frames(3, seed=1).save(src)
    for index, expected in (("1:x", "not a frame number or slice"), ("9", "has 3 frames"),
                            ("5:9", "selects none"), ("::0", "step cannot be zero")):
        res = label(str(src), "-o", str(tmp_path / "o.npz"), "--index", index)
        assert res.exit_code == 1, (index, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --index") and expected in lines[0]
    res = label(str(src), "-o", str(tmp_path / "out.unknownext"))
    assert res.exit_code == 1 and "cannot write frames to this file type" in res.output
    assert morse_engine.calls == 0
    assert not list(tmp_path.glob("out.unknownext*"))  # not even a journal


# ---------------------------------------------------------------------------- units
def _write(fs: FrameSet, path, e_factor: float, f_factor: float) -> None:
    """Write ``fs`` (eV, eV/A) to extxyz with energies / forces divided into other units."""
    FrameSet(numbers=fs.numbers, positions=fs.positions, n_atoms=fs.n_atoms,
             energy=fs.energy / e_factor, forces=fs.forces / f_factor).save(path)


def test_units_declared_per_file_including_forces(tmp_path):
    from ffpt.data.readers import read_data

    a, b = morse_frames(3, seed=2), morse_frames(2, seed=3)
    _write(a, tmp_path / "a_kcal.extxyz", KCAL, KCAL)
    _write(b, tmp_path / "b_hartree.extxyz", units.Hartree, units.Hartree / units.Bohr)
    spec = [{"path": str(tmp_path / "a_kcal.extxyz"), "energy_unit": "kcal/mol"},
            {"path": str(tmp_path / "b_hartree.extxyz"), "energy_unit": "Hartree",
             "forces_unit": "Hartree/Bohr"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # declared units: no unit warning
        fs = read_data(spec)
    ref = FrameSet.concatenate([a, b])
    np.testing.assert_allclose(fs.energy, ref.energy, rtol=1e-9)  # extxyz keeps ~8 digits:
    np.testing.assert_allclose(fs.forces, ref.forces, rtol=1e-6, atol=1e-6)
    # Hartree/Bohr forces are not Hartree/A forces
    wrong = read_frames(tmp_path / "b_hartree.extxyz", energy_unit="Hartree")
    assert np.abs(wrong.forces).max() / np.abs(b.forces).max() == pytest.approx(units.Bohr)
    with pytest.raises(ValueError, match="unknown force unit"):
        read_data([{"path": str(tmp_path / "a_kcal.extxyz"), "forces_unit": "kcal/A"}])
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['unit'\]"):
        read_data([{"path": str(tmp_path / "a_kcal.extxyz"), "unit": "kcal/mol"}])

    # the same spec through a training config (paths relative to the config file)
    from ffpt.train import load_config
    from ffpt.train.trainer import load_splits

    cfg = {"data": {"train": [{"path": "a_kcal.extxyz", "energy_unit": "kcal/mol"},
                              {"path": "b_hartree.extxyz", "energy_unit": "Hartree",
                               "forces_unit": "Hartree/Bohr"}], "val_fraction": 0.0},
           "training": {"max_epochs": 1}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    train, _, _ = load_splits(load_config(tmp_path / "cfg.yaml"))
    np.testing.assert_allclose(np.sort(train.energy), np.sort(ref.energy), rtol=1e-9)
    assert np.abs(train.forces).max() == pytest.approx(np.abs(ref.forces).max(), rel=1e-6)


def test_unit_mixups_warn(tmp_path):
    from ffpt.data.readers import read_data

    a = morse_frames(3, seed=4)
    a.forces *= 1.5 / np.linalg.norm(a.forces, axis=1).mean()  # mean |F| 1.5 eV/A: MD-like
    _write(a, tmp_path / "ev.extxyz", 1.0, 1.0)
    _write(a, tmp_path / "kcal.extxyz", KCAL, KCAL)
    with pytest.warns(UserWarning, match="typical of kcal/mol/A"):
        read_frames(tmp_path / "kcal.extxyz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_frames(tmp_path / "kcal.extxyz", energy_unit="kcal/mol")  # declared: silent
        read_frames(tmp_path / "ev.extxyz")
    with pytest.warns(UserWarning, match=r"kcal\.extxyz but .*ev\.extxyz.*different units"):
        read_data([str(tmp_path / "ev.extxyz"),
                   {"path": str(tmp_path / "kcal.extxyz"), "energy_unit": "eV"}])


# ------------------------------------------------------------------------- bad data
def test_nonfinite_data_names_file_frame_atom(tmp_path):
    fs = morse_frames(3, seed=5)
    arrays = {"numbers": fs.numbers, "positions": fs.positions, "n_atoms": fs.n_atoms,
              "energy": fs.energy, "forces": fs.forces.copy()}
    arrays["forces"][8, 2] = np.nan  # frame 1, atom 2
    np.savez(tmp_path / "nan.npz", **arrays)
    with pytest.raises(ValueError, match=r"nan\.npz: frame 1 has non-finite forces .* atom 2"):
        read_frames(tmp_path / "nan.npz")
    images = list(fs.iter_atoms())
    for a in images:
        a.info["energy"], a.arrays["forces"] = a.get_potential_energy(), a.get_forces()
        a.calc = None
    images[1].arrays["forces"][0, 0] = np.inf
    from ase.io import write

    write(tmp_path / "inf.extxyz", images)
    with pytest.raises(ValueError, match=r"inf\.extxyz: frame 1 has non-finite forces"):
        read_frames(tmp_path / "inf.extxyz")


def test_coincident_atoms_name_file_frame_atoms(tmp_path):
    fs = morse_frames(3, seed=5)
    close = fs.positions.copy()
    close[12 + 3] = close[12] + [1e-9, 0, 0]  # frame 2: atom 3 onto atom 0
    FrameSet(numbers=fs.numbers, positions=close, n_atoms=fs.n_atoms, energy=fs.energy,
             forces=fs.forces).save(tmp_path / "close.npz")
    with pytest.raises(ValueError, match=r"close\.npz: frame 2: atoms 0 \(O\) and 3 \(O\) "
                                         r"are 1e-09 A apart"):
        read_frames(tmp_path / "close.npz")
    # periodic: two atoms 0.005 A apart only through the boundary
    cell = np.tile(np.eye(3) * 8.0, (3, 1, 1))
    wrap = fs.positions.copy()
    wrap[0], wrap[1] = [0.002, 4, 4], [7.997, 4, 4]
    kw = dict(numbers=fs.numbers, n_atoms=fs.n_atoms, energy=fs.energy, forces=fs.forces,
              cell=cell, pbc=np.ones((3, 3), bool))
    FrameSet(positions=wrap, **kw).save(tmp_path / "pbc.npz")
    with pytest.raises(ValueError, match=r"pbc\.npz: frame 0: atoms 0 \(O\) and 1 \(H\) are "
                                         r"0\.005 A apart"):
        read_frames(tmp_path / "pbc.npz")
    FrameSet(positions=fs.positions + 1.0, **kw).save(tmp_path / "ok.npz")
    assert read_frames(tmp_path / "ok.npz").n_frames == 3


# ----------------------------------------------------------------------------- CLI
def one_error_line(res, code: int = 1) -> str:
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    return lines[0]


def test_cli_errors_are_one_line_with_debug_for_the_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("FFPT_DEBUG", raising=False)
    r = CliRunner()
    line = one_error_line(r.invoke(main, ["train", str(tmp_path / "missing.yaml")]))
    assert line.startswith("error: ") and "missing.yaml" in line

    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  train: [a.npz\ntraining: {max_epochs: 1}\n")
    line = one_error_line(r.invoke(main, ["train", str(bad)]))
    assert line.startswith(f"error: {bad}: invalid YAML at line 3"), line

    not_ckpt = tmp_path / "model.pt"
    not_ckpt.write_text("not a checkpoint")
    data = tmp_path / "d.extxyz"
    morse_frames(2).save(data)
    line = one_error_line(r.invoke(main, ["evaluate", str(not_ckpt), str(data)]))
    assert line.startswith("error: ") and "model.pt" in line
    # a missing file stays a usage error (exit 2)
    usage = r.invoke(main, ["evaluate", str(tmp_path / "nope.pt"), str(data)])
    assert usage.exit_code == 2 and "does not exist" in usage.output

    # --debug / FFPT_DEBUG=1 give the exception (CliRunner keeps it) instead of the line
    dbg = r.invoke(main, ["--debug", "evaluate", str(not_ckpt), str(data)])
    assert dbg.exit_code == 1 and isinstance(dbg.exception, ValueError)
    missing = r.invoke(main, ["--debug", "train", str(tmp_path / "missing.yaml")])
    assert isinstance(missing.exception, FileNotFoundError)  # wrapped by the command itself
    monkeypatch.setenv("FFPT_DEBUG", "1")
    dbg = r.invoke(main, ["train", str(bad)])
    assert isinstance(dbg.exception, yaml.YAMLError)


def test_demo_prints_what_starts_where_first(tmp_path, monkeypatch):
    import ffpt.demo.pipeline as pipeline

    class Stub:
        def __init__(self, cfg, run, fresh=False, progress=True, until=None):
            pass

        def run_all(self):
            raise RuntimeError("stage 1 failed")

    monkeypatch.setattr(pipeline, "Pipeline", Stub)
    run = tmp_path / "demo-run"
    res = CliRunner().invoke(main, ["demo", "--preset", "tiny", "--run-dir", str(run)])
    first = res.output.splitlines()[0]
    assert first.startswith("ffpt demo:") and str(run) in first
    assert "a couple of minutes" in first and "resumes" in first
    assert res.exit_code == 1 and "stage 1 failed" in res.output


# --------------------------------------------------------------------- atomic writes
def enospc_after(n_bytes: int):
    def writer(f):
        f.write(b"x" * n_bytes)
        raise OSError(errno.ENOSPC, "No space left on device")

    return writer


def test_atomic_writes_clean_up_on_a_full_disk(tmp_path, monkeypatch):
    target = tmp_path / "data.npz"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, enospc_after(100))
    assert os.listdir(tmp_path) == ["data.npz"] and target.read_bytes() == b"old"

    # ASE-format frames: the old file survives a failing writer, no temp file is left
    fs = morse_frames(2, seed=7)
    xyz = tmp_path / "frames.extxyz"
    fs.save(xyz)
    before = xyz.read_bytes()

    def failing_write(path, images, format=None, **kw):
        with open(path, "w") as f:
            f.write("2\npartial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("ase.io.write", failing_write)
    with pytest.raises(OSError, match="No space"):
        morse_frames(3, seed=8).save(xyz)
    assert xyz.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["data.npz", "frames.extxyz"]

