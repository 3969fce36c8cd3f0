"""The one water-structure builder: periodic liquid boxes and isolated clusters.

Molecules are ordered O, H, H (the order of every water teacher, sampler and LAMMPS data
file in ffpt) with the TIP3P geometry (O-H 0.9572 A, H-O-H 104.52 deg) and random
orientations. These are starting points (for MD or relaxation), not equilibrated liquids.
"""

from __future__ import annotations

import numpy as np

AVOGADRO = 6.02214076e23
M_WATER = 18.01528  # g/mol
R_OH, THETA_HOH = 0.9572, np.deg2rad(104.52)


def water_monomer() -> np.ndarray:
    """(3, 3) O, H, H with the TIP3P geometry, centred on its centroid."""
    half = THETA_HOH / 2
    mono = np.array(
        [[0, 0, 0], [R_OH * np.sin(half), 0, R_OH * np.cos(half)],
         [-R_OH * np.sin(half), 0, R_OH * np.cos(half)]]
    )  # fmt: skip
    return mono - mono.mean(axis=0)


def volume_per_molecule(density: float) -> float:
    """A^3 per water molecule at ``density`` (g/cm^3)."""
    if not density > 0:
        raise ValueError(f"density must be > 0 g/cm^3, got {density}")
    return M_WATER / (AVOGADRO * density) * 1e24


def water_box(n_molecules: int, density: float = 0.997, seed: int = 0, jitter: float = 0.0):
    """Periodic cubic ``ase.Atoms`` (O, H, H, ...) at ``density`` (g/cm^3): molecules on the
    sites of a ceil(n^(1/3))^3 lattice (a random subset when n is not a cube), random
    orientations, centres displaced by U(-jitter, jitter) A per coordinate."""
    from ase import Atoms
    from scipy.spatial.transform import Rotation

    if n_molecules < 1:
        raise ValueError(f"n_molecules must be >= 1, got {n_molecules}")
    length = (n_molecules * volume_per_molecule(density)) ** (1 / 3)
    n_side = int(np.ceil(n_molecules ** (1 / 3) - 1e-9))
    spacing = length / n_side
    rng = np.random.default_rng(seed)
    sites = np.array(
        [(i, j, k) for i in range(n_side) for j in range(n_side) for k in range(n_side)], float
    )
    sites = sites[rng.permutation(len(sites))[:n_molecules]]
    centres = (sites + 0.5) * spacing
    if jitter:
        centres = centres + rng.uniform(-jitter, jitter, centres.shape)
    rots = Rotation.random(n_molecules, random_state=seed)
    mono = water_monomer()
    pos = np.concatenate([c + rots[m].apply(mono) for m, c in enumerate(centres)])
    return Atoms("OH2" * n_molecules, positions=pos, cell=[length] * 3, pbc=True)


def water_cluster(
    n_molecules: int, density: float = 0.997, seed: int = 0, min_oo: float = 2.6,
    min_hh: float = 1.6, max_tries: int = 10_000,
):  # fmt: skip
    """Isolated cluster ``ase.Atoms`` (no cell): random sequential placement of randomly
    oriented molecules in a sphere holding ``n_molecules`` at ``density``, rejecting any
    O-O closer than ``min_oo`` or other intermolecular pair closer than ``min_hh`` (A);
    the sphere grows by 10 % whenever ``max_tries`` placements fail."""
    from ase import Atoms
    from scipy.spatial.transform import Rotation

    if n_molecules < 1:
        raise ValueError(f"n_molecules must be >= 1, got {n_molecules}")
    radius = (3 * n_molecules * volume_per_molecule(density) / (4 * np.pi)) ** (1 / 3)
    rng = np.random.default_rng(seed)
    mono = water_monomer()
    placed: list[np.ndarray] = []
    tries = 0
    while len(placed) < n_molecules:
        u = rng.standard_normal(3)
        centre = u / np.linalg.norm(u) * radius * rng.uniform() ** (1 / 3)
        mol = centre + Rotation.random(random_state=rng).apply(mono)
        if placed:
            other = np.concatenate(placed)
            d = np.linalg.norm(other[:, None] - mol[None], axis=-1)  # (3k, 3)
            oo = d[::3, 0]
            if oo.min() < min_oo or d.min() < min_hh:
                tries += 1
                if tries >= max_tries:
                    radius *= 1.1
                    tries = 0
                continue
        placed.append(mol)
    pos = np.concatenate(placed)
    return Atoms("OH2" * n_molecules, positions=pos - pos.mean(axis=0))
