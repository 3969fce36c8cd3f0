"""Run-folder safety: never silently overwrite a run, resume only with the settings it ran with."""

from __future__ import annotations

import sys
from pathlib import Path

#: settings that ``--resume`` may change (budgets, guards and bookkeeping only)
RESUME_MAY_CHANGE = (
    "training.max_epochs",
    "training.max_steps",
    "training.max_time_min",
    "training.plot_every",
    "training.num_threads",
    "training.eval_batch_size",
)
#: what a training run writes into its folder
RUN_FILES = ("best.pt", "last.pt", "log.csv", "metrics.json", "learning_curve.png")


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool, main: bool = True) -> bool:
    """Check ``run_dir`` before training; returns whether the run continues from last.pt.

    A folder holding a checkpoint is refused unless ``resume`` (continue it) or ``overwrite``
    (its best/last/log/metrics/plot are deleted first, with a message).
    """
    if resume and overwrite:
        raise ValueError("choose either resume (continue the run) or overwrite (start over)")
    held = [n for n in ("last.pt", "best.pt") if (run_dir / n).exists()]
    if resume:
        return (run_dir / "last.pt").exists()
    if held and not overwrite:
        raise FileExistsError(
            f"{run_dir} already holds a training run ({held[0]}); continue it with --resume "
            "(resume=True), replace it with --overwrite (overwrite=True), or choose another "
            "run folder"
        )
    if held and main:
        print(f"overwriting the previous run in {run_dir} (best.pt, last.pt, log.csv, "
              "metrics.json)", file=sys.stderr)
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
    return False


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_resume_config(saved: dict, new: dict, defaults: dict, last: Path) -> None:
    """Refuse a resume whose settings differ from the saved ones outside RESUME_MAY_CHANGE.

    Keys missing from an older checkpoint's config compare against ``defaults``.
    """
    s, n, d = _flat(saved), _flat(new), _flat(defaults)
    changed = [
        f"{k} ({s.get(k, d.get(k))!r} -> {n.get(k)!r})"
        for k in sorted(set(s) | set(n))
        if k not in RESUME_MAY_CHANGE and s.get(k, d.get(k)) != n.get(k, d.get(k))
    ]
    if changed:
        raise ValueError(
            f"cannot resume {last}: settings changed since it was saved: {', '.join(changed)}; "
            "resume with the saved settings (only "
            f"{', '.join(k.split('.')[1] for k in RESUME_MAY_CHANGE)} may change), or start a "
            "new run (another folder, or --overwrite)"
        )
