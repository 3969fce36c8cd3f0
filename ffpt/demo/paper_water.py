"""Water: a second, ML-driven sampling round (``paper.ml_round``). Frames of this run's
LAMMPS survival MD (the models' own trajectories, before any failure) are labelled with the
FT reference method and added to the round-1 FT frames; a child pipeline in ``<run>/round2``
reuses the PT data and PT model and trains every variant again on the combined set."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from ffpt.data.frames import FrameSet


def md_frames(pipe, models: list[str], n_frames: int) -> FrameSet:
    """``n_frames`` structures spread evenly over the good part (before failure) of every
    listed model's survival runs, all temperatures and seeds, the same share per model."""
    from ase import Atoms
    from ase.data import atomic_numbers
    from ase.io import read

    from ffpt.lammps.io import read_dump_frames

    start = read(pipe.results["ft_structures"]["md_start"])
    types = sorted(set(start.get_chemical_symbols()), key=lambda s: atomic_numbers[s])
    z_of_type = np.array([atomic_numbers[s] for s in types])
    picked = []
    per_model = max(1, n_frames // len(models))
    for m in models:
        pool = []
        for rec in sorted((pipe.run / "stability" / "runs" / m).glob("T*/seed*/record.json")):
            r = json.loads(rec.read_text())
            end = r.get("failure_step") if r.get("failed") else None
            good = [f for f in read_dump_frames(rec.parent / "dump.lammpstrj")
                    if f.step > 0 and (end is None or f.step < end)]
            pool += good
        if not pool:
            continue
        for k in np.unique(np.linspace(0, len(pool) - 1, per_model).round().astype(int)):
            f = pool[k]
            picked.append(Atoms(numbers=z_of_type[f.types - 1], positions=f.positions,
                                cell=f.cell, pbc=f.pbc))
    if not picked:
        raise ValueError(f"no MD frames of {models} to label; run the stability stage first")
    return FrameSet.from_atoms(picked, energy_key=None, forces_key=None)


def ml_round(pipe, spec: dict) -> dict:
    """Label MD frames of ``spec['models']`` and train the variants again (child run in
    ``<run>/round2``; ``spec['variants']``: only these, ``spec['stability']``: MD overrides)."""
    from ffpt.demo.extra_stages import child_pipeline
    from ffpt.labelling import label_frames, make_engine

    f = pipe.cfg["ft_data"]
    if f["path"]:
        raise ValueError("paper.ml_round labels new frames with ft_data.label; it needs the "
                         "sampled + labelled FT data (ft_data.path: null)")
    models = list(spec.get("models") or pipe.variants)
    structures = md_frames(pipe, models, int(spec["n_frames"]))
    lab = dict(f["label"])
    engine = make_engine(lab.pop("engine"), **lab)
    new = label_frames(structures, engine, pipe.path("data", "ml_round_labelled.npz"),
                       progress=pipe.progress, source="ML-driven MD frames")
    old = FrameSet.load(pipe.run / "data" / "ft_labelled.npz")
    both = FrameSet.concatenate([old, new])
    combined = both.save(pipe.path("data", "ft_round2.npz"))
    cfg = copy.deepcopy(pipe.cfg)
    cfg["ft_data"]["path"] = str(combined)
    cfg["stability"]["start"] = pipe.results["ft_structures"]["md_start"]
    sub = child_pipeline(pipe, cfg, "round2", spec, "[round 2]")
    pipe.echo(f"    ML-driven round: {new.n_frames} frames from {', '.join(models)} MD + "
              f"{old.n_frames} classical -> {sub.run}")
    sub.run_all()
    r = sub.results
    return {"n_new": new.n_frames, "n_round1": old.n_frames, "models": models,
            "method": pipe.results["ft_labels"]["method"], "n_train": r["ft_labels"]["n_train"],
            "n_test": r["ft_labels"]["n_test"], "evaluate": r["evaluate"],
            "stability": r["stability"]["summary"], "run_dir": str(sub.run),
            "report": str(Path(sub.run) / "report" / "report.md")}
