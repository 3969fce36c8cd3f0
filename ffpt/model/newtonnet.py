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

Hot path: e3nn's ``Y^1`` (normalize, "norm") is the unit vector r/|r| and ``o3.Linear`` on
``F x 1o`` is a matmul with its weight / sqrt(F); both run as plain tensor ops, with e3nn kept
for the weights and the reference (tests/test_model_fast_path.py proves equality to 1e-12).
"""


from typing import List, Optional  # noqa: UP035 (TorchScript resolves typing.List)

import torch
from e3nn import o3
from e3nn.util.jit import compile_mode
from torch import nn

from ffpt.model.malloc import keep_freed_memory
from ffpt.model.radial import BesselBasis, PolynomialEnvelope

keep_freed_memory()  # large per-edge temporaries: no page faults on every call (malloc.py)

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
    """Channel mixing of ``[N, F, 3]`` vectors: e3nn ``o3.Linear`` on ``F x 1o``.

    The weights live in the e3nn module (``linear.weight``, checkpoint key unchanged);
    :meth:`matrix` gives the equivalent plain ``[F, F]`` matrix (e3nn's ``1/sqrt(F)`` path
    normalisation folded in), used on the hot path as ``v^T @ matrix()``."""

    def __init__(self, features: int):
        super().__init__()
        self.features = features
        irreps = o3.Irreps(f"{features}x1o")
        self.linear = o3.Linear(irreps, irreps)
        self.alpha = float(features) ** -0.5  # e3nn "element" path normalisation (fan-in F)

    def matrix(self) -> torch.Tensor:
        return self.linear.weight.view(self.features, self.features) * self.alpha

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        n = v.shape[0]
        return self.linear(v.reshape(n, self.features * 3)).reshape(n, self.features, 3)


@compile_mode("script")
class Interaction(nn.Module):
    """One NewtonNet message-passing layer (see module docstring).

    Interface: vectors ``f``, ``d`` are ``[N, F, 3]``; inside they are ``[3N, F]`` (component
    major, features innermost: element-wise products vectorise, reductions over the three
    components are outer sums, gathers/scatters move whole rows), phi_F, phi_f
    (and phi_d) share one first matmul (weights concatenated) and one batched second matmul,
    and gathers/scatters are ``index_select``/``index_add``. ``first_layer`` marks the layer
    whose input vectors are zero (skips the ``f_j``-gated term, which is then exactly zero).
    """

    displacement: torch.jit.Final[bool]
    first_layer: torch.jit.Final[bool]

    def __init__(
        self,
        features: int,
        num_radial: int,
        activation: str,
        displacement: bool,
        first_layer: bool = False,
    ):
        super().__init__()
        f = features
        self.displacement = displacement
        self.first_layer = first_layer
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

    def edge_mlps(self, m: torch.Tensor) -> torch.Tensor:
        """``[phi_F(m), phi_f(m), phi_d(m)]`` as one ``[k, E, F]`` tensor: one matmul with the
        first layers' weights concatenated, one batched matmul for the second layers.
        phi_f is left out in the first layer (it gates zero vectors), phi_d without
        displacements."""
        w1 = [self.phi_F[0].weight]
        b1 = [self.phi_F[0].bias]
        w2 = [self.phi_F[2].weight]
        b2 = [self.phi_F[2].bias]
        if not self.first_layer:
            w1.append(self.phi_f[0].weight)
            b1.append(self.phi_f[0].bias)
            w2.append(self.phi_f[2].weight)
            b2.append(self.phi_f[2].bias)
        if self.displacement:
            w1.append(self.phi_d[0].weight)
            b1.append(self.phi_d[0].bias)
            w2.append(self.phi_d[2].weight)
            b2.append(self.phi_d[2].bias)
        k, e, nf = len(w1), m.shape[0], m.shape[1]
        h = self.phi_F[1](nn.functional.linear(m, torch.cat(w1), torch.cat(b1)))  # [E, kF]
        h = h.view(e, k, nf).transpose(0, 1)  # [k, E, F]
        return torch.baddbmm(
            torch.stack(b2).unsqueeze(1), h, torch.stack(w2).transpose(1, 2)
        )

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
        m = ha.index_select(0, i) * ha.index_select(0, j) * self.w_rbf(rbf)  # [E, F]
        a = a.index_add(0, i, m.to(a.dtype))  # (m is bf16 under autocast)
        return self.vector_update(a, f, d, self.edge_mlps(m), env, sh, edge_index)

    def forward_paired(
        self,
        a: torch.Tensor,
        f: torch.Tensor,
        d: torch.Tensor,
        rbf_c: torch.Tensor,
        env: torch.Tensor,
        sh: torch.Tensor,
        edge_index: torch.Tensor,
        canon: torch.Tensor,
        expand: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`forward` for a graph whose every edge has its reverse (:func:`edge_pairing`):
        m_ij = m_ji, so the message and the phi MLPs run once per pair (``canon`` edges,
        ``rbf_c`` their radial basis) and are gathered back to all edges by ``expand``."""
        ic, jc = edge_index[0].index_select(0, canon), edge_index[1].index_select(0, canon)
        ha = self.phi_a(a)
        m = ha.index_select(0, ic) * ha.index_select(0, jc) * self.w_rbf(rbf_c)  # [E/2, F]
        mm = m.to(a.dtype)
        a = a.index_add(0, ic, mm).index_add(0, jc, mm)
        out = self.edge_mlps(m).index_select(1, expand)  # [k, E, F]
        return self.vector_update(a, f, d, out, env, sh, edge_index)

    def vector_update(
        self,
        a: torch.Tensor,
        f: torch.Tensor,
        d: torch.Tensor,
        out: torch.Tensor,
        env: torch.Tensor,
        sh: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Steps 3-5 of the layer from the per-edge MLP outputs ``out`` [k, E, F]."""
        i, j = edge_index[0], edge_index[1]
        n, nf, ne = a.shape[0], a.shape[1], i.shape[0]
        env = env.unsqueeze(-1)
        # vectors as [3N, F] (component-major rows): gathers/scatters over 3E rows
        i3 = torch.cat([i, i + n, i + 2 * n])
        ft = f.permute(2, 0, 1).reshape(3 * n, nf)
        ush = (sh * env).t().contiguous().unsqueeze(2)  # u Y^1: [3, E, 1]
        msg = out[0].unsqueeze(0) * ush  # phi_F(m) u Y^1: [3, E, F]
        if not self.first_layer:
            j3 = torch.cat([j, j + n, j + 2 * n])
            gate = (out[1] * env).unsqueeze(0)
            msg = msg + gate * ft.index_select(0, j3).view(3, ne, nf)
        ft = ft.index_add(0, i3, msg.view(3 * ne, nf))
        if self.displacement:
            j3 = torch.cat([j, j + n, j + 2 * n])
            dt = d.permute(2, 0, 1).reshape(3 * n, nf)
            dt = dt + (self.phi_r(a).unsqueeze(0) * ft.view(3, n, nf)).view(3 * n, nf)
            gate_d = (out[-1] * env).unsqueeze(0)
            dt = dt.index_add(0, i3, (gate_d * dt.index_select(0, j3).view(3, ne, nf)).view(-1, nf))
            inv = (ft * dt).view(3, n, nf).sum(0)
            d = dt.view(3, n, nf).permute(1, 2, 0)
        else:
            inv = (ft * torch.matmul(ft, self.mix.matrix())).view(3, n, nf).sum(0)
        a = a + self.phi_e(a) * inv
        return a, ft.view(3, n, nf).permute(1, 2, 0), d


def edge_pairing(
    edge_index: torch.Tensor, n: int
) -> Optional[tuple[torch.Tensor, torch.Tensor]]:  # noqa: UP045 (TorchScript)
    """``(canon, expand)`` when every edge (i, j) has exactly one reverse (j, i) and no pair
    repeats (no periodic images of the same pair): ``canon`` lists the edges with i < j, and
    ``expand[e]`` is the position in ``canon`` of edge e or of its reverse. None otherwise
    (then every edge is computed, e.g. small periodic cells or LAMMPS ghost graphs)."""
    i, j = edge_index[0], edge_index[1]
    ne = i.shape[0]
    if ne == 0 or ne % 2 == 1 or bool((i == j).any()):
        return None
    key = i * n + j
    order = torch.argsort(key)
    sk = key.index_select(0, order)
    if bool((sk[1:] == sk[:-1]).any()):
        return None
    rkey = j * n + i
    rev = order.index_select(0, torch.searchsorted(sk, rkey).clamp(max=ne - 1))
    if not bool((key.index_select(0, rev) == rkey).all()):
        return None
    lower = i < j
    canon = torch.nonzero(lower).squeeze(1)
    slot = torch.zeros(ne, dtype=i.dtype, device=i.device)
    slot[canon] = torch.arange(canon.shape[0], dtype=i.dtype, device=i.device)
    return canon, torch.where(lower, slot, slot.index_select(0, rev))


@torch.jit.unused
def _tracing() -> bool:
    """Inside make_fx (the AOTInductor route), torch.compile or torch.export."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    return (
        get_proxy_mode() is not None
        or torch.compiler.is_compiling()
        or torch.compiler.is_exporting()
    )


