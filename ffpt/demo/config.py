"""Demo configuration: ``inputs/water/demo.yaml``, presets and ``section.key=value`` overrides."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "inputs" / "water" / "demo.yaml"


def shared_data_dir() -> Path:
    """``$FFPT_SHARED_DATA`` or ``<repo>/../shared/data`` (may not exist)."""
    return Path(os.environ.get("FFPT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def merge(base: dict, update: dict, path: str = "") -> dict:
    """Recursive merge; an unknown key is an error naming it (typos must not pass silently)."""
    out = copy.deepcopy(base)
    for k, v in (update or {}).items():
        if k not in out:
            raise ValueError(f"unknown demo config key '{path}{k}'; known: {sorted(out)}")
        if isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = merge(out[k], v, f"{path}{k}.")
        else:
            out[k] = v
    return out


def set_key(cfg: dict, text: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) in place."""
    if "=" not in text:
        raise ValueError(f"--set {text!r} must look like section.key=value")
    key, value = text.split("=", 1)
    keys = key.strip().split(".")
    node = cfg
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            raise ValueError(f"--set {text!r}: no section '{k}'")
        node = node[k]
    if keys[-1] not in node:
        raise ValueError(f"--set {text!r}: unknown key '{keys[-1]}' (known: {sorted(node)})")
    node[keys[-1]] = yaml.safe_load(value)


def expand_path(value: str | None) -> str | None:
    """Expand ``~`` and ``${VAR}``; ``FFPT_SHARED_DATA`` defaults to ``<repo>/../shared/data``."""
    if value in (None, ""):
        return None
    env = dict(os.environ)
    env.setdefault("FFPT_SHARED_DATA", str(shared_data_dir()))
    text = str(value)
    for name, val in env.items():
        text = text.replace("${" + name + "}", val)
    return str(Path(text).expanduser())


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
        set_key(cfg, text)
    for section, key in (("pt_data", "path"), ("ft_data", "path"), ("md", "start")):
        cfg[section][key] = expand_path(cfg[section].get(key))
    cfg["preset"] = preset
    return cfg


def stage_hash(*parts: Any) -> str:
    """Stable short hash of the config parts a stage depends on."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]
