"""Infinite pre-training data: fresh rattled, teacher-labelled frames every epoch.

Labels from the classical teachers cost microseconds per frame, so instead of a fixed PT
set a trainer can draw a new one each epoch::

    data = OnTheFlyPTData.from_teacher("qforce-h2", species="all", frames_per_epoch=20000)
    for epoch, frames in zip(range(n_epochs), data):   # frames: ffpt.data.FrameSet
        ...
    val = data.validation(2000)                          # fixed set, its own seed stream

Training uses it through ``training.pt_source`` (``ffpt.train``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ffpt.data import FrameSet
from ffpt.sampling.rattle import DEFAULT_SIGMA, generate_pt_data
from ffpt.sampling.spec import build_teachers
from ffpt.teachers.base import Teacher


class OnTheFlyPTData:
    """Draws and labels fresh rattled frames on demand (relaxed geometries are cached).

    Epoch ``k`` uses seed ``SeedSequence([seed, k])``, so a run is reproducible and no two
    epochs share frames."""

    def __init__(
        self,
        teachers: Teacher | Sequence[Teacher],
        proportions: Sequence[float] | None = None,
        sigma: float = DEFAULT_SIGMA,
        frames_per_epoch: int = 10_000,
        seed: int = 0,
    ) -> None:
        self.teachers = [teachers] if isinstance(teachers, Teacher) else list(teachers)
        self.proportions = list(proportions) if proportions is not None else None
        self.sigma = sigma
        self.frames_per_epoch = frames_per_epoch
        self.seed = seed
        for t in self.teachers:  # relax once, up front
            _ = t.relaxed_positions

    @classmethod
    def from_teacher(
        cls,
        teacher: str,
        species=None,
        smiles=None,
        structure=None,
        sigma: float = DEFAULT_SIGMA,
        frames_per_epoch: int = 10_000,
        seed: int = 0,
        **options,
    ) -> OnTheFlyPTData:
        """``options`` go to the teachers, e.g. ``molecules="1:1,8:1", periodic=True`` for
        ``tip3p-flex-liquid``."""
        teachers, weights = build_teachers(teacher, species, smiles, structure, **options)
        return cls(teachers, weights, sigma, frames_per_epoch, seed)

    @classmethod
    def from_config(cls, source: dict, seed: int = 0) -> OnTheFlyPTData:
        """From ``training.pt_source`` (``teacher``, ``species``/``smiles``/``structure``,
        ``teacher_options``, ``sigma``, ``frames_per_epoch``)."""
        return cls.from_teacher(
            source["teacher"], species=source.get("species"), smiles=source.get("smiles"),
            structure=source.get("structure"), sigma=float(source.get("sigma", DEFAULT_SIGMA)),
            frames_per_epoch=int(source["frames_per_epoch"]), seed=seed,
            **(source.get("teacher_options") or {}),
        )

    @property
    def elements(self) -> list[str]:
        """Element symbols of all teachers, by atomic number."""
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in sorted({int(z) for t in self.teachers
                                                     for z in t.numbers})]

    def sample(self, n_frames: int | None = None, seed: int = 0) -> FrameSet:
        """A freshly drawn, labelled FrameSet (same seed, same frames)."""
        return generate_pt_data(
            self.teachers,
            n_frames or self.frames_per_epoch,
            sigma=self.sigma,
            seed=seed,
            proportions=self.proportions,
        )

    def epoch(self, k: int) -> FrameSet:
        """Frames of epoch ``k``."""
        seed = int(np.random.SeedSequence([self.seed, k]).generate_state(1)[0])
        return self.sample(self.frames_per_epoch, seed=seed)

    def validation(self, n_frames: int) -> FrameSet:
        """A fixed set from a seed stream that no epoch uses (``spawn_key`` 1)."""
        seed = int(np.random.SeedSequence([self.seed], spawn_key=(1,)).generate_state(1)[0])
        return self.sample(n_frames, seed=seed)

    def __iter__(self) -> Iterator[FrameSet]:
        k = 0
        while True:
            yield self.epoch(k)
            k += 1
