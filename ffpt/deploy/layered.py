"""Per-layer pieces of a NewtonNet for ``pair_style ffpt exchange layer``.

``LayeredEnergyForces`` is the deploy interface (``forward`` as ``EnergyForces``) plus four
exported TorchScript methods that the pair style calls one after another, exchanging the
ghost atoms' node features between MPI ranks after every interaction and their gradients
(reverse) between the backward steps:

- ``edge_features(edge_vec[E,3]) -> (rbf, env, sh)`` (per-edge inputs of every layer),
- ``embed(species[N]) -> x[N,C]`` (node features before the first layer),
- ``interaction(k, x, rbf, env, sh, edge_index) -> x`` (layer ``k``),
- ``readout(x, species) -> atomic energies``.

Node features travel as one ``[N, C]`` tensor: ``a`` (F), then ``f`` (3F), then ``d`` (3F, only
for models with latent displacements), so ``C = node_features(model)`` numbers per atom
(exchanged in the model dtype).
With displacements one interaction reaches two edges (``layer_hops``): the pair style then also
evaluates the layer on the ghosts next to its atoms (their results are replaced by the exchange).
``layered_evaluate`` runs the pieces on one graph with autograd piece by piece, as the pair
style does (tests, and the reference for the C++ code).

Paired pieces (what the pair style uses when the artifact has them; artifacts without them
run ``edge_features`` / ``interaction``): ``edge_pairs(edge_index, n) -> (pair_index, expand,
npaired)`` groups the edges whose reverse is in the graph (:func:`edge_groups`), so that
``edge_features_paired`` and ``interaction_paired`` compute the symmetric message m_ij = m_ji
and the per-edge MLPs once per pair, as the one-call model does on a full graph
(``Interaction.forward_paired``); edges to ghost atoms (no reverse on this rank) stay single.
Call the pieces with the graph executor's optimisation off (``torch.jit.optimized_execution(
False)``; C++: ``GraphOptimizerEnabledGuard``): with inputs that require grad the executor
otherwise builds symbolic-autodiff graphs, measured ~20 % slower than autograd's own
backward (benchmarks/layer_pieces_profile.py).
"""

from __future__ import annotations

import torch
from e3nn.util.jit import compile_mode
from torch import Tensor

from ffpt.model.forces import EnergyForces, forces_from_edge_grad
from ffpt.model.newtonnet import NewtonNet


def supports_layers(model: torch.nn.Module) -> bool:
    """Whether ``model`` can be exported as per-layer pieces (a plain NewtonNet)."""
    return isinstance(model, NewtonNet)


def node_features(model: NewtonNet) -> int:
    """Per-atom numbers exchanged between layers: a (F) + f (3F) [+ d (3F)]."""
    return model.features * (7 if model.interactions[0].displacement else 4)


def edge_groups(edge_index: Tensor, edge_vec: Tensor, n: int,
                tolerance: float = 1e-4) -> tuple[Tensor, Tensor, int]:
    """``(canon, expand, npaired)`` for any directed graph of ``n`` nodes: edge e = (i, j) is
    paired when (i, j) occurs once and (j, i) occurs once with the opposite edge vector (to
    ``tolerance`` A, far below the distance of another image; then m_ij = m_ji). ``canon`` lists
    the paired edges with i < j (the first ``npaired``), then every unpaired edge (self edges,
    repeated pairs of small periodic cells, edges to ghosts without their reverse);
    ``expand[e]`` is the position in ``canon`` of e or of its reverse. A full symmetric graph
    gives ``Interaction.forward_paired``'s pairing; a graph without pairs gives all edges."""
    i, j = edge_index[0], edge_index[1]
    ne = i.shape[0]
    key = i * n + j
    sk, order = torch.sort(key)
    same = sk[1:] == sk[:-1]
    no = torch.zeros(1, dtype=torch.bool, device=i.device)
    dup = torch.zeros(ne, dtype=torch.bool, device=i.device)
    if ne > 0:
        dup[order] = torch.cat([same, no]) | torch.cat([no, same])
    rkey = j * n + i
    rev = order.index_select(0, torch.searchsorted(sk, rkey).clamp(max=max(ne - 1, 0)))
    paired = (key.index_select(0, rev) == rkey) & ~dup & ~dup.index_select(0, rev) & (i != j)
    opposite = (edge_vec + edge_vec.index_select(0, rev)).abs().amax(dim=1) <= tolerance
    paired = paired & opposite
    lower = paired & (i < j)
    canon = torch.cat([torch.nonzero(lower).squeeze(1), torch.nonzero(~paired).squeeze(1)])
    slot = torch.zeros(ne, dtype=i.dtype, device=i.device)
    slot[canon] = torch.arange(canon.shape[0], dtype=i.dtype, device=i.device)
    expand = torch.where(paired & (i > j), slot.index_select(0, rev), slot)
    return canon, expand, int(lower.sum())


