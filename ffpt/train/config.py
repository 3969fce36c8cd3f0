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
FT_STRATEGIES = ("plain", "l2sp", "replay")
PRECISIONS = ("float32", "tf32", "bf16-autocast")
#: settings that only mean something when fine-tuning, with their inactive defaults
FT_ONLY: dict[str, Any] = {"ft_strategy": "plain", "ft_freeze": [], "ft_lr_mult": {}}
#: ``training.pt_source`` (pretrain): fresh rattled frames labelled by a teacher every epoch
PT_SOURCE: dict[str, Any] = {
    "teacher": None, "species": None, "smiles": None, "structure": None,
    "teacher_options": None, "sigma": 0.2, "frames_per_epoch": 10_000,
    "val_frames": 1000,  # fixed validation set (drawn once) when data.val is not given
}

DEFAULTS: dict[str, Any] = {
    "mode": "scratch",
    "init_from": None,
    # finetune into new elements: {NEW: OLD}, e.g. {Ge: Si} (see ffpt.train.map_elements)
    "map_elements": None,
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
        "forces_unit": None,  # default <energy_unit>/A; entries may be {path, *_unit}
        "max_frames": None,
    },
    "model": dict(MODEL_DEFAULTS),
    "training": {
        "lr": None,
        "batch_size": 32,
        "max_epochs": 1000,
        # optimiser-step budget (null: unlimited); the run stops at whichever budget ends first
        "max_steps": None,
        # wall-clock guard only (null: none); results then depend on machine load
        "max_time_min": None,
        "energy_weight": 1.0,
        "forces_weight": 20.0,
        "patience": 50,
        "factor": 0.7,
        "min_lr_ratio": 0.01,
        "grad_clip": None,
        # finetune: set the energy scale to the FT force RMS, compensated inside the readout so
        # that the start is the PT function (default: keep the PT scale)
        "refit_scale": False,
        # finetune only (see ffpt.train.strategies): plain | l2sp | replay
        "ft_strategy": "plain",
        # l2sp: loss += alpha * sum (theta - theta_PT)^2, in loss units per squared parameter
        "l2sp_alpha": 1e-2,
        # replay: PT frames (data; default: the PT run's data.train) per FT frame, PT-head weight
        "replay": {"data": None, "ratio": 1.0, "weight": 1.0},
        # finetune: freeze parameters by name prefix, e.g. [embedding, interactions.0]
        "ft_freeze": [],
        # finetune: lr multiplier per parameter-name prefix, e.g. {embedding: 0.1} (null: none)
        "ft_lr_mult": None,
        # pretrain: draw the training data on the fly (keys: PT_SOURCE) instead of data.train
        "pt_source": None,
        "eval_batch_size": 64,
        "num_threads": None,
        # auto (cuda when available) | cpu | cuda | cuda:N; checkpoints are always saved on CPU
        "device": "auto",
        # float32 | tf32 (CUDA matmuls in TF32) | bf16-autocast (autocast to bfloat16)
        "precision": "float32",
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
    if out["map_elements"]:
        from ffpt.train.map_elements import parse_mapping

        if out["mode"] != "finetune":
            raise ValueError("map_elements applies to mode finetune (with init_from); set "
                             "mode: finetune or remove map_elements")
        out["map_elements"] = parse_mapping(out["map_elements"])
    if out["training"]["lr"] is None:
        out["training"]["lr"] = DEFAULT_LR[out["mode"]]
    if out["training"]["pt_source"] is not None:
        out["training"]["pt_source"] = _pt_source(out)
    elif out["data"]["train"] is None:
        raise ValueError("data.train is required (a data file or a list of files), or "
                         "training.pt_source for on-the-fly pre-training data")
    if out["training"]["ft_lr_mult"] is None:
        out["training"]["ft_lr_mult"] = {}
    if out["training"]["replay"] is None:
        out["training"]["replay"] = dict(DEFAULTS["training"]["replay"])
    _check_training(out["training"], out["mode"])
    return out


def _pt_source(cfg: dict) -> dict:
    """``training.pt_source`` merged with :data:`PT_SOURCE` and checked."""
    src = cfg["training"]["pt_source"]
    if not isinstance(src, dict):
        raise ValueError("training.pt_source must be a mapping, e.g. {teacher: tip3p-flex, "
                         "sigma: 0.2, frames_per_epoch: 10000}")
    out = merge(PT_SOURCE, src, "training.pt_source.")
    if cfg["mode"] != "pretrain":
        raise ValueError(f"training.pt_source applies to mode pretrain only (mode is "
                         f"{cfg['mode']!r}); set mode: pretrain or remove it")
    if cfg["data"]["train"] is not None:
        raise ValueError("training.pt_source draws the training data; remove data.train "
                         "(never mix a fixed set into on-the-fly pre-training)")
    if not out["teacher"]:
        raise ValueError("training.pt_source.teacher is required, e.g. tip3p-flex")
    for key in ("frames_per_epoch", "val_frames"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"training.pt_source.{key} must be a positive integer, not {v!r}")
    if not isinstance(out["sigma"], int | float) or out["sigma"] <= 0:
        raise ValueError(f"training.pt_source.sigma must be > 0 (Angstrom), not {out['sigma']!r}")
    if out["teacher_options"] is not None and not isinstance(out["teacher_options"], dict):
        raise ValueError("training.pt_source.teacher_options must be a mapping of teacher "
                         "options, e.g. {molecules: 4, periodic: true}")
    return out


def _check_training(t: dict, mode: str) -> None:
    """One-line errors for training settings that cannot work."""

    def positive(key: str, integer: bool, allow_none: bool = False) -> None:
        v = t[key]
        if v is None and allow_none:
            return
        ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        if ok and integer and float(v) != int(v):
            ok = False
        if not ok:
            kind = "a positive integer" if integer else "a positive number"
            raise ValueError(f"training.{key} must be {kind}, not {v!r}; fix it in the config")

    positive("batch_size", True)
    positive("max_epochs", True)
    positive("lr", False)
    positive("eval_batch_size", True)
    positive("max_steps", True, allow_none=True)
    positive("max_time_min", False, allow_none=True)
    dev = t["device"]
    if not isinstance(dev, str) or not (dev in ("auto", "cpu", "cuda")
                                        or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ValueError(f"training.device must be auto, cpu, cuda or cuda:N, not {dev!r}")
    if t["precision"] not in PRECISIONS:
        raise ValueError(f"training.precision must be one of {list(PRECISIONS)}, "
                         f"not {t['precision']!r}")
    if t["ft_strategy"] not in FT_STRATEGIES:
        raise ValueError(f"training.ft_strategy {t['ft_strategy']!r} is unknown; "
                         f"use one of {list(FT_STRATEGIES)}")
    ft_set = [k for k, default in FT_ONLY.items() if t[k] != default]
    if mode != "finetune" and ft_set:
        raise ValueError(f"training.{ft_set[0]} applies to mode finetune only (mode is "
                         f"{mode!r}); remove it or set mode: finetune")
    if t["replay"]["data"] is not None and t["ft_strategy"] != "replay":
        raise ValueError("training.replay.data is set but training.ft_strategy is "
                         f"{t['ft_strategy']!r}; set ft_strategy: replay or remove replay.data")
    if not isinstance(t["l2sp_alpha"], int | float) or t["l2sp_alpha"] < 0:
        raise ValueError(f"training.l2sp_alpha must be >= 0, not {t['l2sp_alpha']!r}")
    r = t["replay"]
    if not isinstance(r["ratio"], int | float) or r["ratio"] <= 0:
        raise ValueError(f"training.replay.ratio must be > 0 (PT frames per FT frame), "
                         f"not {r['ratio']!r}")
    if not isinstance(r["weight"], int | float) or r["weight"] < 0:
        raise ValueError(f"training.replay.weight must be >= 0, not {r['weight']!r}")
    if not isinstance(t["ft_freeze"], list | tuple):
        raise ValueError("training.ft_freeze must be a list of parameter-name prefixes, "
                         "e.g. [embedding, interactions.0]")
    if not isinstance(t["ft_lr_mult"], dict) or any(
        not isinstance(m, int | float) or m <= 0 for m in t["ft_lr_mult"].values()
    ):
        raise ValueError("training.ft_lr_mult must map parameter-name prefixes to positive "
                         "multipliers, e.g. {embedding: 0.1}")


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
    if isinstance(value, dict):  # a per-file entry {path: ..., energy_unit: ...}
        return {**value, "path": _relative(value.get("path"), base)}
    p = Path(expand_path(value))
    return str(p if p.is_absolute() or not (base / p).exists() else base / p)
