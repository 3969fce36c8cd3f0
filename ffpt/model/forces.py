"""Energy, forces and virial from a NewtonNet by autograd through the edge vectors.

Forces and virial both come from ``g_e = dE/d r_e`` (r_e = pos[j] - pos[i] + shift):
``F_i = sum_{e: i_e = i} g_e - sum_{e: j_e = i} g_e`` and ``W = -sum_e r_e (x) g_e``, which equals
the strain derivative ``dE/d eps = -W`` (stress = -W / V in ASE's sign convention). The same
code serves training (batched, ``create_graph``), the ASE calculator and the deployed artifact.
"""

import numpy as np
import torch
from e3nn.util.jit import compile_mode
from torch import nn


def edge_vectors(
    pos: torch.Tensor, edge_index: torch.Tensor, edge_shift: torch.Tensor
) -> torch.Tensor:
    return pos[edge_index[1]] - pos[edge_index[0]] + edge_shift


def forces_from_edge_grad(
    g: torch.Tensor, edge_index: torch.Tensor, n_atoms: int
) -> torch.Tensor:
    out = torch.zeros((n_atoms, 3), dtype=g.dtype, device=g.device)
    return out.index_add(0, edge_index[0], g).index_add(0, edge_index[1], -g)


@compile_mode("script")
class EnergyForces(nn.Module):
    """Deploy interface (TorchScript): one structure, energy of the first ``nlocal`` atoms.

    ``forward(pos, species, edge_index, edge_shift, nlocal) ->
    (energy, atomic_energies[N], forces[N,3], virial[3,3])``; forces act on all N atoms
    (LAMMPS ghosts included) and the virial is ``-sum_e r_e (x) dE/dr_e``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(
        self,
        pos: torch.Tensor,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        edge_shift: torch.Tensor,
        nlocal: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        edge_vec = edge_vectors(pos, edge_index, edge_shift).detach()
        edge_vec.requires_grad_(True)
        atomic = self.model(species, edge_index, edge_vec)
        energy = atomic[:nlocal].sum()
        forces, virial = forces_virial(energy, edge_vec, edge_index, pos.shape[0])
        return energy.detach(), atomic.detach(), forces, virial


class MaskedEnergyForces(nn.Module):
    """AOTInductor deploy interface (``ffpt.deploy.aoti``): as :class:`EnergyForces`, with a
    float mask of the atoms whose energies are summed instead of ``nlocal`` (an integer would
    bake an ``N >= nlocal`` guard into the compiled graph).

    ``forward(pos, species, edge_index, edge_shift, local_mask) -> (E, E_i, F, W)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pos, species, edge_index, edge_shift, local_mask):
        edge_vec = edge_vectors(pos, edge_index, edge_shift).detach()
        edge_vec.requires_grad_(True)
        atomic = self.model(species, edge_index, edge_vec)
        energy = (atomic * local_mask).sum()
        forces, virial = forces_virial(energy, edge_vec, edge_index, pos.shape[0])
        return energy.detach(), atomic.detach(), forces, virial


def forces_virial(
    energy: torch.Tensor, edge_vec: torch.Tensor, edge_index: torch.Tensor, n_atoms: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forces [N,3] and virial ``-sum_e r_e (x) dE/dr_e`` [3,3] of one structure's energy."""
    grad_outputs: list[torch.Tensor | None] = [torch.ones_like(energy)]
    g = torch.autograd.grad([energy], [edge_vec], grad_outputs=grad_outputs)[0]
    if g is None:
        g = torch.zeros_like(edge_vec)
    return forces_from_edge_grad(g, edge_index, n_atoms), -edge_vec.detach().t() @ g


@torch.no_grad()
def batch_energies(model: nn.Module, b) -> torch.Tensor:
    """Per-frame energies [G] of a graph batch ``b`` (``GraphSet.batch``), summed in float64,
    without forces (energy fits, scans)."""
    atomic = model(b.species, b.edge_index, edge_vectors(b.pos, b.edge_index, b.edge_shift))
    return torch.zeros(b.num_graphs, dtype=torch.float64, device=atomic.device).index_add(
        0, b.batch, atomic.double()
    )


def batch_energy_forces(
    model: nn.Module,
    species: torch.Tensor,
    pos: torch.Tensor,
    edge_index: torch.Tensor,
    edge_shift: torch.Tensor,
    batch: torch.Tensor,
    num_graphs: int,
    training: bool = False,
    compute_virial: bool = False,
) -> dict[str, torch.Tensor]:
    """Per-frame energies [G], forces [N,3] and (optionally) virials [G,3,3] of a batch."""
    edge_vec = edge_vectors(pos, edge_index, edge_shift)
    if not training:
        edge_vec = edge_vec.detach()
    edge_vec.requires_grad_(True)
    atomic = model(species, edge_index, edge_vec)
    energy = torch.zeros(num_graphs, dtype=atomic.dtype, device=atomic.device).index_add(
        0, batch, atomic
    )
    (g,) = torch.autograd.grad(
        energy.sum(), edge_vec, create_graph=training, retain_graph=training
    )
    out = {
        "energy": energy if training else energy.detach(),
        "atomic_energies": atomic if training else atomic.detach(),
        "forces": forces_from_edge_grad(g, edge_index, pos.shape[0]),
    }
    if compute_virial:
        ev = edge_vec if training else edge_vec.detach()
        per_edge = -ev.unsqueeze(-1) * g.unsqueeze(-2)  # [E,3,3]
        edge_graph = batch[edge_index[0]]
        out["virial"] = torch.zeros(
            (num_graphs, 3, 3), dtype=g.dtype, device=g.device
        ).index_add(0, edge_graph, per_edge)
    return out


def virial_to_stress(virial, volume: float) -> np.ndarray:
    """ASE stress (eV/A^3, Voigt xx yy zz yz xz xy) from a virial [3,3] (eV): ``-W / V``,
    symmetrised. The one conversion every ffpt ASE calculator uses."""
    from ase.stress import full_3x3_to_voigt_6_stress

    w = virial.detach().cpu().numpy() if isinstance(virial, torch.Tensor) else virial
    w = np.asarray(w, dtype=np.float64)
    return full_3x3_to_voigt_6_stress(-0.5 * (w + w.T) / volume)
