"""Readers: any ASE-readable file, the hydrogen-combustion npz layout, FrameSet npz.

Units are explicit. FrameSet files are eV / eV/Angstrom by definition; the H2-combustion npz
files are kcal/mol and kcal/mol/Angstrom (Guan et al. 2022) and are converted; for ASE files the
caller states the units (``energy_unit``, default eV; ``forces_unit``, default
``<energy_unit>/A``). A data spec (:func:`read_data`) is a path, a ``{path: ..., energy_unit:
..., forces_unit: ...}`` dict or a list of them, so every file declares its own units.

Unit checks are heuristics (warnings, never silent changes): with no unit declared, extxyz/ASE
forces averaging more than :data:`KCAL_LIKE_MEAN_FORCE` "eV/A" per atom look like kcal/mol/A
(equilibrium MD data is 0.5-2 eV/A, 25-50 in kcal/mol/A; rattled PT data ~10 eV/A); and files of
one list whose mean |F| differ by more than :data:`FORCE_RATIO_WARN` are probably in different
units.
"""

from __future__ import annotations

import warnings
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
#: force units known to the readers, in eV/Angstrom ("A" = Angstrom)
FORCE_UNITS: dict[str, float] = {
    **{f"{e}/A": f for e, f in ENERGY_UNITS.items()},
    "Hartree/Bohr": units.Hartree / units.Bohr,
    "Ry/Bohr": units.Rydberg / units.Bohr,
}
#: no unit declared and mean |F| above this (eV/A) -> "looks like kcal/mol/A" warning
KCAL_LIKE_MEAN_FORCE = 20.0
#: files of one list whose mean |F| (eV/A) differ by more than this factor -> warning
FORCE_RATIO_WARN = 10.0
#: keys a per-file data entry may set
ENTRY_KEYS = ("path", "format", "energy_key", "forces_key", "energy_unit", "forces_unit")


def energy_factor(unit: str) -> float:
    try:
        return ENERGY_UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown energy unit {unit!r}; known: {sorted(ENERGY_UNITS)}") from None


