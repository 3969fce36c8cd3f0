"""Fine-tuning that starts from, and can stay close to, the pre-trained (PT) function.

Start (every strategy): at FT step 0 the model computes exactly the PT function except for the
per-element energy shifts, refit by least squares on the FT data with the shift-free model as
baseline; elements absent from the FT data keep their PT shift. ``training.refit_scale`` sets
the energy scale to the FT force RMS *with compensation*: all elements' scales are multiplied by
one global factor ``c`` (``c = rms_FT / mean(scale_PT)``, so a uniform PT scale becomes exactly
the FT force RMS) and the readout's last Linear layer (weight and bias) is divided by ``c``;
``MLP(a) * scale`` is unchanged because the readout is shared by all elements and ``c`` is one
number. Only the parametrisation (and with it the optimiser's step in energy space) changes.

Strategies (``training.ft_strategy``):

- ``plain``: the paper's method, the whole model trained on the FT loss.
- ``l2sp``: loss += ``l2sp_alpha * sum_k (theta_k - theta_PT,k)^2`` over the trainable model
  parameters (Li et al. 2018). ``theta_PT`` are the parameters at FT step 0 (the PT weights, with
  the compensated readout layer when ``refit_scale``); ``l2sp_alpha`` is in units of the loss
  (per-atom energy MSE in eV^2 + 20 x force MSE in (eV/A)^2) per squared (dimensionless)
  parameter.
- ``replay``: a second energy head (:class:`ReplayHead`, a copy of the PT readout with the PT
  scale/shift) keeps fitting PT force-field frames drawn into every batch (``replay.ratio`` PT
  frames per FT frame, loss weight ``replay.weight``). FF labels reach the shared body and this
  head only, never the main (ab initio) readout, which alone is saved as the model.

``ft_freeze`` (name prefixes) freezes parameters; ``ft_lr_mult`` ({prefix: multiplier}) puts
them in slower/faster optimiser parameter groups; both combine with any strategy.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ffpt.data.graph import GraphSet
from ffpt.model.forces import batch_energies
from ffpt.model.newtonnet import NewtonNet
from ffpt.train.stats import fit_shifts, force_rms


# -------------------------------------------------------------------- energy head
@torch.no_grad()
def model_energies(model: nn.Module, graphs: GraphSet, batch_size: int) -> np.ndarray:
    """Per-frame model energies (no forces), float64."""
    dtype = next(model.parameters()).dtype
    out = []
    for s in range(0, len(graphs), batch_size):
        b = graphs.batch(np.arange(s, min(s + batch_size, len(graphs)))).to(dtype=dtype)
        out.append(batch_energies(model, b))
    return torch.cat(out).numpy()


@torch.no_grad()
def prepare_energy_head(
    model: NewtonNet, graphs: GraphSet, mode: str, refit_scale: bool, batch_size: int
) -> dict:
    """Set ``model.scale``/``model.shift`` for the start of training on ``graphs.frames``.

    scratch/pretrain: scale = force RMS of the data, shifts fitted (absent elements 0).
    finetune: function-preserving (module docstring); returns what changed for metrics.json.
    """
    frames = graphs.frames
    info: dict = {}
    if mode != "finetune":
        model.scale.fill_(force_rms(frames))
        absent = None
    else:
        absent = model.shift.detach().double().cpu().numpy().copy()  # shift is zeroed below
        if refit_scale:
            c = force_rms(frames) / float(model.scale.double().mean())
            last = model.readout[-1]
            if not isinstance(last, nn.Linear):
                raise TypeError("refit_scale needs a readout that ends in nn.Linear")
            model.scale.mul_(c)
            last.weight.div_(c)
            if last.bias is not None:
                last.bias.div_(c)
            info["scale_factor"] = c
    model.shift.zero_()
    base = model_energies(model, graphs, batch_size)
    shifts = fit_shifts(frames, model.elements, base, absent=absent)
    model.shift.copy_(torch.as_tensor(shifts, dtype=model.shift.dtype))
    return info


# -------------------------------------------------------------- parameter groups
def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix.rstrip(".") + ".")


def param_groups(model: nn.Module, lr: float, freeze: list[str],
                 lr_mult: dict[str, float]) -> list[dict]:
    """Freeze parameters by name prefix and group the rest by lr multiplier (longest prefix
    wins); the default group (multiplier 1) comes first when it is not empty."""
    named = dict(model.named_parameters())
    tops = sorted({n.split(".")[0] for n in named})
    for key, prefixes in (("ft_freeze", list(freeze)), ("ft_lr_mult", list(lr_mult))):
        for p in prefixes:
            if not any(_matches(n, str(p)) for n in named):
                raise ValueError(f"training.{key}: prefix {p!r} matches no parameter; names "
                                 f"start with {tops} (e.g. interactions.0, readout.2)")
    groups: dict[float, list[nn.Parameter]] = {1.0: []}
    for name, p in named.items():
        if any(_matches(name, str(f)) for f in freeze):
            p.requires_grad_(False)
            continue
        hits = [str(k) for k in lr_mult if _matches(name, str(k))]
        mult = float(lr_mult[max(hits, key=len)]) if hits else 1.0
        groups.setdefault(mult, []).append(p)
    if not any(groups.values()):
        raise ValueError("training.ft_freeze freezes every parameter; nothing would train")
    return [{"params": ps, "lr": lr * m, "lr_mult": m} for m, ps in groups.items() if ps]


# ------------------------------------------------------------------------- L2-SP
class L2SP:
    """``alpha * sum (theta - theta_PT)^2`` over the trainable parameters of a model."""

    def __init__(self, model: nn.Module, alpha: float,
                 reference: dict[str, torch.Tensor] | None = None):
        self.alpha = float(alpha)
        named = dict(model.named_parameters())
        if reference is None:
            reference = {n: p.detach().clone() for n, p in named.items()}
        self.reference = {n: reference[n].to(named[n]) for n in named}

    def penalty(self, model: nn.Module) -> torch.Tensor:
        terms = [((p - self.reference[n]) ** 2).sum()
                 for n, p in model.named_parameters() if p.requires_grad]
        return self.alpha * torch.stack(terms).sum()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: t.detach().cpu() for n, t in self.reference.items()}


# ------------------------------------------------------------------------ replay
class ReplayHead(nn.Module):
    """The PT energy head: a copy of the PT readout with the PT per-element scale/shift."""

    def __init__(self, model: NewtonNet):
        super().__init__()
        self.readout = copy.deepcopy(model.readout)
        self.register_buffer("shift", model.shift.detach().clone())
        self.register_buffer("scale", model.scale.detach().clone())

    def forward(self, a: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        return self.readout(a).squeeze(-1) * self.scale[species] + self.shift[species]


class BodyWithHead(nn.Module):
    """``forward(species, edge_index, edge_vec)``: the model's body with another energy head,
    so that ``ffpt.model.forces.batch_energy_forces`` gives its energies and forces."""

    def __init__(self, model: NewtonNet, head: nn.Module):
        super().__init__()
        self.model = model
        self.head = head

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor,
                edge_vec: torch.Tensor) -> torch.Tensor:
        return self.head(self.model.representation(species, edge_index, edge_vec), species)


def replay_source(replay_data, init_ckpt: dict, init_from: str) -> tuple[object, dict]:
    """The PT data for replay and the data-reading options to use for it.

    ``replay.data`` when set, else the PT run's ``data.train`` saved in the ``init_from``
    checkpoint; reading options (format, keys, unit) come from that checkpoint's config.
    """
    from ffpt.train.config import DEFAULTS

    pt_cfg = init_ckpt.get("config") or {}
    read = {k: (pt_cfg.get("data") or {}).get(k, DEFAULTS["data"][k])
            for k in ("format", "energy_key", "forces_key", "energy_unit")}
    if replay_data is not None:
        return replay_data, read
    saved = (pt_cfg.get("data") or {}).get("train")
    paths = saved if isinstance(saved, list) else [saved]
    if saved is None or not all(isinstance(p, str) and Path(p).exists() for p in paths):
        raise ValueError(
            f"ft_strategy replay needs the PT data: {init_from} records data.train = {saved!r}, "
            "which is not an existing file; set training.replay.data to the PT data file(s)"
        )
    return saved, read


def replay_indices(rng: np.random.Generator, n_ft: int, n_pt: int, ratio: float) -> np.ndarray:
    """PT frame indices to mix into a batch of ``n_ft`` FT frames (at least one)."""
    k = max(1, round(ratio * n_ft))
    return rng.choice(n_pt, size=k, replace=k > n_pt)
