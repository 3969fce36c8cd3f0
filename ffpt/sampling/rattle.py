"""Rattled pre-training data: relax with the teacher, draw x~ = x + sigma * eps
(eps ~ N(0, I) per Cartesian coordinate, no rescaling), label with the teacher. Teachers of
clusters/boxes offer K reference structures; frame j of a teacher rattles reference j mod K.

Reproducible by seed (independent of the chunk size used for labelling): each species of
a mixture gets its own stream from ``numpy.random.SeedSequence(seed).spawn``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ffpt.data import FrameSet
from ffpt.teachers.base import Teacher

DEFAULT_SIGMA = 0.2  # Angstrom
CHUNK = 10_000


def rattle(
    positions: np.ndarray, n_frames: int, sigma: float, rng: np.random.Generator, start: int = 0
) -> np.ndarray:
    """(n_frames, N, 3) copies of ``positions`` + sigma * N(0, 1) noise. ``positions`` is one
    geometry (N, 3) or K references (K, N, 3); frame ``start + j`` uses reference
    ``(start + j) mod K``, so chunked calls reproduce one big call."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 Angstrom, got {sigma}")
    pos = np.asarray(positions, dtype=np.float64)
    refs = pos[None] if pos.ndim == 2 else pos
    base = refs[(start + np.arange(n_frames)) % len(refs)]
    return base + sigma * rng.standard_normal((n_frames, *refs.shape[1:]))


def split_counts(n_frames: int, weights: Sequence[float]) -> np.ndarray:
    """Integer frame counts proportional to ``weights`` summing to ``n_frames``
    (largest-remainder rounding)."""
    w = np.asarray(weights, dtype=float)
    if len(w) == 0 or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"proportions must be non-negative with a positive sum, got {list(w)}")
    exact = n_frames * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    rest = n_frames - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:rest]] += 1
    return counts


def _frames(teacher: Teacher, pos: np.ndarray, energy: np.ndarray, forces: np.ndarray) -> FrameSet:
    n_frames, n_atoms = pos.shape[:2]
    periodic = teacher.cell is not None
    return FrameSet(
        numbers=np.tile(teacher.numbers, n_frames),
        positions=pos.reshape(-1, 3),
        n_atoms=np.full(n_frames, n_atoms),
        energy=energy,
        forces=forces.reshape(-1, 3),
        cell=np.repeat(teacher.cell[None], n_frames, axis=0) if periodic else None,
        pbc=np.ones((n_frames, 3), bool) if periodic else None,
    )


def _permute(fs: FrameSet, perm: np.ndarray) -> FrameSet:
    """Reorder frames (vectorised version of FrameSet.subset for large sets)."""
    lens = fs.n_atoms[perm]
    starts = fs.offsets[:-1][perm]
    new_starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    atom_idx = np.repeat(starts - new_starts, lens) + np.arange(int(lens.sum()))
    return FrameSet(
        numbers=fs.numbers[atom_idx],
        positions=fs.positions[atom_idx],
        n_atoms=lens,
        energy=fs.energy[perm] if fs.energy is not None else None,
        forces=fs.forces[atom_idx] if fs.forces is not None else None,
        cell=fs.cell[perm] if fs.cell is not None else None,
        pbc=fs.pbc[perm] if fs.pbc is not None else None,
        info=fs.info,
    )


