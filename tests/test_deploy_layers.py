"""Per-layer pieces of deployed NewtonNets (``ffpt.deploy.layered``), without LAMMPS: run piece
by piece with autograd per piece, they give the energy, forces and virial of the one-call
artifact; the metadata says which exchange modes an artifact supports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy_model import ToyModel

from ffpt.data.graph import neighbor_graph
from ffpt.deploy import ArtifactMetadata, deploy_model, load_deployed
from ffpt.deploy.layered import layered_evaluate
from ffpt.model.newtonnet import NewtonNet


@pytest.mark.parametrize("displacement", [False, True])
def test_pieces_equal_one_call(tmp_path, displacement):
    from ffpt.sampling.water import water_box

    torch.manual_seed(3)
    model = NewtonNet(["H", "O"], features=8, num_radial=5, cutoff=3.5, num_interactions=3,
                      displacement=displacement)
    meta = deploy_model(model, tmp_path / "m.pt")
    assert meta.to_dict()["exchange"] == "shell layer"
    assert (meta.node_features, meta.layer_hops) == ((56, 2) if displacement else (32, 1))
    deployed = load_deployed(tmp_path / "m.pt")
    atoms = water_box(8, seed=1, jitter=0.15)
    atoms.set_cell(atoms.cell.array @ np.array([[1, 0, 0], [0.2, 1, 0], [-0.1, 0.15, 1]]),
                   scale_atoms=True)
    ref = deployed.evaluate(atoms)
    ei, sh = neighbor_graph(atoms.positions, atoms.cell.array, atoms.pbc, 3.5)
    species = torch.as_tensor(deployed.species(atoms.get_chemical_symbols()))
    for split in (False, True):  # interaction_paired; messages + update (no displacements)
        e, f, w = layered_evaluate(deployed.module, torch.as_tensor(atoms.positions), species,
                                   torch.as_tensor(ei), torch.as_tensor(sh), split=split)
        assert abs(float(e) - ref["energy"]) < 1e-10 * len(atoms)
        assert np.abs(f.numpy() - ref["forces"]).max() < 1e-10
        assert np.abs(w.numpy() - ref["virial"]).max() < 1e-10
    assert np.abs(ref["forces"]).max() > 1e-3


def test_metadata_without_pieces(tmp_path):
    """Non-NewtonNet models and artifacts written before the pieces existed: shell only."""
    meta = deploy_model(ToyModel(["H", "O"], cutoff=3.0), tmp_path / "toy.pt")
    assert meta.to_dict()["exchange"] == "shell" and meta.node_features == 0
    old = "\n".join(line for line in meta.to_text().splitlines()
                    if not line.startswith(("exchange=", "node_features=", "layer_hops=")))
    parsed = ArtifactMetadata.from_text(old)
    assert (parsed.node_features, parsed.layer_hops) == (0, 1)
