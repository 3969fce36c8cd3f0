"""Model construction from config and checkpoints that load without executing pickled code.

A checkpoint is a plain dict of tensors and primitive types written with ``torch.save`` to a
temp file and renamed (atomic), and read with ``torch.load(weights_only=True)``:

``format``, ``format_version``, ``ffpt_version``, ``elements``, ``model_config``,
``model_state`` (state_dict), ``config`` (the whole training config), and for resuming
``optimizer_state``, ``scheduler_state``, ``epoch``, ``best_val``, ``history``, ``rng``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ffpt.model.newtonnet import NewtonNet

CHECKPOINT_FORMAT = "ffpt-checkpoint"
CHECKPOINT_VERSION = 1

#: model hyper-parameters and their defaults (the paper's)
MODEL_DEFAULTS: dict[str, Any] = {
    "features": 128,
    "num_radial": 20,
    "cutoff": 5.0,
    "num_interactions": 3,
    "activation": "silu",
    "displacement": False,
    "dtype": "float32",
}

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def model_config(cfg: dict | None) -> dict[str, Any]:
    """Defaults filled in; unknown keys rejected."""
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(MODEL_DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown model option(s) {sorted(unknown)}; known: {sorted(MODEL_DEFAULTS)}"
        )
    out = {**MODEL_DEFAULTS, **cfg}
    if out["dtype"] not in DTYPES:
        raise ValueError(f"model dtype must be float32 or float64, not {out['dtype']!r}")
    return out


def build_model(cfg: dict | None, elements: list[str]) -> NewtonNet:
    """A fresh NewtonNet in the configured dtype."""
    mc = model_config(cfg)
    model = NewtonNet(
        elements=list(elements),
        features=int(mc["features"]),
        num_radial=int(mc["num_radial"]),
        cutoff=float(mc["cutoff"]),
        num_interactions=int(mc["num_interactions"]),
        activation=str(mc["activation"]),
        displacement=bool(mc["displacement"]),
    )
    return model.to(DTYPES[mc["dtype"]])


def save_checkpoint(path: str | os.PathLike, model: NewtonNet, model_cfg: dict, **extra) -> Path:
    """Write a checkpoint atomically (see module docstring for its keys)."""
    from ffpt import __version__
    from ffpt.data.frames import atomic_write

    obj = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "ffpt_version": __version__,
        "elements": list(model.elements),
        "model_config": model_config(model_cfg),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    path = Path(path)
    atomic_write(path, lambda f: torch.save(obj, f))
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and check a checkpoint (``weights_only=True``: no code is executed)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if _is_torchscript(path):
            raise ValueError(
                f"{path}: this is a deployed TorchScript artifact, not a training checkpoint; "
                "use it with LAMMPS or ffpt.deploy.load_deployed"
            ) from exc
        raise ValueError(f"{path}: not a readable ffpt checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an ffpt checkpoint (no '{CHECKPOINT_FORMAT}' tag)")
    if ckpt.get("format_version", 0) > CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this ffpt "
            f"supports ({CHECKPOINT_VERSION}); upgrade ffpt"
        )
    return ckpt


def _is_torchscript(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def model_from_checkpoint(ckpt: dict, dtype: str | torch.dtype | None = None) -> NewtonNet:
    model = build_model(ckpt["model_config"], ckpt["elements"])
    model.load_state_dict(ckpt["model_state"])
    if dtype is not None:
        model = model.to(DTYPES[dtype] if isinstance(dtype, str) else dtype)
    return model


def load_model(path: str | os.PathLike, dtype: str | torch.dtype | None = None) -> NewtonNet:
    """The NewtonNet stored in a checkpoint, in eval mode (optionally cast to ``dtype``)."""
    return model_from_checkpoint(load_checkpoint(path), dtype).eval()
