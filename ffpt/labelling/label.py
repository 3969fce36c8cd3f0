"""Resumable labelling: an append-only journal of per-frame results, finalised to a FrameSet."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ffpt.data.frames import FrameSet, output_format
from ffpt.labelling.engines import Engine


def read_structures(path: str | os.PathLike) -> FrameSet:
    """Any ASE-readable file (all frames) or a FrameSet ``.npz`` as a FrameSet (labels dropped
    if the file has none)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such structure file")
    if path.suffix == ".npz":
        return FrameSet.load(path)
    from ase.io import read

    try:
        images = read(path, index=":")
    except Exception as exc:
        raise ValueError(
            f"{path}: ASE cannot read it ({exc}); give an extxyz/xyz/POSCAR/... file or a "
            "FrameSet .npz"
        ) from exc
    if not images:
        raise ValueError(f"{path}: contains no structures")
    return FrameSet.from_atoms(images, energy_key=None, forces_key=None, source=str(path))


def structure_hash(atoms) -> str:
    """Hash of what determines a label: numbers, positions, cell, pbc (rounded to 1e-8 A)."""
    h = hashlib.sha1()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(atoms.positions, dtype=np.float64), 8).tobytes())
    h.update(np.round(np.asarray(atoms.cell[:], dtype=np.float64), 8).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    return h.hexdigest()


def journal_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".journal.jsonl")


def _read_journal(path: Path, engine_desc: dict) -> dict[str, dict]:
    """Finished records by structure hash. A truncated last line (killed mid-write) is ignored."""
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    with open(path) as f:
        lines = f.read().splitlines()
    for n, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines) - 1:
                break  # interrupted while writing this record
            raise ValueError(
                f"{path}: corrupt line {n + 1}; delete the journal to start over"
            ) from None
        if "engine" in rec:  # header
            if rec["engine"] != engine_desc:
                raise ValueError(
                    f"{path} was written by a different engine setup ({rec['engine']}), not "
                    f"{engine_desc}; use another output name or --fresh to relabel"
                )
            continue
        done[rec["hash"]] = rec
    return done


def _append(fd: int, record: dict) -> None:
    """One record = one ``write`` on an O_APPEND descriptor, then fsync (chunks may share it)."""
    os.write(fd, (json.dumps(record) + "\n").encode())
    os.fsync(fd)


def label_frames(
    frames: FrameSet | Sequence,
    engine: Engine,
    output: str | os.PathLike,
    *,
    indices: Sequence[int] | np.ndarray | None = None,
    fresh: bool = False,
    progress: bool = True,
    source: str = "<memory>",
) -> FrameSet:
    """Label frames ``indices`` (default: all) of ``frames`` with ``engine`` and write
    ``output`` (``.npz`` FrameSet or any ASE format, e.g. ``.extxyz``).

    Finished frames are journalled in ``OUTPUT.journal.jsonl`` keyed by global frame index and
    structure hash, so a rerun after an interruption computes only the rest, chunks labelled
    with different ``indices`` merge, and a later full run reuses every finished frame. The
    output (and the returned FrameSet) holds every frame of ``frames`` labelled so far, in
    frame order; ``info["labelled_indices"]`` lists them when that is not all frames."""
    from tqdm.auto import tqdm

    if not isinstance(frames, FrameSet):
        frames = FrameSet.from_atoms(list(frames), energy_key=None, forces_key=None)
    n = frames.n_frames
    sel = np.arange(n) if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
    if len(sel) and (sel.min() < 0 or sel.max() >= n):
        raise ValueError(f"frame indices must be in 0..{n - 1}; got {sel.min()}..{sel.max()}")
    output = Path(output)
    journal = journal_path(output)
    desc = engine.describe()
    if fresh and journal.exists():
        journal.unlink()
    done = _read_journal(journal, desc)

    hashes = [structure_hash(frames.to_atoms(i)) for i in range(n)]
    todo = [int(i) for i in sel if hashes[i] not in done]
    wanted = set(sel.tolist())
    keep = [i for i in range(n) if i in wanted or hashes[i] in done]
    output_format(output, len(keep))  # an unwritable output fails before any work
    n_reused = len(sel) - len(todo)

    output.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if os.fstat(fd).st_size == 0:
            _append(fd, {"engine": desc})
        bar = tqdm(todo, desc=f"label[{engine.name}]", unit="frame", disable=not progress,
                   total=len(todo), postfix={"reused": n_reused} if n_reused else None)
        for i in bar:
            atoms = frames.to_atoms(i)
            atoms.calc = None
            try:
                energy, forces = engine.compute(atoms)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                raise RuntimeError(
                    f"labelling frame {i} ({atoms.get_chemical_formula()}) with "
                    f"{engine.name} failed: {exc}; finished frames are kept in {journal}"
                ) from exc
            forces = np.asarray(forces, dtype=np.float64).reshape(len(atoms), 3)
            if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
                raise RuntimeError(f"frame {i}: {engine.name} returned non-finite labels")
            rec = {"index": i, "hash": hashes[i], "energy": float(energy),
                   "forces": forces.tolist()}
            _append(fd, rec)
            done[hashes[i]] = rec
    finally:
        os.close(fd)

    out = frames.subset(keep)
    out.energy = np.array([done[hashes[i]]["energy"] for i in keep], dtype=np.float64)
    out.forces = np.concatenate(
        [np.asarray(done[hashes[i]]["forces"], dtype=np.float64).reshape(-1, 3) for i in keep]
    ).reshape(-1, 3)
    out.stress = None
    out.info.update({"labels": desc, "labelled_from": source, "units": "eV, eV/Angstrom",
                     "n_input_frames": n})
    if len(keep) < n:
        out.info["labelled_indices"] = keep
    else:
        out.info.pop("labelled_indices", None)
    out.validate(str(output))
    out.save(output)
    return out
