"""Equivariant NewtonNet (Haghighatlari et al., Digital Discovery 2022) on e3nn.

Features per atom i: scalars ``a_i`` (``F x 0e``), latent force vectors ``f_i`` (``F x 1o``)
and, optionally, latent displacements ``d_i`` (``F x 1o``). Vectors are stored as e3nn
``F x 1o`` arrays viewed as ``[N, F, 3]`` (e3nn's l=1 order (y, z, x); only invariants leave the
model, so the order never matters outside). Edge directions are e3nn spherical harmonics
``Y^1(r_ij)``; the radial basis ``e(r_ij)`` is Bessel x polynomial envelope (zero with its first two
derivatives at the cutoff). Layer l (NewtonNet eqs. in brackets):

1. message (symmetric in i, j)        m_ij = phi_a(a_i) * phi_a(a_j) * W_rbf e(r_ij)
2. scalar update                      a_i <- a_i + sum_j m_ij
3. latent force (Newton's 3rd law)    F_ij = phi_F(m_ij) u(r_ij) Y^1(r_ij)   (antisymmetric)
                                      f_i <- f_i + sum_j F_ij + sum_j phi_f(m_ij) u(r_ij) f_j
4. latent displacement (optional)     d_i <- d_i + phi_r(a_i) f_i + sum_j phi_d(m_ij) u(r_ij) d_j
5. energy-like update (1o x 1o -> 0e) a_i <- a_i + phi_e(a_i) * <f_i, d_i>   (with displacements)
                                      a_i <- a_i + phi_e(a_i) * <f_i, U f_i> (without; U mixes
                                      channels, an e3nn ``o3.Linear`` on ``F x 1o``)

Readout: E_i = MLP(a_i) * scale[Z_i] + shift[Z_i]; E = sum_i E_i; forces = -dE/dx by autograd
(``ffpt.model.forces``).
"""


from typing import List  # noqa: UP035 (TorchScript resolves typing.List)

import torch
from e3nn import o3
from e3nn.util.jit import compile_mode
from torch import nn

from ffpt.model.radial import BesselBasis, PolynomialEnvelope

ACTIVATIONS = {"silu": nn.SiLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def mlp(sizes: list[int], activation: str, last_bias: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        last = k == len(sizes) - 2
        layers.append(nn.Linear(sizes[k], sizes[k + 1], bias=(last_bias or not last)))
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@compile_mode("script")
class VectorLinear(nn.Module):
    """Channel mixing of ``[N, F, 3]`` vectors: e3nn ``o3.Linear`` on ``F x 1o``."""

    def __init__(self, features: int):
        super().__init__()
        self.features = features
        irreps = o3.Irreps(f"{features}x1o")
        self.linear = o3.Linear(irreps, irreps)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        n = v.shape[0]
        return self.linear(v.reshape(n, self.features * 3)).reshape(n, self.features, 3)


@compile_mode("script")
class Interaction(nn.Module):
    """One NewtonNet message-passing layer (see module docstring)."""

    def __init__(self, features: int, num_radial: int, activation: str, displacement: bool):
        super().__init__()
        f = features
        self.displacement = displacement
        self.phi_a = mlp([f, f, f], activation)
        self.w_rbf = nn.Linear(num_radial, f, bias=False)
        self.phi_F = mlp([f, f, f], activation)
        self.phi_f = mlp([f, f, f], activation)
        self.phi_e = mlp([f, f, f], activation)
        if displacement:
            self.phi_r = mlp([f, f, f], activation)
            self.phi_d = mlp([f, f, f], activation)
            self.mix = nn.Identity()
        else:
            self.phi_r = nn.Identity()
            self.phi_d = nn.Identity()
            self.mix = VectorLinear(f)

    def forward(
        self,
        a: torch.Tensor,
        f: torch.Tensor,
        d: torch.Tensor,
        rbf: torch.Tensor,
        env: torch.Tensor,
        sh: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i, j = edge_index[0], edge_index[1]
        ha = self.phi_a(a)
        m = ha[i] * ha[j] * self.w_rbf(rbf)  # [E, F]
        a = a.index_add(0, i, m)
        env = env.unsqueeze(-1)
        force_ij = (self.phi_F(m) * env).unsqueeze(-1) * sh.unsqueeze(1)  # [E, F, 3]
        gate_f = (self.phi_f(m) * env).unsqueeze(-1)
        f = f.index_add(0, i, force_ij + gate_f * f[j])
        if self.displacement:
            gate_d = (self.phi_d(m) * env).unsqueeze(-1)
            d = d + self.phi_r(a).unsqueeze(-1) * f
            d = d.index_add(0, i, gate_d * d[j])
            inv = (f * d).sum(-1)
        else:
            inv = (f * self.mix(f)).sum(-1)
        a = a + self.phi_e(a) * inv
        return a, f, d


@compile_mode("script")
class NewtonNet(nn.Module):
    """Atomic energies (eV) from species and edge vectors; see module docstring."""

    elements: List[str]  # noqa: UP006 (TorchScript resolves typing.List)
    cutoff: float
    num_interactions: int
    features: int

    def __init__(
        self,
        elements: list[str],
        features: int = 128,
        num_radial: int = 20,
        cutoff: float = 5.0,
        num_interactions: int = 3,
        activation: str = "silu",
        displacement: bool = False,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {list(ACTIVATIONS)}")
        self.elements = list(elements)
        self.cutoff = float(cutoff)
        self.num_interactions = int(num_interactions)
        self.features = int(features)
        self.embedding = nn.Embedding(len(elements), features)
        self.rbf = BesselBasis(cutoff, num_radial)
        self.envelope = PolynomialEnvelope(cutoff)
        self.sh = o3.SphericalHarmonics("1o", normalize=True, normalization="norm")
        self.interactions = nn.ModuleList(
            [
                Interaction(features, num_radial, activation, displacement)
                for _ in range(num_interactions)
            ]
        )
        self.readout = mlp([features, features // 2, 1], activation)
        self.register_buffer("shift", torch.zeros(len(elements)))
        self.register_buffer("scale", torch.ones(len(elements)))

    def forward(
        self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor
    ) -> torch.Tensor:
        a = self.representation(species, edge_index, edge_vec)
        return self.atomic_energies(a, species)

    def atomic_energies(self, a: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Readout: atomic energies (eV) from the last scalar features ``a`` [N, F]."""
        e = self.readout(a).squeeze(-1)
        return e * self.scale[species] + self.shift[species]

    def edge_features(
        self, edge_vec: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-edge inputs of every interaction: (radial basis x envelope, envelope, Y^1)."""
        r = torch.linalg.norm(edge_vec, dim=-1)
        env = self.envelope(r)
        rbf = self.rbf(r) * env.unsqueeze(-1)
        return rbf, env, self.sh(edge_vec)

    def representation(
        self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor
    ) -> torch.Tensor:
        """Per-atom scalar features ``a`` [N, F] after the last interaction (the body that
        energy heads share; see ``ffpt.train.strategies.ReplayHead``)."""
        rbf, env, sh = self.edge_features(edge_vec)
        a = self.embedding(species)
        n = a.shape[0]
        f = torch.zeros((n, self.features, 3), dtype=a.dtype, device=a.device)
        d = torch.zeros_like(f)
        for layer in self.interactions:
            a, f, d = layer(a, f, d, rbf, env, sh, edge_index)
        return a
