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
    """Base config <- preset <- ``--set`` overrides; paths expanded."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: demo config not found; pass --config inputs/water/demo.yaml from a clone "
            "of the ffpt repository"
        )
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    presets = raw.pop("presets", {}) or {}
    cfg = raw
    if preset:
        if preset not in presets:
            raise ValueError(f"unknown preset '{preset}'; {path} defines {sorted(presets)}")
        cfg = merge(cfg, presets[preset])
    for text in sets:
        apply_override(cfg, text)
    for section, key in (("pt_data", "path"), ("ft_data", "path"), ("md", "start")):
        cfg[section][key] = expand_path(cfg[section].get(key))
    cfg["preset"] = preset
    return cfg


def stage_hash(*parts: Any) -> str:
    """Stable short hash of the config parts a stage depends on."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]
