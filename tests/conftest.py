"""Shared fixtures: threads, reference-data location, small models and structures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ffpt.config import shared_data_dir

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _hermetic_trust_file(tmp_path_factory):
    """Compiled artifacts deployed by tests are trusted in a temporary allow-list, never in
    the user's ~/.cache/ffpt/trusted-artifacts (ffpt/deploy/trust.py)."""
    old = os.environ.get("FFPT_TRUST_FILE")
    os.environ["FFPT_TRUST_FILE"] = str(tmp_path_factory.mktemp("trust") / "trusted-artifacts")
    yield
    if old is None:
        os.environ.pop("FFPT_TRUST_FILE", None)
    else:
        os.environ["FFPT_TRUST_FILE"] = old


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $FFPT_SHARED_DATA); skips the test when absent."""
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"reference data not found at {d} (set FFPT_SHARED_DATA)")
    return d


@pytest.fixture
def water_box():
    """A 64-molecule periodic water box (ASE-built, deterministic)."""
    return make_water_box(4, seed=0)


def make_water_box(n_side: int, seed: int = 0):
    """n_side^3 randomly oriented waters, cubic periodic cell at 0.997 g/cm^3
    (:func:`ffpt.sampling.water.water_box`, lattice centres jittered by up to 0.1 A)."""
    from ffpt.sampling.water import water_box

    return water_box(n_side**3, seed=seed, jitter=0.1)


def aspirin_like():
    """Acetic acid next to benzene, rattled: an aspirin-sized molecule with H, C and O."""
    from ase.build import molecule

    a = molecule("CH3COOH")
    b = molecule("C6H6")
    b.translate([3.0, 0.5, 0.3])
    a += b
    a.rattle(0.05, seed=1)
    return a


def small_model(elements=("H", "O"), dtype=torch.float64, seed=0, **kw):
    """A randomly initialised small NewtonNet with non-trivial shifts and scales."""
    from ffpt.model import build_model

    torch.manual_seed(seed)
    cfg = {"features": 16, "num_radial": 8, "cutoff": 4.0, "num_interactions": 2,
           "dtype": "float64" if dtype == torch.float64 else "float32", **kw}
    m = build_model(cfg, list(elements))
    with torch.no_grad():
        m.shift.copy_(torch.linspace(-3.0, -1.0, len(elements)))
        m.scale.fill_(0.7)
    return m.eval()


def morse_frames(n_frames: int, seed: int = 0, energy_offset: dict | None = None):
    """Rattled water dimers labelled by ASE's Morse potential (an independent labeller).

    ``energy_offset`` ({symbol: eV}) adds a per-element constant, mimicking another
    method's energy zero.
    """
    from ase.build import molecule
    from ase.calculators.morse import MorsePotential

    from ffpt.data import FrameSet

    rng = np.random.default_rng(seed)
    calc = MorsePotential(epsilon=0.5, r0=1.2, rho0=4.0, rcut1=4.0, rcut2=5.0)
    images = []
    for _ in range(n_frames):
        a = molecule("H2O")
        b = molecule("H2O")
        b.translate([2.9, 0.2, 0.1])
        a += b
        a.positions += rng.normal(0, 0.08, a.positions.shape)
        a.calc = calc
        e = a.get_potential_energy()
        if energy_offset:
            e += sum(energy_offset.get(s, 0.0) for s in a.get_chemical_symbols())
        f = a.get_forces()
        a.calc = None
        a.info["energy"] = e
        a.arrays["forces"] = f
        images.append(a)
    return FrameSet.from_atoms(images)
