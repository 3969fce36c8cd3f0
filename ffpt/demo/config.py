"""Demo configuration: ``inputs/water/demo.yaml``, presets and ``section.key=value`` overrides."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from ffpt.config import REPO_ROOT, apply_override, expand_path, merge

DEFAULT_CONFIG = REPO_ROOT / "inputs" / "water" / "demo.yaml"


def load_demo_config(
    path: str | os.PathLike | None = None, preset: str | None = None, sets: list[str] = ()
) -> dict[str, Any]:
    """Base config <- preset <- ``--set`` overrides; paths expanded. A variant set to null
    (``train.variants.replay: null``) is dropped."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: demo config not found; pass --config inputs/water/demo.yaml from a clone "
            "of the ffpt repository"
        )
    raw = _read_with_parents(path)
    presets = raw.pop("presets", {}) or {}
    cfg = raw
    if preset:
        if preset not in presets:
            raise ValueError(f"unknown preset '{preset}'; {path} defines {sorted(presets)}")
        cfg = merge(cfg, presets[preset])
    for text in sets:
        apply_override(cfg, text)
    # a preset or --set may drop a variant of the base config: ``variants: {replay: null}``
    cfg["train"]["variants"] = {k: v for k, v in cfg["train"]["variants"].items()
                                if v is not None}
    for section, key in (("pt_data", "path"), ("ft_data", "path"), ("stability", "start")):
        value = cfg[section].get(key)
        cfg[section][key] = ([expand_path(v) for v in value] if isinstance(value, list)
                             else expand_path(value))
    cfg["preset"] = preset
    return cfg


def _read_with_parents(path: Path) -> dict[str, Any]:
    """A config file; ``extends: PARENT.yaml`` (relative to the file) inherits every key of the
    parent and overrides them (the parent's presets are dropped). ``train.variants`` replaces
    the parent's variants as a whole (an experiment names its own variants), and so does
    ``pt_data.teacher_options``; ``train.pt`` and
    ``train.common`` may add training keys."""
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    parent = raw.pop("extends", None)
    if not parent:
        return raw
    base = _read_with_parents((path.parent / parent).resolve())
    base.pop("presets", None)
    train = raw.get("train") or {}
    variants = train.pop("variants", None)
    # training sections take any training key (ffpt.train.config checks them)
    sections = {k: train.pop(k) for k in ("pt", "common") if k in train}
    presets = raw.pop("presets", None)
    options = (raw.get("pt_data") or {}).pop("teacher_options", None)  # replaced, not merged
    out = merge(base, raw)
    if options is not None:
        out["pt_data"]["teacher_options"] = options
    for k, v in sections.items():
        out["train"][k] = {**out["train"][k], **v}
    if variants is not None:
        out["train"]["variants"] = variants
    if presets is not None:
        out["presets"] = presets
    return out


def stage_hash(*parts: Any) -> str:
    """Stable short hash of the config parts a stage depends on."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]
