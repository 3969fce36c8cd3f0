"""Readers: any ASE-readable file, the hydrogen-combustion npz layout, FrameSet npz.

Units are explicit. FrameSet files are eV / eV/Angstrom by definition; the H2-combustion npz
files are kcal/mol and kcal/mol/Angstrom (Guan et al. 2022) and are converted; for ASE files the
caller states the units (``energy_unit``, default eV, forces follow as ``<unit>/Angstrom``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import units

from ffpt.data.frames import FrameSet

#: energy units known to the readers, in eV
ENERGY_UNITS: dict[str, float] = {
    "eV": 1.0,
    "meV": 1e-3,
    "kcal/mol": units.kcal / units.mol,
    "kJ/mol": units.kJ / units.mol,
    "Hartree": units.Hartree,
    "Ry": units.Rydberg,
}


def energy_factor(unit: str) -> float:
    try:
        return ENERGY_UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown energy unit {unit!r}; known: {sorted(ENERGY_UNITS)}") from None


def detect_format(path: Path) -> str:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
        if {"numbers", "positions", "n_atoms"} <= keys:
            return "frameset"
        if {"R", "Z", "E", "F"} <= keys:
            return "h2comb"
        raise ValueError(
            f"{path}: unknown npz layout (keys {sorted(keys)}); expected an ffpt FrameSet "
            "(numbers/positions/n_atoms) or the H2-combustion layout (R/Z/N/E/F)"
        )
    return "ase"


def read_frames(
    path: str | Path,
    fmt: str = "auto",
    energy_key: str = "energy",
    forces_key: str = "forces",
    energy_unit: str | None = None,
    index: str = ":",
) -> FrameSet:
    """Read ``path`` into a FrameSet (eV, eV/Angstrom).

    ``fmt``: ``auto`` | ``frameset`` | ``h2comb`` | ``ase``. ``energy_unit`` applies to ``ase``
    (default eV) and overrides the H2-combustion default (kcal/mol).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data file")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "frameset":
        if energy_unit not in (None, "eV"):
            raise ValueError(f"{path}: FrameSet files are always in eV")
        return FrameSet.load(path)
    if fmt == "h2comb":
        return read_h2comb(path, energy_unit or "kcal/mol")
    if fmt in ("ase", "extxyz", "md17"):
        from ase.io import read

        images = read(path, index=index)
        if not isinstance(images, list):
            images = [images]
        fs = FrameSet.from_atoms(
            images,
            energy_key=energy_key,
            forces_key=forces_key,
            source=str(path),
            info={"source": str(path), "energy_unit": energy_unit or "eV"},
        )
        f = energy_factor(energy_unit or "eV")
        if f != 1.0:
            fs.energy = fs.energy * f
            fs.forces = fs.forces * f
        return fs
    raise ValueError(f"unknown data format {fmt!r}; use auto, frameset, h2comb or ase")


def read_h2comb(path: str | Path, energy_unit: str = "kcal/mol") -> FrameSet:
    """H2-combustion npz: zero-padded R (F,6,3), Z (F,6), N (F,1), E (F,1), F (F,6,3)."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        R, Z, E, F = z["R"], z["Z"].astype(np.int64), z["E"], z["F"]
        N = z["N"].reshape(-1).astype(np.int64) if "N" in z.files else (Z > 0).sum(1)
    if not (R.shape[:2] == Z.shape == F.shape[:2]) or len(E) != len(R):
        raise ValueError(f"{path}: inconsistent shapes R{R.shape} Z{Z.shape} E{E.shape} F{F.shape}")
    mask = Z > 0
    if not np.array_equal(mask.sum(1), N):
        bad = int(np.argmax(mask.sum(1) != N))
        raise ValueError(f"{path}: frame {bad} has N={N[bad]} but {mask[bad].sum()} real atoms")
    f = energy_factor(energy_unit)
    fs = FrameSet(
        numbers=Z[mask],
        positions=R[mask],
        n_atoms=N,
        energy=E.reshape(-1) * f,
        forces=F[mask] * f,
        info={"source": str(path), "energy_unit": energy_unit, "format": "h2comb"},
    )
    fs.validate(str(path))
    return fs


def read_many(paths: list[str | Path] | str | Path, **kw) -> FrameSet:
    """Read and concatenate several files (same options)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    sets = [read_frames(p, **kw) for p in paths]
    return sets[0] if len(sets) == 1 else FrameSet.concatenate(sets)


def split_indices(
    n: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic random train/val/test split of ``range(n)`` from ``seed``."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction + test_fraction must be in [0, 1)")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = round(val_fraction * n)
    n_test = round(test_fraction * n)
    if val_fraction > 0 and n_val == 0 and n > 1:
        n_val = 1
    return perm[n_val + n_test :], perm[:n_val], perm[n_val : n_val + n_test]
