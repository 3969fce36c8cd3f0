"""Fine-tuning into a new element: map_elements {Ge: Si} (ffpt train --map-elements Ge=Si)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from ffpt.cli import main
from ffpt.data import GraphSet
from ffpt.model.checkpoint import build_model, load_checkpoint
from ffpt.model.forces import batch_energy_forces
from ffpt.train.map_elements import map_model_elements, parse_mapping
from ffpt.train.strategies import prepare_energy_head
from tests.test_eam import cells, known

CFG = {"features": 16, "num_radial": 8, "num_interactions": 2, "cutoff": 4.0,
       "dtype": "float64"}


def si_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(CFG, ["Si"])
    with torch.no_grad():
        model.shift.fill_(-4.3)
        model.scale.fill_(0.7)
    return model


def predict(model, frames):
    """Per-atom energies and forces of every frame (float64)."""
    gs = GraphSet(frames, model.elements, model.cutoff)
    b = gs.batch(np.arange(len(gs))).to(dtype=torch.float64)
    out = batch_energy_forces(model, b.species, b.pos, b.edge_index, b.edge_shift, b.batch,
                              b.num_graphs)
    return out["atomic_energies"].detach().numpy(), out["forces"].detach().numpy()


def ge_frames(n: int = 4):
    """Ge-labelled frames and the same structures labelled Si."""
    si = cells(n, seed=6, elements=("Si",))
    ge = cells(n, seed=6, elements=("Si",))
    ge.numbers[:] = 32
    ge.energy, ge.forces = known(["Ge"]).evaluate(ge)  # "ab initio" Ge labels
    return si, ge


def test_mapped_model_predicts_ge_as_the_si_model_predicts_si() -> None:
    model = si_model()
    mapped = map_model_elements(model, {"Ge": "Si"}, CFG)
    assert mapped.elements == ["Si", "Ge"]
    si, ge = ge_frames()
    e_si, f_si = predict(model, si)
    e_ge, f_ge = predict(mapped, ge)
    assert np.abs(f_si).max() > 1e-3
    np.testing.assert_allclose(e_ge, e_si, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f_ge, f_si, rtol=0, atol=1e-12)
    # the Si part of the mapped model is the Si model
    np.testing.assert_allclose(predict(mapped, si)[0], e_si, atol=1e-12)


def test_ft_start_differs_from_the_si_model_by_the_refit_ge_shift() -> None:
    """At FT step 0: forces equal; atomic energies differ by one constant, the refit Ge shift
    minus the Si shift (the per-element shift rule of ffpt.train.map_elements)."""
    model = si_model(1)
    mapped = map_model_elements(model, {"Ge": "Si"}, CFG)
    si, ge = ge_frames(6)
    prepare_energy_head(mapped, GraphSet(ge, mapped.elements, mapped.cutoff), "finetune",
                        False, 8)
    e_si, f_si = predict(model, si)
    e_ge, f_ge = predict(mapped, ge)
    np.testing.assert_allclose(f_ge, f_si, atol=1e-12)
    delta = e_ge - e_si
    np.testing.assert_allclose(delta, delta[0], atol=1e-10)
    shift = dict(zip(mapped.elements, mapped.shift.tolist(), strict=True))
    assert abs(delta[0] - (shift["Ge"] - model.shift.item())) < 1e-10
    assert abs(shift["Si"] - model.shift.item()) < 1e-12  # absent from the FT data: kept
    # the refit shift matches the Ge energy zero: the mean energy error is ~0
    err = (np.add.reduceat(e_ge, np.r_[0, np.cumsum(ge.n_atoms)[:-1]]) - ge.energy)
    assert abs(err.mean()) < 1e-8


def test_unmappable_elements_give_one_clear_error() -> None:
    model = si_model()
    with pytest.raises(ValueError, match=r"cannot map Ge to C: .* has elements"):
        map_model_elements(model, {"Ge": "C"}, CFG)
    with pytest.raises(ValueError, match="already has Si"):
        map_model_elements(model, {"Si": "Si"}, CFG)
    with pytest.raises(ValueError, match="NEW=OLD"):
        parse_mapping("GeSi")
    with pytest.raises(ValueError, match="not an element"):
        parse_mapping({"Qq": "Si"})
    assert parse_mapping("Ge=Si, Sn=Si") == {"Ge": "Si", "Sn": "Si"}


def test_train_cli_map_elements(tmp_path) -> None:
    from ffpt.model.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "si.pt", si_model(), CFG)
    _, ge = ge_frames(8)
    ge.save(tmp_path / "ge.npz")
    cfg = {"mode": "finetune", "init_from": str(tmp_path / "si.pt"),
           "data": {"train": str(tmp_path / "ge.npz"), "val_fraction": 0.25},
           "training": {"max_epochs": 1, "batch_size": 4, "plot_every": 0}}
    (tmp_path / "ft.yaml").write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    bad = runner.invoke(main, ["train", str(tmp_path / "ft.yaml"), "-o", str(tmp_path / "r0"),
                               "--no-progress"])
    assert bad.exit_code == 1 and "--map-elements Ge=Si" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    bad = runner.invoke(main, ["train", str(tmp_path / "ft.yaml"), "-o", str(tmp_path / "r1"),
                               "--no-progress", "--map-elements", "Ge=O"])
    assert bad.exit_code == 1 and "cannot map Ge to O" in bad.output
    ok = runner.invoke(main, ["train", str(tmp_path / "ft.yaml"), "-o", str(tmp_path / "r2"),
                              "--no-progress", "--map-elements", "Ge=Si"])
    assert ok.exit_code == 0, ok.output
    ck = load_checkpoint(tmp_path / "r2" / "best.pt")
    assert ck["elements"] == ["Si", "Ge"] and ck["config"]["map_elements"] == {"Ge": "Si"}