def layer_hops(model: NewtonNet) -> int:
    """Edges that one interaction reaches: 1, or 2 with latent displacements (``d_j`` enters
    atom i's update after ``a_j`` and ``f_j`` took their own messages in the same layer)."""
    return 2 if model.interactions[0].displacement else 1


@compile_mode("script")
class LayeredEnergyForces(EnergyForces):
    """``EnergyForces`` of a NewtonNet plus its per-layer pieces (module docstring)."""

    def __init__(self, model: NewtonNet):
        super().__init__(model)
        self.features = int(model.features)
        self.displacement = bool(model.interactions[0].displacement)
        self.channels = node_features(model)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, f = x.shape[0], self.features
        a = x[:, :f]
        v = x[:, f:4 * f].reshape(n, f, 3)
        d = x[:, 4 * f:].reshape(n, f, 3) if self.displacement else torch.zeros_like(v)
        return a, v, d

    def _join(self, a: Tensor, v: Tensor, d: Tensor) -> Tensor:
        n = a.shape[0]
        if self.displacement:
            return torch.cat([a, v.reshape(n, -1), d.reshape(n, -1)], dim=1)
        return torch.cat([a, v.reshape(n, -1)], dim=1)

    @torch.jit.export
    def edge_features(self, edge_vec: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.edge_features(edge_vec)

    @torch.jit.export
    def embed(self, species: Tensor) -> Tensor:
        a = self.model.embedding(species)
        zeros = torch.zeros((a.shape[0], self.channels - self.features), dtype=a.dtype,
                            device=a.device)
        return torch.cat([a, zeros], dim=1)

    @torch.jit.export
    def interaction(self, k: int, x: Tensor, rbf: Tensor, env: Tensor, sh: Tensor,
                    edge_index: Tensor) -> Tensor:
        a, v, d = self._split(x)
        for idx, layer in enumerate(self.model.interactions):
            if idx == k:
                a, v, d = layer(a, v, d, rbf, env, sh, edge_index)
        return self._join(a, v, d)

    @torch.jit.export
    def edge_pairs(self, edge_index: Tensor, edge_vec: Tensor,
                   n: int) -> tuple[Tensor, Tensor, int]:
        """:func:`edge_groups` (once per graph; the paired pieces take its results)."""
        return edge_groups(edge_index, edge_vec.detach(), n)

    @torch.jit.export
    def edge_features_paired(self, edge_vec: Tensor,
                             canon: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``edge_features`` with the radial basis of the canonical edges only [E_c, R]
        (evaluated on those edges only: the same numbers as ``NewtonNet.edge_features``)."""
        r = torch.linalg.norm(edge_vec, dim=-1)
        env = self.model.envelope(r)
        rbf_c = self.model.rbf(r.index_select(0, canon)) * env.index_select(0, canon).unsqueeze(-1)
        return rbf_c, env, self.model.sh(edge_vec)

    @torch.jit.export
    def interaction_paired(self, k: int, x: Tensor, rbf_c: Tensor, env: Tensor, sh: Tensor,
                           edge_index: Tensor, canon: Tensor, expand: Tensor,
                           npaired: int) -> Tensor:
        """``interaction`` with the message and per-edge MLPs once per canonical edge (the
        first ``npaired`` add their message to both ends), as ``Interaction.forward_paired``."""
        a, v, d = self._split(x)
        ic, jc = edge_index[0].index_select(0, canon), edge_index[1].index_select(0, canon)
        for idx, layer in enumerate(self.model.interactions):
            if idx == k:
                m, a = self._pair_messages(layer.phi_a(a), layer.w_rbf(rbf_c), ic, jc, npaired,
                                           a)
                out = layer.edge_mlps(m).index_select(1, expand)  # [k, E, F]
                a, v, d = layer.vector_update(a, v, d, out, env, sh, edge_index)
        return self._join(a, v, d)

    @torch.jit.export
    def interaction_owned(self, k: int, x: Tensor, rbf_c: Tensor, env: Tensor, sh: Tensor,
                          edge_index: Tensor, canon: Tensor, expand: Tensor, npaired: int,
                          nout: int) -> Tensor:
        """Rows ``0..nout-1`` of ``interaction_paired`` (the owned atoms: the exchange replaces
        the ghost rows). Without displacements, on a graph whose edges all start at those rows
        (one hop), the sums and the node update (``phi_e``, the vector mixing) run on them
        only; with displacements the layer needs the ghosts' updates (two hops): all rows."""
        if self.displacement or nout >= x.shape[0]:
            return self.interaction_paired(k, x, rbf_c, env, sh, edge_index, canon, expand,
                                           npaired).narrow(0, 0, nout)
        i = edge_index[0]
        if i.shape[0] > 0 and int(i.max()) >= nout:
            raise RuntimeError("interaction_owned: an edge starts at a row >= nout (only "
                               "one-hop graphs); use interaction_paired")
        sums = self._sums(k, x, rbf_c, env, sh, edge_index, canon, expand, npaired, nout)
        return self._update(k, x.narrow(0, 0, nout), sums)

    def _pair_messages(self, ha: Tensor, w: Tensor, ic: Tensor, jc: Tensor, npaired: int,
                       base: Tensor) -> tuple[Tensor, Tensor]:
        """The scalar message m = phi_a(a_i) phi_a(a_j) W(r) of each canonical edge, and ``base``
        plus its sums (the first ``npaired`` edges add to both ends)."""
        m = ha.index_select(0, ic) * ha.index_select(0, jc) * w
        mm = m.to(base.dtype)
        sums = base.index_add(0, ic, mm).index_add(0, jc.narrow(0, 0, npaired),
                                                   mm.narrow(0, 0, npaired))
        return m, sums

    def _vector_sums(self, v: Tensor, out: Tensor, env: Tensor, sh: Tensor, edge_index: Tensor,
                     nrows: int, first_layer: bool) -> Tensor:
        """sum_j of the vector messages phi_F u Y^1 (+ gate f_j after the first layer) into rows
        0..nrows-1 of the edges' starts, component-major [3 nrows, F] (``vector_update``)."""
        i, j = edge_index[0], edge_index[1]
        n, nf, ne = v.shape[0], v.shape[1], i.shape[0]
        env1 = env.unsqueeze(-1)
        ush = (sh * env1).t().contiguous().unsqueeze(2)  # u Y^1: [3, E, 1]
        msg = out[0].unsqueeze(0) * ush
        if not first_layer:
            ft = v.permute(2, 0, 1).reshape(3 * n, nf)
            j3 = torch.cat([j, j + n, j + 2 * n])
            gate = (out[1] * env1).unsqueeze(0)
            msg = msg + gate * ft.index_select(0, j3).view(3, ne, nf)
        i3 = torch.cat([i, i + nrows, i + 2 * nrows])
        return torch.zeros((3 * nrows, nf), dtype=v.dtype, device=v.device).index_add(
            0, i3, msg.view(3 * ne, nf))

    @torch.jit.export
    def messages(self, k: int, x: Tensor, rbf_c: Tensor, env: Tensor, sh: Tensor,
                 edge_index: Tensor, canon: Tensor, expand: Tensor, npaired: int) -> Tensor:
        """The message sums of layer ``k`` for every row, in ``x``'s layout [n, 4F] (scalar |
        vector), without the rows' own terms: ``update`` adds them. Any row may start edges,
        ghost rows included (a rank that computes a cross-rank pair once adds the reverse edge:
        its ghost row then holds that rank's share of the ghost's sum, which the pair style adds
        to the owner). No displacements (those need two hops)."""
        return self._sums(k, x, rbf_c, env, sh, edge_index, canon, expand, npaired, x.shape[0])

    def _sums(self, k: int, x: Tensor, rbf_c: Tensor, env: Tensor, sh: Tensor,
              edge_index: Tensor, canon: Tensor, expand: Tensor, npaired: int,
              nrows: int) -> Tensor:
        """Layer ``k``'s message sums into rows 0..nrows-1 (every edge starts there and every
        paired edge ends there) in ``x``'s layout [nrows, 4F]: ``messages``, and
        ``interaction_owned`` before its ``update``."""
        a, v, _ = self._split(x)
        nf = a.shape[1]
        ic, jc = edge_index[0].index_select(0, canon), edge_index[1].index_select(0, canon)
        for idx, layer in enumerate(self.model.interactions):
            if idx == k:
                m, a = self._pair_messages(layer.phi_a(a), layer.w_rbf(rbf_c), ic, jc, npaired,
                                           a.new_zeros((nrows, nf)))
                out = layer.edge_mlps(m).index_select(1, expand)  # [k, E, F]
                dv = self._vector_sums(v, out, env, sh, edge_index, nrows, layer.first_layer)
                v = dv.view(3, nrows, nf).permute(1, 2, 0)
        return self._join(a, v, v)

    @torch.jit.export
    def update(self, k: int, x: Tensor, sums: Tensor) -> Tensor:
        """Layer ``k``'s node update of the rows of ``x`` from their complete message sums
        (``messages``, summed over the ranks): ``messages`` + ``update`` = ``interaction``."""
        return self._update(k, x, sums)

    def _update(self, k: int, x: Tensor, sums: Tensor) -> Tensor:
        """``update`` (also the end of ``interaction_owned``)."""
        a, v, _ = self._split(x)
        da, dv, _ = self._split(sums)
        n, nf = a.shape[0], a.shape[1]
        for idx, layer in enumerate(self.model.interactions):
            if idx == k:
                a = a + da
                ft = (v + dv).permute(2, 0, 1).reshape(3 * n, nf)
                if not layer.displacement:  # a constant: compiled only for VectorLinear mixes
                    inv = (ft * torch.matmul(ft, layer.mix.matrix())).view(3, n, nf).sum(0)
                else:
                    raise RuntimeError("update: a model with displacements has no split layers")
                a = a + layer.phi_e(a) * inv
                v = ft.view(3, n, nf).permute(1, 2, 0)
        return self._join(a, v, v)

    @torch.jit.export
    def readout(self, x: Tensor, species: Tensor) -> Tensor:
        return self.model.atomic_energies(x[:, :self.features], species)


def layered_evaluate(module, pos: Tensor, species: Tensor, edge_index: Tensor,
                     edge_shift: Tensor, paired: bool = True,
                     split: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Energy, forces and virial from the pieces with autograd piece by piece (one domain:
    no ghosts, so no exchange), exactly the order of calls of the pair style; ``paired``: the
    paired pieces when the module has them, else ``edge_features`` / ``interaction``;
    ``split``: layers as ``messages`` + ``update`` (the pair style's ``cross_pairs yes``) when
    the module has them (no displacements), else ``interaction_paired``."""
    paired = paired and hasattr(module, "edge_pairs")
    split = split and paired and hasattr(module, "messages") and not module.displacement
    with torch.jit.optimized_execution(False):
        return _layered_evaluate(module, pos, species, edge_index, edge_shift, paired, split)


def _layered_evaluate(module, pos: Tensor, species: Tensor, edge_index: Tensor,
                      edge_shift: Tensor, paired: bool,
                      split: bool) -> tuple[Tensor, Tensor, Tensor]:
    edge_vec = (pos[edge_index[1]] - pos[edge_index[0]] + edge_shift).detach().requires_grad_()
    if paired:
        canon, expand, npaired = module.edge_pairs(edge_index, edge_vec, pos.shape[0])
        rbf, env, sh = module.edge_features_paired(edge_vec, canon)
        extra = (canon, expand, npaired)
    else:
        rbf, env, sh = module.edge_features(edge_vec)
    leaves = [t.detach().requires_grad_() for t in (rbf, env, sh)]
    inputs, outputs = [], []
    x = module.embed(species)
    layers = int(module.model.num_interactions)
    for k in range(layers):
        x_in = x.detach().requires_grad_(k > 0)
        if split:
            x = module.update(k, x_in, module.messages(k, x_in, *leaves, edge_index, *extra))
        elif paired:
            x = module.interaction_paired(k, x_in, *leaves, edge_index, *extra)
        else:
            x = module.interaction(k, x_in, *leaves, edge_index)
        inputs.append(x_in)
        outputs.append(x)
    atomic = module.readout(x, species)
    energy = atomic.sum()
    grad_out, acc = torch.ones_like(energy), [torch.zeros_like(t) for t in leaves]
    out = energy
    for k in reversed(range(layers)):
        wrt = ([inputs[k]] if k > 0 else []) + leaves
        grads = torch.autograd.grad([out], wrt, [grad_out], allow_unused=True)
        for n, g in enumerate(grads[-3:]):
            if g is not None:
                acc[n] = acc[n] + g
        if k > 0:
            grad_out, out = grads[0], outputs[k - 1]
    (g,) = torch.autograd.grad([rbf, env, sh], [edge_vec], acc)
    forces = forces_from_edge_grad(g, edge_index, pos.shape[0])
    return energy.detach(), forces, -edge_vec.detach().t() @ g
