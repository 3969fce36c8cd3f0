"""Dataset statistics for the per-element energy shift and the energy scale."""

from __future__ import annotations

import numpy as np

from ffpt.data.frames import FrameSet


def composition_matrix(frames: FrameSet, elements: list[str]) -> np.ndarray:
    """[n_frames, n_elements] counts of each element per frame."""
    from ase.data import chemical_symbols

    lut = np.full(119, -1, dtype=np.int64)
    for k, sym in enumerate(elements):
        lut[chemical_symbols.index(sym)] = k
    cols = lut[frames.numbers]
    if np.any(cols < 0):
        missing = sorted({chemical_symbols[z] for z in frames.numbers[cols < 0]})
        raise ValueError(f"element(s) {missing} are not in the model's elements {elements}")
    frame_of_atom = np.repeat(np.arange(frames.n_frames), frames.n_atoms)
    counts = np.zeros((frames.n_frames, len(elements)))
    np.add.at(counts, (frame_of_atom, cols), 1.0)
    return counts


def fit_shifts(
    frames: FrameSet,
    elements: list[str],
    baseline: np.ndarray | None = None,
    absent: np.ndarray | None = None,
) -> np.ndarray:
    """Per-element energy shifts: least squares of ``E - baseline`` on composition.

    ``baseline`` is the model's per-frame energy without shifts, so the fit sets the energy
    zero of the model as it stands (minimum-norm solution when compositions are degenerate).
    Elements that no frame contains get ``absent`` (e.g. the pre-trained shifts; default 0).
    """
    a = composition_matrix(frames, elements)
    target = frames.energy if baseline is None else frames.energy - baseline
    shifts, *_ = np.linalg.lstsq(a, target, rcond=None)
    present = a.sum(0) > 0
    shifts[~present] = 0.0 if absent is None else np.asarray(absent, dtype=float)[~present]
    return shifts


def force_rms(frames: FrameSet) -> float:
    """Root-mean-square force component; the energy scale of the readout (1 if forces vanish)."""
    if frames.forces is None or len(frames.forces) == 0:
        return 1.0
    rms = float(np.sqrt(np.mean(frames.forces**2)))
    return rms if rms > 1e-6 else 1.0
