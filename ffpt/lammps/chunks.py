"""Long LAMMPS runs as consecutive chunks that can resume after an interruption.

Chunk k > 0 continues chunk k-1's final state (``write_data``: positions, velocities, image
flags, box) at its step counter with a Langevin seed from (seed, k), so a run that was
interrupted and resumed is the same as one that was not, at chunk granularity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def chunk_dir(run_dir: Path, k: int) -> Path:
    """Folder of chunk ``k`` of the run in ``run_dir``."""
    return Path(run_dir) / f"chunk{k:04d}"


def chunk_seed(seed: int, k: int) -> int:
    """Langevin seed of chunk ``k``: the base seed for the first, then one from (seed, k)."""
    if k == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{k}".encode()).digest()[:4], "little") \
        % 900_000_000 + 1


def merge_by_step(parts: Iterable[tuple[Sequence[float], Sequence[Any]]]) -> list:
    """Items of consecutive chunks as one series: a chunk's items at steps already covered
    (its first thermo line, dump frame: the previous chunk's last) are dropped."""
    out, last = [], float("-inf")
    for steps, items in parts:
        for s, item in zip(steps, items, strict=True):
            if s > last:
                out.append(item)
                last = s
    return out