@compile_mode("script")
class NewtonNet(nn.Module):
    """Atomic energies (eV) from species and edge vectors; see module docstring."""

    elements: List[str]  # noqa: UP006 (TorchScript resolves typing.List)
    cutoff: float
    num_interactions: int
    features: int
    pair_edges: bool

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
        self.pair_edges = True  # one MLP evaluation per edge pair when edges come in pairs
        self.embedding = nn.Embedding(len(elements), features)
        self.rbf = BesselBasis(cutoff, num_radial)
        self.envelope = PolynomialEnvelope(cutoff)
        self.sh = o3.SphericalHarmonics("1o", normalize=True, normalization="norm")
        self.interactions = nn.ModuleList(
            [
                Interaction(features, num_radial, activation, displacement, first_layer=k == 0)
                for k in range(num_interactions)
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
        pair = self.pair_edges
        if not torch.jit.is_scripting() and _tracing():
            pair = False  # data-dependent branch: torch.export/AOTInductor take the full path
        pairing = edge_pairing(edge_index, n) if pair else None
        if pairing is None:
            for layer in self.interactions:
                a, f, d = layer(a, f, d, rbf, env, sh, edge_index)
        else:
            canon, expand = pairing
            rbf_c = rbf.index_select(0, canon)
            for layer in self.interactions:
                a, f, d = layer.forward_paired(a, f, d, rbf_c, env, sh, edge_index, canon,
                                               expand)
        return a
