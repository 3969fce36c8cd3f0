"""Paired per-layer pieces (``ffpt.deploy.layered.edge_groups``): one message and one set of
edge MLPs per edge pair, on graphs where only some edges have their reverse (LAMMPS ranks:
edges to ghosts; small periodic cells: repeated pairs or the reverse through another
image) give the forces of the unpaired pieces."""

from __future__ import annotations

import numpy as np
import torch

from ffpt.data.graph import neighbor_graph
from ffpt.deploy import deploy_model, load_deployed
from ffpt.deploy.layered import edge_groups, layered_evaluate
from ffpt.model.newtonnet import NewtonNet


def _small_cell():
    from ffpt.sampling.water import water_box

    atoms = water_box(8, seed=2, jitter=0.15)  # 6.2 A cell: cutoff 3.5 repeats some pairs
    ei, sh = neighbor_graph(atoms.positions, atoms.cell.array, atoms.pbc, 3.5)
    return atoms, torch.as_tensor(ei), torch.as_tensor(sh)


def test_edge_groups_pairs_only_true_reverses():
    atoms, ei, sh = _small_cell()
    keep = torch.as_tensor(np.random.default_rng(0).random(ei.shape[1]) > 0.3)
    ei, sh = ei[:, keep], sh[keep]
    pos = torch.as_tensor(atoms.positions)
    vec = pos[ei[1]] - pos[ei[0]] + sh
    canon, expand, npaired = edge_groups(ei, vec, len(atoms))
    i, j = ei
    ci, cj = i[canon], j[canon]
    same = (ci[expand] == i) & (cj[expand] == j)
    swapped = (ci[expand] == j) & (cj[expand] == i)
    assert bool((same | swapped).all())
    assert float((vec[canon][expand] - torch.where(same[:, None], vec, -vec)).abs().max()) < 1e-9
    assert torch.equal(torch.bincount(expand, minlength=len(canon))[:npaired],
                       torch.full((npaired,), 2))
    assert bool((torch.bincount(expand, minlength=len(canon))[npaired:] == 1).all())
    assert 0 < 2 * npaired < ei.shape[1]  # some pairs, some single edges


def test_paired_pieces_equal_unpaired_on_partial_graph(tmp_path):
    torch.manual_seed(5)
    model = NewtonNet(["H", "O"], features=8, num_radial=5, cutoff=3.5, num_interactions=3)
    deploy_model(model, tmp_path / "m.pt")
    module = load_deployed(tmp_path / "m.pt").module
    atoms, ei, sh = _small_cell()
    keep = torch.as_tensor(np.random.default_rng(1).random(ei.shape[1]) > 0.3)
    species = torch.as_tensor([0 if s == "H" else 1 for s in atoms.get_chemical_symbols()])
    pos = torch.as_tensor(atoms.positions)
    e1, f1, w1 = layered_evaluate(module, pos, species, ei[:, keep], sh[keep])
    e0, f0, w0 = layered_evaluate(module, pos, species, ei[:, keep], sh[keep], paired=False)
    _, ff, _ = layered_evaluate(module, pos, species, ei, sh)
    assert abs(float(e1 - e0)) < 1e-10 and float((f1 - f0).abs().max()) < 1e-10
    assert float((w1 - w0).abs().max()) < 1e-10
    assert float((ff - f1).abs().max()) > 1e-3  # the dropped edges matter
    # the split layers (messages + update, as with cross_pairs yes) against interaction_paired
    assert hasattr(module, "messages") and hasattr(module, "update")
    e2, f2, w2 = layered_evaluate(module, pos, species, ei[:, keep], sh[keep], split=True)
    assert abs(float(e1 - e2)) < 1e-10 and float((f1 - f2).abs().max()) < 1e-10
    assert float((w1 - w2).abs().max()) < 1e-10


def _rank_graph(atoms, ei, sh, owned):
    """The graph of one LAMMPS rank: edges from the ``owned`` atoms (their nodes first), ghost
    nodes for the other ends (one per atom; the periodic shift stays in the edge)."""
    keep = owned[ei[0]]
    ei, sh = ei[:, keep], sh[keep]
    own_idx = torch.nonzero(owned).squeeze(1)
    ghosts = torch.unique(ei[1][~owned[ei[1]]])
    node = torch.full((len(atoms),), -1)
    node[own_idx] = torch.arange(len(own_idx))
    node[ghosts] = len(own_idx) + torch.arange(len(ghosts))
    return torch.cat([own_idx, ghosts]), node[ei], sh, len(own_idx)


def test_owned_rows_equal_paired_rows(tmp_path):
    """``interaction_owned`` (the sums and node update of the owned rows only) gives the owned
    rows of ``interaction_paired`` and the same gradients on a rank's graph with ghosts."""
    from ffpt.sampling.water import water_box

    torch.manual_seed(6)
    model = NewtonNet(["H", "O"], features=8, num_radial=5, cutoff=3.5, num_interactions=3)
    deploy_model(model, tmp_path / "m.pt")
    module = load_deployed(tmp_path / "m.pt").module
    atoms = water_box(27, seed=3, jitter=0.15)
    ei, sh = neighbor_graph(atoms.positions, atoms.cell.array, atoms.pbc, 3.5)
    owned = torch.as_tensor(atoms.get_scaled_positions()[:, 0] < 0.5)
    nodes, ei, sh, nout = _rank_graph(atoms, torch.as_tensor(ei), torch.as_tensor(sh), owned)
    assert nout < len(nodes)
    pos = torch.as_tensor(atoms.positions)[nodes]
    vec = (pos[ei[1]] - pos[ei[0]] + sh).requires_grad_()
    canon, expand, npaired = module.edge_pairs(ei, vec, len(nodes))
    assert 0 < 2 * npaired < ei.shape[1]  # pairs among owned atoms, single edges to ghosts
    per_edge = module.edge_features_paired(vec, canon)
    x = torch.randn(len(nodes), module.channels, dtype=torch.float64, requires_grad=True)
    w = torch.randn(nout, module.channels, dtype=torch.float64)
    for k in range(3):
        full = module.interaction_paired(k, x, *per_edge, ei, canon, expand, npaired)
        rows = module.interaction_owned(k, x, *per_edge, ei, canon, expand, npaired, nout)
        assert rows.shape == (nout, module.channels)
        assert float((rows - full[:nout]).abs().max()) < 1e-12
        g_full = torch.autograd.grad([(full[:nout] * w).sum()], [x, vec], retain_graph=True)
        g_rows = torch.autograd.grad([(rows * w).sum()], [x, vec], retain_graph=True)
        for a, b in zip(g_full, g_rows, strict=True):
            assert float((a - b).abs().max()) < 1e-12 and float(a.abs().max()) > 1e-6

