"""The model's plain-tensor hot path equals NewtonNet's equations written with e3nn calls.

The reference below is the layer as first written (e3nn ``SphericalHarmonics``, e3nn
``o3.Linear`` channel mixing, ``[N, F, 3]`` vectors, one MLP call per phi); the production
layer fuses the phi matmuls, works on ``[3N, F]`` vectors, skips the zero ``f_j`` term of the
first layer and uses a plain unit vector and matmul. Energies, forces and the training
gradients (double backward) must agree to 1e-12 in float64, eager and TorchScript.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import aspirin_like, make_water_box

from ffpt.data.graph import atoms_to_batch
from ffpt.model import build_model
from ffpt.model.forces import forces_from_edge_grad
from ffpt.model.newtonnet import edge_pairing

#: checkpoint keys of a 1-layer model (old checkpoints must keep loading)
KEYS_NO_DISP = [
    "shift", "scale", "embedding.weight", "rbf.freq",
    *[f"interactions.0.phi_a.{k}.{w}" for k in (0, 2) for w in ("weight", "bias")],
    "interactions.0.w_rbf.weight",
    *[f"interactions.0.{p}.{k}.{w}" for p in ("phi_F", "phi_f", "phi_e") for k in (0, 2)
      for w in ("weight", "bias")],
    "interactions.0.mix.linear.weight", "interactions.0.mix.linear.bias",
    "interactions.0.mix.linear.output_mask",
    "readout.0.weight", "readout.0.bias", "readout.2.weight", "readout.2.bias",
]


def reference_energies(model, species, edge_index, edge_vec):
    """Per-atom energies from the e3nn-call formulation of the same weights."""
    r = torch.linalg.norm(edge_vec, dim=-1)
    env = model.envelope(r)
    rbf = model.rbf(r) * env.unsqueeze(-1)
    sh = model.sh(edge_vec)  # e3nn Y^1, normalize=True, "norm"
    a = model.embedding(species)
    f = torch.zeros((a.shape[0], model.features, 3), dtype=a.dtype)
    d = torch.zeros_like(f)
    i, j = edge_index
    u = env.unsqueeze(-1)
    for layer in model.interactions:
        ha = layer.phi_a(a)
        m = ha[i] * ha[j] * layer.w_rbf(rbf)
        a = a.index_add(0, i, m)
        force_ij = (layer.phi_F(m) * u).unsqueeze(-1) * sh.unsqueeze(1)
        f = f.index_add(0, i, force_ij + (layer.phi_f(m) * u).unsqueeze(-1) * f[j])
        if layer.displacement:
            d = d + layer.phi_r(a).unsqueeze(-1) * f
            d = d.index_add(0, i, (layer.phi_d(m) * u).unsqueeze(-1) * d[j])
            inv = (f * d).sum(-1)
        else:
            inv = (f * layer.mix(f)).sum(-1)  # e3nn o3.Linear on F x 1o
        a = a + layer.phi_e(a) * inv
    return model.readout(a).squeeze(-1) * model.scale[species] + model.shift[species]


def energy_grads(fn, model, species, edge_index, edge_vec):
    """Atomic energies, forces and the parameter gradient of an energy + force loss."""
    ev = edge_vec.clone().requires_grad_(True)
    atomic = fn(species, edge_index, ev)
    (g,) = torch.autograd.grad(atomic.sum(), ev, create_graph=True)
    forces = forces_from_edge_grad(g, edge_index, species.shape[0])
    params = [p for p in model.parameters() if p.requires_grad]
    pg = torch.autograd.grad((forces**2).sum() + atomic.sum(), params, allow_unused=True)
    return atomic, forces, pg


@pytest.mark.parametrize("system", ["small periodic box", "molecule"])
@pytest.mark.parametrize("displacement", [False, True])
def test_plain_path_equals_e3nn_path(displacement, system):
    """Small box: periodic images repeat atom pairs, every edge is computed; molecule: edges
    come in (i, j)/(j, i) pairs and the MLPs run once per pair (edge_pairing)."""
    torch.manual_seed(1)
    model = build_model({"features": 16, "num_interactions": 3, "dtype": "float64",
                         "displacement": displacement}, ["H", "C", "O"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))  # non-zero biases: every term exercised
    atoms = make_water_box(2, seed=4) if system == "small periodic box" else aspirin_like()
    b = atoms_to_batch(atoms, model.elements, model.cutoff)
    paired = edge_pairing(b.edge_index, len(b.pos)) is not None
    assert paired == (system == "molecule")
    ev = (b.pos[b.edge_index[1]] - b.pos[b.edge_index[0]] + b.edge_shift).double()
    ref = energy_grads(lambda *x: reference_energies(model, *x), model, b.species,
                       b.edge_index, ev)
    assert ref[1].abs().max() > 1e-3  # non-trivial forces
    from e3nn.util.jit import compile as jit_compile

    scripted = jit_compile(copy.deepcopy(model))
    for fn, m in ((model, model), (scripted, scripted)):
        got = energy_grads(fn, m, b.species, b.edge_index, ev)
        torch.testing.assert_close(got[0], ref[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(got[1], ref[1], atol=1e-12, rtol=0)
        for x, y in zip(got[2], ref[2], strict=True):
            # None: no dependence (first layer's phi_f gates zero vectors; the reference
            # gives an exact zero gradient there)
            x = torch.zeros_like(y) if x is None and y is not None else x
            y = torch.zeros_like(x) if y is None and x is not None else y
            if x is not None:
                torch.testing.assert_close(x, y, atol=1e-12, rtol=1e-12)


def test_checkpoint_keys_unchanged():
    model = build_model({"features": 8, "num_interactions": 1}, ["H", "O"])
    assert list(model.state_dict()) == KEYS_NO_DISP


def test_vector_linear_matrix_is_e3nn_linear():
    from ffpt.model.newtonnet import VectorLinear

    torch.manual_seed(0)
    vl = VectorLinear(6).double()
    v = torch.randn(5, 6, 3, dtype=torch.float64)
    plain = torch.einsum("nuc,uw->nwc", v, vl.matrix())
    torch.testing.assert_close(plain, vl(v), atol=1e-12, rtol=0)


def test_pairing_needs_every_reverse_edge_and_keeps_virial():
    """An edge without its reverse disables pairing; with pairs, forces and the virial
    (per-edge gradients are attributed differently) equal the unpaired computation."""
    from ffpt.model.forces import EnergyForces

    torch.manual_seed(2)
    model = build_model({"features": 16, "num_interactions": 2, "dtype": "float64"},
                        ["H", "O"])
    b = atoms_to_batch(make_water_box(4, seed=5), model.elements, model.cutoff)
    n = len(b.pos)
    assert edge_pairing(b.edge_index, n) is not None
    assert edge_pairing(b.edge_index[:, 1:], n) is None
    ef = EnergyForces(model)
    args = (b.pos, b.species, b.edge_index, b.edge_shift, n)
    paired = ef(*args)
    model.pair_edges = False
    full = ef(*args)
    for x, y in zip(paired, full, strict=True):
        torch.testing.assert_close(x, y, atol=1e-12, rtol=1e-12)
