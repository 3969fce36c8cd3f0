"""Training device and precision: ``training.device`` and ``training.precision``.

``auto`` picks CUDA when available (rank r of a multi-GPU ``torchrun`` uses ``cuda:LOCAL_RANK``),
``tf32`` lets CUDA matmuls run in TF32, ``bf16-autocast`` runs the model under
``torch.autocast(bfloat16)`` (reductions and the loss stay float32). Distributed runs use NCCL on
CUDA and gloo on CPU. Checkpoints are written from CPU copies (:func:`to_cpu`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import torch


def resolve_device(name: str) -> torch.device:
    """``auto|cpu|cuda|cuda:N`` -> a torch device; one-line error when CUDA is missing."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"training.device is {name!r} but no CUDA device is available (torch "
                f"{torch.__version__}); set training.device: cpu or auto"
            )
        if name == "cuda":
            name = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(torch.device(name))
    return torch.device(name)


def dist_backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def precision_context(precision: str, device: torch.device) -> Callable[[], Any]:
    """A factory of the context the forward/backward runs in; sets TF32 for ``tf32``."""
    if precision == "tf32":
        if device.type != "cuda":
            raise ValueError("training.precision tf32 needs a CUDA device; use float32 on CPU")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    elif device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if precision == "bf16-autocast":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def to_cpu(obj: Any) -> Any:
    """Tensors of a nested dict/list moved to CPU (optimizer states for checkpoints)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def all_reduce_(t: torch.Tensor, device: torch.device, op=None) -> None:
    """``dist.all_reduce`` of a CPU tensor in place, through ``device`` (NCCL needs CUDA)."""
    import torch.distributed as dist

    op = dist.ReduceOp.SUM if op is None else op
    if device.type == "cuda":
        d = t.to(device)
        dist.all_reduce(d, op=op)
        t.copy_(d.cpu())
    else:
        dist.all_reduce(t, op=op)


def broadcast_(t: torch.Tensor, device: torch.device, src: int = 0) -> None:
    import torch.distributed as dist

    if device.type == "cuda":
        d = t.to(device)
        dist.broadcast(d, src)
        t.copy_(d.cpu())
    else:
        dist.broadcast(t, src)
