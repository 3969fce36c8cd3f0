"""Training: learning actually happens, exact resume, fine-tuning, safe checkpoints, DDP."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, morse_frames

from ffpt.data import GraphSet
from ffpt.model import load_checkpoint, load_model
from ffpt.train import evaluate, train

SMALL = {"features": 16, "num_radial": 8, "num_interactions": 2, "cutoff": 4.0,
         "dtype": "float64"}


def _cfg(train_data, **over):
    cfg = {"data": {"train": train_data, "val_fraction": 0.2}, "model": dict(SMALL),
           "training": {"max_epochs": 4, "batch_size": 8, "plot_every": 0}}
    for k, v in over.items():
        cfg.setdefault(k, {})
        if isinstance(v, dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def test_learning_cuts_force_error(shared_data, tmp_path):
    """A short scratch run on 160 aspirin CCSD frames at least halves the force MAE."""
    path = shared_data / "aspirin_ccsd" / "aspirin_ccsd-train.xyz"
    cfg = _cfg(str(path), data={"max_frames": 200, "val_fraction": 0.2},
               model={"features": 32, "num_interactions": 2, "cutoff": 5.0, "dtype": "float32"},
               training={"max_epochs": 12, "batch_size": 8, "lr": 3e-3})
    res = train(cfg, tmp_path, progress=False)
    hist = load_checkpoint(res.last_checkpoint)["history"]
    first, best = hist[0]["val_forces_mae"], res.metrics["val"]["forces_mae"]
    print(f"aspirin val force MAE: epoch 1 {first:.3f} -> best {best:.3f} eV/A")
    (tmp_path / "aspirin_mae.txt").write_text(f"{first} {best}\n")
    assert best < 0.5 * first
    assert best < 0.45  # eV/A, far below the ~1.0 eV/A spread of the reference forces


def test_learning_on_generated_data(tmp_path):
    """The same on Morse-labelled water dimers (runs without the reference data)."""
    cfg = _cfg(morse_frames(60, seed=0), training={"max_epochs": 15, "lr": 3e-3})
    res = train(cfg, tmp_path, progress=False)
    hist = load_checkpoint(res.last_checkpoint)["history"]
    assert res.metrics["val"]["forces_mae"] < 0.5 * hist[0]["val_forces_mae"]
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    assert (tmp_path / "log.csv").read_text().count("\n") == len(hist) + 1


def test_resume_continues_exactly(tmp_path):
    data = morse_frames(24, seed=1)
    full = train(_cfg(data), tmp_path / "full", progress=False)
    part = _cfg(data, training={"max_epochs": 2})
    train(part, tmp_path / "split", progress=False)
    resumed = train(_cfg(data), tmp_path / "split", resume=True, progress=False)
    assert resumed.epochs == full.epochs == 4
    a, b = load_checkpoint(full.last_checkpoint), load_checkpoint(resumed.last_checkpoint)
    for k in a["model_state"]:
        assert torch.equal(a["model_state"][k], b["model_state"][k]), k
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


def test_finetune_refits_energy_zero_and_checks_elements(tmp_path):
    pt = train(_cfg(morse_frames(40, seed=2), mode="pretrain"), tmp_path / "pt", progress=False)
    offset = {"H": -13.6, "O": -432.0}  # an "ab initio" energy zero
    ft_data = morse_frames(30, seed=3, energy_offset=offset)
    ft = train(_cfg(ft_data, mode="finetune", init_from=str(pt.best_checkpoint),
                    training={"max_epochs": 1}), tmp_path / "ft", progress=False)
    m_pt, m_ft = load_model(pt.best_checkpoint), load_model(ft.best_checkpoint)
    # shifts are a least-squares fit; for fixed stoichiometry only 2*H + O is determined,
    # and it moves by the offset up to the PT model's own mean energy error
    d = m_ft.shift - m_pt.shift
    pt_err = 6 * pt.metrics["val"]["energy_per_atom_mae"]
    assert float(2 * d[0] + d[1]) == pytest.approx(2 * offset["H"] + offset["O"],
                                                    abs=pt_err + 0.05)
    # the refit removes the offset: the FT model's energy error on the shifted data is no worse
    # than the PT model's on the same structures without offset (the offset is ~150 eV/atom)
    same = GraphSet(morse_frames(30, seed=3), m_pt.elements, m_pt.cutoff)
    shifted = GraphSet(ft_data, m_pt.elements, m_pt.cutoff)
    pt_mae = evaluate(m_pt, same)["energy_per_atom_mae"]
    assert evaluate(m_ft, shifted)["energy_per_atom_mae"] < 1.2 * pt_mae + 0.01
    assert ft.metrics["mode"] == "finetune"
    assert torch.equal(m_ft.scale, m_pt.scale)  # PT energy scale kept by default...
    ft2 = train(_cfg(ft_data, mode="finetune", init_from=str(pt.best_checkpoint),
                     training={"max_epochs": 1, "refit_scale": True}), tmp_path / "ft2",
                progress=False)
    from ffpt.train import resolve
    from ffpt.train.stats import force_rms
    from ffpt.train.trainer import load_splits

    ft_train = load_splits(resolve(_cfg(ft_data)))[0]  # the same seeded split as training
    assert load_model(ft2.best_checkpoint).scale[0].item() == pytest.approx(force_rms(ft_train))
    # fine-tuning data with an element the PT model lacks is refused
    from ffpt.data import FrameSet

    carbon = FrameSet(numbers=[6, 1], positions=[[0, 0, 0], [1.1, 0, 0]], n_atoms=[2],
                      energy=[0.0], forces=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"contains \['C'\].*does not cover"):
        train(_cfg(carbon, mode="finetune", init_from=str(pt.best_checkpoint),
                   data={"val_fraction": 0.0}), tmp_path / "bad", progress=False)


def test_checkpoint_round_trip_and_safe_loading(tmp_path):
    res = train(_cfg(morse_frames(12, seed=4), training={"max_epochs": 1}), tmp_path,
                progress=False)
    model = load_model(res.best_checkpoint)
    gs = GraphSet(morse_frames(4, seed=9), model.elements, model.cutoff)
    m1 = evaluate(model, gs)
    m2 = evaluate(load_model(res.best_checkpoint), gs)
    assert m1 == m2
    # a checkpoint that would execute code when unpickled is refused, nothing runs
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "ffpt-checkpoint", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a readable ffpt checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    (tmp_path / "trunc.pt").write_bytes(res.best_checkpoint.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable ffpt checkpoint"):
        load_checkpoint(tmp_path / "trunc.pt")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an ffpt checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_config_typos_are_errors():
    from ffpt.train import resolve

    with pytest.raises(ValueError, match=r"unknown config key 'training\.learning_rate'"):
        resolve({"data": {"train": "x"}, "training": {"learning_rate": 1}})
    with pytest.raises(ValueError, match="needs init_from"):
        resolve({"data": {"train": "x"}, "mode": "finetune"})
    assert resolve({"data": {"train": "x"}, "mode": "pretrain"})["training"]["lr"] == 1e-4
    assert resolve({"data": {"train": "x"}})["training"]["lr"] == 1e-3


def test_ddp_two_processes_match_one(tmp_path):
    """torchrun with 2 gloo ranks follows the single-process loss trajectory."""
    data = morse_frames(20, seed=6)
    data.save(tmp_path / "d.npz")
    cfg = _cfg(str(tmp_path / "d.npz"), training={"max_epochs": 3, "batch_size": 6})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs = []
    for n in (1, 2):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={n}", "-m", "ffpt.cli", "train", "-c", str(tmp_path / "c.yaml"),
               "-o", str(tmp_path / f"run{n}"), "--no-progress"]
        out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, (f"torchrun with {n} rank(s) exited {out.returncode}:\n"
                                     f"{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
        logs.append(load_checkpoint(tmp_path / f"run{n}" / "last.pt")["history"])
    l1 = [h["train_loss"] for h in logs[0]]
    l2 = [h["train_loss"] for h in logs[1]]
    np.testing.assert_allclose(l2, l1, rtol=1e-9)
    np.testing.assert_allclose([h["val_loss"] for h in logs[1]],
                               [h["val_loss"] for h in logs[0]], rtol=1e-9)