def force_factor(unit: str) -> float:
    """eV/A per ``unit``; accepts Angstrom spelled ``A``, ``Ang``, ``Angstrom`` or ``Å``."""
    key = str(unit)
    for spelling in ("Angstrom", "Ang", "Å"):
        key = key.replace(spelling, "A")
    try:
        return FORCE_UNITS[key]
    except KeyError:
        raise ValueError(f"unknown force unit {unit!r}; known: {sorted(FORCE_UNITS)}") from None


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
    forces_unit: str | None = None,
) -> FrameSet:
    """Read ``path`` into a FrameSet (eV, eV/Angstrom), checked for NaN/inf and for atoms
    closer than 0.1 A (errors name the file, frame and atoms).

    ``fmt``: ``auto`` | ``frameset`` | ``h2comb`` | ``ase``. ``energy_unit`` applies to ``ase``
    (default eV) and overrides the H2-combustion default (kcal/mol); ``forces_unit`` defaults
    to ``<energy_unit>/A`` (e.g. ``Hartree/Bohr`` must be declared).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data file")
    if energy_unit is not None:
        energy_factor(energy_unit)
    if forces_unit is not None:
        force_factor(forces_unit)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "frameset":
        if energy_unit not in (None, "eV") or forces_unit not in (None, "eV/A"):
            raise ValueError(f"{path}: FrameSet files are always in eV and eV/A; "
                             "drop energy_unit/forces_unit for this file")
        fs = FrameSet.load(path)
    elif fmt == "h2comb":
        fs = read_h2comb(path, energy_unit or "kcal/mol", forces_unit)
    elif fmt in ("ase", "extxyz", "md17"):
        fs = _read_ase(path, energy_key, forces_key, energy_unit, forces_unit, index)
    else:
        raise ValueError(f"unknown data format {fmt!r}; use auto, frameset, h2comb or ase")
    fs.check_distances(str(path))
    return fs


def _read_ase(path: Path, energy_key: str, forces_key: str, energy_unit: str | None,
              forces_unit: str | None, index: str) -> FrameSet:
    from ase.io import read

    try:
        images = read(path, index=index)
    except Exception as exc:
        raise ValueError(f"{path}: ASE cannot read it ({type(exc).__name__}: {exc})") from exc
    if not isinstance(images, list):
        images = [images]
    eu = energy_unit or "eV"
    fu = forces_unit or f"{eu}/A"
    fs = FrameSet.from_atoms(
        images,
        energy_key=energy_key,
        forces_key=forces_key,
        source=str(path),
        info={"source": str(path), "energy_unit": eu, "forces_unit": fu},
    )
    if fs.energy is not None:
        fs.energy = fs.energy * energy_factor(eu)
    if fs.forces is not None:
        fs.forces = fs.forces * force_factor(fu)
        mean = mean_force(fs)
        if energy_unit is None and forces_unit is None and mean > KCAL_LIKE_MEAN_FORCE:
            warnings.warn(
                f"{path}: no unit declared and the forces average {mean:.3g} eV/A per atom, "
                f"typical of kcal/mol/A ({mean * ENERGY_UNITS['kcal/mol']:.3g} eV/A if so); "
                "declare energy_unit (and forces_unit) for this file, e.g. "
                "{path: FILE, energy_unit: kcal/mol} - or energy_unit: eV if it is right",
                UserWarning,
                stacklevel=3,
            )
    return fs


def mean_force(fs: FrameSet) -> float:
    """Mean per-atom force magnitude (eV/A); NaN without forces."""
    if fs.forces is None or not len(fs.forces):
        return float("nan")
    return float(np.linalg.norm(fs.forces, axis=1).mean())


def read_h2comb(path: str | Path, energy_unit: str = "kcal/mol",
                forces_unit: str | None = None) -> FrameSet:
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
    forces_unit = forces_unit or f"{energy_unit}/A"
    return FrameSet(
        numbers=Z[mask],
        positions=R[mask],
        n_atoms=N,
        energy=E.reshape(-1) * energy_factor(energy_unit),
        forces=F[mask] * force_factor(forces_unit),
        info={"source": str(path), "energy_unit": energy_unit, "forces_unit": forces_unit,
              "format": "h2comb"},
        source=str(path),
    )


def _entry_options(entry, defaults: dict) -> tuple[str, dict]:
    """``(path, read_frames options)`` of one data entry (a path or a dict)."""
    opts = {k: defaults[k] for k in ENTRY_KEYS[1:] if defaults.get(k) is not None}
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown or "path" not in entry:
            raise ValueError(
                f"data entry {entry}: " + (f"unknown key(s) {unknown}; " if unknown else
                                           "no 'path'; ") + f"an entry may set {list(ENTRY_KEYS)}"
            )
        opts.update({k: v for k, v in entry.items() if k != "path" and v is not None})
        entry = entry["path"]
    elif not isinstance(entry, str | Path):
        raise ValueError(f"data entry {entry!r}: give a file path or a dict with 'path'")
    if "format" in opts:
        opts["fmt"] = opts.pop("format")
    return str(entry), opts


def read_data(spec, defaults: dict | None = None, what: str = "") -> FrameSet:
    """Read a data spec: a path, a FrameSet, a dict ``{path, format, energy_key, forces_key,
    energy_unit, forces_unit}`` or a list of these (concatenated). Keys missing from an entry
    come from ``defaults`` (e.g. the config's ``data`` section). Warns when the files' mean
    force magnitudes differ by more than :data:`FORCE_RATIO_WARN` (mixed units?)."""
    entries = spec if isinstance(spec, list | tuple) else [spec]
    what = f"{what} data" if what else "data"
    if not entries:
        raise ValueError(f"{what}: the list of files is empty")
    sets, names = [], []
    for entry in entries:
        if isinstance(entry, FrameSet):
            sets.append(entry)
            names.append(str(entry.info.get("source", "<frames>")))
            continue
        path, opts = _entry_options(entry, defaults or {})
        sets.append(read_frames(path, **opts))
        names.append(path)
    means = [mean_force(s) for s in sets]
    known = [(m, n) for m, n in zip(means, names, strict=True) if np.isfinite(m) and m > 0]
    if len(known) > 1:
        lo, hi = min(known), max(known)
        if hi[0] / lo[0] > FORCE_RATIO_WARN:
            warnings.warn(
                f"{what}: mean |F| is {hi[0]:.3g} eV/A in {hi[1]} but {lo[0]:.3g} eV/A in "
                f"{lo[1]} (x{hi[0] / lo[0]:.0f}); are they in different units? Declare each "
                "file's units: {path: FILE, energy_unit: ..., forces_unit: ...}",
                UserWarning,
                stacklevel=2,
            )
    return sets[0] if len(sets) == 1 else FrameSet.concatenate(sets)


def read_many(paths: list[str | Path] | str | Path, **kw) -> FrameSet:
    """Read and concatenate several files (same ``read_frames`` options for all)."""
    if "fmt" in kw:
        kw["format"] = kw.pop("fmt")
    unknown = sorted(set(kw) - set(ENTRY_KEYS[1:]))
    if unknown:
        raise TypeError(f"read_many() got unknown option(s) {unknown}")
    return read_data(paths, kw)


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
