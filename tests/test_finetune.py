"""Fine-tuning that keeps the PT function: exact start, strategies, budgets, run folders."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import morse_frames, small_model

from ffpt.data import GraphSet
from ffpt.model import load_checkpoint, load_model
from ffpt.model.forces import batch_energy_forces
from ffpt.train import resolve, train
from ffpt.train.stats import force_rms
from ffpt.train.strategies import BodyWithHead, ReplayHead, prepare_energy_head

SMALL = {"features": 16, "num_radial": 8, "num_interactions": 2, "cutoff": 4.0,
         "dtype": "float64"}
OFFSET = {"H": -13.6, "O": -432.0}  # an "ab initio" energy zero


def _cfg(data, **over):
    cfg = {"data": {"train": data, "val_fraction": 0.2}, "model": dict(SMALL),
           "training": {"max_epochs": 3, "batch_size": 8, "plot_every": 0}}
    for k, v in over.items():
        if isinstance(v, dict):
            cfg.setdefault(k, {}).update(v)
        else:
            cfg[k] = v
    return cfg


@pytest.fixture(scope="module")
def pt_run(tmp_path_factory):
    """A small pre-trained model whose config points at its (existing) data file."""
    d = tmp_path_factory.mktemp("pt")
    morse_frames(30, seed=2).save(d / "pt.npz")
    res = train(_cfg(str(d / "pt.npz"), mode="pretrain", training={"max_epochs": 2}),
                d / "run", progress=False)
    return res.best_checkpoint, d / "pt.npz"


def _ft(pt_ckpt, **training):
    return _cfg(morse_frames(24, seed=3, energy_offset=OFFSET), mode="finetune",
                init_from=str(pt_ckpt), training=training)


def _state(path):
    return load_checkpoint(path)["model_state"]


def _atomic_and_forces(model, gs):
    b = gs.batch(np.arange(len(gs))).to(dtype=torch.float64)
    out = batch_energy_forces(model, b.species, b.pos, b.edge_index, b.edge_shift, b.batch,
                              b.num_graphs)
    return out["atomic_energies"], out["forces"], b.species


# --------------------------------------------------------------- function-preserving start
@pytest.mark.parametrize("refit_scale", [False, True])
def test_ft_start_is_the_pt_function_up_to_shifts(refit_scale):
    """Before the first FT step: forces equal the PT model's (1e-6 relative, float64), atomic
    energies differ only by the refit per-element shift, and an element absent from the FT data
    (C) keeps its PT shift; with refit_scale the scale becomes the FT force RMS."""
    pt = small_model(("H", "C", "O"), seed=1)
    ft_frames = morse_frames(12, seed=3, energy_offset=OFFSET)
    gs = GraphSet(ft_frames, pt.elements, pt.cutoff)
    ft = copy.deepcopy(pt)
    prepare_energy_head(ft, gs, "finetune", refit_scale, 5)
    e_pt, f_pt, species = _atomic_and_forces(pt, gs)
    e_ft, f_ft, _ = _atomic_and_forces(ft, gs)
    assert float((f_ft - f_pt).abs().max() / f_pt.abs().max()) < 1e-6
    d_shift = ft.shift - pt.shift
    torch.testing.assert_close(e_ft - e_pt, d_shift[species], rtol=0, atol=1e-9)
    assert ft.shift[1] == pt.shift[1]  # carbon: absent from the FT data, PT shift kept
    # the refit removes the ~ -460 eV/molecule offset: the mean energy error is zero
    e_frame = torch.zeros(len(gs), dtype=torch.float64).index_add(
        0, torch.as_tensor(np.repeat(np.arange(len(gs)), ft_frames.n_atoms)), e_ft)
    assert abs(float((e_frame.numpy() - ft_frames.energy).mean())) < 1e-8
    if refit_scale:
        assert ft.scale[0].item() == pytest.approx(force_rms(ft_frames), rel=1e-12)
        assert not torch.equal(ft.readout[-1].weight, pt.readout[-1].weight)
    else:
        assert torch.equal(ft.scale, pt.scale)


# --------------------------------------------------------------------------- strategies
def test_l2sp_stays_closer_to_pt_and_is_recorded(pt_run, tmp_path):
    pt_ckpt, _ = pt_run
    theta_pt = _state(pt_ckpt)
    dist = {}
    for strat, extra in (("plain", {}), ("l2sp", {"l2sp_alpha": 100.0})):
        res = train(_ft(pt_ckpt, ft_strategy=strat, lr=3e-3, max_epochs=6, **extra),
                    tmp_path / strat, progress=False)
        s = _state(res.last_checkpoint)
        dist[strat] = sum(float(((s[k] - theta_pt[k]) ** 2).sum()) for k in theta_pt
                          if k not in ("shift", "scale"))
        rec = json.loads((tmp_path / strat / "metrics.json").read_text())["finetune"]
        assert rec["strategy"] == strat
    assert rec["l2sp_alpha"] == 100.0  # (measured: distance 1.3 with l2sp vs 4.0 plain)
    assert dist["l2sp"] < 0.5 * dist["plain"], dist


def test_replay_head_never_touches_main_readout(pt_run, tmp_path):
    """PT frames train the body and the PT head; the main readout gets no gradient from them.
    replay.data defaults to the PT run's data file; best.pt holds only the main model."""
    pt_ckpt, pt_data = pt_run
    model = load_model(pt_ckpt, dtype="float64")
    head = ReplayHead(model)
    gs = GraphSet(morse_frames(4, seed=7), model.elements, model.cutoff)
    b = gs.batch(np.arange(4)).to(dtype=torch.float64)
    out = batch_energy_forces(BodyWithHead(model, head), b.species, b.pos, b.edge_index,
                              b.edge_shift, b.batch, b.num_graphs, training=True)
    (((out["energy"] - b.energy) ** 2).sum() + ((out["forces"] - b.forces) ** 2).sum()).backward()
    assert all(p.grad is None for p in model.readout.parameters())
    assert model.embedding.weight.grad.abs().sum() > 0
    assert all(p.grad.abs().sum() > 0 for p in head.parameters())

    res = train(_ft(pt_ckpt, ft_strategy="replay", replay={"ratio": 0.5}), tmp_path / "r",
                progress=False)
    ck = load_checkpoint(res.last_checkpoint)
    assert set(ck["model_state"]) == set(_state(pt_ckpt))  # deploy sees the usual model
    assert not torch.equal(ck["replay_head_state"]["readout.0.weight"],
                           _state(pt_ckpt)["readout.0.weight"])
    assert all(h["train_replay_loss"] > 0 for h in ck["history"])
    rec = res.metrics["finetune"]["replay"]
    assert rec["data"] == str(pt_data) and rec["ratio"] == 0.5 and rec["n_frames"] == 30
    load_model(res.best_checkpoint)


