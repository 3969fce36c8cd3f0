"""Two-step perturbation sampler and the fit-eam -> pt-data command chain."""

from __future__ import annotations

import numpy as np
from ase.build import bulk
from click.testing import CliRunner

from ffpt.cli import main
from ffpt.data.frames import FrameSet
from ffpt.sampling.perturb import two_step_perturb
from tests.test_eam import cells, known


def source(n: int = 4) -> FrameSet:
    images = [bulk("Si", "diamond", a=5.43, cubic=True) for _ in range(n - 1)]
    images.append(bulk("Ge", "diamond", a=5.66))  # a non-orthogonal primitive cell
    return FrameSet.from_atoms(images, energy_key=None, forces_key=None)


def test_displacement_and_strain_statistics_match_amplitudes() -> None:
    src = source()
    d, s, rounds = 0.07, 0.04, 300
    fs = two_step_perturb(src, rounds=rounds, displacement=d, strain=s, seed=1)
    assert fs.n_frames == rounds * src.n_frames
    disp, strains = [], []
    for k in range(fs.n_frames):
        ref = k % src.n_frames
        deform = np.linalg.solve(src.cell[ref], fs.cell[k])  # cell' = cell (I + e)
        e = deform - np.eye(3)
        np.testing.assert_allclose(e, e.T, atol=1e-12)  # pure (symmetric) strain
        strains.append(e[np.triu_indices(3)])
        # undo the strain: what remains is the displacement
        x = fs.positions[fs.frame_slice(k)] @ np.linalg.inv(deform)
        disp.append(x - src.positions[src.frame_slice(ref)])
        assert np.linalg.det(fs.cell[k]) > 0.8 * np.linalg.det(src.cell[ref])  # a valid cell
    disp, strains = np.concatenate(disp).ravel(), np.concatenate(strains)
    assert abs(disp.std() / d - 1) < 0.03 and abs(disp.mean()) < 0.01 * d
    assert np.abs(strains).max() <= s
    assert abs(strains.std() / (s / np.sqrt(3)) - 1) < 0.05  # U(-s, s)
    assert np.array_equal(fs.numbers, np.tile(src.numbers, rounds))


def test_fit_eam_then_two_step_pt_data_cli(tmp_path) -> None:
    pot = known(["Si"])
    data = cells(8, seed=4, elements=("Si",))
    data.energy, data.forces = pot.evaluate(data)
    data.save(tmp_path / "target.npz")
    run = CliRunner().invoke(main, ["teacher", "fit-eam", str(tmp_path / "target.npz"),
                                    "-o", str(tmp_path / "eam.json"), "--cutoff", "4.5",
                                    "--max-iter", "10"])
    assert run.exit_code == 0, run.output
    assert (tmp_path / "eam.eam.alloy").is_file()
    again = CliRunner().invoke(main, ["teacher", "fit-eam", str(tmp_path / "target.npz"),
                                      "-o", str(tmp_path / "eam.json")])
    assert again.exit_code == 1 and "--overwrite" in again.output
    source().save(tmp_path / "bare.npz")  # no labels
    bare = CliRunner().invoke(main, ["teacher", "fit-eam", str(tmp_path / "bare.npz"),
                                     "-o", str(tmp_path / "bare.json")])
    assert bare.exit_code == 1 and "ffpt label" in bare.output
    run = CliRunner().invoke(main, ["pt-data", "--teacher", str(tmp_path / "eam.json"),
                                    "--from", str(tmp_path / "target.npz"), "--perturb",
                                    "two-step", "--rounds", "3", "--displacement", "0.1",
                                    "--strain", "0.02", "-o", str(tmp_path / "pt.npz")])
    assert run.exit_code == 0, run.output
    pt = FrameSet.load(tmp_path / "pt.npz")
    assert pt.n_frames == 24 and pt.cell is not None and pt.pbc.all()
    from ffpt.teachers.eam import EAMPotential

    e, f = EAMPotential.load(tmp_path / "eam.json").evaluate(pt)
    np.testing.assert_allclose(pt.energy, e, atol=1e-9)
    np.testing.assert_allclose(pt.forces, f, atol=1e-9)
    bad = CliRunner().invoke(main, ["pt-data", "--teacher", "tip3p-flex", "--from",
                                    str(tmp_path / "target.npz"), "--perturb", "two-step",
                                    "-o", str(tmp_path / "x.npz")])
    assert bad.exit_code == 1 and "eam.json" in bad.output
