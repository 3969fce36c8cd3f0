"""On-the-fly pre-training (``training.pt_source``): fresh teacher-labelled frames every epoch,
reproducible per seed and epoch, exact on resume, and the model learns the teacher."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import ffpt.train.trainer as trainer
from ffpt.model import load_checkpoint
from ffpt.train import train
from ffpt.train.config import resolve

SOURCE = {"teacher": "tip3p-flex", "sigma": 0.2, "frames_per_epoch": 48, "val_frames": 24}


def _cfg(max_epochs: int = 4, seed: int = 0, **source) -> dict:
    return {"mode": "pretrain", "seed": seed,
            "model": {"features": 8, "num_radial": 6, "num_interactions": 1, "cutoff": 3.0,
                      "dtype": "float64"},
            "training": {"max_epochs": max_epochs, "batch_size": 16, "lr": 3e-3,
                         "plot_every": 0, "pt_source": {**SOURCE, **source}}}


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


@pytest.fixture
def seen(monkeypatch):
    """Digests of the positions of every frame set the trainer builds graphs for."""
    log: list[str] = []
    real = trainer.GraphSet

    def spy(frames, *args, **kw):
        log.append(_digest(frames.positions))
        return real(frames, *args, **kw)

    monkeypatch.setattr(trainer, "GraphSet", spy)
    return log


def _weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model_state"]


def test_fresh_frames_every_epoch_reproducible_by_seed(tmp_path, seen):
    a = train(_cfg(), tmp_path / "a", progress=False)
    runs_a = list(seen)
    seen.clear()
    b = train(_cfg(), tmp_path / "b", progress=False)
    assert seen == runs_a  # same seed: the same frames in the same epochs
    # graphs: epoch 1, validation, epochs 2..4 -> five different frame sets
    assert len(runs_a) == 5 and len(set(runs_a)) == 5
    wa, wb = _weights(a.last_checkpoint), _weights(b.last_checkpoint)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    seen.clear()
    c = train(_cfg(seed=1), tmp_path / "c", progress=False)
    assert not set(seen) & set(runs_a)  # another seed: other frames, other validation set
    wc = _weights(c.last_checkpoint)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    # the model learns the teacher: validation force error falls
    hist = load_checkpoint(a.last_checkpoint)["history"]
    assert hist[-1]["val_forces_rmse"] < hist[0]["val_forces_rmse"]


def test_resume_is_exact(tmp_path):
    full = train(_cfg(max_epochs=4), tmp_path / "full", progress=False)
    train(_cfg(max_epochs=2), tmp_path / "split", progress=False)
    resumed = train(_cfg(max_epochs=4), tmp_path / "split", resume=True, progress=False)
    wf, wr = _weights(full.last_checkpoint), _weights(resumed.last_checkpoint)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    hf = load_checkpoint(full.last_checkpoint)["history"]
    hr = load_checkpoint(resumed.last_checkpoint)["history"]
    assert [h["train_loss"] for h in hf] == [h["train_loss"] for h in hr]


@pytest.mark.parametrize("change, message", [
    ({"mode": "scratch"}, "applies to mode pretrain only"),
    ({"data": {"train": "frames.xyz"}}, "remove data.train"),
    ({"training": {"pt_source": {"teacher": "tip3p-flex", "frames": 10}}},
     r"unknown config key 'training\.pt_source\.frames'"),
    ({"training": {"pt_source": {"teacher": "tip3p-flex", "frames_per_epoch": 0}}},
     "frames_per_epoch must be a positive integer"),
    ({"training": {"pt_source": {"sigma": 0.2}}}, "pt_source.teacher is required"),
])
def test_config_errors(change, message):
    cfg = _cfg()
    for key, value in change.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(ValueError, match=message):
        resolve(cfg)