def test_replay_without_pt_data_is_a_clear_error(tmp_path):
    pt = train(_cfg(morse_frames(10, seed=1), mode="pretrain", training={"max_epochs": 1}),
               tmp_path / "pt", progress=False)  # trained from memory: no data file to replay
    with pytest.raises(ValueError, match=r"set training\.replay\.data"):
        train(_ft(pt.best_checkpoint, ft_strategy="replay"), tmp_path / "ft", progress=False)


def test_freeze_and_lr_multipliers(pt_run, tmp_path):
    pt_ckpt, _ = pt_run
    res = train(_ft(pt_ckpt, ft_freeze=["embedding", "interactions.0"],
                    ft_lr_mult={"readout": 0.1}, lr=1e-3), tmp_path, progress=False)
    a, b = _state(pt_ckpt), load_checkpoint(res.last_checkpoint)
    for k, _ in load_model(pt_ckpt).named_parameters():
        frozen = k.startswith(("embedding.", "interactions.0."))
        assert torch.equal(a[k], b["model_state"][k]) == frozen, k
    lrs = [g["lr"] for g in b["optimizer_state"]["param_groups"]]
    assert lrs == pytest.approx([1e-3, 1e-4])
    assert res.metrics["finetune"]["frozen_parameters"] > 0
    with pytest.raises(ValueError, match="'interaction' matches no parameter"):
        train(_ft(pt_ckpt, ft_freeze=["interaction"]), tmp_path / "bad", progress=False)


@pytest.mark.parametrize("strategy", ["l2sp", "replay"])
def test_resume_is_exact_for_l2sp_and_replay(pt_run, tmp_path, strategy):
    pt_ckpt, _ = pt_run
    extra = {"ft_lr_mult": {"readout": 0.5}} if strategy == "replay" else {}
    full = train(_ft(pt_ckpt, ft_strategy=strategy, **extra), tmp_path / "full",
                 progress=False)
    train(_ft(pt_ckpt, ft_strategy=strategy, max_epochs=1, **extra), tmp_path / "split",
          progress=False)
    resumed = train(_ft(pt_ckpt, ft_strategy=strategy, **extra), tmp_path / "split",
                    resume=True, progress=False)
    a, b = load_checkpoint(full.last_checkpoint), load_checkpoint(resumed.last_checkpoint)
    for key in ("model_state", "replay_head_state", "l2sp_reference"):
        for k in a.get(key, {}):
            assert torch.equal(a[key][k], b[key][k]), (key, k)
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


