"""Resumable labelling: an append-only journal of per-frame results, finalised to a FrameSet."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ffpt.data.frames import FrameSet
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


def _read_journal(path: Path, engine_desc: dict) -> dict[int, dict]:
    """Records by frame index. A truncated last line (killed mid-write) is ignored."""
    done: dict[int, dict] = {}
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
        done[int(rec["index"])] = rec
    return done


def label_frames(
    frames: FrameSet | Sequence,
    engine: Engine,
    output: str | os.PathLike,
    *,
    fresh: bool = False,
    progress: bool = True,
    source: str = "<memory>",
) -> FrameSet:
    """Label every frame with ``engine`` and write ``output`` (``.npz`` FrameSet or any ASE
    format, e.g. ``.extxyz``). Finished frames are journalled in ``OUTPUT.journal.jsonl``
    (frame index + structure hash), so a rerun after an interruption computes only the rest.
    Returns the labelled FrameSet."""
    from tqdm.auto import tqdm

    if not isinstance(frames, FrameSet):
        frames = FrameSet.from_atoms(list(frames), energy_key=None, forces_key=None)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    journal = journal_path(output)
    desc = engine.describe()
    if fresh and journal.exists():
        journal.unlink()
    done = _read_journal(journal, desc)

    hashes = [structure_hash(frames.to_atoms(i)) for i in range(frames.n_frames)]
    todo = [i for i in range(frames.n_frames) if done.get(i, {}).get("hash") != hashes[i]]
    n_reused = frames.n_frames - len(todo)

    new_file = not journal.exists() or journal.stat().st_size == 0
    with open(journal, "a") as f:
        if new_file:
            f.write(json.dumps({"engine": desc}) + "\n")
        bar = tqdm(
            todo,
            desc=f"label[{engine.name}]",
            unit="frame",
            disable=not progress,
            initial=0,
            total=len(todo),
            postfix={"reused": n_reused} if n_reused else None,
        )
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
            rec = {"index": i, "hash": hashes[i], "energy": energy, "forces": forces.tolist()}
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
            done[i] = rec

    energy = np.array([done[i]["energy"] for i in range(frames.n_frames)], dtype=np.float64)
    forces = np.concatenate(
        [np.asarray(done[i]["forces"], dtype=np.float64) for i in range(frames.n_frames)]
    ).reshape(-1, 3)
    info = dict(frames.info)
    info.update({"labels": desc, "labelled_from": source, "units": "eV, eV/Angstrom"})
    out = FrameSet(
        numbers=frames.numbers,
        positions=frames.positions,
        n_atoms=frames.n_atoms,
        energy=energy,
        forces=forces,
        cell=frames.cell,
        pbc=frames.pbc,
        info=info,
    )
    if output.suffix == ".npz":
        out.save(output)
    else:
        tmp = output.with_name(f".{output.name}.tmp{output.suffix}")
        out.save(tmp)
        os.replace(tmp, output)
    return out
