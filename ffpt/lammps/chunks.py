"""Long LAMMPS runs as consecutive chunks that can resume after an interruption.

Chunk k > 0 continues chunk k-1's final state (``write_data``: positions, velocities, image
flags, box) at its step counter with a Langevin seed from (seed, k), so a run that was
interrupted and resumed is the same as one that was not, at chunk granularity.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Sequence
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


def chunk_records(run_dir: Path, ends: Callable[[dict], bool], n: int | None = None) -> list[dict]:
    """Records of a run's finished chunks in order: up to ``n``, up to the first chunk
    without a ``record.json``, and up to one for which ``ends(record)`` (the run ends there)."""
    out: list[dict] = []
    while n is None or len(out) < n:
        rec = chunk_dir(run_dir, len(out)) / "record.json"
        if not rec.is_file():
            break
        out.append(json.loads(rec.read_text()))
        if ends(out[-1]):
            break
    return out


def remove_chunks(run_dir: Path, first: int) -> None:
    """Delete the folders of chunks ``first``, ``first + 1``, ... of the run in ``run_dir``."""
    for c in Path(run_dir).glob("chunk[0-9][0-9][0-9][0-9]"):
        if int(c.name[5:]) >= first:
            shutil.rmtree(c)
