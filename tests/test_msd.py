"""MSD and diffusion coefficient on a synthetic random walk with a known D."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffpt.analysis.msd import diffusion_coefficient, load_trajectory, msd_fft

D_TRUE = 0.25  # A^2/ps (liquid water ~0.23)
DT_FS, EVERY, BOX = 1.0, 10, 6.0


def _walk(n_atoms=60, n_frames=400, seed=0):
    """Brownian positions: per-dimension steps N(0, 2 D dt) per frame (dt = 10 fs)."""
    rng = np.random.default_rng(seed)
    dt_ps = DT_FS * EVERY / 1000.0
    steps = rng.normal(0, np.sqrt(2 * D_TRUE * dt_ps), (n_frames, n_atoms, 3))
    steps[0] = rng.uniform(0, BOX, (n_atoms, 3))
    return np.cumsum(steps, axis=0)


def test_msd_fft_equals_direct_average():
    pos = _walk(5, 40)
    msd = msd_fft(pos, remove_drift=True)
    x = pos - pos.mean(axis=1, keepdims=True)
    for lag in (1, 7, 30):
        direct = np.mean(np.sum((x[lag:] - x[:-lag]) ** 2, axis=2))
        assert msd[lag] == pytest.approx(direct, rel=1e-10)


def _write_dump(path, pos):
    """Wrapped positions with image flags in a periodic box (as LAMMPS writes them)."""
    with open(path, "w") as f:
        for k, p in enumerate(pos):
            image = np.floor(p / BOX).astype(int)
            x = p - image * BOX
            f.write(f"ITEM: TIMESTEP\n{k * EVERY}\nITEM: NUMBER OF ATOMS\n{len(p)}\n"
                    "ITEM: BOX BOUNDS pp pp pp\n" + f"0 {BOX}\n" * 3
                    + "ITEM: ATOMS id type x y z ix iy iz\n")
            for i in range(len(p)):
                f.write(f"{i + 1} 1 {x[i, 0]:.6f} {x[i, 1]:.6f} {x[i, 2]:.6f} "
                        f"{image[i, 0]} {image[i, 1]} {image[i, 2]}\n")


def test_random_walk_diffusion_from_dump_and_ase_trajectory(tmp_path):
    from ase import Atoms
    from ase.io import write
    from click.testing import CliRunner

    from ffpt.analysis.msd import msd_cmd

    pos = _walk()
    _write_dump(tmp_path / "walk.dump", pos)
    t, unwrapped = load_trajectory(tmp_path / "walk.dump", DT_FS)
    assert t[1] == pytest.approx(0.01)
    np.testing.assert_allclose(unwrapped, pos, atol=2e-6)  # image flags undo the wrapping
    res, msd = diffusion_coefficient(t, unwrapped)
    assert len(res.block_D) == 5 and 0 < res.D_err < 0.1 * D_TRUE
    assert abs(res.D - D_TRUE) < 3 * res.D_err
    # ASE trajectory with wrapped positions: unwrapped by continuity, same D
    images = [Atoms("Ar" * pos.shape[1], positions=p, cell=[BOX] * 3, pbc=True) for p in pos]
    for a in images:
        a.wrap()
    write(tmp_path / "walk.traj", images)
    out = tmp_path / "msd"
    r = CliRunner().invoke(msd_cmd, [str(tmp_path / "walk.traj"), "--timestep-fs", str(DT_FS),
                                     "--every", str(EVERY), "-o", str(out)])
    assert r.exit_code == 0, r.output
    saved = json.loads((out / "msd.json").read_text())
    assert saved["D"] == pytest.approx(res.D, rel=1e-6)
    assert (out / "msd.png").stat().st_size > 5000
    _, m = np.loadtxt(out / "msd.csv", delimiter=",", skiprows=1).T
    np.testing.assert_allclose(m, msd, rtol=1e-6, atol=1e-9)
    # wrong input: a clear error
    r = CliRunner().invoke(msd_cmd, [str(tmp_path / "walk.traj"), "--timestep-fs", "1",
                                     "--fit", "0.5", "-o", str(out)])
    assert r.exit_code != 0 and "two fractions" in r.output
