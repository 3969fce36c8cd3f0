"""Infinite pre-training data: fresh rattled, teacher-labelled frames every epoch.

Labels from the classical teachers cost microseconds per frame, so instead of a fixed PT
set a trainer can draw a new one each epoch::

    data = OnTheFlyPTData.from_teacher("qforce-h2", species="all", frames_per_epoch=20000)
    for epoch, frames in zip(range(n_epochs), data):   # frames: ffpt.data.FrameSet
        ...
    val = data.sample(2000, seed=-1 % 2**32)             # any seed -> reproducible set
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

    def __iter__(self) -> Iterator[FrameSet]:
        k = 0
        while True:
            yield self.epoch(k)
            k += 1
