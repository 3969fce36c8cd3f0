"""Training configuration: defaults (the paper's protocol), YAML loading and overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ffpt.config import apply_override, expand_path, merge
from ffpt.model.checkpoint import MODEL_DEFAULTS

MODES = ("scratch", "pretrain", "finetune")
#: initial learning rate per mode (paper: 1e-3 from scratch, 1e-4 for PT and FT)
DEFAULT_LR = {"scratch": 1e-3, "pretrain": 1e-4, "finetune": 1e-4}

DEFAULTS: dict[str, Any] = {
    "mode": "scratch",
    "init_from": None,
    "seed": 0,
    "data": {
        "train": None,
        "val": None,
        "test": None,
        "val_fraction": 0.1,
        "test_fraction": 0.0,
        "format": "auto",
        "energy_key": "energy",
        "forces_key": "forces",
        "energy_unit": None,
        "max_frames": None,
    },
    "model": dict(MODEL_DEFAULTS),
    "training": {
        "lr": None,
        "batch_size": 32,
        "max_epochs": 1000,
        "max_time_min": None,
        "energy_weight": 1.0,
        "forces_weight": 20.0,
        "patience": 50,
        "factor": 0.7,
        "min_lr_ratio": 0.01,
        "grad_clip": None,
        # finetune: also reset the energy scale to the FT force RMS (default: keep the PT scale)
        "refit_scale": False,
        "eval_batch_size": 64,
        "num_threads": None,
        "plot_every": 10,
    },
}


def resolve(cfg: dict | None, overrides: list[str] = ()) -> dict:
    """Full config: defaults <- cfg <- overrides, with mode-dependent defaults and checks."""
    out = merge(DEFAULTS, cfg or {})
    for text in overrides:
        apply_override(out, text)
    if out["mode"] not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {out['mode']!r}")
    if out["mode"] == "finetune" and not out["init_from"]:
        raise ValueError("mode 'finetune' needs init_from: the pre-trained checkpoint")
    if out["training"]["lr"] is None:
        out["training"]["lr"] = DEFAULT_LR[out["mode"]]
    if out["data"]["train"] is None:
        raise ValueError("data.train is required (a data file or a list of files)")
    return out


def load_config(path: str | Path, overrides: list[str] = ()) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: config file not found")
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    # relative data paths are relative to the config file
    base = path.parent
    data = cfg.get("data", {})
    for key in ("train", "val", "test"):
        data[key] = _relative(data.get(key), base)
    if cfg.get("init_from"):
        cfg["init_from"] = _relative(cfg["init_from"], base)
    return resolve(cfg, overrides)


def _relative(value, base: Path):
    if value is None:
        return None
    if isinstance(value, list):
        return [_relative(v, base) for v in value]
    p = Path(expand_path(value))
    return str(p if p.is_absolute() or not (base / p).exists() else base / p)
