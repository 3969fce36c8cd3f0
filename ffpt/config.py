"""Config helpers shared by training and the demo: strict merges, overrides, paths."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Reference data beside the project: ``$FFPT_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("FFPT_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def expand_path(value: str | os.PathLike | None) -> str | None:
    """``~`` and ``$VARS``; ``${FFPT_SHARED_DATA}`` defaults to :func:`shared_data_dir`."""
    if value is None or str(value) == "":
        return None
    text = str(value).replace("${FFPT_SHARED_DATA}", str(shared_data_dir()))
    text = text.replace("$FFPT_SHARED_DATA", str(shared_data_dir()))
    return os.path.expandvars(os.path.expanduser(text))


def merge(base: dict, update: dict | None, path: str = "") -> dict:
    """Recursive merge of ``update`` into a copy of ``base``; an unknown key is an error.
    An empty dict in ``base`` is a free-form mapping: ``update``'s value replaces it."""
    out = copy.deepcopy(base)
    for k, v in (update or {}).items():
        if k not in out:
            raise ValueError(f"unknown config key '{path}{k}'; known: {sorted(out)}")
        if isinstance(out[k], dict) and isinstance(v, dict) and out[k]:
            out[k] = merge(out[k], v, f"{path}{k}.")
        else:
            out[k] = v
    return out


def apply_override(cfg: dict, text: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) in place; unknown keys are errors."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like section.key=value")
    key, value = text.split("=", 1)
    keys = key.strip().split(".")
    node = cfg
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            raise ValueError(f"override {text!r}: no section '{k}'")
        node = node[k]
    if keys[-1] not in node:
        raise ValueError(f"override {text!r}: unknown key '{keys[-1]}' (known: {sorted(node)})")
    node[keys[-1]] = yaml.safe_load(value)
