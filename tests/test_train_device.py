"""training.device / training.precision on a CPU machine (CUDA paths: scripts/gpu_check.sh)."""

from __future__ import annotations

import pytest
import torch
from conftest import morse_frames

from ffpt.model import batch_energy_forces, build_model, load_checkpoint
from ffpt.train import train
from ffpt.train.config import resolve
from ffpt.train.device import precision_context, resolve_device

SMALL = {"features": 16, "num_radial": 8, "num_interactions": 2, "cutoff": 4.0,
         "dtype": "float32"}
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def _cfg(data, **training):
    return {"data": {"train": data, "val_fraction": 0.25}, "model": dict(SMALL),
            "training": {"max_epochs": 2, "batch_size": 6, "plot_every": 0, **training}}


@no_cuda
def test_auto_is_cpu_and_checkpoints_are_cpu(tmp_path):
    data = morse_frames(16, seed=5)
    a = train(_cfg(data, device="cpu"), tmp_path / "cpu", progress=False)
    b = train(_cfg(data, device="auto"), tmp_path / "auto", progress=False)
    assert resolve_device("auto") == torch.device("cpu")
    ca, cb = load_checkpoint(a.last_checkpoint), load_checkpoint(b.last_checkpoint)
    for k, v in ca["model_state"].items():
        assert torch.equal(v, cb["model_state"][k]), k
    opt = [t for s in ca["optimizer_state"]["state"].values() for t in s.values()
           if isinstance(t, torch.Tensor)]
    assert opt and all(t.device.type == "cpu" for t in opt)


@no_cuda
def test_cuda_without_cuda_is_one_clear_line(tmp_path):
    with pytest.raises(RuntimeError, match="no CUDA device") as err:
        train(_cfg(morse_frames(8, seed=6), device="cuda"), tmp_path, progress=False)
    assert "\n" not in str(err.value) and "training.device: cpu" in str(err.value)


@pytest.mark.parametrize(("key", "value", "match"), [
    ("device", "gpu", "training.device must be"),
    ("precision", "fp16", "training.precision must be"),
])
def test_bad_settings_rejected(key, value, match):
    with pytest.raises(ValueError, match=match):
        resolve(_cfg("x.xyz", **{key: value}))


def test_tf32_needs_cuda():
    with pytest.raises(ValueError, match="tf32 needs a CUDA device"):
        precision_context("tf32", torch.device("cpu"))


def test_bf16_autocast_forces_close_to_float32():
    """Under bf16 autocast the matmuls really run in bfloat16 (forces differ from float32)
    yet stay within bf16 accuracy, and the double backward works."""
    from conftest import make_water_box

    from ffpt.data.graph import atoms_to_batch

    torch.manual_seed(0)
    model = build_model(SMALL, ["H", "O"])
    b = atoms_to_batch(make_water_box(2, seed=1), model.elements, model.cutoff).to(
        dtype=torch.float32)
    args = (b.species, b.pos, b.edge_index, b.edge_shift, b.batch, 1)
    ref = batch_energy_forces(model, *args)["forces"]
    with precision_context("bf16-autocast", torch.device("cpu"))():
        out = batch_energy_forces(model, *args, training=True)
        (out["forces"] ** 2).sum().backward()
    rel = (out["forces"].detach() - ref).norm() / ref.norm()
    assert 1e-5 < float(rel) < 5e-2
    assert model.embedding.weight.grad is not None
