"""A small, smooth, multi-layer stand-in potential for tests and plugin benchmarks.

``ToyModel`` has the ``NewtonNet`` signature ``(species, edge_index, edge_vec) -> atomic
energies`` (``deploy_model`` wraps it in ``ffpt.model.forces.EnergyForces`` like any model) and
a genuine receptive field of ``num_interactions x cutoff`` (scalar message passing plus a
vector, angle-dependent term); energies are smooth (cosine cutoff), so MD with it conserves
energy. ``ToyEnergyForces`` is an independent reference for the deploy interface: forces from
the gradient with respect to positions, not edge vectors.
"""

from __future__ import annotations

import math
from typing import List, Optional  # noqa: UP035  (TorchScript needs typing.List)

import torch
from torch import Tensor, nn


class ToyModel(nn.Module):
    """Random but fixed-weight message-passing toy model (eV, Angstrom)."""

    def __init__(
        self,
        elements: list[str],
        cutoff: float = 4.0,
        num_interactions: int = 2,
        features: int = 8,
        num_radial: int = 6,
        seed: int = 0,
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n_el = len(elements)
        self.elements = list(elements)
        self.cutoff = float(cutoff)
        self.num_interactions = int(num_interactions)
        self.embed = nn.Parameter(torch.randn(n_el, features, generator=g))
        self.radial = nn.Parameter(
            0.3 * torch.randn(num_interactions, num_radial, features, generator=g)
        )
        self.mix = nn.Parameter(
            torch.randn(num_interactions, features, features, generator=g) / math.sqrt(features)
        )
        self.vec_w = nn.Parameter(0.2 * torch.randn(num_radial, generator=g))
        self.head = nn.Parameter(0.1 * torch.randn(features, generator=g))
        self.e0 = nn.Parameter(torch.randn(n_el, generator=g) - 5.0)
        self.register_buffer("mu", torch.linspace(0.5, cutoff, num_radial))
        self.width = float(cutoff / num_radial)

    def forward(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        r = torch.linalg.norm(edge_vec, dim=1)
        fc = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0) * (r < self.cutoff).to(r.dtype)
        rbf = torch.exp(-(((r.unsqueeze(1) - self.mu) / self.width) ** 2)) * fc.unsqueeze(1)
        h = self.embed[species]
        n = species.shape[0]
        for layer in range(self.num_interactions):
            w = rbf @ self.radial[layer]
            m = torch.zeros_like(h).index_add_(0, i, w * h[j])
            h = h + torch.tanh(m @ self.mix[layer])
        # angle-dependent part: |sum_j g(r_ij) r_ij|^2 per atom (3-body like)
        g = (rbf @ self.vec_w).unsqueeze(1) * edge_vec
        v = torch.zeros((n, 3), dtype=h.dtype, device=h.device).index_add_(0, i, g)
        # short-range repulsion keeps MD well behaved
        rep = torch.zeros(n, dtype=h.dtype, device=h.device).index_add_(
            0, i, 0.5 * fc * torch.exp(-4.0 * (r - 0.8))
        )
        return h @ self.head + self.e0[species] + 0.05 * (v * v).sum(1) + rep


class ToyEnergyForces(nn.Module):
    """Energy, atomic energies, forces and virial with the ffpt deploy signature."""

    def __init__(self, model: ToyModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        pos: Tensor,
        species: Tensor,
        edge_index: Tensor,
        edge_shift: Tensor,
        nlocal: int,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        pos = pos.detach().requires_grad_(True)
        edge_vec = pos[edge_index[1]] - pos[edge_index[0]] + edge_shift
        atomic = self.model(species, edge_index, edge_vec)
        energy = atomic[:nlocal].sum()
        grad_outputs: List[Optional[Tensor]] = [torch.ones_like(energy)]  # noqa: UP006, UP045
        grads = torch.autograd.grad([energy], [pos, edge_vec], grad_outputs=grad_outputs)
        dpos = grads[0]
        dvec = grads[1]
        assert dpos is not None
        assert dvec is not None
        virial = -(edge_vec.transpose(0, 1) @ dvec)
        return energy.detach(), atomic.detach(), -dpos, virial.detach()