def generate_pt_data(
    teachers: Teacher | Sequence[Teacher],
    n_frames: int,
    sigma: float = DEFAULT_SIGMA,
    seed: int = 0,
    proportions: Sequence[float] | None = None,
    shuffle: bool = True,
    progress: bool = False,
    chunk: int = CHUNK,
) -> FrameSet:
    """Rattled, teacher-labelled frames for one teacher or a mixture.

    Args:
        teachers: one teacher or several (e.g. the eight qforce-h2 species).
        n_frames: total number of frames.
        sigma: rattling amplitude (Angstrom), per Cartesian coordinate.
        seed: random seed (same seed, same frames).
        proportions: relative weights of the teachers (default: equal).
        shuffle: interleave species randomly (else grouped by teacher).
        progress: show a tqdm progress bar.
        chunk: frames labelled per call (memory/progress granularity only).

    Returns:
        FrameSet with ``info`` recording teachers, relaxed geometries, sigma and seed.
    """
    if isinstance(teachers, Teacher):
        teachers = [teachers]
    teachers = list(teachers)
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    counts = split_counts(n_frames, proportions if proportions is not None else [1] * len(teachers))
    streams = np.random.SeedSequence(seed).spawn(len(teachers) + 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_frames, unit="frame", desc="pt-data")
    sets, species_info = [], []
    t0 = time.perf_counter()
    for teacher, count, stream in zip(teachers, counts, streams, strict=False):
        ref = teacher.relaxed_positions
        refs = teacher.reference_positions  # (K, N, 3): frame j rattles reference j mod K
        e_ref, f_ref = teacher.energy_forces(ref)
        species_info.append(
            {
                **teacher.describe(),
                "n_frames": int(count),
                "numbers": teacher.numbers.tolist(),
                "relaxed_positions": ref.round(8).tolist(),
                "relaxed_energy_eV": e_ref,
                "relaxed_max_force_eV_A": float(np.abs(f_ref).max()),
                "n_references": len(refs),
            }
        )
        rng = np.random.default_rng(stream)
        done = 0
        while done < count:
            b = min(chunk, count - done)
            pos = rattle(refs, b, sigma, rng, start=done)
            energy, forces = teacher.label(pos)
            sets.append(_frames(teacher, pos, energy, forces))
            done += b
            if bar is not None:
                bar.set_postfix_str(teacher.formula)
                bar.update(b)
    if bar is not None:
        bar.close()
    sets = [s for s in sets if s.n_frames]
    fs = sets[0] if len(sets) == 1 else FrameSet.concatenate(sets)
    if shuffle and len(teachers) > 1:
        fs = _permute(fs, np.random.default_rng(streams[-1]).permutation(fs.n_frames))
    fs.info = {
        "kind": "ffpt-pt-data",
        "teacher": ",".join(sorted({t.name for t in teachers})),
        "sigma_A": float(sigma),
        "seed": int(seed),
        "n_frames": int(n_frames),
        "proportions": [float(c) / n_frames for c in counts],
        "species": species_info,
        "units": {"positions": "Angstrom", "energy": "eV", "forces": "eV/Angstrom"},
        "label_seconds": round(time.perf_counter() - t0, 3),
    }
    return fs


def summary(fs: FrameSet) -> str:
    """Human-readable energy/force ranges of a labelled FrameSet."""
    fnorm = np.linalg.norm(fs.forces, axis=1)
    lines = [
        f"{fs.n_frames} frames, {int(fs.n_atoms.sum())} atoms, elements {fs.elements}",
        f"energy  (eV):   min {fs.energy.min():.4f}  mean {fs.energy.mean():.4f}  "
        f"max {fs.energy.max():.4f}",
        f"|force| (eV/A): mean {fnorm.mean():.4f}  95% {np.percentile(fnorm, 95):.4f}  "
        f"max {fnorm.max():.4f}",
    ]
    formulas = {}
    for sp in fs.info.get("species", []):
        formulas[sp.get("species", sp["formula"])] = sp["n_frames"]
    if len(formulas) > 1:
        lines.append("frames per species: " + ", ".join(f"{k} {v}" for k, v in formulas.items()))
    return "\n".join(lines)


def write_pt_data(fs: FrameSet, path, extxyz: str | None = None) -> None:
    """Save ``.npz`` (FrameSet format) and optionally an extxyz copy."""
    fs.save(path)
    if extxyz:
        export_extxyz(fs, extxyz)


def export_extxyz(fs: FrameSet, path) -> None:
    """Write frames as extxyz with ``energy`` (eV) and ``forces`` (eV/A) labels."""
    from ase.io import write

    write(str(path), list(fs.iter_atoms()), format="extxyz")
