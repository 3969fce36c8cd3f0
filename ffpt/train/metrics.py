"""Loss and error metrics (energies compared per atom, forces per component)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ffpt.data.graph import GraphSet
from ffpt.model.forces import batch_energy_forces


def loss_terms(
    out: dict[str, torch.Tensor], energy: torch.Tensor, forces: torch.Tensor, n_atoms: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed squared errors: (sum_frames ((E-E_ref)/N)^2, sum_components (F-F_ref)^2).

    The loss is ``w_E * SSE_E / n_frames + w_F * SSE_F / n_force_components``, i.e. the MSE of the
    per-atom energy plus the MSE of force components (paper weights w_E = 1, w_F = 20).
    """
    de = (out["energy"].double() - energy.double()) / n_atoms.double()
    df = out["forces"] - forces
    return (de * de).sum(), (df * df).sum().double()




def evaluate(
    model: nn.Module, graphs: GraphSet, batch_size: int = 64, return_predictions: bool = False
) -> dict:
    """Energy (per atom and per frame) and force MAE/RMSE in eV and eV/Angstrom."""
    model.eval()
    dtype, device = next(model.parameters()).dtype, next(model.parameters()).device
    e_pred, e_ref, n_at, f_pred, f_ref = [], [], [], [], []
    for start in range(0, len(graphs), batch_size):
        b = graphs.batch(np.arange(start, min(start + batch_size, len(graphs)))).to(
            device=device, dtype=dtype)
        out = batch_energy_forces(
            model, b.species, b.pos, b.edge_index, b.edge_shift, b.batch, b.num_graphs
        )
        e_pred.append(out["energy"].double().cpu().numpy())
        f_pred.append(out["forces"].detach().double().cpu().numpy())
        e_ref.append(b.energy.double().cpu().numpy())
        f_ref.append(b.forces.double().cpu().numpy())
        n_at.append(b.n_atoms.cpu().numpy())
    ep, er, na = np.concatenate(e_pred), np.concatenate(e_ref), np.concatenate(n_at)
    fp, fr = np.concatenate(f_pred), np.concatenate(f_ref)
    de, df = ep - er, fp - fr
    res = {
        "n_frames": len(ep),
        "energy_mae": float(np.mean(np.abs(de))),
        "energy_rmse": float(np.sqrt(np.mean(de**2))),
        "energy_per_atom_mae": float(np.mean(np.abs(de / na))),
        "energy_per_atom_rmse": float(np.sqrt(np.mean((de / na) ** 2))),
        "forces_mae": float(np.mean(np.abs(df))),
        "forces_rmse": float(np.sqrt(np.mean(df**2))),
    }
    if return_predictions:
        res["predictions"] = {"energy": (ep, er, na), "forces": (fp, fr)}
    return res