# ------------------------------------------------------------------------------ budgets
def test_budgets_in_work_give_identical_models(tmp_path):
    """Same config twice -> bit-identical weights; a max_time guard that does not trigger
    changes nothing; max_steps = 2 epochs of steps equals max_epochs = 2; a guard that triggers
    is reported as such."""
    data = morse_frames(20, seed=5)  # 16 training frames, batch 8: 2 steps per epoch
    one = train(_cfg(data, training={"num_threads": 1}), tmp_path / "a", progress=False)
    two = train(_cfg(data, training={"num_threads": 1}), tmp_path / "b", progress=False)
    guard = train(_cfg(data, training={"max_time_min": 1000}), tmp_path / "c", progress=False)
    for r in (two, guard):
        for k, v in _state(one.last_checkpoint).items():
            assert torch.equal(v, _state(r.last_checkpoint)[k]), k
    assert guard.metrics["stop_reason"] == "max_epochs"
    steps = train(_cfg(data, training={"max_epochs": 100, "max_steps": 4}), tmp_path / "s",
                  progress=False)
    epochs = train(_cfg(data, training={"max_epochs": 2}), tmp_path / "e", progress=False)
    assert steps.metrics["stop_reason"] == "max_steps" and steps.metrics["steps"] == 4
    assert steps.epochs == 2
    for k, v in _state(epochs.last_checkpoint).items():
        assert torch.equal(v, _state(steps.last_checkpoint)[k]), k
    mid = train(_cfg(data, training={"max_steps": 3}), tmp_path / "m", progress=False)
    assert mid.metrics["steps"] == 3 and mid.epochs == 2  # stops inside epoch 2
    hit = train(_cfg(data, training={"max_time_min": 1e-9}), tmp_path / "t", progress=False)
    assert hit.metrics["stop_reason"] == "max_time (guard)" and hit.epochs == 1


# -------------------------------------------------------------------- config and run folders
@pytest.mark.parametrize("key,value,match", [
    ("batch_size", 0, r"training\.batch_size must be a positive integer"),
    ("max_epochs", -1, r"training\.max_epochs must be a positive integer"),
    ("lr", 0.0, r"training\.lr must be a positive number"),
    ("max_steps", 0, r"training\.max_steps must be a positive integer"),
    ("ft_strategy", "l2-sp", r"training\.ft_strategy 'l2-sp' is unknown; use one of"),
])
def test_bad_training_settings_are_one_line_errors(key, value, match):
    cfg = {"data": {"train": "x"}, "mode": "finetune", "init_from": "pt.pt",
           "training": {key: value}}
    with pytest.raises(ValueError, match=match) as exc:
        resolve(cfg)
    assert "\n" not in str(exc.value)


def test_ft_settings_outside_finetune_are_errors():
    with pytest.raises(ValueError, match=r"training\.ft_strategy applies to mode finetune only"):
        resolve({"data": {"train": "x"}, "training": {"ft_strategy": "l2sp"}})


def test_run_folder_is_never_silently_overwritten(tmp_path):
    data = morse_frames(12, seed=4)
    data.save(tmp_path / "d.npz")
    run = tmp_path / "run"
    train(_cfg(data, training={"max_epochs": 2}), run, progress=False)
    first = (run / "log.csv").read_text()
    with pytest.raises(FileExistsError, match=r"already holds a training run.*--resume"):
        train(_cfg(data, training={"max_epochs": 1}), run, progress=False)
    assert (run / "log.csv").read_text() == first
    # the CLI refuses with one line, and --overwrite starts over
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_cfg("d.npz", training={"max_epochs": 1})))
    r = CliRunner()
    from ffpt.cli import main

    args = ["train", str(tmp_path / "c.yaml"), "-o", str(run), "--no-progress"]
    out = r.invoke(main, args)
    assert out.exit_code != 0 and "already holds a training run" in out.output
    assert out.output.strip().count("\n") == 0, out.output
    out = r.invoke(main, [*args, "--overwrite"])
    assert out.exit_code == 0, out.output
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert (run / "log.csv").read_text().count("\n") == 2


def test_resume_refuses_changed_settings(tmp_path):
    data = morse_frames(12, seed=4)
    train(_cfg(data, training={"max_epochs": 1}), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"training\.lr \(0\.001 -> 0\.01\).*start a new run"):
        train(_cfg(data, training={"lr": 1e-2, "max_epochs": 2}), tmp_path, resume=True,
              progress=False)
    res = train(_cfg(data, training={"max_epochs": 2, "eval_batch_size": 7}), tmp_path,
                resume=True, progress=False)  # budgets and bookkeeping may change
    ck = load_checkpoint(res.last_checkpoint)
    assert ck["epoch"] == 2 and ck["config"]["training"]["eval_batch_size"] == 7
