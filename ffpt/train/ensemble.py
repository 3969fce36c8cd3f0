"""Deep ensembles: K training runs of one config that differ only in their seed.

Member k trains with ``seed + k`` in ``<run_dir>/member<k>/`` (a normal run folder: resumable,
never silently overwritten), so its weight initialisation, data order and validation split differ
from the other members' while everything else is the same. The members' ``best.pt`` files, once
deployed, feed ``pair_style ffpt`` or ``FFPTCalculator`` with several models, which report the
ensemble's force deviation (docs/ensembles.md).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from ffpt.data.frames import atomic_write
from ffpt.train.rundir import prepare_run_dir


def member_dirs(run_dir: str | Path, k: int) -> list[Path]:
    """The K member folders of an ensemble run."""
    return [Path(run_dir) / f"member{i}" for i in range(k)]


def train_ensemble(cfg: dict, run_dir: str | Path, k: int, resume: bool = False,
                   overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Train the K members of ``cfg`` one after another; returns their best checkpoints.

    With ``resume`` every member continues from its last.pt (a finished member is only
    re-evaluated; a missing one starts). Without it, a member folder that holds a run is refused
    before any training starts.
    """
    from ffpt.train.trainer import train

    if k < 1:
        raise ValueError(f"--ensemble needs K >= 1 members, not {k}")
    dirs = member_dirs(run_dir, k)
    if not resume and not overwrite:
        for d in dirs:  # fail before training member 0 rather than at member k
            prepare_run_dir(d, resume=False, overwrite=False)
    seed = int(cfg["seed"])
    best = []
    for i, d in enumerate(dirs):
        member_cfg = copy.deepcopy(cfg)
        member_cfg["seed"] = seed + i
        best.append(train(member_cfg, d, resume=resume, overwrite=overwrite,
                          progress=progress).best_checkpoint)
    record = {"members": [{"dir": d.name, "seed": seed + i, "best": str(b)}
                          for i, (d, b) in enumerate(zip(dirs, best, strict=True))]}
    atomic_write(Path(run_dir) / "ensemble.json",
                 lambda f: f.write(json.dumps(record, indent=2).encode()))
    return best
