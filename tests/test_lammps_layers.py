"""pair_style ffpt exchange layer: float32 models exchange float32 node features and
gradients (two per double of the LAMMPS buffer, rows padded for an odd count); artifacts
without the paired pieces (written before them) run the plain pieces, artifacts without
``interaction_owned`` the paired pieces on all rows, artifacts without ``messages``/``update``
compute cross-rank pairs on both ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_lammps_pair import _compare, _water_box

from ffpt.deploy import deploy_model, load_deployed
from ffpt.deploy.layered import LayeredEnergyForces
from ffpt.lammps import plugin_built, single_point
from ffpt.lammps.runner import LammpsError
from ffpt.model.newtonnet import NewtonNet

pytestmark = [
    pytest.mark.lammps,
    pytest.mark.skipif(not plugin_built(), reason="plugin not built: run `ffpt build-plugin`"),
]


@pytest.mark.parametrize(("features", "displacement"), [(8, False), (7, True)])
def test_float32_exchange(tmp_path, features, displacement):
    torch.manual_seed(11)
    model = NewtonNet(["H", "O"], features=features, num_radial=6, cutoff=3.5,
                      num_interactions=3, displacement=displacement)
    meta = deploy_model(model, tmp_path / "m.pt", dtype="float32")
    assert meta.node_features % 2 == (1 if displacement else 0)  # 49: padded float32 rows
    atoms = _water_box(4, seed=4)
    one = single_point(atoms, tmp_path / "m.pt", tmp_path / "1", nprocs=1,
                       pair_style="ffpt exchange shell")
    scale = np.abs(one["forces"]).max()
    assert scale > 1e-2
    for nprocs in (2, 4):
        got = single_point(atoms, tmp_path / "m.pt", tmp_path / str(nprocs), nprocs=nprocs,
                           pair_style="ffpt exchange layer")
        assert "per-layer exchange of ghost features" in got["stdout"]
        assert np.abs(got["forces"] - one["forces"]).max() < 1e-4 * max(scale, 1.0)
        assert abs(got["energy"] - one["energy"]) < 1e-5 * len(atoms)


class _OwnedPieces(LayeredEnergyForces):
    """The pieces of artifacts written before ``messages`` / ``update`` (no cross-rank pairs)."""

    def messages(self, k, x, rbf_c, env, sh, edge_index, canon, expand, npaired):
        raise NotImplementedError

    def update(self, k, x, sums):
        raise NotImplementedError


class _PairedPieces(_OwnedPieces):
    """The pieces of artifacts written before ``interaction_owned`` (layers return all rows)."""

    def interaction_owned(self, k, x, rbf_c, env, sh, edge_index, canon, expand, npaired, nout):
        raise NotImplementedError


class _PlainPieces(_PairedPieces):
    """The pieces of artifacts written before the paired ones (not exported here)."""

    def edge_pairs(self, edge_index, edge_vec, n):
        raise NotImplementedError

    def edge_features_paired(self, edge_vec, canon):
        raise NotImplementedError

    def interaction_paired(self, k, x, rbf_c, env, sh, edge_index, canon, expand, npaired):
        raise NotImplementedError


@pytest.mark.parametrize("pieces", [_PlainPieces, _PairedPieces, _OwnedPieces],
                         ids=["plain", "paired", "owned"])
def test_artifact_without_paired_pieces(tmp_path, monkeypatch, pieces):
    torch.manual_seed(12)
    model = NewtonNet(["H", "O"], features=8, num_radial=6, cutoff=3.5, num_interactions=3)
    monkeypatch.setattr("ffpt.deploy.layered.LayeredEnergyForces", pieces)
    deploy_model(model, tmp_path / "m.pt")
    monkeypatch.undo()
    module = load_deployed(tmp_path / "m.pt").module
    assert not hasattr(module, "messages") and hasattr(module, "interaction")
    assert hasattr(module, "interaction_owned") == (pieces is _OwnedPieces)
    assert hasattr(module, "edge_pairs") == (pieces is not _PlainPieces)
    atoms = _water_box(3, seed=5)
    _compare(atoms, tmp_path / "m.pt", tmp_path / "run", 2, "ffpt exchange layer")
    match = "messages/update" if pieces is _OwnedPieces else "cannot pair"
    with pytest.raises(LammpsError, match=match):
        single_point(atoms, tmp_path / "m.pt", tmp_path / "pairs", nprocs=2,
                     pair_style="ffpt exchange layer cross_pairs yes")
